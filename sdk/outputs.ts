/**
 * The shapes of the resources' outputs that are not plain values: where each secondary stands,
 * and the former primaries an org still has to fence.
 */

/** Where one secondary stands against its primary. */
export type SecondaryState = "in-sync" | "behind" | "drifted" | "missing" | "unreachable";

export interface SecondarySyncStatus {
  endpoint: string;
  state: SecondaryState;
  generation: number;
  digest: string;
  lastSyncedAt: string;
  error?: string;
}

/**
 * A former primary of an org (before a failover or move) that may still hold it: kept in the
 * org's outputs until it is fenced — its org removed, or demoted into a copy of the new primary.
 * `unreachable`: not answering (it may come back still believing it is the primary);
 * `stale-primary`: it holds the org as primary at a lower epoch (secondaries refuse its replication);
 * `stale-copy`: it holds a copy the org no longer lists.
 */
export interface FencingStatus {
  endpoint: string;
  state: "unreachable" | "stale-primary" | "stale-copy";
  /** The epoch and generation it holds the org at, when it answered. */
  epoch?: number;
  generation?: number;
  error?: string;
}
