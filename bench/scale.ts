/**
 * `npm run bench:scale` — issue 9's measurements, printed, never asserted.
 *
 * Part 1, the way a user runs it: project folders run by tests/support/project.ts (the library
 * packed with `npm pack` and installed with npm), a TypeScript-free program (index.js), the real CLI and
 * language host, three agents on loopback (one primary, two secondaries; FTP accounts built with
 * pure-pw when it is installed). One org with USERS users (each with a secret password and FTP
 * access), SITES websites and one FTP service, against a floor: the same number of dynamic
 * resources whose provider does nothing, through the same CLI, in the same run. Six phases each:
 * up creating everything, up with nothing changed, refresh, up changing one password right after
 * the refresh, up changing another, destroy. Also: syncs performed during the create and the
 * serialized `__provider` bytes per resource.
 *
 * Part 2, against one agent: 1,000 user upserts with plaintext passwords at concurrency 8 (wall
 * time, p50/p99), while another process asks GET /v1/health every 20 ms (its p99).
 *
 *   USERS=1000 SITES=20 npm run bench:scale        (defaults; BENCH_SKIP_PULUMI=1 runs part 2 only;
 *                                                   BENCH_PROFILE_DIR=DIR keeps the CLI's profiles;
 *                                                   BENCH_PARALLEL=N runs every phase with --parallel N)
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { agentClient } from "../tests/support/agent-http";
import { startAgentProcess, type AgentProcess } from "../tests/support/agent-process";
import { createProjectFolder, exampleDir, type ProjectFolder } from "../tests/support/project";
import { ensurePulumi } from "../tests/support/pulumi";
import { processCpu, watchTree, type TreeCpu } from "./cpu";

const USERS = Number(process.env.USERS ?? 1000);
const SITES = Number(process.env.SITES ?? 20);
const TOKEN = "bench-scale-token-0123456789abcdef";
const COMMAND_TIMEOUT_MS = 60 * 60_000;
const UPSERTS = 1000;
const UPSERT_CONCURRENCY = 8;
/** BENCH_PROFILE_DIR: the CLI writes CPU, memory and trace profiles of each phase there (`go tool pprof`). */
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR;
/** BENCH_PARALLEL: `--parallel` for every phase of both projects (default: Pulumi's, 4 per core). */
const PARALLEL = process.env.BENCH_PARALLEL;

const profiling = (project: { name: string }, phase: string): string[] =>
  PROFILE_DIR ? ["--profiling", path.join(PROFILE_DIR, `${project.name}-${phase.replace(/\W+/g, "-")}`)] : [];

const HOSTING_PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const { LoadBalancedOrganization, OrgUser, WebService } = require("pulumi-lbhosting");

const config = new pulumi.Config("bench");
const changed = new Set((config.get("changed") || "").split(",").filter(Boolean).map(Number));
const org = new LoadBalancedOrganization("org", {
  name: "scale",
  primary: config.require("primary"),
  secondaries: config.requireObject("secondaries"),
  loadBalanced: true,
});
new WebService("ftp", { organization: org, name: "ftp", kind: "ftp", rootPath: "ftp" });
for (let i = 0; i < config.requireNumber("sites"); i++) {
  new WebService("site" + i, { organization: org, name: "site" + i, kind: "website", domains: ["site" + i + ".scale.test"], documentRoot: "site" + i });
}
for (let i = 0; i < config.requireNumber("users"); i++) {
  const password = "password-" + i + "-bench" + (changed.has(i) ? "-v2" : "");
  new OrgUser("user" + i, { organization: org, username: "user" + i, password, access: ["ftp"] });
}
`;

const FLOOR_PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");

const config = new pulumi.Config("bench");
const changed = new Set((config.get("changed") || "").split(",").filter(Boolean).map(Number));
const nothing = {
  async create(inputs) { return { id: "noop", outs: inputs }; },
  async update(_id, _olds, news) { return { outs: news }; },
};
class Noop extends pulumi.dynamic.Resource {
  constructor(name, props) { super(nothing, name, props, {}, "bench", "Noop"); }
}
new Noop("org", { name: "scale" });
new Noop("ftp", { name: "ftp" });
for (let i = 0; i < config.requireNumber("sites"); i++) new Noop("site" + i, { name: "site" + i });
for (let i = 0; i < config.requireNumber("users"); i++) {
  const password = "password-" + i + "-bench" + (changed.has(i) ? "-v2" : "");
  new Noop("user" + i, { username: "user" + i, password: pulumi.secret(password) });
}
`;

