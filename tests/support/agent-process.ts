/**
 * Test fixture: run a real `lbhosting agent` process (node dist/cli/main.js agent ...) on a
 * loopback address, the way an operator would, and stop it by pid.
 *
 *   const agent = await startAgentProcess({ host: "127.0.1.11" });
 *   // agent.url  → "http://127.0.1.11:41234" (bound port read from the agent's "listening" line)
 *   await agent.restart();   // same data dir, same URL
 *   await agent.stop();      // SIGTERM, resolves to the exit code
 *   agent.cleanup();         // removes the temp folders the fixture created
 *
 * Every process started here is also SIGKILLed when the test process exits, so a failing test
 * never leaves an agent behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { reapWithTestRun } from "./processes";

export const CLI = path.resolve(__dirname, "..", "..", "cli", "main.js");

export interface AgentProcessOptions {
  /** Loopback address the API binds, e.g. "127.0.1.11". */
  host: string;
  /** Port the API binds; default one chosen by the agent (kept across restarts). */
  port?: number;
  /** The CLI to run (`node <cli> agent …`); default this build's dist/cli/main.js. */
  cli?: string;
  /** --name; default derived from the host ("agent-127-0-1-11"). */
  name?: string;
  /** Bearer token; default a random 32-character one. */
  token?: string;
  /** How the token reaches the agent: LBHOSTING_AGENT_TOKEN (default) or --token-file. */
  tokenVia?: "env" | "file";
  /** --data; default a new temp folder (removed by cleanup()). */
  dataDir?: string;
  /** --content-root; default a new temp folder, world-readable so nginx workers can serve it. */
  contentRoot?: string;
  /** --nginx-conf-dir; default `<dataDir>/nginx`. */
  nginxConfDir?: string;
  /** --http-listen for rendered sites. */
  httpListen?: string;
  /** --nginx-bin / --nginx-main-conf / --nginx-prefix. */
  nginx?: { bin: string; mainConf?: string; prefix?: string };
  /** --change-log-limit. */
  changeLogLimit?: number;
  /** --tls-cert / --tls-key. */
  tls?: { certFile: string; keyFile: string };
  /** Anything else to pass after the options above. */
  extraArgs?: string[];
  /** How long to wait for the "listening" line (default 10 s). */
  startTimeoutMs?: number;
  /** A command to run the agent under, e.g. `ip netns exec <ns>` (it must exec node, keeping the pid). */
  runUnder?: string[];
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AgentProcess {
  /** Base URL of the running agent; unchanged by restart(). */
  readonly url: string;
  readonly name: string;
  readonly token: string;
  readonly dataDir: string;
  readonly contentRoot: string;
  readonly nginxConfDir: string;
  /** pid of the current process. */
  readonly pid: number;
  /** Milliseconds from spawn to the "listening" line, for the latest start. */
  readonly startMs: number;
  /** stdout lines of every run so far (JSON log lines). */
  readonly stdout: string[];
  /** stderr of every run so far. */
  readonly stderr: () => string;
  /** Everything the agent printed so far (stdout lines, then stderr), for diagnostics and secret scans. */
  log(): string;
  /** SIGTERM (or `signal`) and wait for the exit (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<ExitStatus>;
  /**
   * Stop if running, then start again with the same options, data and URL; resolves once the
   * agent's FTP accounts are ready (its start's FTP round), or, with "listening", once it listens.
   */
  restart(until?: "ftp ready" | "listening"): Promise<void>;
  /** Milliseconds from the latest spawn until the agent's FTP accounts were ready. */
  readonly ftpReady: Promise<number>;
  /** Remove the temp folders this fixture created (call after stop). */
  cleanup(): void;
}

/** Spawn the agent with `args` and resolve once it prints its listening line. */
interface Run {
  child: ChildProcess;
  url: string;
  /** Milliseconds from spawn to the "listening" line. */
  startMs: number;
  /** Milliseconds from spawn to the "ftp accounts ready" line (the start's FTP round, after listening). */
  ftpReady: Promise<number>;
}

