/**
 * The agent's child processes (`nginx -t`, `nginx -s reload`, `haproxy -c`, `pure-pw mkdb`),
 * started from a worker thread. Starting a process blocks the starting thread until the child has
 * called exec (libuv waits for it, to report a binary that cannot run): on a busy machine that is
 * tens of milliseconds (measured: 42 ms p50, 104 ms p90 with a load of 7 on two cores), which on
 * the event loop would stall every request. One worker thread starts them all, several at a time.
 */
import path from "node:path";
import { Piscina } from "piscina";
import type { CommandResult, CommandTask } from "./command-worker";

export type { CommandResult } from "./command-worker";

let pool: Piscina<CommandTask, CommandResult> | undefined;

/**
 * Runs `file` with `args` (no shell) and resolves with how it ended; never rejects for the
 * command's own failure (missing binary, exit status, timeout): `ok` says.
 */
export function runCommand(file: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  // Shared by every agent of the process. Its thread starts with the first command and ends after
  // a quiet minute (an agent that changes nothing keeps none: ~8 MB); it never keeps the process alive.
  pool ??= new Piscina({
    filename: path.join(__dirname, "command-worker.js"),
    minThreads: 0,
    maxThreads: 1,
    concurrentTasksPerWorker: 16,
    idleTimeout: 60_000,
  });
  return pool.run({ file, args, timeoutMs });
}

/** stderr then stdout, trimmed and cut to `max` characters, or the error when they are empty. */
export function commandOutput(result: CommandResult, max: number): string {
  const output = `${result.stderr}${result.stdout}`.trim().slice(0, max);
  return output || (result.error ?? "");
}
