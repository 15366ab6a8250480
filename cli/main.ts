#!/usr/bin/env node
/**
 * The `lbhosting` executable: a thin registry of subcommands, each defined in its own module.
 */
import { Command } from "commander";
import { packageVersion } from "../common/version";
import { registerAgentCommand } from "./run-agent";

async function main(): Promise<void> {
  const program = new Command()
    .name("lbhosting")
    .description("load-balanced web hosting as code: hosting agent and operator tools")
    .version(packageVersion());

  registerAgentCommand(program);
  // `lbhosting agent` runs a server that never needs the operator commands' agent client and sync
  // planning: loading them cost every agent start ~90 ms and ~8 MB of resident memory.
  if (process.argv[2] !== "agent") {
    (await import("./status")).registerStatusCommand(program);
    (await import("./sync")).registerSyncCommand(program);
    (await import("./diff")).registerDiffCommand(program);
  }
  await program.parseAsync(process.argv);
}

main().catch((error: Error) => {
  process.stderr.write(`lbhosting: ${error.message}\n`);
  process.exit(1);
});
