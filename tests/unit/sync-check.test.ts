/**
 * SyncCheck's provider logic against in-memory nodes: what it records of the live org, and when
 * its diff reports a change (issue 24, defect 6; issue 26, item 3).
 */
import { expect } from "chai";
import {
  changeOf,
  describeChange,
  observe,
  recordChanged,
  type SyncCheckOutputs,
  type SyncRecord,
} from "../../provider/sync-check";
import { UNKNOWN_VALUE } from "../../sdk/inputs";
import { FakeNode, ORG, digestAt, factoryOf, orgStatus, primaryAt } from "../support/fake-nodes";

const REF = { name: ORG, primary: "http://primary" };

/** A primary at generation 5 with secondaries a (in sync) and b (behind at 3). */
function nodes() {
  const primary = primaryAt(5, ["http://a", "http://b"], 1);
  const a = new FakeNode("http://a", orgStatus({ generation: 5, digest: digestAt(5), epoch: 1, lastSyncedAt: "t5" }));
  const b = new FakeNode("http://b", orgStatus({ generation: 3, digest: digestAt(3), epoch: 1, lastSyncedAt: "t3" }));
  return { primary, a, b, clients: factoryOf(primary, a, b) };
}

const outputs = (record: SyncRecord, after = "2:0123456789abcdef"): SyncCheckOutputs => ({
  organization: REF,
  after,
  ...record,
});

describe("SyncCheck", function () {
  describe("observe: what the check records", function () {
    it("records the primary's generation, digest and epoch, and where each active secondary stands", async function () {
      const { clients } = nodes();
      const record = await observe(REF, clients);
      expect(record).to.deep.include({ generation: 5, digest: digestAt(5), epoch: 1, inSync: false });
      expect(
        record?.syncStatus.map(({ endpoint, state, generation }) => ({ endpoint, state, generation })),
      ).to.deep.equal([
        { endpoint: "http://a", state: "in-sync", generation: 5 },
        { endpoint: "http://b", state: "behind", generation: 3 },
      ]);
    });

    it("is in sync only when every active secondary is", async function () {
      const { b, clients } = nodes();
      b.status = { ...b.status!, generation: 5, digest: digestAt(5) };
      expect((await observe(REF, clients))?.inSync).to.equal(true);
    });

    it("records an unreachable secondary as unreachable, without failing", async function () {
      const { b, clients } = nodes();
      b.down = true;
      const record = await observe(REF, clients);
      expect(record?.syncStatus[1]).to.include({ endpoint: "http://b", state: "unreachable" });
      expect(record?.inSync).to.equal(false);
    });

    it("fails, naming the primary, when the primary is unreachable", async function () {
      const { primary, clients } = nodes();
      primary.down = true;
      const failure = await observe(REF, clients).then(
        () => "recorded",
        (error: Error) => error.message,
      );
      expect(failure).to.equal(
        `SyncCheck of organization ${ORG}: its primary http://primary is unreachable: ECONNREFUSED`,
      );
    });

    it("fails when the node named as primary holds only a copy, and gives nothing when it holds no org", async function () {
      const { primary, clients } = nodes();
      primary.status = orgStatus({ primary: "http://elsewhere" });
      const failure = await observe(REF, clients).then(
        () => "recorded",
        (error: Error) => error.message,
      );
      expect(failure).to.match(/holds a secondary copy of it, not the primary \(its primary is http:\/\/elsewhere\)/);
      primary.status = undefined;
      expect(await observe(REF, clients)).to.equal(undefined);
    });
  });

  describe("recordChanged", function () {
    it("ignores the wording of errors and the order of secondaries, not their state or position", async function () {
      const { b, clients } = nodes();
      b.down = true;
      const stored = (await observe(REF, clients))!;
      const reworded = {
        ...stored,
        syncStatus: [...stored.syncStatus].reverse().map((s) => (s.error ? { ...s, error: "another timeout" } : s)),
      };
      expect(recordChanged(stored, reworded)).to.equal(false);
      expect(recordChanged(stored, { ...stored, generation: 6 })).to.equal(true);
      expect(recordChanged(stored, { ...stored, digest: digestAt(6) })).to.equal(true);
      expect(recordChanged(stored, { ...stored, epoch: 2 })).to.equal(true);
      const back = stored.syncStatus.map((s) => (s.endpoint === "http://b" ? { ...s, state: "in-sync" as const } : s));
      expect(recordChanged(stored, { ...stored, syncStatus: back })).to.equal(true);
      expect(recordChanged({}, stored), "nothing stored yet").to.equal(true);
    });
  });

  describe("changeOf: the diff", function () {
    it("shows no change when the live org is what the check recorded", async function () {
      const { clients } = nodes();
      const stored = outputs((await observe(REF, clients))!);
      expect(
        await changeOf(stored, { organization: REF, after: stored.after }, (ref) => observe(ref, clients)),
      ).to.deep.equal({
        changes: false,
      });
    });

    it("changes, saying why, when members moved the primary on or a secondary fell behind since", async function () {
      const { primary, a, clients } = nodes();
      const stored = outputs((await observe(REF, clients))!);
      primary.status = { ...primary.status!, generation: 7, digest: digestAt(7) };
      a.down = true;
      const change = await changeOf(stored, { organization: REF, after: stored.after }, (ref) => observe(ref, clients));
      expect(change.changes).to.equal(true);
      expect(change.note).to.equal(
        `SyncCheck of organization ${ORG}: generation 5 → 7, digest ${digestAt(5).slice(0, 12)} → ` +
          `${digestAt(7).slice(0, 12)}, http://a in-sync → unreachable`,
      );
    });

    it("changes without reading anything when its members or org are unknown (preview) or changed", async function () {
      const stored = outputs((await observe(REF, nodes().clients))!);
      const unread = async (): Promise<SyncRecord> => {
        throw new Error("read although the inputs decide");
      };
      for (const news of [
        { organization: REF, after: UNKNOWN_VALUE },
        { organization: REF, after: "3:0123456789abcdef" },
        { organization: { ...REF, primary: "http://other" }, after: stored.after },
        { organization: UNKNOWN_VALUE as unknown as typeof REF, after: stored.after },
      ]) {
        expect(await changeOf(stored, news, unread)).to.deep.equal({ changes: true });
      }
    });

    it("changes, naming the primary, when the primary cannot be read; and when the org is gone", async function () {
      const { primary, clients } = nodes();
      const stored = outputs((await observe(REF, clients))!);
      const news = { organization: REF, after: stored.after };
      primary.down = true;
      expect(await changeOf(stored, news, (ref) => observe(ref, clients))).to.deep.equal({
        changes: true,
        note: `SyncCheck of organization ${ORG}: its primary http://primary is unreachable: ECONNREFUSED`,
      });
      primary.down = false;
      primary.status = undefined;
      expect((await changeOf(stored, news, (ref) => observe(ref, clients))).note).to.match(
        /does not exist on http:\/\/primary/,
      );
    });
  });

  it("describeChange names a secondary that is no longer active, and a recovery", function () {
    const base: SyncRecord = { generation: 1, digest: digestAt(1), epoch: 0, syncStatus: [], inSync: true };
    const gone = {
      endpoint: "http://a",
      state: "in-sync" as const,
      generation: 1,
      digest: digestAt(1),
      lastSyncedAt: "",
    };
    expect(describeChange({ ...base, syncStatus: [gone] }, base)).to.equal("http://a no longer active");
    expect(
      describeChange({ ...base, syncStatus: [{ ...gone, lastSyncedAt: "t0" }] }, { ...base, syncStatus: [gone] }),
    ).to.equal("secondaries synchronized again");
  });
});
