/** Reading secondaries: what refresh and `lbhosting status` show, against in-memory nodes. */
import { expect } from "chai";
import { inspectOrg, inspectSecondary, toSyncStatus } from "../../provider/sync";
import { FakeNode, ORG, digestAt, factoryOf, orgStatus, primaryAt } from "../support/fake-nodes";

describe("sync inspect", function () {
  const head = { generation: 3, digest: digestAt(3), epoch: 0 };

  it("reads a copy without changing it, and a node without one as missing", async function () {
    const copy = new FakeNode("http://a", orgStatus({ generation: 3, digest: digestAt(3) }));
    expect((await inspectSecondary(copy, ORG, head)).state).to.equal("in-sync");
    expect(copy.calls).to.deep.equal(["getOrg"]);
    expect(await inspectSecondary(new FakeNode("http://b"), ORG, head)).to.deep.equal({
      endpoint: "http://b",
      state: "missing",
    });
  });

  it("reports an unreachable node with the error naming it, and the reason without", async function () {
    const node = new FakeNode("http://a", orgStatus());
    node.down = true;
    const inspection = await inspectSecondary(node, ORG, head);
    expect(inspection).to.include({ state: "unreachable", reason: "ECONNREFUSED" });
    expect(toSyncStatus(inspection)).to.deep.equal({
      endpoint: "http://a",
      state: "unreachable",
      generation: 0,
      digest: "",
      lastSyncedAt: "",
      error: "http://a is unreachable: ECONNREFUSED",
    });
  });

  it("inspects only the active secondaries the primary names", async function () {
    const [a, b] = [new FakeNode("http://a", orgStatus()), new FakeNode("http://b")];
    const primary = primaryAt(0, ["http://a", "http://b"]);
    const result = await inspectOrg(primary, ORG, factoryOf(a, b));
    expect(result.secondaries.map((entry) => entry.state)).to.deep.equal(["in-sync", "missing"]);
    primary.status = { ...primary.status!, loadBalanced: false };
    expect((await inspectOrg(primary, ORG, factoryOf(a, b))).secondaries).to.deep.equal([]);
  });
});
