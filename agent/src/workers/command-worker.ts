/** Worker-thread side of commands.ts: starts a child process and reports how it ended. */
import { execFile } from "node:child_process";

export interface CommandTask {
  file: string;
  args: string[];
  timeoutMs: number;
}

export interface CommandResult {
  ok: boolean;
  /** The exit code, or undefined when the process did not exit by itself (killed, not started). */
  exitCode?: number;
  stdout: string;
  stderr: string;
  /** Why it failed, when it did (Node's error message: a missing binary, a timeout, a signal). */
  error?: string;
}

/** Output kept per stream: callers quote a few hundred characters of it at most. */
const MAX_OUTPUT = 64 * 1024;

export default function run(task: CommandTask): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      task.file,
      task.args,
      { encoding: "utf8", timeout: task.timeoutMs, maxBuffer: 4 * MAX_OUTPUT },
      (error, stdout, stderr) => {
        const exitCode = error === null ? 0 : typeof error.code === "number" ? error.code : undefined;
        resolve({
          ok: error === null,
          ...(exitCode === undefined ? {} : { exitCode }),
          stdout: (stdout ?? "").slice(0, MAX_OUTPUT),
          stderr: (stderr ?? "").slice(0, MAX_OUTPUT),
          ...(error === null ? {} : { error: error.message }),
        });
      },
    );
  });
}
