/**
 * What the load balancer knows of a node beyond "it answers", all real: two hosting nodes (agent +
 * nginx + pure-ftpd, 127.0.42.1 and 127.0.42.2), each with its own content folder (its own NAS
 * mount) and its own FTP session limit, behind a load balancer (agent + HAProxy, 127.0.42.3).
 *
 * A node whose nginx cannot read the org's content leaves the web rotation (issue 24, defect 3);
 * FTP sessions beyond a node's limit go to the other node instead of being refused (defect 4).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import { AgentClient } from "../../provider/client";
import { routeOrg } from "../../provider/balancer";
import { syncOrg } from "../../provider/sync";
import type { ServerView } from "../../wire";
import { FtpSession } from "../support/ftp-client";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { type HostingNode, nodeBehind, startBalancedNodes } from "../support/hosting-node";
import { getSite } from "../support/http-get";
import { nginxBinaryOrSkip } from "../support/nginx";
import { pureFtpdOrSkip } from "../support/pureftpd";
import { nasFolder } from "../support/nas";

const TOKEN = "balancer-checks-token-0123456789";
const ORG = "acme";
const WWW = "www.acme.test";
const PASSWORD = "alice-ftp-password-1";
const LOGIN = `alice@files.${ORG}`;
/** pure-ftpd's -c on each node (and their --ftp-max-sessions): the load balancer sends one fewer each. */
const LIMITS: [number, number] = [4, 8];

/** Polls `probe` every 100 ms until it returns true, at most `limitMs`; how long it took. */
async function waitFor(what: string, limitMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(100);
  }
  return Date.now() - started;
}

