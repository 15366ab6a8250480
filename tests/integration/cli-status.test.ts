/**
 * `lbhosting status` against real agents on loopback (127.0.3.1-3): the rows and the exit code
 * for an in-sync, a behind, a drifted and an unreachable secondary, and the --json shape.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";

const TOKEN = "cli-status-test-token-0123456789";
const ORG = "acme";

interface Row {
  endpoint: string;
  role: string;
  generation: string;
  digest: string;
  state: string;
  lastSync: string;
}

describe("lbhosting status (real agents)", function () {
  this.timeout(60_000);
  let agents: AgentProcess[] = [];
  let primary: AgentProcess;
  let secondaryA: AgentProcess;
  let secondaryB: AgentProcess;
  let tokenDir: string;
  let tokenFile: string;
  const client = (agent: AgentProcess) => new AgentClient(agent.url, TOKEN, { timeoutMs: 5000, retries: 0 });
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 5000, retries: 0 });
  const named = () => ["--secondary", secondaryA.url, "--secondary", secondaryB.url];
  const sync = async () => expect((await syncOrg(client(primary), ORG, clientFor)).inSync).to.equal(true);

  /** Runs status with the token in a file and parses the table rows by endpoint. */
  async function status(): Promise<{ code: number | null; rows: Map<string, Row>; stdout: string }> {
    const result = await runCli([
      "status",
      "--org",
      ORG,
      "--primary",
      primary.url,
      ...named(),
      "--token-file",
      tokenFile,
    ]);
    expect(result.stderr).to.equal("");
    const rows = new Map<string, Row>();
    for (const line of result.stdout.split("\n")) {
      const cells = line.split(/\s{2,}/);
      if (cells.length !== 6 || !cells[0].startsWith("http")) continue;
      const [endpoint, role, generation, digest, state, lastSync] = cells;
      rows.set(endpoint, { endpoint, role, generation, digest, state, lastSync });
    }
    expect(result.stdout).not.to.include(TOKEN);
    expect(result.stdout).not.to.include("\u001b[", "no colours when stdout is not a terminal");
    return { code: result.code, rows, stdout: result.stdout };
  }

  before(async () => {
    agents = await Promise.all(
      ["127.0.3.1", "127.0.3.2", "127.0.3.3"].map((host) => startAgentProcess({ host, token: TOKEN })),
    );
    [primary, secondaryA, secondaryB] = agents;
    tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-cli-status-"));
    tokenFile = path.join(tokenDir, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    await client(primary).putOrg(ORG, { loadBalanced: true, secondaries: [secondaryA.url, secondaryB.url] });
    await client(primary).putUser(ORG, "alice", { password: "alice-password-1" });
    await sync();
  });

  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
    if (tokenDir) fs.rmSync(tokenDir, { recursive: true, force: true });
  });

  it("in sync: one row per node, exit code 0", async () => {
    const p = await client(primary).getOrg(ORG);
    const { code, rows, stdout } = await status();
    expect(code).to.equal(0);
    expect([...rows.keys()]).to.deep.equal([primary.url, secondaryA.url, secondaryB.url]);
    expect(rows.get(primary.url)).to.deep.include({
      role: "primary",
      generation: String(p.generation),
      digest: p.digest.slice(0, 12),
      state: "primary",
      lastSync: "-",
    });
    for (const secondary of [secondaryA, secondaryB]) {
      const row = rows.get(secondary.url)!;
      expect(row).to.deep.include({ role: "secondary", generation: String(p.generation), state: "in-sync" });
      expect(row.digest).to.equal(p.digest.slice(0, 12));
      expect(row.lastSync).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    expect(stdout).to.include(`${ORG}: 2 of 2 secondaries in sync`);
  });

  it("behind: a write on the primary without a sync, exit code 1", async () => {
    await client(primary).putUser(ORG, "bob", { password: "bob-password-1" });
    const p = await client(primary).getOrg(ORG);
    const { code, rows, stdout } = await status();
    expect(code).to.equal(1);
    expect(rows.get(primary.url)?.generation).to.equal(String(p.generation));
    for (const secondary of [secondaryA, secondaryB]) {
      expect(rows.get(secondary.url)).to.deep.include({ state: "behind", generation: String(p.generation - 1) });
    }
    expect(stdout).to.include(
      `0 of 2 secondaries in sync; run 'lbhosting sync --org ${ORG} --primary ${primary.url} ${named().join(" ")}'`,
    );
  });

  it("drifted: a forced local edit on a secondary, exit code 1", async () => {
    await sync();
    await client(secondaryB).putUser(ORG, "mallory", { password: "mallory-password" }, true);
    const { code, rows } = await status();
    expect(code).to.equal(1);
    expect(rows.get(secondaryA.url)?.state).to.equal("in-sync");
    expect(rows.get(secondaryB.url)?.state).to.equal("drifted");
  });

  it("unreachable: a stopped secondary, exit code 1, with the reason on its own line", async () => {
    await sync();
    await secondaryB.stop();
    try {
      const { code, rows, stdout } = await status();
      expect(code).to.equal(1);
      expect(rows.get(secondaryA.url)?.state).to.equal("in-sync");
      expect(rows.get(secondaryB.url)).to.deep.include({ state: "unreachable", generation: "-", digest: "-" });
      expect(stdout).to.include(`\n${secondaryB.url} is unreachable: ECONNREFUSED\n`);
    } finally {
      await secondaryB.restart();
    }
  });

  it("--json prints the primary, each secondary's sync status and inSync (token from LBHOSTING_TOKEN)", async () => {
    await client(primary).putService(ORG, "www", {
      kind: "website",
      domains: ["www.acme.test"],
      documentRoot: "public",
    });
    const p = await client(primary).getOrg(ORG);
    const result = await runCli(["status", "--org", ORG, "--primary", primary.url, ...named(), "--json"], {
      LBHOSTING_TOKEN: TOKEN,
    });
    expect(result.code, result.stderr).to.equal(1);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report).to.have.keys(["org", "loadBalanced", "primary", "secondaries", "unexpected", "inSync"]);
    expect(report).to.deep.include({
      org: ORG,
      loadBalanced: true,
      inSync: false,
      primary: { endpoint: primary.url, generation: p.generation, digest: p.digest, epoch: 0 },
    });
    const secondaries = report.secondaries as Array<Record<string, unknown>>;
    expect(secondaries.map((entry) => [entry.endpoint, entry.state, entry.generation])).to.deep.equal([
      [secondaryA.url, "behind", p.generation - 1],
      [secondaryB.url, "behind", p.generation - 1],
    ]);
    for (const entry of secondaries) expect(entry).to.include.keys(["digest", "lastSyncedAt"]);

    await sync();
    const synced = await runCli(["status", "--org", ORG, "--primary", primary.url, ...named(), "--json"], {
      LBHOSTING_TOKEN: TOKEN,
    });
    expect(synced.code).to.equal(0);
    expect(JSON.parse(synced.stdout)).to.include({ inSync: true });
  });
});
