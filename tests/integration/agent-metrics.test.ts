/**
 * Every agent's Prometheus metrics after real traffic, all real: two hosting nodes (agent + nginx +
 * pure-ftpd, 127.0.60.1 primary and 127.0.60.2 secondary) and a load balancer (agent + HAProxy,
 * 127.0.60.3). API writes of an org, a website, an FTP service and users with FTP access, a sync
 * that sends the secondary a snapshot and then a delta, a route put on the load balancer and an FTP
 * session through it; then each agent's `GET /metrics` is scraped with the token, parsed as
 * Prometheus parses it, and its counters must have moved. Without the token it is 401, and with
 * HAProxy gone a scrape is still served, without HAProxy's node series, and counts the failure.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import fs from "node:fs";
import { AgentClient } from "../../provider/client";
import { routeOrg } from "../../provider/balancer";
import { syncOrg } from "../../provider/sync";
import { FtpSession } from "../support/ftp-client";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { type HostingNode, startBalancedNodes } from "../support/hosting-node";
import { nginxBinaryOrSkip } from "../support/nginx";
import { labelSets, parseExposition, sampleSum } from "../support/prometheus";
import { pureFtpdOrSkip } from "../support/pureftpd";
import { nasFolder } from "../support/nas";

const TOKEN = "agent-metrics-token-0123456789abcdef";
const ORG = "acme";
const PASSWORD = "alice-ftp-password-1";
const SCRAPE_TIMEOUT_MS = 10_000;

/** `GET /metrics` as Prometheus sends it (`authorization` given or not). */
async function getMetrics(node: HostingNode, authorization?: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${node.url}/metrics`, {
    headers: authorization ? { authorization } : {},
    signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
  });
  return { status: response.status, text: await response.text() };
}

async function scrape(node: HostingNode) {
  const { status, text } = await getMetrics(node, `Bearer ${TOKEN}`);
  expect(status, text).to.equal(200);
  return parseExposition(text);
}

describe("agent metrics after real traffic (integration)", function () {
  this.timeout(120_000);
  let content: string;
  let primary: HostingNode;
  let secondary: HostingNode;
  let lb: HostingNode;
  let ftpListen: string;
  let session: FtpSession | undefined;
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 60_000 });

  before(async function () {
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    content = nasFolder("metrics", { [`${ORG}/www/index.html`]: "Acme\n" });
    ({
      primary,
      secondary,
      balancer: lb,
      ftpAddress: ftpListen,
    } = await startBalancedNodes({
      hosts: ["127.0.60.1", "127.0.60.2", "127.0.60.3"],
      names: ["web-a", "web-b", "lb"],
      token: TOKEN,
      contentRoot: content,
      nginxBin,
      haproxyBin,
      ftp,
    }));

    const api = clientFor(primary.url);
    await api.putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url] });
    await api.putService(ORG, "www", { kind: "website", domains: ["www.acme.test"], documentRoot: "www" });
    await api.putService(ORG, "files", { kind: "ftp", rootPath: "files", writable: true });
    await api.putUser(ORG, "alice", { password: PASSWORD, access: ["files"] });
    const snapshot = await syncOrg(api, ORG, clientFor); // the secondary has no copy: a snapshot
    expect(snapshot.inSync, JSON.stringify(snapshot)).to.equal(true);
    await api.putUser(ORG, "bob", { password: "bob-ftp-password-2", access: ["files"] });
    const delta = await syncOrg(api, ORG, clientFor); // one user behind: a delta
    expect(delta.inSync, JSON.stringify(delta)).to.equal(true);

    await routeOrg({ name: ORG, primary: primary.url, loadBalancer: lb.url }, [primary.url, secondary.url], clientFor, {
      ftp: ftpListen,
    });
  });

  after(async function () {
    session?.destroy();
    const stops = await Promise.allSettled([lb, secondary, primary].map((node) => node?.stop()));
    if (content) fs.rmSync(content, { recursive: true, force: true });
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("refuses a scrape without the API token, or with another", async function () {
    for (const authorization of [undefined, "Bearer not-the-agent-token-0123456789"]) {
      const { status } = await getMetrics(primary, authorization);
      expect(status, `authorization ${authorization}`).to.equal(401);
    }
  });

  it("counts the primary's requests and writes, its nginx and PureDB steps, and what it holds", async function () {
    const samples = await scrape(primary);
    const users = { method: "PUT", route: "/v1/orgs/:org/users/:username" };
    expect(sampleSum(samples, "lbhosting_agent_http_requests_total", { ...users, status: "201" })).to.equal(2);
    expect(sampleSum(samples, "lbhosting_agent_http_request_duration_seconds_count", users)).to.equal(2);
    const write = (resource: string) =>
      sampleSum(samples, "lbhosting_agent_write_duration_seconds_count", { resource, outcome: "ok" });
    expect([write("org"), write("service"), write("user")]).to.deep.equal([1, 2, 2]);
    // The five writes committed, in some number of transactions (writes arriving together share one).
    expect(sampleSum(samples, "lbhosting_agent_write_batch_size_sum")).to.be.at.least(5);
    expect(sampleSum(samples, "lbhosting_agent_write_batch_size_count", { queue: "config" }), "website").to.be.at.least(
      1,
    );
    const step = (server: string, name: string) =>
      sampleSum(samples, "lbhosting_agent_server_step_duration_seconds_count", { server, step: name });
    expect(step("nginx", "validate"), "nginx -t").to.be.at.least(1);
    expect(step("nginx", "reload"), "nginx -s reload").to.be.at.least(1);
    // The start's build; the writes' changes share a later one, off the write path (extauth answers logins).
    expect(step("ftp", "build"), "PureDB builds").to.be.at.least(1);
    expect(sampleSum(samples, "lbhosting_agent_server_step_failures_total") ?? 0).to.equal(0);
    expect(sampleSum(samples, "lbhosting_agent_orgs", { role: "primary" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_users", { role: "primary" })).to.equal(2);
    expect(sampleSum(samples, "lbhosting_agent_services", { role: "primary" })).to.equal(2);
    expect(sampleSum(samples, "lbhosting_agent_orgs", { role: "secondary" })).to.equal(0);
    expect(sampleSum(samples, "lbhosting_agent_password_hashes_total", { operation: "hash" })).to.equal(2);
    expect(sampleSum(samples, "lbhosting_agent_password_queue_depth")).to.equal(0);
    // Route patterns only: no org or user name reaches a label.
    expect(JSON.stringify(labelSets(samples, "lbhosting_agent_http_requests_total"))).not.to.match(/acme|alice|bob/);
  });

  it("counts the secondary's snapshot and delta imports and the bytes they carried", async function () {
    const samples = await scrape(secondary);
    const imports = (kind: string) => sampleSum(samples, "lbhosting_agent_sync_imports_total", { kind, outcome: "ok" });
    expect([imports("snapshot"), imports("delta")]).to.deep.equal([1, 1]);
    const bytes = (kind: string) => sampleSum(samples, "lbhosting_agent_sync_import_received_bytes_total", { kind });
    expect(bytes("snapshot")).to.be.greaterThan(500); // an org, two services and a user with its hash
    expect(bytes("delta")).to.be.greaterThan(100);
    expect(sampleSum(samples, "lbhosting_agent_orgs", { role: "secondary" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_users", { role: "secondary" })).to.equal(2);
    expect(
      sampleSum(samples, "lbhosting_agent_server_step_duration_seconds_count", { server: "nginx" }),
    ).to.be.at.least(2);
  });

  it("on the load balancer: HAProxy's steps, and each node's state and open connections by kind", async function () {
    // HAProxy checks every second: both nodes up in both backends within a few checks.
    let samples = await scrape(lb);
    for (let tries = 0; tries < 50 && sampleSum(samples, "lbhosting_agent_haproxy_node_up") !== 4; tries++) {
      await sleep(200);
      samples = await scrape(lb);
    }
    for (const kind of ["web", "ftp"]) {
      for (const node of ["web-a", "web-b"]) {
        expect(sampleSum(samples, "lbhosting_agent_haproxy_node_up", { kind, node }), `${kind} ${node}`).to.equal(1);
      }
    }
    const [host, port] = ftpListen.split(":");
    session = await FtpSession.open({ host, port: Number(port), user: `alice@files.${ORG}`, password: PASSWORD });
    samples = await scrape(lb);
    expect(
      sampleSum(samples, "lbhosting_agent_haproxy_node_connections", { kind: "ftp" }),
      "the open session",
    ).to.equal(1);
    const step = (name: string) =>
      sampleSum(samples, "lbhosting_agent_server_step_duration_seconds_count", { server: "haproxy", step: name });
    expect([step("validate"), step("reload")].map((count) => (count ?? 0) >= 1)).to.deep.equal([true, true]);
    expect(
      sampleSum(samples, "lbhosting_agent_write_duration_seconds_count", { resource: "route", outcome: "ok" }),
    ).to.be.at.least(1);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_scrape_failures_total")).to.equal(0);
  });

  it("with HAProxy gone, still serves the scrape without its node series, and counts the failure", async function () {
    session?.destroy();
    session = undefined;
    await lb.haproxy!.stop();
    const samples = await scrape(lb);
    expect(labelSets(samples, "lbhosting_agent_haproxy_node_up")).to.deep.equal([]);
    expect(labelSets(samples, "lbhosting_agent_haproxy_node_connections")).to.deep.equal([]);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_scrape_failures_total")).to.equal(1);
    expect(
      sampleSum(samples, "lbhosting_agent_http_requests_total", { route: "/metrics", status: "200" }),
    ).to.be.at.least(1);
  });
});
