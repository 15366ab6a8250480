/**
 * What one provider process remembers of one org's replication between syncs (one object per org,
 * held by the scheduler that runs its syncs).
 */
import { activeSecondaries, type Change, type OrgStatus } from "../../wire";
import type { WriteAnswer } from "../../wire/write-answer";
import type { Head } from "./classify";

/** Bound on remembered change-log entries (a secondary further behind gets a snapshot). */
const MAX_KNOWN_CHANGES = 10_000;

/**
 * The primary's latest state and change-log entries from write answers, and each secondary's copy
 * as the last sync verified it. With it, a sync after a write needs no request to the primary and,
 * for an in-sync secondary, exactly one: the delta, whose answer is the copy's new status (the
 * verification).
 */
export class OrgKnowledge {
  head: Head | undefined;
  secondaries: string[] | undefined;
  readonly changes = new Map<number, Change>();
  readonly copies = new Map<string, OrgStatus>();

  /** A write answer from the primary. */
  noteWrite(answer: WriteAnswer): void {
    const head = this.head;
    // Another history: the org was recreated, or another node became its primary.
    if (
      head &&
      (head.epoch !== answer.epoch || (head.generation === answer.generation && head.digest !== answer.digest))
    ) {
      this.forget();
    }
    if (!this.head || answer.generation >= this.head.generation) {
      this.head = { generation: answer.generation, digest: answer.digest, epoch: answer.epoch };
      if (answer.secondaries) this.secondaries = answer.secondaries;
    }
    if (answer.change) this.changes.set(answer.change.generation, answer.change);
  }

  /** The primary's status, read by a sync that could not rely on write answers. */
  noteStatus(status: OrgStatus): void {
    if (this.head && this.head.epoch !== status.epoch) this.forget();
    if (!this.head || status.generation >= this.head.generation) {
      this.head = { generation: status.generation, digest: status.digest, epoch: status.epoch };
      this.secondaries = activeSecondaries(status);
    }
  }

  /** The entries (base, target], or undefined when any is unknown here. */
  changesBetween(base: number, target: number): Change[] | undefined {
    const list: Change[] = [];
    for (let generation = base + 1; generation <= target; generation++) {
      const change = this.changes.get(generation);
      if (!change) return undefined;
      list.push(change);
    }
    return list;
  }

  /** Where a secondary without a verified copy here presumably stands: before the first change seen. */
  guessBase(): number | undefined {
    return this.changes.size === 0 ? undefined : Math.min(...this.changes.keys()) - 1;
  }

  /** Drop entries every active secondary already holds (and keep the map bounded). */
  prune(active: string[]): void {
    const held = active.map((endpoint) => this.copies.get(endpoint)?.generation ?? -1);
    const floor = Math.min(...held);
    for (const generation of this.changes.keys()) {
      if (generation <= floor || this.changes.size > MAX_KNOWN_CHANGES) this.changes.delete(generation);
    }
  }

  forget(): void {
    this.head = undefined;
    this.secondaries = undefined;
    this.changes.clear();
    this.copies.clear();
  }
}
