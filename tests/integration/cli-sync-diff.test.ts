/**
 * `lbhosting diff` and `lbhosting sync` against real agents on loopback (127.0.3.11-13): diff
 * lists exactly the pending changes and changes nothing; sync (and sync --full) brings every
 * secondary in sync; all three operator commands fail with one clear line.
 */
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";

const TOKEN = "cli-sync-diff-test-token-0123456";
const ORG = "shop";
const UNREACHABLE = "http://127.0.3.99:65000";

describe("lbhosting diff and sync (real agents)", function () {
  this.timeout(60_000);
  let agents: AgentProcess[] = [];
  let primary: AgentProcess;
  let secondaryA: AgentProcess;
  let secondaryB: AgentProcess;
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 5000, retries: 0 });
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 5000, retries: 0 });
  const cli = (command: string, ...extra: string[]) =>
    runCli([command, "--org", ORG, "--primary", primary.url, ...named(), ...extra], { LBHOSTING_TOKEN: TOKEN });
  /** The secondaries the operator names: the only ones a command may contact. */
  const named = () => ["--secondary", secondaryA.url, "--secondary", secondaryB.url];
  /** Generation and digest of the org on every node. */
  const states = () =>
    Promise.all(
      agents.map((agent) =>
        client(agent)
          .getOrg(ORG)
          .then(({ generation, digest }) => ({ generation, digest })),
      ),
    );

  before(async () => {
    agents = await Promise.all(
      ["127.0.3.11", "127.0.3.12", "127.0.3.13"].map((host) => startAgentProcess({ host, token: TOKEN })),
    );
    [primary, secondaryA, secondaryB] = agents;
    const p = client(primary);
    await p.putOrg(ORG, { displayName: "Shop", loadBalanced: true, secondaries: [secondaryA.url, secondaryB.url] });
    for (const name of ["alice", "bob", "carol"]) await p.putUser(ORG, name, { password: `${name}-password-1` });
    await p.putService(ORG, "www", {
      kind: "website",
      domains: ["www.shop.test", "shop.test"],
      documentRoot: "public",
    });
    expect((await syncOrg(p, ORG, clientFor)).inSync).to.equal(true);

    // Pending on the primary: one user added, one service changed, one user removed, one password changed.
    await p.putUser(ORG, "dave", { password: "dave-password-1" });
    await p.putService(ORG, "www", { kind: "website", domains: ["www.shop.test"], documentRoot: "public" });
    await p.deleteUser(ORG, "carol");
    await p.putUser(ORG, "bob", { password: "bob-password-2" });
    // And a local edit on secondary B, which a sync overwrites.
    await client(secondaryB).putUser(ORG, "mallory", { password: "mallory-password" }, true);
  });

  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  const PENDING = [
    "~ user bob: password changed",
    "- user carol",
    "+ user dave",
    "~ service www: domains: [www.shop.test, shop.test] → [www.shop.test]",
  ];

  it("diff lists exactly the pending changes per secondary, delta or snapshot, and changes nothing", async () => {
    const before = await states();
    const result = await cli("diff");
    expect(result.code, result.stderr).to.equal(1);
    expect(result.stderr).to.equal("");
    const lines = result.stdout.trimEnd().split("\n");
    const section = (endpoint: string) => {
      const start = lines.findIndex((line) => line.startsWith(`${endpoint}:`));
      const end = lines.findIndex((line, index) => index > start && !line.startsWith("  "));
      return { head: lines[start], changes: lines.slice(start + 1, end).map((line) => line.trim()) };
    };
    const a = section(secondaryA.url);
    expect(a.head).to.match(/: behind at generation \d+: a sync would send a delta \(4 changes\)$/);
    expect(a.changes).to.deep.equal(PENDING);
    const b = section(secondaryB.url);
    expect(b.head).to.match(
      /: drifted at generation \d+ \(edited outside a sync\): a sync would send a snapshot \(5 changes\)$/,
    );
    expect(b.changes).to.deep.equal([...PENDING.slice(0, 3), "- user mallory", PENDING[3]]);
    expect(result.stdout).to.include("dry run, nothing changed");
    expect(result.stdout).not.to.include("$6$");
    expect(await states()).to.deep.equal(before);
  });

  it("diff --json gives the same plan as data", async () => {
    const before = await states();
    const result = await cli("diff", "--json");
    expect(result.code, result.stderr).to.equal(1);
    const report = JSON.parse(result.stdout) as {
      pending: boolean;
      secondaries: Array<{ endpoint: string; state: string; mode: string; changes: Array<Record<string, unknown>> }>;
    };
    expect(report.pending).to.equal(true);
    const [a, b] = report.secondaries;
    expect([a.endpoint, a.state, a.mode]).to.deep.equal([secondaryA.url, "behind", "delta"]);
    expect([b.endpoint, b.state, b.mode]).to.deep.equal([secondaryB.url, "drifted", "snapshot"]);
    expect(a.changes).to.deep.equal([
      { kind: "user", action: "change", name: "bob", fields: ["password changed"] },
      { kind: "user", action: "remove", name: "carol", fields: [] },
      { kind: "user", action: "add", name: "dave", fields: [] },
      {
        kind: "service",
        action: "change",
        name: "www",
        fields: ["domains: [www.shop.test, shop.test] → [www.shop.test]"],
      },
    ]);
    expect(await states()).to.deep.equal(before);
  });

  it("sync brings every secondary in sync, with a progress line each and a summary", async () => {
    const result = await cli("sync");
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(new RegExp(`sync ${ORG} → ${secondaryA.url}: delta 4 changes`));
    expect(result.stdout).to.match(new RegExp(`sync ${ORG} → ${secondaryB.url}: snapshot `));
    const [p, a, b] = await states();
    expect(a).to.deep.equal(p);
    expect(b).to.deep.equal(p);
    expect(result.stdout).to.include(`${ORG}: 2 of 2 secondaries in sync at generation ${p.generation}`);
    expect((await client(secondaryB).listUsers(ORG)).map((user) => user.username)).to.deep.equal([
      "alice",
      "bob",
      "dave",
    ]);

    const status = await cli("status");
    expect(status.code, status.stdout).to.equal(0);
    const diff = await cli("diff");
    expect(diff.code, diff.stdout).to.equal(0);
    expect(diff.stdout).to.include(`${secondaryA.url}: in-sync at generation ${p.generation}: nothing to do`);
  });

  it("sync --full sends snapshots to secondaries already in sync", async () => {
    const result = await cli("sync", "--full");
    expect(result.code, result.stderr).to.equal(0);
    for (const secondary of [secondaryA, secondaryB]) {
      expect(result.stdout).to.match(new RegExp(`sync ${ORG} → ${secondary.url}: snapshot \\d+ changes`));
    }
  });

  it("sync with a secondary down: the others are synced, exit 1 with the SyncError message", async () => {
    await client(primary).putUser(ORG, "erin", { password: "erin-password-1" });
    await secondaryB.stop();
    try {
      const result = await cli("sync", "--timeout-ms", "2000");
      expect(result.code).to.equal(1);
      expect(result.stdout).to.match(new RegExp(`sync ${ORG} → ${secondaryA.url}: delta 1 changes`));
      expect(result.stdout).to.include(`sync ${ORG} → ${secondaryB.url} is unreachable: ECONNREFUSED\n`);
      expect(result.stdout).to.include(`${ORG}: 1 of 2 secondaries in sync`);
      const stderr = result.stderr.trimEnd().split("\n");
      expect(stderr).to.have.length(1);
      expect(stderr[0]).to.match(
        /^lbhosting sync: organization shop: .* is unreachable: ECONNREFUSED.*lbhosting sync --org shop/,
      );
    } finally {
      await secondaryB.restart();
    }
    expect((await cli("sync")).code).to.equal(0);
  });

  describe("one clear line on failure", () => {
    for (const command of ["status", "sync", "diff"]) {
      const expectOneLine = (result: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) => {
        expect(result.code, result.stdout + result.stderr).to.equal(2);
        expect(result.stdout).to.equal("");
        const lines = result.stderr.trimEnd().split("\n");
        expect(lines, result.stderr).to.have.length(1);
        expect(lines[0]).to.match(pattern);
      };

      it(`${command}: bad token`, async () => {
        const before = await states();
        const args = [command, "--org", ORG, "--primary", primary.url];
        const result = await runCli(args, { LBHOSTING_TOKEN: "not-the-right-token-at-all" });
        expectOneLine(
          result,
          new RegExp(
            `^lbhosting ${command}: the primary ${primary.url} rejected the token \\(HTTP 401\\): .*--token-file`,
          ),
        );
        expect(result.stderr).not.to.include("not-the-right-token-at-all");
        expect(await states()).to.deep.equal(before);
      });

      it(`${command}: unknown org`, async () => {
        const result = await runCli([command, "--org", "nosuch", "--primary", primary.url], { LBHOSTING_TOKEN: TOKEN });
        expectOneLine(
          result,
          /organization "nosuch" does not exist on the primary .* \(HTTP 404\): check --org and --primary$/,
        );
      });

      it(`${command}: unreachable primary`, async () => {
        const result = await runCli([command, "--org", ORG, "--primary", UNREACHABLE], { LBHOSTING_TOKEN: TOKEN });
        expectOneLine(
          result,
          new RegExp(`the primary ${UNREACHABLE} is unreachable \\(ECONNREFUSED\\): check that its agent is running`),
        );
      });

      it(`${command}: a secondary given as --primary`, async () => {
        const result = await runCli([command, "--org", ORG, "--primary", secondaryA.url], { LBHOSTING_TOKEN: TOKEN });
        expectOneLine(
          result,
          new RegExp(`holds organization "${ORG}" only as a secondary copy: pass --primary ${primary.url}$`),
        );
      });

      it(`${command}: no token, and --help shows an example`, async () => {
        const result = await runCli([command, "--org", ORG, "--primary", primary.url]);
        expectOneLine(result, /no agent token: give --token-file FILE or set LBHOSTING_TOKEN$/);
        const help = await runCli([command, "--help"]);
        expect(help.code).to.equal(0);
        expect(help.stdout).to.match(
          new RegExp(`Example:\\n  LBHOSTING_TOKEN=\\.\\.\\. lbhosting ${command} --org acme --primary https://`),
        );
      });
    }
  });
});
