/**
 * The agent's metrics room in-process: what a route pattern means, HAProxy's rows folded per node,
 * the step reports renderers send, and a registry's exposition — one registry per agent, what the
 * node holds read once per scrape, and a scrape that HAProxy does not answer still served. A real
 * agent scraped after real traffic is tests/integration/agent-metrics.test.ts.
 */
import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import type { NodeView } from "../../agent/src/balancer/balancer";
import { AgentMetrics } from "../../agent/src/metrics/agent-metrics";
import { nodeSeries } from "../../agent/src/metrics/haproxy";
import { bodyBytes, outcomeOf, requestMeaning } from "../../agent/src/metrics/requests";
import { timedStep } from "../../agent/src/render/steps";
import { labelSets, parseExposition, sampleSum } from "../support/prometheus";

const held = (users: number) => ({
  primary: { orgs: 2, users, services: 3 },
  secondary: { orgs: 1, users: 4, services: 1 },
});

const sources = (overrides: Partial<Parameters<AgentMetrics["watch"]>[0]> = {}) => ({
  held: () => held(10),
  passwords: { pending: 0, done: { hashed: 0, verified: 0 } },
  balancer: { nodeViews: async (): Promise<NodeView[] | undefined> => undefined },
  ...overrides,
});

async function scrape(metrics: AgentMetrics) {
  return parseExposition((await metrics.exposition()).text);
}

describe("agent metrics: what a request means", () => {
  it("names writes by resource and sync imports by kind, from the method and route pattern only", () => {
    expect(requestMeaning("PUT", "/v1/orgs/:org/users/:username")).to.deep.equal({ write: "user" });
    expect(requestMeaning("DELETE", "/v1/orgs/:org/services/:service")).to.deep.equal({ write: "service" });
    expect(requestMeaning("PUT", "/v1/orgs/:org")).to.deep.equal({ write: "org" });
    expect(requestMeaning("PUT", "/v1/balancer/:org")).to.deep.equal({ write: "route" });
    expect(requestMeaning("PUT", "/v1/orgs/:org/replica")).to.deep.equal({ import: "snapshot" });
    expect(requestMeaning("POST", "/v1/orgs/:org/replica/changes")).to.deep.equal({ import: "delta" });
    expect(requestMeaning("GET", "/v1/orgs/:org/users/:username")).to.deep.equal({});
    expect(requestMeaning("GET", "(no route)")).to.deep.equal({});
  });

  it("tells ok, rejected (4xx) and failed (5xx) apart, and reads a body's size from its Content-Length", () => {
    expect([200, 201, 304, 400, 409, 500, 503].map(outcomeOf)).to.deep.equal([
      "ok",
      "ok",
      "ok",
      "rejected",
      "rejected",
      "failed",
      "failed",
    ]);
    expect([bodyBytes("4096"), bodyBytes(undefined), bodyBytes("-1"), bodyBytes("x")]).to.deep.equal([4096, 0, 0, 0]);
  });
});

describe("agent metrics: HAProxy's nodes", () => {
  it("keeps one series per node and kind: up only when up in every org's backend, connections summed", () => {
    const views: NodeView[] = [
      { kind: "web", node: "web-a", healthy: true, active: 2 },
      { kind: "web", node: "web-a", healthy: false, active: 1 }, // another org's backend
      { kind: "web", node: "web-b", healthy: true, active: 0 },
      { kind: "ftp", node: "web-a", healthy: true, active: 5 },
    ];
    expect(nodeSeries(views)).to.deep.equal([
      { kind: "web", node: "web-a", up: 0, connections: 3 },
      { kind: "web", node: "web-b", up: 1, connections: 0 },
      { kind: "ftp", node: "web-a", up: 1, connections: 5 },
    ]);
  });
});

describe("agent metrics: step reports", () => {
  it("reports a step's duration, and a failure when it throws or its result says so", async () => {
    const reports: Array<[string, boolean]> = [];
    const report = (step: string, seconds: number, ok: boolean) => {
      expect(seconds).to.be.at.least(0);
      reports.push([step, ok]);
    };
    await timedStep(
      report,
      "validate",
      async () => ({ ok: true }),
      (result) => result.ok,
    );
    await timedStep(
      report,
      "reload",
      async () => ({ ok: false }),
      (result) => result.ok,
    );
    const thrown = await timedStep(report, "build", () => Promise.reject(new Error("disk full"))).catch((e) => e);
    expect((thrown as Error).message).to.equal("disk full");
    expect(reports).to.deep.equal([
      ["validate", true],
      ["reload", false],
      ["build", false],
    ]);
  });
});

