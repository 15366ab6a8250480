/**
 * The secondary-sync hook: brings every active secondary of an organization to its primary's
 * generation — a delta when a secondary is merely behind and undrifted, a full snapshot when it is
 * drifted, missing, or the primary's change log no longer reaches back — then verifies digests.
 * Used by the resource providers after each primary mutation and by `lbhosting sync`.
 */
import * as fs from "node:fs";
import type { OrgStatus, SecondaryState, SecondarySyncStatus, Snapshot } from "../sdk/schemas";
import { AgentClient, AgentError, AgentUnreachableError, isNotFound } from "./client";

export type ClientFactory = (endpoint: string) => AgentClient;

export interface SyncOptions {
  /** Send a full snapshot to every secondary, even one that is in sync (initiate synchronization). */
  full?: boolean;
  /** One line per secondary: delta or snapshot, changes, bytes, ms. */
  log?: (line: string) => void;
}

export interface SyncReport {
  org: string;
  primary: string;
  /** The primary's generation and digest the secondaries were brought to. */
  generation: number;
  digest: string;
  secondaries: SecondarySyncStatus[];
  inSync: boolean;
}

/** A sync left at least one secondary behind; the primary keeps its changes. */
export class SyncError extends Error {
  constructor(
    readonly report: SyncReport,
    /** Whether the sync followed a change on the primary (a resource operation). */
    afterChange = true,
  ) {
    const failed = report.secondaries.filter((secondary) => secondary.state !== "in-sync");
    const reasons = failed.map(({ endpoint, state, error }) => {
      const detail = error?.replace(`${endpoint} is unreachable: `, "").replace(`${endpoint}: `, "");
      return `${endpoint} is ${state}${detail ? `: ${detail}` : ""}`;
    });
    const what = failed.length === 1 ? "a secondary was" : `${failed.length} secondaries were`;
    const lead = afterChange
      ? `organization ${report.org}: the change is applied on the primary ${report.primary}, but ${what} not synchronized`
      : `organization ${report.org}: ${what} not synchronized from the primary ${report.primary}`;
    super(
      `${lead} (${reasons.join("; ")}). Run 'pulumi up' again, or 'lbhosting sync --org ${report.org} ` +
        `--primary ${report.primary}', once the secondary is reachable.`,
    );
    this.name = "SyncError";
  }
}

/** The secondaries that should hold a copy, as the primary's own org record says. */
export function activeSecondaries(status: Pick<OrgStatus, "loadBalanced" | "secondaries">): string[] {
  return status.loadBalanced ? status.secondaries : [];
}

/** Where a secondary's copy stands against the primary. */
export function classify(
  primary: { generation: number; digest: string },
  copy: OrgStatus | undefined,
): Exclude<SecondaryState, "unreachable"> {
  if (!copy) return "missing";
  if (copy.role !== "secondary" || copy.drifted) return "drifted";
  if (copy.generation === primary.generation && copy.digest === primary.digest) return "in-sync";
  if (copy.generation < primary.generation) return "behind";
  return "drifted";
}

export interface SecondaryInspection {
  endpoint: string;
  state: SecondaryState;
  copy?: OrgStatus;
  error?: string;
}

/** Reads one secondary's copy of an org without changing anything. */
export async function inspectSecondary(
  client: AgentClient,
  org: string,
  primary: { generation: number; digest: string },
): Promise<SecondaryInspection> {
  try {
    const copy = await client.getOrg(org);
    const state = classify(primary, copy);
    const error = copy.role === "primary" ? "the node holds this organization as a primary" : undefined;
    return { endpoint: client.endpoint, state, copy, error };
  } catch (error) {
    if (isNotFound(error)) return { endpoint: client.endpoint, state: "missing" };
    if (error instanceof AgentUnreachableError)
      return { endpoint: client.endpoint, state: "unreachable", error: error.message };
    throw error;
  }
}

export function toSyncStatus(inspection: SecondaryInspection): SecondarySyncStatus {
  return {
    endpoint: inspection.endpoint,
    state: inspection.state,
    generation: inspection.copy?.generation ?? 0,
    digest: inspection.copy?.digest ?? "",
    lastSyncedAt: inspection.copy?.lastSyncedAt ?? "",
    ...(inspection.error ? { error: inspection.error } : {}),
  };
}

/** Inspects every active secondary of an org: what `pulumi refresh` and `lbhosting status` show. */
export async function inspectOrg(
  primary: AgentClient,
  org: string,
  clientFor: ClientFactory,
): Promise<{ primary: OrgStatus; secondaries: SecondaryInspection[] }> {
  const status = await primary.getOrg(org);
  const secondaries = await Promise.all(
    activeSecondaries(status).map((endpoint) => inspectSecondary(clientFor(endpoint), org, status)),
  );
  return { primary: status, secondaries };
}

