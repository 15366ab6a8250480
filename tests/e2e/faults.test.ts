/**
 * Faults around `pulumi up` itself, with the real CLI and real agents on loopback:
 *
 * - `pulumi up` SIGKILLed — the CLI, the language host and the dynamic provider, its whole process
 *   group — while creating 200 users (127.0.33.1 – 127.0.33.3), at two points; the recovery
 *   the README documents (`pulumi cancel`, `pulumi refresh --clear-pending-creates`, `pulumi up`)
 *   must give a stack where each user exists exactly once, on every node;
 * - a secondary slower than the provider's timeout during `up` (127.0.34.1 – 127.0.34.3): the
 *   operation fails naming it, without hanging, and the next `up` converges.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { type LoadBalancedOrganizationArgs, LoadBalancedOrganization, OrgUser } from "../../sdk";
import { AgentClient } from "../../provider/client";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";
import { printKillReport, sleep } from "../support/faults";
import { killQuietly, processGone, processTree } from "../support/processes";
import { type CliProject, createCliProject } from "../support/pulumi-cli";
import { createTestStack, requirePulumi } from "../support/pulumi";
import { type SlowProxy, startSlowProxy } from "../support/slow-proxy";

const TOKEN = "faults-e2e-token-0123456789abcdef";
const USERS = 200;
/** Kill `pulumi up` once the primary's generation reaches these (1 = the org exists, no user yet). */
const KILL_AT_GENERATION = [1, 120];