describe("agent metrics: the registry", () => {
  it("counts requests by route pattern, writes by resource, sync imports and their bytes, commits and steps", async () => {
    const metrics = new AgentMetrics();
    metrics.watch(sources());
    const request = { method: "PUT", seconds: 0.02, contentLength: undefined };
    metrics.request({ ...request, route: "/v1/orgs/:org/users/:username", status: 201 });
    metrics.request({ ...request, route: "/v1/orgs/:org/users/:username", status: 409 });
    metrics.request({ ...request, route: "/v1/orgs/:org/replica", status: 200, contentLength: "1500" });
    metrics.request({
      ...request,
      method: "POST",
      route: "/v1/orgs/:org/replica/changes",
      status: 200,
      contentLength: "300",
    });
    metrics.writeBatch("plain", 7);
    metrics.serverSteps("nginx")("validate", 0.1, false);
    const samples = await scrape(metrics);
    const user = { route: "/v1/orgs/:org/users/:username" };
    expect(sampleSum(samples, "lbhosting_agent_http_requests_total", { ...user, status: "201" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_http_requests_total", { ...user, status: "409" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_http_request_duration_seconds_count", user)).to.equal(2);
    expect(
      sampleSum(samples, "lbhosting_agent_write_duration_seconds_count", { resource: "user", outcome: "ok" }),
    ).to.equal(1);
    expect(
      sampleSum(samples, "lbhosting_agent_write_duration_seconds_count", { resource: "user", outcome: "rejected" }),
    ).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_sync_imports_total", { kind: "snapshot", outcome: "ok" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_sync_imports_total", { kind: "delta", outcome: "ok" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_sync_import_received_bytes_total", { kind: "snapshot" })).to.equal(1500);
    expect(sampleSum(samples, "lbhosting_agent_sync_import_received_bytes_total", { kind: "delta" })).to.equal(300);
    expect(sampleSum(samples, "lbhosting_agent_write_batch_size_sum", { queue: "plain" })).to.equal(7);
    const nginx = { server: "nginx", step: "validate" };
    expect(sampleSum(samples, "lbhosting_agent_server_step_duration_seconds_count", nginx)).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_server_step_failures_total", nginx)).to.equal(1);
    expect(sampleSum(samples, "process_cpu_user_seconds_total"), "default process metrics").to.be.a("number");
  });

  it("keeps each agent's metrics in its own registry", async () => {
    const [one, two] = [new AgentMetrics(), new AgentMetrics()];
    one.request({ method: "GET", route: "/v1/orgs", status: 200, seconds: 0.001, contentLength: undefined });
    expect(sampleSum(await scrape(one), "lbhosting_agent_http_requests_total")).to.equal(1);
    expect(sampleSum(await scrape(two), "lbhosting_agent_http_requests_total")).to.equal(undefined);
  });

  it("reads what the node holds once per scrape, by role, and the password queue as it is then", async () => {
    const metrics = new AgentMetrics();
    let reads = 0;
    let users = 10;
    const passwords = { pending: 3, done: { hashed: 5, verified: 2 } };
    metrics.watch(sources({ held: () => (reads++, held(users)), passwords }));
    let samples = await scrape(metrics);
    expect(reads).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_orgs", { role: "primary" })).to.equal(2);
    expect(sampleSum(samples, "lbhosting_agent_users", { role: "primary" })).to.equal(10);
    expect(sampleSum(samples, "lbhosting_agent_users", { role: "secondary" })).to.equal(4);
    expect(sampleSum(samples, "lbhosting_agent_services", { role: "primary" })).to.equal(3);
    expect(sampleSum(samples, "lbhosting_agent_password_queue_depth")).to.equal(3);
    expect(sampleSum(samples, "lbhosting_agent_password_hashes_total", { operation: "hash" })).to.equal(5);
    users = 11;
    passwords.done = { hashed: 6, verified: 2 };
    samples = await scrape(metrics);
    expect(reads).to.equal(2);
    expect(sampleSum(samples, "lbhosting_agent_users", { role: "primary" })).to.equal(11);
    expect(sampleSum(samples, "lbhosting_agent_password_hashes_total", { operation: "hash" })).to.equal(6);
  });

  it("serves a scrape HAProxy does not answer: its node series are left out and the failure is counted", async () => {
    const metrics = new AgentMetrics();
    let answer: () => Promise<NodeView[] | undefined> = async () => [
      { kind: "web", node: "web-a", healthy: true, active: 4 },
      { kind: "ftp", node: "web-a", healthy: false, active: 0 },
    ];
    let asked = 0;
    metrics.watch(sources({ balancer: { nodeViews: () => (asked++, answer()) } }));
    let samples = await scrape(metrics);
    expect(asked, "one question to HAProxy per scrape").to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_node_up", { kind: "web", node: "web-a" })).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_node_up", { kind: "ftp", node: "web-a" })).to.equal(0);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_node_connections", { kind: "web" })).to.equal(4);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_scrape_failures_total")).to.equal(0);

    answer = () => Promise.reject(new Error("connect ENOENT /run/haproxy-master.sock"));
    samples = await scrape(metrics);
    expect(labelSets(samples, "lbhosting_agent_haproxy_node_up")).to.deep.equal([]);
    expect(labelSets(samples, "lbhosting_agent_haproxy_node_connections")).to.deep.equal([]);
    expect(sampleSum(samples, "lbhosting_agent_haproxy_scrape_failures_total")).to.equal(1);
    expect(sampleSum(samples, "lbhosting_agent_orgs", { role: "primary" }), "the rest is served").to.equal(2);
  });
});

describe("agent metrics: agent/README.md", () => {
  it("documents every metric the agent serves", async () => {
    const readme = fs.readFileSync(path.join(__dirname, "..", "..", "..", "agent", "README.md"), "utf8");
    const metrics = new AgentMetrics();
    metrics.watch(sources());
    const { text } = await metrics.exposition();
    const names = [...text.matchAll(/^# TYPE (lbhosting_agent_\w+)/gm)].map((match) => match[1]);
    expect(names.length).to.be.greaterThan(10);
    expect(names.filter((name) => !readme.includes(`\`${name}\``))).to.deep.equal([]);
  });
});
