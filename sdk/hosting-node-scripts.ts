/**
 * The shell scripts HostingNode runs on a server over SSH (POSIX sh); the install script is
 * copied to the server and run as `sh <file>`, so a failure shows its file name, not its text.
 * They hold no secret: the
 * token arrives on the install script's stdin and goes straight into a 0600 file, and the agent
 * reads it with --token-file, so it never appears on a command line, in a log or in plain state.
 */
import type { HostingNodeFtp, HostingNodeNginx } from "./hosting-node";
import { NODE_NAME } from "../wire/fields";

export interface AgentInstall {
  name: string;
  version: string;
  installDir: string;
  dataDir: string;
  /** Where the packed agent package was copied on the server. */
  packageFile: string;
  /** sha256 of the package file, checked on the server (a new file with the same name reinstalls). */
  packageSha256: string;
  listen: string;
  contentRoot?: string;
  nginx?: HostingNodeNginx;
  ftp?: HostingNodeFtp;
  purgeData: boolean;
  healthTimeoutSeconds: number;
}

/** A single-quoted shell word. */
export const shellQuote = (value: string): string => `'${value.replace(/'/g, `'"'"'`)}'`;

/** The agent's command line (no secret: the token is read from a file). */
function agentArgs(install: AgentInstall): string[] {
  const args = ["--listen", install.listen, "--data", install.dataDir, "--name", install.name];
  args.push("--token-file", `${install.installDir}/token`);
  if (install.contentRoot) args.push("--content-root", install.contentRoot);
  const { nginx, ftp } = install;
  if (nginx) {
    args.push("--nginx-bin", nginx.bin);
    if (nginx.mainConf) args.push("--nginx-main-conf", nginx.mainConf);
    if (nginx.prefix) args.push("--nginx-prefix", nginx.prefix);
    if (nginx.pidFile) args.push("--nginx-pid-file", nginx.pidFile);
    if (nginx.confDir) args.push("--nginx-conf-dir", nginx.confDir);
    if (nginx.httpListen) args.push("--http-listen", nginx.httpListen);
  }
  if (ftp) {
    args.push("--pure-pw-bin", ftp.purePwBin);
    if (ftp.ftpListen) args.push("--ftp-listen", ftp.ftpListen);
    if (ftp.uid !== undefined) args.push("--ftp-uid", String(ftp.uid));
    if (ftp.gid !== undefined) args.push("--ftp-gid", String(ftp.gid));
  }
  return args;
}

/** The health URL on the server itself: a wildcard listen address is asked on loopback. */
export function localHealthUrl(listen: string): string {
  const match = /^(.*):(\d+)$/.exec(listen);
  if (!match) throw new Error(`listen ${listen}: expected host:port`);
  const host = { "0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1" }[match[1]] ?? match[1];
  return `http://${host}:${match[2]}/v1/health`;
}

/** Waits for /v1/health with the expected version; prints its JSON answer as the last stdout line. */
const HEALTH_WAIT = `
const [url, version, seconds] = process.argv.slice(1);
const deadline = Date.now() + Number(seconds) * 1000;
let last = "no answer";
(async () => {
  while (Date.now() < deadline) {
    try {
      const health = await (await fetch(url, { signal: AbortSignal.timeout(2000) })).json();
      if (health.version === version) return console.log(JSON.stringify({ name: health.name, version: health.version }));
      last = "version " + health.version;
    } catch (error) {
      last = (error.cause && error.cause.code) || error.message;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  console.error("no answer from " + url + " with version " + version + " within " + seconds + " s (last: " + last + ")");
  process.exit(1);
})();
`;

const SHA256 = `process.stdout.write(require("crypto").createHash("sha256").update(require("fs").readFileSync(process.argv[1])).digest("hex"))`;

