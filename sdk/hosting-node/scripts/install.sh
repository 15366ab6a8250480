# shellcheck shell=sh
# Installs (or upgrades in place) the agent package, writes the token (and an HTTPS agent's key)
# from stdin, (re)starts the service and waits for its health; on a load balancer, then HAProxy's
# (haproxy.sh). Runs after common.sh and the generated header, which sets PACKAGE, PACKAGE_SHA256,
# AGENT_VERSION, MANIFEST, NGINX_BIN, PURE_PW_BIN, HAPROXY_BIN (empty when not used), HEALTH_URL,
# HEALTH_TIMEOUT_SECONDS, TLS_CERT and TLS_NAME (empty for a plain HTTP agent), the agent's
# arguments as "$@", and defines write_supervisor, write_health_poller and write_unit (the asset
# files next to this one), and on a load balancer haproxy.sh's functions.
umask 077
mkdir -p "$INSTALL_DIR"
# stdin: the token's line, then an HTTPS agent's key (PEM). Both only ever go to 0600 files.
TOKEN=
IFS= read -r TOKEN || true
[ -n "$TOKEN" ] || fail "the token is empty"
printf '%s\n' "$TOKEN" >"$INSTALL_DIR/token.next"
if [ -n "$TLS_CERT" ]; then
  cat >"$TLS_KEY_FILE.next"
  chmod 600 "$TLS_KEY_FILE.next"
  grep -q 'PRIVATE KEY-----' "$TLS_KEY_FILE.next" || fail "the TLS key is empty"
fi

NODE=$(command -v node) || fail "Node.js is not installed: install Node.js 20 or later"
[ "$("$NODE" -p 'process.versions.node.split(".")[0]')" -ge 20 ] ||
  fail "Node.js $("$NODE" --version) is too old: install Node.js 20 or later"
# The health poller trusts the agent's own certificate, which needs tls' allowPartialTrustChain.
[ -z "$TLS_CERT" ] || "$NODE" -e 'const [major, minor] = process.versions.node.split(".").map(Number);
process.exit(major > 22 || (major === 22 && minor >= 9) || (major === 20 && minor >= 18) ? 0 : 1)' ||
  fail "Node.js $("$NODE" --version) is too old for an HTTPS agent: install Node.js 20.18, 22.9 or later"
NPM=$(command -v npm) || fail "npm is not installed: install npm"
command -v sha256sum >/dev/null 2>&1 || fail "sha256sum is not installed: install coreutils"
[ -z "$NGINX_BIN" ] || [ -x "$NGINX_BIN" ] ||
  fail "nginx is not installed at $NGINX_BIN: install it (apt-get install nginx)"
[ -z "$PURE_PW_BIN" ] || [ -x "$PURE_PW_BIN" ] ||
  fail "pure-pw is not installed at $PURE_PW_BIN: install it (apt-get install pure-ftpd)"
[ -z "$HAPROXY_BIN" ] || [ -x "$HAPROXY_BIN" ] ||
  fail "haproxy is not installed at $HAPROXY_BIN: install it (apt-get install haproxy)"
[ "$(sha256sum "$PACKAGE" | cut -d ' ' -f 1)" = "$PACKAGE_SHA256" ] ||
  fail "$PACKAGE is not the package this program copied: run pulumi up again"

umask 022
printf '%s\n' "$MANIFEST" >"$INSTALL_DIR/package.json"
(cd "$INSTALL_DIR" && "$NPM" install --omit=dev --no-audit --no-fund </dev/null) >&2 ||
  fail "npm install of $PACKAGE failed (see its output above)"
find "$INSTALL_DIR/packages" -name 'lbhosting-agent-*.tgz' ! -path "$PACKAGE" -delete
find "$INSTALL_DIR/.hosting-node" -name 'install-*.sh' ! -path "$0" -delete
write_health_poller >"$INSTALL_DIR/wait-healthy.cjs"

stop_agent
mv "$INSTALL_DIR/token.next" "$INSTALL_DIR/token"
if [ -n "$TLS_CERT" ]; then
  printf '%s\n' "$TLS_CERT" >"$TLS_CERT_FILE"
  mv "$TLS_KEY_FILE.next" "$TLS_KEY_FILE"
else
  rm -f "$TLS_CERT_FILE" "$TLS_KEY_FILE"
fi
# The agent's alone (its database holds every org's password hashes), whatever an older install left.
mkdir -p "$DATA_DIR"
chmod 700 "$DATA_DIR"
# A load balancer's agent checks its routes against HAProxy's main file, so that file comes first;
# a node that is no longer one stops the HAProxy it ran.
if [ -n "$HAPROXY_BIN" ]; then write_haproxy_main_conf; else remove_haproxy; fi
AGENT_CLI="$INSTALL_DIR/node_modules/lbhosting-agent/dist/agent/src/cli.js"
if has_systemd; then
  # The unit's ExecStart: words the generator validated (no spaces or quotes), joined by spaces.
  # shellcheck disable=SC2034 # read by write_unit (agent.service)
  EXEC_START="$NODE $AGENT_CLI $*"
  write_unit >"$UNIT_FILE"
  systemctl daemon-reload
  systemctl enable "$UNIT" >&2
  systemctl restart "$UNIT"
else
  write_supervisor >"$INSTALL_DIR/run-agent.sh"
  setsid sh "$INSTALL_DIR/run-agent.sh" "$INSTALL_DIR" "$PID_FILE" "$NODE" "$AGENT_CLI" "$@" </dev/null >>"$INSTALL_DIR/agent.log" 2>&1 &
fi

"$NODE" "$INSTALL_DIR/wait-healthy.cjs" "$HEALTH_URL" "$AGENT_VERSION" "$HEALTH_TIMEOUT_SECONDS" "$TLS_CERT_FILE" "$TLS_NAME" || {
  [ ! -f "$INSTALL_DIR/agent.log" ] || tail -n 20 "$INSTALL_DIR/agent.log" >&2
  # A failed create is not recorded in the stack, so no delete would ever stop this agent.
  stop_agent
  fail "the agent did not become healthy"
}
# The agent wrote its routes file on start: HAProxy loads it (and the agent reloads it from now on).
[ -z "$HAPROXY_BIN" ] || start_haproxy
