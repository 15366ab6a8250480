/**
 * Who may change an org on this node: a primary takes writes, a secondary copy takes replication
 * (and forced local edits, reported as drift), and a higher epoch fences a former primary off.
 */
import type { OrgStatus, ServiceRecord } from "../../../wire";
import { ApiFailure, notFound } from "../errors";
import type { OrgState } from "../store/org-state";
import type { HostingStore } from "./ports";

export interface WriteOptions {
  /** Apply a write to a secondary copy anyway (an administrator's local edit; reported as drift). */
  force: boolean;
  /** An org, user or service PUT: refuse it when the object exists managed by another owner (OWNER_HEADER). */
  owner?: string;
}

export function requireOrg(store: HostingStore, name: string): OrgState {
  const state = store.getOrg(name);
  if (!state) throw notFound(`organization "${name}"`);
  return state;
}

/** The org after a write that cannot have deleted it. */
export function orgAfter(after: OrgState | undefined): OrgState {
  if (!after) throw new Error("the organization vanished inside its own write");
  return after;
}

/** The org as `GET /v1/orgs/{org}` reports it. */
export function orgStatus(state: OrgState): OrgStatus {
  const secondary = state.role === "secondary";
  return {
    name: state.record.name,
    displayName: state.record.displayName,
    role: state.role,
    ...(secondary && state.primary !== null ? { primary: state.primary } : {}),
    secondaries: state.record.secondaries,
    loadBalanced: state.record.loadBalanced,
    generation: state.generation,
    digest: state.digest,
    epoch: state.epoch,
    drifted: secondary && state.digest !== state.syncedDigest,
    ...(secondary && state.lastSyncedAt !== null ? { lastSyncedAt: state.lastSyncedAt } : {}),
    managedBy: state.record.managedBy,
    ...(state.unixId !== undefined ? { unixId: state.unixId } : {}),
  };
}

/** A secondary copy takes no ordinary write, unless forced (then it shows as drift). */
export function rejectSecondaryWrite(state: OrgState, options: WriteOptions): void {
  if (state.role === "secondary" && !options.force) {
    throw new ApiFailure(
      409,
      "secondary_copy",
      `organization "${state.record.name}" is a secondary copy on this node; its primary is ${state.primary ?? "unknown"}. ` +
        "Change it on the primary (or add ?force=true for a deliberate local edit, which is reported as drift).",
    );
  }
}

/** A PUT carrying an owner (OWNER_HEADER) refuses to overwrite an object another owner manages. */
export function rejectOtherOwner(what: string, stored: { managedBy: string } | undefined, options: WriteOptions): void {
  if (stored && options.owner !== undefined && stored.managedBy !== options.owner) {
    throw new ApiFailure(
      409,
      "managed_elsewhere",
      `${what} already exists, managed by '${stored.managedBy || "nobody"}', not '${options.owner}'`,
    );
  }
}

/**
 * A domain belongs to one organization per node: another org's website here listing one of the
 * service's domains refuses the write (in its transaction). The answer names the domain only.
 */
export function rejectDomainElsewhere(store: HostingStore, org: string, service: ServiceRecord, path: string): void {
  if (service.kind !== "website") return;
  const taken = store.domainElsewhere(org, service.domains);
  if (taken === undefined) return;
  throw new ApiFailure(
    409,
    "domain_taken",
    `domain "${taken}" is already served by another organization on this node`,
    [
      {
        path: `${path}.${service.domains.indexOf(taken)}`,
        message: "is already served by another organization on this node",
      },
    ],
  );
}

/** Replication must not overwrite a primary. */
export function rejectPrimary(state: OrgState): void {
  if (state.role === "primary") {
    throw new ApiFailure(
      409,
      "primary_copy",
      `this node is the primary of organization "${state.record.name}" at epoch ${state.epoch}; a replica must not overwrite it`,
    );
  }
}

/** Fencing: what comes from a primary at a lower epoch than this node's is refused. */
export function rejectStaleEpoch(state: OrgState, epoch: number): void {
  if (epoch < state.epoch) {
    const held = state.role === "primary" ? "holds it as the primary" : "follows its primary";
    throw new ApiFailure(
      409,
      "stale_epoch",
      `organization "${state.record.name}": this node ${held} at epoch ${state.epoch}; ` +
        `replication from epoch ${epoch} is refused (the sender is a former primary)`,
    );
  }
}