interface Project {
  name: string;
  folder: ProjectFolder;
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Runs the CLI in the project; with `cpu`, the CLI's process tree is sampled while it runs. */
async function pulumiCli(project: Project, args: string[], cpu?: ReturnType<typeof watchTree>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "pulumi",
      args,
      { cwd: project.folder.dir, env: project.folder.env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 512 * 1024 * 1024 },
      (error, stdout) => {
        if (!error) return resolve(stdout);
        const failure = error as { stdout?: string; message: string };
        reject(
          new Error(
            `${project.name}: pulumi ${args.join(" ")} failed: ${failure.message}\n${(failure.stdout ?? "").slice(-4000)}`,
          ),
        );
      },
    );
    if (child.pid !== undefined) cpu?.root(child.pid);
  });
}

/**
 * A project folder holding `program` (with the quick start's dependencies, so the library comes
 * packed from this repository), its stack initialized and `config` set.
 */
async function createProject(
  bin: string,
  root: string,
  name: string,
  program: string,
  config: Record<string, string>,
  env: Record<string, string>,
): Promise<Project> {
  const source = path.join(root, name);
  fs.mkdirSync(source);
  const quickstart = JSON.parse(fs.readFileSync(path.join(exampleDir("quickstart"), "package.json"), "utf8")) as Record<
    string,
    unknown
  >;
  fs.writeFileSync(path.join(source, "Pulumi.yaml"), `name: ${name}\nruntime: nodejs\n`);
  fs.writeFileSync(
    path.join(source, "package.json"),
    JSON.stringify({ ...quickstart, name, main: "index.js" }, null, 2),
  );
  fs.writeFileSync(path.join(source, "index.js"), program);
  const folder = await createProjectFolder(bin, { source, stack: "bench", env, timeoutMs: COMMAND_TIMEOUT_MS });
  for (const [key, value] of Object.entries(config)) {
    await folder.configSet(key, value, { secret: key === "lbhosting:token" });
  }
  return { name, folder };
}

interface PhaseFigures {
  phase: string;
  floor: number;
  lbhosting: number;
  ratio: number;
  /** CPU seconds: each project's CLI process tree, and each agent of the hosting run. */
  cpu: { floor: TreeCpu; lbhosting: TreeCpu; agents: { primary: number; secondaries: number[] } };
  loadAverage: number[];
}

const loadAverage = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(" ");

/** One CLI command: its wall-clock seconds and the CPU seconds of its process tree. */
async function measured(project: Project, args: string[]): Promise<{ seconds: number; cpu: TreeCpu }> {
  const cpu = watchTree();
  const started = process.hrtime.bigint();
  try {
    await pulumiCli(project, args, cpu);
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpu: cpu.stop() };
  } catch (error) {
    cpu.stop();
    throw error;
  }
}

