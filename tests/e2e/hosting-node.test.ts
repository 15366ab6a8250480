/**
 * HostingNode over real SSH, run as a user runs examples/bare-servers: our own sshd on loopback
 * stands in for three bare servers (distinct addresses, install and data folders). Two are hosting
 * nodes (a real nginx and pure-ftpd each, started here: HostingNode does not run them) and the
 * third the load balancer (role "load-balancer": HostingNode runs HAProxy there itself). One
 * `pulumi up` in the project folder installs the packed agent on each, serving HTTPS with a
 * certificate from a private CA (openssl) that the stack trusts through lbhosting:caCertificate,
 * and puts a load-balanced organization on them, whose site and FTP answer through that HAProxy.
 * Then an agent upgrade with a new certificate (HAProxy keeps running), the secret scan, a wrong
 * CA, destroy (no agent or HAProxy left), and a missing prerequisite.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import { AgentClient } from "../../provider/client";
import { makeAgentCa, type AgentCa, type AgentCertificate } from "../support/agent-tls";
import { FtpSession } from "../support/ftp-client";
import { haproxyBinaryOrSkip } from "../support/haproxy";
import { getSite } from "../support/http-get";
import { nginxBinaryOrSkip, startNginx, type NginxProcess } from "../support/nginx";
import { canConnect, freePort } from "../support/ports";
import { localPrebuilds } from "../support/prebuilds";
import { createProjectFolder, exampleDir, packWorkspace, repackAgent, type ProjectFolder } from "../support/project";
import { requirePulumi } from "../support/pulumi";
import { ftpAuthOf, passivePortsOf, pureFtpdOrSkip, startPureFtpd, type PureFtpdProcess } from "../support/pureftpd";
import { startSshd, type Sshd } from "../support/sshd";

const TOKEN = "hosting-node-e2e-token-0123456789abcdef";
const PASSWORD = "webmaster-pw-0123";
/** Two hosting nodes, then the load balancer. */
const HOSTS = ["127.0.12.1", "127.0.12.2", "127.0.12.3"];
const SITE = "www.acme.test";
const PAGE = "acme, served through the load balancer\n";

interface Server {
  name: string;
  host: string;
  port: number;
  user: string;
  listen: string;
  installDir: string;
  dataDir: string;
  tlsCertFile: string;
  tlsKeyFile: string;
}

/** The SHA-256 fingerprint of the certificate an HTTPS agent at host:port serves. */
function servedFingerprint(listen: string, ca: string): Promise<string> {
  const [host, port] = listen.split(":");
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: Number(port), ca }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? "none");
      socket.end();
    });
    socket.on("error", reject);
  });
}

/** Command lines of every process on the machine, from /proc. */
function processCommandLines(): { pid: number; args: string; environ: string }[] {
  const read = (pid: string, file: string) => {
    try {
      return fs.readFileSync(`/proc/${pid}/${file}`, "utf8").replace(/\0/g, " ");
    } catch {
      return "";
    }
  };
  return fs
    .readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map((pid) => ({ pid: Number(pid), args: read(pid, "cmdline"), environ: read(pid, "environ") }));
}

