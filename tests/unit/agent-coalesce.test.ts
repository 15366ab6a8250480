/** The agent's group-commit helper: shared runs, and no caller resolved by a run that began before it. */
import { expect } from "chai";
import { Coalescer } from "../../agent/src/pipeline/coalesce";

describe("agent Coalescer (group commit of after-commit work)", function () {
  /** A task that records each run's keys and finishes when told to. */
  function recordingTask() {
    const runs: string[][] = [];
    const finish: Array<() => void> = [];
    const task = (keys: Set<string>) =>
      new Promise<void>((resolve) => {
        runs.push([...keys].sort());
        finish.push(resolve);
      });
    return { runs, finish, task };
  }
  /** Let queued runs start: a few event-loop turns. */
  const turn = async () => {
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  };

  it("serves every caller of the same turn with one run that sees all their keys", async function () {
    const { runs, finish, task } = recordingTask();
    const coalescer = new Coalescer(task);
    const done = [coalescer.request(["a"]), coalescer.request(["b"]), coalescer.request()];
    await turn();
    expect(runs).to.deep.equal([["a", "b"]]);
    finish[0]();
    await Promise.all(done);
  });

  it("makes a caller arriving during a run wait for the next run, which callers share", async function () {
    const { runs, finish, task } = recordingTask();
    const coalescer = new Coalescer(task);
    let firstDone = false;
    let laterDone = false;
    const first = coalescer.request(["a"]).then(() => (firstDone = true));
    await turn();
    const later = [coalescer.request(["b"]), coalescer.request(["c"])];
    void Promise.all(later).then(() => (laterDone = true));
    finish[0]();
    await first;
    expect(firstDone).to.equal(true);
    await turn();
    await turn();
    expect(laterDone, "resolved by a run that began before them").to.equal(false);
    expect(runs).to.deep.equal([["a"], ["b", "c"]]);
    finish[1]();
    await Promise.all(later);
  });

  it("with overlap, starts the next run while one is still running", async function () {
    const { runs, finish, task } = recordingTask();
    const coalescer = new Coalescer(task, { overlap: true });
    const first = coalescer.request(["a"]);
    await turn();
    const second = coalescer.request(["b"]);
    await turn();
    await turn();
    expect(runs).to.deep.equal([["a"], ["b"]]);
    finish[1]();
    await second;
    finish[0]();
    await first;
  });

  it("passes a run's failure to its callers, and the next run still happens", async function () {
    let calls = 0;
    const coalescer = new Coalescer(async () => {
      calls++;
      if (calls === 1) throw new Error("disk full");
    });
    let failure: unknown;
    await coalescer.request().catch((error: unknown) => (failure = error));
    expect(String(failure)).to.include("disk full");
    await coalescer.request();
    expect(calls).to.equal(2);
  });
});
