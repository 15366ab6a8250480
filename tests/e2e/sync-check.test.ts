/**
 * Issue 24, defect 6 and issue 26, item 3, through the real CLI: a SyncCheck that waits for the
 * org's users and services gives the stack the generation, digest and sync state the org reached
 * at the end of each `up`, shows no change on a steady stack, and changes — never claiming
 * `in-sync` — after an out-of-band change or a sync that failed.
 */
import { expect } from "chai";
import { LoadBalancedOrganization, OrgUser, SyncCheck, WebService, type OrgUserArgs } from "../../sdk";
import { AgentClient } from "../../provider/client";
import type { SecondarySyncStatus } from "../../sdk/outputs";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { createTestStack, requirePulumi, type TestStack } from "../support/pulumi";

const TOKEN = "e2e-sync-check-token-0123456789ab";
const ORG = "checked";

interface CheckOutputs {
  generation: number;
  digest: string;
  epoch: number;
  inSync: boolean;
  syncStatus: SecondarySyncStatus[];
  orgGeneration: number;
}

describe("e2e: SyncCheck records where the org stands at the end of every up", function () {
  let primary: AgentProcess;
  let secondaries: AgentProcess[];
  let testStack: TestStack;
  const users: Record<string, Omit<OrgUserArgs, "organization">> = {
    alice: { username: "alice", password: "alice-password-1", displayName: "Alice" },
    bob: { username: "bob", password: "bob-password-1" },
  };
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 5000, retries: 0 });

  async function outputs(): Promise<CheckOutputs> {
    const values = await testStack.stack.outputs();
    return Object.fromEntries(Object.entries(values).map(([key, output]) => [key, output.value])) as CheckOutputs;
  }

  /** The stack's outputs say what the primary and every secondary hold right now. */
  async function expectOutputsMatchNodes(): Promise<CheckOutputs> {
    const out = await outputs();
    const head = await client(primary).getOrg(ORG);
    expect({ generation: out.generation, digest: out.digest, epoch: out.epoch }).to.deep.equal({
      generation: head.generation,
      digest: head.digest,
      epoch: head.epoch,
    });
    for (const secondary of secondaries) {
      const copy = await client(secondary).getOrg(ORG);
      expect({ generation: copy.generation, digest: copy.digest }).to.deep.equal({
        generation: head.generation,
        digest: head.digest,
      });
    }
    expect(out.inSync).to.equal(true);
    expect(out.syncStatus.map((status) => [status.endpoint, status.state, status.generation])).to.deep.equal(
      secondaries.map((secondary) => [secondary.url, "in-sync", head.generation]),
    );
    return out;
  }

  /** A preview's change summary and what it printed. */
  async function preview(): Promise<{ changes: Record<string, number>; output: string }> {
    let output = "";
    const result = await testStack.stack.preview({ onOutput: (text) => (output += text) });
    return { changes: result.changeSummary as Record<string, number>, output };
  }

  before(async function () {
    const bin = requirePulumi(this);
    [primary, ...secondaries] = await Promise.all(
      ["127.0.21.1", "127.0.21.2", "127.0.21.3"].map((host, index) =>
        startAgentProcess({ host, token: TOKEN, name: ["check-primary", "check-a", "check-b"][index] }),
      ),
    );
    testStack = await createTestStack(bin, {
      projectName: "sync-check",
      config: { "lbhosting:token": { value: TOKEN, secret: true } },
      program: async () => {
        const org = new LoadBalancedOrganization("org", {
          name: ORG,
          primary: primary.url,
          secondaries: secondaries.map((secondary) => secondary.url),
          loadBalanced: true,
        });
        const members = [
          new WebService("files", { organization: org, name: "files", kind: "ftp", rootPath: "files" }),
          ...Object.entries(users).map(([name, user]) => new OrgUser(name, { organization: org, ...user })),
        ];
        const check = new SyncCheck("org-sync", { organization: org, after: members });
        return {
          generation: check.generation,
          digest: check.digest,
          epoch: check.epoch,
          inSync: check.inSync,
          syncStatus: check.syncStatus,
          orgGeneration: org.generation,
        };
      },
    });
  });

  after(async () => {
    for (const agent of [primary, ...(secondaries ?? [])]) {
      await agent?.stop();
      agent?.cleanup();
    }
    testStack?.cleanup();
  });

  it("after an up that changed users, the outputs are the primary's generation and digest, every secondary in sync", async function () {
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
    const first = await expectOutputsMatchNodes();

    users.alice = { ...users.alice, displayName: "Alice Admin" };
    users.carol = { username: "carol", password: "carol-password-1" };
    const changed = await testStack.stack.up();
    expect(changed.summary.result).to.equal("succeeded");
    // carol created, alice and the check updated; nothing deleted or replaced (the output says what happened if not).
    expect(changed.summary.resourceChanges, changed.stdout).to.deep.include({ create: 1, update: 2 });
    expect(changed.summary.resourceChanges, changed.stdout).to.not.have.any.keys("delete", "replace");
    const second = await expectOutputsMatchNodes();
    expect(second.generation).to.be.greaterThan(first.generation);
    // The org resource itself did not change: its own outputs are as of its last operation.
    expect(second.orgGeneration).to.be.lessThan(second.generation);
  });

  it("a steady stack previews, and refreshes, with no change", async function () {
    const { changes, output } = await preview();
    expect(Object.keys(changes), output).to.deep.equal(["same"]);
    expect((await testStack.stack.refresh({ expectNoChanges: true })).summary.result).to.equal("succeeded");
    expect(Object.keys((await preview()).changes)).to.deep.equal(["same"]);
  });

  it("an out-of-band change on the primary makes the next preview show the check changing, and the up records it", async function () {
    await client(primary).putUser(ORG, "mallory", { password: "mallory-password-1" });
    const { changes, output } = await preview();
    expect(changes).to.deep.include({ update: 1 });
    expect(output).to.match(/SyncCheck of organization checked: generation \d+ → \d+/);
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
    const out = await outputs();
    expect(out.generation).to.equal((await client(primary).getOrg(ORG)).generation);
    // Nothing synchronized mallory: the outputs say the secondaries are behind, not in sync.
    expect(out.inSync).to.equal(false);
    expect(out.syncStatus.map((status) => status.state)).to.deep.equal(["behind", "behind"]);
    // A refresh finds the secondaries behind, so the next up synchronizes them, and the check records it.
    await client(primary).deleteUser(ORG, "mallory");
    expect((await testStack.stack.refresh()).summary.result).to.equal("succeeded");
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
    await expectOutputsMatchNodes();
  });

  it("after an up whose sync to a stopped secondary failed, the next preview shows the check changing; with --continue-on-error the outputs say which secondary is not in sync", async function () {
    const [, stopped] = secondaries;
    await stopped.stop();
    users.bob = { ...users.bob, displayName: "Bob" };
    const failed = (options: { continueOnError?: boolean } = {}) =>
      testStack.stack.up(options).then(
        () => "succeeded",
        (error: Error) => error.message,
      );

    // Pulumi stops at the failed user and keeps the stack outputs of the last up that finished.
    const failure = await failed();
    expect(failure).to.include(`${stopped.url} is unreachable`);
    expect(failure, "the check itself did not fail").to.not.match(/SyncCheck[^\n]*(failed|error)/);
    const first = await preview();
    expect(first.changes).to.deep.include({ update: 2 }); // bob, to retry, and the check
    expect(first.output).to.include(`${stopped.url} in-sync → unreachable`);

    // With --continue-on-error the check still runs after the failed user, and the outputs tell the truth.
    expect(await failed({ continueOnError: true })).to.include(`${stopped.url} is unreachable`);
    const out = await outputs();
    expect(out.generation).to.equal((await client(primary).getOrg(ORG)).generation);
    expect(out.inSync).to.equal(false);
    expect(out.syncStatus.map((status) => [status.endpoint, status.state])).to.deep.equal([
      [secondaries[0].url, "in-sync"],
      [stopped.url, "unreachable"],
    ]);
    // bob is retried until his change reaches every secondary; the check holds what it saw.
    expect((await preview()).changes).to.deep.include({ update: 1 });

    await stopped.restart();
    expect((await testStack.stack.up()).summary.result).to.equal("succeeded");
    await expectOutputsMatchNodes();
    expect(Object.keys((await preview()).changes)).to.deep.equal(["same"]);
    expect((await testStack.stack.destroy()).summary.result).to.equal("succeeded");
  });
});
