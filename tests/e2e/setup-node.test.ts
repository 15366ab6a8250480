/**
 * docs/setup-node.md, followed literally on loopback: each part's settings get loopback addresses
 * and temporary folders, every other `sh` block runs as written, with two stand-ins the machine
 * needs (tests/support/systemd-standin.sh: packages are checked rather than installed, and units
 * start as systemd would start them). Then the quick start puts an organization on the node
 * behind the load balancer with `pulumi up`, its user uploads the site's page over FTPS through
 * the load balancer (FTPS required: a cleartext login is refused), and the page answers over
 * HTTP through the load balancer.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { FTPError } from "basic-ftp";
import { shellQuote } from "../../sdk/hosting-node/scripts";
import { makeCa } from "../support/certificates";
import { findHaproxy } from "../support/haproxy";
import { FtpSession } from "../support/ftp-client";
import { findNginx } from "../support/nginx";
import { freePort } from "../support/ports";
import { localPrebuilds } from "../support/prebuilds";
import { processGone } from "../support/processes";
import { createProjectFolder, exampleDir, packWorkspace, type ProjectFolder } from "../support/project";
import { findFtpBinaries } from "../support/pureftpd";
import { REPO_ROOT, requirePulumi } from "../support/pulumi";
import { requireTool } from "../support/requirements";

const NODE_HOST = "127.0.34.1";
const LB_HOST = "127.0.34.2";
const PUBLIC_HOST = "127.0.34.3";
/** The load balancer's FTP name: what FTPS clients check the node's certificate against. */
const FTP_NAME = "ftp.acme.test";
const SCRIPT_TIMEOUT_MS = 10 * 60_000;

const readPage = (): string => fs.readFileSync(path.join(REPO_ROOT, "docs", "setup-node.md"), "utf8");

/** The `sh` blocks of one part of the page ("## Part 1: …"), in order. */
function partBlocks(doc: string, part: string): string[] {
  const start = doc.indexOf(`## ${part}`);
  expect(start, `docs/setup-node.md has "## ${part}"`).to.be.at.least(0);
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]);
}

/**
 * The settings block with this test's values: every setting the page has must get one here, so
 * a setting added to the page fails the test until it has a loopback value.
 */
function withSettings(block: string, values: Record<string, string>): string {
  const names: string[] = [];
  const lines = block
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const name = /^([A-Z_]+)=/.exec(line)?.[1];
      if (!name) throw new Error(`a settings line is not NAME=value: ${line}`);
      if (!(name in values)) throw new Error(`docs/setup-node.md: no loopback value for the setting ${name}`);
      names.push(name);
      return `${name}=${shellQuote(values[name])}`;
    });
  expect(names).to.have.members(Object.keys(values));
  return lines.join("\n");
}

/** Runs one part of the page as a bash script, bounded; rejects with its output on failure. */
function runPart(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), SCRIPT_TIMEOUT_MS);
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`the page's blocks failed (exit ${code}):\n${output.slice(-6000)}`));
    });
  });
}

/** The units the stand-in started, as "<unit> <pid>" lines. */
function startedUnits(pidsFile: string): { unit: string; pid: number }[] {
  if (!fs.existsSync(pidsFile)) return [];
  return fs
    .readFileSync(pidsFile, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [unit, pid] = line.split(" ");
      return { unit, pid: Number(pid) };
    });
}

/** Stops a unit's process group (each runs in a session of its own), SIGKILL after 10 s. */
async function stopUnit(pid: number): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pid, name);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  for (let i = 0; i < 100 && !processGone(pid); i++) await sleep(100);
  signal("SIGKILL");
}

