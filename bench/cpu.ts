/**
 * CPU seconds per process, from /proc (Linux): figures a loaded, shared machine cannot fool the
 * way it fools wall-clock time. Benchmarks print them per phase next to the seconds.
 *
 * - `processCpu(pid)`: a live process's CPU so far, its own threads (worker threads included) and
 *   the children it has waited for (nginx -t, pure-pw) — for the agents.
 * - `watchTree(pid)`: samples a process tree (the pulumi CLI and what it starts) while it runs and
 *   splits its CPU by role. The total is exact (this process's waited-for children, before and
 *   after); the roles other than the engine are sampled every SAMPLE_MS, so a process's last
 *   moments before it exits may be missed, and what is missed counts as the engine's.
 */
import fs from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node supports
const SAMPLE_MS = 100;

/** utime, stime, cutime, cstime of /proc/<pid>/stat, in seconds; undefined once it is gone. */
function statTimes(pid: number | "self"): { own: number; children: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold spaces: fields are counted after its end.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const field = (n: number) => Number(fields[n - 3]) / TICKS_PER_SECOND;
  return { own: field(14) + field(15), children: field(16) + field(17) };
}

/** A live process's CPU seconds so far, with the children it has waited for. */
export function processCpu(pid: number): number {
  const times = statTimes(pid);
  return times ? times.own + times.children : 0;
}

/** CPU seconds of this process's children that have exited and been waited for. */
const waitedChildrenCpu = (): number => statTimes("self")?.children ?? 0;

export type Role = "engine" | "language host" | "program" | "provider" | "other";

/** What a process of a Pulumi run is, by its command line. */
export function roleOf(commandLine: string[]): Role {
  const joined = commandLine.join(" ");
  if (joined.includes("dynamic-provider") || joined.includes("pulumi-resource-pulumi-nodejs")) return "provider";
  if (/\/cmd\/run(\/|\.js|\s|$)/.test(joined) || joined.includes("@pulumi/pulumi/cmd/run")) return "program";
  if (joined.includes("pulumi-language-nodejs")) return "language host";
  if (/(^|\/)pulumi$/.test(commandLine[0] ?? "")) return "engine";
  return "other";
}

function children(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((task) => fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function commandLine(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

export interface TreeCpu {
  /** Every process of the tree, exact. */
  total: number;
  /** Per role; `engine` is the total minus the sampled others. */
  byRole: Record<Role, number>;
}

/**
 * Call before the root is spawned, tell it the root's pid once spawned (`root`), and `stop` once
 * the root has been waited for.
 */
export function watchTree(): { root: (pid: number) => void; stop: () => TreeCpu } {
  const waitedBefore = waitedChildrenCpu();
  const seen = new Map<number, { role: Role; cpu: number }>();
  let rootPid: number | undefined;
  const sample = () => {
    if (rootPid === undefined) return;
    const queue = [rootPid];
    for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
      const times = statTimes(pid);
      if (!times) continue;
      // The role is read each time (a process first seen between its fork and its exec looks like
      // its parent), but kept once the process has exited: a zombie's command line is empty.
      const line = commandLine(pid);
      const role = line.length > 0 ? roleOf(line) : (seen.get(pid)?.role ?? "other");
      seen.set(pid, { role, cpu: times.own });
      queue.push(...children(pid));
    }
  };
  const timer = setInterval(sample, SAMPLE_MS);
  return {
    root: (pid) => {
      rootPid = pid;
      sample();
    },
    stop: () => {
      clearInterval(timer);
      const total = waitedChildrenCpu() - waitedBefore;
      const byRole: Record<Role, number> = { engine: 0, "language host": 0, program: 0, provider: 0, other: 0 };
      for (const { role, cpu } of seen.values()) if (role !== "engine") byRole[role] += cpu;
      byRole.engine = Math.max(0, total - byRole["language host"] - byRole.program - byRole.provider - byRole.other);
      return { total, byRole };
    },
  };
}
