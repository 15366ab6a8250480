/** The agent's settings (what `lbhosting-agent` parses into them is cli.ts), their defaults and checks. */
import { NODE_NAME, type PortRange, ftpMaxSessionsSchema, listenAddressSchema } from "../../wire";
import { tokenProblem } from "./http/auth";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, limitsProblem } from "./http/hardening";
import type { Logger } from "./log";
import { DEFAULT_FTP_READONLY_IDS, type FtpIds, servingIdsProblem } from "./render/ftp/accounts";
import type { HaproxyBinary } from "./render/haproxy/control";
import type { NginxBinary } from "./render/nginx/sites";

/** Replica imports carry a whole org (a 1,000-user org is about 0.4 MiB), so they may be larger. */
const DEFAULT_REPLICA_BODY_LIMIT = 64 * 1024 * 1024;
const DEFAULT_CHANGE_LOG_LIMIT = 1000;
const DEFAULT_HTTP_LISTEN = "80";

/** nginx `listen` values the agent renders: "PORT", "IPv4:PORT" or "[IPv6]:PORT". */
const HTTP_LISTEN = /^(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:.]+\]:)?\d{1,5}$/;

export interface AgentOptions {
  /** Where the API listens; port 0 picks a free port (read the bound URL from `listen()`). */
  host: string;
  port: number;
  /** Folder for the SQLite database and generated FTP files. */
  dataDir: string;
  /** This server's name: the X-Served-By header of its sites and `GET /v1/health`. */
  name: string;
  /** The bearer token every request except health must carry. */
  token: string;
  tls?: { cert: Buffer; key: Buffer };
  /** Folder holding `<org>/...` content (the NAS mount). Default `<dataDir>/content`. */
  contentRoot?: string;
  /** Where site files are written. Default `<dataDir>/nginx`. */
  nginxConfDir?: string;
  /** An nginx binary to validate (`-t`) and reload (`-s reload`) with; without it files are only written. */
  nginx?: NginxBinary;
  /** nginx `listen` parameter for rendered sites, and HAProxy's web address on a load balancer. Default "80". */
  httpListen?: string;
  /** Where this node's FTP server listens ("host:port"); only reported by `GET /v1/node`. */
  ftpListen?: string;
  /** This node's FTP passive port range (pure-ftpd's -p); only reported by `GET /v1/node`. */
  ftpPassivePorts?: PortRange;
  /** This node's FTP session limit (pure-ftpd's -c); reported by `GET /v1/node`, so the load balancer queues beyond it. */
  ftpMaxSessions?: number;
  /** HAProxy for the load-balancer role: validated with `-c`, reloaded and read through its master CLI. */
  haproxy?: HaproxyBinary;
  /** The HAProxy file the agent writes for its routes. Default `<dataDir>/haproxy/lbhosting.cfg`. */
  haproxyConf?: string;
  changeLogLimit?: number;
  replicaBodyLimit?: number;
  /** uid/gid for FTP accounts. Default: the agent process's own. */
  ftpIds?: FtpIds;
  /** uid/gid for accounts of read-only FTP services. Default 65534/65534 (nobody). */
  ftpReadonlyIds?: FtpIds;
  /** pure-ftpd's `pure-pw`: check the PDB format against it and prepare the accounts' folders. */
  purePwBin?: string;
  /** Timeouts and the connection cap; unset fields take DEFAULT_CONNECTION_LIMITS. */
  limits?: Partial<ConnectionLimits>;
  logger?: Logger;
}

/** The settings with every default applied: what the agent's parts are built from. */
interface AgentSettings {
  httpListen: string;
  changeLogLimit: number;
  replicaBodyLimit: number;
  ftpWritableIds: FtpIds;
  ftpReadonlyIds: FtpIds;
  limits: ConnectionLimits;
}

export function agentSettings(options: AgentOptions): AgentSettings {
  return {
    httpListen: options.httpListen ?? DEFAULT_HTTP_LISTEN,
    changeLogLimit: options.changeLogLimit ?? DEFAULT_CHANGE_LOG_LIMIT,
    replicaBodyLimit: options.replicaBodyLimit ?? DEFAULT_REPLICA_BODY_LIMIT,
    ftpWritableIds: options.ftpIds ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    ftpReadonlyIds: options.ftpReadonlyIds ?? DEFAULT_FTP_READONLY_IDS,
    limits: {
      ...DEFAULT_CONNECTION_LIMITS,
      ...Object.fromEntries(Object.entries(options.limits ?? {}).filter(([, value]) => value !== undefined)),
    },
  };
}

/** Options that cannot work, as a message for the operator, or undefined. */
export function optionProblem(options: AgentOptions): string | undefined {
  if (!NODE_NAME.test(options.name)) {
    return `agent name ${JSON.stringify(options.name)} must be 1-63 letters, digits, '.', '_' or '-' (give --name)`;
  }
  const token = tokenProblem(options.token);
  if (token) return `the agent token ${token}`;
  if (options.httpListen !== undefined && !HTTP_LISTEN.test(options.httpListen)) {
    return `--http-listen ${JSON.stringify(options.httpListen)} must be PORT, IPV4:PORT or [IPV6]:PORT`;
  }
  if (options.ftpListen !== undefined && !listenAddressSchema.safeParse(options.ftpListen).success) {
    return `--ftp-listen ${JSON.stringify(options.ftpListen)} must be HOST:PORT (an IPv4 address or DNS name)`;
  }
  if (options.ftpMaxSessions !== undefined) {
    const parsed = ftpMaxSessionsSchema.safeParse(options.ftpMaxSessions);
    if (!parsed.success) return `--ftp-max-sessions ${parsed.error.issues[0].message}`;
  }
  if (
    options.changeLogLimit !== undefined &&
    !(Number.isInteger(options.changeLogLimit) && options.changeLogLimit > 0)
  ) {
    return "the change log limit must be a positive integer";
  }
  const settings = agentSettings(options);
  const limits = limitsProblem(settings.limits);
  if (limits) return limits;
  if (options.purePwBin !== undefined) return servingIdsProblem(settings.ftpWritableIds, settings.ftpReadonlyIds);
  return undefined;
}
