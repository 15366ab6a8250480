/** The agent's settings (what `lbhosting-agent` parses into them is cli.ts), their defaults and checks. */
import {
  type FtpTls,
  NODE_NAME,
  type PortRange,
  type UnixIdRange,
  ftpMaxSessionsSchema,
  listenAddressSchema,
  unixIdRangeProblem,
} from "../../wire";
import { tokenProblem } from "./http/auth";
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, limitsProblem } from "./http/hardening";
import type { Logger } from "./log";
import { DEFAULT_FTP_READONLY_UID } from "./render/ftp/accounts";
import { DEFAULT_UNIX_ID_RANGE } from "./domain/unix-ids";
import { webGroupId } from "./render/web-group";
import type { HaproxyBinary } from "./render/haproxy/control";
import type { NginxBinary } from "./render/nginx/sites";

/** Replica imports carry a whole org (a 1,000-user org is about 0.4 MiB), so they may be larger. */
const DEFAULT_REPLICA_BODY_LIMIT = 64 * 1024 * 1024;
const DEFAULT_CHANGE_LOG_LIMIT = 1000;
const DEFAULT_HTTP_LISTEN = "80";
const DEFAULT_HTTPS_LISTEN = "443";

/** nginx `listen` values the agent renders: "PORT", "IPv4:PORT" or "[IPv6]:PORT". */
const HTTP_LISTEN = /^(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:.]+\]:)?\d{1,5}$/;

export interface AgentOptions {
  /** Where the API listens; port 0 picks a free port (read the bound URL from `listen()`). */
  host: string;
  port: number;
  /** Folder for the SQLite database and generated FTP files; made 0700 on start. */
  dataDir: string;
  /** This server's name: the X-Served-By header of its sites and `GET /v1/health`. */
  name: string;
  /** The bearer token every request except health must carry. */
  token: string;
  tls?: { cert: Buffer; key: Buffer };
  /**
   * Folder holding `<org>/...` content (the NAS mount). Required with nginx or pure-pw (the data
   * folder is the agent's alone, so nothing served can live in it); else default `<dataDir>/content`.
   */
  contentRoot?: string;
  /** Where the sites file (lbh-sites.conf) is written. Default `<dataDir>/nginx`. */
  nginxConfDir?: string;
  /** An nginx binary to validate (`-t`) and reload (`-s reload`) with; without it files are only written. */
  nginx?: NginxBinary;
  /** nginx `listen` parameter for rendered sites, and HAProxy's web address on a load balancer. Default "80". */
  httpListen?: string;
  /** nginx `listen` parameter for HTTPS sites (with `ssl`), and HAProxy's HTTPS address on a load balancer. Default "443". */
  httpsListen?: string;
  /** Where this node's FTP server listens ("host:port"); only reported by `GET /v1/node`. */
  ftpListen?: string;
  /** This node's FTP passive port range (pure-ftpd's -p); only reported by `GET /v1/node`. */
  ftpPassivePorts?: PortRange;
  /** This node's FTP session limit (pure-ftpd's -c); reported by `GET /v1/node`, so the load balancer queues beyond it. */
  ftpMaxSessions?: number;
  /** How this node's pure-ftpd takes FTPS (`-Y 1` accept, `-Y 3` require); only reported by `GET /v1/node`. */
  ftpTls?: FtpTls;
  /** HAProxy for the load-balancer role: validated with `-c`, reloaded and read through its master CLI. */
  haproxy?: HaproxyBinary;
  /** The HAProxy file the agent writes for its routes. Default `<dataDir>/haproxy/lbhosting.cfg`. */
  haproxyConf?: string;
  changeLogLimit?: number;
  replicaBodyLimit?: number;
  /** Where each org's Unix id (its writable FTP accounts' uid and gid, its folder's owner) comes from. */
  orgIdRange?: UnixIdRange;
  /**
   * The group nginx's workers run as: the group of every org folder (read-only for it) and the gid
   * of read-only FTP accounts. Default: www-data's in /etc/group; required with nginx or pure-pw
   * when there is none.
   */
  webGid?: number;
  /** uid of accounts of read-only FTP services. Default 65534 (nobody). */
  ftpReadonlyUid?: number;
  /** pure-ftpd's `pure-pw`: check the PDB format against it and prepare the accounts' folders. */
  purePwBin?: string;
  /** Timeouts and the connection cap; unset fields take DEFAULT_CONNECTION_LIMITS. */
  limits?: Partial<ConnectionLimits>;
  logger?: Logger;
}

