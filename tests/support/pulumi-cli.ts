/**
 * End-to-end harness for the plain CLI: a Pulumi project folder (Pulumi.yaml + index.js, runtime
 * nodejs) run with `pulumi up`, `refresh`, `cancel`, … as separate processes, the way an operator
 * or a CI job runs them — so a test can SIGKILL the CLI and its plugins mid-operation. Local file
 * backend, its own PULUMI_HOME and passphrase, under a throw-away folder inside the repository (so
 * the program and the dynamic provider find this package in the repository's node_modules).
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { killQuietly, processTree, reapWithTestRun } from "./processes";
import { localPulumiEnv, stackScratchFolder } from "./pulumi";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliProject {
  /** The project folder (Pulumi.yaml, index.js). */
  readonly dir: string;
  /** The local file backend's folder (`backend.url: file://<backend>`). */
  readonly backend: string;
  /** Runs `pulumi <args>` in the project folder to its end (killed after `timeoutMs`); `input` goes to stdin. */
  run(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<CliResult>;
  /** Like run, but throws (with the CLI's output) unless it exits 0. */
  ok(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<CliResult>;
  /** Starts `pulumi <args>` in its own process group; its plugins start groups of their own (see processTree). */
  start(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<CliResult> };
  /** `pulumi stack export` (secrets stay encrypted). */
  exportState(): Promise<{ resources?: Array<{ urn: string; type: string }>; pending_operations?: unknown[] }>;
  cleanup(): void;
}

const PASSPHRASE = "lbhosting-e2e-cli-passphrase";

function collect(child: ChildProcess): { output: () => string; exited: Promise<CliResult> } {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
  return { output: () => stdout + stderr, exited };
}

/** A project folder whose program is `program` (CommonJS source), with stack `stack` selected. */
export async function createCliProject(
  bin: string,
  options: { projectName: string; program: string; stack?: string },
): Promise<CliProject> {
  const root = stackScratchFolder(options.projectName);
  const dir = path.join(root, "project");
  const backend = path.join(root, "state");
  const home = path.join(root, "home");
  for (const folder of [dir, backend, home]) fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    `name: ${options.projectName}\nruntime: nodejs\nmain: index.js\nbackend:\n  url: file://${backend}\n`,
  );
  fs.writeFileSync(path.join(dir, "index.js"), options.program);
  const env: NodeJS.ProcessEnv = { ...process.env, ...localPulumiEnv({ bin, home, backend, passphrase: PASSPHRASE }) };
  delete env.LBHOSTING_TOKEN;

  const start = (args: string[]) => {
    const child = spawn(path.join(bin, "pulumi"), args, {
      cwd: dir,
      env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    reapWithTestRun(child);
    return { child, ...collect(child) };
  };
  const run = async (args: string[], runOptions: { input?: string; timeoutMs?: number } = {}) => {
    const { child, exited } = start(args);
    child.stdin?.end(runOptions.input ?? "");
    // The plugins run in process groups of their own: a timed-out command is killed as a whole tree.
    const killTree = () => processTree(child.pid as number).forEach(killQuietly);
    const timer = setTimeout(killTree, runOptions.timeoutMs ?? 600_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const ok = async (args: string[], runOptions: { input?: string; timeoutMs?: number } = {}) => {
    const result = await run(args, runOptions);
    if (result.code !== 0) {
      throw new Error(`pulumi ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
    }
    return result;
  };
  await ok(["stack", "init", options.stack ?? "e2e", "--secrets-provider", "passphrase"]);
  return {
    dir,
    backend,
    run,
    ok,
    start: (args) => {
      const started = start(args);
      started.child.stdin?.end();
      return started;
    },
    exportState: async () => JSON.parse((await ok(["stack", "export"])).stdout).deployment,
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
