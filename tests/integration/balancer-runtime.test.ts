/**
 * Load-balancer routes changed without a reload, all real: a load-balancer agent driving HAProxy
 * (127.0.47.3) in front of three plain web servers standing in for nodes (127.0.47.1, .2, .4),
 * each naming itself in X-Served-By.
 *
 * A route that only changes its domains (host map), its weights (`set server … weight`) or adds a
 * web node (`add server`) goes through HAProxy's runtime API: no reload (the agent's reload
 * counter and HAProxy's own stay put, the same worker serves) and live when the write answers. A
 * node leaving and a new org still reload. Route writes
 * sent together share one change. 100 changes keep 0 failed requests in a bounded request loop;
 * after an agent restart and an HAProxy reload the state is what the runtime changes made, and
 * the files are always what a fresh render of the routes makes.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { type OrgRoute, hostMapFile, renderHaproxy, renderHostMap } from "../../agent/src/render/haproxy/config";
import { SITE_CHECK_PATH } from "../../agent/src/render/site-check";
import { type BalancerRecord, balancerListSchema } from "../../wire";
import { type AgentClient, agentClient } from "../support/agent-http";
import { registerBackends } from "../support/backends";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { type HostingNode, startHostingNode } from "../support/hosting-node";
import { getSite } from "../support/http-get";
import { parseExposition, sampleSum } from "../support/prometheus";

const LB_HOST = "127.0.47.3";
const NODE_HOSTS: Record<string, string> = { n1: "127.0.47.1", n2: "127.0.47.2", n3: "127.0.47.4" };
/** The request loop during the 100 changes stops at whichever comes first. */
const LOOP_MAX_REQUESTS = 2000;
const LOOP_MAX_MS = 30_000;
const CHANGES = 100;

interface WebNode {
  name: string;
  listen: string;
  server: http.Server;
}

