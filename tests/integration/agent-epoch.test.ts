/**
 * Org epochs between real agents (127.0.50.1 – 127.0.50.3): a copy promoted in place, the other
 * copy following the new primary by delta, and the old primary fenced — its snapshots and deltas
 * refused with 409 naming both epochs — then demoted or removed. Plus a database from before
 * epochs, opened by this agent.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { AgentClient as ProviderClient } from "../../provider/client";
import { syncOrg } from "../../provider/sync";
import { type OrgStatus, orgStatusSchema, snapshotSchema } from "../../wire";
import { WRITE_HEADERS } from "../../wire/write-answer";
import { type AgentClient, agentClient } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";

const TOKEN = "agent-epoch-test-token-0123456789";
const ORG = "acme";

describe("org epochs: promotion and fencing (integration)", function () {
  this.timeout(120_000);
  let agents: AgentProcess[] = [];
  let old: AgentClient;
  let promoted: AgentClient;
  let other: AgentClient;
  let urls: { old: string; promoted: string; other: string };
  const provider = (url: string) => new ProviderClient(url, TOKEN, { timeoutMs: 10_000, retries: 0 });

  before(async () => {
    agents = await Promise.all(
      ["127.0.50.1", "127.0.50.2", "127.0.50.3"].map((host, index) =>
        startAgentProcess({ host, token: TOKEN, name: ["old-primary", "promoted", "other-copy"][index] }),
      ),
    );
    [old, promoted, other] = agents.map((agent) => agentClient(agent.url, TOKEN));
    urls = { old: agents[0].url, promoted: agents[1].url, other: agents[2].url };
  });

  after(async () => {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  });

  const status = async (client: AgentClient): Promise<OrgStatus> => {
    const answer = await client.get(`/v1/orgs/${ORG}`);
    expect(answer.status, answer.text).to.equal(200);
    return orgStatusSchema.parse(answer.json);
  };
  const snapshotOf = async (client: AgentClient) =>
    snapshotSchema.parse((await client.get(`/v1/orgs/${ORG}/snapshot`)).json);

  it("starts every org at epoch 0: status, snapshot, change log and write answers say so", async () => {
    await old.put(`/v1/orgs/${ORG}`, { loadBalanced: true, secondaries: [urls.promoted, urls.other] });
    const write = await old.put(`/v1/orgs/${ORG}/users/alice`, { password: "alice-password" });
    expect(write.status, write.text).to.equal(201);
    expect(write.headers[WRITE_HEADERS.epoch]).to.equal("0");
    await old.put(`/v1/orgs/${ORG}/services/www`, { kind: "website", domains: ["www.acme.test"], documentRoot: "www" });
    expect((await status(old)).epoch).to.equal(0);
    expect((await snapshotOf(old)).epoch).to.equal(0);
    expect((await old.get(`/v1/orgs/${ORG}/changes?since=0`)).json).to.deep.include({ epoch: 0 });
    const report = await syncOrg(provider(urls.old), ORG, provider);
    expect(report.inSync).to.equal(true);
    for (const copy of [promoted, other]) expect(await status(copy)).to.include({ role: "secondary", epoch: 0 });
  });

  it("promotes a copy in place: the primary at the copy's generation and digest, epoch raised", async () => {
    // The copy falls one write behind its sibling: only the sibling gets bob.
    await old.put(`/v1/orgs/${ORG}/users/bob`, { password: "bob-password-1" });
    const sibling = await provider(urls.other).applyReplicaChanges(ORG, {
      baseGeneration: (await status(other)).generation,
      changes: (await provider(urls.old).changesSince(ORG, (await status(other)).generation)).changes,
      digest: (await status(old)).digest,
      primary: urls.old,
      epoch: 0,
    });
    const copy = await status(promoted);
    expect(sibling.generation).to.equal(copy.generation + 1);

    const stale = await promoted.post(`/v1/orgs/${ORG}/promote`, { epoch: 1, generation: 1, digest: copy.digest });
    expect(stale.status).to.equal(409);
    expect(stale.json).to.deep.nested.include({ "error.code": "copy_changed" });
    expect(stale.text).to.include(`at generation ${copy.generation}`);

    const body = { epoch: 1, generation: copy.generation, digest: copy.digest };
    const answer = await promoted.post(`/v1/orgs/${ORG}/promote`, body);
    expect(answer.status, answer.text).to.equal(200);
    const after = orgStatusSchema.parse(answer.json);
    expect(after).to.include({ role: "primary", epoch: 1, generation: copy.generation, digest: copy.digest });
    expect(after.primary).to.equal(undefined);
    // Repeating it (a retried request) answers the same; a promotion always raises the epoch.
    expect(orgStatusSchema.parse((await promoted.post(`/v1/orgs/${ORG}/promote`, body)).json)).to.deep.equal(after);
    const again = await promoted.post(`/v1/orgs/${ORG}/promote`, { ...body, epoch: 0 });
    expect(again.status).to.equal(400);
    expect(again.json).to.deep.nested.include({ "error.details[0].path": "epoch" });
    // The promoted node takes writes as a primary, at its own generations.
    const write = await promoted.put(`/v1/orgs/${ORG}/users/carol`, { password: "carol-password" });
    expect(write.status, write.text).to.equal(201);
    expect(write.headers).to.include({
      [WRITE_HEADERS.epoch]: "1",
      [WRITE_HEADERS.generation]: String(copy.generation + 1),
    });
  });

  it("brings the other copy to the new primary (re-parented, epoch 1) and fences the old primary", async () => {
    await promoted.put(`/v1/orgs/${ORG}`, { loadBalanced: true, secondaries: [urls.other] });
    const lines: string[] = [];
    const report = await syncOrg(provider(urls.promoted), ORG, provider, { log: (line) => lines.push(line) });
    expect(report.inSync, JSON.stringify(report)).to.equal(true);
    expect(report.epoch).to.equal(1);
    // The sibling held bob at the generation the promoted copy's own carol took: a snapshot.
    expect(lines.join("\n")).to.match(/→ .*: snapshot/);
    const copy = await status(other);
    expect(copy).to.include({ role: "secondary", primary: urls.promoted, epoch: 1 });
    expect(copy.digest).to.equal((await status(promoted)).digest);

    // The old primary (epoch 0) still believes it is the primary: its replication is refused.
    const snapshot = { ...(await snapshotOf(old)), primary: urls.old };
    for (const target of [other, promoted]) {
      const refused = await target.put(`/v1/orgs/${ORG}/replica`, snapshot);
      expect(refused.status, refused.text).to.equal(409);
      expect(refused.json).to.deep.nested.include({ "error.code": "stale_epoch" });
      expect(refused.text).to.include("at epoch 1").and.to.include("from epoch 0");
    }
    const delta = await other.post(`/v1/orgs/${ORG}/replica/changes`, {
      baseGeneration: copy.generation,
      changes: [],
      digest: copy.digest,
      primary: urls.old,
      epoch: 0,
    });
    expect(delta.status).to.equal(409);
    expect(delta.text).to.include("at epoch 1").and.to.include("from epoch 0");
    // A client that sends no epoch (from before epochs) is at epoch 0: refused too.
    const unversioned: Record<string, unknown> = { ...snapshot };
    delete unversioned.epoch;
    expect((await other.put(`/v1/orgs/${ORG}/replica`, unversioned)).status).to.equal(409);
    // The old primary's sync, as `lbhosting sync` runs it, reaches no one.
    const fenced = await syncOrg(provider(urls.old), ORG, provider);
    expect(fenced.inSync).to.equal(false);
    for (const entry of fenced.secondaries) expect(entry.error).to.match(/stale_epoch/);
    expect(await status(other)).to.deep.equal(copy);
    // `lbhosting status` run against the old primary says it is stale, and where the primary is now.
    const namedFromOld = ["--secondary", urls.promoted, "--secondary", urls.other];
    const checked = await runCli(["status", "--org", ORG, "--primary", urls.old, ...namedFromOld], {
      LBHOSTING_TOKEN: TOKEN,
    });
    expect(checked.code, checked.stderr).to.equal(1);
    expect(checked.stdout).to.match(new RegExp(`${urls.old}\\s+primary\\s+\\d+\\s+\\w+\\s+stale-primary`));
    expect(checked.stdout).to.include(
      `${urls.old} is a stale primary of ${ORG} (epoch 0): its primary is now ${urls.promoted} (epoch 1)`,
    );
    const json = await runCli(["status", "--org", ORG, "--primary", urls.old, ...namedFromOld, "--json"], {
      LBHOSTING_TOKEN: TOKEN,
    });
    expect(JSON.parse(json.stdout)).to.deep.nested.include({
      "primary.epoch": 0,
      "primary.stale": { primary: urls.promoted, epoch: 1 },
      inSync: false,
    });
    const current = await runCli(["status", "--org", ORG, "--primary", urls.promoted, "--secondary", urls.other], {
      LBHOSTING_TOKEN: TOKEN,
    });
    expect(current.code, current.stdout).to.equal(0);
    // A copy is promoted only above the epoch it follows.
    const same = await other.post(`/v1/orgs/${ORG}/promote`, {
      epoch: 1,
      generation: copy.generation,
      digest: copy.digest,
    });
    expect(same.status).to.equal(409);
    expect(same.json).to.deep.nested.include({ "error.code": "stale_epoch" });
  });

  it("demotes the old primary with a snapshot of the higher epoch, or removes it with DELETE ?epoch", async () => {
    const current = await snapshotOf(promoted);
    // Removal needs the caller's epoch above the node's: the new primary refuses both requests.
    expect((await promoted.delete(`/v1/orgs/${ORG}/replica?epoch=0`)).status).to.equal(409);
    expect((await promoted.delete(`/v1/orgs/${ORG}/replica?epoch=1`)).json).to.deep.nested.include({
      "error.code": "primary_copy",
    });
    expect((await old.delete(`/v1/orgs/${ORG}/replica`)).status, "no epoch: a primary is kept").to.equal(409);

    const demoted = await old.put(`/v1/orgs/${ORG}/replica`, { ...current, primary: urls.promoted });
    expect(demoted.status, demoted.text).to.equal(200);
    expect(orgStatusSchema.parse(demoted.json)).to.include({
      role: "secondary",
      primary: urls.promoted,
      epoch: 1,
      generation: current.generation,
      digest: current.digest,
    });
    // As a copy it refuses ordinary writes, naming its new primary.
    const write = await old.put(`/v1/orgs/${ORG}/users/dave`, { password: "dave-password" });
    expect(write.status).to.equal(409);
    expect(write.text).to.include(urls.promoted);

    // A second org whose old primary is simply removed.
    await old.delete(`/v1/orgs/${ORG}/replica?epoch=1`);
    expect((await old.get(`/v1/orgs/${ORG}`)).status).to.equal(404);
    await old.put("/v1/orgs/gone", {});
    expect((await old.delete("/v1/orgs/gone/replica?epoch=0")).status, "not lower: kept").to.equal(409);
    expect((await old.delete("/v1/orgs/gone/replica?epoch=1")).status).to.equal(200);
    expect((await old.get("/v1/orgs/gone")).status).to.equal(404);
  });

  it("opens a database from before epochs: every org at epoch 0, content and digest unchanged", async () => {
    const agent = agents[2];
    const before = await status(other);
    await agent.stop();
    // Make the database what a schema-1 agent left: no epoch column, user_version 1.
    const db = path.join(agent.dataDir, "agent.db");
    const script = `
      const Database = require("better-sqlite3");
      const db = new Database(process.argv[1]);
      db.exec("ALTER TABLE orgs DROP COLUMN epoch");
      db.pragma("user_version = 1");
      db.close();`;
    await promisify(execFile)(process.execPath, ["-e", script, db], { timeout: 30_000 });
    await agent.restart();
    const after = await status(other);
    expect(after).to.deep.equal({ ...before, epoch: 0 });
    // The migrated copy is at epoch 0 now, below its primary's: an empty delta brings it along.
    const lines: string[] = [];
    const report = await syncOrg(provider(urls.promoted), ORG, provider, { log: (line) => lines.push(line) });
    expect(report.inSync, JSON.stringify(report)).to.equal(true);
    expect(lines.join("\n")).to.match(/→ .*: delta 0 changes/);
    expect(await status(other)).to.include({ epoch: 1, digest: before.digest });
  });
});
