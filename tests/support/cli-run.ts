/**
 * Test helper: run the real `lbhosting` CLI (node dist/cli/main.js ...) as a child process with a
 * timeout, the way an operator or a monitoring check would, and collect its output and exit code.
 */
import { spawn } from "node:child_process";
import { CLI } from "./agent-process";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `env` is added to the parent's environment minus LBHOSTING_TOKEN, so each test says where its token comes from. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<CliResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.LBHOSTING_TOKEN === undefined) delete childEnv.LBHOSTING_TOKEN;
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`lbhosting ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
