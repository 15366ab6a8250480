# shellcheck shell=sh
# What every HostingNode script starts with, after the variables its generator sets:
# NODE_NAME, INSTALL_DIR, DATA_DIR, PID_FILE, UNIT, HAPROXY_PID_FILE, HAPROXY_UNIT and the
# HAPROXY_* paths (empty on a hosting node).
UNIT_FILE="/etc/systemd/system/$UNIT.service"
HAPROXY_UNIT_FILE="/etc/systemd/system/$HAPROXY_UNIT.service"
# The address this SSH session reached (sshd sets SSH_CONNECTION), to name the server in failures.
SERVER=$(echo "${SSH_CONNECTION:-}" | awk '{ if (NF == 4) print $3 ":" $4 }')
[ -n "$SERVER" ] || SERVER=$(hostname)
fail() {
  echo "HostingNode $NODE_NAME on $SERVER: $*" >&2
  exit 1
}
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
# stop_service <unit> <unit file> <pid file>: the systemd unit, or the supervisor with that pid file
# (and its process group: the service and whatever it started).
stop_service() {
  if has_systemd && [ -f "$2" ]; then systemctl stop "$1" || true; fi
  if [ -f "$3" ]; then
    pid=$(cat "$3")
    kill -TERM "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 150 ]; do
      sleep 0.2
      tries=$((tries + 1))
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$3"
  fi
}
# remove_unit <unit> <unit file>: disables and deletes a unit this node installed.
remove_unit() {
  if has_systemd && [ -f "$2" ]; then
    systemctl disable "$1" >&2 || true
    rm -f "$2"
    systemctl daemon-reload
  fi
}
stop_agent() { stop_service "$UNIT" "$UNIT_FILE" "$PID_FILE"; }
stop_haproxy() { stop_service "$HAPROXY_UNIT" "$HAPROXY_UNIT_FILE" "$HAPROXY_PID_FILE"; }
# HAProxy's service and the files HostingNode wrote for it (not the agent's routes: they are data).
remove_haproxy() {
  stop_haproxy
  remove_unit "$HAPROXY_UNIT" "$HAPROXY_UNIT_FILE"
  for file in "$HAPROXY_MAIN_CONF" "$HAPROXY_MASTER_SOCKET" "$HAPROXY_STATS_SOCKET"; do
    [ -z "$file" ] || rm -f "$file"
  done
}
