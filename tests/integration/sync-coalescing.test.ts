/**
 * The sync hook against real agents: concurrent changes to one org share syncs, yet every caller
 * returns only after a sync that includes its own change.
 */
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { Scheduler, syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";

const TOKEN = "coalescing-test-token-0123456789";
const ORG = "busy";
const USERS = 200;
const HASH = "$6$coalesce$" + "c".repeat(86);

/** The sync scheduler a provider process has (provider/context.ts): one for this file's operations. */
const scheduler = new Scheduler();
const requestSync = scheduler.requestSync.bind(scheduler);
const writeThenSync = scheduler.writeThenSync.bind(scheduler);

describe("sync hook: coalescing concurrent changes (real agents)", function () {
  this.timeout(120_000);
  let agents: AgentProcess[] = [];
  let primary: AgentClient;
  let secondaries: AgentClient[];
  const clients = new Map<string, AgentClient>();
  const clientFor = (endpoint: string) => {
    let client = clients.get(endpoint);
    if (!client) clients.set(endpoint, (client = new AgentClient(endpoint, TOKEN)));
    return client;
  };

  before(async () => {
    agents = await Promise.all(
      ["127.0.4.1", "127.0.4.2", "127.0.4.3"].map((host) => startAgentProcess({ host, token: TOKEN })),
    );
    [primary, ...secondaries] = agents.map((agent) => clientFor(agent.url));
    await primary.putOrg(ORG, { loadBalanced: true, secondaries: secondaries.map((client) => client.endpoint) });
    const first = await syncOrg(primary, ORG, clientFor);
    expect(first.inSync).to.equal(true);
  });

  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  it(`${USERS} concurrent user creations cost far fewer syncs, and each sees its own change synced`, async () => {
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    const seenOnSecondaries = await Promise.all(
      Array.from({ length: USERS }, async (_, index) => {
        const username = `user${index}`;
        // As the OrgUser provider does: the write, then the sync that includes it.
        const write = async () => (await primary.putUser(ORG, username, { password: `password-${index}-long` })).answer;
        const report = await writeThenSync(primary, ORG, clientFor, write, { log });
        expect(report.inSync, report.secondaries.map((s) => s.error).join()).to.equal(true);
        // Checked right away: had the sync started before this change, the user would be missing.
        const copies = await Promise.all(secondaries.map((secondary) => secondary.getUser(ORG, username)));
        return copies.every((copy) => copy.username === username);
      }),
    );
    expect(seenOnSecondaries.every(Boolean)).to.equal(true);

    const transfers = lines.filter((line) => /: (delta|snapshot) /.test(line));
    const syncRuns = lines.length / secondaries.length;
    expect(syncRuns).to.be.lessThan(USERS / 4);
    expect(transfers.every((line) => line.includes(": delta "))).to.equal(true);

    const [p, ...copies] = await Promise.all([primary, ...secondaries].map((client) => client.getOrg(ORG)));
    expect(p.generation).to.equal(1 + USERS);
    for (const copy of copies) expect([copy.generation, copy.digest]).to.deep.equal([p.generation, p.digest]);
    console.log(
      `      ${USERS} changes → ${syncRuns} syncs (${transfers.length} deltas to ${secondaries.length} secondaries)`,
    );
  });

  it("operations that Pulumi starts one after another, 8 at a time, share about one sync per 8", async () => {
    // Like Pulumi's step executor: 8 workers, each recording its finished operation (a pause that
    // differs per worker) before it starts the next one. An org of its own: what this process saw
    // of the burst above (its peak) must not shape these syncs.
    const org = "paced";
    await primary.putOrg(org, { loadBalanced: true, secondaries: secondaries.map((client) => client.endpoint) });
    expect((await syncOrg(primary, org, clientFor)).inSync).to.equal(true);
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    const operations = 96;
    let next = 0;
    const workers = Array.from({ length: 8 }, async (_, worker) => {
      for (let index = next++; index < operations; index = next++) {
        const username = `staggered${index}`;
        const write = async () => (await primary.putUser(org, username, { passwordHash: HASH })).answer;
        const report = await writeThenSync(primary, org, clientFor, write, { log });
        expect(report.inSync).to.equal(true);
        const copies = await Promise.all(secondaries.map((secondary) => secondary.getUser(org, username)));
        expect(copies.map((copy) => copy.username)).to.deep.equal(secondaries.map(() => username));
        await new Promise((resolve) => setTimeout(resolve, 10 + 15 * worker));
      }
    });
    await Promise.all(workers);
    const syncRuns = lines.length / secondaries.length;
    expect(syncRuns).to.be.at.most(operations / 4);
    console.log(`      ${operations} staggered operations → ${syncRuns} syncs`);
  });

  it("a write slower than the gathering window does not hold back the queued sync", async () => {
    // The slow write is held until the other operation's sync has returned: that sync must not wait
    // for it past the window (nor spin), and the slow operation then gets a sync of its own.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const slowWrite = async () => {
      await held;
      return (await primary.putUser(ORG, "slow-writer", { passwordHash: HASH })).answer;
    };
    const slow = writeThenSync(primary, ORG, clientFor, slowWrite, {});
    const fastWrite = async () => (await primary.putUser(ORG, "fast-writer", { passwordHash: HASH })).answer;
    const fast = await writeThenSync(primary, ORG, clientFor, fastWrite, {});
    expect(fast.inSync).to.equal(true);
    const slowOnPrimary = await primary.getUser(ORG, "slow-writer").then(
      () => true,
      () => false,
    );
    expect(slowOnPrimary, "the fast operation returned only after the slow write").to.equal(false);
    release();
    expect((await slow).inSync).to.equal(true);
    const copies = await Promise.all(secondaries.map((secondary) => secondary.getUser(ORG, "slow-writer")));
    expect(copies.map((copy) => copy.username)).to.deep.equal(secondaries.map(() => "slow-writer"));
  });

  it("a full sync sends snapshots even when nothing drifted", async () => {
    const lines: string[] = [];
    const report = await requestSync(primary, ORG, clientFor, { full: true, log: (line) => lines.push(line) });
    expect(report.inSync).to.equal(true);
    expect(lines).to.have.length(secondaries.length);
    expect(lines.every((line) => line.includes(": snapshot "))).to.equal(true);
  });
});