describe("load balancer checks and limits: unreadable content, FTP capacity (integration)", function () {
  this.timeout(120_000);
  const contents: string[] = [];
  let primary: HostingNode;
  let secondary: HostingNode;
  let lb: HostingNode;
  let ftpListen: string;
  const sessions: FtpSession[] = [];
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 60_000 });
  const view = async (node: HostingNode, kind: "web" | "ftp"): Promise<ServerView | undefined> =>
    (await clientFor(lb.url).balancerStatus(ORG)).nodes.find((entry) => entry.name === node.name)?.[kind];

  /** `count` GETs one after the other through the LB: answers per X-Served-By, or per failed status. */
  async function loop(count: number): Promise<Record<string, number>> {
    const served: Record<string, number> = {};
    for (let i = 0; i < count; i++) {
      const answer = await getSite(lb.haproxy!.url, WWW).catch(() => ({ status: 0, servedBy: undefined }));
      const key = answer.status === 200 ? (answer.servedBy ?? "none") : `failed ${answer.status}`;
      served[key] = (served[key] ?? 0) + 1;
    }
    return served;
  }

  before(async function () {
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    for (const node of ["a", "b"]) contents.push(nasFolder(`checks-${node}`, { [`${ORG}/www/index.html`]: "Acme\n" }));
    ({
      primary,
      secondary,
      balancer: lb,
      ftpAddress: ftpListen,
    } = await startBalancedNodes({
      hosts: ["127.0.42.1", "127.0.42.2", "127.0.42.3"],
      names: ["web-a", "web-b", "lb"],
      token: TOKEN,
      contentRoot: [contents[0], contents[1]],
      nginxBin,
      haproxyBin,
      ftp,
      ftpMaxSessions: LIMITS,
    }));
    const api = clientFor(primary.url);
    await api.putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url] });
    await api.putService(ORG, "www", { kind: "website", domains: [WWW], documentRoot: "www" });
    await api.putService(ORG, "files", { kind: "ftp", rootPath: "files", writable: true });
    await api.putUser(ORG, "alice", { password: PASSWORD, access: ["files"] });
    const report = await syncOrg(api, ORG, clientFor);
    expect(report.inSync, JSON.stringify(report)).to.equal(true);
    const org = { name: ORG, primary: primary.url, loadBalancer: lb.url };
    await routeOrg(org, [primary.url, secondary.url], clientFor, { ftp: ftpListen });
    await waitFor("both nodes settled UP", 15_000, async () =>
      (await clientFor(lb.url).balancerStatus(ORG)).nodes.every(
        (node) => node.web?.status === "UP" && node.ftp?.status === "UP",
      ),
    );
  });

  afterEach(function () {
    for (const session of sessions.splice(0)) session.destroy();
    for (const content of contents) fs.chmodSync(path.join(content, ORG, "www"), 0o755);
  });

  after(async function () {
    const stops = await Promise.allSettled([lb, secondary, primary].map((node) => node?.stop()));
    for (const content of contents) fs.rmSync(content, { recursive: true, force: true });
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("each node routes its session limit to the load balancer", async function () {
    for (const [index, node] of [primary, secondary].entries()) {
      expect((await clientFor(node.url).nodeInfo()).ftpMaxSessions).to.equal(LIMITS[index]);
    }
    const route = await clientFor(lb.url).getRoute(ORG);
    expect(route.backends.map((backend) => [backend.name, backend.maxSessions])).to.deep.equal([
      ["web-a", LIMITS[0]],
      ["web-b", LIMITS[1]],
    ]);
  });

  it("web: a node whose nginx cannot read the site's content leaves the rotation, and comes back once it can", async function () {
    const www = path.join(contents[1], ORG, "www");
    expect(fs.readFileSync(path.join(www, ".well-known", "lbhosting", "health"), "utf8")).to.equal(
      "lbhosting acme www\n",
    );
    expect(await loop(20), "both nodes serve before").to.have.all.keys("web-a", "web-b");

    fs.chmodSync(www, 0o700); // root's alone: nginx's workers answer 403/404 for everything in it
    const downAfter = await waitFor(
      "web-b marked down",
      15_000,
      async () => (await view(secondary, "web"))?.healthy === false,
    );
    const whileDown = await loop(50);
    console.log(
      `      unreadable content on web-b: marked down after ${downAfter} ms; then ${JSON.stringify(whileDown)}`,
    );
    expect(whileDown).to.deep.equal({ "web-a": 50 });
    expect((await view(secondary, "ftp"))?.healthy, "its FTP server is checked on its own").to.equal(true);

    fs.chmodSync(www, 0o755);
    const upAfter = await waitFor(
      "web-b back up",
      15_000,
      async () => (await view(secondary, "web"))?.healthy === true,
    );
    const back = await loop(40);
    console.log(`      readable again: web-b up after ${upAfter} ms; then ${JSON.stringify(back)}`);
    expect(back).to.have.all.keys("web-a", "web-b");
  });

  it("web: a hung node (nginx stopped by SIGSTOP) leaves once its checks time out, and comes back", async function () {
    const pids = [secondary.nginx!.pid, ...secondary.nginx!.workerPids()];
    try {
      for (const pid of pids) process.kill(pid, "SIGSTOP");
      const downAfter = await waitFor(
        "web-b marked down",
        20_000,
        async () => (await view(secondary, "web"))?.healthy === false,
      );
      console.log(`      hung nginx on web-b: marked down after ${downAfter} ms`);
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
    await waitFor("web-b back up", 15_000, async () => (await view(secondary, "web"))?.healthy === true);
    expect(await loop(40)).to.have.all.keys("web-a", "web-b");
  });

  it("FTP: ten sessions at once through the load balancer all log in, none beyond a node's limit", async function () {
    const [host, port] = ftpListen.split(":");
    const opened = await Promise.allSettled(
      Array.from({ length: 10 }, () => FtpSession.open({ host, port: Number(port), user: LOGIN, password: PASSWORD })),
    );
    const open = opened.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    sessions.push(...open);
    const refused = opened.flatMap((result) =>
      result.status === "rejected" ? [(result.reason as Error).message] : [],
    );
    const nodes = await Promise.all(
      open.map(async (session) => {
        await session.list();
        return nodeBehind(session, [primary, secondary]);
      }),
    );
    const perNode = nodes.reduce<Record<string, number>>(
      (count, node) => ({ ...count, [node]: (count[node] ?? 0) + 1 }),
      {},
    );
    console.log(
      `      FTP limits ${LIMITS.join("/")}: per node ${JSON.stringify(perNode)}; refused ${JSON.stringify(refused)}`,
    );
    expect(refused).to.deep.equal([]);
    expect(perNode["web-a"] ?? 0).to.be.at.most(LIMITS[0] - 1);
    expect(perNode["web-b"] ?? 0).to.be.at.most(LIMITS[1] - 1);
    await Promise.all(open.map((session) => session.quit()));
  });
});
