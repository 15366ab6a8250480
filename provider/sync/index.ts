/**
 * The secondary-sync hook: brings every active secondary of an organization to its primary's
 * generation, then verifies digests. Used by the resource providers after each primary mutation
 * (through a Scheduler, which coalesces) and by `lbhosting sync` (`syncOrg` directly).
 *
 *   classify   where a copy stands against its primary (pure)
 *   inspect    reading secondaries without changing them
 *   knowledge  what a process remembers of an org between syncs
 *   transfer   one sync: delta or snapshot, then verification
 *   scheduler  coalescing the syncs of concurrent operations (injected clock)
 *   named      which secondaries the stack names (only those are contacted)
 *   report     the sync report and SyncError
 */
export { classify, refusal } from "./classify";
export { splitNamed, unexpectedSecondaryLine, type EndpointFilter } from "./named";
export { inspectOrg, inspectSecondary, toSyncStatus } from "./inspect";
export { OrgKnowledge } from "./knowledge";
export { SyncError, syncCommand, type SyncReport } from "./report";
export { Scheduler, type Clock, type SyncRunner } from "./scheduler";
export { syncOrg, type ReplicationClient } from "./transfer";
