/**
 * Every endpoint except health refuses requests without the right bearer token (127.0.1.12),
 * and a refused request changes nothing. A client that keeps failing is limited (127.0.1.18).
 */
import { expect } from "chai";
import { agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";

const ENDPOINTS: Array<[string, string, unknown?]> = [
  ["GET", "/v1/orgs"],
  ["PUT", "/v1/orgs/acme", { displayName: "Changed" }],
  ["GET", "/v1/orgs/acme"],
  ["DELETE", "/v1/orgs/acme"],
  ["GET", "/v1/orgs/acme/users"],
  ["PUT", "/v1/orgs/acme/users/alice", { password: "new-password-1" }],
  ["GET", "/v1/orgs/acme/users/alice"],
  ["DELETE", "/v1/orgs/acme/users/alice"],
  ["GET", "/v1/orgs/acme/services"],
  ["PUT", "/v1/orgs/acme/services/www", { kind: "ftp", rootPath: "." }],
  ["GET", "/v1/orgs/acme/services/www"],
  ["DELETE", "/v1/orgs/acme/services/www"],
  ["GET", "/v1/orgs/acme/snapshot"],
  ["GET", "/v1/orgs/acme/changes?since=0"],
  ["PUT", "/v1/orgs/acme/replica", {}],
  ["POST", "/v1/orgs/acme/replica/changes", {}],
  ["DELETE", "/v1/orgs/acme/replica"],
  ["GET", "/v1/node"],
  ["GET", "/v1/balancer"],
  ["PUT", "/v1/balancer/acme", { domains: ["a.test"], backends: ["127.0.1.12:8080"] }],
  ["GET", "/v1/balancer/acme"],
  ["DELETE", "/v1/balancer/acme"],
  ["GET", "/v1/no-such-endpoint"],
  ["PUT", "/v1/orgs/acme?force=true", { displayName: "Forced" }],
];

describe("agent authentication (integration)", function () {
  let agent: AgentProcess;

  before(async function () {
    // Every credential below on every endpoint: far more failures than the default limit allows.
    agent = await startAgentProcess({
      host: "127.0.1.12",
      tokenVia: "file",
      extraArgs: ["--auth-failures-per-minute", "1000"],
    });
    const api = agentClient(agent.url, agent.token);
    expect((await api.put("/v1/orgs/acme", { displayName: "Acme" })).status).to.equal(201);
    expect((await api.put("/v1/orgs/acme/users/alice", { password: "first-password" })).status).to.equal(201);
    expect(
      (await api.put("/v1/orgs/acme/services/www", { kind: "website", domains: ["a.test"], documentRoot: "." })).status,
    ).to.equal(201);
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
  });

  const credentials: Array<[string, (token: string) => Record<string, string>]> = [
    ["no Authorization header", () => ({})],
    ["a wrong token", () => ({ authorization: "Bearer wrong-token-wrong-token" })],
    ["the token minus its last character", (token) => ({ authorization: `Bearer ${token.slice(0, -1)}` })],
    ["the token without the Bearer scheme", (token) => ({ authorization: token })],
    ["the token with Basic", (token) => ({ authorization: `Basic ${token}` })],
    ["the token twice", (token) => ({ authorization: `Bearer ${token} ${token}` })],
    ["an empty Bearer", () => ({ authorization: "Bearer " })],
  ];

  for (const [what, headersFor] of credentials) {
    it(`answers 401 on every endpoint for ${what}`, async function () {
      for (const [method, path, body] of ENDPOINTS) {
        const answer = await call(agent.url, method, path, { token: null, headers: headersFor(agent.token), body });
        expect(answer.status, `${method} ${path}`).to.equal(401);
        expect(answer.json).to.have.nested.property("error.code", "unauthorized");
        expect(answer.headers["www-authenticate"]).to.match(/^Bearer/);
      }
    });
  }

  it("still holds exactly what was written with the token", async function () {
    const api = agentClient(agent.url, agent.token);
    const org = await api.get("/v1/orgs/acme");
    expect(org.json).to.include({ displayName: "Acme", generation: 3 });
    expect((await api.get("/v1/orgs/acme/users/alice")).status).to.equal(200);
  });

  it("accepts the token on every endpoint (nothing answers 401 with it)", async function () {
    for (const [method, path, body] of ENDPOINTS) {
      const answer = await call(agent.url, method, path, { token: agent.token, body });
      expect(answer.status, `${method} ${path}`).to.not.equal(401);
    }
  });
});

describe("agent authentication failures, limited per client address (integration)", function () {
  let agent: AgentProcess;
  const LIMIT = 30; // the default

  before(async function () {
    agent = await startAgentProcess({ host: "127.0.1.18" });
  });

  after(async function () {
    await agent?.stop();
    agent?.cleanup();
  });

  it("answers 429 after a burst of wrong tokens, logs each failure at warn with the address, and keeps serving the right token", async function () {
    const wrong = "Bearer guess-guess-guess-guess-guess-0001";
    const statuses: number[] = [];
    for (let attempt = 0; attempt < LIMIT + 10; attempt++) {
      const answer = await call(agent.url, "GET", "/v1/orgs", { token: null, headers: { authorization: wrong } });
      statuses.push(answer.status);
    }
    expect(statuses.slice(0, LIMIT)).to.deep.equal(Array(LIMIT).fill(401));
    expect(statuses.slice(LIMIT)).to.deep.equal(Array(10).fill(429));
    const limited = await call(agent.url, "GET", "/v1/orgs", { token: null, headers: { authorization: wrong } });
    expect(limited.json).to.have.nested.property("error.code", "too_many_failures");
    expect(Number(limited.headers["retry-after"])).to.be.within(1, 60);

    // The right token from the same address is not counted and not limited.
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await call(agent.url, "GET", "/v1/orgs", { token: agent.token })).status).to.equal(200);
    }
    // Health needs no token and is never limited.
    expect((await call(agent.url, "GET", "/v1/health", { token: null })).status).to.equal(200);

    const warnings = agent.stdout
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.msg === "authentication failed");
    expect(warnings).to.have.length(LIMIT);
    expect(warnings[0]).to.include({ level: "warn", client: "127.0.0.1", route: "/v1/orgs" });
    expect(agent.log()).to.not.include("guess-guess").and.not.include(agent.token);
  });
});
