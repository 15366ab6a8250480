/** What the process fixtures share: no child outlives the test run, and a child's children. */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** SIGKILLs `child` when the test process exits, so a failing test never leaves it behind. */
export function reapWithTestRun(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** The pids of a process's children (nginx workers, pure-ftpd sessions), from /proc. */
export function childPids(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text === "" ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}
