/**
 * Coalescing: operations on the same org share syncs, but none returns before a sync that started
 * after its own change has finished. A Scheduler holds what it knows per org (OrgKnowledge) and
 * its waits run on an injected clock, so a test makes its own and drives time itself.
 */
import type { WriteAnswer } from "../../wire/write-answer";
import { OrgKnowledge } from "./knowledge";
import type { SyncOptions, SyncReport } from "./report";
import { syncOrg, type ReplicationClient, type ReplicationClientFactory } from "./transfer";

/** Time as the scheduler sees it. */
export interface Clock {
  now(): number;
  /** Calls `wake` after `ms`; returns a function that cancels it. */
  after(ms: number, wake: () => void): () => void;
}

const systemClock: Clock = {
  now: () => Date.now(),
  after: (ms, wake) => {
    const timer = setTimeout(wake, ms);
    return () => clearTimeout(timer);
  },
};

/** A queued sync waiting for more operations starts once none has arrived for this long... */
const QUIET_MS = 1000;
/** ...and at the latest this long after the running sync ended, even with writes still in flight. */
const GATHER_MS = 4000;

interface QueuedSync {
  promise: Promise<SyncReport>;
  full: boolean;
  needsStatus: boolean;
  callers: number;
}

interface OrgSlot {
  running?: Promise<SyncReport>;
  queued?: QueuedSync;
  known: OrgKnowledge;
  /** Writes to the org in flight in this process: a queued sync waits for them to join (briefly). */
  writing: number;
  /** Operations between their write and the end of their sync (see `writeThenSync`), and their peak. */
  operations: number;
  peak: number;
  /** When the latest operation began its write. */
  lastArrival: number;
  /** Woken when writes in flight settle or a new operation arrives. */
  wake: Array<() => void>;
}

/** What a scheduled sync runs; `syncOrg` unless a test gives another. */
export type SyncRunner = typeof syncOrg;

export class Scheduler {
  private readonly slots = new Map<string, OrgSlot>();
  private readonly clock: Clock;
  private readonly run: SyncRunner;

  constructor(options: { clock?: Clock; run?: SyncRunner } = {}) {
    this.clock = options.clock ?? systemClock;
    this.run = options.run ?? syncOrg;
  }

  /** Forget what this scheduler knew of an org (it was deleted or moved). */
  forget(primary: ReplicationClient, org: string): void {
    this.slots.get(slotKey(primary, org))?.known.forget();
  }

  /**
   * Requests a sync that includes every change already committed on the primary. If a sync is
   * running it may have started before the caller's change, so the caller joins the one queued
   * behind it (one queued sync serves every caller that arrives meanwhile). A queued sync starts
   * once the running one ended and the operations under way have joined it (see `gathered`), so a
   * burst of writes shares few syncs.
   */
  requestSync(
    primary: ReplicationClient,
    org: string,
    clientFor: ReplicationClientFactory,
    options: SyncOptions = {},
  ): Promise<SyncReport> {
    const slot = this.slotFor(primary, org);
    if (options.write) slot.known.noteWrite(options.write);
    let queued = slot.queued;
    if (!queued) {
      const next: QueuedSync = { full: false, needsStatus: false, callers: 0, promise: Promise.resolve() as never };
      next.promise = (async () => {
        await slot.running?.catch(() => undefined);
        await this.gathered(slot, next);
        slot.queued = undefined;
        const known = next.needsStatus ? undefined : slot.known;
        const run = this.run(primary, org, clientFor, { ...options, full: next.full }, known);
        slot.running = run;
        try {
          return await run;
        } finally {
          if (slot.running === run) slot.running = undefined;
        }
      })();
      slot.queued = queued = next;
    }
    queued.callers++;
    queued.full ||= options.full ?? false;
    queued.needsStatus ||= !options.write || (options.full ?? false);
    return queued.promise;
  }

  /**
   * Runs a write on the primary, then requests the sync that includes it (with the write's answer,
   * so the sync needs no request to the primary). While the write is in flight (include in `write`
   * everything the operation does on the primary), a queued sync of the org waits for it, so the
   * operations Pulumi runs at once share a sync.
   */
  async writeThenSync(
    primary: ReplicationClient,
    org: string,
    clientFor: ReplicationClientFactory,
    write: () => Promise<WriteAnswer | undefined>,
    options: SyncOptions = {},
  ): Promise<SyncReport> {
    const slot = this.slotFor(primary, org);
    slot.writing++;
    slot.operations++;
    slot.peak = Math.max(slot.peak, slot.operations);
    slot.lastArrival = this.clock.now();
    notify(slot);
    try {
      let answer: WriteAnswer | undefined;
      try {
        answer = await write();
      } finally {
        slot.writing--;
        if (slot.writing === 0) notify(slot);
      }
      return await this.requestSync(primary, org, clientFor, { ...options, write: answer });
    } finally {
      slot.operations--;
    }
  }

  private slotFor(primary: ReplicationClient, org: string): OrgSlot {
    const key = slotKey(primary, org);
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { known: new OrgKnowledge(), writing: 0, operations: 0, peak: 0, lastArrival: 0, wake: [] };
      this.slots.set(key, slot);
    }
    return slot;
  }

  /**
   * Until a queued sync may start: no write of this process to the org is in flight, and as many
   * operations wait for it as this process has seen at once (Pulumi's `--parallel`) or none
   * arrived for QUIET_MS; or, whatever is in flight, GATHER_MS passed. Pulumi starts the next
   * operations one at a time while it records the ones a sync just finished, so a sync started at
   * once would serve one or two of them; waiting for them all makes a burst of N operations cost
   * about N / parallelism syncs.
   */
  private async gathered(slot: OrgSlot, queued: QueuedSync): Promise<void> {
    const deadline = this.clock.now() + GATHER_MS;
    for (;;) {
      const now = this.clock.now();
      if (now >= deadline) return;
      const quietEnd = slot.lastArrival + QUIET_MS;
      if (slot.writing === 0 && (queued.callers >= slot.peak || now >= quietEnd)) return;
      await this.nextEvent(slot, (slot.writing > 0 ? deadline : Math.min(deadline, quietEnd)) - now);
    }
  }

  /** Resolves on the slot's next event (writes settled, an operation arrived), or after `ms`. */
  private nextEvent(slot: OrgSlot, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.clock.after(Math.max(0, ms), resolve);
      slot.wake.push(() => {
        cancel();
        resolve();
      });
    });
  }
}

const slotKey = (primary: ReplicationClient, org: string) => `${primary.endpoint} ${org}`;

function notify(slot: OrgSlot): void {
  for (const wake of slot.wake.splice(0)) wake();
}
