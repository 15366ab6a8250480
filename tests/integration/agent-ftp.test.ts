/**
 * Real FTP: agents with --pure-pw-bin answer a real pure-ftpd per node (extauth; their PureDB as
 * the fallback), which logs the organization's users in. Node 1 (127.0.7.1) holds the primary,
 * node 2 (127.0.7.2) a secondary copy fed by snapshot and delta; both share one content folder, as
 * they share the NAS.
 * With CI=true a missing pure-ftpd fails this suite; elsewhere it is skipped with the reason.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { changesResultSchema, orgStatusSchema, snapshotSchema, userRecordSchema } from "../../wire";
import { type AgentClient, agentClient } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import { webGroupId } from "../../agent/src/render/web-group";
import {
  CURL_LOGIN_DENIED,
  CURL_UPLOAD_FAILED,
  type FtpBinaries,
  type FtpTry,
  type PureFtpdProcess,
  ftpAuthOf,
  ftpTry,
  pdbOf,
  pureFtpdOrSkip,
  startPureFtpd,
} from "../support/pureftpd";
import { publishedAccounts } from "../support/puredb";

const NOBODY = 65534;
/** The web group (www-data): the group of org folders, and of read-only accounts. */
const WEB_GID = webGroupId() as number;

const PASSWORDS = {
  alice: "alice-first-password",
  aliceChanged: "alice-second-password",
  bob: "bob-password-1",
  carol: "carol-password-1",
  daveOld: "dave-old-password",
  daveNew: "dave-new-password",
  eve: "eve-password-1",
};

