/**
 * The FTP accounts without a server: the PDB the agent builds in-process is byte for byte
 * the one `pure-pw mkdb` writes, and rendering some users again gives the PDB rendering the
 * whole org gives (FTP logins with a real pure-ftpd are in tests/integration/agent-ftp.test.ts).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import fc from "fast-check";
import { ContentRoot } from "../../agent/src/render/content";
import { FtpFiles, PDB_FILE } from "../../agent/src/render/ftp/accounts";
import { buildPureDb, lineRecord, pureDbHash } from "../../agent/src/render/ftp/puredb";
import type { ServiceRecord, UserRecord } from "../../wire";
import { findBinary } from "../support/processes";
import { pureDbLines } from "../support/puredb";
import { requireTool } from "../support/requirements";

const HASH = "$6$saltsalt$" + "h".repeat(86);

const purePwOrSkip = (context: Mocha.Context): string =>
  requireTool(
    context,
    "pure-pw",
    () => findBinary("PURE_PW_BIN", "pure-pw", ["/usr/bin/pure-pw"]),
    "apt-get install -y pure-ftpd, or set PURE_PW_BIN",
  );

const user = (username: string, access: string[], enabled = true, passwordHash = HASH): UserRecord => ({
  username,
  passwordHash,
  displayName: "",
  email: "",
  enabled,
  access,
  managedBy: "",
});

const ftp = (name: string, rootPath: string, writable = false): ServiceRecord => ({
  name,
  kind: "ftp",
  rootPath,
  writable,
  enabled: true,
  managedBy: "",
});

describe("agent FTP files", function () {
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftp-files-"));
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe("PureDB", function () {
    it("hashes keys the way puredb does (djb2 with XOR, last byte first)", function () {
      expect(pureDbHash("")).to.equal(5381);
      expect(pureDbHash("a")).to.equal(((5381 * 33) ^ 0x61) >>> 0);
      expect(pureDbHash("ab")).to.equal(((((((5381 * 33) ^ 0x62) >>> 0) * 33) >>> 0) ^ 0x61) >>> 0);
      // Over the UTF-8 bytes (0xc3 0xa9), the last first.
      expect(pureDbHash("é")).to.equal((((((5381 * 33) ^ 0xa9) >>> 0) * 33) ^ 0xc3) >>> 0);
    });

    it("writes the very bytes `pure-pw mkdb` writes, for any accounts", function () {
      const purePw = purePwOrSkip(this);
      const login = fc.stringMatching(/^[a-z][a-z0-9._-]{0,12}@[a-z0-9-]{1,8}\.[a-z0-9-]{1,8}$/);
      const home = fc.stringMatching(/^\/[A-Za-z0-9/ é_-]{0,30}$/);
      const line = fc.tuple(login, fc.integer({ min: 1, max: 65535 }), home);
      let run = 0;
      fc.assert(
        fc.property(fc.uniqueArray(line, { selector: ([l]) => l, maxLength: 60 }), (lines) => {
          const passwdLines = lines.map(([l, uid, h]) => `${l}:${HASH}:${uid}:${uid}::${h}/./::::::::::::\n`);
          const passwd = passwdLines.join("");
          const source = path.join(dir, `source-${run}`);
          const pdb = path.join(dir, `pdb-${run++}`);
          fs.writeFileSync(source, passwd);
          execFileSync(purePw, ["mkdb", pdb, "-f", source]);
          expect(buildPureDb(passwdLines.map((l) => lineRecord(Buffer.from(l)))).equals(fs.readFileSync(pdb))).to.equal(
            true,
          );
        }),
        { numRuns: 25, seed: 9 },
      );
    });
  });

  describe("rendering some users again", function () {
    const content = () => new ContentRoot(fs.mkdtempSync(path.join(dir, "content-")));
    const pdb = (ftpDir: string) => fs.readFileSync(path.join(ftpDir, PDB_FILE));

    it("gives the PDB a whole render gives, and no account once none is left", async function () {
      const services = [ftp("files", "pub"), ftp("drop", "drop", true)];
      const options = {
        content: content(),
        readonlyIds: { uid: 65534, gid: 65534 },
        warn: () => undefined,
      };
      const incremental = new FtpFiles({ ...options, dir: path.join(dir, "incremental") });
      const whole = new FtpFiles({ ...options, dir: path.join(dir, "whole") });
      const users = new Map([
        ["alice", user("alice", ["files"])],
        ["bob", user("bob", ["files", "drop"])],
      ]);
      await incremental.render("acme", 200000, services, () => [...users.values()]);
      await incremental.publish();

      const steps: Array<[string, UserRecord | undefined]> = [
        ["carol", user("carol", ["drop"])],
        ["alice", user("alice", ["files"], true, "$6$other$" + "o".repeat(86))],
        ["bob", user("bob", ["files"], false)],
        ["dave", user("dave", [])],
        ["carol", undefined],
        ["alice", undefined],
      ];
      for (const [username, record] of steps) {
        if (record) users.set(username, record);
        else users.delete(username);
        expect(await incremental.renderUsers("acme", [[username, record]])).to.equal(true);
        await incremental.publish();
        await whole.render("acme", 200000, services, () => [...users.values()]);
        await whole.publish();
        const accounts = pdb(path.join(dir, "incremental"));
        expect(accounts.equals(pdb(path.join(dir, "whole")))).to.equal(true);
        // One account per user and FTP service the user may use, in login order.
        const logins = [...users.values()].flatMap((u) =>
          u.enabled ? u.access.map((service) => `${u.username}@${service}.acme`) : [],
        );
        expect(pureDbLines(accounts).map((line) => line.split(":")[0])).to.deep.equal(logins.sort());
        // What extauth answers: the PDB's accounts, with the same hash, ids and home.
        for (const line of pureDbLines(accounts)) {
          const [login, hash, uid, gid, , home] = line.split(":");
          expect(incremental.account(login)).to.deep.equal({ passwordHash: hash, uid: +uid, gid: +gid, dir: home });
        }
        for (const gone of ["alice@files.acme", "bob@drop.acme", "carol@drop.acme", "dave@files.acme"]) {
          if (!logins.includes(gone)) expect(incremental.account(gone), gone).to.equal(undefined);
        }
      }
      expect(pureDbLines(pdb(path.join(dir, "incremental")))).to.deep.equal([]);
      expect(incremental.has("acme")).to.equal(true);
      await incremental.renderUsers("other", [["alice", undefined]]).then(
        () => expect.fail("renders an org never rendered whole"),
        (error: Error) => expect(error.message).to.match(/never rendered whole/),
      );
    });

    it("with extauth, leaves the PDB to a later build (or the stop's flush), and answers logins at once", async function () {
      const ftpDir = path.join(dir, "deferred");
      const files = new FtpFiles({
        dir: ftpDir,
        content: content(),
        readonlyIds: { uid: 65534, gid: 65534 },
        warn: () => undefined,
        publishDelayMs: 60_000,
      });
      await files.render("acme", 200000, [ftp("files", "pub", true)], () => [user("alice", ["files"])]);
      await files.publish(); // on start
      await files.renderUsers("acme", [["bob", user("bob", ["files"])]]);
      await files.publishSoon();
      expect(files.account("bob@files.acme")).to.include({ uid: 200000, gid: 200000 });
      expect(pureDbLines(pdb(ftpDir)).map((line) => line.split(":")[0])).to.deep.equal(["alice@files.acme"]);
      await files.flush();
      const logins = pureDbLines(pdb(ftpDir)).map((line) => line.split(":")[0]);
      expect(logins).to.deep.equal(["alice@files.acme", "bob@files.acme"]);
    });

    it("builds the PDB with pure-pw on start, then in-process when the bytes agree", async function () {
      const purePw = purePwOrSkip(this);
      const ftpDir = path.join(dir, "served");
      const warnings: string[] = [];
      const served = new FtpFiles({
        dir: ftpDir,
        content: content(),
        readonlyIds: { uid: 65534, gid: 65534 },
        purePw,
        warn: (msg) => warnings.push(msg),
      });
      await served.render("acme", 200000, [ftp("files", "pub")], () => [user("alice", ["files"])]);
      await served.publish();
      expect(fs.existsSync(path.join(ftpDir, "_pureftpd.passwd"))).to.equal(false); // pure-pw's source, once
      await served.renderUsers("acme", [["bob", user("bob", ["files"])]]);
      await served.publish();
      const source = path.join(dir, "check.passwd");
      const lines = pureDbLines(fs.readFileSync(path.join(ftpDir, PDB_FILE)));
      fs.writeFileSync(source, lines.join(""));
      execFileSync(purePw, ["mkdb", path.join(dir, "check.pdb"), "-f", source]);
      expect(
        fs.readFileSync(path.join(ftpDir, PDB_FILE)).equals(fs.readFileSync(path.join(dir, "check.pdb"))),
      ).to.equal(true);
      expect(lines.join("")).to.match(/^bob@files\.acme:/m);
      expect(fs.statSync(path.join(ftpDir, PDB_FILE)).mode & 0o777).to.equal(0o600);
      expect(warnings).to.deep.equal([]);
    });

    it("keeps on start a PDB that holds exactly the accounts, and rebuilds one that does not", async function () {
      const ftpDir = path.join(dir, "kept");
      const pdbFile = path.join(ftpDir, PDB_FILE);
      const root = content(); // the same folders at each start
      const start = async (users: UserRecord[]) => {
        const files = new FtpFiles({
          dir: ftpDir,
          content: root,
          readonlyIds: { uid: 65534, gid: 65534 },
          warn: () => undefined,
        });
        await files.render("acme", 200000, [ftp("files", "pub")], () => users);
        await files.publish();
        return fs.statSync(pdbFile).ino;
      };
      const first = await start([user("alice", ["files"])]);
      expect(await start([user("alice", ["files"])]), "the same accounts: the same file").to.equal(first);
      const bytes = fs.readFileSync(pdbFile);
      fs.writeFileSync(pdbFile, Buffer.alloc(bytes.length)); // same file, other bytes
      const repaired = await start([user("alice", ["files"])]);
      expect(repaired, "a PDB changed on disk: a new file").to.not.equal(first);
      expect(fs.readFileSync(pdbFile).equals(bytes)).to.equal(true);
      const rebuilt = await start([user("alice", ["files"]), user("bob", ["files"])]);
      expect(rebuilt, "another account: a new file").to.not.equal(repaired);
      expect(pureDbLines(fs.readFileSync(pdbFile)).map((line) => line.split(":")[0])).to.deep.equal([
        "alice@files.acme",
        "bob@files.acme",
      ]);
    });
  });
});
