/** The pure decisions of a primary change: move or failover, which copy, refusals, fencing states. */
import { expect } from "chai";
import {
  fencingNote,
  fencingPending,
  formerState,
  type NodeView,
  planPrimaryChange,
  supersededBy,
} from "../../provider/failover";
import type { OrgStatus } from "../../wire";

const A = "http://127.0.0.1:1";
const B = "http://127.0.0.2:1";
const C = "http://127.0.0.3:1";

const status = (overrides: Partial<OrgStatus>): OrgStatus => ({
  name: "acme",
  displayName: "",
  role: "secondary",
  primary: A,
  secondaries: [B, C],
  loadBalanced: true,
  generation: 12,
  digest: "d".repeat(64),
  epoch: 0,
  drifted: false,
  managedBy: "",
  ...overrides,
});

const view = (endpoint: string, overrides?: Partial<OrgStatus>): NodeView => ({
  endpoint,
  ...(overrides ? { status: status(overrides) } : {}),
});
const down = (endpoint: string): NodeView => ({ endpoint, unreachable: "ECONNREFUSED" });

/** A failover from A (down) to B, C the other copy; overrides per node. */
const plan = (options: {
  from?: NodeView;
  to?: NodeView;
  others?: NodeView[];
  recorded?: { generation: number; epoch: number };
  allowDataLoss?: boolean;
}) =>
  planPrimaryChange({
    org: "acme",
    from: options.from ?? down(A),
    to: options.to ?? view(B, {}),
    others: options.others ?? [view(C, {})],
    recorded: options.recorded ?? { generation: 12, epoch: 0 },
    allowDataLoss: options.allowDataLoss ?? false,
  });

