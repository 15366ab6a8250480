/**
 * Waiting for an nginx reload to take full effect. `nginx -s reload` only signals the master,
 * which starts new workers and asks the old ones to finish their in-flight requests and exit.
 * Until they have, an old worker may still be sending requests to a backend the new
 * configuration dropped; a caller about to remove that backend ("drain, then remove") waits here.
 * The master's pid comes from its pid file, its workers are its children in /proc (Linux).
 */
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DRAIN_TIMEOUT_MS } from "../../../../wire/timeouts";
import type { NginxBinary, StagedSites } from "./sites";

const POLL_MS = 25;

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

export class ReloadDrain {
  /** Worked out once, on start: the main configuration does not move while the agent runs. */
  private readonly pidFile: string | undefined;

  constructor(
    private readonly nginx: NginxBinary | undefined,
    private readonly warn: (msg: string, fields: Record<string, unknown>) => void,
  ) {
    this.pidFile = nginx && nginxPidFile(nginx);
  }

  /** The master and its current workers, or undefined (with a warning) when they cannot be read. */
  private async workers(): Promise<{ master: number; pids: number[] } | undefined> {
    const file = this.pidFile;
    let master = NaN;
    try {
      if (file !== undefined) master = Number((await fs.promises.readFile(file, "utf8")).trim());
    } catch {
      // reported below
    }
    const pids = Number.isInteger(master) && master > 0 ? await childPids(master) : undefined;
    if (pids === undefined) {
      this.warn("nginx reload not awaited: cannot read the master's workers", {
        pidFile: file ?? "unknown (give --nginx-pid-file)",
      });
      return undefined;
    }
    return { master, pids };
  }

  /** Activate `staged` (reloading nginx when it changed) and resolve once the previous workers have exited. */
  async activate(staged: StagedSites): Promise<void> {
    const before = staged.changed && this.nginx ? await this.workers() : undefined;
    if (!(await staged.activate()) || before === undefined) return;
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    for (;;) {
      const current = await childPids(before.master);
      if (current === undefined || before.pids.every((pid) => !current.includes(pid))) return;
      if (Date.now() >= deadline) {
        this.warn("nginx's previous workers are still running; answering anyway", {
          waitedMs: DRAIN_TIMEOUT_MS,
          workers: before.pids.filter((pid) => current.includes(pid)),
        });
        return;
      }
      await sleep(POLL_MS);
    }
  }
}
