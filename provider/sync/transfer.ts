/**
 * One sync of an org to all its active secondaries, no coalescing (see scheduler.ts): a delta when
 * a secondary is merely behind and undrifted, a full snapshot when it is drifted, missing, or the
 * primary's change log no longer reaches back; then each copy is verified against the primary.
 */
import { activeSecondaries, type OrgStatus, type Snapshot } from "../../wire";
import type { SecondarySyncStatus } from "../../sdk/outputs";
import { AgentError, AgentUnreachableError, type AgentClient } from "../client";
import { reasonOf } from "../agent-errors";
import { classify, headOf, type Head } from "./classify";
import { inspectSecondary, toSyncStatus, type SecondaryInspection } from "./inspect";
import { splitNamed } from "./named";
import type { OrgKnowledge } from "./knowledge";
import type { SyncOptions, SyncReport } from "./report";

/** What a sync needs of a client (a fake in unit tests). */
export type ReplicationClient = Pick<
  AgentClient,
  "endpoint" | "getOrg" | "snapshot" | "changesSince" | "putReplica" | "applyReplicaChanges"
>;
export type ReplicationClientFactory = (endpoint: string) => ReplicationClient;

/** One secondary's result, and why it is not in sync (without its endpoint). */
interface Outcome {
  status: SecondarySyncStatus;
  reason?: string;
}

type Transfer = { mode: "delta" | "snapshot"; changes: number; bytes: number; copy: OrgStatus };

/**
 * Runs one sync of an org to all its active secondaries. With `known` (write-driven syncs), the
 * primary's state and the changes come from write answers.
 */
export async function syncOrg(
  primary: ReplicationClient,
  org: string,
  clientFor: ReplicationClientFactory,
  options: SyncOptions = {},
  known?: OrgKnowledge,
): Promise<SyncReport> {
  const fast = !options.full && known?.head !== undefined && known.secondaries !== undefined;
  let target: Head;
  let listed: string[];
  if (fast && known?.head && known.secondaries) {
    target = { ...known.head };
    listed = known.secondaries;
  } else {
    const status = await primary.getOrg(org);
    known?.noteStatus(status);
    target = headOf(status);
    listed = activeSecondaries(status);
  }
  const { named: active, unexpected } = splitNamed(listed, options.isNamed);
  let snapshot: Promise<Snapshot> | undefined;
  const fetchSnapshot = () => (snapshot ??= primary.snapshot(org));
  const outcomes = await Promise.all(
    active.map((endpoint) =>
      syncSecondary(primary, clientFor(endpoint), org, target, fetchSnapshot, options, known, fast),
    ),
  );
  known?.prune(active);
  const secondaries = outcomes.map((outcome) => outcome.status);
  const generation = Math.max(target.generation, ...secondaries.map((secondary) => secondary.generation));
  const digest = secondaries.find((secondary) => secondary.generation === generation)?.digest ?? target.digest;
  const reasons = Object.fromEntries(
    outcomes.flatMap(({ status, reason }) => (reason && status.state !== "in-sync" ? [[status.endpoint, reason]] : [])),
  );
  return {
    org,
    primary: primary.endpoint,
    generation,
    digest,
    epoch: target.epoch,
    secondaries,
    inSync: secondaries.every((secondary) => secondary.state === "in-sync"),
    reasons,
    ...(unexpected.length > 0 ? { unexpected } : {}),
  };
}

async function syncSecondary(
  primary: ReplicationClient,
  secondary: ReplicationClient,
  org: string,
  target: Head,
  fetchSnapshot: () => Promise<Snapshot>,
  options: SyncOptions,
  known: OrgKnowledge | undefined,
  fast: boolean,
): Promise<Outcome> {
  const started = Date.now();
  const endpoint = secondary.endpoint;
  // What this secondary is brought to: the primary's state, or a later one a transfer carried.
  const goal = { ...target };
  const done = (transfer: Transfer): Outcome => {
    const state = classify(goal, transfer.copy);
    if (state !== "in-sync") {
      known?.copies.delete(endpoint);
      const error = `verification failed: the copy is ${state} after the sync`;
      return { status: toSyncStatus({ endpoint, state, copy: transfer.copy, error }), reason: error };
    }
    known?.copies.set(endpoint, transfer.copy);
    options.log?.(
      `sync ${org} → ${endpoint}: ${transfer.mode} ${transfer.changes} changes, ` +
        `${transfer.bytes} bytes, ${Date.now() - started} ms → generation ${transfer.copy.generation}`,
    );
    return { status: toSyncStatus({ endpoint, state, copy: transfer.copy }) };
  };

  // Fast path: the copy as this process last verified it (or a guess), and the changes from write answers.
  if (fast && known) {
    const copy = known.copies.get(endpoint);
    if (copy && classify(target, copy) === "in-sync") {
      options.log?.(`sync ${org} → ${endpoint}: in sync at generation ${target.generation}`);
      return { status: toSyncStatus({ endpoint, state: "in-sync", copy }) };
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
  if (before.state === "unreachable") return { status: toSyncStatus(before), reason: before.reason };
  if (before.state === "in-sync" && !options.full) {
    if (before.copy) known?.copies.set(endpoint, before.copy);
    options.log?.(`sync ${org} → ${endpoint}: in sync at generation ${target.generation}`);
    return { status: toSyncStatus(before) };
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

function failed(before: SecondaryInspection, error: unknown, known: OrgKnowledge | undefined): Outcome {
  known?.copies.delete(before.endpoint);
  const unreachable = error instanceof AgentUnreachableError;
  const status = toSyncStatus({
    ...before,
    state: unreachable ? "unreachable" : before.state,
    error: error instanceof Error ? error.message : String(error),
  });
  return { status, reason: reasonOf(error) };
}

/** Sends the changes after `base`; undefined when a snapshot is needed instead (410 or 409). */
async function tryDelta(
  primary: ReplicationClient,
  secondary: ReplicationClient,
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
    return { changes: page.changes.length, bytes: JSON.stringify(body).length, copy, target: headOf(page) };
  } catch (error) {
    if (error instanceof AgentError && (error.status === 410 || error.status === 409)) return undefined;
    throw error;
  }
}
