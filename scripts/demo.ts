/**
 * `npm run demo` — the project's main job on a fresh machine: a primary and a secondary hosting
 * node on loopback (agent + nginx where installed) and a load balancer in front of them (an agent
 * driving HAProxy, where nginx and haproxy are installed), then the quick start run by the Pulumi
 * CLI in its project folder (examples/quickstart: `pulumi stack init`, `config set`, `up`), with
 * a local backend under .demo/, so Pulumi's own output shows; a table of where every node stands
 * and the stack's outputs checked against the primary, then a forced edit on the secondary that `pulumi refresh` detects and `pulumi up` heals. It
 * stops everything it started and destroys the stack before it exits.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { AgentClient } from "../provider/client";
import { inspectOrg } from "../provider/sync";
import { getSite } from "../tests/support/http-get";
import { startHostingNode, type HostingNode } from "../tests/support/hosting-node";
import { findHaproxy } from "../tests/support/haproxy";
import { findNginx } from "../tests/support/nginx";
import { freePort } from "../tests/support/ports";
import { findFtpBinaries, ftpTry } from "../tests/support/pureftpd";
import { userPulumiEnv } from "../tests/support/project";
import { ensurePulumi, installCommandPlugin, REPO_ROOT } from "../tests/support/pulumi";

const ORG = "acme";
const DOMAIN = "www.acme.test";
const STACK = "demo";
const QUICKSTART = path.join(REPO_ROOT, "examples", "quickstart");
const step = (text: string) => console.log(`\n▶ ${text}`);

async function main(): Promise<void> {
  step("Pulumi toolchain (a first run builds the CLI from Go modules: several minutes)");
  const bin = ensurePulumi();
  if (!bin) throw new Error("no Pulumi CLI and no Go to build one: see README prerequisites");

  const demoDir = path.join(REPO_ROOT, ".demo");
  fs.rmSync(demoDir, { recursive: true, force: true });
  const content = path.join(demoDir, "nas");
  fs.mkdirSync(path.join(content, ORG, "www"), { recursive: true });
  fs.writeFileSync(path.join(content, ORG, "www", "index.html"), "<h1>Acme Corp, served from the NAS</h1>\n");
  fs.chmodSync(demoDir, 0o755);

  const nginxBin = findNginx();
  const haproxyBin = nginxBin ? findHaproxy() : undefined;
  const ftp = findFtpBinaries();
  const alicePassword = randomBytes(12).toString("hex");
  const token = randomBytes(24).toString("base64url");
  step(
    nginxBin
      ? `Starting two hosting nodes (agent + nginx ${nginxBin}) on 127.0.1.1 and 127.0.1.2` +
          (haproxyBin
            ? `, and a load balancer (agent + HAProxy ${haproxyBin}) on 127.0.1.3`
            : " — haproxy is not installed, so there is no load balancer (apt-get install haproxy)")
      : "Starting two hosting nodes on 127.0.1.1 and 127.0.1.2 — nginx is not installed, so the agents run " +
          "config-only (they keep and render the configuration; apt-get install nginx to serve it) and there " +
          "is no load balancer",
  );
  const nodes: HostingNode[] = [];
  try {
    // With a load balancer, each node's pure-ftpd advertises it for passive mode.
    const ftpPassiveAddress = haproxyBin ? "127.0.1.3" : undefined;
    for (const [host, name] of [
      ["127.0.1.1", "primary"],
      ["127.0.1.2", "secondary"],
    ]) {
      nodes.push(await startHostingNode({ host, name, token, contentRoot: content, nginxBin, ftp, ftpPassiveAddress }));
      console.log(`  ${name}: agent ${nodes[nodes.length - 1].url}, pid ${nodes[nodes.length - 1].agent.pid}`);
    }
    if (haproxyBin) {
      nodes.push(
        await startHostingNode({ host: "127.0.1.3", name: "balancer", token, contentRoot: content, haproxyBin }),
      );
      console.log(`  balancer: agent ${nodes[2].url}, HAProxy master pid ${nodes[2].haproxy?.pid}`);
    }
    const [primary, secondary, balancer] = nodes;
    const balancerFtp = balancer && ftp ? `127.0.1.3:${await freePort("127.0.1.3")}` : undefined;

    step(
      "pulumi up — the quick start (examples/quickstart) run by the Pulumi CLI in its folder, local backend under .demo/",
    );
    const pulumi = await quickstartCli(bin, demoDir);
    await pulumi(["stack", "init", STACK]);
    const config: [string, string, boolean][] = [
      ["lbhosting:token", token, true],
      ["primary", primary.url, false],
      ["secondaries", JSON.stringify([secondary.url]), false],
      ["domain", DOMAIN, false],
      ["alicePassword", alicePassword, true],
      ["bobPassword", randomBytes(12).toString("hex"), true],
      ...(balancer?.haproxy
        ? ([
            ["loadBalancer", balancer.url, false],
            ["siteCheckUrl", `${balancer.haproxy.url}/`, false],
          ] as [string, string, boolean][])
        : []),
      ...(balancerFtp ? ([["loadBalancerFtp", balancerFtp, false]] as [string, string, boolean][]) : []),
    ];
    for (const [key, value, secret] of config) {
      await pulumi(["config", "set", ...(secret ? ["--secret"] : []), key], { input: value, quiet: true });
    }
    await pulumi(["up", "--yes"]);
    await printTable(nodes, token);
    await printOutputs(pulumi, nodes[0], token);
    await printServing(nodes);
    if (balancer?.haproxy) await printBalancing(balancer);
    await printFtp([primary, secondary], alicePassword, balancerFtp);

    step("A forced local edit on the secondary (an administrator adds user 'mallory' there by hand)");
    await new AgentClient(secondary.url, token).putUser(
      ORG,
      "mallory",
      { password: randomBytes(12).toString("hex") },
      true,
    );
    await printTable(nodes, token);

    step("pulumi refresh --expect-no-changes — the CI drift check");
    const check = await pulumi(["refresh", "--yes", "--expect-no-changes"], { mayFail: true });
    if (check.code === 0) throw new Error("the drift check passed although the secondary drifted");
    if (!/no changes were expected/.test(check.output)) throw new Error(`pulumi refresh failed: ${check.output}`);
    console.log("  drift detected: the check fails, as CI would");
    await pulumi(["refresh", "--yes"], { quiet: true });

    step("pulumi up — no program change; the primary wins and the secondary is healed");
    await pulumi(["up", "--yes"]);
    await printTable(nodes, token);
    await printOutputs(pulumi, nodes[0], token);

    step("Cleaning up: pulumi destroy, then stopping every process by pid");
    await pulumi(["destroy", "--yes"]);
    await pulumi(["stack", "rm", "--yes", STACK], { quiet: true });
  } finally {
    for (const node of nodes.reverse()) await node.stop();
  }
  console.log("\nDone: the demo left no process behind. Rerun it with `npm run demo`.");
}

interface CliOptions {
  /** Written to the command's stdin (secret config values stay off the command line). */
  input?: string;
  /** Do not echo the output. */
  quiet?: boolean;
  /** Resolve with the exit code instead of throwing when the command fails. */
  mayFail?: boolean;
}

