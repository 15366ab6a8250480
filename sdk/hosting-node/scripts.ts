/**
 * The scripts HostingNode runs on a server over SSH (POSIX sh), put together from the asset files
 * in ./scripts and a generated header of validated, single-quoted values. The install script is
 * copied to the server and run as `sh <file>`, so a failure shows its file name, not its text; it
 * carries the supervisor, the systemd unit and the health poller, which it writes next to the
 * agent. They hold no secret: the token (and, for an HTTPS agent, its TLS key after it) arrives on
 * the install script's stdin and goes straight into a 0600 file, which the agent reads
 * (--token-file, --tls-key), so it never appears on a command line, in a log or in plain state.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentInstall, HostingNodeHaproxy } from "./settings";

/** Copied next to the compiled file by `npm run build:assets`. */
const ASSETS = path.join(__dirname, "scripts");
const asset = (file: string): string => fs.readFileSync(path.join(ASSETS, file), "utf8");

/** A single-quoted shell word. */
export const shellQuote = (value: string): string => `'${value.replace(/'/g, `'"'"'`)}'`;

/** HAProxy's settings with every default filled in. */
type HaproxySetup = Required<Omit<HostingNodeHaproxy, "httpsListen">> & Pick<HostingNodeHaproxy, "httpsListen">;

function haproxySetup(install: AgentInstall): HaproxySetup | undefined {
  const { haproxy } = install;
  if (!haproxy) return undefined;
  const own = `${install.installDir}/haproxy`;
  return {
    bin: haproxy.bin,
    httpListen: haproxy.httpListen,
    httpsListen: haproxy.httpsListen,
    mainConf: haproxy.mainConf ?? `${own}/haproxy.cfg`,
    masterSocket: haproxy.masterSocket ?? `${own}/master.sock`,
    statsSocket: haproxy.statsSocket ?? `${own}/admin.sock`,
    confFile: haproxy.confFile ?? `${install.dataDir}/haproxy/lbhosting.cfg`,
  };
}

/**
 * HAProxy in master-worker mode (-W, or -Ws under systemd, which it then notifies), its master CLI
 * socket for the agent, our main file first and the agent's after it; -db keeps the supervised
 * one in the foreground of its supervisor.
 */
function haproxyArgs(haproxy: HaproxySetup, systemd: boolean): string[] {
  return [
    ...(systemd ? ["-Ws"] : ["-W", "-db"]),
    ...["-S", `${haproxy.masterSocket},mode,600`, "-f", haproxy.mainConf, "-f", haproxy.confFile],
  ];
}

/** HAProxy's main configuration: the global section, with a stats socket handing its listeners to the next worker. */
function haproxyMainConf(install: AgentInstall, haproxy: HaproxySetup): string {
  return [
    `# Written by HostingNode ${install.name}; the agent writes its routes into ${haproxy.confFile}.`,
    `# HAProxy runs as: ${haproxy.bin} ${haproxyArgs(haproxy, false).join(" ")}`,
    "global",
    `    stats socket ${haproxy.statsSocket} mode 600 level admin expose-fd listeners`,
    "    stats timeout 30s",
  ].join("\n");
}

/** Where an HTTPS agent's certificate and key are written, next to its token. */
const tlsFiles = (install: AgentInstall) => ({
  cert: `${install.installDir}/tls-cert.pem`,
  key: `${install.installDir}/tls-key.pem`,
});

/** The agent's arguments after its cli.js (no secret: the token and TLS key are read from files). */
function agentArgs(install: AgentInstall): string[] {
  const args = ["--listen", install.listen, "--data", install.dataDir, "--name", install.name];
  args.push("--token-file", `${install.installDir}/token`);
  if (install.tls) args.push("--tls-cert", tlsFiles(install).cert, "--tls-key", tlsFiles(install).key);
  if (install.contentRoot) args.push("--content-root", install.contentRoot);
  if (install.orgIdRange) args.push("--org-id-range", install.orgIdRange);
  if (install.webGid !== undefined) args.push("--web-gid", String(install.webGid));
  const { nginx, ftp } = install;
  if (nginx) {
    args.push("--nginx-bin", nginx.bin);
    if (nginx.mainConf) args.push("--nginx-main-conf", nginx.mainConf);
    if (nginx.prefix) args.push("--nginx-prefix", nginx.prefix);
    if (nginx.pidFile) args.push("--nginx-pid-file", nginx.pidFile);
    if (nginx.confDir) args.push("--nginx-conf-dir", nginx.confDir);
    if (nginx.httpListen) args.push("--http-listen", nginx.httpListen);
    if (nginx.httpsListen) args.push("--https-listen", nginx.httpsListen);
  }
  if (ftp) {
    args.push("--pure-pw-bin", ftp.purePwBin);
    if (ftp.ftpListen) args.push("--ftp-listen", ftp.ftpListen);
    if (ftp.passivePorts) args.push("--ftp-passive-ports", ftp.passivePorts.join(":"));
    if (ftp.readonlyUid !== undefined) args.push("--ftp-readonly-uid", String(ftp.readonlyUid));
    if (ftp.maxSessions !== undefined) args.push("--ftp-max-sessions", String(ftp.maxSessions));
    if (ftp.tls) args.push("--ftp-tls", ftp.tls);
  }
  const haproxy = haproxySetup(install);
  if (haproxy) {
    args.push("--http-listen", haproxy.httpListen, "--haproxy-bin", haproxy.bin);
    if (haproxy.httpsListen) args.push("--https-listen", haproxy.httpsListen);
    args.push("--haproxy-main-conf", haproxy.mainConf, "--haproxy-master-socket", haproxy.masterSocket);
    args.push("--haproxy-conf", haproxy.confFile);
  }
  return args;
}