async function pulumiPhases(bin: string, root: string): Promise<void> {
  const purePw = fs.existsSync("/usr/bin/pure-pw") ? "/usr/bin/pure-pw" : undefined;
  const ftpArgs = purePw ? ["--pure-pw-bin", purePw] : [];
  const agents: AgentProcess[] = await Promise.all(
    ["127.0.60.1", "127.0.60.2", "127.0.60.3"].map((host) =>
      startAgentProcess({ host, token: TOKEN, startTimeoutMs: 60_000, extraArgs: ftpArgs }),
    ),
  );
  try {
    const [primary, ...secondaries] = agents;
    const syncLog = path.join(root, "sync.log");
    const env = { LBHOSTING_SYNC_LOG: syncLog };
    const common = { "bench:users": String(USERS), "bench:sites": String(SITES) };
    const floor = await createProject(bin, root, "floor", FLOOR_PROGRAM, common, env);
    const hosting = await createProject(
      bin,
      root,
      "hosting",
      HOSTING_PROGRAM,
      {
        ...common,
        "bench:primary": primary.url,
        "bench:secondaries": JSON.stringify(secondaries.map((agent) => agent.url)),
        "lbhosting:token": TOKEN,
      },
      env,
    );
    const projects = [floor, hosting];
    const quiet = ["--yes", "--skip-preview", "--non-interactive", "--color", "never"];
    if (PARALLEL) quiet.push("--parallel", PARALLEL);
    const setChanged = (value: string) =>
      Promise.all(projects.map((project) => pulumiCli(project, ["config", "set", "bench:changed", value])));
    const phases: Array<{ label: string; before?: () => Promise<unknown>; args: string[] }> = [
      { label: "up creating everything", args: ["up", ...quiet] },
      { label: "up with nothing changed", args: ["up", ...quiet] },
      { label: "refresh", args: ["refresh", ...quiet] },
      { label: "up changing one password (after the refresh)", before: () => setChanged("1"), args: ["up", ...quiet] },
      { label: "up changing another password", before: () => setChanged("1,2"), args: ["up", ...quiet] },
      { label: "destroy", args: ["destroy", ...quiet] },
    ];
    const resources = 2 + SITES + USERS;
    console.log(`${resources} resources (1 org, ${USERS} users with FTP access, ${SITES} websites, 1 FTP service)`);
    console.log(
      `3 agents, FTP accounts ${purePw ? "checked against pure-pw" : "built in-process (no pure-pw)"}; ` +
        `--parallel ${PARALLEL ?? "Pulumi's default"}; load ${loadAverage()}`,
    );
    console.log(
      "phase                                          floor s   lbhosting s   ratio   " +
        "CPU s: floor (engine/provider/program) | lbhosting (engine/provider/program) | agents (primary/secondaries)",
    );
    const figures: PhaseFigures[] = [];
    const agentCpu = () => agents.map((agent) => processCpu(agent.pid));
    for (const phase of phases) {
      await phase.before?.();
      const floorRun = await measured(floor, [...phase.args, ...profiling(floor, phase.label)]);
      const agentsBefore = agentCpu();
      const hostingRun = await measured(hosting, [...phase.args, ...profiling(hosting, phase.label)]);
      const agentSeconds = agentCpu().map((cpu, i) => cpu - agentsBefore[i]);
      const figure: PhaseFigures = {
        phase: phase.label,
        floor: floorRun.seconds,
        lbhosting: hostingRun.seconds,
        ratio: hostingRun.seconds / floorRun.seconds,
        cpu: {
          floor: floorRun.cpu,
          lbhosting: hostingRun.cpu,
          agents: { primary: agentSeconds[0], secondaries: agentSeconds.slice(1) },
        },
        loadAverage: os.loadavg(),
      };
      figures.push(figure);
      const roles = (cpu: TreeCpu) =>
        `${cpu.total.toFixed(1)} (${[cpu.byRole.engine, cpu.byRole.provider, cpu.byRole.program].map((n) => n.toFixed(1)).join("/")})`;
      console.log(
        `${phase.label.padEnd(46)} ${floorRun.seconds.toFixed(1).padStart(7)}   ${hostingRun.seconds.toFixed(1).padStart(11)}   ` +
          `${figure.ratio.toFixed(2).padStart(5)}x   ${roles(floorRun.cpu)} | ${roles(hostingRun.cpu)} | ` +
          `${agentSeconds[0].toFixed(1)}/${agentSeconds
            .slice(1)
            .map((n) => n.toFixed(1))
            .join("+")}   load ${loadAverage()}`,
      );
      if (phase.label === "up creating everything") {
        const lines = fs.readFileSync(syncLog, "utf8");
        const count = (pattern: RegExp) => (lines.match(pattern) ?? []).length;
        const transfers = count(/: (delta|snapshot) /g);
        const runs = (transfers + count(/: in sync at /g)) / secondaries.length;
        console.log(
          `  syncs during the create: ${runs} sync runs for ${resources} operations (${((100 * runs) / resources).toFixed(1)}%), ` +
            `${count(/: delta /g)} delta and ${count(/: snapshot /g)} snapshot transfers to ${secondaries.length} secondaries`,
        );
        const exported = JSON.parse(await pulumiCli(hosting, ["stack", "export"])) as {
          deployment: { resources: Array<{ type: string; inputs?: { __provider?: string } }> };
        };
        const bytes = new Map<string, number>();
        for (const resource of exported.deployment.resources) {
          if (resource.inputs?.__provider)
            bytes.set(resource.type.split(":").pop() as string, resource.inputs.__provider.length);
        }
        console.log(`  __provider bytes per resource: ${[...bytes].map(([type, n]) => `${type} ${n}`).join(", ")}`);
      }
    }
    console.log(JSON.stringify({ users: USERS, sites: SITES, phases: figures }));
  } finally {
    for (const agent of agents) {
      await agent.stop();
      agent.cleanup();
    }
  }
}

