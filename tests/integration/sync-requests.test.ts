/**
 * Round trips of the sync hook against real agents (issue 9): after a write, a sync of its change
 * to an in-sync secondary is one request — the delta, whose answer verifies the copy — and asks the
 * primary nothing; a copy that is not where the provider thought falls back and still gets there.
 * Requests are counted from the agents' own request logs.
 */
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { Scheduler, syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";

const TOKEN = "sync-requests-token-0123456789ab";
const ORG = "trips";

/** The sync scheduler a provider process has (provider/context.ts): one for this file's operations. */
const scheduler = new Scheduler();
const writeThenSync = scheduler.writeThenSync.bind(scheduler);

describe("sync hook: one request per in-sync secondary after a write (real agents)", function () {
  this.timeout(120_000);
  let agents: AgentProcess[] = [];
  let primary: AgentClient;
  let secondaries: AgentClient[];
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { retries: 0 });

  /** The requests an agent logged since `from` lines, as "METHOD path". */
  const requestsOf = (agent: AgentProcess, from: number) =>
    agent.stdout
      .slice(from)
      .map((line) => JSON.parse(line) as { msg: string; method?: string; route?: string })
      .filter((entry) => entry.msg === "request")
      .map((entry) => `${entry.method} ${entry.route}`);
  const marks = () => agents.map((agent) => agent.stdout.length);
  /** Request log lines reach us through a pipe, after the answers: wait until they stop coming (bounded). */
  async function quietLogs(): Promise<void> {
    let last = marks().join();
    for (let stable = 0, polls = 0; stable < 4 && polls < 100; polls++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = marks().join();
      stable = now === last ? stable + 1 : 0;
      last = now;
    }
  }

  before(async () => {
    agents = await Promise.all(
      ["127.0.20.21", "127.0.20.22", "127.0.20.23"].map((host) => startAgentProcess({ host, token: TOKEN })),
    );
    [primary, ...secondaries] = agents.map((agent) => clientFor(agent.url));
    await primary.putOrg(ORG, { loadBalanced: true, secondaries: secondaries.map((client) => client.endpoint) });
    expect((await syncOrg(primary, ORG, clientFor)).inSync).to.equal(true);
  });

  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  it("sends each secondary exactly one request and asks the primary nothing beyond the write", async () => {
    const put = (username: string) => async () =>
      (await primary.putUser(ORG, username, { passwordHash: "$6$salt$" + "a".repeat(86) })).answer;
    // The first write of this process: the copies are where the change log says they were.
    expect((await writeThenSync(primary, ORG, clientFor, put("alice"))).inSync).to.equal(true);
    await quietLogs();
    const before = marks();
    const lines: string[] = [];
    const report = await writeThenSync(primary, ORG, clientFor, put("bob"), { log: (line) => lines.push(line) });
    expect(report.inSync).to.equal(true);
    await quietLogs();
    const [onPrimary, ...onSecondaries] = agents.map((agent, i) => requestsOf(agent, before[i]));
    expect(onPrimary).to.deep.equal(["PUT /v1/orgs/:org/users/:username"]);
    for (const requests of onSecondaries) expect(requests).to.deep.equal(["POST /v1/orgs/:org/replica/changes"]);
    expect(lines.filter((line) => line.includes(": delta 1 changes"))).to.have.length(2);
    const status = await primary.getOrg(ORG);
    for (const secondary of secondaries) {
      const copy = await secondary.getOrg(ORG);
      expect([copy.generation, copy.digest]).to.deep.equal([status.generation, status.digest]);
    }
  });

  it("falls back when a copy is not where the provider thought, and still syncs it", async () => {
    // A forced edit behind the provider's back: the copy drifted, the delta is refused (409).
    await secondaries[0].putUser(ORG, "mallory", { passwordHash: "$6$salt$" + "b".repeat(86) }, true);
    const report = await writeThenSync(primary, ORG, clientFor, async () => await primary.deleteUser(ORG, "alice"));
    expect(report.inSync).to.equal(true);
    const status = await primary.getOrg(ORG);
    for (const secondary of secondaries) {
      const copy = await secondary.getOrg(ORG);
      expect([copy.generation, copy.digest, copy.drifted]).to.deep.equal([status.generation, status.digest, false]);
    }
    expect((await secondaries[0].listUsers(ORG)).map((user) => user.username)).to.deep.equal(["bob"]);
  });
});
