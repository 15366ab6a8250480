/**
 * A running HAProxy in master-worker mode, driven through its master CLI socket — reload, each
 * worker's stats, draining a server, runtime changes (maps, weights) — plus `haproxy -c` to validate a configuration before use.
 * Everything that waits is asynchronous (a child process or a socket), never on the event loop.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { commandOutput, runCommand } from "../../workers/commands";
import { ApiFailure } from "../../errors";
import { type StepReport, timedStep } from "../steps";

const CHECK_TIMEOUT_MS = 15_000;
const CLI_TIMEOUT_MS = 5_000;
const RELOAD_TIMEOUT_MS = 15_000;
const POLL_MS = 50;
const MAX_MESSAGE = 2000;
/** Runtime commands sent on one master CLI connection (one line, well within HAProxy's buffer). */
const COMMANDS_PER_LINE = 20;
/** What `add server` answers when it worked. */
const SERVER_ADDED = "New server registered.";
/**
 * Connect failures worth another try: right after a reload the master re-executes and its socket's
 * backlog fills (EAGAIN) or it is briefly not listening. Nothing was sent, so a retry is safe.
 */
const CONNECT_RETRYABLE = new Set(["EAGAIN", "ECONNREFUSED", "ENOENT"]);
const CONNECT_ATTEMPTS = 40;
const CONNECT_RETRY_MS = 25;

export interface HaproxyBinary {
  bin: string;
  /** The operator's main configuration (its `global` section), loaded before the agent's file. */
  mainConf?: string;
  /** The master CLI socket (`haproxy -W -S <socket>`): reloads, stats and drains go through it. */
  masterSocket: string;
}

/** The master and its workers, from the master CLI's `show proc`. */
interface Processes {
  reloads: number;
  failedReloads: number;
  /** The worker of the current configuration. */
  current: number[];
  /** Workers of earlier configurations, still finishing their connections. */
  old: number[];
}

export function parseShowProc(text: string): Processes {
  const processes: Processes = { reloads: 0, failedReloads: 0, current: [], old: [] };
  let section: "current" | "old" | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("# workers")) section = "current";
    else if (line.startsWith("# old workers")) section = "old";
    else if (line.startsWith("#")) section = undefined;
    const master = /^\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]/.exec(line);
    if (master) {
      processes.reloads = Number(master[1]);
      processes.failedReloads = Number(master[2]);
    }
    const worker = /^(\d+)\s+worker\b/.exec(line);
    if (worker && section) processes[section].push(Number(worker[1]));
  }
  return processes;
}

/** One server row of `show stat`. */
interface ServerStat {
  backend: string;
  server: string;
  status: string;
  active: number;
}

