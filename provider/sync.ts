/**
 * The secondary-sync hook: brings every active secondary of an organization to its primary's
 * generation — a delta when a secondary is merely behind and undrifted, a full snapshot when it is
 * drifted, missing, or the primary's change log no longer reaches back — then verifies digests.
 * Used by the resource providers after each primary mutation and by `lbhosting sync`.
 */
import * as fs from "node:fs";
import type { Change, OrgStatus, Snapshot } from "../wire";
import type { SecondaryState, SecondarySyncStatus } from "../sdk/outputs";
import type { WriteAnswer } from "../wire/write-answer";
import { AgentClient, AgentError, AgentUnreachableError, isNotFound } from "./client";

export type ClientFactory = (endpoint: string) => AgentClient;

export interface SyncOptions {
  /** Send a full snapshot to every secondary, even one that is in sync (initiate synchronization). */
  full?: boolean;
  /** One line per secondary: delta or snapshot, changes, bytes, ms. */
  log?: (line: string) => void;
  /** The primary's answer to the write this sync follows (its generation, digest, change). */
  write?: WriteAnswer;
}

export interface SyncReport {
  org: string;
  primary: string;
  /** The primary's generation and digest the secondaries were brought to. */
  generation: number;
  digest: string;
  /** The primary's epoch. */
  epoch: number;
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

/** A primary's position: what a copy is compared with. */
export interface Head {
  generation: number;
  digest: string;
  epoch: number;
}

/** Where a secondary's copy stands against the primary. */
export function classify(primary: Head, copy: OrgStatus | undefined): Exclude<SecondaryState, "unreachable"> {
  if (!copy) return "missing";
  // A node that is a primary, or follows one at a higher epoch, refuses this primary: it is stale.
  if (copy.role !== "secondary" || copy.drifted || copy.epoch > primary.epoch) return "drifted";
  if (copy.generation === primary.generation && copy.digest === primary.digest) {
    // The same content from an earlier primary (failover, move): an empty delta makes it follow this one.
    return copy.epoch === primary.epoch ? "in-sync" : "behind";
  }
  if (copy.generation < primary.generation) return "behind";
  return "drifted";
}

/** Why a node that should hold a copy refuses this primary, or undefined. */
function refusal(primary: Head, copy: OrgStatus): string | undefined {
  if (copy.role === "primary") return `the node holds this organization as a primary (epoch ${copy.epoch})`;
  if (copy.epoch > primary.epoch) {
    return (
      `the copy follows a primary at epoch ${copy.epoch}, newer than this primary's epoch ${primary.epoch}: ` +
      `this primary is stale (fenced)`
    );
  }
  return undefined;
}

export interface SecondaryInspection {
  endpoint: string;
  state: SecondaryState;
  copy?: OrgStatus;
  error?: string;
}

/** Reads one secondary's copy of an org without changing anything. */
export async function inspectSecondary(client: AgentClient, org: string, primary: Head): Promise<SecondaryInspection> {
  try {
    const copy = await client.getOrg(org);
    return { endpoint: client.endpoint, state: classify(primary, copy), copy, error: refusal(primary, copy) };
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

/**
 * What this process remembers of one org's replication between syncs: the primary's latest state
 * and change-log entries from write answers, and each secondary's copy as the last sync verified
 * it. With it, a sync after a write needs no request to the primary and, for an in-sync secondary,
 * exactly one: the delta, whose answer is the copy's new status (the verification).
 */
export class OrgKnowledge {
  head: Head | undefined;
  secondaries: string[] | undefined;
  readonly changes = new Map<number, Change>();
  readonly copies = new Map<string, OrgStatus>();

  /** A write answer from the primary. */
  noteWrite(answer: WriteAnswer): void {
    const head = this.head;
    // Another history: the org was recreated, or another node became its primary.
    if (
      head &&
      (head.epoch !== answer.epoch || (head.generation === answer.generation && head.digest !== answer.digest))
    ) {
      this.forget();
    }
    if (!this.head || answer.generation >= this.head.generation) {
      this.head = { generation: answer.generation, digest: answer.digest, epoch: answer.epoch };
      if (answer.secondaries) this.secondaries = answer.secondaries;
    }
    if (answer.change) this.changes.set(answer.change.generation, answer.change);
  }

  /** The primary's status, read by a sync that could not rely on write answers. */
  noteStatus(status: OrgStatus): void {
    if (this.head && this.head.epoch !== status.epoch) this.forget();
    if (!this.head || status.generation >= this.head.generation) {
      this.head = { generation: status.generation, digest: status.digest, epoch: status.epoch };
      this.secondaries = activeSecondaries(status);
    }
  }

  /** The entries (base, target], or undefined when any is unknown here. */
  changesBetween(base: number, target: number): Change[] | undefined {
    const list: Change[] = [];
    for (let generation = base + 1; generation <= target; generation++) {
      const change = this.changes.get(generation);
      if (!change) return undefined;
      list.push(change);
    }
    return list;
  }

  /** Where a secondary without a verified copy here presumably stands: before the first change seen. */
  guessBase(): number | undefined {
    return this.changes.size === 0 ? undefined : Math.min(...this.changes.keys()) - 1;
  }

  /** Drop entries every active secondary already holds (and keep the map bounded). */
  prune(active: string[]): void {
    const held = active.map((endpoint) => this.copies.get(endpoint)?.generation ?? -1);
    const floor = Math.min(...held);
    for (const generation of this.changes.keys()) {
      if (generation <= floor || this.changes.size > MAX_KNOWN_CHANGES) this.changes.delete(generation);
    }
  }

  forget(): void {
    this.head = undefined;
    this.secondaries = undefined;
    this.changes.clear();
    this.copies.clear();
  }
}

const MAX_KNOWN_CHANGES = 10_000;

/**
 * Runs one sync of an org to all its active secondaries (no coalescing; see `requestSync`). With
 * `known` (write-driven syncs), the primary's state and the changes come from write answers.
 */
export async function syncOrg(
  primary: AgentClient,
  org: string,
  clientFor: ClientFactory,
  options: SyncOptions = {},
  known?: OrgKnowledge,
): Promise<SyncReport> {
  const fast = !options.full && known?.head !== undefined && known.secondaries !== undefined;
  let target: Head;
  let active: string[];
  if (fast && known?.head && known.secondaries) {
    target = { ...known.head };
    active = known.secondaries;
  } else {
    const status = await primary.getOrg(org);
    known?.noteStatus(status);
    target = { generation: status.generation, digest: status.digest, epoch: status.epoch };
    active = activeSecondaries(status);
  }
  let snapshot: Promise<Snapshot> | undefined;
  const fetchSnapshot = () => (snapshot ??= primary.snapshot(org));
  const secondaries = await Promise.all(
    active.map((endpoint) =>
      syncSecondary(primary, clientFor(endpoint), org, target, fetchSnapshot, options, known, fast),
    ),
  );
  known?.prune(active);
  const generation = Math.max(target.generation, ...secondaries.map((secondary) => secondary.generation));
  const digest = secondaries.find((secondary) => secondary.generation === generation)?.digest ?? target.digest;
  return {
    org,
    primary: primary.endpoint,
    generation,
    digest,
    epoch: target.epoch,
    secondaries,
    inSync: secondaries.every((secondary) => secondary.state === "in-sync"),
  };
}

type Transfer = { mode: "delta" | "snapshot"; changes: number; bytes: number; copy: OrgStatus };

async function syncSecondary(
  primary: AgentClient,
  secondary: AgentClient,
  org: string,
  target: Head,
  fetchSnapshot: () => Promise<Snapshot>,
  options: SyncOptions,
  known: OrgKnowledge | undefined,
  fast: boolean,
): Promise<SecondarySyncStatus> {
  const started = Date.now();
  const endpoint = secondary.endpoint;
  // What this secondary is brought to: the primary's state, or a later one a transfer carried.
  const goal = { ...target };
  const done = (transfer: Transfer): SecondarySyncStatus => {
    const state = classify(goal, transfer.copy);
    if (state !== "in-sync") {
      known?.copies.delete(endpoint);
      return toSyncStatus({
        endpoint,
        state,
        copy: transfer.copy,
        error: `verification failed: the copy is ${state} after the sync`,
      });
    }
    known?.copies.set(endpoint, transfer.copy);
    options.log?.(
      `sync ${org} → ${endpoint}: ${transfer.mode} ${transfer.changes} changes, ` +
        `${transfer.bytes} bytes, ${Date.now() - started} ms → generation ${transfer.copy.generation}`,
    );
    return toSyncStatus({ endpoint, state, copy: transfer.copy });
  };

  // Fast path: the copy as this process last verified it (or a guess), and the changes from write answers.
  if (fast && known) {
    const copy = known.copies.get(endpoint);
    if (copy && classify(target, copy) === "in-sync") {
      options.log?.(`sync ${org} → ${endpoint}: in sync at generation ${target.generation}`);
      return toSyncStatus({ endpoint, state: "in-sync", copy });
    }
    const base = copy && copy.generation < target.generation ? copy.generation : known.guessBase();
    const changes = base === undefined ? undefined : known.changesBetween(base, target.generation);
    if (base !== undefined && changes) {
      try {
        const body = {
          baseGeneration: base,
          changes,
          digest: target.digest,
          primary: primary.endpoint,
          epoch: target.epoch,
        };
        const answer = await secondary.applyReplicaChanges(org, body);
        const transfer = {
          mode: "delta" as const,
          changes: changes.length,
          bytes: JSON.stringify(body).length,
          copy: answer,
        };
        if (classify(target, answer) === "in-sync") return done(transfer);
      } catch (error) {
        // Not where we thought (409), gone (404), or too far behind (410): look, then send what fits.
        if (!(error instanceof AgentError && [404, 409, 410].includes(error.status))) {
          return failed({ endpoint, state: "behind" }, error, known);
        }
      }
      known.copies.delete(endpoint);
    }
  }

  const before = await inspectSecondary(secondary, org, target);
  if (before.state === "unreachable") return toSyncStatus(before);
  if (before.state === "in-sync" && !options.full) {
    if (before.copy) known?.copies.set(endpoint, before.copy);
    options.log?.(`sync ${org} → ${endpoint}: in sync at generation ${target.generation}`);
    return toSyncStatus(before);
  }
  try {
    const delta =
      before.state === "behind" && !options.full && before.copy
        ? await tryDelta(primary, secondary, org, before.copy.generation)
        : undefined;
    if (delta) {
      if (delta.target.generation > goal.generation) Object.assign(goal, delta.target);
      goal.epoch = delta.target.epoch;
      return done({ mode: "delta", ...delta });
    }
    const snap = await fetchSnapshot();
    const body = { ...snap, primary: primary.endpoint };
    const copy = await secondary.putReplica(org, body);
    if (snap.generation > goal.generation) Object.assign(goal, { generation: snap.generation, digest: snap.digest });
    goal.epoch = snap.epoch;
    const count = 1 + snap.users.length + snap.services.length;
    return done({ mode: "snapshot", changes: count, bytes: JSON.stringify(body).length, copy });
  } catch (error) {
    return failed(before, error, known);
  }
}

function failed(before: SecondaryInspection, error: unknown, known: OrgKnowledge | undefined): SecondarySyncStatus {
  known?.copies.delete(before.endpoint);
  const unreachable = error instanceof AgentUnreachableError;
  return toSyncStatus({
    ...before,
    state: unreachable ? "unreachable" : before.state,
    error: error instanceof Error ? error.message : String(error),
  });
}

/** Sends the changes after `base`; undefined when a snapshot is needed instead (410 or 409). */
async function tryDelta(
  primary: AgentClient,
  secondary: AgentClient,
  org: string,
  base: number,
): Promise<{ changes: number; bytes: number; copy: OrgStatus; target: Head } | undefined> {
  try {
    const page = await primary.changesSince(org, base);
    const body = {
      baseGeneration: base,
      changes: page.changes,
      digest: page.digest,
      primary: primary.endpoint,
      epoch: page.epoch,
    };
    const copy = await secondary.applyReplicaChanges(org, body);
    const target = { generation: page.generation, digest: page.digest, epoch: page.epoch };
    return { changes: page.changes.length, bytes: JSON.stringify(body).length, copy, target };
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
  queued?: { promise: Promise<SyncReport>; full: boolean; needsStatus: boolean; callers: number };
  known: OrgKnowledge;
  /** Writes to the org in flight in this process: a queued sync waits for them to join (briefly). */
  writing: number;
  /** Operations between their write and the end of their sync (see `writeThenSync`), and their peak. */
  operations: number;
  peak: number;
  /** When the latest operation began its write. */
  lastArrival: number;
  /** Woken when writes in flight settle or a new operation arrives. */
  wake: Array<() => void>;
}

/** A queued sync waiting for more operations starts once none has arrived for this long... */
const QUIET_MS = 1000;
/** ...and at the latest this long after the running sync ended, even with writes still in flight. */
const GATHER_MS = 4000;

const slots = new Map<string, OrgSlot>();

function slotFor(primary: AgentClient, org: string): OrgSlot {
  const key = `${primary.endpoint} ${org}`;
  let slot = slots.get(key);
  if (!slot) {
    slot = { known: new OrgKnowledge(), writing: 0, operations: 0, peak: 0, lastArrival: 0, wake: [] };
    slots.set(key, slot);
  }
  return slot;
}

/** Forget what this process knew of an org (it was deleted or moved). */
export function forgetOrg(primary: AgentClient, org: string): void {
  slots.get(`${primary.endpoint} ${org}`)?.known.forget();
}

/** Resolves on the slot's next event (writes settled, an operation arrived), or after `ms`. */
function nextEvent(slot: OrgSlot, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    slot.wake.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function notify(slot: OrgSlot): void {
  for (const wake of slot.wake.splice(0)) wake();
}

/**
 * Until a queued sync may start: no write of this process to the org is in flight, and as many
 * operations wait for it as this process has seen at once (Pulumi's `--parallel`) or none arrived
 * for QUIET_MS; or, whatever is in flight, GATHER_MS passed. Pulumi starts the next operations one
 * at a time while it records the ones a sync just finished, so a sync started at once would serve
 * one or two of them; waiting for them all makes a burst of N operations cost about N / parallelism
 * syncs.
 */
async function gathered(slot: OrgSlot, queued: NonNullable<OrgSlot["queued"]>): Promise<void> {
  const deadline = Date.now() + GATHER_MS;
  for (;;) {
    const now = Date.now();
    if (now >= deadline) return;
    const quietEnd = slot.lastArrival + QUIET_MS;
    if (slot.writing === 0 && (queued.callers >= slot.peak || now >= quietEnd)) return;
    await nextEvent(slot, (slot.writing > 0 ? deadline : Math.min(deadline, quietEnd)) - now);
  }
}

/**
 * Requests a sync that includes every change already committed on the primary. If a sync is
 * running it may have started before the caller's change, so the caller joins the one queued
 * behind it (one queued sync serves every caller that arrives meanwhile). A queued sync starts
 * once the running one ended and the operations under way have joined it (see `gathered`), so a
 * burst of writes shares few syncs.
 */
export function requestSync(
  primary: AgentClient,
  org: string,
  clientFor: ClientFactory,
  options: SyncOptions = {},
): Promise<SyncReport> {
  const slot = slotFor(primary, org);
  if (options.write) slot.known.noteWrite(options.write);
  let queued = slot.queued;
  if (!queued) {
    const next: NonNullable<OrgSlot["queued"]> = {
      full: false,
      needsStatus: false,
      callers: 0,
      promise: Promise.resolve() as never,
    };
    next.promise = (async () => {
      await slot.running?.catch(() => undefined);
      await gathered(slot, next);
      slot.queued = undefined;
      const known = next.needsStatus ? undefined : slot.known;
      const run = syncOrg(primary, org, clientFor, { ...options, full: next.full }, known);
      slot.running = run;
      try {
        return await run;
      } finally {
        if (slot.running === run) slot.running = undefined;
      }
    })();
    slot.queued = queued = next;
  }
  queued.callers++;
  queued.full ||= options.full ?? false;
  queued.needsStatus ||= !options.write || (options.full ?? false);
  return queued.promise;
}

/**
 * Runs a write on the primary, then requests the sync that includes it (with the write's answer,
 * so the sync needs no request to the primary). While the write is in flight (include in `write`
 * everything the operation does on the primary), a queued sync of the org waits for it, so the
 * operations Pulumi runs at once share a sync.
 */
export async function writeThenSync(
  primary: AgentClient,
  org: string,
  clientFor: ClientFactory,
  write: () => Promise<WriteAnswer | undefined>,
  options: SyncOptions = {},
): Promise<SyncReport> {
  const slot = slotFor(primary, org);
  slot.writing++;
  slot.operations++;
  slot.peak = Math.max(slot.peak, slot.operations);
  slot.lastArrival = Date.now();
  notify(slot);
  try {
    let answer: WriteAnswer | undefined;
    try {
      answer = await write();
    } finally {
      slot.writing--;
      if (slot.writing === 0) notify(slot);
    }
    return await requestSync(primary, org, clientFor, { ...options, write: answer });
  } finally {
    slot.operations--;
  }
}

/** Writes a sync line to Pulumi's log (the provider's output) and, if set, to $LBHOSTING_SYNC_LOG. */
export function syncLogger(line: string): void {
  console.log(`lbhosting: ${line}`);
  const file = process.env.LBHOSTING_SYNC_LOG;
  if (file) fs.appendFileSync(file, JSON.stringify({ at: new Date().toISOString(), line }) + "\n");
}