/** Health latencies measured by a separate process every 20 ms until its stdin closes (at most 10 min). */
function healthProbe(url: string): { stop: () => Promise<number[]> } {
  const script = `
    const latencies = [];
    const deadline = Date.now() + 600000;
    let stopped = false;
    process.stdin.on("end", () => (stopped = true)).resume();
    const health = async () => {
      try { await (await fetch(${JSON.stringify(url)} + "/v1/health", { signal: AbortSignal.timeout(5000) })).text(); } catch {}
    };
    (async () => {
      await health(); // untimed: this process's first fetch pays its own start-up and the connection
      while (!stopped && Date.now() < deadline) {
        const started = performance.now();
        await health();
        latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      process.stdout.write(JSON.stringify(latencies));
    })();`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    stop: async () => {
      child.stdin.end();
      await exited;
      return JSON.parse(output || "[]") as number[];
    },
  };
}

async function agentBurst(): Promise<void> {
  const agent = await startAgentProcess({ host: "127.0.60.9", name: "burst", startTimeoutMs: 60_000 });
  try {
    const api = agentClient(agent.url, agent.token, { keepAlive: true });
    await api.put("/v1/orgs/burst", {});
    const idle = healthProbe(agent.url);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleLatencies = (await idle.stop()).sort((a, b) => a - b);
    const probe = healthProbe(agent.url);
    const latencies: number[] = [];
    let next = 0;
    const cpuBefore = processCpu(agent.pid);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: UPSERT_CONCURRENCY }, async () => {
        while (next < UPSERTS) {
          const i = next++;
          const begin = performance.now();
          const answer = await api.put(`/v1/orgs/burst/users/u${i}`, {
            password: `password-${i}-burst`,
            access: ["ftp"],
          });
          if (answer.status !== 201) throw new Error(`upsert failed: ${answer.status} ${answer.text}`);
          latencies.push(performance.now() - begin);
        }
      }),
    );
    const wall = (performance.now() - started) / 1000;
    const cpu = processCpu(agent.pid) - cpuBefore;
    const health = (await probe.stop()).sort((a, b) => a - b);
    latencies.sort((a, b) => a - b);
    console.log(
      `agent, ${UPSERTS} upserts with plaintext passwords at concurrency ${UPSERT_CONCURRENCY}: ${wall.toFixed(1)} s ` +
        `(${(UPSERTS / wall).toFixed(0)}/s), p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ` +
        `agent CPU ${cpu.toFixed(1)} s (hashing in its worker threads included); load ${loadAverage()}`,
    );
    console.log(
      `  GET /v1/health every 20 ms from another process: during the burst p50 ${percentile(health, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(health, 99).toFixed(1)} ms (${health.length} probes); idle p99 ${percentile(idleLatencies, 99).toFixed(1)} ms`,
    );
  } finally {
    await agent.stop();
    agent.cleanup();
  }
}

async function main(): Promise<void> {
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")} (${os.availableParallelism()} cores)`,
  );
  if (!process.env.BENCH_SKIP_PULUMI) {
    const bin = ensurePulumi();
    if (!bin) throw new Error("no Pulumi CLI: run scripts/ensure-pulumi.sh");
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-scale-"));
    try {
      await pulumiPhases(bin, root);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  await agentBurst();
  console.log(
    `load average at end: ${os
      .loadavg()
      .map((n) => n.toFixed(2))
      .join(" ")}`,
  );
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
