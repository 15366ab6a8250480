/**
 * A corpus of bad requests (injection, traversal, oversize, wrong types, unknown fields) against
 * a real agent on 127.0.1.13. Each must be answered 400 (413 for oversize) naming the field, and
 * leave every org's generation, digest and content — and the rendered files — as they were.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { apiErrorSchema } from "../../sdk/schemas";
import { type AgentClient, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";

interface BadCase {
  what: string;
  method: "PUT" | "POST" | "GET" | "DELETE";
  path: string;
  body?: unknown;
  rawBody?: string | Buffer;
  status?: 400 | 413;
  /** The field the error must name (a `details[].path`). */
  field: string;
}

const website = { kind: "website", domains: ["www.acme.test"], documentRoot: "www" };
const ftp = { kind: "ftp", rootPath: "files" };
const user = { password: "a-fine-password" };
const SITE = "/v1/orgs/acme/services/www";
const USER = "/v1/orgs/acme/users/alice";
const HASH = "$6$saltsalt$" + "a".repeat(86);

const CORPUS: BadCase[] = [
  // Names in the path.
  { what: "org name with ';'", method: "PUT", path: "/v1/orgs/acme;rm", body: {}, field: "org" },
  { what: "org name in upper case", method: "PUT", path: "/v1/orgs/ACME", body: {}, field: "org" },
  { what: "org name with a brace", method: "PUT", path: "/v1/orgs/ac%7Bme", body: {}, field: "org" },
  { what: "org name with a space", method: "PUT", path: "/v1/orgs/ac%20me", body: {}, field: "org" },
  { what: "org name '..'", method: "PUT", path: "/v1/orgs/%2e%2e", body: {}, field: "org" },
  { what: "org name with a newline", method: "GET", path: "/v1/orgs/acme%0Aevil", field: "org" },
  { what: "org name with '$'", method: "DELETE", path: "/v1/orgs/%24host", field: "org" },
  { what: "org name of 64 characters", method: "PUT", path: `/v1/orgs/${"a".repeat(64)}`, body: {}, field: "org" },
  { what: "username with '$'", method: "PUT", path: "/v1/orgs/acme/users/al%24ice", body: user, field: "username" },
  {
    what: "username with a newline",
    method: "PUT",
    path: "/v1/orgs/acme/users/al%0Aice",
    body: user,
    field: "username",
  },
  { what: "username with a quote", method: "PUT", path: "/v1/orgs/acme/users/al%22ice", body: user, field: "username" },
  {
    what: "username of 33 characters",
    method: "PUT",
    path: `/v1/orgs/acme/users/${"a".repeat(33)}`,
    body: user,
    field: "username",
  },
  {
    what: "service name with '_'",
    method: "PUT",
    path: "/v1/orgs/acme/services/_www",
    body: website,
    field: "service",
  },
  { what: "service name with ';'", method: "PUT", path: "/v1/orgs/acme/services/w;w", body: website, field: "service" },
  { what: "path with a malformed escape", method: "PUT", path: "/v1/orgs/%E0", body: {}, field: "url" },
  // Domains.
  {
    what: "domain with ';'",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["exa;mple.com"] },
    field: "domains.0",
  },
  {
    what: "domain ending in ';'",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["a.test", "example.com;"] },
    field: "domains.1",
  },
  {
    what: "domain with a space",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["a b.test"] },
    field: "domains.0",
  },
  {
    what: "domain with a newline",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["a.test\nb.test"] },
    field: "domains.0",
  },
  {
    what: "domain with braces",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["{a}.test"] },
    field: "domains.0",
  },
  {
    what: "domain that is a variable",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["$host"] },
    field: "domains.0",
  },
  {
    what: "domain with a quote",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ['a".test'] },
    field: "domains.0",
  },
  {
    what: "domain of 254 characters",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: [`${"a.".repeat(126)}ab`] },
    field: "domains.0",
  },
  { what: "no domain", method: "PUT", path: SITE, body: { ...website, domains: [] }, field: "domains" },
  {
    what: "the same domain twice",
    method: "PUT",
    path: SITE,
    body: { ...website, domains: ["a.test", "a.test"] },
    field: "domains",
  },
  { what: "domains as a string", method: "PUT", path: SITE, body: { ...website, domains: "a.test" }, field: "domains" },
  { what: "domain as a number", method: "PUT", path: SITE, body: { ...website, domains: [42] }, field: "domains.0" },
  // Content paths.
  {
    what: "documentRoot '../other'",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "../other" },
    field: "documentRoot",
  },
  {
    what: "absolute documentRoot",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "/etc" },
    field: "documentRoot",
  },
  {
    what: "hidden documentRoot",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: ".git" },
    field: "documentRoot",
  },
  {
    what: "documentRoot climbing out midway",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "a/../../b" },
    field: "documentRoot",
  },
  {
    what: "documentRoot with a space",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "a b" },
    field: "documentRoot",
  },
  {
    what: "documentRoot with ';'",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "www;" },
    field: "documentRoot",
  },
  {
    what: "documentRoot with a newline",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "www\nroot /" },
    field: "documentRoot",
  },
  {
    what: "documentRoot with '$'",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "$document_root" },
    field: "documentRoot",
  },
  {
    what: "empty documentRoot",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "" },
    field: "documentRoot",
  },
  {
    what: "documentRoot through a symlink out of the org",
    method: "PUT",
    path: SITE,
    body: { ...website, documentRoot: "escape/www" },
    field: "documentRoot",
  },
  {
    what: "ftp rootPath '..'",
    method: "PUT",
    path: "/v1/orgs/acme/services/files",
    body: { ...ftp, rootPath: ".." },
    field: "rootPath",
  },
  {
    what: "ftp rootPath through a symlink",
    method: "PUT",
    path: "/v1/orgs/acme/services/files",
    body: { ...ftp, rootPath: "escape" },
    field: "rootPath",
  },
  // Shapes and types.
  { what: "unknown service kind", method: "PUT", path: SITE, body: { ...website, kind: "php" }, field: "kind" },
  {
    what: "missing service kind",
    method: "PUT",
    path: SITE,
    body: { domains: ["a.test"], documentRoot: "www" },
    field: "kind",
  },
  { what: "unknown service field", method: "PUT", path: SITE, body: { ...website, root: "/" }, field: "root" },
  {
    what: "website field on an ftp service",
    method: "PUT",
    path: "/v1/orgs/acme/services/files",
    body: { ...ftp, domains: ["a.test"] },
    field: "domains",
  },
  {
    what: "writable as a number",
    method: "PUT",
    path: "/v1/orgs/acme/services/files",
    body: { ...ftp, writable: 1 },
    field: "writable",
  },
  { what: "unknown user field", method: "PUT", path: USER, body: { ...user, isAdmin: true }, field: "isAdmin" },
  { what: "password too short", method: "PUT", path: USER, body: { password: "short" }, field: "password" },
  {
    what: "password with a newline",
    method: "PUT",
    path: USER,
    body: { password: "pass\nword-long" },
    field: "password",
  },
  { what: "password as a number", method: "PUT", path: USER, body: { password: 12345678 }, field: "password" },
  {
    what: "malformed passwordHash",
    method: "PUT",
    path: USER,
    body: { passwordHash: "$1$abc$def" },
    field: "passwordHash",
  },
  {
    what: "password and passwordHash",
    method: "PUT",
    path: USER,
    body: { password: "a-fine-password", passwordHash: HASH },
    field: "password",
  },
  { what: "enabled as a string", method: "PUT", path: USER, body: { ...user, enabled: "yes" }, field: "enabled" },
  { what: "invalid email", method: "PUT", path: USER, body: { ...user, email: "not-an-email" }, field: "email" },
  {
    what: "displayName with a quote",
    method: "PUT",
    path: USER,
    body: { ...user, displayName: 'Al"ice' },
    field: "displayName",
  },
  {
    what: "displayName with ';'",
    method: "PUT",
    path: USER,
    body: { ...user, displayName: "Alice; drop" },
    field: "displayName",
  },
  {
    what: "access naming a bad service",
    method: "PUT",
    path: USER,
    body: { ...user, access: ["w;w"] },
    field: "access.0",
  },
  { what: "access as an object", method: "PUT", path: USER, body: { ...user, access: { www: true } }, field: "access" },
  {
    what: "managedBy with '$'",
    method: "PUT",
    path: USER,
    body: { ...user, managedBy: "stack/$x" },
    field: "managedBy",
  },
  {
    what: "org displayName with braces",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { displayName: "Acme {x}" },
    field: "displayName",
  },
  {
    what: "org displayName of 129 characters",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { displayName: "a".repeat(129) },
    field: "displayName",
  },
  {
    what: "secondary that is not a URL",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { secondaries: ["not a url"] },
    field: "secondaries.0",
  },
  {
    what: "secondary with a path",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { secondaries: ["http://127.0.0.9:1/x"] },
    field: "secondaries.0",
  },
  {
    what: "secondary with credentials",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { secondaries: ["http://u:p@127.0.0.9:1"] },
    field: "secondaries.0",
  },
  {
    what: "loadBalanced as a string",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { loadBalanced: "true" },
    field: "loadBalanced",
  },
  {
    what: "unknown org field",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { primary: "http://127.0.0.9:1" },
    field: "primary",
  },
  { what: "body that is an array", method: "PUT", path: USER, body: [user], field: "body" },
  {
    what: "body that is not JSON",
    method: "PUT",
    path: USER,
    rawBody: '{"password": "a-fine-password"',
    field: "body",
  },
  { what: "body of JSON null", method: "PUT", path: USER, rawBody: "null", field: "body" },
  {
    what: "prototype pollution",
    method: "PUT",
    path: USER,
    rawBody: '{"password":"a-fine-password","__proto__":{"x":1}}',
    field: "body",
  },
  // Query parameters.
  { what: "force that is not a boolean", method: "PUT", path: "/v1/orgs/acme?force=yes", body: {}, field: "force" },
  { what: "negative since", method: "GET", path: "/v1/orgs/acme/changes?since=-1", field: "since" },
  { what: "missing since", method: "GET", path: "/v1/orgs/acme/changes", field: "since" },
  // Sync bodies.
  {
    what: "replica whose digest does not match",
    method: "PUT",
    path: "/v1/orgs/other/replica",
    body: "REPLICA_BAD_DIGEST",
    field: "digest",
  },
  {
    what: "replica naming another org",
    method: "PUT",
    path: "/v1/orgs/other/replica",
    body: "REPLICA_OTHER_NAME",
    field: "org.name",
  },
  {
    what: "replica with an unsafe domain",
    method: "PUT",
    path: "/v1/orgs/other/replica",
    body: "REPLICA_BAD_DOMAIN",
    field: "services.0.domains.0",
  },
  {
    what: "delta with non-consecutive generations",
    method: "POST",
    path: "/v1/orgs/acme/replica/changes",
    body: "DELTA_GAP",
    field: "changes.1.generation",
  },
  {
    what: "delta with an unknown change type",
    method: "POST",
    path: "/v1/orgs/acme/replica/changes",
    body: "DELTA_TYPE",
    field: "changes.0.type",
  },
  // Size.
  {
    what: "body over 1 MiB",
    method: "PUT",
    path: USER,
    rawBody: JSON.stringify({ displayName: "x".repeat(1024 * 1024) }),
    status: 413,
    field: "body",
  },
];

