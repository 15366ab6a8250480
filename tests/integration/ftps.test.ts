/**
 * FTPS, all real: two hosting nodes whose pure-ftpd require explicit FTPS (`--ftp-tls require`,
 * pure-ftpd `-Y 3` with one certificate for the load balancer's FTP name, 127.0.81.1 and
 * 127.0.81.2), the load balancer in front of them (HAProxy, 127.0.81.3, passing FTP through as
 * TCP), and a lone node that accepts FTPS or cleartext (`--ftp-tls accept`, `-Y 1`, 127.0.81.4).
 * The clients, basic-ftp and curl, check the certificate against the test's private CA on the
 * control connection and on every passive data connection.
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FTPError } from "basic-ftp";
import { AgentClient } from "../../provider/client";
import { routeOrg } from "../../provider/balancer";
import { syncOrg } from "../../provider/sync";
import type { BalancerStatus } from "../../wire";
import { CLI } from "../support/agent-process";
import { makeCa } from "../support/certificates";
import { runCli } from "../support/cli-run";
import { FtpSession, type FtpOpenOptions } from "../support/ftp-client";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { type HostingNode, nodeOfPassivePort, startBalancedNodes, startHostingNode } from "../support/hosting-node";
import { nasFolder } from "../support/nas";
import { nginxBinaryOrSkip } from "../support/nginx";
import { type FtpTlsSetup, ftpTry, pureFtpdOrSkip } from "../support/pureftpd";

const TOKEN = "ftps-test-token-0123456789abcdef";
const ORG = "acme";
const LONE_ORG = "beta";
/** The name clients reach the org's FTP by: the load balancer's, on every node's certificate. */
const FTP_NAME = "ftp.acme.test";
const PASSWORD = "alice-ftps-password-1";
const LOGIN = `alice@files.${ORG}`;
const LONE_LOGIN = `bob@files.${LONE_ORG}`;
const SESSIONS = 10;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every 100 ms until it returns true, at most `limitMs`. */
async function waitFor(what: string, limitMs: number, probe: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(100);
  }
}

/** What opening `options` fails with: the server's FTP code and message. */
async function refusal(options: FtpOpenOptions): Promise<{ code: number; message: string }> {
  const opened = await FtpSession.open(options).then(
    (session) => session,
    (error: unknown) => error,
  );
  if (opened instanceof FtpSession) {
    opened.destroy();
    throw new Error(`${options.user} logged in on ${options.host}:${options.port}`);
  }
  expect(opened).to.be.instanceOf(FTPError);
  return { code: (opened as FTPError).code, message: (opened as FTPError).message };
}

