/**
 * `lbhosting agent …`: the hosting agent is its own package (`lbhosting-agent`), so a Pulumi
 * program never installs its server dependencies. This command runs the installed agent package
 * in this process, or says how to install it.
 */
import type { Command } from "commander";

interface AgentCli {
  runAgentCli(args: string[], name?: string): Promise<unknown>;
}

export const AGENT_MISSING =
  "the hosting agent is its own package: install it on this server with `npm install -g --allow-scripts=better-sqlite3,lbhosting-agent ./lbhosting-agent-<version>.tgz` (from `npm pack -w agent`) " +
  "(or let HostingNode install it over SSH), then run `lbhosting-agent` or `lbhosting agent`";

/** The agent package's CLI, or undefined when it is not installed next to this package. */
export function loadAgentCli(load: (id: string) => unknown = require): AgentCli | undefined {
  try {
    return load("lbhosting-agent/cli") as AgentCli;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "MODULE_NOT_FOUND" || code === "ERR_PACKAGE_PATH_NOT_EXPORTED") return undefined;
    throw error;
  }
}

export function registerAgentCommand(program: Command): void {
  program
    .command("agent")
    .description("run the hosting agent (the lbhosting-agent package); `lbhosting agent --help` lists its options")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument("[options...]")
    .action(async (args: string[]) => {
      const agent = loadAgentCli();
      if (!agent) {
        process.stderr.write(`lbhosting agent: ${AGENT_MISSING}\n`);
        process.exit(2);
      }
      await agent.runAgentCli(args, "lbhosting agent");
    });
}