/** Waits (bounded) for the start's FTP round, which ends after the agent listens. */
async function untilFtpReady(run: Run, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`agent's FTP accounts not ready within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([run.ftpReady, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function launch(
  command: string[],
  cli: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  stdout: string[],
  stderr: string[],
): Promise<Run> {
  const started = Date.now();
  // LBHOSTING_AGENT_NODE_ARGS: Node options for the agent process only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = process.env.LBHOSTING_AGENT_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const [program, ...prefix] = [...command, process.execPath];
  const child = spawn(program, [...prefix, ...nodeArgs, cli, "agent", ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  reapWithTestRun(child);
  let ftp: { resolve: (ms: number) => void; reject: (error: Error) => void } | undefined;
  const ftpReady = new Promise<number>((resolve, reject) => (ftp = { resolve, reject }));
  ftpReady.catch(() => undefined); // awaited by the caller, when it waits for FTP
  child.once("exit", (code, signal) => ftp?.reject(new Error(`agent exited (code ${code}, signal ${signal})`)));
  return new Promise((resolve, reject) => {
    let buffered = "";
    let settled = false;
    const finish = (error?: Error, url?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        child.kill("SIGKILL");
        reject(error);
      } else resolve({ child, url: url as string, startMs: Date.now() - started, ftpReady });
    };
    const timer = setTimeout(
      () => finish(new Error(`agent did not report listening within ${timeoutMs} ms: ${stderr.join("")}`)),
      timeoutMs,
    );
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        stdout.push(line);
        if (line.includes('"msg":"ftp accounts ready"')) ftp?.resolve(Date.now() - started);
        if (line.includes('"msg":"ftp accounts not ready on start"')) ftp?.reject(new Error(`agent: ${line}`));
        if (!line.includes('"msg":"listening"')) continue;
        const parsed = JSON.parse(line) as { url?: unknown };
        if (typeof parsed.url === "string") finish(undefined, parsed.url);
      }
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    child.once("exit", (code, signal) =>
      finish(new Error(`agent exited (code ${code}, signal ${signal}) before listening: ${stderr.join("")}`)),
    );
  });
}

function waitUntilGone(child: ChildProcess, signal: NodeJS.Signals): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", (code, exitSignal) => {
      clearTimeout(timer);
      resolve({ code, signal: exitSignal });
    });
    child.kill(signal);
  });
}

export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const created: string[] = [];
  const tempDir = (prefix: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    created.push(dir);
    return dir;
  };
  const name = options.name ?? `agent-${options.host.replace(/[^A-Za-z0-9]/g, "-")}`;
  const token = options.token ?? randomBytes(24).toString("base64url");
  const dataDir = options.dataDir ?? tempDir("lbh-agent-data-");
  const contentRoot = options.contentRoot ?? tempDir("lbh-agent-content-");
  if (options.contentRoot === undefined) fs.chmodSync(contentRoot, 0o755);
  const nginxConfDir = options.nginxConfDir ?? path.join(dataDir, "nginx");

  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LBHOSTING_AGENT_TOKEN;
  const baseArgs = ["--data", dataDir, "--name", name, "--content-root", contentRoot, "--nginx-conf-dir", nginxConfDir];
  if (options.tokenVia === "file") {
    const tokenFile = path.join(tempDir("lbh-agent-token-"), "token");
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    baseArgs.push("--token-file", tokenFile);
  } else {
    env.LBHOSTING_AGENT_TOKEN = token;
  }
  if (options.httpListen) baseArgs.push("--http-listen", options.httpListen);
  if (options.nginx) {
    baseArgs.push("--nginx-bin", options.nginx.bin);
    if (options.nginx.mainConf) baseArgs.push("--nginx-main-conf", options.nginx.mainConf);
    if (options.nginx.prefix) baseArgs.push("--nginx-prefix", options.nginx.prefix);
  }
  if (options.changeLogLimit !== undefined) baseArgs.push("--change-log-limit", String(options.changeLogLimit));
  if (options.tls) baseArgs.push("--tls-cert", options.tls.certFile, "--tls-key", options.tls.keyFile);
  baseArgs.push(...(options.extraArgs ?? []));

  const stdout: string[] = [];
  const stderr: string[] = [];
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const cli = options.cli ?? CLI;
  const command = options.runUnder ?? [];
  const removeCreated = () => {
    for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
  };
  // An agent that refuses to start (a test of bad options) leaves no temporary folder behind.
  let run = await launch(
    command,
    cli,
    ["--listen", `${options.host}:${options.port ?? 0}`, ...baseArgs],
    env,
    timeoutMs,
    stdout,
    stderr,
  ).catch((error: unknown) => {
    removeCreated();
    throw error;
  });
  await untilFtpReady(run, timeoutMs);
  const port = new URL(run.url).port;

  const stop = (signal: NodeJS.Signals = "SIGTERM") => waitUntilGone(run.child, signal);
  return {
    get url() {
      return run.url;
    },
    name,
    token,
    dataDir,
    contentRoot,
    nginxConfDir,
    get pid() {
      return run.child.pid as number;
    },
    get startMs() {
      return run.startMs;
    },
    stdout,
    stderr: () => stderr.join(""),
    log: () => `${stdout.join("\n")}\n${stderr.join("")}`,
    stop,
    async restart(until = "ftp ready") {
      await stop();
      run = await launch(
        command,
        cli,
        ["--listen", `${options.host}:${port}`, ...baseArgs],
        env,
        timeoutMs,
        stdout,
        stderr,
      );
      if (until === "ftp ready") await untilFtpReady(run, timeoutMs);
    },
    get ftpReady() {
      return run.ftpReady;
    },
    cleanup: removeCreated,
  };
}
