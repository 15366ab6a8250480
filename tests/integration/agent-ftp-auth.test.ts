/**
 * pure-ftpd asking the agent (extauth) at 1,000 accounts across 50 orgs: a login works as soon as
 * the write that created or changed the account answers, stops as soon as a removal answers, and
 * keeps working while the agent is stopped and started again (pure-ftpd falls back to the PDB).
 * With CI=true a missing pure-ftpd fails this suite; elsewhere it is skipped with the reason.
 */
import { expect } from "chai";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { hashPassword } from "../../common/password";
import { type AgentClient, agentClient } from "../support/agent-http";
import { type AgentProcess, startAgentProcess } from "../support/agent-process";
import {
  CURL_LOGIN_DENIED,
  type FtpBinaries,
  type PureFtpdProcess,
  ftpAuthOf,
  ftpTry,
  pureFtpdOrSkip,
  startPureFtpd,
} from "../support/pureftpd";
import { orgAccounts } from "../support/puredb";

const HOST = "127.0.7.5";
const ORGS = 50;
const USERS_PER_ORG = 20;
const BULK_PASSWORD = "bulk-password-1";
const CONCURRENCY = 8;

const orgName = (i: number) => `org${String(i).padStart(2, "0")}`;

describe("agent FTP logins through extauth at 1,000 accounts (integration)", function () {
  let bins: FtpBinaries;
  let contentRoot: string;
  let agent: AgentProcess | undefined;
  let ftp: PureFtpdProcess | undefined;
  let api: AgentClient;

  const login = (user: string, password: string, timeoutMs?: number) =>
    ftpTry({ url: ftp!.url, user, password, curl: bins.curl, timeoutMs });

  const put = async (url: string, body: unknown) => {
    const answer = await api.put(url, body);
    expect(answer.status, `${url}: ${answer.text}`).to.be.oneOf([200, 201]);
  };

  before(async function () {
    bins = pureFtpdOrSkip(this);
    contentRoot = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftpauth-content-"));
    fs.chmodSync(contentRoot, 0o755); // pure-ftpd sessions run as the accounts' uids
    agent = await startAgentProcess({
      host: HOST,
      name: "ftpauth",
      contentRoot,
      extraArgs: ["--pure-pw-bin", bins.purePw],
    });
    api = agentClient(agent.url, agent.token);
    ftp = await startPureFtpd({ bin: bins.pureFtpd, host: HOST, ...ftpAuthOf(agent.dataDir) });

    // 50 orgs with one FTP service and 20 users each, hashes given (as a bulk import sends them).
    const passwordHash = hashPassword(BULK_PASSWORD);
    const orgs = Array.from({ length: ORGS }, (_, i) => orgName(i));
    for (const org of orgs) {
      await put(`/v1/orgs/${org}`, { displayName: org });
      await put(`/v1/orgs/${org}/services/files`, { kind: "ftp", rootPath: "pub" });
    }
    const users = orgs.flatMap((org) => Array.from({ length: USERS_PER_ORG }, (_, u) => ({ org, user: `user${u}` })));
    for (let at = 0; at < users.length; at += CONCURRENCY) {
      await Promise.all(
        users
          .slice(at, at + CONCURRENCY)
          .map(({ org, user }) => put(`/v1/orgs/${org}/users/${user}`, { passwordHash, access: ["files"] })),
      );
    }
  });

  after(async function () {
    await ftp?.stop();
    await agent?.stop();
    agent?.cleanup();
    if (contentRoot) fs.rmSync(contentRoot, { recursive: true, force: true });
  });

  it("lets a new account in as soon as its write answers, and a changed password at once", async function () {
    expect((await login(`user7@files.${orgName(31)}`, BULK_PASSWORD)).code).to.equal(0);

    await put(`/v1/orgs/${orgName(17)}/users/zoe`, { password: "zoe-first-password", access: ["files"] });
    const first = await login(`zoe@files.${orgName(17)}`, "zoe-first-password");
    expect(first.code, first.stderr).to.equal(0);

    await put(`/v1/orgs/${orgName(17)}/users/zoe`, { password: "zoe-second-password", access: ["files"] });
    const [before, after] = await Promise.all([
      login(`zoe@files.${orgName(17)}`, "zoe-first-password"),
      login(`zoe@files.${orgName(17)}`, "zoe-second-password"),
    ]);
    expect(before.code, before.stderr).to.equal(CURL_LOGIN_DENIED);
    expect(after.code, after.stderr).to.equal(0);
  });

  it("shuts an account out as soon as its removal answers", async function () {
    const user = `user3@files.${orgName(42)}`;
    expect((await login(user, BULK_PASSWORD)).code).to.equal(0);
    expect(orgAccounts(agent!.dataDir, orgName(42))).to.include(`${user}:`);

    expect((await api.delete(`/v1/orgs/${orgName(42)}/users/user3`)).status).to.equal(200);
    const tried = await login(user, BULK_PASSWORD);
    expect(tried.code, tried.stderr).to.equal(CURL_LOGIN_DENIED);
  });

  it("keeps logins working while the agent is stopped and started again", async function () {
    await put(`/v1/orgs/${orgName(5)}/users/yan`, { password: "yan-password-1", access: ["files"] });
    expect((await login(`yan@files.${orgName(5)}`, "yan-password-1")).code).to.equal(0);

    // A stopped agent has written every change to the PDB: pure-ftpd falls back to it once the
    // socket stays unreachable (its ~10 s of retries), for the account just created too.
    await agent!.stop();
    const [down, downBulk] = await Promise.all([
      login(`yan@files.${orgName(5)}`, "yan-password-1", 30_000),
      login(`user1@files.${orgName(9)}`, BULK_PASSWORD, 30_000),
    ]);
    expect(down.code, down.stderr).to.equal(0);
    expect(downBulk.code, downBulk.stderr).to.equal(0);
    const refused = await login(`yan@files.${orgName(5)}`, "wrong-password-1", 30_000);
    expect(refused.code, refused.stderr).to.equal(CURL_LOGIN_DENIED);

    // A login that starts while the agent is down succeeds across its start.
    const during = login(`user2@files.${orgName(0)}`, BULK_PASSWORD, 30_000);
    await agent!.restart();
    expect((await during).code).to.equal(0);
    await put(`/v1/orgs/${orgName(5)}/users/yan`, { password: "yan-password-2", access: ["files"] });
    const [oldPassword, newPassword] = await Promise.all([
      login(`yan@files.${orgName(5)}`, "yan-password-1"),
      login(`yan@files.${orgName(5)}`, "yan-password-2"),
    ]);
    expect(oldPassword.code, oldPassword.stderr).to.equal(CURL_LOGIN_DENIED);
    expect(newPassword.code, newPassword.stderr).to.equal(0);
  });

  it("keeps the extauth socket the agent's alone, and writes no password to its log", function () {
    const { authSocket } = ftpAuthOf(agent!.dataDir);
    const stat = fs.statSync(authSocket);
    expect(stat.isSocket()).to.equal(true);
    expect(stat.mode & 0o777).to.equal(0o600);
    expect(stat.uid).to.equal(process.getuid?.());
    const log = agent!.log();
    for (const secret of [BULK_PASSWORD, "zoe-first-password", "zoe-second-password", "yan-password-1"]) {
      expect(log).not.to.include(secret);
    }
  });
});