/** The program of the interrupted stacks, as an operator would write it (CommonJS). */
const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { LoadBalancedOrganization, OrgUser } = require("pulumi-lbhosting");
const config = new pulumi.Config();
const org = new LoadBalancedOrganization("org", {
  name: config.require("org"),
  primary: config.require("primary"),
  secondaries: config.requireObject("secondaries"),
  loadBalanced: true,
});
for (let index = 0; index < config.requireNumber("users"); index++) {
  const username = "user" + String(index).padStart(3, "0");
  new OrgUser(username, { organization: org, username, password: config.requireSecret("password") });
}
exports.inSync = org.inSync;
`;

const client = (agent: AgentProcess, timeoutMs = 5000) => new AgentClient(agent.url, TOKEN, { timeoutMs, retries: 0 });

describe("e2e fault: pulumi up SIGKILLed while creating 200 users", function () {
  let bin: string;
  let agents: AgentProcess[] = [];
  const projects: CliProject[] = [];

  before(async function () {
    bin = requirePulumi(this);
    agents = await Promise.all(
      ["127.0.33.1", "127.0.33.2", "127.0.33.3"].map((host, index) =>
        startAgentProcess({ host, token: TOKEN, name: index === 0 ? "primary" : `secondary-${index}` }),
      ),
    );
  });

  after(async function () {
    for (const project of projects) project.cleanup();
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  /** `lbhosting status` for the org: its exit code and each secondary's state. */
  async function status(org: string) {
    const result = await runCli(
      [
        "status",
        "--org",
        org,
        "--primary",
        agents[0].url,
        ...agents.slice(1).flatMap((agent) => ["--secondary", agent.url]),
        "--json",
      ],
      {
        LBHOSTING_TOKEN: TOKEN,
      },
    );
    const report = JSON.parse(result.stdout) as { primary: { generation: number }; secondaries: { state: string }[] };
    return { code: result.code, generation: report.primary.generation, states: report.secondaries.map((s) => s.state) };
  }

  it(`recovers with the documented commands at each of ${KILL_AT_GENERATION.length} kill points`, async function () {
    const report: Array<Record<string, unknown>> = [];
    for (const [round, killAt] of KILL_AT_GENERATION.entries()) {
      const org = `crowd-${round}`;
      const project = await createCliProject(bin, { projectName: `faults-up-kill-${round}`, program: PROGRAM });
      projects.push(project);
      for (const [key, value] of Object.entries({
        org,
        primary: agents[0].url,
        secondaries: JSON.stringify([agents[1].url, agents[2].url]),
        users: String(USERS),
      })) {
        await project.ok(["config", "set", key, value]);
      }
      // Secrets through stdin, so they never appear on a command line.
      await project.ok(["config", "set", "--secret", "lbhosting:token"], { input: TOKEN });
      await project.ok(["config", "set", "--secret", "password"], { input: "a-user-password" });

      const up = project.start(["up", "--yes", "--skip-preview", "--non-interactive"]);
      const pgid = up.child.pid as number;
      let generation = 0;
      let finished = false;
      void up.exited.then(() => (finished = true));
      // Bounded wait for the kill point (the up itself takes well under this).
      for (let poll = 0; poll < 6000 && generation < killAt && !finished; poll++) {
        generation = await client(agents[0], 1000)
          .getOrg(org)
          .then((state) => state.generation)
          .catch(() => 0);
        if (generation < killAt) await sleep(25);
      }
      expect(finished, `pulumi up ended before generation ${killAt}:\n${up.output()}`).to.equal(false);
      // The CLI starts its plugins in process groups of their own: kill the whole tree, by pid.
      const tree = processTree(pgid);
      process.kill(-pgid, "SIGKILL");
      for (const pid of tree) killQuietly(pid);
      await up.exited;
      for (let poll = 0; poll < 200 && !tree.every(processGone); poll++) await sleep(50);
      expect(
        tree.filter((pid) => !processGone(pid)),
        "the CLI and its plugins are gone",
      ).to.deep.equal([]);

      // The documented recovery (README, "When a server fails"), first for the file backend: a
      // kill can leave a metadata sidecar truncated, which Pulumi reads as "failed to load
      // checkpoint: EOF".
      execFileSync("find", [path.join(project.backend, ".pulumi"), "-name", "*.attrs", "-empty", "-delete"]);
      const interrupted = await project.exportState();
      const pending = interrupted.pending_operations?.length ?? 0;
      const recorded = (interrupted.resources ?? []).filter((r) => r.type.endsWith(":OrgUser")).length;
      const afterKill = await status(org).catch(() => ({ code: "no org", generation: 0, states: [] as string[] }));

      const locked = await project.run(["up", "--yes", "--skip-preview", "--non-interactive"]);
      expect(locked.code).to.not.equal(0);
      expect(locked.stdout + locked.stderr).to.include("pulumi cancel");
      await project.ok(["cancel", "--yes", "--non-interactive"]);
      await project.ok(["refresh", "--clear-pending-creates", "--yes", "--skip-preview", "--non-interactive"]);
      await project.ok(["up", "--yes", "--skip-preview", "--non-interactive"]);

      // Each user exactly once: in state, and on every node with the primary's digest.
      const state = await project.exportState();
      expect(state.pending_operations ?? []).to.deep.equal([]);
      const users = (state.resources ?? []).filter((r) => r.type.endsWith(":OrgUser")).map((r) => r.urn);
      expect(users).to.have.length(USERS);
      expect(new Set(users).size).to.equal(USERS);
      const expected = Array.from({ length: USERS }, (_, index) => `user${String(index).padStart(3, "0")}`);
      const primaryState = await client(agents[0]).getOrg(org);
      for (const agent of agents) {
        const names = (await client(agent).listUsers(org)).map((user) => user.username).sort();
        expect(names, agent.name).to.deep.equal(expected);
        expect((await client(agent).getOrg(org)).digest, agent.name).to.equal(primaryState.digest);
      }
      // One org write and one write per user: a retried create changed nothing.
      expect(primaryState.generation).to.equal(1 + USERS);
      const recovered = await status(org);
      expect(recovered).to.deep.include({ code: 0, states: ["in-sync", "in-sync"] });
      await project.ok(["preview", "--expect-no-changes", "--non-interactive"]);

      report.push({
        killAtGeneration: killAt,
        primaryGenerationAtKill: afterKill.generation,
        usersInState: recorded,
        pendingOperations: pending,
        statusAfterKill: `${afterKill.code}:${afterKill.states.join(",")}`,
        afterRecovery: `${USERS} users on ${agents.length} nodes, generation ${primaryState.generation}`,
      });
    }
    printKillReport(`pulumi up of ${USERS} users SIGKILLed`, report);
  });
});

describe("e2e fault: a secondary slower than the provider's timeout during up", function () {
  let primary: AgentProcess;
  let secondary: AgentProcess;
  let proxy: SlowProxy;
  const usernames = ["ann", "ben", "cal"];

  before(async function () {
    requirePulumi(this);
    [primary, secondary] = await Promise.all([
      startAgentProcess({ host: "127.0.34.1", token: TOKEN, name: "primary" }),
      startAgentProcess({ host: "127.0.34.2", token: TOKEN, name: "secondary" }),
    ]);
    proxy = await startSlowProxy({ host: "127.0.34.3", target: secondary.url });
  });

  after(async function () {
    await proxy?.stop();
    for (const agent of [primary, secondary]) {
      await agent?.stop();
      agent?.cleanup();
    }
  });

  it("fails the operation naming the secondary, without hanging, and the next up converges", async function () {
    const bin = requirePulumi(this);
    const orgArgs: LoadBalancedOrganizationArgs = {
      name: "slow",
      primary: primary.url,
      secondaries: [proxy.url],
      loadBalanced: true,
    };
    const testStack = await createTestStack(bin, {
      projectName: "faults-slow-secondary",
      config: {
        "lbhosting:token": { value: TOKEN, secret: true },
        "lbhosting:timeoutMs": { value: "1500" },
      },
      program: async () => {
        const org = new LoadBalancedOrganization("org", orgArgs);
        for (const username of usernames) {
          new OrgUser(username, { organization: org, username, password: `${username}-password-1` });
        }
        return { inSync: org.inSync };
      },
    });
    try {
      expect((await testStack.stack.up()).outputs.inSync.value).to.equal(true);

      // The secondary now answers 4 s late: beyond the provider's 1.5 s timeout.
      proxy.setDelay(4000);
      usernames.push("dee", "eve");
      const failure = await testStack.stack.up().then(
        () => "succeeded",
        (error: Error) => error.message,
      );
      expect(failure).to.include(`${proxy.url} is unreachable: no answer within 1500 ms`);
      expect(failure).to.include("the change is applied on the primary");
      expect((await client(primary).listUsers("slow")).map((user) => user.username)).to.include.members(["dee", "eve"]);

      proxy.setDelay(0);
      const healed = await testStack.stack.up();
      expect(healed.summary.result).to.equal("succeeded");
      expect(healed.outputs.inSync.value).to.equal(true);
      const [onPrimary, onSecondary] = await Promise.all([
        client(primary).getOrg("slow"),
        client(secondary).getOrg("slow"),
      ]);
      expect(onSecondary).to.include({ generation: onPrimary.generation, digest: onPrimary.digest });
      await testStack.stack.refresh({ expectNoChanges: true });
    } finally {
      testStack.cleanup();
    }
  });
});
