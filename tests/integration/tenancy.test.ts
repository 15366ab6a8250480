/**
 * A hostile tenant against live agents on loopback (127.0.70.x, 127.0.23.x), one case per row of
 * issue 22's table: what the attempt must find is a refusal, nothing served and nothing written.
 * Rows 2, 3 and 6 plant what acme's FTP sessions would leave in its own folder (symlinks it owns,
 * swapped folders) and must find nothing of bravo's, of the node or of the agent.
 */
import fs from "node:fs";
import { expect } from "chai";
import os from "node:os";
import path from "node:path";
import { webGroupId } from "../../agent/src/render/web-group";
import { orgStatusSchema, snapshotSchema } from "../../wire";
import { startHostingNode } from "../support/hosting-node";
import { type FtpBinaries, type FtpTry, ftpTry } from "../support/pureftpd";
import { AgentClient } from "../../provider/client";
import { Credentials } from "../../provider/credentials";
import { routeOrg } from "../../provider/balancer";
import { syncOrg } from "../../provider/sync";
import { startAgentProcess, type AgentProcess } from "../support/agent-process";
import { runCli } from "../support/cli-run";
import { startHoneypot, type Honeypot } from "../support/honeypot";
import { agentClient, call, type AgentClient as RawClient, type HttpAnswer } from "../support/agent-http";
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
        // An ACME answer written into bravo's document root (it would take bravo's domain's certificate).
        await acme.put(`/v1/orgs/bravo/services/www/acme-challenges/${"t".repeat(43)}`, {
          keyAuthorization: `${"t".repeat(43)}.${"k".repeat(43)}`,
        }),
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

const FILES_TOKEN = "tenant-files-token-0123456789abcdef";
const ACME_PAGE = "<h1>acme</h1>\n";
const BRAVO_PAGE = "<h1>bravo only</h1>\n";
const BRAVO_FILE = "bravo's own figures\n";
const PASSWORDS = { alice: "alice-password-1", bob: "bob-password-1" };

