/**
 * Each org's Unix id N (uid = gid = N): its writable FTP accounts run as N and its content folder
 * is owned by N, so one org's sessions own nothing of another's. The primary allocates it when it
 * creates the org, from the node's `--org-id-range`, and it is part of the org's replicated record:
 * its copies use the primary's (the content lives on one NAS, so every node must agree on it).
 *
 * Allocation is deterministic from the org's name, N = START + (sha256(name) mod size), then the
 * next ids in turn (wrapping) past those another org holds on this node. So nodes that hold the
 * same orgs agree without asking each other: the id an older database gets at upgrade is, on
 * every node of the org, almost always the one its primary got.
 */
import { createHash } from "node:crypto";
import { ApiFailure } from "../errors";
import type { HostingStore } from "./ports";
import type { OrgState } from "../store/org-state";
import type { UnixIdRange } from "../../../wire";

/**
 * Above the ids Debian gives login users (1000–59999), nobody (65534) and systemd's dynamic users
 * (61184–65519), so an org never shares an id with an account of the node; 800,000 ids, so the
 * hashed first choice is rarely taken.
 */
export const DEFAULT_UNIX_ID_RANGE: UnixIdRange = { start: 200_000, end: 999_999 };

/** The org's first choice in the range: the same on every node with the same range. */
export function preferredUnixId(org: string, range: UnixIdRange): number {
  const size = BigInt(range.end - range.start + 1);
  const hash = BigInt(`0x${createHash("sha256").update(org, "utf8").digest("hex").slice(0, 16)}`);
  return range.start + Number(hash % size);
}

/**
 * The org's id: its first choice, or the next one in the range (wrapping) that no other org holds.
 * `holder(id)` names the org holding an id on this node. Throws 507 when the range is full.
 */
export function allocateUnixId(org: string, range: UnixIdRange, holder: (id: number) => string | undefined): number {
  const size = range.end - range.start + 1;
  const first = preferredUnixId(org, range) - range.start;
  for (let step = 0; step < size; step++) {
    const id = range.start + ((first + step) % size);
    const held = holder(id);
    if (held === undefined || held === org) return id;
  }
  throw new ApiFailure(
    507,
    "org_ids_exhausted",
    `every id of this node's --org-id-range ${range.start}-${range.end} is held by an organization`,
  );
}

/** A copy takes its primary's id only when no other org holds it here; the answer names the id, not the org. */
export function rejectUnixIdTaken(store: HostingStore, org: string, id: number, path: string): void {
  const held = store.orgWithUnixId(id);
  if (held === undefined || held === org) return;
  throw new ApiFailure(409, "org_id_taken", `Unix id ${id} is held by another organization on this node`, [
    { path, message: `Unix id ${id} is held by another organization on this node` },
  ]);
}

/**
 * On start: give every org stored without an id (a database from before ids) its id, written into
 * its record like a new org's. Its digest changes with the record; a copy that was in sync stays in
 * sync (its primary, upgraded, makes the same choice), so only where the choices differ does the
 * next sync send a snapshot, which brings the primary's id.
 */
export function assignMissingUnixIds(store: HostingStore, range: UnixIdRange): string[] {
  return store.transaction(() => {
    const assigned: string[] = [];
    for (const [name, id] of store.orgUnixIds()) {
      if (id !== undefined) continue;
      const state = store.getOrg(name) as OrgState;
      const unixId = allocateUnixId(name, range, (id) => store.orgWithUnixId(id));
      const inSync = state.syncedDigest === state.digest;
      const next: OrgState = { ...state, record: { ...state.record, unixId }, unixId };
      store.saveOrg(next);
      next.digest = store.computeDigest(name);
      if (inSync && state.syncedDigest !== null) next.syncedDigest = next.digest;
      store.saveOrg(next);
      assigned.push(name);
    }
    return assigned;
  });
}
