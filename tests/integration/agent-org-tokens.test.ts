/**
 * Organization tokens and registered load-balancer backends against real agents over HTTP: a
 * hosting node (127.0.44.1, orgs acme and bravo) and a config-only load balancer (127.0.44.2).
 * An admin issues acme a token on each; with it acme reaches its own org and route and nothing
 * else (403), and its route may name only nodes the admin registered, at their registered
 * addresses. A revoked token is refused at once; no secret is listed, logged or stored in clear.
 */
import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import { routeOrg } from "../../provider/balancer";
import { AgentClient, AgentError } from "../../provider/client";
import {
  apiErrorSchema,
  issuedOrgTokenSchema,
  orgStatusSchema,
  orgTokenListSchema,
  registeredBackendListSchema,
  revokedOrgTokenSchema,
} from "../../wire";
import { agentClient, call } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";

const website = (domain: string) => ({ kind: "website", domains: [domain], documentRoot: "." });

describe("organization tokens and registered backends (integration)", function () {
  let node: AgentProcess;
  let lb: AgentProcess;
  let acmeToken: string;
  let acmeTokenId: string;
  let acmeLbToken: string;

  const asAdmin = () => agentClient(node.url, node.token);
  const asAcme = () => agentClient(node.url, acmeToken);
  const lbAdmin = () => agentClient(lb.url, lb.token);
  const lbAcme = () => agentClient(lb.url, acmeLbToken);
  /** What the admin sees of bravo: must not move whatever acme's token tries. */
  const bravoState = async () => {
    const api = asAdmin();
    return [
      (await api.get("/v1/orgs/bravo")).json,
      (await api.get("/v1/orgs/bravo/users")).json,
      (await api.get("/v1/orgs/bravo/services")).json,
    ];
  };

  before(async function () {
    node = await startAgentProcess({
      host: "127.0.44.1",
      name: "web-a",
      extraArgs: ["--ftp-listen", "127.0.44.1:2121", "--ftp-passive-ports", "30800:30809"],
    });
    lb = await startAgentProcess({ host: "127.0.44.2", name: "lb", httpListen: "127.0.44.2:8080" });
    const admin = asAdmin();
    for (const org of ["acme", "bravo"]) {
      expect((await admin.put(`/v1/orgs/${org}`, {})).status).to.equal(201);
      expect((await admin.put(`/v1/orgs/${org}/users/alice`, { password: `${org}-password-1` })).status).to.equal(201);
      expect((await admin.put(`/v1/orgs/${org}/services/www`, website(`www.${org}.test`))).status).to.equal(201);
    }
  });

  after(async function () {
    const stops = await Promise.allSettled([node?.stop(), lb?.stop()]);
    node?.cleanup();
    lb?.cleanup();
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("issues a token (201, the secret shown only then) to the admin only", async function () {
    const issued = await asAdmin().post("/v1/orgs/acme/tokens", { label: "acme-stack" });
    expect(issued.status, issued.text).to.equal(201);
    const token = issuedOrgTokenSchema.parse(issued.json);
    expect(token).to.include({ org: "acme", label: "acme-stack" });
    expect(token.token).to.match(/^lbo_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    expect(token.token).to.include(token.id);
    acmeToken = token.token;
    acmeTokenId = token.id;

    const lbIssued = await lbAdmin().post("/v1/orgs/acme/tokens", {});
    expect(lbIssued.status, lbIssued.text).to.equal(201);
    acmeLbToken = issuedOrgTokenSchema.parse(lbIssued.json).token;

    const bad = await asAdmin().post("/v1/orgs/acme/tokens", { label: "x", scope: "all" });
    expect(bad.status).to.equal(400);
    expect(apiErrorSchema.parse(bad.json).error.details.map((detail) => detail.path)).to.deep.equal(["scope"]);
  });

  it("lists tokens without their secret", async function () {
    const listed = await asAdmin().get("/v1/orgs/acme/tokens");
    expect(listed.status).to.equal(200);
    const { tokens } = orgTokenListSchema.parse(listed.json);
    expect(tokens.map((token) => token.id)).to.deep.equal([acmeTokenId]);
    expect(listed.json).to.not.have.nested.property("tokens[0].token");
    expect(listed.text).to.not.include(acmeToken.slice(acmeTokenId.length + 5));
    expect(orgTokenListSchema.parse((await asAdmin().get("/v1/orgs/bravo/tokens")).json).tokens).to.deep.equal([]);
  });

  it("lets an org token use its own org: status, users, services, snapshot, changes", async function () {
    const api = asAcme();
    expect((await api.get("/v1/node")).status).to.equal(200);
    const orgs = await api.get("/v1/orgs");
    expect(orgs.status).to.equal(200);
    expect((orgs.json as { orgs: unknown[] }).orgs.map((org) => orgStatusSchema.parse(org).name)).to.deep.equal([
      "acme",
    ]);
    expect((await api.get("/v1/orgs/acme")).status).to.equal(200);
    expect((await api.get("/v1/orgs/acme/users")).status).to.equal(200);
    expect((await api.put("/v1/orgs/acme/users/bob", { password: "acme-password-2" })).status).to.equal(201);
    expect((await api.get("/v1/orgs/acme/services")).status).to.equal(200);
    expect((await api.put("/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "files" })).status).to.equal(201);
    expect((await api.get("/v1/orgs/acme/snapshot")).status).to.equal(200);
    expect((await api.get("/v1/orgs/acme/changes?since=0")).status).to.equal(200);
    // The admin sees every org, still.
    expect((await asAdmin().get("/v1/orgs")).json)
      .to.have.property("orgs")
      .with.length(2);
  });

  it("answers 403 for another org, the tokens routes, backends and metrics, naming nothing, and changes nothing", async function () {
    const before = await bravoState();
    const refused: Array<[string, string, unknown?]> = [
      ["GET", "/v1/orgs/bravo"],
      ["PUT", "/v1/orgs/bravo", { displayName: "Taken" }],
      ["DELETE", "/v1/orgs/bravo"],
      ["GET", "/v1/orgs/bravo/users"],
      ["GET", "/v1/orgs/bravo/users/alice"],
      ["PUT", "/v1/orgs/bravo/users/mallory", { password: "mallory-password" }],
      ["GET", "/v1/orgs/bravo/services"],
      ["PUT", "/v1/orgs/bravo/services/www", website("www.acme.test")],
      ["GET", "/v1/orgs/bravo/snapshot"],
      ["GET", "/v1/orgs/bravo/changes?since=0"],
      ["PUT", "/v1/orgs/bravo/replica", {}],
      ["POST", "/v1/orgs/bravo/replica/changes", {}],
      ["DELETE", "/v1/orgs/bravo/replica"],
      ["POST", "/v1/orgs/bravo/promote", {}],
      ["POST", "/v1/orgs/acme/tokens", {}],
      ["GET", "/v1/orgs/acme/tokens"],
      ["DELETE", `/v1/orgs/acme/tokens/${acmeTokenId}`],
      ["GET", "/v1/orgs/bravo/tokens"],
      ["GET", "/metrics"],
      ["GET", "/v1/backends"],
      ["PUT", "/v1/backends/web-a", { http: "127.0.44.1:8080" }],
      ["GET", "/v1/balancer"],
    ];
    for (const [method, url, body] of refused) {
      const answer = await call(node.url, method, url, { token: acmeToken, body });
      expect(answer.status, `${method} ${url}: ${answer.text}`).to.equal(403);
      const error = apiErrorSchema.parse(answer.json).error;
      expect(error.code).to.equal("forbidden");
      expect(answer.text).to.not.include("bravo").and.not.include(acmeToken);
    }
    expect(await bravoState()).to.deep.equal(before);
    const forbidden = node.stdout
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.msg === "request forbidden");
    expect(forbidden).to.have.length(refused.length);
    expect(forbidden[0]).to.include({ level: "warn", client: "127.0.0.1", route: "/v1/orgs/:org" });
  });

  it("lets an admin issue a token for an org the node does not hold yet, which then creates it", async function () {
    const issued = await asAdmin().post("/v1/orgs/newco/tokens", { label: "newco-stack" });
    expect(issued.status, issued.text).to.equal(201);
    const newco = agentClient(node.url, issuedOrgTokenSchema.parse(issued.json).token);
    expect((await newco.get("/v1/orgs")).json).to.deep.equal({ orgs: [] });
    expect((await newco.put("/v1/orgs/newco", {})).status).to.equal(201);
    expect((await newco.get("/v1/orgs/acme")).status).to.equal(403);
  });

  it("keeps no token in clear: not in the database files, not in the log", async function () {
    // lbo_<id>_<secret>: the secret is base64url, which may hold "_" itself (a piece of it could match by chance).
    const secrets = [acmeToken, acmeToken.slice(acmeToken.indexOf("_", "lbo_".length) + 1)];
    expect(secrets[1]).to.have.length(43);
    const files = fs
      .readdirSync(node.dataDir)
      .filter((name) => name.startsWith("agent.db"))
      .map((name) => path.join(node.dataDir, name));
    expect(files).to.include(path.join(node.dataDir, "agent.db"));
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      for (const secret of secrets) expect(bytes.includes(secret), `${file} holds the token`).to.equal(false);
    }
    for (const secret of secrets) expect(node.log()).to.not.include(secret);
  });

  it("revokes a token: refused (401) from the next request on; unknown ids are 404", async function () {
    expect((await asAcme().get("/v1/orgs/acme")).status).to.equal(200);
    const revoked = await asAdmin().delete(`/v1/orgs/acme/tokens/${acmeTokenId}`);
    expect(revoked.status, revoked.text).to.equal(200);
    expect(revokedOrgTokenSchema.parse(revoked.json)).to.deep.equal({ id: acmeTokenId, org: "acme", revoked: true });
    const refused = await asAcme().get("/v1/orgs/acme");
    expect(refused.status).to.equal(401);
    expect(refused.json).to.have.nested.property("error.code", "unauthorized");
    expect((await asAdmin().delete(`/v1/orgs/acme/tokens/${acmeTokenId}`)).status).to.equal(404);
    // Another org's path does not revoke it either.
    expect((await asAdmin().delete(`/v1/orgs/bravo/tokens/${acmeTokenId}`)).status).to.equal(404);
    const malformed = await asAdmin().delete("/v1/orgs/acme/tokens/NOT-AN-ID");
    expect(malformed.status).to.equal(400);
    expect(apiErrorSchema.parse(malformed.json).error.details.map((detail) => detail.path)).to.deep.equal(["id"]);
    expect(orgTokenListSchema.parse((await asAdmin().get("/v1/orgs/acme/tokens")).json).tokens).to.deep.equal([]);
  });

  describe("on the load balancer", function () {
    const webA = { http: "127.0.44.1:8080" };
    const routeOf = (...backends: Array<Record<string, unknown>>) => ({ domains: ["www.acme.test"], backends });

    it("registers nodes (admin only), refusing link-local, unspecified and its own API address", async function () {
      const admin = lbAdmin();
      const created = await admin.put("/v1/backends/web-a", webA);
      expect(created.status, created.text).to.equal(201);
      expect(created.json).to.deep.equal({ name: "web-a", ...webA });
      expect((await admin.put("/v1/backends/web-a", webA)).status).to.equal(200);
      expect(registeredBackendListSchema.parse((await admin.get("/v1/backends")).json).backends).to.deep.equal([
        { name: "web-a", ...webA },
      ]);
      const ownApi = new URL(lb.url).host;
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ http: "169.254.169.254:80" }, "http"],
        [{ ftp: "169.254.1.1:21", passivePorts: [30900, 30909] }, "ftp"],
        [{ http: "0.0.0.0:80" }, "http"],
        [{ http: ownApi }, "http"],
      ];
      for (const [body, field] of cases) {
        const answer = await admin.put("/v1/backends/evil", body);
        expect(answer.status, `${JSON.stringify(body)}: ${answer.text}`).to.equal(400);
        expect(apiErrorSchema.parse(answer.json).error.details.map((detail) => detail.path)).to.deep.equal([field]);
      }
      const bad = await admin.put("/v1/backends/evil%20node", webA);
      expect(bad.status).to.equal(400);
      expect(apiErrorSchema.parse(bad.json).error.details.map((detail) => detail.path)).to.deep.equal(["name"]);
      expect(registeredBackendListSchema.parse((await admin.get("/v1/backends")).json).backends).to.have.length(1);
      expect((await lbAcme().put("/v1/backends/evil", { http: "127.0.44.9:80" })).status).to.equal(403);
      expect((await lbAcme().delete("/v1/backends/web-a")).status).to.equal(403);
    });

    it("lets an org token put its own route with registered nodes (201), and nothing else", async function () {
      const api = lbAcme();
      const put = await api.put("/v1/balancer/acme", routeOf({ name: "web-a", ...webA, weight: 3 }));
      expect(put.status, put.text).to.equal(201);
      expect((await api.get("/v1/balancer/acme")).status).to.equal(200);
      // Not 403: the config-only balancer has no HAProxy to ask.
      expect((await api.get("/v1/balancer/acme/status")).json).to.have.nested.property("error.code", "no_haproxy");
      for (const [method, url] of [
        ["PUT", "/v1/balancer/bravo"],
        ["GET", "/v1/balancer/bravo"],
        ["DELETE", "/v1/balancer/bravo"],
        ["GET", "/v1/balancer/bravo/status"],
        ["GET", "/v1/balancer"],
        ["GET", "/v1/backends"],
      ]) {
        const answer = await call(lb.url, method, url, {
          token: acmeLbToken,
          body: routeOf({ name: "web-a", ...webA }),
        });
        expect(answer.status, `${method} ${url}`).to.equal(403);
      }
      expect((await lbAdmin().get("/v1/balancer/bravo")).status).to.equal(404);
    });

    it("refuses a route naming an unregistered node or another address (422 naming the backend only)", async function () {
      const before = fs.readFileSync(path.join(lb.dataDir, "haproxy", "lbhosting.cfg"), "utf8");
      const cases: Array<[ReturnType<typeof routeOf>, string, string]> = [
        [routeOf({ name: "web-a", http: "169.254.169.254:80" }), "backends.0", "web-a"],
        [routeOf({ name: "metadata", http: "169.254.169.254:80" }), "backends.0", "metadata"],
        [routeOf({ name: "web-a", ...webA }, { name: "web-z", http: "127.0.44.9:80" }), "backends.1", "web-z"],
        [routeOf({ name: "web-a", http: new URL(lb.url).host }), "backends.0", "web-a"],
      ];
      for (const [body, field, name] of cases) {
        const answer = await lbAcme().put("/v1/balancer/acme", body);
        expect(answer.status, answer.text).to.equal(422);
        const error = apiErrorSchema.parse(answer.json).error;
        expect(error.code).to.equal("backend_not_registered");
        expect(error.details.map((detail) => detail.path)).to.deep.equal([field]);
        expect(error.message)
          .to.include(`"${name}"`)
          .and.match(/administrator must register/);
        expect(error.message).to.not.include("127.0.44.1:8080");
        // The admin token is held to the same rule.
        expect((await lbAdmin().put("/v1/balancer/acme", body)).status).to.equal(422);
      }
      expect(fs.readFileSync(path.join(lb.dataDir, "haproxy", "lbhosting.cfg"), "utf8")).to.equal(before);
      expect((await lbAcme().get("/v1/balancer/acme")).json).to.deep.include({
        backends: [{ name: "web-a", ...webA, weight: 3 }],
      });
    });

    it("keeps a registered node while a route uses it (409), forgets it after", async function () {
      const inUse = await lbAdmin().delete("/v1/backends/web-a");
      expect(inUse.status, inUse.text).to.equal(409);
      expect(inUse.json).to.have.nested.property("error.code", "backend_in_use");
      expect((await lbAcme().delete("/v1/balancer/acme")).status).to.equal(200);
      const deleted = await lbAdmin().delete("/v1/backends/web-a");
      expect(deleted.status, deleted.text).to.equal(200);
      expect(deleted.json).to.deep.equal({ name: "web-a", deleted: true });
      expect((await lbAdmin().delete("/v1/backends/web-a")).status).to.equal(404);
    });

    it("the provider registers the nodes it routes to with the admin token; with an org token the 422 says who must", async function () {
      const org = { name: "acme", primary: node.url, loadBalancer: lb.url };
      const ftp = { ftp: "127.0.44.2:2121" };
      const nodeToken = issuedOrgTokenSchema.parse((await asAdmin().post("/v1/orgs/acme/tokens", {})).json).token;
      // The tenant's stack: one org token per endpoint.
      const tenant = (endpoint: string) => new AgentClient(endpoint, endpoint === lb.url ? acmeLbToken : nodeToken);
      let failure: unknown;
      await routeOrg(org, [node.url], tenant, ftp).catch((error: unknown) => (failure = error));
      expect(failure).to.be.instanceOf(AgentError);
      expect((failure as AgentError).code).to.equal("backend_not_registered");
      expect((failure as AgentError).message)
        .to.include('"web-a"')
        .and.match(/administrator must register/);
      expect((await lbAdmin().get("/v1/balancer/acme")).status).to.equal(404);

      // The administrator's stack registers the node (routeOrg does so with the admin token) ...
      const admin = (endpoint: string) => new AgentClient(endpoint, endpoint === lb.url ? lb.token : node.token);
      await routeOrg(org, [node.url], admin, ftp);
      expect(registeredBackendListSchema.parse((await lbAdmin().get("/v1/backends")).json).backends).to.deep.equal([
        { name: "web-a", ftp: "127.0.44.1:2121", passivePorts: [30800, 30809] },
      ]);
      // ... and from then on the tenant's stack routes its org itself.
      await routeOrg(org, [node.url], tenant, { ftp: "127.0.44.2:2122" });
      expect((await lbAdmin().get("/v1/balancer/acme")).json).to.deep.include({ ftp: { listen: "127.0.44.2:2122" } });
    });
  });
});