describe("tenancy, rows 2, 3 and 6: symlinks, swapped folders and Unix ids", function () {
  let bins: FtpBinaries;
  let webGid: number;
  let contentRoot: string;
  let node: HostingNode | undefined;
  let copies: AgentProcess[] = [];
  let api: RawClient;
  let ids: { acme: number; bravo: number };

  const folder = (...parts: string[]) => path.join(fs.realpathSync(contentRoot), ...parts);
  const status = async (client: RawClient, org: string) =>
    orgStatusSchema.parse((await client.get(`/v1/orgs/${org}`)).json);
  const put = async (url: string, body: unknown) => {
    const answer = await api.put(url, body);
    expect(answer.status, `${url}: ${answer.text}`).to.be.oneOf([200, 201]);
  };
  /** What the tenant's FTP session would leave: a symlink it owns. */
  const plantSymlink = (target: string, link: string, owner: number) => {
    fs.symlinkSync(target, link);
    fs.lchownSync(link, owner, owner);
  };
  /** A file the org's FTP session would have uploaded (its id, the web group from the setgid folder). */
  const plantFile = (file: string, content: string, owner: number) => {
    fs.writeFileSync(file, content, { mode: 0o640 });
    fs.chownSync(file, owner, webGid);
  };
  const site = (host: string, urlPath: string) => getSite(`${node?.nginx?.url}${urlPath}`, host);
  const ftp = (user: string, password: string, extra: Partial<FtpTry> = {}) =>
    ftpTry({ url: node?.ftp?.url as string, user, password, curl: bins.curl, ...extra });

  before(async function () {
    const nginxBin = nginxBinaryOrSkip(this);
    bins = pureFtpdOrSkip(this);
    webGid = webGroupId() as number;
    expect(webGid, "the www-data group").to.be.a("number");
    contentRoot = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-tenant-files-"));
    fs.chmodSync(contentRoot, 0o755);
    node = await startHostingNode({
      host: "127.0.23.1",
      name: "tenants-1",
      token: FILES_TOKEN,
      contentRoot,
      nginxBin,
      ftp: bins,
    });
    api = agentClient(node.url, FILES_TOKEN);
    for (const org of ["acme", "bravo"]) {
      await put(`/v1/orgs/${org}`, {});
      await put(`/v1/orgs/${org}/services/www`, { kind: "website", domains: [`www.${org}.test`], documentRoot: "www" });
      await put(`/v1/orgs/${org}/services/files`, { kind: "ftp", rootPath: "files", writable: true });
    }
    await put("/v1/orgs/acme/users/alice", { password: PASSWORDS.alice, access: ["files"] });
    await put("/v1/orgs/bravo/users/bob", { password: PASSWORDS.bob, access: ["files"] });
    ids = { acme: (await status(api, "acme")).unixId as number, bravo: (await status(api, "bravo")).unixId as number };
    // Each org's site and files, as its own FTP sessions would have made them.
    for (const [org, page] of [
      ["acme", ACME_PAGE],
      ["bravo", BRAVO_PAGE],
    ] as const) {
      const owner = ids[org];
      fs.mkdirSync(folder(org, "www"), { mode: 0o2750 });
      fs.chownSync(folder(org, "www"), owner, webGid);
      plantFile(folder(org, "www", "index.html"), page, owner);
    }
    plantFile(folder("bravo", "files", "figures.txt"), BRAVO_FILE, ids.bravo);
    expect((await site("www.acme.test", "/")).body).to.equal(ACME_PAGE);
    expect((await site("www.bravo.test", "/")).body).to.equal(BRAVO_PAGE);
  });

  after(async function () {
    await node?.stop();
    for (const copy of copies) {
      await copy.stop();
      copy.cleanup();
    }
    if (contentRoot) fs.rmSync(contentRoot, { recursive: true, force: true });
  });

  it("(a) serves no symlink acme owns to /etc/passwd, bravo's folder, / or the agent's data; one to its own file is served", async function () {
    const www = folder("acme", "www");
    plantSymlink("/etc/passwd", path.join(www, "passwd.txt"), ids.acme);
    plantSymlink(folder("bravo", "www"), path.join(www, "bravo"), ids.acme);
    plantSymlink("/", path.join(www, "root"), ids.acme);
    plantSymlink(node?.agent.dataDir as string, path.join(www, "data"), ids.acme);
    plantSymlink(path.join(www, "index.html"), path.join(www, "own.html"), ids.acme);

    for (const urlPath of ["/passwd.txt", "/bravo/index.html", "/root/etc/passwd", "/data/agent.db", "/data/ftp/"]) {
      const answer = await site("www.acme.test", urlPath);
      expect(answer.status, urlPath).to.be.oneOf([403, 404]);
      expect(answer.body, urlPath).not.to.include("root:x:0:0").and.not.include("bravo only");
    }
    const own = await site("www.acme.test", "/own.html");
    expect(own.status).to.equal(200);
    expect(own.body).to.equal(ACME_PAGE);
    // Dotfiles other than /.well-known/ stay out of reach.
    plantFile(path.join(www, ".env"), "SECRET=1\n", ids.acme);
    expect((await site("www.acme.test", "/.env")).status).to.equal(404);
  });

  it("(b) serves nothing of bravo's for acme's domain when acme's document root appears as a symlink to bravo's folder", async function () {
    // Accepted while the folder does not exist yet (content may be uploaded later) ...
    await put("/v1/orgs/acme/services/later", {
      kind: "website",
      domains: ["later.acme.test"],
      documentRoot: "later",
    });
    // ... then the tenant makes it a symlink to bravo's site.
    plantSymlink(folder("bravo", "www"), folder("acme", "later"), ids.acme);
    const answer = await site("later.acme.test", "/");
    expect(answer.status).to.be.oneOf([403, 404]);
    expect(answer.body).not.to.include("bravo only");
    expect((await site("later.acme.test", "/index.html")).body).not.to.include("bravo only");
  });

  it("(c) gives acme's FTP login nothing of bravo's when its home is swapped for a symlink to bravo's folder", async function () {
    const listed = await ftp("alice@files.acme", PASSWORDS.alice);
    expect(listed.code, listed.stderr).to.equal(0);
    expect(fs.statSync(folder("acme", "files"))).to.include({ uid: ids.acme, gid: webGid });
    // After the agent prepared it, the tenant swaps its home for a symlink to bravo's FTP folder.
    fs.rmSync(folder("acme", "files"), { recursive: true });
    plantSymlink(folder("bravo", "files"), folder("acme", "files"), ids.acme);
    const before = fs.readdirSync(folder("bravo", "files")).sort();

    const list = await ftp("alice@files.acme", PASSWORDS.alice);
    expect(list.code, "list").to.not.equal(0);
    expect(list.names).not.to.include("figures.txt");
    const read = await ftp("alice@files.acme", PASSWORDS.alice, { download: "figures.txt" });
    expect(read.code, "read").to.not.equal(0);
    expect(read.content).not.to.include("figures");
    const write = await ftp("alice@files.acme", PASSWORDS.alice, { upload: { name: "planted.txt", content: "x\n" } });
    expect(write.code, "STOR").to.not.equal(0);

    expect(fs.readdirSync(folder("bravo", "files")).sort()).to.deep.equal(before);
    expect(fs.readFileSync(folder("bravo", "files", "figures.txt"), "utf8")).to.equal(BRAVO_FILE);
    expect(fs.statSync(folder("bravo", "files"))).to.include({ uid: ids.bravo, gid: webGid });
    // bravo's own login still has its folder.
    const bob = await ftp("bob@files.bravo", PASSWORDS.bob, { download: "figures.txt" });
    expect(bob.code, bob.stderr).to.equal(0);
    expect(bob.content).to.equal(BRAVO_FILE);
    // The agent hands the swapped home to no one: on the next render it refuses it.
    await put("/v1/orgs/acme/users/alice", { password: PASSWORDS.alice, access: ["files"], displayName: "Alice" });
    expect(fs.statSync(folder("bravo", "files"))).to.include({ uid: ids.bravo, gid: webGid });
  });

  it("(d) gives each org its own id, stable across a restart and replicated; a node holding it for another org refuses", async function () {
    expect(ids.acme).to.not.equal(ids.bravo);
    for (const id of Object.values(ids)) expect(id).to.be.within(200_000, 999_999);
    await node?.agent.restart();
    expect((await status(api, "acme")).unixId).to.equal(ids.acme);
    expect((await status(api, "bravo")).unixId).to.equal(ids.bravo);

    const snapshot = snapshotSchema.parse((await api.get("/v1/orgs/acme/snapshot")).json);
    expect(snapshot.org.unixId).to.equal(ids.acme);
    const secondary = await startAgentProcess({ host: "127.0.23.2", token: FILES_TOKEN });
    // Its own range holds only acme's id, and carol takes it there first.
    const taken = await startAgentProcess({
      host: "127.0.23.3",
      token: FILES_TOKEN,
      extraArgs: ["--org-id-range", `${ids.acme}-${ids.acme}`],
    });
    copies = [secondary, taken];
    const copy = agentClient(secondary.url, FILES_TOKEN);
    const imported = await copy.put("/v1/orgs/acme/replica", { ...snapshot, primary: node?.url });
    expect(imported.status, imported.text).to.equal(200);
    expect(orgStatusSchema.parse(imported.json)).to.include({ unixId: ids.acme, digest: snapshot.digest });

    const other = agentClient(taken.url, FILES_TOKEN);
    expect((await other.put("/v1/orgs/carol", {})).status).to.equal(201);
    expect((await status(other, "carol")).unixId).to.equal(ids.acme);
    const refused = await other.put("/v1/orgs/acme/replica", { ...snapshot, primary: node?.url });
    expect(refused.status, refused.text).to.equal(409);
    expect(refused.text).to.include("org_id_taken").and.include(String(ids.acme)).and.not.include("carol");
    expect((await other.get("/v1/orgs/acme")).status).to.equal(404);
  });

  it("(e) keeps the agent's data 0700 and its database 0600, and each org folder the org's with the web group, 2750", async function () {
    const dataDir = node?.agent.dataDir as string;
    // As an older agent (or a umask of 022) left it: the next start narrows it.
    fs.chmodSync(dataDir, 0o755);
    await node?.agent.restart();
    expect(fs.statSync(dataDir).mode & 0o7777).to.equal(0o700);
    for (const file of ["agent.db", "agent.db-wal", "agent.db-shm"]) {
      expect(fs.statSync(path.join(dataDir, file)).mode & 0o777, file).to.equal(0o600);
    }
    for (const org of ["acme", "bravo"] as const) {
      const stat = fs.statSync(folder(org));
      expect(stat, org).to.include({ uid: ids[org], gid: webGid });
      expect(stat.mode & 0o7777, org).to.equal(0o2750);
    }
  });
});
