/**
 * What the process fixtures share: finding a server's binary, starting it in the foreground until
 * it is ready, no child outliving the test run, a child's children, and stopping it by pid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** SIGKILLs `child` when the test process exits, so a failing test never leaves it behind. */
export function reapWithTestRun(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/**
 * The pids of a process's children (nginx workers, pure-ftpd sessions, a CLI's plugins), from /proc:
 * each thread lists the children it started, and a Go program starts them from any of its threads.
 */
export function childPids(pid: number): number[] {
  let threads: string[];
  try {
    threads = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return threads.flatMap((thread) => {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${thread}/children`, "utf8").trim();
      return text === "" ? [] : text.split(/\s+/).map(Number);
    } catch {
      return [];
    }
  });
}

/** SIGKILL by pid, ignoring a process that is already gone. */
export function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** A process and all its descendants, parents first (a snapshot: children started later are not in it). */
export function processTree(pid: number): number[] {
  return [pid, ...childPids(pid).flatMap(processTree)];
}

/** Whether a process has ended: no longer in /proc, or a zombie waiting to be reaped. */
export function processGone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/**
 * Sends `signal` to `child` and resolves once it exited; after 5 s SIGKILLs it and its children
 * (nginx and HAProxy workers, pure-ftpd sessions), so a stop never hangs.
 */
export async function stopProcessTree(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const pid = child.pid as number;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const children = childPids(pid);
  child.kill(signal);
  const timer = setTimeout(() => {
    for (const other of childPids(pid).concat(children)) killQuietly(other);
    child.kill("SIGKILL");
  }, 5000);
  await exited;
  clearTimeout(timer);
}

const executable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** `$env`, or the first executable of `candidates`, or of `name` on PATH; undefined when none is. */
export function findBinary(env: string, name: string, candidates: string[]): string | undefined {
  const configured = process.env[env];
  if (configured) return configured;
  const onPath = (process.env.PATH ?? "").split(":").map((dir) => path.join(dir, name));
  return [...candidates, ...onPath].find(executable);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Spawns a server in the foreground (reaped with the test run), collects what it prints, and
 * resolves once `ready()` says so; after 10 s, or if it exits first, it is killed and this throws.
 */
export async function spawnServer(
  bin: string,
  args: string[],
  what: string,
  ready: () => Promise<boolean>,
  env?: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], ...(env && { env }) });
  reapWithTestRun(child);
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const deadline = Date.now() + 10_000;
  while (!(await ready())) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${what} did not start: ${output}`);
    }
    await sleep(50);
  }
  return { child, output: () => output };
}