describe("FTPS: nodes that accept or require it, through the HAProxy load balancer (integration)", function () {
  this.timeout(120_000);
  let work: string;
  let content: string;
  let loneContent: string;
  let ca: string;
  let caFile: string;
  let curlBin: string;
  let primary: HostingNode;
  let secondary: HostingNode;
  let lb: HostingNode;
  let lone: HostingNode;
  let ftpListen: string;
  const sessions: FtpSession[] = [];
  const clientFor = (endpoint: string) => new AgentClient(endpoint, TOKEN, { timeoutMs: 60_000 });
  const lbStatus = async (): Promise<BalancerStatus> => clientFor(lb.url).balancerStatus(ORG);
  const tls = () => ({ ca, servername: FTP_NAME });

  /** A session on host:port ("host:port" of a node's pure-ftpd or the load balancer), closed after the test. */
  const open = async (address: string, user: string, secure = true): Promise<FtpSession> => {
    const [host, port] = address.split(":");
    const session = await FtpSession.open({
      host,
      port: Number(port),
      user,
      password: PASSWORD,
      ...(secure ? { tls: tls() } : {}),
    });
    sessions.push(session);
    return session;
  };
  const ftpAddress = (node: HostingNode) => `${node.ftp!.host}:${node.ftp!.port}`;

  before(async function () {
    const nginxBin = nginxBinaryOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    const ftp = pureFtpdOrSkip(this);
    curlBin = ftp.curl;
    work = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-ftps-"));
    const testCa = makeCa(work, "ftps");
    ca = testCa.certificate;
    caFile = testCa.certificateFile;
    // The node certificate as an operator installs it: the chain world-readable, the key root's alone.
    const issued = testCa.issue("node", { names: [FTP_NAME] });
    const certificateFile = path.join(work, "ftp-cert.pem");
    const keyFile = path.join(work, "ftp-key.pem");
    fs.writeFileSync(certificateFile, issued.chain, { mode: 0o644 });
    fs.writeFileSync(keyFile, issued.privateKey, { mode: 0o600 });
    const ftpTls = (mode: FtpTlsSetup["mode"]): FtpTlsSetup => ({ mode, certificateFile, keyFile });

    content = nasFolder("ftps", { [`${ORG}/files/readme.txt`]: "read me over TLS\n" });
    loneContent = nasFolder("ftps-lone", { [`${LONE_ORG}/files/readme.txt`]: "lone\n" });
    ({
      primary,
      secondary,
      balancer: lb,
      ftpAddress: ftpListen,
    } = await startBalancedNodes({
      hosts: ["127.0.81.1", "127.0.81.2", "127.0.81.3"],
      names: ["web-a", "web-b", "lb"],
      token: TOKEN,
      contentRoot: content,
      nginxBin,
      haproxyBin,
      ftp,
      ftpTls: ftpTls("require"),
    }));
    lone = await startHostingNode({
      host: "127.0.81.4",
      name: "web-c",
      token: TOKEN,
      contentRoot: loneContent,
      ftp,
      ftpTls: ftpTls("accept"),
    });

    const api = clientFor(primary.url);
    await api.putOrg(ORG, { loadBalanced: true, secondaries: [secondary.url] });
    await api.putService(ORG, "files", { kind: "ftp", rootPath: "files", writable: true });
    await api.putUser(ORG, "alice", { password: PASSWORD, access: ["files"] });
    const report = await syncOrg(api, ORG, clientFor);
    expect(report.inSync, JSON.stringify(report)).to.equal(true);
    await routeOrg({ name: ORG, primary: primary.url, loadBalancer: lb.url }, [primary.url, secondary.url], clientFor, {
      ftp: ftpListen,
    });

    // HAProxy's FTP check reads the 220 greeting, which pure-ftpd sends before any TLS.
    await waitFor("both nodes' FTP checks UP", 15_000, async () =>
      (await lbStatus()).nodes.every((node) => node.ftp?.status === "UP"),
    );

    const loneApi = clientFor(lone.url);
    await loneApi.putOrg(LONE_ORG, {});
    await loneApi.putService(LONE_ORG, "files", { kind: "ftp", rootPath: "files", writable: true });
    await loneApi.putUser(LONE_ORG, "bob", { password: PASSWORD, access: ["files"] });
  });

  afterEach(function () {
    for (const session of sessions.splice(0)) session.destroy();
  });

  after(async function () {
    const stops = await Promise.allSettled([lb, secondary, primary, lone].map((node) => node?.stop()));
    for (const folder of [content, loneContent, work]) if (folder) fs.rmSync(folder, { recursive: true, force: true });
    const failed = stops.find((stop): stop is PromiseRejectedResult => stop.status === "rejected");
    if (failed) throw failed.reason;
  });

  it("GET /v1/node tells how each node takes FTPS", async function () {
    for (const [node, mode] of [
      [primary, "require"],
      [secondary, "require"],
      [lone, "accept"],
    ] as const) {
      expect((await clientFor(node.url).nodeInfo()).ftpTls, node.name).to.equal(mode);
    }
  });

  it("lbhosting status --load-balancer shows that the org's nodes require FTPS", async function () {
    const args = ["status", "--org", ORG, "--primary", primary.url, "--secondary", secondary.url];
    const withLb = [...args, "--load-balancer", lb.url];
    const json = await runCli([...withLb, "--json"], { LBHOSTING_TOKEN: TOKEN });
    expect(json.code, json.stderr).to.equal(0);
    const report = JSON.parse(json.stdout) as { loadBalancer: { nodes: Array<{ name: string; ftpTls?: string }> } };
    expect(report.loadBalancer.nodes.map((node) => [node.name, node.ftpTls])).to.deep.equal([
      ["web-a", "require"],
      ["web-b", "require"],
    ]);
    const table = await runCli(withLb, { LBHOSTING_TOKEN: TOKEN });
    expect(table.stdout).to.match(new RegExp(`${secondary.url}\\s.*UP, 0 open, FTPS required`));
  });

  it("an agent refuses to start with an --ftp-tls mode it does not know, naming the choices", function () {
    const data = fs.mkdtempSync(path.join(work, "refused-"));
    const args = [CLI, "agent", "--listen", "127.0.81.5:0", "--data", data, "--name", "x", "--ftp-tls", "required"];
    const result = spawnSync(process.execPath, args, {
      env: { ...process.env, LBHOSTING_AGENT_TOKEN: TOKEN },
      encoding: "utf8",
      timeout: 10_000,
    });
    expect(result.status).to.not.equal(0);
    expect(result.stderr).to.include("--ftp-tls").and.include("off, accept, require");
  });

  it("accept: a node takes an FTPS login and a cleartext one alike", async function () {
    const secure = await open(ftpAddress(lone), LONE_LOGIN);
    expect(await secure.list()).to.deep.equal(["readme.txt"]);
    await secure.store("over-tls.txt", "sealed\n");
    const clear = await open(ftpAddress(lone), LONE_LOGIN, false);
    expect(await clear.retrieve("over-tls.txt")).to.equal("sealed\n");
    await Promise.all([secure.quit(), clear.quit()]);
  });

  it("curl --ssl-reqd: downloads and uploads over FTPS through the load balancer; without TLS its login is refused", async function () {
    const url = `ftp://${ftpListen}`;
    const login = { url, user: LOGIN, password: PASSWORD, curl: curlBin };
    const secure = { ...login, tls: { caFile, servername: FTP_NAME } };
    expect(await ftpTry({ ...secure, download: "readme.txt" })).to.include({ ok: true, content: "read me over TLS\n" });
    expect((await ftpTry({ ...secure, upload: { name: "by-curl.txt", content: "curl\n" } })).ok).to.equal(true);
    expect(fs.readFileSync(path.join(content, ORG, "files", "by-curl.txt"), "utf8")).to.equal("curl\n");
    const clear = await ftpTry({ ...login, download: "readme.txt" });
    expect(clear.ok).to.equal(false);
    expect(clear.content).to.equal("");
  });

  it("the client checks the node's certificate: a name it does not cover fails the TLS handshake", async function () {
    const [host, port] = ftpListen.split(":");
    const login = { host, port: Number(port), user: LOGIN, password: PASSWORD };
    const failed = await FtpSession.open({ ...login, tls: { ca, servername: "ftp.other.test" } }).then(
      (session) => session.destroy(),
      (error: NodeJS.ErrnoException) => error,
    );
    expect(failed).to.have.property("code", "ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("require: a cleartext login is refused before its password is sent, on a node and through the load balancer", async function () {
    for (const address of [ftpAddress(primary), ftpListen]) {
      const [host, port] = address.split(":");
      const refused = await refusal({ host, port: Number(port), user: LOGIN, password: PASSWORD });
      // The answer to USER: the connection closes, and PASS is never sent.
      expect(refused.code, address).to.equal(421);
      expect(refused.message, address).to.match(/cleartext sessions .* are not accepted/);
    }
  });

  it("require: after an FTPS login, a cleartext data connection is refused too", async function () {
    const session = await open(ftpAddress(secondary), LOGIN);
    await session.send("PROT C");
    const listed = await session.list().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(listed).to.be.instanceOf(FTPError);
    expect((listed as FTPError).code).to.equal(521);
    await session.quit();
  });

  it(`through the load balancer: ${SESSIONS} FTPS sessions list, download and upload, each with its data on its own node`, async function () {
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => open(ftpListen, LOGIN)));
    const results = await Promise.all(
      clients.map(async (session, index) => {
        const names = await session.list();
        const readme = await session.retrieve("readme.txt");
        await session.store(`upload-${index}.txt`, `from FTPS client ${index}\n`);
        const back = await session.retrieve(`upload-${index}.txt`);
        return { names, readme, back };
      }),
    );
    // Each session's node, from the passive range of its data ports: all of them one node's.
    const nodesSeen = clients.map((session) =>
      session.passive.map((address) => nodeOfPassivePort(address.port, [primary, secondary])),
    );
    const nodes = nodesSeen.map((seen) => seen[0]);
    const perNode = nodes.reduce<Record<string, number>>(
      (count, node) => ({ ...count, [node]: (count[node] ?? 0) + 1 }),
      {},
    );
    const counted = Object.fromEntries((await lbStatus()).nodes.map((node) => [node.name, node.ftp?.active]));
    console.log(
      `      FTPS: ${SESSIONS} sessions through the LB, per node ${JSON.stringify(perNode)}; LB counts open ${JSON.stringify(counted)}`,
    );

    for (const [index, seen] of nodesSeen.entries()) {
      expect(seen, `session ${index}: 4 data connections`).to.have.length(4);
      expect(new Set(seen).size, `session ${index}: its data connections stay on one node`).to.equal(1);
    }
    expect(Object.keys(perNode).sort(), "sessions on both nodes").to.deep.equal(["web-a", "web-b"]);
    // The control connections the LB counts per node are the sessions whose data went there.
    expect(counted).to.deep.equal(perNode);
    const passiveHosts = new Set(clients.flatMap((session) => session.passive.map((address) => address.host)));
    expect([...passiveHosts], "data connections go to the load balancer").to.deep.equal(["127.0.81.3"]);
    for (const [index, { names, readme, back }] of results.entries()) {
      expect(names).to.include("readme.txt");
      expect(readme).to.equal("read me over TLS\n");
      expect(back).to.equal(`from FTPS client ${index}\n`);
      expect(fs.readFileSync(path.join(content, ORG, "files", `upload-${index}.txt`), "utf8")).to.equal(back);
    }
    await Promise.all(clients.map((session) => session.quit()));
  });
});
