/**
 * The agent's side of pure-ftpd's extauth protocol (auth-server.ts), spoken as pure-ftpd speaks it
 * (its log_extauth.c): the request in one write, the reply read until the agent closes.
 */
import { expect } from "chai";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { hashPassword, verifyPassword } from "../../common/password";
import type { FtpLogin } from "../../agent/src/render/ftp/accounts";
import { FtpAuthServer } from "../../agent/src/render/ftp/auth-server";

const PASSWORD = "alice-password-1";

/** One login as pure-ftpd sends it; resolves to the agent's whole reply. */
function ask(socket: string, account: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socket);
    let reply = "";
    connection.setEncoding("utf8");
    connection.setTimeout(5000, () => connection.destroy(new Error("no reply")));
    connection.on("data", (chunk: string) => (reply += chunk));
    connection.on("end", () => resolve(reply));
    connection.on("error", reject);
    connection.write(
      `account:${account}\npassword:${password}\nlocalhost:127.0.0.1\nlocalport:21\npeer:127.0.0.9\nencrypted:0\nend\n`,
    );
  });
}

describe("agent FTP extauth server", function () {
  let dir: string;
  let server: FtpAuthServer;
  let socket: string;
  const warnings: string[] = [];
  const accounts = new Map<string, FtpLogin>();

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftpauth-"));
    socket = path.join(dir, "run", "ftp-auth.sock");
    accounts.set("alice@files.acme", {
      passwordHash: hashPassword(PASSWORD),
      uid: 300001,
      gid: 300001,
      dir: "/srv/nas/acme/pub/./",
    });
    server = new FtpAuthServer({
      socket,
      account: (login) => accounts.get(login),
      verify: async (password, hash) => verifyPassword(password, hash),
      warn: (msg, fields) => warnings.push(JSON.stringify({ msg, ...fields })),
    });
    fs.mkdirSync(path.dirname(socket), { recursive: true });
    fs.writeFileSync(socket, "left by an earlier agent");
    await server.listen();
  });

  after(async function () {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("listens on a socket only its owner may use, in a folder only its owner may enter", function () {
    expect(fs.statSync(socket).isSocket()).to.equal(true);
    expect(fs.statSync(socket).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.dirname(socket)).mode & 0o777).to.equal(0o700);
  });

  it("answers a matching password with the account's ids and chrooted home", async function () {
    expect(await ask(socket, "alice@files.acme", PASSWORD)).to.equal(
      "auth_ok:1\nuid:300001\ngid:300001\ndir:/srv/nas/acme/pub/./\nend\n",
    );
  });

  it("refuses for good (-1, never 0: no fallback to an older PDB) a wrong password or an unknown login", async function () {
    expect(await ask(socket, "alice@files.acme", "wrong-password-1")).to.equal("auth_ok:-1\nend\n");
    expect(await ask(socket, "mallory@files.acme", PASSWORD)).to.equal("auth_ok:-1\nend\n");
    expect(await ask(socket, "alice@files.acme\npassword:x", PASSWORD)).to.equal("auth_ok:-1\nend\n");
  });

  it("sees an account change at the next login, and logs no password or hash", async function () {
    const before = accounts.get("alice@files.acme") as FtpLogin;
    accounts.delete("alice@files.acme");
    try {
      expect(await ask(socket, "alice@files.acme", PASSWORD)).to.equal("auth_ok:-1\nend\n");
    } finally {
      accounts.set("alice@files.acme", before);
    }
    expect(warnings.join("\n")).not.to.include(PASSWORD);
    expect(warnings.join("\n")).not.to.include(before.passwordHash);
  });
});