export function parseShowStat(csv: string): ServerStat[] {
  const lines = csv.split("\n").filter((line) => line.trim() !== "");
  const header = lines[0]?.replace(/^#\s*/, "").split(",") ?? [];
  const column = (name: string) => header.indexOf(name);
  const [px, sv, scur, status] = ["pxname", "svname", "scur", "status"].map(column);
  if ([px, sv, scur, status].some((index) => index < 0)) return [];
  return lines
    .slice(1)
    .map((line) => line.split(","))
    .filter((cells) => cells[sv] !== "FRONTEND" && cells[sv] !== "BACKEND")
    .map((cells) => ({
      backend: cells[px],
      server: cells[sv],
      status: cells[status],
      active: Number(cells[scur]) || 0,
    }));
}

/** HAProxy sends it new connections: up (or still up while failing checks) and not drained. */
export const isHealthy = (status: string): boolean => /^(UP|no check)/.test(status);

async function runFile(bin: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  const result = await runCommand(bin, args, CHECK_TIMEOUT_MS);
  return { ok: result.ok, output: commandOutput(result, MAX_MESSAGE) };
}

/** A running HAProxy, driven through its master CLI. */
export class HaproxyControl {
  constructor(
    private readonly haproxy: HaproxyBinary,
    /** Reports `haproxy -c` (step "validate") and reloads (step "reload"). */
    private readonly report?: StepReport,
  ) {}

  /** `haproxy -c` of the main configuration plus `text`; a 422 `haproxy_rejected` when it refuses. */
  async validate(text: string, next: string): Promise<void> {
    const candidate = path.join(path.dirname(next), `.${path.basename(next)}.check-${process.pid}`);
    await fs.promises.writeFile(candidate, text, { mode: 0o644 });
    try {
      const main = this.haproxy.mainConf ? ["-f", this.haproxy.mainConf] : [];
      const result = await timedStep(
        this.report,
        "validate",
        () => runFile(this.haproxy.bin, ["-c", "-q", ...main, "-f", candidate]),
        (ended) => ended.ok,
      );
      if (!result.ok) {
        throw new ApiFailure(422, "haproxy_rejected", `HAProxy rejected the new configuration: ${result.output}`);
      }
    } finally {
      await fs.promises.rm(candidate, { force: true });
    }
  }

  /**
   * One master CLI command (`@!<pid> …` goes to that worker); the master answers and closes. A
   * connection the master could not take yet is tried again, a bounded number of times.
   */
  async command(line: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.commandOnce(line);
      } catch (error) {
        if (!(error instanceof NotConnected)) throw error;
        if (attempt >= CONNECT_ATTEMPTS) throw error.cause;
        await sleep(CONNECT_RETRY_MS);
      }
    }
  }

  private commandOnce(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(this.haproxy.masterSocket);
      let connected = false;
      let answer = "";
      socket.setEncoding("utf8");
      socket.setTimeout(CLI_TIMEOUT_MS, () =>
        socket.destroy(new Error(`HAProxy's master CLI gave no answer within ${CLI_TIMEOUT_MS} ms`)),
      );
      socket.on("connect", () => {
        connected = true;
        socket.end(`${line}\n`);
      });
      socket.on("data", (chunk: string) => (answer += chunk));
      socket.on("error", (error: NodeJS.ErrnoException) =>
        reject(!connected && CONNECT_RETRYABLE.has(error.code ?? "") ? new NotConnected(error) : error),
      );
      socket.on("close", (hadError) => {
        if (!hadError) resolve(answer);
      });
    });
  }

  async processes(): Promise<Processes> {
    return parseShowProc(await this.command("show proc"));
  }

  /** Every worker's server rows, current worker first. */
  async stats(): Promise<Array<ServerStat & { current: boolean }>> {
    const { current, old } = await this.processes();
    const rows = await Promise.all(
      [...current, ...old].map(async (pid) => {
        const csv = await this.command(`@!${pid} show stat`).catch(() => "");
        return parseShowStat(csv).map((row) => ({ ...row, current: current.includes(pid) }));
      }),
    );
    return rows.flat();
  }

  /**
   * On the current worker: "drain" stops new connections to these `backend/server`s (open ones
   * carry on); "ready" takes them back.
   */
  async setState(servers: string[], state: "drain" | "ready"): Promise<void> {
    const { current } = await this.processes();
    for (const pid of current) {
      for (const server of servers) await this.command(`@!${pid} set server ${server} state ${state}`);
    }
  }

  /**
   * Runtime API commands (`add map`, `set server … weight`, `add server`, …) on every current
   * worker, reported as step "runtime". They answer nothing when they worked (`add server`: its
   * confirmation): any other text is the worker's refusal.
   */
  runtime(commands: string[]): Promise<void> {
    return timedStep(this.report, "runtime", async () => {
      const { current } = await this.processes();
      for (const pid of current) {
        for (let i = 0; i < commands.length; i += COMMANDS_PER_LINE) {
          const line = commands
            .slice(i, i + COMMANDS_PER_LINE)
            .map((command) => `@!${pid} ${command}`)
            .join("; ");
          const answer = (await this.command(line)).replaceAll(SERVER_ADDED, "").trim();
          if (answer !== "") throw new Error(`HAProxy refused a runtime change: ${answer.slice(0, MAX_MESSAGE)}`);
        }
      }
    });
  }

  /** Whether none of these `backend/server`s has a connection open on any worker. */
  async idle(servers: string[]): Promise<boolean> {
    const rows = await this.stats();
    return !rows.some((row) => row.active > 0 && servers.includes(`${row.backend}/${row.server}`));
  }

  /**
   * Reload (the master re-reads its files; the new worker takes over the listening sockets) and
   * resolve once a new worker runs them. Throws when HAProxy reports the reload failed or no new
   * worker appears in time; the previous worker then keeps serving.
   */
  reload(): Promise<void> {
    return timedStep(this.report, "reload", () => this.reloadOnce());
  }

  private async reloadOnce(): Promise<void> {
    const before = await this.processes();
    await this.command("reload").catch(() => ""); // the master may close the connection as it re-executes
    const deadline = Date.now() + RELOAD_TIMEOUT_MS;
    for (;;) {
      await sleep(POLL_MS);
      const now = await this.processes().catch(() => undefined); // the socket is briefly away during the re-exec
      if (now && now.failedReloads > before.failedReloads) throw new Error("HAProxy failed to load the configuration");
      if (now && now.reloads > before.reloads && now.current.some((pid) => !before.current.includes(pid))) return;
      if (Date.now() > deadline) throw new Error(`HAProxy did not reload within ${RELOAD_TIMEOUT_MS} ms`);
    }
  }
}

/** The master CLI did not take the connection, so the command was not sent. */
class NotConnected extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}
