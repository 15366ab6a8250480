/**
 * The provider process's composition root: its one credentials store (and so its clients), sync
 * scheduler and snapshot reader, and where its sync lines go. The resource providers use these;
 * a test builds its own objects instead.
 */
import type { ClientFactory } from "./client";
import { Credentials } from "./credentials";
import { EndpointHealth } from "./endpoint-health";
import { SnapshotReader } from "./snapshot-reader";
import { Scheduler } from "./sync";
import { syncLogger } from "./sync-log";

/** Sync lines go to Pulumi's log and, if set, to $LBHOSTING_SYNC_LOG (read at each line, as tests set it late). */
export const syncLog = syncLogger(() => process.env.LBHOSTING_SYNC_LOG);
/** One line per silent endpoint per run, before the errors of the resources it fails. */
const health = new EndpointHealth({
  onSilent: (endpoint, reason) => syncLog(`${endpoint} is unreachable: ${reason}; its other operations fail at once`),
});
export const credentials = new Credentials(undefined, health);
export const clientFor: ClientFactory = (endpoint) => credentials.clientFor(endpoint);
export const scheduler = new Scheduler();
export const snapshots = new SnapshotReader(clientFor);
