/**
 * A hostile tenant against live agents on loopback (127.0.70.x), one case per row of issue 22's
 * table: what the attempt must find is a refusal, nothing served and nothing written.
 */
import fs from "node:fs";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { Credentials } from "../../provider/credentials";
import { routeOrg } from "../../provider/balancer";
import { syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";
import { startHoneypot, type Honeypot } from "../support/honeypot";
import { agentClient, call, type HttpAnswer } from "../support/agent-http";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { startBalancedNodes, type HostingNode } from "../support/hosting-node";
import { getSite } from "../support/http-get";
import { nasFolder } from "../support/nas";
import { nginxBinaryOrSkip } from "../support/nginx";
import { pureFtpdOrSkip } from "../support/pureftpd";

const TOKEN = "tenancy-test-admin-token-0123456789abcdef";

describe("tenancy: a hostile tenant finds nothing of another org", function () {
  this.timeout(120_000);

  describe("on a shared node with nginx, pure-ftpd and a load balancer (HAProxy)", function () {
    let web1: HostingNode;
    let web2: HostingNode;
    let lb: HostingNode;
    let content: string;
    const PAGES = { acme: "Acme's page\n", bravo: "Bravo's page\n" };
    const admin = (node: HostingNode) => agentClient(node.url, TOKEN);
    /** The org's token on a node, issued by an admin (row 8). */
    const orgToken = async (node: HostingNode, org: string): Promise<string> =>
      ((await admin(node).post(`/v1/orgs/${org}/tokens`, { label: `tenant ${org}` })).json as { token: string }).token;
    const site = (node: HostingNode, host: string, path = "/") => getSite(`${node.nginx!.url}${path}`, host);
    const viaBalancer = (host: string, path = "/") => getSite(`${lb.haproxy!.url}${path}`, host);
    const errorOf = (answer: HttpAnswer) => (answer.json as { error: { code: string; message: string } }).error;

    before(async function () {
      const nginxBin = nginxBinaryOrSkip(this);
      const haproxyBin = haproxyBinaryOrSkip(this);
      const ftp = pureFtpdOrSkip(this);
      content = nasFolder("tenancy", {
        "acme/www/index.html": PAGES.acme,
        "acme/www/.env": "DB_PASSWORD=acme-secret\n",
        "acme/www/.git/config": "[remote]\n",
        "acme/www/.well-known/security.txt": "Contact: mailto:security@acme.test\n",
        "bravo/www/index.html": PAGES.bravo,
      });
      ({
        primary: web1,
        secondary: web2,
        balancer: lb,
      } = await startBalancedNodes({
        hosts: ["127.0.70.11", "127.0.70.12", "127.0.70.13"],
        names: ["web1", "web2", "lb1"],
        token: TOKEN,
        contentRoot: content,
        nginxBin,
        haproxyBin,
        ftp,
      }));
      const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 10_000, retries: 0 });
      for (const org of ["acme", "bravo"]) {
        const primary = clientFor(web1.url);
        await primary.putOrg(org, { loadBalanced: true, secondaries: [web2.url], managedBy: `stack ${org}` });
        await primary.putService(org, "www", { kind: "website", domains: [`www.${org}.test`], documentRoot: "www" });
        expect((await syncOrg(primary, org, clientFor)).inSync).to.equal(true);
        await routeOrg({ name: org, primary: web1.url, loadBalancer: lb.url }, [web1.url, web2.url], clientFor);
      }
      for (const org of ["acme", "bravo"])
        expect((await viaBalancer(`www.${org}.test`)).body).to.equal(PAGES[org as "acme"]);
    });

    after(async () => {
      for (const node of [lb, web2, web1]) await node?.stop();
      if (content) fs.rmSync(content, { recursive: true, force: true });
    });

    it("row 1: another org's website for bravo's domain is 409 domain_taken (naming the domain, not bravo), and bravo keeps serving it", async () => {
      const hijack = (domain: string) =>
        admin(web1).put("/v1/orgs/acme/services/hijack", { kind: "website", domains: [domain], documentRoot: "www" });
      const answer = await hijack("www.bravo.test");
      expect(answer.status, answer.text).to.equal(409);
      expect(errorOf(answer).code).to.equal("domain_taken");
      expect(errorOf(answer).message).to.include("www.bravo.test").and.not.include('"bravo"');
      // Another spelling of the same name is no way around it: only the lowercase form without a trailing dot is a domain.
      for (const spelling of ["WWW.bravo.test", "www.bravo.test."])
        expect((await hijack(spelling)).status).to.equal(400);
      expect((await admin(web1).get("/v1/orgs/acme/services/hijack")).status).to.equal(404);
      for (const response of [await site(web1, "www.bravo.test"), await viaBalancer("www.bravo.test")]) {
        expect(response.body).to.equal(PAGES.bravo);
      }
    });

    it("row 5: a crypt hash with a billion rounds is 400 naming passwordHash, without echoing it", async () => {
      const hash = `$6$rounds=999999999$saltsalt$${"a".repeat(86)}`;
      const answer = await admin(web1).put("/v1/orgs/acme/users/slow", { passwordHash: hash });
      expect(answer.status).to.equal(400);
      expect(answer.text).to.include("passwordHash").and.not.include("saltsalt");
      expect((await admin(web1).get("/v1/orgs/acme/users/slow")).status).to.equal(404);
    });

    it("row 7: a burst of wrong tokens gets 429 while the right token keeps working; a short token cannot start an agent", async () => {
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 40; attempt++) {
        statuses.push((await agentClient(web2.url, `wrong-token-${"x".repeat(30)}`).get("/v1/orgs")).status);
      }
      expect(statuses.slice(0, 30)).to.deep.equal(Array(30).fill(401));
      expect(statuses.slice(30)).to.deep.equal(Array(10).fill(429));
      expect((await admin(web2).get("/v1/orgs")).status).to.equal(200);
      const short = await startAgentProcess({ host: "127.0.70.14", token: "0000000000000000" }).then(
        async (agent) => {
          await agent.stop();
          agent.cleanup();
          return "started";
        },
        (error: Error) => error.message,
      );
      expect(short).to.include("at least 32 characters");
    });

    it("row 8: acme's token reaches acme and nothing else: bravo's users, services, snapshot, route, tokens, metrics are 403", async () => {
      const acme = agentClient(web1.url, await orgToken(web1, "acme"));
      const acmeOnLb = agentClient(lb.url, await orgToken(lb, "acme"));
      expect((await acme.get("/v1/orgs/acme/users")).status).to.equal(200);
      expect((await acmeOnLb.get("/v1/balancer/acme")).status).to.equal(200);
      const attempts = [
        await acme.get("/v1/orgs/bravo/users"),
        await acme.put("/v1/orgs/bravo/users/mallory", { password: "mallory-password-1" }),
        await acme.get("/v1/orgs/bravo/snapshot"),
        await acme.delete("/v1/orgs/bravo/services/www"),
        await acme.put("/v1/orgs/bravo/replica", {}),
        await acme.post("/v1/orgs/acme/tokens", {}),
        await acme.get("/metrics"),
        await acmeOnLb.put("/v1/balancer/bravo", {
          domains: ["www.bravo.test"],
          backends: [{ name: "x", http: "127.0.70.40:80" }],
        }),
        await acmeOnLb.get("/v1/balancer"),
        await acmeOnLb.put("/v1/backends/evil", { http: "127.0.70.40:80" }),
      ];
      expect(attempts.map((answer) => answer.status)).to.deep.equal(Array(attempts.length).fill(403));
      for (const answer of attempts) expect(answer.text).to.not.include("bravo");
      expect(
        ((await acme.get("/v1/orgs")).json as { orgs: { name: string }[] }).orgs.map((org) => org.name),
      ).to.deep.equal(["acme"]);
      expect((await viaBalancer("www.bravo.test")).body).to.equal(PAGES.bravo);
    });

    it("row 9: a route's backends must be nodes an admin registered: no metadata address, no balancer API port", async () => {
      const acmeOnLb = agentClient(lb.url, await orgToken(lb, "acme"));
      const route = (http: string) => ({ domains: ["www.acme.test"], backends: [{ name: "web1", http }] });
      for (const target of ["169.254.169.254:80", new URL(lb.url).host]) {
        const answer = await acmeOnLb.put("/v1/balancer/acme", route(target));
        expect(answer.status, answer.text).to.equal(422);
        expect(errorOf(answer).code).to.equal("backend_not_registered");
        const registered = await admin(lb).put("/v1/backends/evil", { http: target });
        expect(registered.status, registered.text).to.equal(400);
      }
      expect((await viaBalancer("www.acme.test")).body).to.equal(PAGES.acme);
    });

    it("row 10: a document root's dotfiles are not served, but /.well-known/ is", async () => {
      for (const path of ["/.env", "/.git/config"]) {
        expect((await site(web1, "www.acme.test", path)).status).to.equal(404);
        expect((await viaBalancer("www.acme.test", path)).status).to.equal(404);
      }
      expect((await site(web1, "www.acme.test", "/.well-known/security.txt")).status).to.equal(200);
    });

    it("row 11: nginx's refusal quotes only the writer's own site, nothing of bravo's", async () => {
      const long = Array.from({ length: 4 }, () => "a".repeat(60)).join(".");
      const answer = await admin(web1).put("/v1/orgs/acme/services/long", {
        kind: "website",
        domains: [long],
        documentRoot: "www",
      });
      expect(answer.status, answer.text).to.equal(422);
      expect(errorOf(answer).code).to.equal("nginx_rejected");
      expect(answer.text).to.not.include("bravo");
    });

    it("row 12: free text with a bidi override, C1 controls or markup is refused", async () => {
      for (const displayName of ["Alice \u202egnp.exe", "Alice\u0085", "<script>alert(1)</script>"]) {
        const answer = await admin(web1).put("/v1/orgs/acme/users/alice", {
          password: "alice-password-1",
          displayName,
        });
        expect(answer.status, displayName).to.equal(400);
        expect(answer.text).to.include("displayName");
      }
    });

    it("row 13: of two stacks creating one org at once, exactly one wins and the other is told the owner", async () => {
      const create = (owner: string) =>
        call(web2.url, "PUT", "/v1/orgs/contested", {
          token: TOKEN,
          body: { managedBy: owner },
          headers: { "x-lbhosting-if-owner": owner },
        });
      const answers = await Promise.all([create("stack one"), create("stack two")]);
      expect(answers.map((answer) => answer.status).sort()).to.deep.equal([201, 409]);
      const refused = answers.find((answer) => answer.status === 409)!;
      expect(errorOf(refused).code).to.equal("managed_elsewhere");
      const winner = answers.find((answer) => answer.status === 201)!.json as { managedBy: string };
      expect(errorOf(refused).message).to.include(winner.managedBy);
    });
  });

  describe("row 4: tokens go only where the stack says", () => {
    const ORG = "acme";
    let primary: AgentProcess;
    let secondary: AgentProcess;
    let honeypot: Honeypot;
    const client = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 5000, retries: 0 });

    before(async () => {
      [primary, secondary] = await Promise.all(
        ["127.0.70.1", "127.0.70.2"].map((host) => startAgentProcess({ host, token: TOKEN })),
      );
      honeypot = await startHoneypot("127.0.70.40");
      await client(primary.url).putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url] });
      await client(primary.url).putUser(ORG, "alice", { password: "alice-password-1" });
      // Anyone holding the primary's token adds a secondary of their own to the org's record.
      await client(primary.url).putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url, honeypot.url] });
    });

    after(async () => {
      await honeypot.close();
      for (const agent of [primary, secondary]) {
        await agent.stop();
        agent.cleanup();
      }
    });

    it("the provider's sync reaches the secondaries the stack names and reports the other, never contacting it", async () => {
      const credentials = new Credentials(() => undefined);
      credentials.configure({ get: (key) => (key === "lbhosting:token" ? TOKEN : undefined) });
      credentials.name([primary.url, secondary.url]); // what the org's inputs name
      const clientFor = (endpoint: string) => credentials.clientFor(endpoint);
      const report = await syncOrg(clientFor(primary.url), ORG, clientFor, { isNamed: credentials.isNamed });
      expect(report.unexpected).to.deep.equal([honeypot.url]);
      expect(report.secondaries.map((entry) => [entry.endpoint, entry.state])).to.deep.equal([
        [secondary.url, "in-sync"],
      ]);
      expect(honeypot.requests).to.deep.equal([]);
    });

    it("a key of lbhosting:tokens counts as named", () => {
      const credentials = new Credentials(() => undefined);
      credentials.configure({
        get: (key) => (key === "lbhosting:tokens" ? JSON.stringify({ [honeypot.url]: TOKEN }) : undefined),
      });
      expect(credentials.isNamed(`${honeypot.url}/`)).to.equal(true);
      expect(credentials.isNamed(secondary.url)).to.equal(false);
    });

    for (const command of ["sync", "status", "diff"]) {
      it(`lbhosting ${command} contacts only the --secondary it is given and reports the other`, async () => {
        const result = await runCli([command, "--org", ORG, "--primary", primary.url, "--secondary", secondary.url], {
          LBHOSTING_TOKEN: TOKEN,
        });
        expect(result.code, result.stderr).to.equal(1);
        expect(result.stdout).to.include(
          `unexpected secondary ${honeypot.url}: ${ORG}'s primary lists it; not contacted`,
        );
        expect(honeypot.requests).to.deep.equal([]);
      });
    }
  });
});
