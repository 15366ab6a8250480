/**
 * The change log: on a primary every content change gets the next generation and an entry in the
 * org's log, kept to `limit` entries; a forced edit of a secondary copy changes content only.
 */
import type { Change } from "../../../wire";
import type { OrgState } from "../store/org-state";
import type { HostingStore, WriteQueue } from "./ports";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A change before it is given its generation. */
type ChangeBody = DistributiveOmit<Change, "generation">;

export class ChangeLog {
  constructor(
    private readonly store: HostingStore,
    private readonly queue: WriteQueue,
    /** How many entries to keep per org. */
    private readonly limit: number,
  ) {}

  /**
   * Inside a write, record a content change to an existing org: on a primary it bumps the
   * generation and appends to the log (the entry is returned); on a secondary copy (forced edit) it
   * changes only the content, which shows as drift.
   */
  record(state: OrgState, change: ChangeBody): Change | undefined {
    const org = state.record.name;
    let entry: Change | undefined;
    if (state.role === "primary") {
      const generation = state.generation + 1;
      entry = { ...change, generation } as Change;
      this.store.appendChange(org, entry);
      const logFloor = this.trim(org, generation, state.logFloor);
      // Users and services leave the org's record alone: move only its counters.
      if (change.type === "org.put") this.store.saveOrg({ ...state, generation, logFloor });
      else this.store.saveGeneration(org, generation, logFloor);
    } else if (change.type === "org.put") {
      this.store.saveOrg(state);
    }
    this.queue.contentChanged(org);
    return entry;
  }

  /**
   * Keep at least `limit` entries, trimming in steps of a sixteenth of it: one delete per step
   * rather than a delete (and a rewritten page) per write. Returns the new log floor.
   */
  trim(org: string, generation: number, floor: number): number {
    if (generation - floor <= this.limit + Math.floor(this.limit / 16)) return floor;
    const newFloor = generation - this.limit;
    this.store.trimChanges(org, newFloor);
    return newFloor;
  }
}
