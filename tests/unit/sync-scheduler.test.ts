/** Coalescing with a clock the test drives: which operations share a sync, and when it starts. */
import { expect } from "chai";
import { Scheduler, type Clock, type SyncReport, type SyncRunner } from "../../provider/sync";
import { FakeNode, ORG, digestAt, orgStatus } from "../support/fake-nodes";

/** Time stands still until the test moves it. */
class ManualClock implements Clock {
  private time = 0;
  private timers: Array<{ at: number; wake: () => void }> = [];
  now(): number {
    return this.time;
  }
  after(ms: number, wake: () => void): () => void {
    const timer = { at: this.time + ms, wake };
    this.timers.push(timer);
    return () => (this.timers = this.timers.filter((entry) => entry !== timer));
  }
  async advance(ms: number): Promise<void> {
    this.time += ms;
    for (const timer of this.timers.filter((entry) => entry.at <= this.time)) {
      this.timers = this.timers.filter((entry) => entry !== timer);
      timer.wake();
    }
    await settle();
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const report = (): SyncReport => ({
  org: ORG,
  primary: "http://primary",
  generation: 1,
  digest: digestAt(1),
  epoch: 0,
  secondaries: [],
  inSync: true,
});
const answer = (generation: number) => ({
  generation,
  digest: digestAt(generation),
  changed: true,
  epoch: 0,
  secondaries: [],
});

describe("sync scheduler", function () {
  const primary = new FakeNode("http://primary");
  const clientFor = () => primary;

  function counting() {
    const runs: Array<{ known: boolean; full: boolean }> = [];
    const run: SyncRunner = async (_primary, _org, _clientFor, options, known) => {
      runs.push({ known: known !== undefined, full: options?.full ?? false });
      return report();
    };
    return { runs, run };
  }

  it("runs one sync for requests that arrive before it starts", async function () {
    const clock = new ManualClock();
    const { runs, run } = counting();
    const scheduler = new Scheduler({ clock, run });
    const all = Promise.all([1, 2, 3].map(() => scheduler.requestSync(primary, ORG, clientFor)));
    await settle();
    expect((await all).length).to.equal(3);
    expect(runs).to.deep.equal([{ known: false, full: false }]);
  });

  it("holds a queued sync while a write is in flight, until the write settles or GATHER_MS passes", async function () {
    const clock = new ManualClock();
    const { runs, run } = counting();
    const scheduler = new Scheduler({ clock, run });
    let finish: () => void = () => undefined;
    const slow = scheduler.writeThenSync(
      primary,
      ORG,
      clientFor,
      () => new Promise((resolve) => (finish = () => resolve(answer(2)))),
    );
    const fast = scheduler.writeThenSync(primary, ORG, clientFor, async () => answer(1));
    await settle();
    expect(runs).to.have.length(0);
    await clock.advance(3999);
    expect(runs).to.have.length(0);
    await clock.advance(1);
    expect(runs).to.have.length(1);
    await fast;
    finish();
    await clock.advance(1000);
    await slow;
    expect(runs).to.have.length(2);
    expect(runs.every((entry) => entry.known)).to.equal(true);
  });

  it("keeps what it knows per scheduler: another scheduler, or forget, starts from nothing", async function () {
    const copies: number[] = [];
    const run: SyncRunner = async (_primary, _org, _clientFor, _options, known) => {
      copies.push(known?.copies.size ?? -1);
      known?.copies.set("http://a", orgStatus());
      return report();
    };
    const scheduler = new Scheduler({ clock: new ManualClock(), run });
    await scheduler.writeThenSync(primary, ORG, clientFor, async () => answer(1));
    await scheduler.writeThenSync(primary, ORG, clientFor, async () => answer(2));
    await new Scheduler({ clock: new ManualClock(), run }).writeThenSync(primary, ORG, clientFor, async () =>
      answer(3),
    );
    scheduler.forget(primary, ORG);
    await scheduler.writeThenSync(primary, ORG, clientFor, async () => answer(4));
    expect(copies).to.deep.equal([0, 1, 0, 0]);
  });
});
