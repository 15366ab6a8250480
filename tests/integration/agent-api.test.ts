/**
 * The agent's HTTP API against a real agent process on 127.0.1.11: records, generations, the
 * change log, idempotent PUTs, password handling, secondary-copy protection and request logs.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  OWNER_HEADER,
  deletedSchema,
  healthSchema,
  orgListSchema,
  serviceListSchema,
  userListSchema,
  writeResultFromHeaders,
  orgStatusSchema,
  snapshotSchema,
  userRecordSchema,
} from "../../wire";
import { type AgentClient, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { orgAccounts } from "../support/puredb";
import { pdbOf } from "../support/pureftpd";

const PASSWORD = "correct-horse-battery";

describe("agent API (integration)", function () {
  let agent: AgentProcess;
  let api: AgentClient;

  before(async function () {
    agent = await startAgentProcess({ host: "127.0.1.11", changeLogLimit: 5 });
    api = agentClient(agent.url, agent.token);
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
  });

  it("serves health without a token, revealing only name and version", async function () {
    const answer = await call(agent.url, "GET", "/v1/health", { token: null });
    expect(answer.status).to.equal(200);
    const { version } = JSON.parse(fs.readFileSync(path.resolve(__dirname, "../../../package.json"), "utf8"));
    expect(healthSchema.strict().parse(answer.json)).to.deep.equal({ name: agent.name, version });
  });

  it("creates an org as primary at generation 1, and a repeated PUT changes nothing", async function () {
    const created = await api.put("/v1/orgs/acme", { displayName: "Acme Inc", managedBy: "stack/acme" });
    expect(created.status).to.equal(201);
    const status = orgStatusSchema.parse(created.json);
    expect(status).to.include({
      name: "acme",
      role: "primary",
      generation: 1,
      drifted: false,
      managedBy: "stack/acme",
    });
    expect(status.primary).to.equal(undefined);

    const again = await api.put("/v1/orgs/acme", { displayName: "Acme Inc", managedBy: "stack/acme" });
    expect(again.status).to.equal(200);
    expect(again.json).to.deep.equal(created.json);
  });

  it("normalises secondaries and rejects the same node listed twice", async function () {
    const answer = await api.put("/v1/orgs/norm", { secondaries: ["http://127.0.0.9:8000/"] });
    expect(orgStatusSchema.parse(answer.json).secondaries).to.deep.equal(["http://127.0.0.9:8000"]);
    const twice = await api.put("/v1/orgs/norm", { secondaries: ["http://127.0.0.9:8000/", "http://127.0.0.9:8000"] });
    expect(twice.status).to.equal(400);
    expect(twice.json).to.have.nested.property("error.details[0].path", "secondaries");
  });

  it("hashes a plaintext password at once, never returns it, and keeps the hash when it still verifies", async function () {
    const created = await api.put("/v1/orgs/acme/users/alice", { password: PASSWORD, email: "alice@example.com" });
    expect(created.status).to.equal(201);
    expect(created.text).to.not.include(PASSWORD);
    const user = userRecordSchema.parse(created.json);
    expect(user.passwordHash).to.match(/^\$6\$/);
    const write = writeResultFromHeaders({ get: (name) => (created.headers[name] as string | undefined) ?? null });
    expect(write).to.include({ generation: 2, changed: true });

    const again = await api.put("/v1/orgs/acme/users/alice", { password: PASSWORD, email: "alice@example.com" });
    expect(again.status).to.equal(200);
    expect(userRecordSchema.parse(again.json).passwordHash).to.equal(user.passwordHash);
    expect(again.headers["x-lbhosting-changed"]).to.equal("false");
    expect(again.headers["x-lbhosting-generation"]).to.equal("2");

    const changed = await api.put("/v1/orgs/acme/users/alice", {
      password: "another-password",
      email: "alice@example.com",
    });
    expect(userRecordSchema.parse(changed.json).passwordHash).to.not.equal(user.passwordHash);
    expect(changed.headers["x-lbhosting-generation"]).to.equal("3");

    const fetched = await api.get("/v1/orgs/acme/users/alice");
    expect(fetched.status).to.equal(200);
    expect(fetched.text).to.not.include("another-password");
    expect(userRecordSchema.parse(fetched.json)).to.deep.equal(changed.json);
  });

  it("stores a given passwordHash as is and keeps the hash when no password is given", async function () {
    const hash = execFileSync("openssl", ["passwd", "-6", "-salt", "fixedsalt", PASSWORD], { encoding: "utf8" }).trim();
    const put = await api.put("/v1/orgs/acme/users/bob", { passwordHash: hash, access: ["www"] });
    expect(put.status).to.equal(201);
    const update = await api.put("/v1/orgs/acme/users/bob", { displayName: "Bob", access: ["www"] });
    expect(update.status).to.equal(200);
    expect(userRecordSchema.parse(update.json)).to.include({ passwordHash: hash, displayName: "Bob" });
  });

  it("with an owner header, refuses to overwrite a user or service another owner manages, and changes nothing", async function () {
    const put = (path: string, body: object, owner: string) =>
      call(agent.url, "PUT", path, { token: agent.token, body, headers: { [OWNER_HEADER]: owner } });
    await api.put("/v1/orgs/acme/users/olga", { password: PASSWORD, displayName: "by hand", managedBy: "someone" });
    const before = (await api.get("/v1/orgs/acme")).json as { generation: number };

    const refused = await put(
      "/v1/orgs/acme/users/olga",
      { password: PASSWORD, managedBy: "pulumi:p/s/olga" },
      "pulumi:p/s/olga",
    );
    expect(refused.status).to.equal(409);
    expect(refused.json).to.have.nested.property("error.code", "managed_elsewhere");
    expect(refused.text).to.include("managed by 'someone'");
    expect(userRecordSchema.parse((await api.get("/v1/orgs/acme/users/olga")).json).displayName).to.equal("by hand");
    expect(((await api.get("/v1/orgs/acme")).json as { generation: number }).generation).to.equal(before.generation);

    // Its own owner (a retried create) and a new user pass; so does a write without the header (adopt).
    expect((await put("/v1/orgs/acme/users/olga", { password: PASSWORD, managedBy: "x" }, "someone")).status).to.equal(
      200,
    );
    expect((await put("/v1/orgs/acme/users/pia", { password: PASSWORD, managedBy: "p" }, "p")).status).to.equal(201);
    const service = { kind: "website", domains: ["olga.test"], documentRoot: "www", managedBy: "someone" };
    expect((await api.put("/v1/orgs/acme/services/olga-site", service)).status).to.equal(201);
    const serviceRefused = await put("/v1/orgs/acme/services/olga-site", { ...service, managedBy: "me" }, "me");
    expect(serviceRefused.status).to.equal(409);
    expect(serviceRefused.json).to.have.nested.property("error.code", "managed_elsewhere");
    expect((await api.delete("/v1/orgs/acme/services/olga-site")).status).to.equal(200);

    // The owner goes into no configuration, but is validated like managedBy.
    const bad = await put("/v1/orgs/acme/users/olga", { password: PASSWORD }, "x; rm -rf /");
    expect(bad.status).to.equal(400);
    expect(bad.json).to.have.nested.property("error.details[0].path", OWNER_HEADER);
    for (const user of ["olga", "pia"]) expect((await api.delete(`/v1/orgs/acme/users/${user}`)).status).to.equal(200);
  });

  it("requires a password (or hash) for a new user, naming the field", async function () {
    const answer = await api.put("/v1/orgs/acme/users/carol", { displayName: "Carol" });
    expect(answer.status).to.equal(400);
    expect(answer.json).to.have.nested.property("error.details[0].path", "password");
  });

  it("creates, lists, replaces and deletes services, bumping the generation once per real change", async function () {
    const before = orgStatusSchema.parse((await api.get("/v1/orgs/acme")).json).generation;
    const site = { kind: "website", domains: ["www.acme.test", "acme.test"], documentRoot: "sites/www" };
    expect((await api.put("/v1/orgs/acme/services/www", site)).status).to.equal(201);
    expect((await api.put("/v1/orgs/acme/services/www", site)).headers["x-lbhosting-changed"]).to.equal("false");
    const ftp = await api.put("/v1/orgs/acme/services/files", { kind: "ftp", rootPath: ".", writable: true });
    expect(ftp.json).to.deep.equal({
      name: "files",
      kind: "ftp",
      enabled: true,
      rootPath: ".",
      writable: true,
      managedBy: "",
    });
    const list = serviceListSchema.parse((await api.get("/v1/orgs/acme/services")).json);
    expect(list.services.map((service) => service.name)).to.deep.equal(["files", "www"]);
    const deleted = await api.delete("/v1/orgs/acme/services/files");
    expect(deleted.status).to.equal(200);
    expect(deleted.json).to.include({ generation: before + 3, changed: true });
    expect((await api.delete("/v1/orgs/acme/services/files")).status).to.equal(404);
    expect((await api.get("/v1/orgs/acme/services/files")).status).to.equal(404);
  });

  it("answers the change log in order, and 410 once it no longer reaches back", async function () {
    const status = orgStatusSchema.parse((await api.get("/v1/orgs/acme")).json);
    const recent = await api.get(`/v1/orgs/acme/changes?since=${status.generation - 2}`);
    expect(recent.status).to.equal(200);
    const body = recent.json as { generation: number; digest: string; changes: Array<{ generation: number }> };
    expect(body.generation).to.equal(status.generation);
    expect(body.digest).to.equal(status.digest);
    expect(body.changes.map((change) => change.generation)).to.deep.equal([status.generation - 1, status.generation]);
    // It keeps at least its limit of 5 entries.
    const kept = await api.get(`/v1/orgs/acme/changes?since=${status.generation - 5}`);
    expect(kept.json).to.have.property("changes").with.length(5);
    const none = await api.get(`/v1/orgs/acme/changes?since=${status.generation}`);
    expect(none.json).to.have.property("changes").with.length(0);
    // The agent keeps 5 entries (--change-log-limit 5); generation 1 is long gone.
    const gone = await api.get("/v1/orgs/acme/changes?since=0");
    expect(gone.status).to.equal(410);
    expect(gone.json).to.have.nested.property("error.code", "log_unavailable");
    expect((await api.get(`/v1/orgs/acme/changes?since=${status.generation + 1}`)).status).to.equal(410);
  });

  it("returns a snapshot whose digest is the org's", async function () {
    const snapshot = snapshotSchema.parse((await api.get("/v1/orgs/acme/snapshot")).json);
    const status = orgStatusSchema.parse((await api.get("/v1/orgs/acme")).json);
    expect(snapshot.generation).to.equal(status.generation);
    expect(snapshot.digest).to.equal(status.digest);
    expect(snapshot.users.map((user) => user.username)).to.deep.equal(["alice", "bob"]);
    const users = userListSchema.parse((await api.get("/v1/orgs/acme/users")).json);
    expect(users.users).to.deep.equal(snapshot.users);
    const orgs = orgListSchema.parse((await api.get("/v1/orgs")).json);
    expect(orgs.orgs.map((org) => org.name)).to.deep.equal(["acme", "norm"]);
  });

  it("refuses ordinary writes to a secondary copy (naming the primary) unless forced, then reports drift", async function () {
    const primary = (await api.get("/v1/orgs/acme/snapshot")).json as Record<string, unknown>;
    const replica = await api.put("/v1/orgs/copy/replica", {
      ...primary,
      org: { ...(primary.org as object), name: "copy" },
      digest: "0".repeat(64),
      primary: "http://127.0.0.77:9000",
    });
    // The digest above is wrong on purpose: a copy is only imported when its content verifies.
    expect(replica.status).to.equal(400);
    expect(replica.json).to.have.nested.property("error.details[0].path", "digest");

    // A correct import: take the snapshot of a fresh primary org, import it under the same name elsewhere.
    const other = await startAgentProcess({ host: "127.0.1.31" });
    try {
      const otherApi = agentClient(other.url, other.token);
      await otherApi.put("/v1/orgs/copy", { displayName: "Copy" });
      await otherApi.put("/v1/orgs/copy/users/dave", { password: PASSWORD });
      const snapshot = (await otherApi.get("/v1/orgs/copy/snapshot")).json as object;
      const imported = await api.put("/v1/orgs/copy/replica", { ...snapshot, primary: other.url });
      expect(imported.status).to.equal(200);
      expect(orgStatusSchema.parse(imported.json)).to.include({
        role: "secondary",
        primary: other.url,
        drifted: false,
      });
    } finally {
      await other.stop();
      other.cleanup();
    }

    for (const [method, path, body] of [
      ["PUT", "/v1/orgs/copy", { displayName: "Local" }],
      ["DELETE", "/v1/orgs/copy", undefined],
      ["PUT", "/v1/orgs/copy/users/erin", { password: PASSWORD }],
      ["DELETE", "/v1/orgs/copy/users/dave", undefined],
      ["PUT", "/v1/orgs/copy/services/www", { kind: "ftp", rootPath: "." }],
      ["DELETE", "/v1/orgs/copy/services/www", undefined],
    ] as const) {
      const answer = await call(agent.url, method, path, { token: agent.token, body });
      expect(answer.status, `${method} ${path}`).to.equal(409);
      expect(answer.json).to.have.nested.property("error.code", "secondary_copy");
      expect((answer.json as { error: { message: string } }).error.message).to.include("http://127.0.1.31");
    }

    const before = orgStatusSchema.parse((await api.get("/v1/orgs/copy")).json);
    const forced = await api.put("/v1/orgs/copy/users/erin?force=true", { password: PASSWORD });
    expect(forced.status).to.equal(201);
    const after = orgStatusSchema.parse((await api.get("/v1/orgs/copy")).json);
    expect(after.generation).to.equal(before.generation);
    expect(after.digest).to.not.equal(before.digest);
    expect(after.drifted).to.equal(true);
    expect(after.lastSyncedAt).to.be.a("string");

    // A forced edit that undoes itself brings the digest back: no drift.
    expect((await api.delete("/v1/orgs/copy/users/erin?force=true")).status).to.equal(200);
    expect(orgStatusSchema.parse((await api.get("/v1/orgs/copy")).json).drifted).to.equal(false);
  });

  it("never imports a replica over a primary, and removes secondary copies only", async function () {
    const snapshot = (await api.get("/v1/orgs/acme/snapshot")).json as object;
    const overPrimary = await api.put("/v1/orgs/acme/replica", { ...snapshot, primary: "http://127.0.0.77:9000" });
    expect(overPrimary.status).to.equal(409);
    expect(overPrimary.json).to.have.nested.property("error.code", "primary_copy");
    expect((await api.delete("/v1/orgs/acme/replica")).status).to.equal(409);
    expect((await api.delete("/v1/orgs/nothing/replica")).status).to.equal(404);
    expect(deletedSchema.parse((await api.delete("/v1/orgs/copy/replica")).json)).to.deep.equal({
      name: "copy",
      deleted: true,
    });
    expect((await api.get("/v1/orgs/copy")).status).to.equal(404);
  });

  it("writes FTP accounts with the user's hash for users with access to an FTP service", async function () {
    await api.put("/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "upload" });
    await api.put("/v1/orgs/acme/users/alice", { password: PASSWORD, access: ["files"] });
    const user = userRecordSchema.parse((await api.get("/v1/orgs/acme/users/alice")).json);
    const passwd = orgAccounts(agent.dataDir, "acme");
    const home = path.join(fs.realpathSync(agent.contentRoot), "acme", "upload");
    // A read-only service's accounts run as nobody (--ftp-readonly-uid/gid), which owns no content.
    expect(passwd).to.equal(`alice@files.acme:${user.passwordHash}:65534:65534::${home}/./::::::::::::\n`);
    expect(fs.statSync(pdbOf(agent.dataDir)).mode & 0o777).to.equal(0o600);
    await api.put("/v1/orgs/acme/users/alice", { password: PASSWORD, access: [] });
    expect(orgAccounts(agent.dataDir, "acme")).to.equal("");
  });

  it("deletes an org with everything in it but leaves its content folder alone", async function () {
    const folder = path.join(agent.contentRoot, "acme", "sites", "www");
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, "index.html"), "hello");
    const answer = await api.delete("/v1/orgs/acme");
    expect(answer.json).to.deep.equal({ name: "acme", deleted: true });
    expect((await api.get("/v1/orgs/acme/users/alice")).status).to.equal(404);
    expect((await api.get("/v1/orgs/acme/changes?since=0")).status).to.equal(404);
    expect(fs.readFileSync(path.join(folder, "index.html"), "utf8")).to.equal("hello");
    expect(fs.readdirSync(agent.nginxConfDir).filter((file) => file.startsWith("lbh.acme."))).to.deep.equal([]);
    // Re-creating starts a fresh history.
    expect(orgStatusSchema.parse((await api.put("/v1/orgs/acme", {})).json).generation).to.equal(1);
  });

  it("logs one JSON line per request with method, route, status and time, and never a secret", async function () {
    await api.get("/v1/orgs/acme/snapshot?since=7&token=leak-me-please");
    // The line is written when the response has been sent; give it a moment to arrive.
    const logged = () => agent.stdout.some((line) => line.includes('"route":"/v1/orgs/:org/snapshot?since=7"'));
    for (let attempt = 0; attempt < 50 && !logged(); attempt++) await new Promise((r) => setTimeout(r, 20));
    const requests = agent.stdout
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.msg === "request");
    expect(requests.length).to.be.greaterThan(20);
    for (const entry of requests) {
      expect(entry).to.have.all.keys("time", "level", "msg", "method", "route", "status", "ms");
    }
    expect(requests.at(-1)).to.include({ method: "GET", route: "/v1/orgs/:org/snapshot?since=7", status: 200 });
    const everything = agent.stdout.join("\n") + agent.stderr();
    expect(everything).to.not.include(agent.token);
    expect(everything).to.not.include(PASSWORD);
    expect(everything).to.not.include("another-password");
    expect(everything).to.not.include("leak-me-please");
    expect(everything).to.not.include("$6$");
  });
});