describe("e2e: HostingNode over real SSH, bare servers to a load-balanced org (examples/bare-servers)", function () {
  let sshd: Sshd;
  let project: ProjectFolder;
  let root: string;
  let contentRoot: string;
  /** The two hosting nodes, then the load balancer. */
  let servers: Server[];
  let webServers: Server[];
  let lb: Server;
  /** Where HAProxy serves the sites, and accepts the org's FTP sessions. */
  let lbHttp: string;
  let lbFtp: { host: string; port: number };
  let upgradePackage: string;
  /** The agents' private CA, and each server's certificate (by name). */
  let ca: AgentCa;
  const certificates = new Map<string, AgentCertificate>();
  const nginxes: NginxProcess[] = [];
  const ftpServers: PureFtpdProcess[] = [];
  const pidOf = (server: Server, file = "agent.pid") =>
    Number(fs.readFileSync(path.join(server.installDir, file), "utf8"));
  const client = (server: Server) =>
    new AgentClient(`https://${server.listen}`, TOKEN, { retries: 0, ca: [ca.certificate] });
  const haproxyDir = () => path.join(lb.installDir, "haproxy");

  /** The site through HAProxy, until it answers 200 (its checks may not have passed yet); bounded. */
  async function siteThroughBalancer(): Promise<{ body: string; servedBy: string | undefined }> {
    let last = "no answer";
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        const answer = await getSite(`http://${lbHttp}/`, SITE);
        if (answer.status === 200) return answer;
        last = `status ${answer.status}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${SITE} through ${lbHttp}: ${last}`);
  }

  before(async function () {
    const bin = requirePulumi(this);
    const nginxBin = nginxBinaryOrSkip(this);
    const ftpBins = pureFtpdOrSkip(this);
    const haproxyBin = haproxyBinaryOrSkip(this);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-bare-servers-"));
    // nginx's workers and the FTP accounts' uid walk down to the content (the "NAS").
    fs.chmodSync(root, 0o755);
    contentRoot = path.join(root, "nas");
    fs.mkdirSync(path.join(contentRoot, "acme", "www"), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(contentRoot, "acme", "www", "index.html"), PAGE, { mode: 0o644 });
    sshd = await startSshd(this, {
      hosts: HOSTS,
      extraConfig: [`SetEnv npm_config_better_sqlite3_local_prebuilds=${localPrebuilds(path.join(root, "prebuilds"))}`],
    });
    packWorkspace();
    upgradePackage = repackAgent("0.1.1-upgrade.1");
    // As README's "HTTPS agents" says: a private CA, a certificate per agent naming its address.
    ca = makeAgentCa(path.join(root, "tls"), "agents");
    servers = await Promise.all(
      HOSTS.map(async (host, index) => {
        const name = index < 2 ? `web${index + 1}` : "lb";
        const certificate = ca.issue(name, host);
        certificates.set(name, certificate);
        return {
          tlsCertFile: certificate.certificateFile,
          tlsKeyFile: certificate.privateKeyFile,
          name,
          host,
          port: sshd.port,
          user: sshd.user,
          listen: `${host}:${await freePort(host)}`,
          installDir: path.join(root, name, "opt"),
          dataDir: path.join(root, name, "data"),
        };
      }),
    );
    webServers = servers.slice(0, 2);
    lb = servers[2];
    lbHttp = `${lb.host}:${await freePort(lb.host)}`;
    lbFtp = { host: lb.host, port: await freePort(lb.host) };

    // What HostingNode leaves to the operator on each hosting node: nginx including the agent's
    // site folder, and pure-ftpd asking the agent (its PDB while it is down), its passive range its own, advertising the
    // load balancer's address for passive mode.
    const hostingNodes = [];
    for (const server of webServers) {
      const confDir = path.join(root, server.name, "sites");
      fs.mkdirSync(confDir, { recursive: true });
      const nginx = await startNginx({ bin: nginxBin, host: server.host, includeDirs: [confDir] });
      nginxes.push(nginx);
      const passivePorts = passivePortsOf(server.host);
      const ftp = await startPureFtpd({
        bin: ftpBins.pureFtpd,
        host: server.host,
        ...ftpAuthOf(server.dataDir),
        passivePorts,
        passiveAddress: lb.host,
      });
      ftpServers.push(ftp);
      hostingNodes.push({
        ...server,
        contentRoot,
        nginx: { bin: nginx.bin, mainConf: nginx.mainConf, prefix: nginx.prefix, confDir, httpListen: nginx.listen },
        ftp: {
          purePwBin: ftpBins.purePw,
          ftpListen: `${server.host}:${ftp.port}`,
          passivePorts,
        },
      });
    }

    project = await createProjectFolder(bin, { source: exampleDir("bare-servers") });
    await project.configSet("servers", JSON.stringify(hostingNodes));
    await project.configSet(
      "loadBalancer",
      JSON.stringify({ ...lb, haproxy: { bin: haproxyBin, httpListen: lbHttp } }),
    );
    await project.configSet("loadBalancerFtp", `${lbFtp.host}:${lbFtp.port}`);
    await project.configSet("agentPackage", packWorkspace().agent);
    await project.configSet("sshPrivateKey", sshd.privateKey, { secret: true });
    await project.configSet("lbhosting:token", TOKEN, { secret: true });
    await project.configSet("lbhosting:caCertificate", ca.certificate);
    await project.configSet("webmasterPassword", PASSWORD, { secret: true });
  });

  after(async () => {
    // A failed test may leave agents running: the stack's own destroy stops them.
    await project?.destroy().catch(() => undefined);
    project?.cleanup();
    // And anything an install that failed half-way left running under our folders, by pid.
    for (const entry of root ? processCommandLines().filter((candidate) => candidate.args.includes(root)) : []) {
      try {
        process.kill(entry.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const ftp of ftpServers) await ftp.stop();
    for (const nginx of nginxes) await nginx.stop();
    await sshd?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("one pulumi up makes two hosting nodes and their load balancer, HTTPS agents the stack trusts through lbhosting:caCertificate; the org's site and FTP answer through HAProxy", async () => {
    // The CA comes from stack config only, never from the environment (which may name the system's).
    const extraCas = project.env.NODE_EXTRA_CA_CERTS;
    if (extraCas) expect(fs.readFileSync(extraCas, "utf8")).to.not.include(ca.certificate.split("\n")[1]);
    const started = Date.now();
    await project.up();
    console.log(`      bare servers → in-sync org: pulumi up took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const outputs = await project.outputs();
    expect(outputs.inSync).to.equal(true);
    expect(outputs.nodes).to.deep.equal(
      webServers.map((server) => ({ name: server.name, url: `https://${server.listen}`, version: "0.1.0" })),
    );
    expect(outputs.loadBalancer).to.deep.equal({ name: "lb", url: `https://${lb.listen}`, version: "0.1.0" });
    for (const server of servers) {
      // Each agent serves the certificate it was given, and nothing in clear.
      expect(await servedFingerprint(server.listen, ca.certificate), server.name).to.equal(
        new X509Certificate(certificates.get(server.name)!.certificate).fingerprint256,
      );
      const plain = await fetch(`http://${server.listen}/v1/health`).then(
        (answer) => `HTTP ${answer.status}`,
        (error: Error) => error.message,
      );
      expect(plain, `${server.name} over plain HTTP`).to.not.match(/^HTTP 200/);
    }
    const digests = await Promise.all(webServers.map(async (server) => (await client(server).getOrg("acme")).digest));
    expect(new Set(digests).size).to.equal(1);
    for (const server of servers) {
      expect(fs.existsSync(`/proc/${pidOf(server)}`), server.name).to.equal(true);
      // The install built the agent's crypt(3) binding: the agent hashes passwords natively.
      const installed = path.join(server.installDir, "node_modules", "lbhosting-agent");
      expect(fs.existsSync(path.join(installed, "build", "Release", "crypt.node")), server.name).to.equal(true);
      expect(fs.readFileSync(path.join(server.installDir, "agent.log"), "utf8")).to.not.include("hashed in JavaScript");
    }

    // HostingNode runs HAProxy on the load balancer, with the main file it wrote.
    expect(fs.existsSync(`/proc/${pidOf(lb, "haproxy.pid")}`), "HAProxy's supervisor").to.equal(true);
    const mainConf = path.join(haproxyDir(), "haproxy.cfg");
    expect(fs.readFileSync(mainConf, "utf8")).to.include(
      `stats socket ${path.join(haproxyDir(), "admin.sock")} mode 600 level admin expose-fd listeners`,
    );
    expect(fs.statSync(mainConf).mode & 0o777).to.equal(0o644);
    expect(fs.statSync(path.join(haproxyDir(), "master.sock")).mode & 0o077).to.equal(0);
    const route = await client(lb).getRoute("acme");
    expect(route.backends.map((backend) => backend.name).sort()).to.deep.equal(["web1", "web2"]);

    // The site through HAProxy, served by the nodes' own nginx.
    const servedBy = new Set<string | undefined>();
    for (let attempt = 0; attempt < 40 && servedBy.size < 2; attempt++) {
      const answer = await siteThroughBalancer();
      expect(answer.body).to.equal(PAGE);
      servedBy.add(answer.servedBy);
    }
    expect([...servedBy].sort()).to.deep.equal(["web1", "web2"]);

    // The webmaster's FTP login through HAProxy's FTP address; data connections follow it there.
    const session = await FtpSession.open({ ...lbFtp, user: "webmaster@files.acme", password: PASSWORD });
    try {
      await session.store("hello.txt", "hello through the load balancer\n");
      expect(await session.list()).to.deep.equal(["hello.txt"]);
      expect(session.passive.map((address) => address.host)).to.deep.equal([lb.host, lb.host]);
      const ranges = webServers.map((server) => passivePortsOf(server.host));
      for (const { port } of session.passive) {
        expect(
          ranges.some(([low, high]) => port >= low && port <= high),
          `passive port ${port}`,
        ).to.equal(true);
      }
    } finally {
      await session.quit();
    }
    expect(fs.readFileSync(path.join(contentRoot, "acme", "files", "hello.txt"), "utf8")).to.equal(
      "hello through the load balancer\n",
    );

    await project.preview({ expectNoChanges: true });
    await project.refresh({ expectNoChanges: true });
  });

  it("a new agent package version upgrades every node in place, and a new certificate is served; HAProxy keeps running; the org stays in sync", async () => {
    const before = await client(webServers[0]).getOrg("acme");
    const haproxySupervisor = pidOf(lb, "haproxy.pid");
    await project.configSet("agentPackage", upgradePackage);
    // web2 gets a new certificate (and key) in the same up: its install runs again with them.
    const [web1, web2] = webServers;
    const renewed = ca.issue("web2-renewed", web2.host);
    certificates.set(web2.name, renewed);
    web2.tlsCertFile = renewed.certificateFile;
    web2.tlsKeyFile = renewed.privateKeyFile;
    const config = JSON.parse((await project.pulumi(["config", "get", "servers"])).stdout) as Server[];
    await project.configSet(
      "servers",
      JSON.stringify(config.map((entry) => (entry.name === web2.name ? { ...entry, ...web2 } : entry))),
    );
    await project.up();
    expect(await servedFingerprint(web2.listen, ca.certificate)).to.equal(
      new X509Certificate(renewed.certificate).fingerprint256,
    );
    expect(await servedFingerprint(web1.listen, ca.certificate)).to.equal(
      new X509Certificate(certificates.get(web1.name)!.certificate).fingerprint256,
    );
    const outputs = (await project.outputs()) as {
      inSync: boolean;
      nodes: { version: string }[];
      loadBalancer: { version: string };
    };
    expect(outputs.inSync).to.equal(true);
    expect(outputs.nodes.map((node) => node.version)).to.deep.equal(webServers.map(() => "0.1.1-upgrade.1"));
    expect(outputs.loadBalancer.version).to.equal("0.1.1-upgrade.1");
    for (const server of servers) expect((await client(server).health()).version).to.equal("0.1.1-upgrade.1");
    for (const server of webServers) {
      const org = await client(server).getOrg("acme");
      expect(org.digest, server.name).to.equal(before.digest);
    }
    expect((await client(webServers[1]).listUsers("acme")).map((user) => user.username)).to.deep.equal(["webmaster"]);
    expect(pidOf(lb, "haproxy.pid"), "HAProxy was not restarted").to.equal(haproxySupervisor);
    expect((await siteThroughBalancer()).body).to.equal(PAGE);
    await project.refresh({ expectNoChanges: true });
  });

  it("the token appears in no log, command line, process environment or plain state", async () => {
    const state = JSON.stringify(await project.exportState());
    const logs = servers.map((server) => fs.readFileSync(path.join(server.installDir, "agent.log"), "utf8"));
    const processes = processCommandLines();
    const agentProcesses = processes.filter((process) => process.args.includes(webServers[0].installDir));
    expect(agentProcesses.length, "the supervisor and the agent run").to.be.greaterThan(1);
    const places: [string, string][] = [
      ["the CLI's output", project.log()],
      ["plain state", state],
      ["sshd's log", sshd.log()],
      ...logs.map((log, index): [string, string] => [`${servers[index].name}'s agent log`, log]),
      ["HAProxy's log", fs.readFileSync(path.join(lb.installDir, "haproxy.log"), "utf8")],
      ["HAProxy's main file", fs.readFileSync(path.join(haproxyDir(), "haproxy.cfg"), "utf8")],
      ["command lines", processes.map((process) => process.args).join("\n")],
      ["agent environments", agentProcesses.map((process) => process.environ).join("\n")],
    ];
    // A line of each agent's TLS key (the ones given first, and web2's new one).
    const keyLines = [...certificates.values()].map((certificate) => certificate.privateKey.split("\n")[1]);
    for (const [place, text] of places) {
      expect(text.includes(TOKEN), `the token is in ${place}`).to.equal(false);
      expect(text.includes(sshd.privateKey.split("\n")[1]), `the SSH key is in ${place}`).to.equal(false);
      for (const line of keyLines) expect(text.includes(line), `a TLS key is in ${place}`).to.equal(false);
    }
    expect(fs.statSync(path.join(webServers[0].installDir, "token")).mode & 0o077).to.equal(0);
    for (const server of servers) {
      const key = path.join(server.installDir, "tls-key.pem");
      expect(fs.statSync(key).mode & 0o777, `${server.name}'s TLS key`).to.equal(0o600);
      expect(fs.statSync(key).uid).to.equal(fs.statSync(path.join(server.installDir, "token")).uid);
      expect(fs.readFileSync(key, "utf8")).to.equal(certificates.get(server.name)!.privateKey);
    }
    // The command plugin ran from PULUMI_HOME, where the harness installed it, as a user's would.
    expect(project.log()).to.not.include("pulumi-resource-command from $PATH");
  });

  it("a wrong CA in lbhosting:caCertificate fails the up, naming the node and the TLS error", async () => {
    const other = makeAgentCa(path.join(root, "tls"), "other");
    await project.configSet("lbhosting:caCertificate", other.certificate);
    // A new password: the provider must reach the primary to apply it.
    await project.configSet("webmasterPassword", `${PASSWORD}-new`, { secret: true });
    let failure: string;
    try {
      failure = await project.up().then(
        () => "succeeded",
        (error: Error) => error.message,
      );
    } finally {
      // The right CA and the old password again, whatever happened: the next tests need them.
      await project.configSet("lbhosting:caCertificate", ca.certificate);
      await project.configSet("webmasterPassword", PASSWORD, { secret: true });
    }
    const expected = `https://${webServers[0].listen} is unreachable: UNABLE_TO_VERIFY_LEAF_SIGNATURE: the agent's TLS certificate is not signed by a trusted CA (give its CA as stack config lbhosting:caCertificate, or --ca-file)`;
    expect(failure.includes(expected), failure.slice(-2000)).to.equal(true);
    // Nothing changed: an up with the right CA has nothing to do (and records that CA as the
    // provider's configuration again, which destroy uses; the failed up recorded the wrong one).
    const again = await project.up();
    expect(again.stdout).to.not.match(/\d+ (?:created|updated|replaced|deleted)/);
    expect(again.stdout).to.match(/\d+ unchanged/);
  });

  it("destroy stops every agent and HAProxy and removes what was installed; the data folders stay", async () => {
    const pids = servers.map((server) => pidOf(server));
    const haproxySupervisor = pidOf(lb, "haproxy.pid");
    await project.destroy();
    for (const [index, server] of servers.entries()) {
      expect(fs.existsSync(`/proc/${pids[index]}`), `${server.name}'s supervisor`).to.equal(false);
      expect(fs.existsSync(server.installDir), `${server.name}'s install folder`).to.equal(false);
      expect(fs.existsSync(path.join(server.dataDir, "agent.db")), `${server.name}'s data`).to.equal(true);
      expect(fs.existsSync(`/etc/systemd/system/lbhosting-agent-${server.name}.service`)).to.equal(false);
    }
    expect(fs.existsSync(`/proc/${haproxySupervisor}`), "HAProxy's supervisor").to.equal(false);
    expect(fs.existsSync("/etc/systemd/system/lbhosting-haproxy-lb.service")).to.equal(false);
    expect(await canConnect(lb.host, Number(lbHttp.split(":")[1])), "HAProxy's web frontend").to.equal(false);
    const left = processCommandLines().filter((process) =>
      servers.some((server) => process.args.includes(server.installDir)),
    );
    expect(left.map((process) => process.args)).to.deep.equal([]);
  });

  it("a missing prerequisite fails the up, naming the server and what to install", async () => {
    const [web1] = webServers;
    await project.configSet("servers", JSON.stringify([{ ...web1, contentRoot, nginxBin: "/nonexistent/sbin/nginx" }]));
    await project.pulumi(["config", "rm", "loadBalancer"]);
    await project.pulumi(["config", "rm", "loadBalancerFtp"]);
    const failure = await project.up().then(
      () => "succeeded",
      (error: Error) => error.message,
    );
    expect(failure).to.include(
      `HostingNode web1 on ${web1.host}:${web1.port}: nginx is not installed at /nonexistent/sbin/nginx`,
    );
    expect(failure).to.include("apt-get install nginx");
    await project.destroy();
    expect(fs.existsSync(path.join(web1.installDir, "agent.pid"))).to.equal(false);
  });
});
