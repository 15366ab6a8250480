/**
 * The load-balancer role's API with a real HAProxy and real nginx: two hosting nodes (agent + nginx,
 * 127.0.40.1 and 127.0.40.2) serve the same site from a shared content folder, and a third
 * (127.0.40.3) runs HAProxy, driven by its agent, in front of them. A config-only agent
 * (127.0.40.4) and a slow HTTP backend (127.0.40.5, to hold a request in flight across a change)
 * complete the set. Least-busy balancing, health checks and FTP are in balancer-traffic.test.ts.
 * With CI=true a missing nginx or haproxy fails this suite; elsewhere it is skipped with the reason.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import {
  balancerListSchema,
  balancerRecordSchema,
  balancerStatusSchema,
  healthSchema,
  apiErrorSchema,
  nodeInfoSchema,
} from "../../wire";
import { hostMapFile } from "../../agent/src/render/haproxy/config";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { type AgentClient, agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { registerBackends } from "../support/backends";
import { type HostingNode, startHostingNode } from "../support/hosting-node";
import { type SiteResponse, getSite } from "../support/http-get";
import { nginxBinaryOrSkip } from "../support/nginx";
import { nasFolder } from "../support/nas";

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

const backend = { name: "web-a", http: "127.0.40.1:8080" };
const route = { domains: ["bad.test"], backends: [backend] };
const withBackend = (fields: Record<string, unknown>) => ({ ...route, backends: [{ ...backend, ...fields }] });
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
  { what: "backend address with ';'", body: withBackend({ http: "127.0.40.1:80; x" }), field: "backends.0.http" },
  {
    what: "backend address with a space",
    body: withBackend({ http: "127.0.40.1:80 backup" }),
    field: "backends.0.http",
  },
  { what: "backend address with a newline", body: withBackend({ http: "127.0.40.1:80\n}" }), field: "backends.0.http" },
  { what: "backend address as a URL", body: withBackend({ http: "http://127.0.40.1:80" }), field: "backends.0.http" },
  { what: "backend address without a port", body: withBackend({ http: "127.0.40.1" }), field: "backends.0.http" },
  { what: "backend port 0", body: withBackend({ http: "127.0.40.1:0" }), field: "backends.0.http" },
  { what: "backend port 65536", body: withBackend({ http: "127.0.40.1:65536" }), field: "backends.0.http" },
  { what: "backend as a unix socket", body: withBackend({ http: "unix:/tmp/x.sock" }), field: "backends.0.http" },
  { what: "backend name with a space", body: withBackend({ name: "web a" }), field: "backends.0.name" },
  { what: "backend name with a brace", body: withBackend({ name: "web{a" }), field: "backends.0.name" },
  { what: "backend without http or ftp", body: withBackend({ http: undefined }), field: "backends.0.http" },
  { what: "ftp without passive ports", body: withBackend({ ftp: "127.0.40.1:21" }), field: "backends.0.passivePorts" },
  {
    what: "passive ports reversed",
    body: withBackend({ ftp: "127.0.40.1:21", passivePorts: [30199, 30100] }),
    field: "backends.0.passivePorts",
  },
  {
    what: "passive ports past 65535",
    body: withBackend({ ftp: "127.0.40.1:21", passivePorts: [65000, 70000] }),
    field: "backends.0.passivePorts.1",
  },
  { what: "a weight of 0", body: withBackend({ weight: 0 }), field: "backends.0.weight" },
  { what: "a weight of 1000", body: withBackend({ weight: 1000 }), field: "backends.0.weight" },
  { what: "no backend", body: { ...route, backends: [] }, field: "backends" },
  { what: "the same node twice", body: { ...route, backends: [backend, backend] }, field: "backends.1.name" },
  {
    what: "overlapping passive ports",
    body: {
      domains: [],
      ftp: { listen: "127.0.40.3:2121" },
      backends: [
        { name: "a", ftp: "127.0.40.1:21", passivePorts: [30100, 30199] },
        { name: "b", ftp: "127.0.40.2:21", passivePorts: [30150, 30250] },
      ],
    },
    field: "backends.1.passivePorts",
  },
  { what: "ftp listen with ';'", body: { ...route, ftp: { listen: "127.0.40.3:21;" } }, field: "ftp.listen" },
  { what: "ftp without an FTP backend", body: { ...route, ftp: { listen: "127.0.40.3:2121" } }, field: "ftp" },
  { what: "backends as a string", body: { ...route, backends: "127.0.40.1:80" }, field: "backends" },
  { what: "an unknown field", body: { ...route, weight: 2 }, field: "weight" },
  { what: "an unknown backend field", body: withBackend({ backup: true }), field: "backends.0.backup" },
  { what: "a missing field", body: { domains: ["bad.test"] }, field: "backends" },
  { what: "no body", field: "body" },
  { what: "a body that is not JSON", rawBody: "{domains:", field: "body" },
];

/** A plain HTTP server answering GETs after SLOW_MS (a request still in flight during a change); HAProxy's HEAD checks at once. */
function startSlowBackend(host: string): Promise<{ server: http.Server; listen: string; answeredAt: number[] }> {
  const answeredAt: number[] = [];
  const server = http.createServer((request, response) => {
    if (request.method === "HEAD") return void response.writeHead(200).end();
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

describe("agent load-balancer role with HAProxy (integration)", function () {
  const token = randomBytes(24).toString("base64url");
  let contentRoot: string;
  let work: string;
  const nodes: HostingNode[] = [];
  let webA: HostingNode;
  let webB: HostingNode;
  let lb: HostingNode;
  let configOnly: AgentProcess | undefined;
  let slow: Awaited<ReturnType<typeof startSlowBackend>> | undefined;
  let blocker: net.Server | undefined;
  let api: AgentClient;

  const lbGet = (host: string): Promise<SiteResponse> => getSite(lb.haproxy!.url, host);
  const backendsOf = (...serving: HostingNode[]) =>
    serving.map((node) => ({ name: node.name, http: node.nginx!.listen }));
  const lbFile = () => fs.readFileSync(lb.haproxy!.confFile, "utf8");

  /** `count` sequential requests for `host` through the LB; every X-Served-By, in order. */
  async function servedBy(host: string, count = 20): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < count; i++) {
      const answer = await lbGet(host);
      expect(answer.status, `request ${i}: ${lb.haproxy!.output()}`).to.equal(200);
      expect(answer.body).to.equal("<h1>acme</h1>\n");
      seen.push(answer.servedBy ?? "none");
    }
    return seen;
  }

  before(async function () {
    const bin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-balancer-test-"));
    contentRoot = nasFolder("balancer", { "acme/www/index.html": "<h1>acme</h1>\n" });
    for (const [host, name] of [
      ["127.0.40.1", "web-a"],
      ["127.0.40.2", "web-b"],
    ]) {
      nodes.push(await startHostingNode({ host, name, token, contentRoot, nginxBin: bin }));
    }
    nodes.push(await startHostingNode({ host: "127.0.40.3", name: "lb", token, contentRoot, haproxyBin }));
    [webA, webB, lb] = nodes;
    api = agentClient(lb.url, token);
    await registerBackends(api, backendsOf(webA, webB));
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
      new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve())),
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
        httpsListen: webA.httpsListen,
        ftpListen: null,
        ftpPassivePorts: null,
        ftpMaxSessions: null,
        ftpTls: null,
      });
    });

    it("reports httpListen null for a config-only node, and the FTP address and passive ports as given", async function () {
      configOnly = await startAgentProcess({
        host: "127.0.40.4",
        token,
        httpListen: "127.0.40.4:8080",
        extraArgs: ["--ftp-listen", "127.0.40.4:2121", "--ftp-passive-ports", "30400:30499"],
      });
      const answer = await agentClient(configOnly.url, token).get("/v1/node");
      expect(answer.status, answer.text).to.equal(200);
      expect(answer.json).to.deep.include({
        name: configOnly.name,
        httpListen: null,
        ftpListen: "127.0.40.4:2121",
        ftpPassivePorts: [30400, 30499],
      });
      expect(nodeInfoSchema.safeParse(answer.json).success).to.equal(true);
    });

    for (const [flag, value] of [
      ["--ftp-listen", "127.0.40.4:21;"],
      ["--ftp-passive-ports", "30499:30400"],
      ["--ftp-passive-ports", "30400-30499"],
    ]) {
      it(`refuses to start with ${flag} ${value}`, async function () {
        let failure: Error | undefined;
        try {
          const agent = await startAgentProcess({
            host: "127.0.40.4",
            dataDir: path.join(work, "bad-option"),
            contentRoot: work,
            extraArgs: [flag, value],
          });
          await agent.stop();
          agent.cleanup();
        } catch (error) {
          failure = error as Error;
        }
        expect(failure?.message).to.include(flag);
      });
    }
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
      const file = lbFile();
      expect(file).to.include(`    server web-a ${webA.nginx!.listen} check weight 1\n`);
      expect(file).to.include(`    bind ${lb.haproxy!.listen}\n`);
      const hostMap = fs.readFileSync(hostMapFile(lb.haproxy!.confFile), "utf8");
      expect(hostMap).to.equal("acme.test lbh_web_acme\nwww.acme.test lbh_web_acme\n");

      const seen = await servedBy("www.acme.test");
      expect(new Set(seen)).to.deep.equal(new Set(["web-a", "web-b"]));
      expect(new Set(await servedBy("acme.test", 4))).to.deep.equal(new Set(["web-a", "web-b"]));
      // A Host with a port is the same site; a name no route holds gets the LB's 404.
      expect((await lbGet("ACME.test:80")).status).to.equal(200);
      const other = await lbGet("other.test");
      expect(other.status).to.equal(404);
      expect(other.servedBy).to.equal(undefined);
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

    it("shows HAProxy's view of each node: healthy, with its open connections", async function () {
      const answer = await api.get("/v1/balancer/acme/status");
      expect(answer.status, answer.text).to.equal(200);
      const status = balancerStatusSchema.parse(answer.json);
      expect(status.nodes.map((node) => node.name)).to.deep.equal(["web-a", "web-b"]);
      for (const node of status.nodes) {
        expect(node.web).to.deep.include({ healthy: true, active: 0 });
        expect(node.web?.status).to.match(/^UP/);
        expect(node.ftp).to.equal(undefined);
      }
      expect((await api.get("/v1/balancer/nobody/status")).status).to.equal(404);
    });

    it("sends everything to the one backend left after an update (200)", async function () {
      const put = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) });
      expect(put.status, put.text).to.equal(200);
      expect(await servedBy("www.acme.test")).to.deep.equal(Array(20).fill("web-a"));
      const back = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA, webB) });
      expect(back.status, back.text).to.equal(200);
      expect(new Set(await servedBy("www.acme.test"))).to.deep.equal(new Set(["web-a", "web-b"]));
    });

    it("refuses a domain, FTP address or passive ports another org holds (409 naming it) and changes nothing", async function () {
      const ftpNode = { name: "web-c", ftp: "127.0.40.6:2121", passivePorts: [30600, 30699] };
      const webD = { ...ftpNode, name: "web-d", ftp: "127.0.40.7:21", passivePorts: [30650, 30750] };
      await registerBackends(api, [ftpNode, webD]);
      const globexFtp = {
        domains: ["globex.test"],
        backends: [...backendsOf(webB), ftpNode],
        ftp: { listen: "127.0.40.3:2121" },
      };
      expect((await api.put("/v1/balancer/globex", globexFtp)).status).to.equal(201);
      const before = lbFile();
      const cases: Array<[unknown, string, string]> = [
        [{ domains: ["initech.test", "acme.test"], backends: backendsOf(webB) }, "domain_taken", "domains.1"],
        [{ ...globexFtp, domains: ["initech.test"] }, "address_taken", "ftp.listen"],
        [
          {
            domains: [],
            backends: [webD],
            ftp: { listen: "127.0.40.3:2122" },
          },
          "passive_ports_taken",
          "backends.0.passivePorts",
        ],
      ];
      for (const [body, code, field] of cases) {
        const answer = await api.put("/v1/balancer/initech", body);
        expect(answer.status, answer.text).to.equal(409);
        const error = apiErrorSchema.parse(answer.json).error;
        expect(error.code).to.equal(code);
        expect(error.details.map((detail) => detail.path)).to.deep.equal([field]);
      }
      expect((await api.get("/v1/balancer/initech")).status).to.equal(404);
      expect(lbFile()).to.equal(before);
      expect((await api.delete("/v1/balancer/globex")).status).to.equal(200);
    });

    it("keeps the previous route and file when HAProxy cannot take the new one (422)", async function () {
      // Another process holds the FTP address: `haproxy -c` passes, the reload cannot bind it.
      blocker = net.createServer();
      await new Promise<void>((resolve) => blocker!.listen(0, "127.0.40.3", resolve));
      const taken = `127.0.40.3:${(blocker.address() as AddressInfo).port}`;
      const before = lbFile();
      const ftpNode = { name: "web-c", ftp: "127.0.40.6:2121", passivePorts: [30600, 30699] };
      await registerBackends(api, [ftpNode]);
      const answer = await api.put("/v1/balancer/acme", {
        domains: DOMAINS,
        backends: [...backendsOf(webA, webB), ftpNode],
        ftp: { listen: taken },
      });
      expect(answer.status, answer.text).to.equal(422);
      expect(answer.json).to.have.nested.property("error.code", "haproxy_rejected");
      expect(lbFile()).to.equal(before);
      expect((await api.get("/v1/balancer/acme")).json).to.deep.include({ backends: backendsOf(webA, webB) });
      expect(new Set(await servedBy("acme.test", 4))).to.deep.equal(new Set(["web-a", "web-b"]));

      const invalid = await api.put("/v1/balancer/acme", {
        domains: DOMAINS,
        backends: backendsOf(webA),
        ftp: { listen: "127.0.40.3:2121" }, // schema-valid, but no backend serves FTP
      });
      expect(invalid.status, invalid.text).to.equal(400);
      expect(lbFile()).to.equal(before);
    });

    it("without HAProxy only writes the file; with HAProxy unreachable changes nothing (502)", async function () {
      const configOnlyApi = agentClient(configOnly!.url, token);
      await registerBackends(configOnlyApi, backendsOf(webA));
      const written = await configOnlyApi.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) });
      expect(written.status, written.text).to.equal(201);
      const file = fs.readFileSync(path.join(configOnly!.dataDir, "haproxy", "lbhosting.cfg"), "utf8");
      expect(file).to.include(`    server web-a ${webA.nginx!.listen} check weight 1\n`);
      const status = await configOnlyApi.get("/v1/balancer/acme/status");
      expect(status.status, status.text).to.equal(409);
      expect(status.json).to.have.nested.property("error.code", "no_haproxy");

      const orphan = await startAgentProcess({
        host: "127.0.40.4",
        token,
        httpListen: "127.0.40.4:8081",
        extraArgs: ["--haproxy-bin", lb.haproxy!.bin, "--haproxy-master-socket", path.join(work, "no-such.sock")],
      });
      try {
        await registerBackends(agentClient(orphan.url, token), backendsOf(webA));
        const answer = await agentClient(orphan.url, token).put("/v1/balancer/acme", {
          domains: DOMAINS,
          backends: backendsOf(webA),
        });
        expect(answer.status, answer.text).to.equal(502);
        expect(answer.json).to.have.nested.property("error.code", "haproxy_unreachable");
        expect((await agentClient(orphan.url, token).get("/v1/balancer")).json).to.deep.equal({ routes: [] });
      } finally {
        await orphan.stop();
        orphan.cleanup();
      }
    });

    it("re-renders the same file after a restart and keeps routing", async function () {
      const before = lbFile();
      await lb.agent.restart();
      expect(lbFile()).to.equal(before);
      expect((await api.get("/v1/balancer")).json)
        .to.have.property("routes")
        .with.length(1);
      expect(new Set(await servedBy("www.acme.test", 4))).to.deep.equal(new Set(["web-a", "web-b"]));
    });
  });

  describe("draining", function () {
    it("answers a PUT that removes a backend only after its requests in flight have finished", async function () {
      slow = await startSlowBackend("127.0.40.5");
      const slowRoute = { domains: ["slow.test"], backends: [{ name: "slow", http: slow.listen }] };
      await registerBackends(api, slowRoute.backends);
      expect((await api.put("/v1/balancer/slow", slowRoute)).status).to.equal(201);
      const inFlight = getSite(lb.haproxy!.url, "slow.test", 10_000);
      await new Promise((resolve) => setTimeout(resolve, SLOW_MS / 3)); // the request has reached the backend
      const started = Date.now();
      const put = await api.put("/v1/balancer/slow", { ...slowRoute, backends: backendsOf(webA) });
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
        // Drain first: the PUT returns once nothing is in flight to web-b and HAProxy runs without it ...
        const put = await api.put("/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) });
        expect(put.status, put.text).to.equal(200);
        // ... then remove: web-b stops serving the org at once.
        const removed = await agentClient(webB.url, token).delete("/v1/orgs/acme");
        expect(removed.status, removed.text).to.equal(200);
        switchDoneAt = Date.now();
      };
      await Promise.all([worker(), worker(), switchOver()]);

      const failures = results.filter((result) => result.failure !== undefined);
      console.log(`      removal: ${results.length} requests through the LB, ${failures.length} failed`);
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
      expect(lbFile()).not.to.include("lbh_web_acme");
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
        const before = { file: lbFile(), routes: (await api.get("/v1/balancer")).json };
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
        expect({ file: lbFile(), routes: (await api.get("/v1/balancer")).json }).to.deep.equal(before);
      });
    }

    it("answers 401 without the token on every new endpoint", async function () {
      const before = lbFile();
      const endpoints: Array<[string, string, unknown?]> = [
        ["GET", "/v1/node"],
        ["GET", "/v1/balancer"],
        ["PUT", "/v1/balancer/acme", { domains: DOMAINS, backends: backendsOf(webA) }],
        ["GET", "/v1/balancer/acme"],
        ["GET", "/v1/balancer/acme/status"],
        ["DELETE", "/v1/balancer/acme"],
        ["GET", "/v1/backends"],
        ["PUT", "/v1/backends/web-a", { http: webA.nginx!.listen }],
        ["DELETE", "/v1/backends/web-a"],
      ];
      for (const [method, url, body] of endpoints) {
        const refused: Array<Record<string, string>> = [{}, { authorization: "Bearer wrong-token-wrong-token" }];
        for (const headers of refused) {
          const answer = await call(lb.url, method, url, { token: null, headers, body });
          expect(answer.status, `${method} ${url}`).to.equal(401);
          expect(answer.json).to.have.nested.property("error.code", "unauthorized");
        }
      }
      expect(lbFile()).to.equal(before);
    });
  });
});