/** Variables and helpers both scripts start with. */
function prelude(install: AgentInstall): string {
  const vars: Record<string, string> = {
    NODE_NAME: install.name,
    INSTALL_DIR: install.installDir,
    DATA_DIR: install.dataDir,
    PID_FILE: `${install.installDir}/agent.pid`,
    UNIT: `lbhosting-agent-${install.name}`,
  };
  return `set -eu
${Object.entries(vars)
  .map(([key, value]) => `${key}=${shellQuote(value)}`)
  .join("\n")}
UNIT_FILE="/etc/systemd/system/$UNIT.service"
# The address this SSH session reached (sshd sets SSH_CONNECTION), to name the server in failures.
SERVER=$(echo "\${SSH_CONNECTION:-}" | awk '{ if (NF == 4) print $3 ":" $4 }')
[ -n "$SERVER" ] || SERVER=$(hostname)
fail() { echo "HostingNode $NODE_NAME on $SERVER: $*" >&2; exit 1; }
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
stop_agent() {
  if has_systemd && [ -f "$UNIT_FILE" ]; then systemctl stop "$UNIT" || true; fi
  if [ -f "$PID_FILE" ]; then
    pid=$(cat "$PID_FILE")
    kill -TERM "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 150 ]; do sleep 0.2; tries=$((tries + 1)); done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
  fi
}
`;
}

/** Keeps the agent running without systemd: restarts it when it exits, stops it (and itself) on SIGTERM. */
function supervisor(install: AgentInstall, agentCommand: string): string {
  return `#!/bin/sh
# lbhosting agent supervisor (HostingNode): restarts the agent when it exits; SIGTERM stops both.
install_dir=${shellQuote(install.installDir)}
pid_file="$install_dir/agent.pid"
echo $$ >"$pid_file"
child=
trap 'trap - TERM INT; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null; wait; rm -f "$pid_file"; exit 0' TERM INT
# Ends when the installation is gone (removed by hand): nothing left to run.
while [ -d "$install_dir" ]; do
  ${agentCommand} &
  child=$!
  wait "$child" || true
  sleep 2
done`;
}

/** Installs (or upgrades in place) the agent package, writes the token from stdin, (re)starts the service, waits for health. */
function installScript(install: AgentInstall): string {
  const cli = `${install.installDir}/node_modules/lbhosting-agent/dist/agent/src/cli.js`;
  const command = ["$NODE", cli, ...agentArgs(install)];
  const shellCommand = command.map((word) => (word === "$NODE" ? '"$NODE"' : shellQuote(word))).join(" ");
  const unitCommand = command.map((word) => (word === "$NODE" ? "$NODE" : word)).join(" ");
  const manifest = JSON.stringify({
    private: true,
    dependencies: { "lbhosting-agent": `file:packages/${install.packageFile.split("/").pop()}` },
    allowScripts: { "better-sqlite3": true, "lbhosting-agent": true },
  });
  const needs = [
    install.nginx && [install.nginx.bin, "nginx", "apt-get install nginx"],
    install.ftp && [install.ftp.purePwBin, "pure-pw", "apt-get install pure-ftpd"],
  ].filter((need): need is string[] => Array.isArray(need));
  return `${prelude(install)}PACKAGE=${shellQuote(install.packageFile)}
umask 077
mkdir -p "$INSTALL_DIR"
cat >"$INSTALL_DIR/token.next"
[ -s "$INSTALL_DIR/token.next" ] || fail "the token is empty"

NODE=$(command -v node) || fail "Node.js is not installed: install Node.js 20 or later"
[ "$("$NODE" -p 'process.versions.node.split(".")[0]')" -ge 20 ] ||
  fail "Node.js $("$NODE" --version) is too old: install Node.js 20 or later"
NPM=$(command -v npm) || fail "npm is not installed: install npm"
${needs.map(([bin, what, how]) => `[ -x ${shellQuote(bin)} ] || fail ${shellQuote(`${what} is not installed at ${bin}: install it (${how})`)}`).join("\n")}
[ "$("$NODE" -e ${shellQuote(SHA256)} "$PACKAGE")" = ${shellQuote(install.packageSha256)} ] ||
  fail "$PACKAGE is not the package this program copied: run pulumi up again"

umask 022
printf '%s\\n' ${shellQuote(manifest)} >"$INSTALL_DIR/package.json"
(cd "$INSTALL_DIR" && "$NPM" install --omit=dev --no-audit --no-fund </dev/null) >&2 ||
  fail "npm install of $PACKAGE failed (see its output above)"
find "$INSTALL_DIR/packages" -name 'lbhosting-agent-*.tgz' ! -path "$PACKAGE" -delete
find "$INSTALL_DIR/.hosting-node" -name 'install-*.sh' ! -path "$0" -delete

stop_agent
mv "$INSTALL_DIR/token.next" "$INSTALL_DIR/token"
mkdir -p "$DATA_DIR"
if has_systemd; then
  cat >"$UNIT_FILE" <<UNIT
[Unit]
Description=lbhosting hosting agent $NODE_NAME
After=network-online.target

[Service]
ExecStart=${unitCommand}
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable "$UNIT" >&2
  systemctl restart "$UNIT"
else
  cat >"$INSTALL_DIR/run-agent.sh" <<'SUPERVISOR'
${supervisor(install, shellCommand)}
SUPERVISOR
  NODE="$NODE" setsid sh "$INSTALL_DIR/run-agent.sh" </dev/null >>"$INSTALL_DIR/agent.log" 2>&1 &
fi

"$NODE" -e ${shellQuote(HEALTH_WAIT)} ${shellQuote(localHealthUrl(install.listen))} ${shellQuote(install.version)} ${install.healthTimeoutSeconds} || {
  [ ! -f "$INSTALL_DIR/agent.log" ] || tail -n 20 "$INSTALL_DIR/agent.log" >&2
  # A failed create is not recorded in the stack, so no delete would ever stop this agent.
  stop_agent
  fail "the agent did not become healthy"
}
`;
}

