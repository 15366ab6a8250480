/**
 * SyncCheck: records where an organization stands once the members it waits for are done — the
 * primary's generation, digest and epoch, and where each active secondary stands (the "initiate
 * synchronization" status). It changes nothing on any node: every operation reads the live org.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { SecondarySyncStatus } from "../sdk/outputs";
import { syncCheckInputsSchema, type OrgRef, type SyncCheckInputs } from "../sdk/inputs";
import { AgentUnreachableError, unlessNotFound } from "./client";
import { clientFor, credentials } from "./context";
import { canonical, containsUnknown, differs, inputsOf } from "./inputs";
import { checkMember } from "./members";
import { inspectSecondary, toSyncStatus, type OrgReader, type SecondaryInspection } from "./sync/inspect";
import { splitNamed, type EndpointFilter } from "./sync/named";
import { activeSecondaries, type OrgStatus } from "../wire";

/** What the check records of the live org. */
export interface SyncRecord {
  generation: number;
  digest: string;
  epoch: number;
  /** One entry per active secondary, as the org's `syncStatus`. */
  syncStatus: SecondarySyncStatus[];
  inSync: boolean;
}

export type SyncCheckOutputs = SyncCheckInputs & SyncRecord;

/** The record of an org as its primary and secondaries were read. */
function recordOf(inspection: { primary: OrgStatus; secondaries: SecondaryInspection[] }): SyncRecord {
  const syncStatus = inspection.secondaries.map(toSyncStatus);
  return {
    generation: inspection.primary.generation,
    digest: inspection.primary.digest,
    epoch: inspection.primary.epoch,
    syncStatus,
    inSync: syncStatus.every((secondary) => secondary.state === "in-sync"),
  };
}

/**
 * What a record says, without the wording of errors (an unreachable node's message may name a
 * different timeout each time; its state is what counts), secondaries in endpoint order.
 */
function comparable(record: Partial<SyncRecord>) {
  const secondaries = (record.syncStatus ?? [])
    .map(({ endpoint, state, generation, digest, lastSyncedAt }) => ({
      endpoint,
      state,
      generation,
      digest,
      lastSyncedAt,
    }))
    .sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  return {
    generation: record.generation,
    digest: record.digest,
    epoch: record.epoch,
    inSync: record.inSync,
    secondaries,
  };
}

/** Whether the live record differs from the stored one. */
export const recordChanged = (stored: Partial<SyncRecord>, live: SyncRecord): boolean =>
  canonical(comparable(stored)) !== canonical(comparable(live));

/** One line saying what moved between the stored record and the live one (for the CLI's output). */
export function describeChange(stored: Partial<SyncRecord>, live: SyncRecord): string {
  const parts: string[] = [];
  if (stored.generation !== live.generation)
    parts.push(`generation ${stored.generation ?? "none"} → ${live.generation}`);
  if (stored.digest !== live.digest) parts.push(`digest ${short(stored.digest)} → ${short(live.digest)}`);
  if (stored.epoch !== live.epoch) parts.push(`epoch ${stored.epoch ?? "none"} → ${live.epoch}`);
  const before = new Map((stored.syncStatus ?? []).map((secondary) => [secondary.endpoint, secondary]));
  for (const secondary of live.syncStatus) {
    const old = before.get(secondary.endpoint);
    if (!old) parts.push(`${secondary.endpoint} ${secondary.state}`);
    else if (old.state !== secondary.state) parts.push(`${secondary.endpoint} ${old.state} → ${secondary.state}`);
    else if (old.generation !== secondary.generation) {
      parts.push(`${secondary.endpoint} at generation ${old.generation} → ${secondary.generation}`);
    }
    before.delete(secondary.endpoint);
  }
  for (const endpoint of before.keys()) parts.push(`${endpoint} no longer active`);
  return parts.length > 0 ? parts.join(", ") : "secondaries synchronized again";
}

const short = (digest: string | undefined) => (digest ? digest.slice(0, 12) : "none");

/**
 * Reads the org on its primary and every active secondary. An unreachable secondary is recorded
 * as such; a primary that cannot be read fails, naming it. Undefined when the primary does not
 * hold the org.
 */