/** Runs one sync of an org to all its active secondaries (no coalescing; see `requestSync`). */
export async function syncOrg(
  primary: AgentClient,
  org: string,
  clientFor: ClientFactory,
  options: SyncOptions = {},
): Promise<SyncReport> {
  const status = await primary.getOrg(org);
  let snapshot: Promise<Snapshot> | undefined;
  const fetchSnapshot = () => (snapshot ??= primary.snapshot(org));
  const secondaries = await Promise.all(
    activeSecondaries(status).map((endpoint) =>
      syncSecondary(primary, clientFor(endpoint), org, status, fetchSnapshot, options),
    ),
  );
  const generation = Math.max(status.generation, ...secondaries.map((secondary) => secondary.generation));
  const digest = secondaries.find((secondary) => secondary.generation === generation)?.digest ?? status.digest;
  return {
    org,
    primary: primary.endpoint,
    generation,
    digest,
    secondaries,
    inSync: secondaries.every((secondary) => secondary.state === "in-sync"),
  };
}

async function syncSecondary(
  primary: AgentClient,
  secondary: AgentClient,
  org: string,
  primaryStatus: OrgStatus,
  fetchSnapshot: () => Promise<Snapshot>,
  options: SyncOptions,
): Promise<SecondarySyncStatus> {
  const started = Date.now();
  const before = await inspectSecondary(secondary, org, primaryStatus);
  if (before.state === "unreachable") return toSyncStatus(before);
  if (before.state === "in-sync" && !options.full) {
    options.log?.(`sync ${org} → ${secondary.endpoint}: in sync at generation ${primaryStatus.generation}`);
    return toSyncStatus(before);
  }
  try {
    let transfer: {
      mode: "delta" | "snapshot";
      changes: number;
      bytes: number;
      target: { generation: number; digest: string };
    };
    const delta =
      before.state === "behind" && !options.full && before.copy
        ? await tryDelta(primary, secondary, org, before.copy.generation)
        : undefined;
    if (delta) {
      transfer = { mode: "delta", ...delta };
    } else {
      const snap = await fetchSnapshot();
      const body = { ...snap, primary: primary.endpoint };
      await secondary.putReplica(org, body);
      const count = 1 + snap.users.length + snap.services.length;
      transfer = { mode: "snapshot", changes: count, bytes: JSON.stringify(body).length, target: snap };
    }
    const after = await inspectSecondary(secondary, org, transfer.target);
    if (after.state !== "in-sync") {
      return toSyncStatus({
        ...after,
        error: after.error ?? `verification failed: the copy is ${after.state} after the sync`,
      });
    }
    options.log?.(
      `sync ${org} → ${secondary.endpoint}: ${transfer.mode} ${transfer.changes} changes, ` +
        `${transfer.bytes} bytes, ${Date.now() - started} ms → generation ${transfer.target.generation}`,
    );
    return toSyncStatus(after);
  } catch (error) {
    const unreachable = error instanceof AgentUnreachableError;
    return toSyncStatus({
      ...before,
      state: unreachable ? "unreachable" : before.state,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** Sends the changes after `base`; undefined when a snapshot is needed instead (410 or 409). */
async function tryDelta(
  primary: AgentClient,
  secondary: AgentClient,
  org: string,
  base: number,
): Promise<{ changes: number; bytes: number; target: { generation: number; digest: string } } | undefined> {
  try {
    const page = await primary.changesSince(org, base);
    const body = { baseGeneration: base, changes: page.changes, digest: page.digest };
    await secondary.applyReplicaChanges(org, body);
    return { changes: page.changes.length, bytes: JSON.stringify(body).length, target: page };
  } catch (error) {
    if (error instanceof AgentError && (error.status === 410 || error.status === 409)) return undefined;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Coalescing: operations on the same org share syncs, but none returns before a sync that
// started after its own change has finished.
// ---------------------------------------------------------------------------------------------

interface OrgSlot {
  running?: Promise<SyncReport>;
  queued?: { promise: Promise<SyncReport>; full: boolean };
}

const slots = new Map<string, OrgSlot>();

/**
 * Requests a sync that includes every change already committed on the primary. If a sync is
 * running it may have started before the caller's change, so the caller joins the one queued
 * behind it (one queued sync serves every caller that arrives meanwhile).
 */
export function requestSync(
  primary: AgentClient,
  org: string,
  clientFor: ClientFactory,
  options: SyncOptions = {},
): Promise<SyncReport> {
  const key = `${primary.endpoint} ${org}`;
  let slot = slots.get(key);
  if (!slot) slots.set(key, (slot = {}));
  const current = slot;
  const start = (full: boolean): Promise<SyncReport> => {
    const run = syncOrg(primary, org, clientFor, { ...options, full }).finally(() => {
      if (current.running === run) current.running = undefined;
    });
    current.running = run;
    return run;
  };
  if (!current.running) return start(options.full ?? false);
  let queued = current.queued;
  if (!queued) {
    const waitFor = current.running.catch(() => undefined);
    const next: { promise: Promise<SyncReport>; full: boolean } = {
      full: false,
      promise: waitFor.then((): Promise<SyncReport> => {
        current.queued = undefined;
        return start(next.full);
      }),
    };
    current.queued = queued = next;
  }
  queued.full ||= options.full ?? false;
  return queued.promise;
}

/** Writes a sync line to Pulumi's log (the provider's output) and, if set, to $LBHOSTING_SYNC_LOG. */
export function syncLogger(line: string): void {
  console.log(`lbhosting: ${line}`);
  const file = process.env.LBHOSTING_SYNC_LOG;
  if (file) fs.appendFileSync(file, JSON.stringify({ at: new Date().toISOString(), line }) + "\n");
}
