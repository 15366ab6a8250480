/** Where the provider's sync lines go: Pulumi's log (the provider's output) and, if named, a file. */
import * as fs from "node:fs";

/**
 * A logger for SyncOptions.log and the failover steps: each line to `print` (stdout reaches the
 * Pulumi CLI) and, when `file()` names one, appended to it as JSON (tests and benchmarks count syncs).
 */
export function syncLogger(
  file: () => string | undefined,
  print: (line: string) => void = (line) => console.log(line),
  now: () => Date = () => new Date(),
): (line: string) => void {
  return (line) => {
    print(`lbhosting: ${line}`);
    const path = file();
    if (path) fs.appendFileSync(path, JSON.stringify({ at: now().toISOString(), line }) + "\n");
  };
}
