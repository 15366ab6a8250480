/** One sync against in-memory nodes: which transfer each secondary gets, and what the report says. */
import { expect } from "chai";
import { OrgKnowledge, SyncError, syncOrg } from "../../provider/sync";
import { FakeNode, ORG, digestAt, factoryOf, orgStatus, primaryAt, userChange } from "../support/fake-nodes";

/** What a process knows after writing generation 3, with copy http://a last seen at 2. */
function knowingWriteOf3(): OrgKnowledge {
  const known = new OrgKnowledge();
  known.noteWrite({
    generation: 3,
    digest: digestAt(3),
    changed: true,
    epoch: 0,
    secondaries: ["http://a"],
    change: userChange(3),
  });
  known.copies.set("http://a", orgStatus({ generation: 2, digest: digestAt(2) }));
  return known;
}

describe("sync transfer", function () {
  it("sends a snapshot to a missing copy and the changes to one behind, then verifies both", async function () {
    const [missing, behind] = [
      new FakeNode("http://a"),
      new FakeNode("http://b", orgStatus({ generation: 1, digest: digestAt(1) })),
    ];
    const primary = primaryAt(3, ["http://a", "http://b"]);
    const lines: string[] = [];
    const report = await syncOrg(primary, ORG, factoryOf(missing, behind), { log: (line) => lines.push(line) });
    expect(report).to.include({ inSync: true, generation: 3, digest: digestAt(3) });
    expect(missing.calls).to.deep.equal(["getOrg", "putReplica"]);
    expect(behind.calls).to.deep.equal(["getOrg", "applyReplicaChanges"]);
    expect(lines.join("\n"))
      .to.match(/→ http:\/\/a: snapshot 1 changes/)
      .and.match(/→ http:\/\/b: delta 2 changes/);
  });

  it("with write answers known, brings an in-sync copy along with one request and asks the primary nothing", async function () {
    const copy = new FakeNode("http://a", orgStatus({ generation: 2, digest: digestAt(2) }));
    const primary = primaryAt(3, ["http://a"]);
    const known = knowingWriteOf3();
    const report = await syncOrg(primary, ORG, factoryOf(copy), {}, known);
    expect(report.inSync).to.equal(true);
    expect(primary.calls).to.deep.equal([]);
    expect(copy.calls).to.deep.equal(["applyReplicaChanges"]);
    expect(known.copies.get("http://a")?.generation).to.equal(3);
  });

  it("falls back to looking when the copy is not where this process thought (409)", async function () {
    const copy = new FakeNode("http://a", orgStatus({ generation: 1, digest: digestAt(1) }));
    const primary = primaryAt(3, ["http://a"]);
    const known = knowingWriteOf3();
    const report = await syncOrg(primary, ORG, factoryOf(copy), {}, known);
    expect(report.inSync).to.equal(true);
    expect(copy.calls).to.deep.equal(["applyReplicaChanges", "getOrg", "applyReplicaChanges"]);
  });

  it("reports a secondary it could not reach, and SyncError names it once, with the reason", async function () {
    const down = new FakeNode("http://a", orgStatus());
    down.down = true;
    const report = await syncOrg(primaryAt(2, ["http://a"]), ORG, factoryOf(down));
    expect(report.inSync).to.equal(false);
    expect(report.secondaries[0]).to.include({ state: "unreachable", error: "http://a is unreachable: ECONNREFUSED" });
    expect(report.reasons).to.deep.equal({ "http://a": "ECONNREFUSED" });
    expect(new SyncError(report).message).to.contain("(http://a is unreachable: ECONNREFUSED)");
  });

  it("with full, sends a snapshot even to a copy in sync", async function () {
    const copy = new FakeNode("http://a", orgStatus({ generation: 2, digest: digestAt(2) }));
    await syncOrg(primaryAt(2, ["http://a"]), ORG, factoryOf(copy), { full: true });
    expect(copy.calls).to.deep.equal(["getOrg", "putReplica"]);
  });
});