/** GET through the load balancer with a Host header: status and body, bounded. */
async function viaBalancer(url: string, host: string): Promise<{ status: number; body: string }> {
  const { request } = await import("undici");
  const answer = await request(url, { headers: { host }, headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: answer.statusCode, body: await answer.body.text() };
}

describe("e2e: a hosting node and a load-balancer host set up as docs/setup-node.md says", function () {
  let root: string;
  let project: ProjectFolder | undefined;
  const pidFiles: string[] = [];

  before(function () {
    requireTool(this, "root", () => (process.getuid?.() === 0 ? true : undefined), "run the tests as root");
    requireTool(this, "nginx", findNginx, "apt-get install -y nginx");
    requireTool(this, "pure-ftpd", findFtpBinaries, "apt-get install -y pure-ftpd curl");
    requireTool(this, "haproxy", findHaproxy, "apt-get install -y haproxy");
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-setup-node-"));
    // nginx's workers (www-data) must reach the content root through every folder above it.
    fs.chmodSync(root, 0o755);
  });

  after(async function () {
    this.timeout(120_000);
    if (project) {
      await project.destroy().catch(() => undefined);
      project.cleanup();
    }
    for (const file of pidFiles) {
      for (const { pid } of startedUnits(file).reverse()) await stopUnit(pid);
    }
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("both parts run as written; an org's FTPS upload through the load balancer is served through it", async function () {
    const bin = requirePulumi(this);
    const doc = readPage();
    const standIn = fs.readFileSync(path.join(REPO_ROOT, "tests", "support", "systemd-standin.sh"), "utf8");
    const agentPackage = packWorkspace().agent;
    const prebuilds = localPrebuilds(path.join(root, "prebuilds"));
    // The FTPS certificate the operator brings, from a private CA the FTP client trusts.
    const ca = makeCa(root, "ftps");
    const ftpCert = ca.issue("ftp", { names: [FTP_NAME] });
    const ftpFiles = { FTP_CERT: path.join(root, "ftp-cert.pem"), FTP_KEY: path.join(root, "ftp-key.pem") };
    fs.writeFileSync(ftpFiles.FTP_CERT, ftpCert.chain);
    fs.writeFileSync(ftpFiles.FTP_KEY, ftpCert.privateKey, { mode: 0o600 });
    const port = {
      nodeAgent: await freePort(NODE_HOST),
      nodeHttp: await freePort(NODE_HOST),
      nodeFtp: await freePort(NODE_HOST),
      lbAgent: await freePort(LB_HOST),
      lbHttp: await freePort(PUBLIC_HOST),
      lbFtp: await freePort(PUBLIC_HOST),
    };
    const hostFolders = (host: string) => {
      const base = path.join(root, host);
      return {
        DATA_DIR: path.join(base, "var/lib/lbhosting"),
        CONF_DIR: path.join(base, "etc/lbhosting"),
        RUN_DIR: path.join(base, "run/lbhosting"),
        UNIT_DIR: path.join(base, "etc/systemd/system"),
        AGENT_PREFIX: path.join(base, "opt/lbhosting"),
        AGENT_PACKAGE: agentPackage,
      };
    };
    const node = {
      NODE_NAME: "web1",
      NODE_ADDR: NODE_HOST,
      AGENT_PORT: String(port.nodeAgent),
      HTTP_PORT: String(port.nodeHttp),
      FTP_PORT: String(port.nodeFtp),
      PASSIVE_PORTS: "34100:34119",
      FTP_PUBLIC_HOST: PUBLIC_HOST,
      FTP_MAX_SESSIONS: "10",
      FTP_TLS: "require",
      ...ftpFiles,
      ORG_ID_RANGE: "200000-999999",
      CONTENT_ROOT: path.join(root, "srv/nas"),
      LOG_DIR: path.join(root, "node/var/log/lbhosting"),
      ...hostFolders("node"),
    };
    const lb = {
      LB_NAME: "lb1",
      LB_ADDR: LB_HOST,
      PUBLIC_ADDR: PUBLIC_HOST,
      AGENT_PORT: String(port.lbAgent),
      HTTP_PORT: String(port.lbHttp),
      ...hostFolders("lb"),
    };

    for (const [part, settings] of [
      ["Part 1", node],
      ["Part 2", lb],
    ] as const) {
      fs.mkdirSync(settings.UNIT_DIR, { recursive: true });
      const logs = fs.mkdtempSync(path.join(root, "unit-logs-"));
      const pids = path.join(logs, "pids");
      pidFiles.push(pids);
      const [settingsBlock, ...steps] = partBlocks(doc, part);
      const script = [standIn, withSettings(settingsBlock, settings), ...steps].join("\n");
      await runPart(script, root, {
        ...process.env,
        npm_config_better_sqlite3_local_prebuilds: prebuilds,
        LBH_UNIT_PIDS: pids,
        LBH_UNIT_LOGS: logs,
      });
      const units = startedUnits(pids).map(({ unit }) => unit);
      expect(units, `${part}: units started, in order`).to.deep.equal(
        part === "Part 1"
          ? ["lbhosting-nginx", "lbhosting-agent", "lbhosting-pure-ftpd"]
          : ["lbhosting-agent", "lbhosting-haproxy"],
      );
    }
    for (const [settings, file] of [
      [node, "agent.token"],
      [lb, "agent.token"],
      [node, "ftp-key.pem"],
    ] as const) {
      const mode = fs.statSync(path.join(settings.CONF_DIR, file)).mode & 0o777;
      expect(mode.toString(8), `${file}'s mode`).to.equal("600");
    }

    const nodeUrl = `http://${NODE_HOST}:${port.nodeAgent}`;
    const lbUrl = `http://${LB_HOST}:${port.lbAgent}`;
    const token = (settings: { CONF_DIR: string }) =>
      fs.readFileSync(path.join(settings.CONF_DIR, "agent.token"), "utf8").trim();
    project = await createProjectFolder(bin, { source: exampleDir("quickstart") });
    for (const [key, value] of Object.entries({
      primary: nodeUrl,
      loadBalancer: lbUrl,
      loadBalancerFtp: `${PUBLIC_HOST}:${port.lbFtp}`,
    })) {
      await project.configSet(key, value);
    }
    await project.configSet("lbhosting:tokens", JSON.stringify({ [nodeUrl]: token(node), [lbUrl]: token(lb) }), {
      secret: true,
    });
    await project.configSet("alicePassword", "alice-setup-node-pw", { secret: true });
    await project.configSet("bobPassword", "bob-setup-node-pw", { secret: true });
    await project.up();

    // alice's FTP service is the org's folder: she uploads the site's page over FTPS, through the
    // load balancer; the node requires FTPS, so her cleartext login is refused.
    const sitePage = "<h1>Acme, set up by the book</h1>\n";
    const login = { host: PUBLIC_HOST, port: port.lbFtp, user: "alice@ftp.acme", password: "alice-setup-node-pw" };
    const clear = await FtpSession.open(login).then(
      (opened) => opened.destroy(),
      (error: unknown) => error,
    );
    expect(clear).to.be.instanceOf(FTPError).and.to.have.property("code", 421);
    const session = await FtpSession.open({ ...login, tls: { ca: ca.certificate, servername: FTP_NAME } });
    try {
      await session.ensureDir("www");
      await session.store("index.html", sitePage);
    } finally {
      await session.quit();
    }
    expect(fs.readFileSync(path.join(node.CONTENT_ROOT, "acme", "www", "index.html"), "utf8")).to.equal(sitePage);

    // HAProxy's health check takes the node in once its site can be served (bounded wait).
    let answer = { status: 0, body: "" };
    for (let attempt = 0; attempt < 60 && answer.body !== sitePage; attempt++) {
      answer = await viaBalancer(`http://${PUBLIC_HOST}:${port.lbHttp}/`, "www.acme.test").catch(() => answer);
      if (answer.body !== sitePage) await sleep(500);
    }
    expect(answer).to.deep.equal({ status: 200, body: sitePage });

    await project.preview({ expectNoChanges: true });
    await project.destroy();
  });
});
