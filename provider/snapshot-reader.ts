/**
 * `pulumi refresh` reads every user and service of an org: one snapshot of the org serves them all
 * (one request instead of one per member). A snapshot is reused for READ_WINDOW_MS, and a write to
 * the org in this process drops it (`drop`), so a read never sees older than that window.
 */
import { normalizeEndpoint, type Snapshot } from "../wire";
import { unlessNotFound, type AgentClient } from "./client";

export const READ_WINDOW_MS = 2000;

export class SnapshotReader {
  private readonly snapshots = new Map<string, { at: number; snapshot: Promise<Snapshot | undefined> }>();

  constructor(
    private readonly clientFor: (endpoint: string) => Pick<AgentClient, "snapshot">,
    private readonly now: () => number = Date.now,
  ) {}

  /** What `pick` finds in the org's snapshot; undefined when it finds nothing or the primary holds no such org. */
  async read<T>(organization: { name: string; primary: string }, pick: (snapshot: Snapshot) => T | undefined) {
    const key = keyOf(organization.primary, organization.name);
    let entry = this.snapshots.get(key);
    if (!entry || this.now() - entry.at > READ_WINDOW_MS) {
      const snapshot = unlessNotFound(this.clientFor(organization.primary).snapshot(organization.name));
      this.snapshots.set(key, (entry = { at: this.now(), snapshot }));
      snapshot.catch(() => this.snapshots.delete(key));
    }
    const snapshot = await entry.snapshot;
    return snapshot && pick(snapshot);
  }

  /** Forget the org's snapshot: this process is about to change it. */
  drop(primary: string, org: string): void {
    this.snapshots.delete(keyOf(primary, org));
  }
}

const keyOf = (primary: string, org: string) => `${normalizeEndpoint(primary)} ${org}`;
