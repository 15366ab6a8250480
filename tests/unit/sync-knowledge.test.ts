/** What a provider process remembers between syncs, and the write answer it learns it from. */
import { expect } from "chai";
import { WRITE_HEADERS, encodeChange, writeAnswerFromHeaders } from "../../wire/write-answer";
import { OrgKnowledge } from "../../provider/sync";
import { digestAt as DIGEST, userChange } from "../support/fake-nodes";

describe("sync knowledge from write answers", function () {
  it("reads the write headers, and ignores a change later than the answer's generation", function () {
    const headers = (values: Record<string, string>) => ({ get: (name: string) => values[name] ?? null });
    const answer = writeAnswerFromHeaders(
      headers({
        [WRITE_HEADERS.generation]: "7",
        [WRITE_HEADERS.digest]: DIGEST(7),
        [WRITE_HEADERS.changed]: "true",
        [WRITE_HEADERS.epoch]: "3",
        [WRITE_HEADERS.secondaries]: "http://127.0.20.2:80/,http://127.0.20.3:81",
        [WRITE_HEADERS.change]: encodeChange(userChange(6)) as string,
      }),
    );
    expect(answer).to.deep.equal({
      generation: 7,
      digest: DIGEST(7),
      changed: true,
      epoch: 3,
      secondaries: ["http://127.0.20.2", "http://127.0.20.3:81"],
      change: userChange(6),
    });
    const future = writeAnswerFromHeaders(
      headers({
        [WRITE_HEADERS.generation]: "7",
        [WRITE_HEADERS.digest]: DIGEST(7),
        [WRITE_HEADERS.changed]: "true",
        [WRITE_HEADERS.change]: encodeChange(userChange(8)) as string,
      }),
    );
    // No epoch header (an agent from before epochs): epoch 0.
    expect(future).to.deep.equal({ generation: 7, digest: DIGEST(7), changed: true, epoch: 0 });
    expect(writeAnswerFromHeaders(headers({ [WRITE_HEADERS.generation]: "7" }))).to.equal(undefined);
  });

  it("leaves out a change too big for a header (the sync then reads the change log)", function () {
    const big = userChange(3);
    big.user.access = Array.from({ length: 400 }, (_, i) => `service-${i}-with-a-long-name`);
    expect(encodeChange(big)).to.equal(undefined);
    expect(encodeChange(userChange(3))).to.be.a("string");
  });

  it("keeps the latest head, and gives the changes between two generations only when it has all of them", function () {
    const known = new OrgKnowledge();
    for (const generation of [5, 3, 4]) {
      known.noteWrite({
        generation,
        digest: DIGEST(generation),
        changed: true,
        epoch: 0,
        secondaries: ["http://s:1"],
        change: userChange(generation),
      });
    }
    expect(known.head).to.deep.equal({ generation: 5, digest: DIGEST(5), epoch: 0 });
    expect(known.guessBase()).to.equal(2);
    expect(known.changesBetween(2, 5)?.map((change) => change.generation)).to.deep.equal([3, 4, 5]);
    expect(known.changesBetween(1, 5)).to.equal(undefined);
  });

  it("forgets everything when the same generation comes with another digest (the org was recreated)", function () {
    const known = new OrgKnowledge();
    known.noteWrite({
      generation: 2,
      digest: DIGEST(2),
      changed: true,
      epoch: 0,
      secondaries: [],
      change: userChange(2),
    });
    known.copies.set("http://s:1", {} as never);
    known.noteWrite({ generation: 2, digest: DIGEST(99), changed: true, epoch: 0, secondaries: [] });
    expect(known.head).to.deep.equal({ generation: 2, digest: DIGEST(99), epoch: 0 });
    expect(known.changes.size).to.equal(0);
    expect(known.copies.size).to.equal(0);
  });

  it("forgets everything when the epoch changes (another node became the primary)", function () {
    const known = new OrgKnowledge();
    const write = { generation: 4, digest: DIGEST(4), changed: true, secondaries: [], change: userChange(4) };
    known.noteWrite({ ...write, epoch: 0 });
    known.copies.set("http://s:1", {} as never);
    known.noteWrite({ ...write, generation: 5, digest: DIGEST(5), change: userChange(5), epoch: 1 });
    expect(known.head).to.deep.equal({ generation: 5, digest: DIGEST(5), epoch: 1 });
    expect([...known.changes.keys()]).to.deep.equal([5]);
    expect(known.copies.size).to.equal(0);
  });

  it("prunes the changes every active secondary holds", function () {
    const known = new OrgKnowledge();
    for (const generation of [1, 2, 3]) {
      known.noteWrite({
        generation,
        digest: DIGEST(generation),
        changed: true,
        epoch: 0,
        secondaries: [],
        change: userChange(generation),
      });
    }
    known.copies.set("http://a:1", { generation: 2 } as never);
    known.copies.set("http://b:1", { generation: 3 } as never);
    known.prune(["http://a:1", "http://b:1"]);
    expect([...known.changes.keys()]).to.deep.equal([3]);
  });
});