/** The health URL on the server itself: a wildcard listen address is asked on loopback. */
export function localHealthUrl(listen: string, https = false): string {
  const match = /^(.*):(\d+)$/.exec(listen);
  if (!match) throw new Error(`listen ${listen}: expected host:port`);
  const host = { "0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1" }[match[1]] ?? match[1];
  return `${https ? "https" : "http"}://${host}:${match[2]}/v1/health`;
}

/** The name an HTTPS agent's certificate must carry: its url's host (an IPv6 address without brackets). */
export const tlsServerName = (url: string): string => new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");

/** `NAME='value'` lines, then common.sh: what both scripts start with. */
function header(install: AgentInstall, extra: Record<string, string> = {}): string {
  const haproxy = haproxySetup(install);
  const vars: Record<string, string> = {
    NODE_NAME: install.name,
    INSTALL_DIR: install.installDir,
    DATA_DIR: install.dataDir,
    PID_FILE: `${install.installDir}/agent.pid`,
    UNIT: `lbhosting-agent-${install.name}`,
    // Named on every node, so that a node which stopped being a load balancer stops its HAProxy.
    HAPROXY_PID_FILE: `${install.installDir}/haproxy.pid`,
    HAPROXY_UNIT: `lbhosting-haproxy-${install.name}`,
    HAPROXY_MAIN_CONF: haproxy?.mainConf ?? "",
    HAPROXY_MASTER_SOCKET: haproxy?.masterSocket ?? "",
    HAPROXY_STATS_SOCKET: haproxy?.statsSocket ?? "",
    HAPROXY_CONF: haproxy?.confFile ?? "",
    // Named on every node, so that an agent which stopped serving HTTPS has its key removed.
    TLS_CERT_FILE: tlsFiles(install).cert,
    TLS_KEY_FILE: tlsFiles(install).key,
    ...extra,
  };
  const assignments = Object.entries(vars).map(([key, value]) => `${key}=${shellQuote(value)}\n`);
  return `set -eu\n${assignments.join("")}${asset("common.sh")}`;
}

/**
 * A shell function printing an asset file, through a here-document: quoted (taken literally)
 * unless `expand`, where the shell fills in its ${VARIABLES}.
 */
function embedded(functionName: string, file: string, expand = false): string {
  const delimiter = "LBHOSTING_ASSET";
  const text = asset(file);
  if (text.split("\n").includes(delimiter)) throw new Error(`${file} holds the line ${delimiter}`);
  return `${functionName}() {\n  cat <<${expand ? delimiter : `'${delimiter}'`}\n${text}${delimiter}\n}\n`;
}

function installScript(install: AgentInstall): string {
  const manifest = JSON.stringify({
    private: true,
    dependencies: { "lbhosting-agent": `file:packages/${path.basename(install.packageFile)}` },
    allowScripts: { "better-sqlite3": true, "lbhosting-agent": true },
  });
  const haproxy = haproxySetup(install);
  const values = {
    PACKAGE: install.packageFile,
    PACKAGE_SHA256: install.packageSha256,
    AGENT_VERSION: install.version,
    MANIFEST: manifest,
    NGINX_BIN: install.nginx?.bin ?? "",
    PURE_PW_BIN: install.ftp?.purePwBin ?? "",
    HEALTH_URL: localHealthUrl(install.listen, install.tls !== undefined),
    HEALTH_TIMEOUT_SECONDS: String(install.healthTimeoutSeconds),
    // An HTTPS agent's certificate (no secret), and the name the health poller checks it for.
    TLS_CERT: install.tls?.certificate.trim() ?? "",
    TLS_NAME: install.tls ? tlsServerName(install.tls.url) : "",
    HAPROXY_BIN: haproxy?.bin ?? "",
    HAPROXY_MAIN_CONF_TEXT: haproxy ? haproxyMainConf(install, haproxy) : "",
    // Words the settings check validated (no spaces or quotes), joined by spaces.
    HAPROXY_ARGS: haproxy ? haproxyArgs(haproxy, false).join(" ") : "",
    HAPROXY_UNIT_ARGS: haproxy ? haproxyArgs(haproxy, true).join(" ") : "",
  };
  return [
    header(install, values),
    `set -- ${agentArgs(install).map(shellQuote).join(" ")}\n`,
    embedded("write_supervisor", "supervisor.sh"),
    embedded("write_health_poller", "wait-healthy.cjs"),
    embedded("write_unit", "agent.service", true),
    ...(haproxy
      ? [
          embedded("write_haproxy_unit", "haproxy.service", true),
          embedded("write_haproxy_poller", "wait-haproxy.cjs"),
          asset("haproxy.sh"),
        ]
      : []),
    asset("install.sh"),
  ].join("");
}

function removeScript(install: AgentInstall): string {
  return header(install) + asset("remove.sh") + (install.purgeData ? asset("purge-data.sh") : "");
}

export function agentScripts(install: AgentInstall): { install: string; remove: string } {
  return { install: installScript(install), remove: removeScript(install) };
}
