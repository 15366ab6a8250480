/** The pure half of a sync: where a copy stands, and why a node refuses a primary. */
import { expect } from "chai";
import { classify, refusal } from "../../provider/sync";
import { digestAt, orgStatus } from "../support/fake-nodes";

describe("sync classify", function () {
  const primary = { generation: 4, digest: digestAt(4), epoch: 1 };

  it("calls a copy at the primary's generation, digest and epoch in sync, and nothing else", function () {
    expect(classify(primary, orgStatus({ generation: 4, digest: digestAt(4), epoch: 1 }))).to.equal("in-sync");
    expect(classify(primary, orgStatus({ generation: 4, digest: digestAt(4), epoch: 0 }))).to.equal("behind");
    expect(classify(primary, orgStatus({ generation: 2, digest: digestAt(2), epoch: 1 }))).to.equal("behind");
    expect(classify(primary, undefined)).to.equal("missing");
  });

  it("says why a node refuses the primary: it is a primary itself, or follows a newer epoch", function () {
    expect(refusal(primary, orgStatus({ role: "primary", epoch: 1 }))).to.match(/holds this organization as a primary/);
    expect(refusal(primary, orgStatus({ epoch: 2 }))).to.match(/epoch 2, newer than this primary's epoch 1.*fenced/);
    expect(refusal(primary, orgStatus({ epoch: 1 }))).to.equal(undefined);
  });
});