/**
 * `pulumi …` in examples/quickstart, with a local backend and PULUMI_HOME under .demo/ and the
 * command plugin installed there; output echoed, indented, as it comes.
 */
type QuickstartCli = (args: string[], options?: CliOptions) => Promise<{ code: number | null; output: string }>;

async function quickstartCli(bin: string, demoDir: string): Promise<QuickstartCli> {
  const home = path.join(demoDir, "home");
  const backend = path.join(demoDir, "state");
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(backend, { recursive: true });
  fs.rmSync(path.join(QUICKSTART, `Pulumi.${STACK}.yaml`), { force: true });
  // As a user has it: the command plugin from PULUMI_HOME, not from PATH.
  const env = userPulumiEnv({ bin, home, backend, passphrase: "lbhosting-demo", cliDir: path.join(demoDir, "cli") });
  await installCommandPlugin(bin, env);
  return (args: string[], options: CliOptions = {}): Promise<{ code: number | null; output: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(path.join(bin, "pulumi"), args, { cwd: QUICKSTART, env: { ...process.env, ...env } });
      let output = "";
      const collect = (chunk: Buffer) => {
        output += chunk.toString();
        if (!options.quiet) indent(chunk.toString());
      };
      child.stdout.on("data", collect);
      child.stderr.on("data", collect);
      child.stdin.end(options.input ?? "");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10 * 60_000);
      child.once("error", reject);
      child.once("close", (code) => {
        clearTimeout(timer);
        if (code === 0 || options.mayFail) resolve({ code, output });
        else reject(new Error(`pulumi ${args.join(" ")} exited ${code}:\n${output}`));
      });
    });
}