/** The settings with every default applied: what the agent's parts are built from. */
interface AgentSettings {
  httpListen: string;
  httpsListen: string;
  changeLogLimit: number;
  replicaBodyLimit: number;
  orgIdRange: UnixIdRange;
  /** Set when the agent serves content (nginx or pure-pw): it then owns org folders (N:webGid 2750). */
  webGid: number | undefined;
  ftpReadonlyUid: number;
  limits: ConnectionLimits;
}

/** Whether the agent serves content (nginx or pure-ftpd read it): then folders are owned per org. */
const serves = (options: AgentOptions): boolean => options.nginx !== undefined || options.purePwBin !== undefined;

export function agentSettings(options: AgentOptions): AgentSettings {
  return {
    httpListen: options.httpListen ?? DEFAULT_HTTP_LISTEN,
    httpsListen: options.httpsListen ?? DEFAULT_HTTPS_LISTEN,
    changeLogLimit: options.changeLogLimit ?? DEFAULT_CHANGE_LOG_LIMIT,
    replicaBodyLimit: options.replicaBodyLimit ?? DEFAULT_REPLICA_BODY_LIMIT,
    orgIdRange: options.orgIdRange ?? DEFAULT_UNIX_ID_RANGE,
    webGid: serves(options) ? (options.webGid ?? webGroupId()) : undefined,
    ftpReadonlyUid: options.ftpReadonlyUid ?? DEFAULT_FTP_READONLY_UID,
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
  if (options.httpsListen !== undefined && !HTTP_LISTEN.test(options.httpsListen)) {
    return `--https-listen ${JSON.stringify(options.httpsListen)} must be PORT, IPV4:PORT or [IPV6]:PORT`;
  }
  if ((options.httpsListen ?? DEFAULT_HTTPS_LISTEN) === (options.httpListen ?? DEFAULT_HTTP_LISTEN)) {
    return "--https-listen must differ from --http-listen";
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
  return servingProblem(options, settings);
}

/** What a serving agent (nginx or pure-pw) needs: a content root of its own, a web group, ids apart. */
function servingProblem(options: AgentOptions, settings: AgentSettings): string | undefined {
  const range = settings.orgIdRange;
  const rangeProblem = unixIdRangeProblem(range);
  if (rangeProblem) return `--org-id-range ${rangeProblem}`;
  if (!serves(options)) return undefined;
  if (options.contentRoot === undefined) {
    return "--content-root is required with --nginx-bin or --pure-pw-bin: served content cannot live in the data folder, which is the agent's alone (0700)";
  }
  const webGid = settings.webGid;
  if (webGid === undefined) return "give --web-gid, the group nginx's workers run as (there is no www-data group here)";
  if (!Number.isInteger(webGid) || webGid <= 0) {
    return "--web-gid must be a group other than root's (pure-ftpd refuses gid 0, and root's group reads everything)";
  }
  const readonlyUid = settings.ftpReadonlyUid;
  if (!Number.isInteger(readonlyUid) || readonlyUid <= 0) {
    return "--ftp-readonly-uid cannot be 0 (pure-ftpd refuses root logins)";
  }
  const inRange = (id: number) => id >= range.start && id <= range.end;
  if (inRange(readonlyUid)) {
    return `--org-id-range must not hold --ftp-readonly-uid ${readonlyUid}, or an org's accounts could write read-only services`;
  }
  if (inRange(webGid))
    return `--org-id-range must not hold --web-gid ${webGid}, or an org's accounts would read every org`;
  return undefined;
}