export async function observe(
  ref: Pick<OrgRef, "name" | "primary">,
  clients: (endpoint: string) => OrgReader = clientFor,
  isNamed?: EndpointFilter,
): Promise<SyncRecord | undefined> {
  const primary = clients(ref.primary);
  let status: OrgStatus | undefined;
  try {
    status = await unlessNotFound(primary.getOrg(ref.name));
  } catch (error) {
    const why =
      error instanceof AgentUnreachableError
        ? `is unreachable: ${error.reason}`
        : `could not be read: ${(error as Error).message}`;
    throw new Error(`SyncCheck of organization ${ref.name}: its primary ${primary.endpoint} ${why}`);
  }
  if (!status) return undefined;
  if (status.role !== "primary") {
    throw new Error(
      `SyncCheck of organization ${ref.name}: ${primary.endpoint} holds a secondary copy of it, not the primary ` +
        `(its primary is ${status.primary ?? "unknown"})`,
    );
  }
  const head = status;
  // Only the secondaries the stack names are read (sync/named.ts); the org resource reports the others.
  const { named } = splitNamed(activeSecondaries(head), isNamed);
  const secondaries = await Promise.all(named.map((endpoint) => inspectSecondary(clients(endpoint), ref.name, head)));
  return recordOf({ primary: head, secondaries });
}

/** The record of an org that must exist (create and update). */
async function observeExisting(ref: OrgRef): Promise<SyncRecord> {
  const record = await observe(ref, clientFor, credentials.isNamed);
  if (!record)
    throw new Error(`SyncCheck of organization ${ref.name}: it does not exist on its primary ${ref.primary}`);
  return record;
}

/**
 * Whether the check changes, and why when only the live org says so: when what it would record
 * now differs from what it holds (members changed the org, a secondary fell behind, drifted or
 * became unreachable). An org or member list still unknown (preview) or changed is a change; so
 * is a primary that cannot be read (the update then fails, naming it).
 */
export async function changeOf(
  olds: SyncCheckOutputs,
  news: SyncCheckInputs,
  read: (ref: OrgRef) => Promise<SyncRecord | undefined>,
): Promise<{ changes: boolean; note?: string }> {
  if (containsUnknown(news) || differs(olds.organization, news.organization) || differs(olds.after, news.after)) {
    return { changes: true };
  }
  let live: SyncRecord | undefined;
  try {
    live = await read(news.organization);
  } catch (error) {
    return { changes: true, note: (error as Error).message };
  }
  const what = `SyncCheck of organization ${news.organization.name}`;
  if (!live) return { changes: true, note: `${what}: it does not exist on ${news.organization.primary}` };
  return recordChanged(olds, live)
    ? { changes: true, note: `${what}: ${describeChange(olds, live)}` }
    : { changes: false };
}

/** The secondaries a check recorded were named when it read them: a refresh may read them again. */
const nameRecorded = (state: Partial<SyncCheckOutputs>): void =>
  credentials.name((state.syncStatus ?? []).map((secondary) => secondary.endpoint));

export const syncCheckProvider: pulumi.dynamic.ResourceProvider = {
  async configure(request) {
    credentials.configure(request.config);
  },

  async check(_olds, news) {
    return checkMember(syncCheckInputsSchema, news);
  },

  async diff(_id, olds: SyncCheckOutputs, news: SyncCheckInputs) {
    nameRecorded(olds);
    const { changes, note } = await changeOf(olds, news, (ref) => observe(ref, clientFor, credentials.isNamed));
    // The engine shows no reason for a change only the live org asks for: say it (stdout reaches the CLI).
    if (note) console.log(`lbhosting: ${note}`);
    return { changes, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: SyncCheckInputs) {
    return { id: inputs.organization.name, outs: { ...inputs, ...(await observeExisting(inputs.organization)) } };
  },

  async update(_id, olds: SyncCheckOutputs, news: SyncCheckInputs) {
    nameRecorded(olds);
    return { outs: { ...news, ...(await observeExisting(news.organization)) } };
  },

  /** `pulumi refresh`: the live record, the stored inputs unchanged (the check has no settings to drift). */
  async read(id, props: SyncCheckOutputs) {
    nameRecorded(props);
    const inputs = inputsOf(syncCheckInputsSchema, props) as SyncCheckInputs;
    const record = await observe(props.organization, clientFor, credentials.isNamed);
    if (!record) return { id: "", props: {} };
    return { id, props: { ...inputs, ...record }, inputs };
  },

  /** The check holds nothing on any node. */
  async delete() {},
};