describe("failover decisions", () => {
  describe("planPrimaryChange", () => {
    it("moves when the old primary is live at the newest epoch, raising the epoch", () => {
      expect(
        plan({ from: view(A, { role: "primary", epoch: 2 }), recorded: { generation: 12, epoch: 2 } }),
      ).to.deep.equal({ kind: "move", epoch: 3 });
      // Onto a node that holds no copy, too: the snapshot comes from the live primary.
      expect(plan({ from: view(A, { role: "primary" }), to: view(B) })).to.deep.equal({ kind: "move", epoch: 1 });
    });

    it("promotes an in-sync copy in place when the old primary is unreachable or lost the org", () => {
      const promote = { kind: "promote", epoch: 1, generation: 12, digest: "d".repeat(64) };
      expect(plan({})).to.deep.equal(promote);
      expect(plan({ from: view(A) })).to.deep.equal(promote);
      // A copy ahead of what the stack recorded (users written after the org's last update) is fine.
      expect(plan({ recorded: { generation: 9, epoch: 0 } })).to.deep.equal(promote);
    });

    it("raises the epoch above every epoch seen, the recorded one included", () => {
      const result = plan({
        to: view(B, { epoch: 3 }),
        others: [view(C, { epoch: 3 }), down("http://127.0.0.4:1")],
        recorded: { generation: 12, epoch: 3 },
      });
      expect(result).to.deep.include({ kind: "promote", epoch: 4 });
      expect(plan({ recorded: { generation: 12, epoch: 5 }, to: view(B, { epoch: 5 }), others: [] })).to.deep.include({
        epoch: 6,
      });
    });

    it("refuses a copy behind what the stack recorded, naming both generations, unless allowDataLoss", () => {
      const behind = { to: view(B, { generation: 10 }), others: [], recorded: { generation: 12, epoch: 0 } };
      const refused = plan(behind);
      expect(refused.kind).to.equal("refuse");
      const message = (refused as { message: string }).message;
      expect(message).to.include(`cannot make ${B} its primary`);
      expect(message).to.include(`the old primary ${A} is unreachable (ECONNREFUSED)`);
      expect(message).to.include("is at generation 10 (epoch 0)");
      expect(message).to.include(`behind generation 12 (epoch 0), which the stack recorded for the primary ${A}`);
      expect(message).to.include("allowDataLoss: true");
      const forced = plan({ ...behind, allowDataLoss: true });
      expect(forced).to.deep.include({ kind: "promote", epoch: 1, generation: 10 });
      expect((forced as { lost?: string }).lost).to.include("behind generation 12");
    });

    it("refuses a copy behind another reachable copy and names the better one", () => {
      const refused = plan({ to: view(B, { generation: 11 }), others: [view(C, { generation: 12 }), down(A)] });
      expect(refused.kind).to.equal("refuse");
      const message = (refused as { message: string }).message;
      expect(message).to.include(`behind the copy on ${C} at generation 12 (epoch 0)`);
      expect(message).to.include(`set primary to ${C}`);
      // A copy following a newer epoch is ahead whatever its generation.
      const newer = plan({ to: view(B, { generation: 20 }), others: [view(C, { generation: 14, epoch: 1 })] });
      expect((newer as { message: string }).message).to.include(`behind the copy on ${C} at generation 14 (epoch 1)`);
      expect(
        plan({ to: view(B, { generation: 11 }), others: [view(C, { generation: 12 })], allowDataLoss: true }),
      ).to.deep.include({ kind: "promote", generation: 11 });
    });

    it("refuses a drifted copy unless allowDataLoss", () => {
      const refused = plan({ to: view(B, { drifted: true }) });
      expect((refused as { message: string }).message).to.include("edited locally (drifted)");
      expect(plan({ to: view(B, { drifted: true }), allowDataLoss: true }).kind).to.equal("promote");
    });

    it("refuses when the new primary holds no copy, is unreachable, or another node already is the primary", () => {
      const none = plan({ to: view(B) });
      expect((none as { message: string }).message).to.include(`it holds no copy of it to promote`);
      expect((none as { message: string }).message).to.include(`set primary to a node holding a copy (${C})`);
      expect((plan({ to: down(B) }) as { message: string }).message).to.include("it is unreachable (ECONNREFUSED)");
      const rival = plan({ others: [view(C, { role: "primary", epoch: 1 })] });
      expect((rival as { message: string }).message).to.include(`${C} holds it as the primary at epoch 1`);
      // Not even allowDataLoss overrides these: there is nothing (or something else) to promote.
      expect(plan({ to: view(B), allowDataLoss: true }).kind).to.equal("refuse");
      // The new primary's own org (not a copy) is never promoted over a lost primary.
      expect(plan({ to: view(B, { role: "primary" }) }).kind).to.equal("refuse");
    });

    it("continues a failover an interrupted up began: the new primary already is, at the newest epoch", () => {
      expect(plan({ to: view(B, { role: "primary", epoch: 1 }), others: [view(C, { epoch: 1 })] })).to.deep.equal({
        kind: "promoted",
        epoch: 1,
      });
      // The old primary came back meanwhile: it is stale, not a source to move from.
      const back = plan({ from: view(A, { role: "primary", epoch: 0 }), to: view(B, { role: "primary", epoch: 1 }) });
      expect(back).to.deep.equal({ kind: "promoted", epoch: 1 });
    });
  });

  describe("formerState", () => {
    it("keeps a former primary until it holds nothing, or a copy of the current epoch it is meant to hold", () => {
      expect(formerState(A, down(A), 1, false)).to.deep.equal({
        endpoint: A,
        state: "unreachable",
        error: "ECONNREFUSED",
      });
      expect(formerState(A, view(A, { role: "primary", epoch: 0, generation: 15 }), 1, false)).to.deep.equal({
        endpoint: A,
        state: "stale-primary",
        epoch: 0,
        generation: 15,
      });
      expect(formerState(A, view(A, { role: "primary" }), 1, true)).to.include({ state: "stale-primary" });
      expect(formerState(A, view(A, { epoch: 1 }), 1, false)).to.include({ state: "stale-copy" });
      expect(formerState(A, view(A, { epoch: 0 }), 1, true)).to.include({ state: "stale-copy" });
      expect(formerState(A, view(A, { epoch: 1 }), 1, true)).to.equal(undefined);
      expect(formerState(A, view(A), 1, false)).to.equal(undefined);
    });
  });

  describe("fencingNote", () => {
    it("says what each former primary's state means and what the next up does", () => {
      const stale = fencingNote("acme", { endpoint: A, state: "stale-primary", epoch: 0, generation: 7 });
      expect(stale).to.equal(
        `organization acme: ${A} is a stale primary (epoch 0, generation 7): fenced, its replication is refused; ` +
          `the next 'pulumi up' demotes it into a copy (listed in secondaries) or removes the org from it`,
      );
      expect(fencingNote("acme", { endpoint: A, state: "unreachable" })).to.include(
        `former primary ${A} is unreachable`,
      );
      expect(fencingNote("acme", { endpoint: A, state: "stale-copy", epoch: 1, generation: 3 })).to.include(
        "outdated copy (epoch 1, generation 3)",
      );
    });
  });

  describe("fencingPending", () => {
    it("says how a former primary stood when last checked, not that it still does (the update may fence it)", () => {
      const line = fencingPending("acme", { endpoint: A, state: "unreachable", error: "ECONNREFUSED" });
      expect(line).to.equal(
        `organization acme: the former primary ${A} is not fenced yet (unreachable when last checked); ` +
          "an update fences it once it answers",
      );
      expect(line).to.not.include("is unreachable");
      expect(fencingPending("acme", { endpoint: A, state: "stale-primary", epoch: 0, generation: 7 })).to.include(
        "(a stale primary when last checked)",
      );
    });
  });

  describe("supersededBy", () => {
    it("finds the newer primary a stale primary's nodes follow", () => {
      const mine = { epoch: 0 };
      expect(supersededBy(mine, [{ endpoint: B, copy: status({ epoch: 0 }) }, { endpoint: C }])).to.equal(undefined);
      expect(
        supersededBy(mine, [
          { endpoint: B, copy: status({ role: "primary", primary: undefined, epoch: 1 }) },
          { endpoint: C, copy: status({ primary: B, epoch: 1 }) },
        ]),
      ).to.deep.equal({ epoch: 1, primary: B });
      expect(supersededBy(mine, [{ endpoint: C, copy: status({ primary: B, epoch: 2 }) }])).to.deep.equal({
        epoch: 2,
        primary: B,
      });
    });
  });
});