/**
 * The stack's outputs (from the quick start's SyncCheck) next to what the primary holds: they must
 * be the same generation and digest, since the check records the org at the end of the up.
 */
async function printOutputs(pulumi: QuickstartCli, primary: HostingNode, token: string): Promise<void> {
  const { output } = await pulumi(["stack", "output", "--json"], { quiet: true });
  const outputs = JSON.parse(output) as {
    generation: number;
    digest: string;
    inSync: boolean;
    syncStatus: { endpoint: string; state: string; generation: number }[];
  };
  const head = await new AgentClient(primary.url, token).getOrg(ORG);
  const secondaries = outputs.syncStatus.map((s) => `${s.endpoint} ${s.state} at ${s.generation}`).join(", ");
  console.log(
    `  pulumi stack output: generation ${outputs.generation}, digest ${outputs.digest.slice(0, 12)}, ` +
      `inSync ${outputs.inSync} (${secondaries})`,
  );
  if (outputs.generation !== head.generation || outputs.digest !== head.digest) {
    throw new Error(`the stack outputs say generation ${outputs.generation}, the primary holds ${head.generation}`);
  }
  console.log(`  the outputs match the primary (generation ${head.generation}, digest ${head.digest.slice(0, 12)})`);
}

async function printTable(nodes: HostingNode[], token: string): Promise<void> {
  const clientFor = (endpoint: string) => new AgentClient(endpoint, token);
  const { primary, secondaries } = await inspectOrg(clientFor(nodes[0].url), ORG, clientFor);
  const rows = [
    ["node", "role", "generation", "digest", "state"],
    [nodes[0].name, "primary", String(primary.generation), primary.digest.slice(0, 12), "—"],
    ...secondaries.map((secondary) => [
      nodes.find((node) => node.url === secondary.endpoint)?.name ?? secondary.endpoint,
      secondary.copy?.role ?? "—",
      String(secondary.copy?.generation ?? "—"),
      secondary.copy?.digest.slice(0, 12) ?? "—",
      secondary.state,
    ]),
  ];
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  for (const row of rows) console.log(`  ${row.map((cell, column) => cell.padEnd(widths[column])).join("  ")}`);
}

/** alice (FTP access) logs in on every node that runs pure-ftpd, and through the load balancer when it has FTP. */
async function printFtp(nodes: HostingNode[], password: string, balancerFtp: string | undefined): Promise<void> {
  const urls = nodes.flatMap((node) => (node.ftp ? [node.ftp.url] : []));
  if (balancerFtp) urls.push(`ftp://${balancerFtp}`);
  for (const url of urls) {
    const tried = await ftpTry({ url, user: "alice@ftp.acme", password });
    const outcome = tried.ok ? `logged in, lists ${JSON.stringify(tried.names)}` : `failed (curl ${tried.code})`;
    const via = url === `ftp://${balancerFtp}` ? " (the load balancer)" : "";
    console.log(`  ftp ${url}${via} as alice@ftp.acme → ${outcome}`);
  }
}

/** Ten requests through the load balancer: who answered. */
async function printBalancing(balancer: HostingNode): Promise<void> {
  const servedBy = new Map<string, number>();
  for (let i = 0; i < 10; i++) {
    const response = await getSite(`${balancer.haproxy!.url}/`, DOMAIN);
    const key = `${response.status} from ${response.servedBy}`;
    servedBy.set(key, (servedBy.get(key) ?? 0) + 1);
  }
  const summary = [...servedBy].map(([key, count]) => `${count} × ${key}`).join(", ");
  console.log(`  10 requests through the load balancer ${balancer.haproxy!.url} (Host: ${DOMAIN}): ${summary}`);
}

/** Asks each node's nginx for the site, as a browser behind the load balancer would. */
async function printServing(nodes: HostingNode[]): Promise<void> {
  for (const node of nodes) {
    if (!node.nginx || node.name === "balancer") continue;
    const response = await getSite(`${node.nginx.url}/`, DOMAIN);
    console.log(
      `  curl -H 'Host: ${DOMAIN}' ${node.nginx.url}/ → ${response.status}, ` +
        `X-Served-By: ${response.servedBy}, ${JSON.stringify(response.body.trim())}`,
    );
  }
}

function indent(text: string): void {
  process.stdout.write(text.replace(/^(?=.)/gm, "    "));
}

main().catch((error) => {
  console.error(`\ndemo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