/** Stops the agent and removes what install put there; the data folder stays unless purgeData. */
function removeScript(install: AgentInstall): string {
  return `${prelude(install)}stop_agent
if has_systemd && [ -f "$UNIT_FILE" ]; then
  systemctl disable "$UNIT" >&2 || true
  rm -f "$UNIT_FILE"
  systemctl daemon-reload
fi
rm -rf "$INSTALL_DIR"
${install.purgeData ? 'rm -rf "$DATA_DIR"\n' : ""}`;
}

export function agentScripts(install: AgentInstall): { install: string; remove: string } {
  return { install: installScript(install), remove: removeScript(install) };
}

const SAFE_PATH = /^\/(?!.*(?:^|\/)\.\.(?:\/|$))[A-Za-z0-9._/@+-]*$/;
const SAFE_LISTEN = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/;
const SAFE_VERSION = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/;

/**
 * Refuses settings that could break out of the generated scripts or unit file: each names the
 * field and the rule (the values go into shell and systemd text).
 */
export function checkHostingNodeSettings(resource: string, install: AgentInstall): void {
  const problems: string[] = [];
  const check = (field: string, value: string | undefined, rule: RegExp, what: string) => {
    if (value !== undefined && !rule.test(value)) problems.push(`${field} ${JSON.stringify(value)} ${what}`);
  };
  const path = "must be an absolute path of letters, digits and . _ / @ + - (no ..)";
  const listen = "must be host:port (IPv6 in brackets)";
  check(
    "name",
    install.name,
    NODE_NAME,
    "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
  );
  check("agentVersion", install.version, SAFE_VERSION, "must be a version such as 1.2.3");
  check("installDir", install.installDir, SAFE_PATH, path);
  check("dataDir", install.dataDir, SAFE_PATH, path);
  check("contentRoot", install.contentRoot, SAFE_PATH, path);
  check("listen", install.listen, SAFE_LISTEN, listen);
  for (const [key, value] of Object.entries(install.nginx ?? {})) {
    check(`nginx.${key}`, value, key === "httpListen" ? SAFE_LISTEN : SAFE_PATH, key === "httpListen" ? listen : path);
  }
  for (const [key, value] of Object.entries(install.ftp ?? {})) {
    if (key === "purePwBin") check("ftp.purePwBin", value as string, SAFE_PATH, path);
    else if (key === "ftpListen") check("ftp.ftpListen", value as string, SAFE_LISTEN, listen);
    else if (!Number.isInteger(value) || (value as number) <= 0) problems.push(`ftp.${key} must be a positive integer`);
  }
  if (problems.length > 0) throw new Error(`HostingNode ${resource}: ${problems.join("; ")}`);
}
