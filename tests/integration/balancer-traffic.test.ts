/**
 * Traffic through the load balancer, all real: two hosting nodes (agent + nginx + pure-ftpd,
 * 127.0.41.1 primary and 127.0.41.2 secondary, sharing one content folder as they share the NAS)
 * and a load balancer (agent + HAProxy, 127.0.41.3) that their pure-ftpd advertise for passive
 * mode. A slow HTTP server (127.0.41.5) stands in for a node whose site answers late.
 *
 * Least-busy balancing, health checks taking a stopped web server out and back, ten FTP clients
 * through the load balancer, and a node drained while an FTP session on it is still open. Figures
 * (requests and sessions per node, failures) are printed for the issue notes.
 */
import { expect } from "chai";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { SITE_CHECK_PATH } from "../../agent/src/render/site-check";
import { AgentClient } from "../../provider/client";
import { routeOrg } from "../../provider/balancer";
import { syncOrg } from "../../provider/sync";
import type { BalancerStatus, ServerView } from "../../wire";
import { runCli } from "../support/cli-run";
import { FtpSession } from "../support/ftp-client";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { type HostingNode, nodeBehind, startBalancedNodes } from "../support/hosting-node";
import { getSite } from "../support/http-get";
import { nginxBinaryOrSkip } from "../support/nginx";
import { passivePortsOf, pureFtpdOrSkip } from "../support/pureftpd";
import { nasFolder } from "../support/nas";

