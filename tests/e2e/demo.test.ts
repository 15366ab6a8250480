/** `npm run demo`, the project's main job, runs to the end: the secondary is in sync at the end, and the stack outputs say so. */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { REPO_ROOT, requirePulumi } from "../support/pulumi";

describe("e2e: the demo", function () {
  it("exits 0 and its last table shows the secondary in-sync", async function () {
    requirePulumi(this);
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(REPO_ROOT, "dist", "scripts", "demo.js")], {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 10 * 60_000);
      child.on("close", (exitCode) => {
        clearTimeout(timer);
        resolve({ code: exitCode, output });
      });
    });
    expect(code, output.slice(-3000)).to.equal(0);
    const afterHeal = output.slice(output.lastIndexOf("no program change"));
    expect(afterHeal).to.match(/\n\s+secondary\s+secondary\s+\d+\s+[0-9a-f]{12}\s+in-sync/);
    // The stack outputs (the quick start's SyncCheck) are the primary's, after the first up and after the heal.
    expect(output.match(/the outputs match the primary/g)).to.have.length(2);
    expect(afterHeal).to.match(
      /pulumi stack output: generation \d+, digest [0-9a-f]{12}, inSync true \(\S+ in-sync at \d+\)/,
    );
    expect(output).to.include("drift detected");
    expect(output).to.include("left no process behind");
    // The command plugin ran from PULUMI_HOME, where the demo installed it, as a user's would.
    expect(output).to.not.include("pulumi-resource-command from $PATH");
  });
});
