/**
 * Tenants who cannot touch each other's files (issue 22, rows 2, 3 and 6), tried as a hostile
 * tenant would with a real nginx and pure-ftpd on loopback: orgs acme and bravo on one node, each
 * with a website and a writable FTP service. What acme plants in its own folder (symlinks it owns,
 * as its FTP sessions would make them) must give it nothing of bravo's, of the node or of the
 * agent; each org's Unix id is its own, stable, and replicated.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { webGroupId } from "../../agent/src/render/web-group";
import { orgStatusSchema, snapshotSchema } from "../../wire";
import { type AgentClient, agentClient } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { type HostingNode, startHostingNode } from "../support/hosting-node";
import { getSite } from "../support/http-get";
import { nginxBinaryOrSkip } from "../support/nginx";
import { type FtpBinaries, type FtpTry, ftpTry, pureFtpdOrSkip } from "../support/pureftpd";

const TOKEN = "tenant-files-token-0123456789abcdef";
const ACME_PAGE = "<h1>acme</h1>\n";
const BRAVO_PAGE = "<h1>bravo only</h1>\n";
const BRAVO_FILE = "bravo's own figures\n";
const PASSWORDS = { alice: "alice-password-1", bob: "bob-password-1" };

describe("tenant files: symlinks, swapped folders and Unix ids (integration)", function () {
  let bins: FtpBinaries;
  let webGid: number;
  let contentRoot: string;
  let node: HostingNode | undefined;
  let copies: AgentProcess[] = [];
  let api: AgentClient;
  let ids: { acme: number; bravo: number };

  const folder = (...parts: string[]) => path.join(fs.realpathSync(contentRoot), ...parts);
  const status = async (client: AgentClient, org: string) =>
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
      token: TOKEN,
      contentRoot,
      nginxBin,
      ftp: bins,
    });
    api = agentClient(node.url, TOKEN);
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
    const secondary = await startAgentProcess({ host: "127.0.23.2", token: TOKEN });
    // Its own range holds only acme's id, and carol takes it there first.
    const taken = await startAgentProcess({
      host: "127.0.23.3",
      token: TOKEN,
      extraArgs: ["--org-id-range", `${ids.acme}-${ids.acme}`],
    });
    copies = [secondary, taken];
    const copy = agentClient(secondary.url, TOKEN);
    const imported = await copy.put("/v1/orgs/acme/replica", { ...snapshot, primary: node?.url });
    expect(imported.status, imported.text).to.equal(200);
    expect(orgStatusSchema.parse(imported.json)).to.include({ unixId: ids.acme, digest: snapshot.digest });

    const other = agentClient(taken.url, TOKEN);
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
