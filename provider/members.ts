/**
 * What the OrgUser and WebService providers share: ownership checks on create, and the sync that
 * follows every change on the primary (a failed secondary becomes a partial failure).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import type { Snapshot } from "../wire";
import { orgUserDefaults, withDefaults, type OrgRef } from "../sdk/inputs";
import type { WriteAnswer } from "../wire/write-answer";
import { routeOrg, servingNodes } from "./balancer";
import { AgentError, unlessNotFound } from "./client";
import { clientFor, credentials, scheduler, snapshots, syncLog } from "./context";
import { checkInputs, containsUnknown, normalizeRef, partialFailure } from "./inputs";
import { SyncError, unexpectedSecondaryLine, type SyncReport } from "./sync";

/** `check` for a user or service: the schema's failures, and the org reference in canonical form. */
export function checkMember(schema: z.ZodType, news: Record<string, unknown>): pulumi.dynamic.CheckResult {
  const { inputs, failures } = checkInputs(schema, news);
  const organization = inputs.organization as OrgRef | undefined;
  if (failures.length === 0 && organization && !containsUnknown(organization)) {
    inputs.organization = normalizeRef(organization);
  }
  return { inputs, failures };
}

/** What `pick` finds of a member in the org's snapshot on its primary (see SnapshotReader). */
export const readMember = <T>(organization: OrgRef, pick: (snapshot: Snapshot) => T | undefined) =>
  snapshots.read(organization, pick);

/**
 * The owner a create may overwrite on the primary (sent as OWNER_HEADER, checked by the agent in
 * the write itself): its own mark, so a retried create proceeds; anyone's with `adopt`.
 */
export const ownerOnCreate = (inputs: { adopt?: boolean; managedBy?: string }): string | undefined =>
  inputs.adopt ? undefined : withDefaults(inputs, { managedBy: orgUserDefaults.managedBy }).managedBy;

/** Runs a create's write; the agent's refusal to take over another owner's object says what to do. */
export async function refusingTakeOver<T>(what: string, organization: OrgRef, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!(error instanceof AgentError && error.code === "managed_elsewhere")) throw error;
    throw new Error(
      `${what} already exists in organization ${organization.name} on ${organization.primary} and was not created ` +
        `by this resource (${error.message}); set adopt: true to take it over`,
    );
  }
}

/**
 * Runs a write on the org's primary, then syncs the org (and, for website changes, routes its
 * domains on the load balancer to the in-sync nodes). Returns only once a sync including the
 * write has finished; the write's answer lets that sync skip asking the primary.
 */
export async function writeAndSync(
  organization: OrgRef,
  write: () => Promise<WriteAnswer | undefined>,
  reroute = false,
): Promise<SyncReport> {
  const primary = clientFor(organization.primary);
  snapshots.drop(primary.endpoint, organization.name);
  credentials.name([organization.primary, organization.loadBalancer]);
  const report = await scheduler.writeThenSync(primary, organization.name, clientFor, write, {
    log: syncLog,
    isNamed: credentials.isNamed,
  });
  for (const endpoint of report.unexpected ?? []) syncLog(unexpectedSecondaryLine(organization.name, endpoint));
  if (reroute) await routeOrg(organization, servingNodes(primary.endpoint, report.secondaries), clientFor);
  return report;
}

/** A secondary left behind makes the operation a partial failure: the object exists with `outs`. */
export function assertSynced(report: SyncReport, id: string, outs: Record<string, unknown>): void {
  if (!report.inSync) throw partialFailure(new SyncError(report).message, id, outs);
}

/** Deletes on the primary (already gone is fine), then syncs the org. */
export async function deleteAndSync(
  organization: OrgRef,
  remove: () => Promise<WriteAnswer | undefined>,
  reroute = false,
): Promise<void> {
  const report = await writeAndSync(organization, async () => await unlessNotFound(remove()), reroute);
  if (!report.inSync) throw new SyncError(report);
}
