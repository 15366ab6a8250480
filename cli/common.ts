/**
 * What the operator commands (`status`, `sync`, `diff`) share: their common options, the token,
 * the agent clients, colours, and turning any failure into ONE line that names the node, says
 * what happened and what to do. Exit codes: 0 in sync / nothing to do, 1 not in sync (or a
 * secondary failed), 2 bad usage or the primary could not be read.
 */
import fs from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import picocolors from "picocolors";
import type { z } from "zod";
import { AgentClient, AgentError, AgentUnreachableError, type ClientFactory } from "../provider/client";
import { EndpointHealth } from "../provider/endpoint-health";
import { caCertificates } from "../provider/trust";
import type { EndpointFilter } from "../provider/sync";
import { endpointSchema, normalizeEndpoint, orgNameSchema, type OrgStatus } from "../wire";
import { type SecondaryState } from "../sdk/outputs";

export interface OperatorOptions {
  org: string;
  primary: string;
  /** The secondaries the operator names: the only ones contacted besides the primary (provider/sync/named.ts). */
  secondary: string[];
  tokenFile?: string;
  timeoutMs?: number;
  caFile?: string;
}

export const EXIT_NOT_IN_SYNC = 1;
const EXIT_USAGE = 2;

/** The command line itself is wrong, or the primary cannot serve as this org's primary. */
class UsageError extends Error {}

export const parseWith =
  (schema: z.ZodType<string>) =>
  (value: string): string => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? "invalid value");
    return parsed.data;
  };

const positiveInt = (value: string): number => {
  if (!/^[1-9]\d{0,8}$/.test(value)) throw new InvalidArgumentError("expected a positive integer (milliseconds)");
  return Number(value);
};

/** A subcommand with --org, --primary, --token-file, --timeout-ms, an example in --help, and exit 2 on usage errors. */
export function operatorCommand(
  name: string,
  description: string,
  help: { example: string; exitCodes: string },
): Command {
  return new Command(name)
    .description(description)
    .requiredOption("--org <name>", "organization name", parseWith(orgNameSchema))
    .requiredOption(
      "--primary <url>",
      "the organization's primary agent, e.g. https://web1.example.net:8443",
      parseWith(endpointSchema),
    )
    .option(
      "--secondary <url>",
      "a secondary this command may contact, repeated for each; any other secondary the primary lists is reported, not contacted",
      (value: string, list: string[]) => [...list, parseWith(endpointSchema)(value)],
      [] as string[],
    )
    .option("--token-file <file>", "file holding the agents' bearer token (default: $LBHOSTING_TOKEN)")
    .option("--ca-file <file>", "PEM file of the CA that signed the agents' TLS certificates (besides the system's)")
    .option(
      "--timeout-ms <n>",
      "timeout to connect to an agent, and for each of its answers, in milliseconds (default 15000)",
      positiveInt,
    )
    .addHelpText("after", `\nExample:\n  ${help.example}\n\nExit codes: ${help.exitCodes}\n`)
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE));
}

function loadToken(tokenFile: string | undefined): string {
  let token: string;
  if (tokenFile !== undefined) {
    try {
      token = fs.readFileSync(tokenFile, "utf8").trim();
    } catch (error) {
      throw new UsageError(
        `cannot read the token file ${tokenFile} (${(error as NodeJS.ErrnoException).code}): check --token-file`,
      );
    }
    if (token === "") throw new UsageError(`the token file ${tokenFile} is empty: put the agents' token in it`);
    return token;
  }
  token = (process.env.LBHOSTING_TOKEN ?? "").trim();
  if (token === "") throw new UsageError("no agent token: give --token-file FILE or set LBHOSTING_TOKEN");
  return token;
}

