import { expect } from "chai";
import { setTimeout as sleep } from "node:timers/promises";
import { mapBounded } from "../../agent/src/pipeline/bounded";

describe("agent: mapBounded", () => {
  it("runs every item, at most `limit` at a time, and keeps the items' order", async () => {
    let running = 0;
    let most = 0;
    const items = Array.from({ length: 50 }, (_, index) => index);
    const results = await mapBounded(items, 4, async (item) => {
      running++;
      most = Math.max(most, running);
      await sleep(item % 3); // finishing out of order
      running--;
      return item * 2;
    });
    expect(results).to.deep.equal(items.map((item) => item * 2));
    expect(most).to.equal(4);
  });

  it("returns nothing for no items and fails with the first failure", async () => {
    expect(await mapBounded([], 4, async () => 1)).to.deep.equal([]);
    const failure = await mapBounded([1, 2, 3], 2, async (item) => {
      if (item === 2) throw new Error("item 2");
      return item;
    }).then(
      () => "resolved",
      (error: Error) => error.message,
    );
    expect(failure).to.equal("item 2");
  });
});