describe("agent FTP accounts with a real pure-ftpd (integration)", function () {
  let bins: FtpBinaries;
  let contentRoot: string;
  let primary: AgentProcess | undefined;
  let secondary: AgentProcess | undefined;
  let ftp1: PureFtpdProcess | undefined;
  let ftp2: PureFtpdProcess | undefined;
  let api: AgentClient;
  let copy: AgentClient;
  /** acme's Unix id: its writable accounts' uid and gid (pure-ftpd's virtual users need no system user). */
  let acmeId: number;
  /** Every hash the agents stored: none may show up in their logs. */
  const hashes = new Set<string>();

  const folder = (...parts: string[]) => path.join(contentRoot, "acme", ...parts);

  const tryLogin = (server: PureFtpdProcess | undefined, user: string, password: string, upload?: FtpTry["upload"]) =>
    ftpTry({ url: (server as PureFtpdProcess).url, user, password, upload, curl: bins.curl });

  /** Logs in and returns the names in the account's root. */
  const listing = async (server: PureFtpdProcess | undefined, user: string, password: string): Promise<string[]> => {
    const tried = await tryLogin(server, user, password);
    expect(tried.code, `${user} on ${server?.url}: ${tried.stderr}`).to.equal(0);
    return tried.names;
  };

  const denied = async (server: PureFtpdProcess | undefined, user: string, password: string): Promise<void> => {
    const tried = await tryLogin(server, user, password);
    expect(tried.code, `${user} on ${server?.url}: ${tried.stderr}`).to.equal(CURL_LOGIN_DENIED);
  };

  const put = async (client: AgentClient, url: string, body: unknown) => {
    const answer = await client.put(url, body);
    expect(answer.status, answer.text).to.be.oneOf([200, 201]);
    if (url.includes("/users/")) hashes.add(userRecordSchema.parse(answer.json).passwordHash);
  };

  before(async function () {
    bins = pureFtpdOrSkip(this);
    contentRoot = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftp-content-"));
    fs.chmodSync(contentRoot, 0o755); // pure-ftpd sessions run as the accounts' uids
    const extraArgs = ["--pure-pw-bin", bins.purePw];
    [primary, secondary] = await Promise.all([
      startAgentProcess({ host: "127.0.7.1", name: "ftp-1", contentRoot, extraArgs }),
      startAgentProcess({ host: "127.0.7.2", name: "ftp-2", contentRoot, extraArgs }),
    ]);
    [ftp1, ftp2] = await Promise.all([
      startPureFtpd({ bin: bins.pureFtpd, host: "127.0.7.1", ...ftpAuthOf(primary.dataDir) }),
      startPureFtpd({ bin: bins.pureFtpd, host: "127.0.7.2", ...ftpAuthOf(secondary.dataDir) }),
    ]);
    api = agentClient(primary.url, primary.token);
    copy = agentClient(secondary.url, secondary.token);
    await put(api, "/v1/orgs/acme", { displayName: "Acme" });
    acmeId = orgStatusSchema.parse((await api.get("/v1/orgs/acme")).json).unixId as number;
    expect(acmeId).to.be.a("number");
  });

  after(async function () {
    await Promise.all([ftp1?.stop(), ftp2?.stop()]);
    for (const agent of [primary, secondary]) {
      await agent?.stop();
      agent?.cleanup();
    }
    if (contentRoot) fs.rmSync(contentRoot, { recursive: true, force: true });
  });

  it("lets a user with FTP access list the service's root, and no one else in", async function () {
    await put(api, "/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "pub" });
    await put(api, "/v1/orgs/acme/users/alice", { password: PASSWORDS.alice, access: ["files"] });
    await put(api, "/v1/orgs/acme/users/bob", { password: PASSWORDS.bob, access: [] });
    await put(api, "/v1/orgs/acme/users/carol", { password: PASSWORDS.carol, access: ["files"], enabled: false });
    // The agent created the missing folder, owned by the org with the web group: read-only for
    // the read-only accounts (nobody, in the web group), nothing for anyone else.
    expect(fs.statSync(folder("pub"))).to.include({ uid: acmeId, gid: WEB_GID });
    expect(fs.statSync(folder("pub")).mode & 0o7777).to.equal(0o2750);
    fs.writeFileSync(folder("pub", "readme.txt"), "hello\n");
    fs.mkdirSync(folder("private"));

    expect(await listing(ftp1, "alice@files.acme", PASSWORDS.alice)).to.deep.equal(["readme.txt"]);
    await Promise.all([
      denied(ftp1, "alice@files.acme", PASSWORDS.bob),
      denied(ftp1, "bob@files.acme", PASSWORDS.bob),
      denied(ftp1, "carol@files.acme", PASSWORDS.carol),
      denied(ftp1, "alice@files.other", PASSWORDS.alice),
    ]);

    // Enabling the user lets her in; disabling the service shuts everyone out.
    await put(api, "/v1/orgs/acme/users/carol", { password: PASSWORDS.carol, access: ["files"], enabled: true });
    expect(await listing(ftp1, "carol@files.acme", PASSWORDS.carol)).to.deep.equal(["readme.txt"]);
    await put(api, "/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "pub", enabled: false });
    await Promise.all([
      denied(ftp1, "alice@files.acme", PASSWORDS.alice),
      denied(ftp1, "carol@files.acme", PASSWORDS.carol),
    ]);
    await put(api, "/v1/orgs/acme/services/files", { kind: "ftp", rootPath: "pub" });
    expect(await listing(ftp1, "alice@files.acme", PASSWORDS.alice)).to.deep.equal(["readme.txt"]);
  });

  it("refuses uploads to a read-only service; a writable one stores them in the org's folder", async function () {
    const refused = await tryLogin(ftp1, "alice@files.acme", PASSWORDS.alice, {
      name: "upload.txt",
      content: "nope\n",
    });
    expect(refused.code, refused.stderr).to.equal(CURL_UPLOAD_FAILED);
    expect(fs.existsSync(folder("pub", "upload.txt"))).to.equal(false);

    await put(api, "/v1/orgs/acme/services/drop", { kind: "ftp", rootPath: "incoming/drop", writable: true });
    await put(api, "/v1/orgs/acme/users/alice", { password: PASSWORDS.alice, access: ["files", "drop"] });
    expect(fs.statSync(folder("incoming", "drop"))).to.include({ uid: acmeId, gid: WEB_GID });
    const stored = await tryLogin(ftp1, "alice@drop.acme", PASSWORDS.alice, {
      name: "report.txt",
      content: "q3 numbers\n",
    });
    expect(stored.code, stored.stderr).to.equal(0);
    expect(fs.readFileSync(folder("incoming", "drop", "report.txt"), "utf8")).to.equal("q3 numbers\n");
    // pure-ftpd's -U 137:027 and the setgid folder: the org's file, readable by the web group only.
    const report = fs.statSync(folder("incoming", "drop", "report.txt"));
    expect(report).to.include({ uid: acmeId, gid: WEB_GID });
    expect(report.mode & 0o777).to.equal(0o640);
    expect(await listing(ftp1, "alice@drop.acme", PASSWORDS.alice)).to.deep.equal(["report.txt"]);

    // The passwd lines of the fallback PDB (built off the write path) say which uid each account runs as.
    const passwd = await publishedAccounts(primary!.dataDir, "acme", "alice@drop.acme");
    expect(passwd).to.match(new RegExp(`^alice@files\\.acme:[^:]+:${NOBODY}:${WEB_GID}::${folder("pub")}/\\./:`, "m"));
    expect(passwd).to.match(new RegExp(`^alice@drop\\.acme:[^:]+:${acmeId}:${acmeId}::`, "m"));
    expect(fs.statSync(pdbOf(primary!.dataDir)).mode & 0o777).to.equal(0o600);
  });

  it("takes a password change and a removal into account at the next login", async function () {
    await put(api, "/v1/orgs/acme/users/dave", { password: PASSWORDS.daveOld, access: ["files"] });
    expect(await listing(ftp1, "dave@files.acme", PASSWORDS.daveOld)).to.deep.equal(["readme.txt"]);
    await put(api, "/v1/orgs/acme/users/dave", { password: PASSWORDS.daveNew, access: ["files"] });
    const [, names] = await Promise.all([
      denied(ftp1, "dave@files.acme", PASSWORDS.daveOld),
      listing(ftp1, "dave@files.acme", PASSWORDS.daveNew),
    ]);
    expect(names).to.deep.equal(["readme.txt"]);
    expect((await api.delete("/v1/orgs/acme/users/dave")).status).to.equal(200);
    await denied(ftp1, "dave@files.acme", PASSWORDS.daveNew);
  });

  it("lets the same users log in on a secondary copy, which only ever receives hashes", async function () {
    const snapshot = snapshotSchema.parse((await api.get("/v1/orgs/acme/snapshot")).json);
    const replica = { ...snapshot, primary: primary!.url };
    for (const password of Object.values(PASSWORDS)) expect(JSON.stringify(replica)).not.to.include(password);
    const imported = await copy.put("/v1/orgs/acme/replica", replica);
    expect(imported.status, imported.text).to.equal(200);
    expect(orgStatusSchema.parse(imported.json)).to.include({ role: "secondary", digest: snapshot.digest });

    expect(await listing(ftp2, "alice@files.acme", PASSWORDS.alice)).to.deep.equal(["readme.txt"]);
    expect(await listing(ftp2, "alice@drop.acme", PASSWORDS.alice)).to.deep.equal(["report.txt"]);
    await denied(ftp2, "bob@files.acme", PASSWORDS.bob);

    // A password change reaches the copy as a delta.
    await put(api, "/v1/orgs/acme/users/alice", { password: PASSWORDS.aliceChanged, access: ["files", "drop"] });
    const page = changesResultSchema.parse((await api.get(`/v1/orgs/acme/changes?since=${snapshot.generation}`)).json);
    const delta = { baseGeneration: snapshot.generation, changes: page.changes, digest: page.digest };
    expect(JSON.stringify(delta)).not.to.include(PASSWORDS.aliceChanged);
    const applied = await copy.post("/v1/orgs/acme/replica/changes", delta);
    expect(applied.status, applied.text).to.equal(200);
    const [, names] = await Promise.all([
      denied(ftp2, "alice@files.acme", PASSWORDS.alice),
      listing(ftp2, "alice@files.acme", PASSWORDS.aliceChanged),
    ]);
    expect(names).to.deep.equal(["readme.txt"]);

    // Demotion removes the copy's accounts, and nothing else.
    expect((await copy.delete("/v1/orgs/acme/replica")).status).to.equal(200);
    await denied(ftp2, "alice@files.acme", PASSWORDS.aliceChanged);
    expect(await listing(ftp1, "alice@files.acme", PASSWORDS.aliceChanged)).to.deep.equal(["readme.txt"]);
  });

  it("never serves or takes over a folder that leaves the org's folder through a symlink", async function () {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftp-outside-"));
    try {
      // Accepted while the folder does not exist; then someone with access to the NAS links it away.
      await put(api, "/v1/orgs/acme/services/escape", { kind: "ftp", rootPath: "escape", writable: true });
      fs.symlinkSync(outside, folder("escape"));
      await put(api, "/v1/orgs/acme/users/eve", { password: PASSWORDS.eve, access: ["escape"] });
      await denied(ftp1, "eve@escape.acme", PASSWORDS.eve);
      expect(fs.statSync(outside)).to.include({ uid: 0 });
      expect(primary!.log()).to.include('"msg":"ftp service not rendered"');
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });

  it("rebuilds the PDB on start, and drops a deleted org's accounts", async function () {
    fs.rmSync(pdbOf(primary!.dataDir));
    await primary!.restart();
    expect(await listing(ftp1, "alice@files.acme", PASSWORDS.aliceChanged)).to.deep.equal(["readme.txt"]);

    expect((await api.delete("/v1/orgs/acme")).status).to.equal(200);
    await denied(ftp1, "alice@files.acme", PASSWORDS.aliceChanged);
    expect(fs.readFileSync(folder("pub", "readme.txt"), "utf8")).to.equal("hello\n"); // content is never touched
    expect(fs.readdirSync(path.join(primary!.dataDir, "ftp")).filter((file) => file.startsWith("acme."))).to.deep.equal(
      [],
    );
  });

  it("never writes a password or a hash to the agents' logs", function () {
    expect(hashes.size).to.be.greaterThan(3);
    for (const agent of [primary!, secondary!]) {
      const log = agent.log();
      for (const secret of [...Object.values(PASSWORDS), ...hashes]) expect(log).not.to.include(secret);
    }
  });

  it("refuses the FTP uid flags of earlier versions, naming what replaced them", async function () {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftp-root-"));
    try {
      const start = startAgentProcess({
        host: "127.0.7.3",
        dataDir,
        contentRoot,
        extraArgs: ["--pure-pw-bin", bins.purePw, "--ftp-uid", "2001", "--ftp-gid", "2001"],
      });
      const error = await start.then(
        async (agent) => {
          await agent.stop();
          return new Error("the agent started");
        },
        (failure: Error) => failure,
      );
      expect(error.message).to.include("--ftp-uid and --ftp-gid are gone").and.include("--org-id-range");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
