/**
 * A corpus of bad requests (injection, traversal, oversize, wrong types, unknown fields, malformed
 * HTTP and JSON) against a real agent on 127.0.1.13. Each must be answered in the API's error shape
 * naming the field — 400, or 404/413/431 where that is the accurate status — never echo the token,
 * and leave every org's generation, digest and content — and the rendered files — as they were.
 * Then what sloppy and hostile clients do beyond single requests (127.0.30.1 – 127.0.30.2): empty
 * JSON bodies, a lower-case scheme, credentials in the URL, idle and half-sent connections, and
 * more connections than the agent takes.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { apiErrorSchema } from "../../wire";
import net from "node:net";
import { type AgentClient, type HttpAnswer, agentClient, call, parseRawAnswer, rawCall } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";

interface BadCase {
  what: string;
  method: "PUT" | "POST" | "GET" | "DELETE";
  path: string;
  body?: unknown;
  rawBody?: string | Buffer;
  /** The whole request as bytes on the wire (for what no HTTP client would send); `method` and `path` only describe it. */
  raw?: (token: string) => Buffer;
  status?: 400 | 404 | 413 | 431;
  /** The error code, where the case is about it. */
  code?: string;
  /** The field the error must name (a `details[].path`). */
  field: string;
}

/** An authorized request with a JSON body given as bytes. */
const jsonRequest = (method: string, path: string, body: Buffer) => (token: string) =>
  Buffer.concat([
    Buffer.from(
      `${method} ${path} HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer ${token}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    ),
    body,
  ]);
/** JSON text with the bytes `bad` (not UTF-8) spliced in at `at`. */
const withBytes = (text: string, at: string, bad: number[]) =>
  Buffer.concat([
    Buffer.from(text.slice(0, text.indexOf(at))),
    Buffer.from(bad),
    Buffer.from(text.slice(text.indexOf(at))),
  ]);

const website = { kind: "website", domains: ["www.acme.test"], documentRoot: "www" };
const ftp = { kind: "ftp", rootPath: "files" };
const user = { password: "a-fine-password" };
const SITE = "/v1/orgs/acme/services/www";
const USER = "/v1/orgs/acme/users/alice";
const HASH = "$6$saltsalt$" + "a".repeat(86);

/** Short limits, so the connection tests below see the agent close connections within seconds. */
const SHORT_TIMEOUTS = ["--request-timeout-ms", "1500", "--idle-timeout-ms", "1000"];

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
  {
    what: "a raw non-ASCII byte in the path",
    method: "GET",
    path: "/v1/orgs/ac\\xe9me",
    raw: (token) =>
      Buffer.concat([
        Buffer.from("GET /v1/orgs/ac"),
        Buffer.from([0xe9]),
        Buffer.from(`me HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`),
      ]),
    code: "bad_url",
    field: "url",
  },
  {
    what: "a request line that is not HTTP",
    method: "GET",
    path: "(garbage)",
    raw: () => Buffer.from("HELLO agent\r\n\r\n"),
    code: "bad_request",
    field: "request",
  },
  {
    what: "headers over the size limit",
    method: "GET",
    path: "/v1/orgs",
    raw: (token) =>
      Buffer.from(
        `GET /v1/orgs HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer ${token}\r\n` +
          `X-Filler: ${"x".repeat(20_000)}\r\nConnection: close\r\n\r\n`,
      ),
    status: 431,
    code: "headers_too_large",
    field: "headers",
  },
  // Encoded '..' never climbs out of a route or a folder.
  {
    what: "username of encoded '../../etc'",
    method: "PUT",
    path: "/v1/orgs/acme/users/%2e%2e%2f%2e%2e%2fetc",
    body: user,
    field: "username",
  },
  {
    what: "service name of encoded '..\\..\\x'",
    method: "PUT",
    path: "/v1/orgs/acme/services/..%5c..%5cx",
    body: website,
    field: "service",
  },
  { what: "org of encoded '../'", method: "DELETE", path: "/v1/orgs/%2E%2E%2F", field: "org" },
  {
    what: "an encoded '..' between routes",
    method: "DELETE",
    path: "/v1/orgs/acme/users/%2e%2e/%2e%2e",
    status: 404,
    code: "not_found",
    field: "url",
  },
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
    what: "a passwordHash whose rounds would pin pure-ftpd's CPU at every login",
    method: "PUT",
    path: USER,
    body: { passwordHash: `$6$rounds=999999999$saltsalt$${"a".repeat(86)}` },
    field: "passwordHash",
  },
  {
    what: "displayName with a right-to-left override",
    method: "PUT",
    path: USER,
    body: { ...user, displayName: "Alice \u202egnp.exe" },
    field: "displayName",
  },
  {
    what: "an org displayName with a C1 control character",
    method: "PUT",
    path: "/v1/orgs/acme",
    body: { displayName: "Acme\u0085Corp" },
    field: "displayName",
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
    code: "forbidden_key",
    field: "__proto__",
  },
  {
    what: "a nested constructor.prototype",
    method: "PUT",
    path: SITE,
    rawBody: JSON.stringify({ ...website, domains: [{ constructor: { prototype: { x: 1 } } }] }),
    code: "forbidden_key",
    field: "domains.0.constructor",
  },
  {
    what: "invalid UTF-8 in a JSON string",
    method: "PUT",
    path: USER,
    raw: jsonRequest("PUT", USER, withBytes('{"password":"a-fine-password","displayName":"Al"}', 'l"}', [0xff, 0xfe])),
    code: "invalid_utf8",
    field: "displayName",
  },
  {
    what: "a truncated UTF-8 sequence in a list item",
    method: "PUT",
    path: SITE,
    raw: jsonRequest(
      "PUT",
      SITE,
      withBytes(JSON.stringify({ ...website, domains: ["ok.test", "a.test"] }), '.test"]', [0xe2, 0x82]),
    ),
    code: "invalid_utf8",
    field: "domains.1",
  },
  {
    what: "10,000-level nested JSON",
    method: "PUT",
    path: USER,
    rawBody: `{"password":${"[".repeat(10_000)}${"]".repeat(10_000)}}`,
    code: "too_deep",
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
  {
    what: "a 10 MB body",
    method: "PUT",
    path: USER,
    raw: jsonRequest("PUT", USER, Buffer.from(JSON.stringify({ ...user, displayName: "x".repeat(10_000_000) }))),
    status: 413,
    code: "payload_too_large",
    field: "body",
  },
  // Unknown endpoints are refused without repeating the path.
  { what: "an unknown endpoint", method: "GET", path: "/v1/orgs/acme/secrets", status: 404, field: "url" },
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
    agent = await startAgentProcess({ host: "127.0.1.13", extraArgs: SHORT_TIMEOUTS });
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
      const answer = testCase.raw
        ? await rawCall(agent.url, testCase.raw(agent.token))
        : await call(agent.url, testCase.method, testCase.path, {
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
      if (testCase.code) expect(error.code, answer.text).to.equal(testCase.code);
      expect(error.message).to.be.a("string").and.not.equal("");
      expect(answer.text).to.not.include(agent.token);
      // A refused value is named, never echoed (a hash or a password may be in it).
      const sent = JSON.stringify(testCase.body ?? "");
      if (testCase.field === "passwordHash") expect(answer.text).to.not.include("a".repeat(86), sent);
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

/** Sends `text` and collects everything the agent answers until it closes the connection. */
function openConnection(host: string, port: number, text: string) {
  const socket = net.connect({ host, port });
  const received: Buffer[] = [];
  socket.on("connect", () => socket.write(text));
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  socket.on("error", () => undefined); // a reset counts as closed
  const closed = new Promise<HttpAnswer>((resolve) =>
    socket.on("close", () => resolve(parseRawAnswer(Buffer.concat(received).toString("utf8")))),
  );
  return { socket, closed };
}

/** Resolves to the promise's value, or to "open" after `ms`. */
const within = <T>(promise: Promise<T>, ms: number): Promise<T | "open"> =>
  Promise.race([promise, new Promise<"open">((resolve) => setTimeout(() => resolve("open"), ms))]);

describe("agent with sloppy and hostile clients (integration)", function () {
  let agent: AgentProcess;
  let api: AgentClient;

  before(async function () {
    agent = await startAgentProcess({ host: "127.0.30.1", extraArgs: SHORT_TIMEOUTS });
    api = agentClient(agent.url, agent.token);
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
  });

  const withJsonHeader = (method: string, path: string) =>
    call(agent.url, method, path, { token: agent.token, rawBody: "", headers: { "content-type": "application/json" } });

  it("accepts an empty JSON body where the route takes none, and names the missing body where it needs one", async function () {
    expect((await withJsonHeader("PUT", "/v1/orgs/sloppy")).status).to.equal(201);
    expect((await api.put("/v1/orgs/sloppy/users/ann", { password: "a-fine-password" })).status).to.equal(201);
    const needsBody = await withJsonHeader("PUT", "/v1/orgs/sloppy/users/bob");
    expect(needsBody.status).to.equal(400);
    expect(needsBody.json).to.have.nested.property("error.details[0].path", "body");
    const deleted = await withJsonHeader("DELETE", "/v1/orgs/sloppy/users/ann");
    expect(deleted.status, deleted.text).to.equal(200);
    expect((await api.get("/v1/orgs/sloppy/users")).json).to.deep.equal({ users: [] });
    expect((await withJsonHeader("DELETE", "/v1/orgs/sloppy")).status).to.equal(200);
    expect((await api.get("/v1/orgs/sloppy")).status).to.equal(404);
  });

  it("takes the bearer scheme in any case", async function () {
    for (const scheme of ["bearer", "BEARER", "Bearer"]) {
      const answer = await call(agent.url, "GET", "/v1/orgs", {
        headers: { authorization: `${scheme} ${agent.token}` },
      });
      expect(answer.status, scheme).to.equal(200);
    }
  });

  it("never echoes or logs a credential a client put in the path or the query", async function () {
    const token = agent.token;
    const answers = await Promise.all([
      call(agent.url, "GET", `/v1/${token}`),
      call(agent.url, "GET", `/v1/${token}`, { token }),
      call(agent.url, "GET", `/v1/orgs/acme/users/x/${token}`, { token }),
      call(agent.url, "GET", `/v1/orgs/acme/changes?since=${token}`, { token }),
      call(agent.url, "PUT", `/v1/orgs/acme?force=${token}`, { token, body: {} }),
      call(agent.url, "GET", `/v1/orgs?token=${token}`),
      call(agent.url, "GET", `/v1/health?access_token=${token}`),
    ]);
    expect(answers.map((answer) => answer.status)).to.deep.equal([401, 404, 404, 400, 400, 401, 200]);
    for (const answer of answers) expect(answer.text).to.not.include(token);
    await agent.stop(); // flushes the log
    await agent.restart();
    const requests = agent.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(requests.filter((entry) => entry.msg === "request").length).to.be.at.least(answers.length);
    expect(agent.log()).to.not.include(token);
  });

  it("closes idle and half-sent connections (400 of them) with a 408 in the API shape, and keeps serving", async function () {
    const { hostname, port } = new URL(agent.url);
    const head = (path: string) => `GET ${path} HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer ${agent.token}\r\n`;
    const kinds = {
      silent: "",
      "half headers": head("/v1/orgs"),
      "half body": `${head("/v1/orgs/slow").replace("GET", "PUT")}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"displ`,
      "idle keep-alive": `${head("/v1/health")}\r\n`,
    };
    const connections = Object.entries(kinds).flatMap(([kind, text]) =>
      Array.from({ length: 100 }, () => ({ kind, ...openConnection(hostname, Number(port), text) })),
    );
    // The agent still answers while they are open (400 is under the default connection cap).
    expect((await api.get("/v1/orgs")).status).to.equal(200);
    // Closed by the agent's timeouts (1.5 s, idle 1 s here); 30 s is only the bound of the wait.
    const outcomes = await Promise.all(connections.map(({ closed }) => within(closed, 30_000)));
    expect(outcomes.filter((outcome) => outcome === "open")).to.have.length(0);
    connections.forEach(({ kind }, index) => {
      const answer = outcomes[index] as HttpAnswer;
      if (kind === "idle keep-alive") {
        expect(answer.status, kind).to.equal(200);
      } else if (kind !== "silent") {
        expect(answer.status, `${kind}: ${answer.text}`).to.equal(408);
        expect(apiErrorSchema.parse(answer.json).error.code, kind).to.equal("request_timeout");
      }
    });
    expect((await api.get("/v1/orgs/slow")).status).to.equal(404);
  });

  it("refuses connections beyond --max-connections and takes new ones once some close", async function () {
    const capped = await startAgentProcess({ host: "127.0.30.2", extraArgs: ["--max-connections", "8"] });
    try {
      const { hostname, port } = new URL(capped.url);
      const keepAlive = "GET /v1/health HTTP/1.1\r\nHost: agent\r\n\r\n";
      const held = Array.from({ length: 8 }, () => {
        const connection = openConnection(hostname, Number(port), keepAlive);
        const answered = new Promise<void>((resolve) => connection.socket.once("data", () => resolve()));
        return { ...connection, answered };
      });
      await Promise.all(held.map(({ answered }) => answered)); // all 8 are open and counted
      const refused = await rawCall(capped.url, keepAlive.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")).catch(
        () => ({ status: 0 }) as HttpAnswer,
      );
      expect(refused.status, "the 9th connection is closed unanswered").to.equal(0);
      for (const { socket } of held) socket.destroy();
      await Promise.all(held.map(({ closed }) => closed));
      let status = 0;
      for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
        status = (await call(capped.url, "GET", "/v1/health").catch(() => ({ status: 0 }))).status;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(status).to.equal(200);
    } finally {
      await capped.stop();
      capped.cleanup();
    }
  });
});