const TOKEN = "balancer-traffic-token-0123456789";
const ORG = "acme";
const WWW = "www.acme.test";
const SLOW_SITE = "slow.acme.test";
const SLOW_MS = 500;
const PASSWORD = "alice-ftp-password-1";
const LOGIN = `alice@files.${ORG}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 100 ms until it returns true, at most `limitMs`; how long it took. */
async function waitFor(what: string, limitMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(100);
  }
  return Date.now() - started;
}

/** A web server whose every GET answers after SLOW_MS (HAProxy's checks at once). */
async function startSlowSite(host: string): Promise<{ server: http.Server; listen: string }> {
  const server = http.createServer((request, response) => {
    if (request.url === SITE_CHECK_PATH) return void response.writeHead(200).end("check\n");
    setTimeout(() => response.writeHead(200, { "x-served-by": "web-a-slow" }).end("slow\n"), SLOW_MS);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, listen: `${host}:${(server.address() as AddressInfo).port}` };
}

describe("traffic through the HAProxy load balancer (integration)", function () {
  this.timeout(120_000);
  let content: string;
  let primary: HostingNode;
  let secondary: HostingNode;
  let lb: HostingNode;
  let slow: { server: http.Server; listen: string } | undefined;
  let ftpListen: string;
  const sessions: FtpSession[] = [];
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 60_000 });

  const viaLb = (host: string) => getSite(lb.haproxy!.url, host);
  const lbStatus = async (): Promise<BalancerStatus> => clientFor(lb.url).balancerStatus(ORG);
  const view = async (node: HostingNode, kind: "web" | "ftp"): Promise<ServerView | undefined> =>
    (await lbStatus()).nodes.find((entry) => entry.name === node.name)?.[kind];
  const openSession = async (): Promise<FtpSession> => {
    const [host, port] = ftpListen.split(":");
    const session = await FtpSession.open({ host, port: Number(port), user: LOGIN, password: PASSWORD });
    sessions.push(session);
    return session;
  };
  /** The node behind a session: the passive range of the port it advertises. */
  const nodeOf = async (session: FtpSession): Promise<string> => {
    await session.list();
    return nodeBehind(session, [primary, secondary]);
  };

  /** `total` GETs for `host` through the LB from `concurrency` clients at once; answers per X-Served-By. */
  async function burst(host: string, total: number, concurrency: number): Promise<Record<string, number>> {
    const served: Record<string, number> = {};
    let sent = 0;
    const client = async () => {
      while (sent < total) {
        sent++;
        const answer = await viaLb(host);
        const key = answer.status === 200 ? (answer.servedBy ?? "none") : `failed ${answer.status}`;
        served[key] = (served[key] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    return served;
  }

  before(async function () {
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    content = nasFolder("traffic", { [`${ORG}/www/index.html`]: "Acme from the NAS\n" });
    ({
      primary,
      secondary,
      balancer: lb,
      ftpAddress: ftpListen,
    } = await startBalancedNodes({
      hosts: ["127.0.41.1", "127.0.41.2", "127.0.41.3"],
      names: ["web-a", "web-b", "lb"],
      token: TOKEN,
      contentRoot: content,
      nginxBin,
      haproxyBin,
      ftp,
    }));
    slow = await startSlowSite("127.0.41.5");

    const api = clientFor(primary.url);
    await api.putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url] });
    await api.putService(ORG, "www", { kind: "website", domains: [WWW, SLOW_SITE], documentRoot: "www" });
    await api.putService(ORG, "files", { kind: "ftp", rootPath: "files", writable: true });
    await api.putUser(ORG, "alice", { password: PASSWORD, access: ["files"] });
    fs.writeFileSync(path.join(content, ORG, "files", "readme.txt"), "read me\n");
    const report = await syncOrg(api, ORG, clientFor);
    expect(report.inSync, JSON.stringify(report)).to.equal(true);
  });

  // A failed test must not leave sessions open for the next one (it counts open connections).
  afterEach(function () {
    for (const session of sessions.splice(0)) session.destroy();
  });

  after(async function () {
    const stops = await Promise.allSettled([
      ...[lb, secondary, primary].map((node) => node?.stop()),
      new Promise<void>((resolve) => (slow ? slow.server.close(() => resolve()) : resolve())),
    ]);
    if (content) fs.rmSync(content, { recursive: true, force: true });
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("routes the org's web and FTP traffic to both nodes, as the provider computes it from the nodes", async function () {
    const org = { name: ORG, primary: primary.url, loadBalancer: lb.url };
    await routeOrg(org, [primary.url, secondary.url], clientFor, { ftp: ftpListen });
    const route = await clientFor(lb.url).getRoute(ORG);
    expect(route).to.deep.include({ domains: [SLOW_SITE, WWW], ftp: { listen: ftpListen } });
    expect(route.backends).to.deep.equal(
      [primary, secondary].map((node) => ({
        name: node.name,
        http: node.nginx!.listen,
        ftp: `${node.ftp!.host}:${node.ftp!.port}`,
        passivePorts: passivePortsOf(node.ftp!.host),
      })),
    );
    // A user's or service's change re-routes without settings: the FTP address stays.
    await routeOrg(org, [primary.url, secondary.url], clientFor);
    expect((await clientFor(lb.url).getRoute(ORG)).ftp).to.deep.equal({ listen: ftpListen });
    await waitFor("both nodes healthy", 15_000, async () => {
      const status = await lbStatus();
      return status.nodes.every((node) => node.web?.healthy && node.ftp?.healthy);
    });
  });

  it("least busy: a node answering late gets few of a burst; equal nodes share it", async function () {
    // The site moves from acme's route to the burst route for this test (a domain belongs to one route).
    const { backends, ftp } = await clientFor(lb.url).getRoute(ORG);
    // web-b as routeOrg registered it (a route names a node at exactly its registered addresses),
    // and a slow stand-in for web-a, registered as an administrator would.
    const webB = backends.find((backend) => backend.name === "web-b")!;
    await clientFor(lb.url).registerBackend("web-a-slow", { http: slow!.listen });
    const burstRoute = {
      domains: [SLOW_SITE],
      backends: [{ name: "web-a-slow", http: slow!.listen }, webB],
    };
    await clientFor(lb.url).putRoute(ORG, { domains: [WWW], backends, ftp });
    await clientFor(lb.url).putRoute("burst", burstRoute);
    await waitFor("the slow node healthy", 15_000, async () => {
      const status = await clientFor(lb.url).balancerStatus("burst");
      return status.nodes.every((node) => node.web?.healthy);
    });

    const skewed = await burst(SLOW_SITE, 200, 20);
    const equal = await burst(WWW, 200, 20);
    console.log(`      least busy, one node ${SLOW_MS} ms late: ${JSON.stringify(skewed)}`);
    console.log(`      least busy, equal nodes: ${JSON.stringify(equal)}`);
    expect(Object.keys(skewed).filter((key) => key.startsWith("failed"))).to.deep.equal([]);
    expect(skewed["web-b"]).to.be.greaterThan(3 * (skewed["web-a-slow"] ?? 0));
    expect(Object.keys(equal).sort()).to.deep.equal(["web-a", "web-b"]);
    expect(Math.min(equal["web-a"], equal["web-b"])).to.be.at.least(40);
    await clientFor(lb.url).deleteRoute("burst");
  });

  it("health: a stopped web server is taken out after its checks fail, with no failed request, and comes back", async function () {
    const failures: string[] = [];
    const loop = async (count: number): Promise<Record<string, number>> => {
      const served: Record<string, number> = {};
      for (let i = 0; i < count; i++) {
        const answer = await viaLb(WWW).catch((error: Error) => ({ status: 0, servedBy: error.message, body: "" }));
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.servedBy ?? ""}`);
        else served[answer.servedBy ?? "none"] = (served[answer.servedBy ?? "none"] ?? 0) + 1;
      }
      return served;
    };
    await secondary.nginx!.halt();
    // While the checks still fail (up to 3 × 1 s), a refused connection is retried on the other node.
    const duringChecks = await loop(100);
    const downAfter = await waitFor(
      "web-b marked down",
      15_000,
      async () => (await view(secondary, "web"))?.healthy === false,
    );
    expect((await view(secondary, "web"))?.status).to.match(/^DOWN/);
    const whileDown = await loop(100);
    console.log(
      `      health: web-b's nginx stopped; marked down after ${downAfter} ms; ` +
        `while its checks failed ${JSON.stringify(duringChecks)}, once down ${JSON.stringify(whileDown)}, ` +
        `${failures.length} failed`,
    );
    expect(failures).to.deep.equal([]);
    expect(whileDown).to.deep.equal({ "web-a": 100 });
    expect((await view(secondary, "ftp"))?.healthy, "its FTP server is checked on its own").to.equal(true);

    await secondary.nginx!.start();
    const upAfter = await waitFor(
      "web-b back up",
      15_000,
      async () => (await view(secondary, "web"))?.healthy === true,
    );
    const back = await loop(40);
    console.log(`      health: web-b's nginx started again; up after ${upAfter} ms; then ${JSON.stringify(back)}`);
    expect(failures).to.deep.equal([]);
    expect(Object.keys(back).sort()).to.deep.equal(["web-a", "web-b"]);
  });

  it("FTP: ten clients through the load balancer log in, list, download and upload, spread over both nodes", async function () {
    const clients = await Promise.all(Array.from({ length: 10 }, () => openSession()));
    const nodes = await Promise.all(clients.map(nodeOf));
    const results = await Promise.all(
      clients.map(async (session, index) => {
        const names = await session.list();
        const readme = await session.retrieve("readme.txt");
        await session.store(`upload-${index}.txt`, `from client ${index} via ${nodes[index]}\n`);
        return { names, readme };
      }),
    );
    const perNode = nodes.reduce<Record<string, number>>(
      (count, node) => ({ ...count, [node]: (count[node] ?? 0) + 1 }),
      {},
    );
    const status = await lbStatus();
    const open = Object.fromEntries(status.nodes.map((node) => [node.name, node.ftp?.active]));
    console.log(
      `      FTP: 10 sessions through the LB, per node ${JSON.stringify(perNode)}; LB counts open ${JSON.stringify(open)}`,
    );

    expect(Object.keys(perNode).sort()).to.deep.equal(["web-a", "web-b"]);
    expect(open).to.deep.equal(perNode);
    for (const { names, readme } of results) {
      expect(names).to.include("readme.txt");
      expect(readme).to.equal("read me\n");
    }
    const passiveHosts = new Set(clients.flatMap((session) => session.passive.map((address) => address.host)));
    expect([...passiveHosts], "every node advertises the load balancer for passive mode").to.deep.equal(["127.0.41.3"]);

    // What one node took in, the other serves: the content is the NAS's.
    const onA = nodes.indexOf("web-a");
    const onB = nodes.indexOf("web-b");
    expect(await clients[onB].retrieve(`upload-${onA}.txt`)).to.equal(`from client ${onA} via web-a\n`);
    expect(await clients[onA].retrieve(`upload-${onB}.txt`)).to.equal(`from client ${onB} via web-b\n`);
    for (let index = 0; index < 10; index++) {
      expect(fs.readFileSync(path.join(content, ORG, "files", `upload-${index}.txt`), "utf8")).to.include(
        `client ${index}`,
      );
    }
    await Promise.all(clients.map((session) => session.quit()));
  });

  it("drain: a node taken out keeps its open FTP session to the end; new logins go to the other node", async function () {
    const first = await openSession();
    const second = await openSession();
    const [onB, other] = (await nodeOf(first)) === "web-b" ? [first, second] : [second, first];
    expect(await nodeOf(onB)).to.equal("web-b");
    await other.quit();

    const org = { name: ORG, primary: primary.url, loadBalancer: lb.url };
    let answered = false;
    const demotion = routeOrg(org, [primary.url], clientFor, { ftp: ftpListen }).then(() => (answered = true));
    await waitFor("web-b draining", 10_000, async () => (await view(secondary, "ftp"))?.status === "DRAIN");

    // The session carries on through the load balancer: listing, download, upload.
    expect(await onB.list()).to.include("readme.txt");
    expect(await onB.retrieve("readme.txt")).to.equal("read me\n");
    await onB.store("during-drain.txt", "written while draining\n");
    expect(nodeBehind(onB, [primary, secondary])).to.equal("web-b");
    const newcomer = await openSession();
    expect(await nodeOf(newcomer), "a new login while web-b drains").to.equal("web-a");
    await newcomer.quit();
    expect(answered, "the route change waits for the session").to.equal(false);

    await onB.quit();
    await demotion;
    const after = await Promise.all(Array.from({ length: 4 }, () => openSession()));
    const nodes = await Promise.all(after.map(nodeOf));
    console.log(`      drain: the session on web-b finished its transfers; logins after: ${JSON.stringify(nodes)}`);
    expect(nodes).to.deep.equal(Array(4).fill("web-a"));
    expect((await lbStatus()).nodes.map((node) => node.name)).to.deep.equal(["web-a"]);
    expect(fs.readFileSync(path.join(content, ORG, "files", "during-drain.txt"), "utf8")).to.equal(
      "written while draining\n",
    );
    await Promise.all(after.map((session) => session.quit()));
  });

  it("lbhosting status --load-balancer shows each node's health and open connections", async function () {
    const org = { name: ORG, primary: primary.url, loadBalancer: lb.url };
    await routeOrg(org, [primary.url, secondary.url], clientFor, { ftp: ftpListen });
    // Right after the route change HAProxy starts each server at "UP 1/3": up, but one failed check
    // from down, until `rise` (2) checks have passed. Wait for that settled "UP".
    await waitFor("both nodes settled UP", 15_000, async () =>
      (await lbStatus()).nodes.every((node) => node.web?.status === "UP" && node.ftp?.status === "UP"),
    );
    const open = [await openSession(), await openSession()];
    const result = await runCli(
      [
        "status",
        "--org",
        ORG,
        "--primary",
        primary.url,
        "--secondary",
        secondary.url,
        "--load-balancer",
        lb.url,
        "--json",
      ],
      { LBHOSTING_TOKEN: TOKEN },
    );
    expect(result.code, result.stderr).to.equal(0);
    const report = JSON.parse(result.stdout) as {
      loadBalancer: { nodes: Array<{ endpoint: string; name: string; web: ServerView; ftp: ServerView }> };
    };
    expect(report.loadBalancer.nodes.map((node) => [node.endpoint, node.name])).to.deep.equal([
      [primary.url, "web-a"],
      [secondary.url, "web-b"],
    ]);
    for (const node of report.loadBalancer.nodes) {
      expect(node.web).to.deep.include({ healthy: true });
      expect(node.ftp).to.deep.include({ healthy: true, active: 1 });
    }
    const table = await runCli(
      ["status", "--org", ORG, "--primary", primary.url, "--secondary", secondary.url, "--load-balancer", lb.url],
      {
        LBHOSTING_TOKEN: TOKEN,
      },
    );
    expect(table.stdout).to.match(/ENDPOINT\s+ROLE\s+GENERATION\s+DIGEST\s+STATE\s+LAST SYNC\s+LB WEB\s+LB FTP/);
    expect(table.stdout).to.match(new RegExp(`${secondary.url}\\s.*UP, \\d+ open\\s+UP, 1 open`));
    await Promise.all(open.map((session) => session.quit()));
  });

  // Last: it stops web-b's pure-ftpd for good.
  it("FTP health: with a node's pure-ftpd stopped, every new session goes to the other node, before its checks fail too", async function () {
    await waitFor("both FTP servers settled UP", 15_000, async () =>
      (await lbStatus()).nodes.every((node) => node.ftp?.status === "UP"),
    );
    await secondary.ftp!.stop();
    const failures: string[] = [];
    const served: string[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        const session = await openSession();
        served.push(await nodeOf(session));
        await session.quit();
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    const seen = (await view(secondary, "ftp"))?.status;
    console.log(
      `      FTP health: web-b's pure-ftpd stopped; 10 sessions served by ${JSON.stringify(served)}, ` +
        `${failures.length} failed; web-b's FTP check then reads ${seen}`,
    );
    expect(failures).to.deep.equal([]);
    expect(served).to.deep.equal(Array.from({ length: 10 }, () => "web-a"));
  });
});
