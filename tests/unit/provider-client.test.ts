/**
 * The agent client against an in-process HTTP server on an ephemeral loopback port: answers are
 * checked against the wire contract, only idempotent requests are retried, a 404 becomes
 * undefined in one place, and an answer timeout is named and remembered for the endpoint.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import {
  AgentClient,
  AgentError,
  AgentProtocolError,
  AgentUnreachableError,
  unlessNotFound,
} from "../../provider/client";
import { EndpointHealth } from "../../provider/endpoint-health";
import { digestAt, orgStatus } from "../support/fake-nodes";

type Handler = (request: http.IncomingMessage) => { status: number; body: unknown };

describe("agent client", function () {
  let server: http.Server;
  let url: string;
  let handler: Handler;
  const seen: string[] = [];

  before(async function () {
    server = http.createServer((request, response) => {
      request.resume();
      request.on("end", () => {
        seen.push(`${request.method} ${request.url}`);
        const { status, body } = handler(request);
        response.writeHead(status, { "content-type": "application/json" });
        response.end(typeof body === "string" ? body : JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));
  beforeEach(() => (seen.length = 0));

  const client = (retries = 2) => new AgentClient(url, "token", { timeoutMs: 2000, retries });
  const failure = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (error) {
      return error;
    }
    throw new Error("the call succeeded");
  };

  it("gives a valid answer as the schema parses it (an older agent's missing epoch is 0)", async function () {
    const withoutEpoch: Record<string, unknown> = { ...orgStatus({ role: "primary" }), extra: "ignored" };
    delete withoutEpoch.epoch;
    handler = () => ({ status: 200, body: withoutEpoch });
    const status = await client().getOrg("acme");
    expect(status.epoch).to.equal(0);
    expect(status).to.not.have.property("extra");
  });

  it("turns a malformed answer into an AgentProtocolError naming the request and the field", async function () {
    handler = () => ({ status: 200, body: { ...orgStatus(), generation: "seven" } });
    const error = await failure(client().getOrg("acme"));
    expect(error).to.be.instanceOf(AgentProtocolError);
    expect(error).to.include({ request: "GET /v1/orgs/acme", field: "generation" });
    handler = () => ({ status: 200, body: "not json" });
    expect(await failure(client().nodeInfo()))
      .to.be.instanceOf(AgentProtocolError)
      .with.property("field", "");
  });

  it("gives an error answer as an AgentError with its status, code and reason", async function () {
    handler = () => ({ status: 409, body: { error: { code: "stale_epoch", message: "no", details: [] } } });
    const error = await failure(client().getOrg("acme"));
    expect(error).to.be.instanceOf(AgentError).and.include({ status: 409, code: "stale_epoch" });
    expect((error as AgentError).reason).to.equal("no (HTTP 409 stale_epoch)");
    expect((error as AgentError).message).to.equal(`${url}: no (HTTP 409 stale_epoch)`);
  });

  it("retries a GET on 503 and gets there; never retries a delta POST", async function () {
    let attempts = 0;
    handler = () =>
      ++attempts < 3
        ? { status: 503, body: { error: { code: "agent_stopping", message: "stopping", details: [] } } }
        : { status: 200, body: orgStatus() };
    expect((await client().getOrg("acme")).name).to.equal("acme");
    expect(seen).to.have.length(3);

    seen.length = 0;
    handler = () => ({ status: 503, body: { error: { code: "agent_stopping", message: "stopping", details: [] } } });
    const body = { baseGeneration: 0, changes: [], digest: digestAt(0), epoch: 0 };
    const error = await failure(client().applyReplicaChanges("acme", body));
    expect(error).to.be.instanceOf(AgentError).and.include({ status: 503, code: "agent_stopping" });
    expect(seen).to.deep.equal(["POST /v1/orgs/acme/replica/changes"]);
  });

  it("retries a promotion (the agent answers a repeated one as the first)", async function () {
    let attempts = 0;
    handler = () =>
      ++attempts < 2 ? { status: 503, body: {} } : { status: 200, body: orgStatus({ role: "primary", epoch: 1 }) };
    const promoted = await client().promote("acme", { epoch: 1, generation: 0, digest: digestAt(0) });
    expect(promoted.epoch).to.equal(1);
    expect(seen).to.deep.equal(["POST /v1/orgs/acme/promote", "POST /v1/orgs/acme/promote"]);
  });

  it("stops after its retries, and with none makes one attempt", async function () {
    handler = () => ({ status: 502, body: {} });
    expect(await failure(client(0).getOrg("acme")))
      .to.be.instanceOf(AgentError)
      .with.property("status", 502);
    expect(seen).to.have.length(1);
  });

  it("after its retries, gives the agent's own error code and reason, in three attempts in all", async function () {
    const unreachable = { code: "haproxy_unreachable", message: "HAProxy's master CLI does not answer", details: [] };
    handler = () => ({ status: 502, body: { error: unreachable } });
    const error = await failure(client(2).getOrg("acme"));
    expect(error).to.be.instanceOf(AgentError).and.include({ status: 502, code: "haproxy_unreachable" });
    expect((error as AgentError).reason).to.equal(
      "HAProxy's master CLI does not answer (HTTP 502 haproxy_unreachable)",
    );
    expect(seen).to.have.length(3);
  });

  it("turns a 404 into undefined in unlessNotFound, and nothing else", async function () {
    handler = () => ({ status: 404, body: { error: { code: "not_found", message: "none", details: [] } } });
    expect(await unlessNotFound(client().getOrg("acme"))).to.equal(undefined);
    handler = () => ({ status: 401, body: { error: { code: "unauthorized", message: "no", details: [] } } });
    expect(await failure(unlessNotFound(client().getOrg("acme")))).to.be.instanceOf(AgentError);
  });

  it("says an answer timed out, after how long and how many attempts, and remembers the endpoint", async function () {
    const sockets = new Set<import("node:net").Socket>();
    let requests = 0;
    const silent = http.createServer(() => void requests++);
    silent.on("connection", (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      let now = 0;
      const health = new EndpointHealth({ now: () => now, probeBackoffMs: 15_000 });
      const silentClient = new AgentClient(endpoint, "t", { timeoutMs: 300, health });
      const error = await failure(silentClient.getOrg("acme"));
      expect(error).to.be.instanceOf(AgentUnreachableError);
      expect((error as Error).message).to.equal(`${endpoint} is unreachable: no answer within 300 ms (2 attempts)`);
      expect(requests).to.equal(2);

      // The other calls, by any client sharing the memory, fail at once with one message.
      const again = new AgentClient(endpoint, "t", { timeoutMs: 300, health });
      const fast = await Promise.all([silentClient.getUser("acme", "ann"), again.listUsers("acme")].map(failure));
      for (const each of fast) {
        expect((each as AgentUnreachableError).reason).to.match(/^no answer within 300 ms \(2 attempts\), first at /);
      }
      expect(requests).to.equal(2);

      // After the back-off one probe goes out; an answer makes the endpoint usable again.
      now += 15_000;
      silent.removeAllListeners("request");
      silent.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => {
        requests++;
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify(orgStatus()));
      });
      expect((await again.getOrg("acme")).name).to.equal("acme");
      expect((await silentClient.getOrg("acme")).name).to.equal("acme");
      expect(requests).to.equal(4);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("does not remember a refused connection (it is fast anyway)", async function () {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const health = new EndpointHealth();
    await failure(new AgentClient(endpoint, "t", { retries: 0, health }).health());
    expect(health.admit(endpoint)).to.deep.equal({ go: true });
  });

  it("calls a closed port unreachable, with the reason apart from the endpoint", async function () {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await failure(new AgentClient(`http://127.0.0.1:${port}`, "t", { retries: 0 }).health());
    expect(error).to.be.instanceOf(AgentUnreachableError).with.property("reason", "ECONNREFUSED");
  });
});
