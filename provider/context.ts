/**
 * The provider process's composition root: its one credentials store (and so its clients), sync
 * scheduler and snapshot reader, and where its sync lines go. The resource providers use these;
 * a test builds its own objects instead.
 */
import type { ClientFactory } from "./client";
import { Credentials } from "./credentials";
import { SnapshotReader } from "./snapshot-reader";
import { Scheduler } from "./sync";
import { syncLogger } from "./sync-log";

export const credentials = new Credentials();
export const clientFor: ClientFactory = (endpoint) => credentials.clientFor(endpoint);
export const scheduler = new Scheduler();
export const snapshots = new SnapshotReader(clientFor);
/** Sync lines go to Pulumi's log and, if set, to $LBHOSTING_SYNC_LOG (read at each line, as tests set it late). */
export const syncLog = syncLogger(() => process.env.LBHOSTING_SYNC_LOG);
