/**
 * Reloading nginx and answering once the new configuration is live.
 *
 * "Live" means: every new connection is served by the new configuration. On SIGHUP nginx's master
 * parses the configuration, starts new workers, sleeps 100 ms ("allow new processes to start"),
 * and only then tells the old workers to shut down; each old worker then retitles itself "worker
 * process is shutting down" and closes its listening sockets in the same step, so from that moment
 * it accepts nothing and only finishes its in-flight requests (a slow download may take minutes).
 * Until then an old worker still accepts connections and would answer with the old sites. So the
 * reload is live once a new worker exists and no previous worker is still an accepting
 * "worker process" (each shows "… is shutting down", is a zombie, or is gone) — not once the old
 * workers have exited, which waited on other people's downloads.
 *
 * The agent signals the master itself (its pid from the pid file, checked to be an nginx master):
 * `nginx -s reload` would parse every site once more only to find that pid. Without a readable
 * master (no pid file, no /proc) it falls back to `nginx -s reload`, unawaited, with a warning.
 * Workers and titles come from /proc (Linux). Reloads run one at a time.
 */
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DRAIN_TIMEOUT_MS } from "../../../../wire/timeouts";
import { type StepReport, timedStep } from "../steps";
import type { NginxBinary, StagedSites } from "./sites";

const POLL_MS = 10;

/** The master's pid file: given, or the main configuration's `pid` directive (relative to the prefix). */
export function nginxPidFile(nginx: NginxBinary): string | undefined {
  if (nginx.pidFile) return nginx.pidFile;
  if (!nginx.mainConf) return undefined;
  let conf: string;
  try {
    conf = fs.readFileSync(nginx.mainConf, "utf8");
  } catch {
    return undefined;
  }
  const file = /^\s*pid\s+"?([^";\s]+)"?\s*;/m.exec(conf)?.[1];
  if (file === undefined) return undefined;
  if (path.isAbsolute(file)) return file;
  return nginx.prefix === undefined ? undefined : path.join(nginx.prefix, file);
}

async function childPids(pid: number): Promise<number[] | undefined> {
  try {
    const text = (await fs.promises.readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).trim();
    return text === "" ? [] : text.split(/\s+/).map(Number);
  } catch {
    return undefined;
  }
}

/** A process's title (nginx sets it: "nginx: worker process"); "" once it is gone or a zombie. */
async function title(pid: number): Promise<string> {
  try {
    return (await fs.promises.readFile(`/proc/${pid}/cmdline`, "utf8")).replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

/** A worker that still accepts connections: not yet told to shut down (or a title we cannot read as such). */
const accepting = async (pid: number) => /worker process$/.test(await title(pid));

export class ReloadLive {
  /** Worked out once, on start: the main configuration does not move while the agent runs. */
  private readonly pidFile: string | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly nginx: NginxBinary | undefined,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
    private readonly report?: StepReport,
  ) {
    this.pidFile = nginx && nginxPidFile(nginx);
  }

  /** The master and its current children, or undefined (with a warning) when they cannot be read. */
  private async master(): Promise<{ master: number; pids: number[] } | undefined> {
    const file = this.pidFile;
    let master = NaN;
    try {
      if (file !== undefined) master = Number((await fs.promises.readFile(file, "utf8")).trim());
    } catch {
      // reported below
    }
    const valid = Number.isInteger(master) && master > 0 && /^nginx: master process/.test(await title(master));
    const pids = valid ? await childPids(master) : undefined;
    if (pids === undefined) {
      this.warn("nginx reloaded with `nginx -s reload`, not awaited: cannot read its master", {
        pidFile: file ?? "unknown (give --nginx-pid-file)",
      });
      return undefined;
    }
    return { master, pids };
  }

  /** Activate `staged` (reloading nginx when it changed) and resolve once the new configuration is live. */
  activate(staged: StagedSites): Promise<void> {
    const run = this.running.then(() => this.reload(staged));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async reload(staged: StagedSites): Promise<void> {
    if (!staged.changed || !this.nginx) return;
    const before = await this.master();
    if (before === undefined) {
      await staged.activate();
      return;
    }
    await timedStep(
      this.report,
      "reload",
      async () => {
        try {
          process.kill(before.master, "SIGHUP");
        } catch (error) {
          this.warn("nginx reload failed", { reason: (error as Error).message });
          return false;
        }
        return this.untilLive(before);
      },
      (live) => live,
    );
  }

  /** Polls the master's children until the reload is live (see the top of this file); bounded. */
  private async untilLive(before: { master: number; pids: number[] }): Promise<boolean> {
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    for (;;) {
      const current = await childPids(before.master);
      if (current === undefined) return true; // the master is gone: nothing serves the old configuration
      const started = current.some((pid) => !before.pids.includes(pid));
      const old = before.pids.filter((pid) => current.includes(pid));
      const still = started ? (await Promise.all(old.map(accepting))).some(Boolean) : true;
      if (!still) return true;
      if (Date.now() >= deadline) {
        this.warn("nginx's reload is not live yet (a configuration its master refused?); answering anyway", {
          waitedMs: DRAIN_TIMEOUT_MS,
          newWorkers: started,
        });
        return false;
      }
      await sleep(POLL_MS);
    }
  }
}
