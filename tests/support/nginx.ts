/**
 * Test fixture: a real nginx (the Debian package) on its own loopback address, with its own
 * prefix, main configuration, pid file and logs, including the agent's site folder. It runs in
 * the foreground ("daemon off") as our child, so it is stopped by pid.
 *
 *   const bin = nginxBinaryOrSkip(this);                 // in a mocha before()
 *   const nginx = await startNginx({ bin, host: "127.0.1.21", includeDirs: [agentConfDir] });
 *   // agent: --nginx-bin bin --nginx-main-conf nginx.mainConf --nginx-prefix nginx.prefix
 *   //        --http-listen nginx.listen
 *   await nginx.stop();
 *
 * Outside CI, a missing nginx skips the calling suite with the reason; with CI=true it fails.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { canConnect, freePort } from "./ports";
import { childPids, reapWithTestRun, stopProcessTree } from "./processes";
import { requireTool } from "./requirements";

const CANDIDATES = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"];
/** The group test nginx workers run as: the agent's default --web-gid (www-data's gid). */
const WEB_GROUP = "www-data";

/** The nginx binary: $NGINX_BIN, a usual install path, or undefined. */
export function findNginx(): string | undefined {
  const configured = process.env.NGINX_BIN;
  if (configured) return configured;
  const onPath = (process.env.PATH ?? "").split(":").map((dir) => path.join(dir, "nginx"));
  return [...CANDIDATES, ...onPath].find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** nginx for a test suite: found, or skip (outside CI) / throw (CI=true) with the reason. */
export const nginxBinaryOrSkip = (context: Mocha.Context): string =>
  requireTool(context, "nginx", findNginx, "apt-get install -y nginx, or set NGINX_BIN");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface NginxOptions {
  bin: string;
  host: string;
  /** Default: a free port on `host`. */
  port?: number;
  /** Folders whose `*.conf` files are included in the http block (the agent's --nginx-conf-dir). */
  includeDirs: string[];
}

export interface NginxProcess {
  readonly bin: string;
  readonly host: string;
  readonly port: number;
  /** "host:port", the value for the agent's --http-listen. */
  readonly listen: string;
  /** "http://host:port". */
  readonly url: string;
  readonly prefix: string;
  readonly mainConf: string;
  /** The master's pid (a new one after start()). */
  readonly pid: number;
  /** nginx's error log so far. */
  errorLog(): string;
  /** pids of the current worker processes. */
  workerPids(): number[];
  /**
   * Wait (bounded, 10 s) until none of `previous` workers is left: after a reload, old workers may
   * still accept a connection or two before they wind down, and would answer with the old sites.
   */
  waitForReload(previous: number[]): Promise<void>;
  /** Stop nginx (SIGQUIT, then SIGKILL of master and workers after 5 s), keeping its prefix for start(). */
  halt(): Promise<void>;
  /** Start it again after halt(), on the same address with the same configuration. */
  start(): Promise<void>;
  /** Stop nginx (SIGQUIT, then SIGKILL of master and workers after 5 s) and remove its prefix. */
  stop(): Promise<void>;
}

export async function startNginx(options: NginxOptions): Promise<NginxProcess> {
  const port = options.port ?? (await freePort(options.host));
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "lbh-nginx-"));
  fs.chmodSync(prefix, 0o755);
  fs.mkdirSync(path.join(prefix, "logs"));
  fs.mkdirSync(path.join(prefix, "temp"));
  const mainConf = path.join(prefix, "nginx.conf");
  const temp = (kind: string) => `    ${kind}_temp_path ${path.join(prefix, "temp", kind)};`;
  fs.writeFileSync(
    mainConf,
    [
      "daemon off;",
      // The agent's default --web-gid is www-data's: org folders are readable by that group only.
      // (A master that is not root cannot switch users, and nginx ignores the line with a warning.)
      ...(process.getuid?.() === 0 ? [`user nobody ${WEB_GROUP};`] : []),
      "worker_processes 1;",
      `pid ${path.join(prefix, "nginx.pid")};`,
      `error_log ${path.join(prefix, "logs", "error.log")} warn;`,
      "events { worker_connections 256; }",
      "http {",
      `    access_log ${path.join(prefix, "logs", "access.log")};`,
      temp("client_body"),
      temp("proxy"),
      temp("fastcgi"),
      temp("uwsgi"),
      temp("scgi"),
      "    types { text/html html; text/plain txt; }",
      "    default_type application/octet-stream;",
      `    server { listen ${options.host}:${port} default_server; return 404; }`,
      ...options.includeDirs.map((dir) => `    include ${path.join(dir, "*.conf")};`),
      "}",
      "",
    ].join("\n"),
  );

  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(prefix, "logs", "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  let running = await launch(options.bin, prefix, mainConf, options.host, port, errorLog);

  return {
    bin: options.bin,
    host: options.host,
    port,
    listen: `${options.host}:${port}`,
    url: `http://${options.host}:${port}`,
    prefix,
    mainConf,
    get pid() {
      return running.child.pid as number;
    },
    errorLog,
    workerPids: () => childPids(running.child.pid as number),
    async waitForReload(previous) {
      const reloaded = () => {
        const current = childPids(running.child.pid as number);
        return current.length > 0 && current.every((pid) => !previous.includes(pid));
      };
      const limit = Date.now() + 10_000;
      while (!reloaded()) {
        if (Date.now() > limit) throw new Error(`nginx did not reload: ${errorLog()}`);
        await sleep(20);
      }
    },
    halt: () => running.halt(),
    async start() {
      if (running.child.exitCode === null && running.child.signalCode === null) return;
      running = await launch(options.bin, prefix, mainConf, options.host, port, errorLog);
    },
    async stop() {
      await running.halt();
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** Start nginx in the foreground with `prefix` and `mainConf`, and wait until it accepts connections. */
async function launch(
  bin: string,
  prefix: string,
  mainConf: string,
  host: string,
  port: number,
  errorLog: () => string,
): Promise<{ child: ChildProcess; halt: () => Promise<void> }> {
  const child = spawn(bin, ["-p", prefix, "-c", mainConf], { stdio: ["ignore", "ignore", "pipe"] });
  reapWithTestRun(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));

  const deadline = Date.now() + 10_000;
  while (!(await canConnect(host, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not start on ${host}:${port}: ${stderr}${errorLog()}`);
    }
    await sleep(50);
  }
  /** SIGQUIT (graceful), then SIGKILL of master and workers after 5 s; resolves once it exited. */
  const halt = () => stopProcessTree(child, "SIGQUIT");
  return { child, halt };
}
