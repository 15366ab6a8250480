# shellcheck shell=sh
# What every HostingNode script starts with, after the variables its generator sets:
# NODE_NAME, INSTALL_DIR, DATA_DIR, PID_FILE and UNIT.
UNIT_FILE="/etc/systemd/system/$UNIT.service"
# The address this SSH session reached (sshd sets SSH_CONNECTION), to name the server in failures.
SERVER=$(echo "${SSH_CONNECTION:-}" | awk '{ if (NF == 4) print $3 ":" $4 }')
[ -n "$SERVER" ] || SERVER=$(hostname)
fail() {
  echo "HostingNode $NODE_NAME on $SERVER: $*" >&2
  exit 1
}
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
stop_agent() {
  if has_systemd && [ -f "$UNIT_FILE" ]; then systemctl stop "$UNIT" || true; fi
  if [ -f "$PID_FILE" ]; then
    pid=$(cat "$PID_FILE")
    kill -TERM "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -lt 150 ]; do
      sleep 0.2
      tries=$((tries + 1))
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
  fi
}
