#!/usr/bin/env node
/**
 * The `lbhosting` executable: a thin registry of subcommands, each defined in its own module.
 */
import { Command } from "commander";
import { packageVersion } from "../common/version";
import { registerAgentCommand } from "./run-agent";
import { registerDiffCommand } from "./diff";
import { registerStatusCommand } from "./status";
import { registerSyncCommand } from "./sync";

const program = new Command()
  .name("lbhosting")
  .description("load-balanced web hosting as code: hosting agent and operator tools")
  .version(packageVersion());

registerAgentCommand(program);
registerStatusCommand(program);
registerSyncCommand(program);
registerDiffCommand(program);

program.parseAsync(process.argv).catch((error: Error) => {
  process.stderr.write(`lbhosting: ${error.message}\n`);
  process.exit(1);
});
