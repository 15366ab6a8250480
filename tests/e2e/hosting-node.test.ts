/**
 * HostingNode over real SSH, run as a user runs examples/bare-servers: our own sshd on loopback
 * stands in for three bare servers (distinct addresses, install and data folders), and one
 * `pulumi up` in the project folder installs the packed agent on each and puts a load-balanced
 * organization on them. Then an agent upgrade, the secret scan, destroy, and a missing
 * prerequisite.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect } from "chai";
import { AgentClient } from "../../provider/client";
import { freePort } from "../support/ports";
import { localPrebuilds } from "../support/prebuilds";
import { createProjectFolder, exampleDir, packWorkspace, repackAgent, type ProjectFolder } from "../support/project";
import { requirePulumi } from "../support/pulumi";
import { startSshd, type Sshd } from "../support/sshd";

const TOKEN = "hosting-node-e2e-token-0123456789abcdef";
const HOSTS = ["127.0.12.1", "127.0.12.2", "127.0.12.3"];

interface Server {
  name: string;
  host: string;
  port: number;
  user: string;
  listen: string;
  installDir: string;
  dataDir: string;
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
  let servers: Server[];
  let upgradePackage: string;
  const pidOf = (server: Server) => Number(fs.readFileSync(path.join(server.installDir, "agent.pid"), "utf8"));
  const client = (server: Server) => new AgentClient(`http://${server.listen}`, TOKEN, { retries: 0 });

  before(async function () {
    const bin = requirePulumi(this);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-bare-servers-"));
    sshd = await startSshd(this, {
      hosts: HOSTS,
      extraConfig: [`SetEnv npm_config_better_sqlite3_local_prebuilds=${localPrebuilds(path.join(root, "prebuilds"))}`],
    });
    packWorkspace();
    upgradePackage = repackAgent("0.1.1-upgrade.1");
    servers = await Promise.all(
      HOSTS.map(async (host, index) => ({
        name: `web${index + 1}`,
        host,
        port: sshd.port,
        user: sshd.user,
        listen: `${host}:${await freePort(host)}`,
        installDir: path.join(root, `web${index + 1}`, "opt"),
        dataDir: path.join(root, `web${index + 1}`, "data"),
      })),
    );
    project = await createProjectFolder(bin, { source: exampleDir("bare-servers") });
    await project.configSet("servers", JSON.stringify(servers));
    await project.configSet("agentPackage", packWorkspace().agent);
    await project.configSet("sshPrivateKey", sshd.privateKey, { secret: true });
    await project.configSet("lbhosting:token", TOKEN, { secret: true });
    await project.configSet("webmasterPassword", "webmaster-pw-0123", { secret: true });
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
    await sshd?.stop();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("one pulumi up turns three bare servers into a load-balanced organization in sync", async () => {
    const started = Date.now();
    await project.up();
    console.log(`      bare servers → in-sync org: pulumi up took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const outputs = await project.outputs();
    expect(outputs.inSync).to.equal(true);
    expect(outputs.nodes).to.deep.equal(
      servers.map((server) => ({ name: server.name, url: `http://${server.listen}`, version: "0.1.0" })),
    );
    const digests = await Promise.all(servers.map(async (server) => (await client(server).getOrg("acme")).digest));
    expect(new Set(digests).size).to.equal(1);
    for (const server of servers) {
      expect(fs.existsSync(`/proc/${pidOf(server)}`), server.name).to.equal(true);
      // The install built the agent's crypt(3) binding: the agent hashes passwords natively.
      const installed = path.join(server.installDir, "node_modules", "lbhosting-agent");
      expect(fs.existsSync(path.join(installed, "build", "Release", "crypt.node")), server.name).to.equal(true);
      expect(fs.readFileSync(path.join(server.installDir, "agent.log"), "utf8")).to.not.include("hashed in JavaScript");
    }
    await project.preview({ expectNoChanges: true });
    await project.refresh({ expectNoChanges: true });
  });

  it("a new agent package version upgrades every node in place; the org stays in sync with nothing lost", async () => {
    const before = await client(servers[0]).getOrg("acme");
    await project.configSet("agentPackage", upgradePackage);
    await project.up();
    const outputs = (await project.outputs()) as { inSync: boolean; nodes: { version: string }[] };
    expect(outputs.inSync).to.equal(true);
    expect(outputs.nodes.map((node) => node.version)).to.deep.equal(servers.map(() => "0.1.1-upgrade.1"));
    for (const server of servers) {
      expect((await client(server).health()).version).to.equal("0.1.1-upgrade.1");
      const org = await client(server).getOrg("acme");
      expect(org.digest, server.name).to.equal(before.digest);
    }
    expect((await client(servers[2]).listUsers("acme")).map((user) => user.username)).to.deep.equal(["webmaster"]);
    await project.refresh({ expectNoChanges: true });
  });

  it("the token appears in no log, command line, process environment or plain state", async () => {
    const state = JSON.stringify(await project.exportState());
    const agentLogs = servers.map((server) => fs.readFileSync(path.join(server.installDir, "agent.log"), "utf8"));
    const processes = processCommandLines();
    const agentProcesses = processes.filter((process) => process.args.includes(servers[0].installDir));
    expect(agentProcesses.length, "the supervisor and the agent run").to.be.greaterThan(1);
    const places: [string, string][] = [
      ["the CLI's output", project.log()],
      ["plain state", state],
      ["sshd's log", sshd.log()],
      ...agentLogs.map((log, index): [string, string] => [`${servers[index].name}'s agent log`, log]),
      ["command lines", processes.map((process) => process.args).join("\n")],
      ["agent environments", agentProcesses.map((process) => process.environ).join("\n")],
    ];
    for (const [place, text] of places) {
      expect(text.includes(TOKEN), `the token is in ${place}`).to.equal(false);
      expect(text.includes(sshd.privateKey.split("\n")[1]), `the SSH key is in ${place}`).to.equal(false);
    }
    expect(fs.statSync(path.join(servers[0].installDir, "token")).mode & 0o077).to.equal(0);
    // The command plugin ran from PULUMI_HOME, where the harness installed it, as a user's would.
    expect(project.log()).to.not.include("pulumi-resource-command from $PATH");
  });

  it("destroy stops every agent and removes what was installed; the data folders stay", async () => {
    const pids = servers.map(pidOf);
    await project.destroy();
    for (const [index, server] of servers.entries()) {
      expect(fs.existsSync(`/proc/${pids[index]}`), `${server.name}'s supervisor`).to.equal(false);
      expect(fs.existsSync(server.installDir), `${server.name}'s install folder`).to.equal(false);
      expect(fs.existsSync(path.join(server.dataDir, "agent.db")), `${server.name}'s data`).to.equal(true);
      expect(fs.existsSync(`/etc/systemd/system/lbhosting-agent-${server.name}.service`)).to.equal(false);
    }
    const left = processCommandLines().filter((process) =>
      servers.some((server) => process.args.includes(server.installDir)),
    );
    expect(left.map((process) => process.args)).to.deep.equal([]);
  });

  it("a missing prerequisite fails the up, naming the server and what to install", async () => {
    const [web1] = servers;
    await project.configSet("servers", JSON.stringify([{ ...web1, nginxBin: "/nonexistent/sbin/nginx" }]));
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