describe("agent bad input (integration)", function () {
  let agent: AgentProcess;
  let api: AgentClient;
  let outside: string;
  let snapshot: object;

  const state = async () => ({
    orgs: (await api.get("/v1/orgs")).json,
    acme: (await api.get("/v1/orgs/acme/snapshot")).json,
    files: fs
      .readdirSync(agent.nginxConfDir)
      .map((file) => fs.readFileSync(path.join(agent.nginxConfDir, file), "utf8")),
  });

  before(async function () {
    agent = await startAgentProcess({ host: "127.0.1.13" });
    api = agentClient(agent.url, agent.token);
    outside = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-outside-"));
    fs.mkdirSync(path.join(agent.contentRoot, "acme"));
    fs.symlinkSync(outside, path.join(agent.contentRoot, "acme", "escape"));
    expect((await api.put("/v1/orgs/acme", { displayName: "Acme" })).status).to.equal(201);
    expect((await api.put(USER, user)).status).to.equal(201);
    expect((await api.put(SITE, website)).status).to.equal(201);
    snapshot = (await api.get("/v1/orgs/acme/snapshot")).json as object;
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
    if (outside) fs.rmSync(outside, { recursive: true, force: true });
  });

  /** Bodies that need the live snapshot. */
  function bodyFor(testCase: BadCase): unknown {
    const base = snapshot as { org: object; services: object[]; digest: string; generation: number };
    const replica = { ...base, org: { ...base.org, name: "other" }, primary: "http://127.0.0.9:1" };
    switch (testCase.body) {
      case "REPLICA_BAD_DIGEST":
        return replica;
      case "REPLICA_OTHER_NAME":
        return { ...base, primary: "http://127.0.0.9:1" };
      case "REPLICA_BAD_DOMAIN":
        return { ...replica, services: [{ ...base.services[0], domains: ["evil.test;include /etc/passwd"] }] };
      case "DELTA_GAP":
        return {
          baseGeneration: 3,
          digest: base.digest,
          changes: [
            { generation: 4, type: "user.delete", username: "alice" },
            { generation: 6, type: "user.delete", username: "bob" },
          ],
        };
      case "DELTA_TYPE":
        return { baseGeneration: 3, digest: base.digest, changes: [{ generation: 4, type: "root.put" }] };
      default:
        return testCase.body;
    }
  }

  it(`has a corpus of at least 40 cases (${CORPUS.length})`, function () {
    expect(CORPUS.length).to.be.at.least(40);
  });

  for (const testCase of CORPUS) {
    it(`refuses ${testCase.what}`, async function () {
      const before = await state();
      const answer = await call(agent.url, testCase.method, testCase.path, {
        token: agent.token,
        ...(testCase.rawBody !== undefined ? { rawBody: testCase.rawBody } : {}),
        ...(testCase.body !== undefined ? { body: bodyFor(testCase) } : {}),
      });
      expect(answer.status, answer.text).to.equal(testCase.status ?? 400);
      const error = apiErrorSchema.parse(answer.json).error;
      expect(
        error.details.map((detail) => detail.path),
        answer.text,
      ).to.include(testCase.field);
      expect(error.message).to.be.a("string").and.not.equal("");
      expect(await state()).to.deep.equal(before);
    });
  }

  it("still holds exactly the content it was given", async function () {
    expect((await api.get("/v1/orgs/acme/snapshot")).json).to.deep.equal(snapshot);
    expect((await api.get("/v1/orgs")).json)
      .to.have.property("orgs")
      .with.length(1);
  });
});