/** A node's stand-in: its health-check file answers 200, every other GET names the node. */
async function startWebNode(name: string, host: string): Promise<WebNode> {
  const server = http.createServer((request, response) => {
    if (request.url === SITE_CHECK_PATH) return void response.writeHead(200).end("ok\n");
    response.writeHead(200, { "x-served-by": name, "content-type": "text/plain" }).end(`${name}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { name, server, listen: `${host}:${(server.address() as AddressInfo).port}` };
}

describe("load-balancer route changes through HAProxy's runtime API (integration)", function () {
  this.timeout(120_000);
  const token = randomBytes(24).toString("base64url");
  const web: Record<string, WebNode> = {};
  let lb: HostingNode;
  let api: AgentClient;
  let contentRoot: string | undefined;

  const backend = (name: string, weight?: number) => ({
    name,
    http: web[name].listen,
    ...(weight === undefined ? {} : { weight }),
  });
  const put = async (org: string, route: unknown) => {
    const answer = await api.put(`/v1/balancer/${org}`, route);
    expect(answer.status, answer.text).to.be.oneOf([200, 201]);
  };
  const viaLb = (host: string) => getSite(lb.haproxy!.url, host);

  /** The agent's count of HAProxy changes by `how` (reload, runtime), from its metrics. */
  async function changes(how: "reload" | "runtime"): Promise<number> {
    const answer = await api.get("/metrics");
    expect(answer.status).to.equal(200);
    return sampleSum(parseExposition(answer.text), "lbhosting_agent_haproxy_changes_total", { how }) ?? 0;
  }

  /** HAProxy's own reload count and its current worker. */
  async function haproxyState(): Promise<{ reloads: number; workers: number[] }> {
    const processes = await lb.haproxy!.control.processes();
    return { reloads: processes.reloads, workers: processes.current };
  }

  /** What the current worker routes: its host map entries and each server's weight, sorted. */
  async function runtimeState(): Promise<{ map: string[]; weights: string[] }> {
    const control = lb.haproxy!.control;
    const [worker] = (await control.processes()).current;
    const shown = await control.command(`@!${worker} show map ${hostMapFile(lb.haproxy!.confFile)}`);
    const map = shown
      .split("\n")
      .filter((line) => line.startsWith("0x"))
      .map((line) => line.split(" ").slice(1).join(" "))
      .sort();
    const weights = (await control.stats())
      .filter((row) => row.current && row.backend.startsWith("lbh_web_"))
      .map((row) => `${row.backend}/${row.server}`)
      .sort();
    const weighed = await Promise.all(
      weights.map(async (server) => {
        const answer = await control.command(`@!${worker} get weight ${server}`);
        return `${server} ${answer.trim().split(" ")[0]}`;
      }),
    );
    return { map, weights: weighed };
  }

  /** The agent's files equal what a fresh render of its routes makes. */
  async function expectFreshRender(): Promise<void> {
    const listed = balancerListSchema.parse((await api.get("/v1/balancer")).json).routes as BalancerRecord[];
    const routes: OrgRoute[] = listed.map(({ org, ...route }) => ({ org, route }));
    const confFile = lb.haproxy!.confFile;
    expect(fs.readFileSync(confFile, "utf8")).to.equal(
      renderHaproxy("lb", { http: lb.haproxy!.listen }, routes, hostMapFile(confFile)),
    );
    expect(fs.readFileSync(hostMapFile(confFile), "utf8")).to.equal(renderHostMap(routes));
  }

  before(async function () {
    const haproxyBin = haproxyBinaryOrSkip(this);
    for (const [name, host] of Object.entries(NODE_HOSTS)) web[name] = await startWebNode(name, host);
    contentRoot = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-balancer-runtime-"));
    lb = await startHostingNode({ host: LB_HOST, name: "lb", token, contentRoot, haproxyBin });
    api = agentClient(lb.url, token);
    await registerBackends(
      api,
      Object.keys(NODE_HOSTS).map((name) => backend(name)),
    );
    await put("acme", { domains: ["www.acme.test", "old.acme.test"], backends: [backend("n1"), backend("n2")] });
    await put("globex", { domains: ["www.globex.test"], backends: [backend("n2")] });
  });

  after(async function () {
    const stops = await Promise.allSettled([
      lb?.stop(),
      ...Object.values(web).map((node) => new Promise<void>((resolve) => node.server.close(() => resolve()))),
    ]);
    if (contentRoot) fs.rmSync(contentRoot, { recursive: true, force: true });
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("applies a domain-only change without a reload, live when the write answers", async function () {
    const before = {
      reloads: await changes("reload"),
      runtime: await changes("runtime"),
      haproxy: await haproxyState(),
    };
    await put("acme", { domains: ["www.acme.test", "new.acme.test"], backends: [backend("n1"), backend("n2")] });
    // At once, no polling: the write answered, so the new domain is routed and the old one is not.
    expect((await viaLb("new.acme.test")).status).to.equal(200);
    expect((await viaLb("old.acme.test")).status).to.equal(404);
    await put("globex", { domains: ["www.globex.test", "old.acme.test"], backends: [backend("n2")] });
    const moved = await viaLb("old.acme.test");
    expect([moved.status, moved.servedBy]).to.deep.equal([200, "n2"]);

    expect(await changes("reload"), "the agent's reloads").to.equal(before.reloads);
    expect(await changes("runtime"), "runtime changes").to.equal(before.runtime + 2);
    expect(await haproxyState(), "HAProxy's reloads and worker").to.deep.equal(before.haproxy);
    await expectFreshRender();
  });

  it("applies a weight-only change without a reload, live when the write answers", async function () {
    const before = { reloads: await changes("reload"), haproxy: await haproxyState() };
    await put("acme", { domains: ["www.acme.test", "new.acme.test"], backends: [backend("n1"), backend("n2", 7)] });
    expect((await runtimeState()).weights).to.include("lbh_web_acme/n2 7");
    expect(await changes("reload")).to.equal(before.reloads);
    expect(await haproxyState()).to.deep.equal(before.haproxy);
    await expectFreshRender();
  });

  it("adds a node to a web backend without a reload (add server), serving when the write answers; a node leaving reloads", async function () {
    const before = { reloads: await changes("reload"), haproxy: await haproxyState() };
    const withN3 = [backend("n1"), backend("n2", 7), backend("n3")];
    await put("acme", { domains: ["www.acme.test", "new.acme.test"], backends: withN3 });
    const status = await api.get("/v1/balancer/acme/status");
    expect(status.json, status.text).to.have.nested.property("nodes[2].web.healthy", true);
    expect(await changes("reload")).to.equal(before.reloads);
    expect(await haproxyState()).to.deep.equal(before.haproxy);
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 30 && !seen.has("n3"); i++) seen.add((await viaLb("www.acme.test")).servedBy);
    expect(seen).to.include("n3");
    await expectFreshRender();

    // Structural: n3 is drained and leaves with a reload; it joins again without one.
    await put("acme", { domains: ["www.acme.test", "new.acme.test"], backends: [backend("n1"), backend("n2", 7)] });
    expect(await changes("reload")).to.equal(before.reloads + 1);
    expect((await haproxyState()).workers).not.to.deep.equal(before.haproxy.workers);
    await expectFreshRender();
    await put("acme", { domains: ["www.acme.test", "new.acme.test"], backends: withN3 });
    expect(await changes("reload")).to.equal(before.reloads + 1);
    await expectFreshRender();
  });

  it("gives route writes sent together one change, where a refused one fails alone", async function () {
    const orgs = Array.from({ length: 10 }, (_, i) => `batch${i}`);
    const before = await changes("reload");
    const answers = await Promise.all([
      ...orgs.map((org) => api.put(`/v1/balancer/${org}`, { domains: [`www.${org}.test`], backends: [backend("n1")] })),
      // Taken by acme: refused (409), the rest of its batch goes ahead.
      api.put("/v1/balancer/intruder", { domains: ["www.acme.test"], backends: [backend("n1")] }),
    ]);
    expect(answers.map((answer) => answer.status)).to.deep.equal([...orgs.map(() => 201), 409]);
    const reloads = (await changes("reload")) - before;
    console.log(`      10 new routes sent together: ${reloads} reload(s)`);
    // One at a time, 10 new org backends were 10 reloads; together they share one (two when the
    // first write started its batch before the others arrived).
    expect(reloads).to.be.within(1, 2);
    for (const org of orgs) expect((await viaLb(`www.${org}.test`)).servedBy).to.equal("n1");
    expect((await api.get("/v1/balancer/intruder")).status).to.equal(404);
    await expectFreshRender();
  });

  it(`keeps 0 failed requests during ${CHANGES} route changes, each new domain live when its write answers`, async function () {
    const before = { reloads: await changes("reload"), runtime: await changes("runtime") };
    let done = false;
    let sent = 0;
    let changesMade = 0;
    let changesUnderLoad = 0;
    const outcomes = { ok: 0, failed: [] as string[] };
    const started = Date.now();
    const loop = async () => {
      while (!done && sent < LOOP_MAX_REQUESTS && Date.now() - started < LOOP_MAX_MS) {
        sent++;
        const answer = await viaLb("www.acme.test").catch((error: Error) => ({ status: 0, servedBy: error.message }));
        if (answer.status === 200) outcomes.ok++;
        else outcomes.failed.push(`${answer.status} ${answer.servedBy}`);
      }
      changesUnderLoad = Math.max(changesUnderLoad, changesMade);
    };
    const clients = Promise.all([loop(), loop()]);
    try {
      for (let i = 0; i < CHANGES; i++) {
        // n3 leaves (a reload) at every twentieth change and joins again (add server) at the
        // next; the others change a domain and a weight.
        const withN3 = i % 20 !== 9;
        const backends = [backend("n1"), backend("n2", 1 + (i % 5)), ...(withN3 ? [backend("n3")] : [])];
        await put("acme", { domains: ["www.acme.test", `d${i}.acme.test`], backends });
        const answer = await viaLb(`d${i}.acme.test`);
        expect(answer.status, `d${i}.acme.test right after its write`).to.equal(200);
        if (i > 0) expect((await viaLb(`d${i - 1}.acme.test`)).status).to.equal(404);
        changesMade++;
      }
    } finally {
      done = true;
      await clients;
    }
    const reloads = (await changes("reload")) - before.reloads;
    const runtime = (await changes("runtime")) - before.runtime;
    console.log(
      `      ${CHANGES} changes: ${reloads} reloads, ${runtime} runtime changes; ` +
        `${outcomes.ok} requests answered, ${outcomes.failed.length} failed, over the first ${changesUnderLoad} changes`,
    );
    expect(outcomes.failed).to.deep.equal([]);
    expect(outcomes.ok).to.be.greaterThan(0);
    expect(reloads, "only a node leaving reloads").to.equal(5);
    expect(runtime).to.equal(CHANGES - 5);
    await expectFreshRender();
  });

  it("finds the same state after an agent restart and an HAProxy reload", async function () {
    const state = await runtimeState();
    const haproxy = await haproxyState();
    await lb.agent.restart();
    expect(await haproxyState(), "the restarted agent found its files current: no reload").to.deep.equal(haproxy);
    await expectFreshRender();
    await lb.haproxy!.control.reload();
    expect(await runtimeState()).to.deep.equal(state);
    expect((await viaLb("d99.acme.test")).status).to.equal(200);
    expect((await viaLb("old.acme.test")).servedBy).to.equal("n2");
  });
});
