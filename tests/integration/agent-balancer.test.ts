/**
 * The load-balancer role and node info, with real nginx everywhere: two hosting nodes (agent +
 * nginx, 127.0.8.1 and 127.0.8.2) serve the same site from a shared content folder, and a third
 * (127.0.8.3) routes its domains to them. A config-only agent (127.0.8.4) and a slow HTTP backend
 * (127.0.8.5, to hold a request in flight across a reload) complete the set. With CI=true a missing
 * nginx fails this suite; elsewhere it is skipped with the reason.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { balancerListSchema, balancerRecordSchema, healthSchema } from "../../agent/api";
import { apiErrorSchema, nodeInfoSchema } from "../../sdk/schemas";
import { type AgentClient, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { type HostingNode, startHostingNode } from "../support/hosting-node";
import { type SiteResponse, getSite } from "../support/http-get";
import { nginxBinaryOrSkip } from "../support/nginx";

const DOMAINS = ["www.acme.test", "acme.test"];
const website = { kind: "website", domains: DOMAINS, documentRoot: "www" };
const SLOW_MS = 1500;

interface BadCase {
  what: string;
  path?: string;
  body?: unknown;
  rawBody?: string;
  field: string;
}

const route = { domains: ["bad.test"], backends: ["127.0.8.1:8080"] };
const BAD: BadCase[] = [
  { what: "org name with ';'", path: "/v1/balancer/acme;x", body: route, field: "org" },
  { what: "org name with a brace", path: "/v1/balancer/ac%7Bme", body: route, field: "org" },
  { what: "org name in upper case", path: "/v1/balancer/ACME", body: route, field: "org" },
  { what: "domain with ';'", body: { ...route, domains: ["bad.test;"] }, field: "domains.0" },
  { what: "domain with a brace", body: { ...route, domains: ["a.test", "}b.test"] }, field: "domains.1" },
  { what: "domain that is a variable", body: { ...route, domains: ["$host"] }, field: "domains.0" },
  { what: "domain with a newline", body: { ...route, domains: ["a.test\nb.test"] }, field: "domains.0" },
  { what: "no domain", body: { ...route, domains: [] }, field: "domains" },
  { what: "the same domain twice", body: { ...route, domains: ["a.test", "a.test"] }, field: "domains" },
  {
    what: "backend with ';'",
    body: { ...route, backends: ["127.0.8.1:80; include /etc/passwd"] },
    field: "backends.0",
  },
  { what: "backend with a space", body: { ...route, backends: ["127.0.8.1:80 backup"] }, field: "backends.0" },
  { what: "backend with a newline", body: { ...route, backends: ["127.0.8.1:80\n}"] }, field: "backends.0" },
  { what: "backend as a URL", body: { ...route, backends: ["http://127.0.8.1:80"] }, field: "backends.0" },
  { what: "backend without a port", body: { ...route, backends: ["127.0.8.1"] }, field: "backends.0" },
  { what: "backend port 0", body: { ...route, backends: ["127.0.8.1:0"] }, field: "backends.0" },
  { what: "backend port 65536", body: { ...route, backends: ["127.0.8.1:65536"] }, field: "backends.0" },
  { what: "backend as a unix socket", body: { ...route, backends: ["unix:/tmp/x.sock"] }, field: "backends.0" },
  { what: "no backend", body: { ...route, backends: [] }, field: "backends" },
  { what: "the same backend twice", body: { ...route, backends: ["a.test:80", "a.test:80"] }, field: "backends" },
  { what: "backends as a string", body: { ...route, backends: "127.0.8.1:80" }, field: "backends" },
  { what: "an unknown field", body: { ...route, weight: 2 }, field: "weight" },
  { what: "a missing field", body: { domains: ["bad.test"] }, field: "backends" },
  { what: "no body", field: "body" },
  { what: "a body that is not JSON", rawBody: "{domains:", field: "body" },
];

/** A plain HTTP server answering after SLOW_MS: a request that is still in flight during a reload. */
function startSlowBackend(host: string): Promise<{ server: http.Server; listen: string; answeredAt: number[] }> {
  const answeredAt: number[] = [];
  const server = http.createServer((_request, response) => {
    setTimeout(() => {
      answeredAt.push(Date.now());
      response.writeHead(200, { "x-served-by": "slow", "content-type": "text/plain" }).end("slow\n");
    }, SLOW_MS);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, listen: `${host}:${port}`, answeredAt });
    });
  });
}

