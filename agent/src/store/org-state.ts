/** An org as a node holds it: no SQLite here, so the domain rules can use the type without the store. */
import type { OrgRecord } from "../../../wire";

export type Role = "primary" | "secondary";

/** An org as this node holds it: the replicated record plus node-local replication state. */
export interface OrgState {
  record: OrgRecord;
  role: Role;
  /** Secondary copies: the primary's endpoint. */
  primary: string | null;
  generation: number;
  digest: string;
  /**
   * Raised by each promotion (failover, move). A copy refuses replication from a primary at a
   * lower epoch, so a former primary that comes back cannot overwrite what the new one serves.
   */
  epoch: number;
  /** The lowest N for which `changes?since=N` can still be answered from the log. */
  logFloor: number;
  /** Secondary copies: the digest the last sync left; differs from `digest` after a forced edit. */
  syncedDigest: string | null;
  lastSyncedAt: string | null;
  /**
   * The org's Unix id on this node (domain/unix-ids.ts): its record's, or for a copy of a primary
   * older than ids, one allocated here. Undefined only before the start assigns it.
   */
  unixId?: number;
}
