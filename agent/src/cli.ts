#!/usr/bin/env node
/**
 * `lbhosting-agent` (also run as `lbhosting agent` by the library's CLI): run the hosting agent on
 * this server. Parses options, reads the token (file or LBHOSTING_AGENT_TOKEN), prints one
 * `{"msg":"listening","url":...}` line once bound, and stops cleanly (exit 0) on SIGTERM / SIGINT.
 */
import fs from "node:fs";
import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { type FtpTls, type UnixIdRange, ftpTlsSchema, parseUnixIdRange } from "../../wire";
import { jsonLogger } from "./log";
import type { AgentOptions } from "./options";
import { packageVersion } from "../../common/version";

interface AgentCliOptions {
  listen: string;
  data: string;
  name?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  contentRoot?: string;
  nginxConfDir?: string;
  nginxBin?: string;
  nginxMainConf?: string;
  nginxPrefix?: string;
  nginxPidFile?: string;
  httpListen?: string;
  httpsListen?: string;
  ftpListen?: string;
  ftpPassivePorts?: [number, number];
  ftpMaxSessions?: number;
  ftpTls?: FtpTls;
  haproxyBin?: string;
  haproxyMainConf?: string;
  haproxyMasterSocket?: string;
  haproxyConf?: string;
  changeLogLimit?: number;
  orgIdRange?: UnixIdRange;
  webGid?: number;
  ftpReadonlyUid?: number;
  /** Flags of earlier versions, refused with what replaced them. */
  ftpUid?: unknown;
  ftpGid?: unknown;
  ftpReadonlyGid?: unknown;
  purePwBin?: string;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
  authFailuresPerMinute?: number;
}

/** "HOST:PORT" or "[IPV6]:PORT" → parts. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535)
    throw new InvalidArgumentError("expected HOST:PORT, e.g. 127.0.0.1:8443 (port 0 = any free port)");
  return { host: match[1] ?? match[2], port };
}

const nonNegativeInt = (value: string): number => {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError("expected a non-negative integer");
  return Number(value);
};

function orgIdRange(value: string): UnixIdRange {
  const range = parseUnixIdRange(value);
  if (typeof range === "string") throw new InvalidArgumentError(range);
  return range;
}

/** "LOW:HIGH" → [low, high], ports 1-65535, low <= high. */
function parsePortRange(value: string): [number, number] {
  const match = /^(\d{1,5}):(\d{1,5})$/.exec(value);
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(low >= 1 && high <= 65535 && low <= high)) {
    throw new InvalidArgumentError("expected LOW:HIGH, e.g. 30000:30099 (ports 1-65535, LOW <= HIGH)");
  }
  return [low, high];
}

function readToken(tokenFile: string | undefined): string {
  if (tokenFile !== undefined) return fs.readFileSync(tokenFile, "utf8").trim();
  return (process.env.LBHOSTING_AGENT_TOKEN ?? "").trim();
}

/** How the agent was invoked (`lbhosting-agent`, or `lbhosting agent`), for error lines. */
let invokedAs = "lbhosting-agent";

function fail(message: string): never {
  process.stderr.write(`${invokedAs}: ${message}\n`);
  process.exit(2);
}

