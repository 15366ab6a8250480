import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { canonicalJson } from "../wire/canonical-json";
import { UNKNOWN_VALUE } from "./inputs";
import { organizationRef, type LoadBalancedOrganization, type OrganizationRef } from "./organization";
import type { SecondarySyncStatus } from "./outputs";
import { shims } from "./provider-shim";
import { LbhostingResource } from "./resource";

/** What a SyncCheck waits for: a resource (its operation in this `up`), or any output. */
export type SyncCheckMember = pulumi.Resource | pulumi.Input<unknown>;

export interface SyncCheckArgs {
  /** The organization resource, or `{ name, primary }`. */
  organization: LoadBalancedOrganization | OrganizationRef;
  /** The org's users and services (or any outputs): the check records the org once all are done. */
  after?: SyncCheckMember[];
}

/**
 * Where an organization stands at the end of an `up`: the primary's generation, digest and epoch,
 * and each active secondary's sync state, read from the nodes once every member in `after` is
 * done (the "initiate synchronization" status). It changes nothing on the nodes; a preview shows
 * it changing whenever the live org differs from what it recorded.
 */
export class SyncCheck extends LbhostingResource {
  declare readonly organization: pulumi.Output<{ name: string; primary: string }>;
  declare readonly after: pulumi.Output<string | undefined>;
  /** The primary's configuration version when the check last ran. */
  declare readonly generation: pulumi.Output<number>;
  /** Hash of the primary's canonical configuration when the check last ran. */
  declare readonly digest: pulumi.Output<string>;
  /** The org's epoch (raised by each failover or move). */
  declare readonly epoch: pulumi.Output<number>;
  /** One entry per active secondary, as the organization's `syncStatus`. */
  declare readonly syncStatus: pulumi.Output<SecondarySyncStatus[]>;
  /** Whether every active secondary held the primary's generation and digest. */
  declare readonly inSync: pulumi.Output<boolean>;

  constructor(name: string, args: SyncCheckArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      shims.syncCheck,
      name,
      {
        organization: organizationRef(args.organization),
        ...(args.after ? { after: membersDigest(args.after) } : {}),
        generation: undefined,
        digest: undefined,
        epoch: undefined,
        syncStatus: undefined,
        inSync: undefined,
      },
      opts,
      "SyncCheck",
    );
  }
}

/** `<count>:<hash>` of the members' values: the same members, in any order, give the same value. */
export function digestOfMembers(values: unknown[]): string {
  const parts = values.map((value) => canonicalJson(value ?? null)).sort();
  return `${values.length}:${createHash("sha256").update(parts.join("\n")).digest("hex").slice(0, 16)}`;
}

/** How one member's operation ended, as the check's input sees it. */
interface Settled {
  known: boolean;
  secret: boolean;
  value?: unknown;
}

/** A member operation that failed: the check still runs (with `--continue-on-error`) and records the org. */
const FAILED = { failed: true };

/**
 * Waits for one member's operation to end, failed or not. `isKnown` is not in the SDK's
 * declarations, but every Output has it (@pulumi/pulumi output.js): it resolves once the value is
 * there, false for a value a preview does not know yet.
 */
async function settle(member: SyncCheckMember): Promise<Settled> {
  const output = pulumi.CustomResource.isInstance(member)
    ? member.id
    : pulumi.Resource.isInstance(member)
      ? member.urn
      : pulumi.output(member);
  try {
    const known = await (output as unknown as { isKnown: Promise<boolean> }).isKnown;
    const secret = await pulumi.isSecret(output);
    if (!known) return { known, secret };
    return { known, secret, value: await new Promise((resolve) => output.apply(resolve)) };
  } catch {
    return { known: true, secret: false, value: FAILED };
  }
}

/**
 * One short input that resolves once every member's operation in this `up` has ended (its id, or
 * the output's value, resolved or failed). It is an output of a promise, not of the members, so
 * Pulumi records no dependency on each of them (the check's state stays the same size for a
 * thousand users) and, under `pulumi up --continue-on-error`, the check runs after a member
 * failed and records the org as it is. A member still unknown (preview of a create) makes it
 * unknown: the sentinel a plain value carries for Pulumi's engine.
 */
function membersDigest(members: SyncCheckMember[]): pulumi.Output<string> {
  const marked = Promise.all(members.map(settle)).then((settled): pulumi.Input<string> => {
    const digest = settled.every((member) => member.known)
      ? digestOfMembers(settled.map((member) => member.value))
      : UNKNOWN_VALUE;
    return settled.some((member) => member.secret) ? pulumi.secret(digest) : digest;
  });
  return pulumi.output(marked);
}