describe("agent load-balancer role (integration)", function () {
  const token = randomBytes(24).toString("base64url");
  let contentRoot: string;
  let work: string;
  const nodes: HostingNode[] = [];
  let webA: HostingNode;
  let webB: HostingNode;
  let lb: HostingNode;
  let configOnly: AgentProcess | undefined;
  let slow: Awaited<ReturnType<typeof startSlowBackend>> | undefined;
  let api: AgentClient;

  const lbGet = (host: string): Promise<SiteResponse> => getSite(lb.nginx!.url, host);
  const backendsOf = (...serving: HostingNode[]) => serving.map((node) => node.nginx!.listen);
  const routeFiles = () =>
    Object.fromEntries(
      fs
        .readdirSync(lb.agent.nginxConfDir)
        .map((file) => [file, fs.readFileSync(path.join(lb.agent.nginxConfDir, file), "utf8")]),
    );

  /** `count` sequential requests for `host` through the LB; every X-Served-By, in order. */
  async function servedBy(host: string, count = 20): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < count; i++) {
      const answer = await lbGet(host);
      expect(answer.status, `request ${i}: ${lb.nginx!.errorLog()}`).to.equal(200);
      expect(answer.body).to.equal("<h1>acme</h1>\n");
      seen.push(answer.servedBy ?? "none");
    }
    return seen;
  }

  before(async function () {
    const bin = nginxBinaryOrSkip(this);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-balancer-test-"));
    contentRoot = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-balancer-nas-"));
    fs.chmodSync(contentRoot, 0o755);
    fs.mkdirSync(path.join(contentRoot, "acme", "www"), { recursive: true });
    fs.writeFileSync(path.join(contentRoot, "acme", "www", "index.html"), "<h1>acme</h1>\n");
    for (const [host, name] of [
      ["127.0.8.1", "web-a"],
      ["127.0.8.2", "web-b"],
      ["127.0.8.3", "lb"],
    ]) {
      nodes.push(await startHostingNode({ host, name, token, contentRoot, nginxBin: bin }));
    }
    [webA, webB, lb] = nodes;
    api = agentClient(lb.url, token);
    for (const node of [webA, webB]) {
      const web = agentClient(node.url, token);
      expect((await web.put("/v1/orgs/acme", {})).status).to.equal(201);
      const before = node.nginx!.workerPids();
      expect((await web.put("/v1/orgs/acme/services/www", website)).status).to.equal(201);
      await node.nginx!.waitForReload(before);
      const direct = await getSite(node.nginx!.url, DOMAINS[0]);
      expect(direct.servedBy, node.nginx!.errorLog()).to.equal(node.name);
    }
  });

  after(async function () {
    // Stop everything by pid even when something above failed; report the first failure.
    const stops = await Promise.allSettled([
      ...nodes.map((node) => node.stop()),
      (async () => {
        await configOnly?.stop();
        configOnly?.cleanup();
      })(),
      new Promise<void>((resolve) => (slow ? slow.server.close(() => resolve()) : resolve())),
    ]);
    for (const dir of [contentRoot, work]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  describe("GET /v1/node", function () {
    it("reports where a node with nginx serves, and its name and version", async function () {
      const answer = await agentClient(webA.url, token).get("/v1/node");
      expect(answer.status, answer.text).to.equal(200);
      const health = healthSchema.parse((await call(webA.url, "GET", "/v1/health")).json);
      expect(nodeInfoSchema.parse(answer.json)).to.deep.equal({
        ...health,
        httpListen: webA.nginx!.listen,
        ftpListen: null,
      });
    });

    it("reports httpListen null for a config-only node, and --ftp-listen as given", async function () {
      configOnly = await startAgentProcess({
        host: "127.0.8.4",
        token,
        httpListen: "127.0.8.4:8080",
        extraArgs: ["--ftp-listen", "127.0.8.4:2121"],
      });
      const answer = await agentClient(configOnly.url, token).get("/v1/node");
      expect(answer.status, answer.text).to.equal(200);
      expect(answer.json).to.deep.include({ name: configOnly.name, httpListen: null, ftpListen: "127.0.8.4:2121" });
      expect(nodeInfoSchema.safeParse(answer.json).success).to.equal(true);
    });

    it("refuses to start with a malformed --ftp-listen", async function () {
      let failure: Error | undefined;
      try {
        const agent = await startAgentProcess({
          host: "127.0.8.4",
          dataDir: path.join(work, "bad-ftp-listen"),
          contentRoot: work,
          extraArgs: ["--ftp-listen", "127.0.8.4:21;"],
        });
        await agent.stop();
        agent.cleanup();
      } catch (error) {
        failure = error as Error;
      }
      expect(failure?.message).to.match(/--ftp-listen/);
    });
  });

  describe("routes", function () {
    it("routes the org's domains to both nodes (201), each answering in turn", async function () {
      const put = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA, webB) });
      expect(put.status, put.text).to.equal(201);
      expect(balancerRecordSchema.strict().parse(put.json)).to.deep.equal({
        org: "acme",
        domains: DOMAINS,
        backends: backendsOf(webA, webB),
      });
      const file = routeFiles()["lbh-balancer.acme.conf"];
      expect(file).to.include(`    server ${webA.nginx!.listen} max_fails=1 fail_timeout=2s;\n`);
      expect(file).to.include(`    listen ${lb.nginx!.listen};\n`);
      expect(file).to.include("    server_name www.acme.test acme.test;\n");

      const seen = await servedBy("www.acme.test");
      expect(new Set(seen)).to.deep.equal(new Set(["web-a", "web-b"]));
      expect(new Set(await servedBy("acme.test", 4))).to.deep.equal(new Set(["web-a", "web-b"]));
      // A name no route holds still goes to the LB's default server.
      expect((await lbGet("other.test")).status).to.equal(404);
    });

    it("lists and reads routes", async function () {
      const one = await api.get("/v1/balancer/acme");
      expect(one.status).to.equal(200);
      expect(one.json).to.deep.equal({ org: "acme", domains: DOMAINS, backends: backendsOf(webA, webB) });
      expect(balancerListSchema.parse((await api.get("/v1/balancer")).json).routes).to.deep.equal([one.json]);
      const missing = await api.get("/v1/balancer/nobody");
      expect(missing.status).to.equal(404);
      expect(missing.json).to.have.nested.property("error.code", "not_found");
    });

    it("sends everything to the one backend left after an update (200)", async function () {
      const put = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) });
      expect(put.status, put.text).to.equal(200);
      expect(await servedBy("www.acme.test")).to.deep.equal(Array(20).fill("web-a"));
      const back = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA, webB) });
      expect(back.status, back.text).to.equal(200);
      expect(new Set(await servedBy("www.acme.test"))).to.deep.equal(new Set(["web-a", "web-b"]));
    });

    it("refuses a domain routed for another org (409 naming it) and changes nothing", async function () {
      const before = routeFiles();
      const answer = await api.put("/v1/balancer/globex", {
        domains: ["globex.test", "acme.test"],
        backends: backendsOf(webB),
      });
      expect(answer.status, answer.text).to.equal(409);
      const error = apiErrorSchema.parse(answer.json).error;
      expect(error.code).to.equal("domain_taken");
      expect(error.message).to.include('"acme"');
      expect(error.details.map((detail) => detail.path)).to.deep.equal(["domains.1"]);
      expect((await api.get("/v1/balancer/globex")).status).to.equal(404);
      expect(routeFiles()).to.deep.equal(before);
      // Its own domains again are fine for the same org.
      expect(
        (await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA, webB) })).status,
      ).to.equal(200);
    });

    it("keeps the previous route and files when nginx rejects the new one (422)", async function () {
      const before = routeFiles();
      const workers = lb.nginx!.workerPids();
      // A valid domain (243 characters) that overflows nginx's default server_names_hash_bucket_size.
      const long = Array.from({ length: 4 }, () => "a".repeat(60)).join(".");
      const answer = await api.put("/v1/balancer/acme", { domains: [long], backends: backendsOf(webA) });
      expect(answer.status, answer.text).to.equal(422);
      expect(answer.json).to.have.nested.property("error.code", "nginx_rejected");
      expect(routeFiles()).to.deep.equal(before);
      expect(lb.nginx!.workerPids(), "nginx was not reloaded").to.deep.equal(workers);
      expect((await api.get("/v1/balancer/acme")).json).to.deep.include({ backends: backendsOf(webA, webB) });
      expect(new Set(await servedBy("acme.test", 4))).to.deep.equal(new Set(["web-a", "web-b"]));
    });

    it("re-renders the same routes after a restart and keeps routing", async function () {
      const before = routeFiles();
      await lb.agent.restart();
      expect(routeFiles()).to.deep.equal(before);
      expect((await api.get("/v1/balancer")).json)
        .to.have.property("routes")
        .with.length(1);
      expect(new Set(await servedBy("www.acme.test", 4))).to.deep.equal(new Set(["web-a", "web-b"]));
    });
  });

  describe("draining", function () {
    it("answers a PUT only after requests in flight on nginx's previous workers have finished", async function () {
      slow = await startSlowBackend("127.0.8.5");
      expect((await api.put("/v1/balancer/slow", { domains: ["slow.test"], backends: [slow.listen] })).status).to.equal(
        201,
      );
      const inFlight = getSite(lb.nginx!.url, "slow.test", 10_000);
      await new Promise((resolve) => setTimeout(resolve, SLOW_MS / 3)); // the request has reached the backend
      const started = Date.now();
      const put = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webB, webA) });
      const answeredAt = Date.now();
      expect(put.status, put.text).to.equal(200);
      const slowAnswer = await inFlight;
      expect(slowAnswer.status).to.equal(200);
      expect(slowAnswer.servedBy).to.equal("slow");
      expect(slow.answeredAt).to.have.length(1);
      expect(answeredAt, `the PUT took ${answeredAt - started} ms`).to.be.at.least(slow.answeredAt[0]);

      const deleted = await api.delete("/v1/balancer/slow");
      expect(deleted.status, deleted.text).to.equal(200);
      expect(deleted.json).to.deep.equal({ org: "slow", deleted: true });
    });

    it("takes a backend out with zero failed requests, then it can be removed", async function () {
      this.timeout(60_000);
      const LIMIT_MS = 15_000;
      const start = Date.now();
      const results: Array<{ startedAt: number; servedBy?: string; failure?: string }> = [];
      let switchStartedAt = Infinity;
      let switchDoneAt = Infinity;

      const worker = async () => {
        // Bounded: 15 s, or once the switch is done and 100 more requests have been answered.
        while (Date.now() - start < LIMIT_MS) {
          if (results.filter((result) => result.startedAt > switchDoneAt).length >= 100) return;
          const startedAt = Date.now();
          try {
            const answer = await lbGet("www.acme.test");
            results.push(
              answer.status === 200
                ? { startedAt, servedBy: answer.servedBy }
                : { startedAt, failure: `status ${answer.status}` },
            );
          } catch (error) {
            results.push({ startedAt, failure: (error as Error).message });
          }
        }
      };
      const switchOver = async () => {
        while (results.length < 40) await new Promise((resolve) => setTimeout(resolve, 5));
        switchStartedAt = Date.now();
        // Drain first: the PUT returns once no old worker can still send anything to web-b ...
        const put = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) });
        expect(put.status, put.text).to.equal(200);
        // ... then remove: web-b stops serving the org at once.
        const removed = await agentClient(webB.url, token).delete("/v1/orgs/acme");
        expect(removed.status, removed.text).to.equal(200);
        switchDoneAt = Date.now();
      };
      await Promise.all([worker(), worker(), switchOver()]);

      const failures = results.filter((result) => result.failure !== undefined);
      expect(failures, JSON.stringify(failures.slice(0, 5))).to.deep.equal([]);
      const before = results.filter((result) => result.startedAt < switchStartedAt);
      const after = results.filter((result) => result.startedAt > switchDoneAt);
      expect(new Set(before.map((result) => result.servedBy))).to.deep.equal(new Set(["web-a", "web-b"]));
      expect(after.length).to.be.at.least(100);
      expect(new Set(after.map((result) => result.servedBy))).to.deep.equal(new Set(["web-a"]));
      expect((await getSite(webB.nginx!.url, "www.acme.test")).status, "web-b no longer serves acme").to.equal(404);
    });

    it("removes a route: the LB no longer knows the domains (404), and a second DELETE is 404", async function () {
      const deleted = await api.delete("/v1/balancer/acme");
      expect(deleted.status, deleted.text).to.equal(200);
      expect(deleted.json).to.deep.equal({ org: "acme", deleted: true });
      expect(routeFiles()).to.deep.equal({});
      const gone = await lbGet("www.acme.test");
      expect(gone.status).to.equal(404);
      expect(gone.servedBy).to.equal(undefined);
      expect((await api.delete("/v1/balancer/acme")).status).to.equal(404);
      expect((await api.get("/v1/balancer")).json).to.deep.equal({ routes: [] });
    });
  });

  describe("bad input and auth", function () {
    for (const testCase of BAD) {
      it(`refuses ${testCase.what} (400 naming ${testCase.field})`, async function () {
        const before = { files: routeFiles(), routes: (await api.get("/v1/balancer")).json };
        const answer = await call(lb.url, "PUT", testCase.path ?? "/v1/balancer/bad", {
          token,
          ...(testCase.rawBody !== undefined ? { rawBody: testCase.rawBody } : {}),
          ...(testCase.body !== undefined ? { body: testCase.body } : {}),
        });
        expect(answer.status, answer.text).to.equal(400);
        const error = apiErrorSchema.parse(answer.json).error;
        expect(
          error.details.map((detail) => detail.path),
          answer.text,
        ).to.include(testCase.field);
        expect({ files: routeFiles(), routes: (await api.get("/v1/balancer")).json }).to.deep.equal(before);
      });
    }

    it("answers 401 without the token on every new endpoint", async function () {
      const endpoints: Array<[string, string, unknown?]> = [
        ["GET", "/v1/node"],
        ["GET", "/v1/balancer"],
        ["PUT", "/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) }],
        ["GET", "/v1/balancer/acme"],
        ["DELETE", "/v1/balancer/acme"],
      ];
      for (const [method, url, body] of endpoints) {
        const refused: Array<Record<string, string>> = [{}, { authorization: "Bearer wrong-token-wrong-token" }];
        for (const headers of refused) {
          const answer = await call(lb.url, method, url, { token: null, headers, body });
          expect(answer.status, `${method} ${url}`).to.equal(401);
          expect(answer.json).to.have.nested.property("error.code", "unauthorized");
        }
      }
      expect(routeFiles()).to.deep.equal({});
    });
  });
});