function loadCa(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read the CA file ${file} (${(error as NodeJS.ErrnoException).code}): check --ca-file`);
  }
  try {
    return caCertificates(text, `the CA file ${file}`);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * The primary's client, a factory for the other nodes (all with the one token), and which
 * secondaries the operator named: the token goes to those only.
 */
export function connect(options: OperatorOptions): {
  primary: AgentClient;
  clientFor: ClientFactory;
  isNamed: EndpointFilter;
} {
  const token = loadToken(options.tokenFile);
  const ca = options.caFile === undefined ? undefined : loadCa(options.caFile);
  const health = new EndpointHealth();
  const clients = new Map<string, AgentClient>();
  const clientFor = (endpoint: string): AgentClient => {
    const key = normalizeEndpoint(endpoint);
    let client = clients.get(key);
    if (!client) clients.set(key, (client = new AgentClient(key, token, { timeoutMs: options.timeoutMs, health, ca })));
    return client;
  };
  const named = new Set(options.secondary.map(normalizeEndpoint));
  return {
    primary: clientFor(options.primary),
    clientFor,
    isNamed: (endpoint) => named.has(normalizeEndpoint(endpoint)),
  };
}

/** The line for a secondary the primary lists but the command line does not name. */
export const unexpectedLine = (org: string, endpoint: string): string =>
  colours.red(
    `unexpected secondary ${endpoint}: ${org}'s primary lists it; not contacted (pass --secondary ${endpoint} if it is yours)`,
  );

/** Refuses a --primary that holds the org as a secondary copy: syncing from it would spread a copy. */
export function requirePrimary(status: OrgStatus, endpoint: string): void {
  if (status.role === "primary") return;
  const hint = status.primary ? `pass --primary ${status.primary}` : "pass the org's primary as --primary";
  throw new UsageError(`${endpoint} holds organization "${status.name}" only as a secondary copy: ${hint}`);
}

/** One line for any failure: which node, what happened, what to do. */
function describeFailure(error: unknown, options: OperatorOptions): string {
  const primary = normalizeEndpoint(options.primary);
  const node = (endpoint: string) => (endpoint === primary ? `the primary ${endpoint}` : `the secondary ${endpoint}`);
  if (error instanceof AgentUnreachableError) {
    return `${node(error.endpoint)} is unreachable (${error.reason}): check that its agent is running and the URL is right, then retry`;
  }
  if (error instanceof AgentError && error.status === 401) {
    return `${node(error.endpoint)} rejected the token (HTTP 401): give the agents' token with --token-file FILE or LBHOSTING_TOKEN`;
  }
  if (error instanceof AgentError && error.status === 404 && error.endpoint === primary) {
    return `organization "${options.org}" does not exist on ${node(primary)} (HTTP 404): check --org and --primary`;
  }
  if (error instanceof AgentError) {
    return `${node(error.endpoint)} answered: ${error.reason}; see that agent's log`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Exit 2 when the check could not run at all (usage, or the primary failed); 1 when a secondary did. */
function exitCodeFor(error: unknown, options: OperatorOptions): number {
  const endpoint = error instanceof AgentError || error instanceof AgentUnreachableError ? error.endpoint : undefined;
  return endpoint === undefined || endpoint === normalizeEndpoint(options.primary) ? EXIT_USAGE : EXIT_NOT_IN_SYNC;
}

/** Wraps a command body: its result is the exit code; any failure becomes one line on stderr. */
export function operatorAction<T extends OperatorOptions>(name: string, run: (options: T) => Promise<number>) {
  return async (options: T): Promise<void> => {
    try {
      process.exitCode = await run(options);
    } catch (error) {
      const line = describeFailure(error, options).replace(/\s*\n\s*/g, " ");
      process.stderr.write(`lbhosting ${name}: ${line}\n`);
      process.exitCode = exitCodeFor(error, options);
    }
  };
}

/** Colours only when stdout is a terminal (and NO_COLOR is unset), so pipes and --json stay plain. */
export const colours = picocolors.createColors(process.stdout.isTTY === true && !process.env.NO_COLOR);

export function paintState(state: SecondaryState | "primary"): (text: string) => string {
  switch (state) {
    case "in-sync":
      return colours.green;
    case "behind":
      return colours.yellow;
    case "primary":
      return colours.cyan;
    default:
      return colours.red;
  }
}

/** A node's problem as one line: client errors already start with the endpoint, other notes get it in front. */
export const nodeNote = (endpoint: string, note: string): string =>
  note.startsWith(endpoint) ? note : `${endpoint}: ${note}`;

export const shortDigest = (digest: string): string => (digest === "" ? "-" : digest.slice(0, 12));

export const printLine = (line: string): void => void process.stdout.write(`${line}\n`);