async function runAgent(cli: AgentCliOptions): Promise<void> {
  // Loaded here, not at the top, so other lbhosting subcommands do not pay for Fastify at start-up.
  const [{ createAgent }, { optionProblem }] = await Promise.all([import("./main"), import("./options")]);
  // Refused, not ignored: an old unit file would otherwise run every org's accounts as ids it no longer names.
  if (cli.ftpUid !== undefined || cli.ftpGid !== undefined) {
    fail(
      "--ftp-uid and --ftp-gid are gone: each organization's writable FTP accounts run as its own id, from --org-id-range START-END (see agent/README.md)",
    );
  }
  if (cli.ftpReadonlyGid !== undefined) {
    fail("--ftp-readonly-gid is gone: read-only FTP accounts run with the web group, --web-gid (see agent/README.md)");
  }
  const log = jsonLogger();
  const listen = parseListen(cli.listen);
  const token = readToken(cli.tokenFile);
  if (token === "") fail("no token: give --token-file FILE or set LBHOSTING_AGENT_TOKEN");
  if ((cli.tlsCert === undefined) !== (cli.tlsKey === undefined)) fail("--tls-cert and --tls-key go together");
  if (
    cli.nginxBin === undefined &&
    (cli.nginxMainConf !== undefined || cli.nginxPrefix !== undefined || cli.nginxPidFile !== undefined)
  ) {
    fail("--nginx-main-conf, --nginx-prefix and --nginx-pid-file need --nginx-bin");
  }
  if ((cli.haproxyBin === undefined) !== (cli.haproxyMasterSocket === undefined)) {
    fail("--haproxy-bin and --haproxy-master-socket go together");
  }
  if (cli.haproxyBin === undefined && cli.haproxyMainConf !== undefined)
    fail("--haproxy-main-conf needs --haproxy-bin");
  const options: AgentOptions = {
    ...listen,
    dataDir: cli.data,
    name: cli.name ?? os.hostname(),
    token,
    ...(cli.tlsCert && cli.tlsKey
      ? { tls: { cert: fs.readFileSync(cli.tlsCert), key: fs.readFileSync(cli.tlsKey) } }
      : {}),
    contentRoot: cli.contentRoot,
    nginxConfDir: cli.nginxConfDir,
    ...(cli.nginxBin
      ? {
          nginx: { bin: cli.nginxBin, mainConf: cli.nginxMainConf, prefix: cli.nginxPrefix, pidFile: cli.nginxPidFile },
        }
      : {}),
    httpListen: cli.httpListen,
    httpsListen: cli.httpsListen,
    ftpListen: cli.ftpListen,
    ftpPassivePorts: cli.ftpPassivePorts,
    ftpMaxSessions: cli.ftpMaxSessions,
    ftpTls: cli.ftpTls,
    ...(cli.haproxyBin && cli.haproxyMasterSocket
      ? { haproxy: { bin: cli.haproxyBin, mainConf: cli.haproxyMainConf, masterSocket: cli.haproxyMasterSocket } }
      : {}),
    haproxyConf: cli.haproxyConf,
    changeLogLimit: cli.changeLogLimit,
    orgIdRange: cli.orgIdRange,
    webGid: cli.webGid,
    ftpReadonlyUid: cli.ftpReadonlyUid,
    purePwBin: cli.purePwBin,
    limits: {
      requestTimeoutMs: cli.requestTimeoutMs,
      idleTimeoutMs: cli.idleTimeoutMs,
      maxConnections: cli.maxConnections,
      authFailuresPerMinute: cli.authFailuresPerMinute,
    },
    logger: log,
  };
  const problem = optionProblem(options);
  if (problem) fail(problem);

  const agent = createAgent(options);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log("info", "stopping", { signal });
    agent.close().then(
      () => process.exit(0),
      (error: Error) => {
        log("error", "stop failed", { error: error.message });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const url = await agent.listen();
  log("info", "listening", { url, name: options.name, pid: process.pid });
}

/** The agent's command line; `name` is how it was invoked, for --help and errors. */
function agentProgram(name = "lbhosting-agent"): Command {
  return new Command(name)
    .version(packageVersion())
    .description("run the hosting agent: the HTTP API that keeps this server's hosting configuration")
    .requiredOption("--listen <host:port>", "address of the API (port 0 picks a free port)")
    .requiredOption("--data <dir>", "folder for the database and generated FTP files")
    .option("--name <name>", "this server's name (X-Served-By header); default: the host name")
    .option("--token-file <file>", "file holding the bearer token (else LBHOSTING_AGENT_TOKEN)")
    .option("--tls-cert <file>", "serve the API over HTTPS with this certificate (PEM)")
    .option("--tls-key <file>", "private key for --tls-cert (PEM)")
    .option(
      "--content-root <dir>",
      "folder holding each org's content (the NAS mount); required with --nginx-bin or --pure-pw-bin, else default <data>/content",
    )
    .option("--nginx-conf-dir <dir>", "where the sites file (lbh-sites.conf) is written; default <data>/nginx")
    .option("--nginx-bin <path>", "nginx binary used to validate (-t) and reload (-s reload) configuration")
    .option("--nginx-main-conf <file>", "nginx main configuration (-c) for validate and reload")
    .option("--nginx-prefix <dir>", "nginx prefix (-p) for validate and reload")
    .option("--nginx-pid-file <file>", "nginx master's pid file, to await reloads; default: the main conf's pid")
    .option(
      "--http-listen <host:port>",
      "where sites are served: nginx's listen, or HAProxy's on a load balancer; default 80",
    )
    .option(
      "--https-listen <host:port>",
      "where HTTPS sites are served: nginx's listen (ssl), or HAProxy's on a load balancer; default 443",
    )
    .option("--ftp-listen <host:port>", "where this node's FTP server listens (reported by GET /v1/node)")
    .option(
      "--ftp-passive-ports <low:high>",
      "this node's FTP passive port range (reported by GET /v1/node)",
      parsePortRange,
    )
    .option(
      "--ftp-max-sessions <n>",
      "this node's FTP session limit, the same as pure-ftpd's -c (reported by GET /v1/node; the load balancer queues beyond it)",
      nonNegativeInt,
    )
    .addOption(
      new Option(
        "--ftp-tls <mode>",
        "how this node's pure-ftpd takes FTPS: off, accept (its -Y 1) or require (its -Y 3: cleartext logins and data refused); reported by GET /v1/node",
      ).choices(ftpTlsSchema.options),
    )
    .option("--haproxy-bin <path>", "load-balancer role: HAProxy binary used to validate (-c) its configuration")
    .option(
      "--haproxy-master-socket <path>",
      "HAProxy's master CLI socket (haproxy -W -S PATH): reloads, drains, stats",
    )
    .option("--haproxy-main-conf <file>", "HAProxy's main configuration (global section), included in validation")
    .option("--haproxy-conf <file>", "the HAProxy file the agent writes; default <data>/haproxy/lbhosting.cfg")
    .option(
      "--change-log-limit <n>",
      "the fewest change-log entries kept per org (default 1000; trimmed in steps of n/16)",
      nonNegativeInt,
    )
    .option(
      "--org-id-range <start-end>",
      "each org's Unix id (its writable FTP accounts' uid and gid, its folder's owner) comes from here (default 200000-999999)",
      orgIdRange,
    )
    .option(
      "--web-gid <gid>",
      "the group nginx's workers run as: group of every org folder, gid of read-only FTP accounts (default: www-data's)",
      nonNegativeInt,
    )
    .option("--ftp-readonly-uid <uid>", "uid of accounts of read-only FTP services (default 65534)", nonNegativeInt)
    .addOption(new Option("--ftp-uid <uid>").hideHelp())
    .addOption(new Option("--ftp-gid <gid>").hideHelp())
    .addOption(new Option("--ftp-readonly-gid <gid>").hideHelp())
    .option(
      "--pure-pw-bin <path>",
      "pure-ftpd's pure-pw: serve FTP accounts from <data>/ftp/pureftpd.pdb (folders prepared, format checked)",
    )
    .option("--request-timeout-ms <ms>", "time a client has to send a whole request (default 30000)", nonNegativeInt)
    .option(
      "--idle-timeout-ms <ms>",
      "idle keep-alive connections are closed after this (default 5000)",
      nonNegativeInt,
    )
    .option("--max-connections <n>", "open connections beyond this are refused (default 512)", nonNegativeInt)
    .option(
      "--auth-failures-per-minute <n>",
      "failed authentications a client address may make in a minute before 429 (default 30)",
      nonNegativeInt,
    )
    .action(async (cli: AgentCliOptions) => {
      try {
        await runAgent(cli);
      } catch (error) {
        fail((error as Error).message);
      }
    });
}

/** Runs the agent with the arguments after the command name (`lbhosting agent` passes its own). */
export function runAgentCli(args: string[], name = invokedAs): Promise<Command> {
  invokedAs = name;
  return agentProgram(name).parseAsync(args, { from: "user" });
}

if (require.main === module) void runAgentCli(process.argv.slice(2));
