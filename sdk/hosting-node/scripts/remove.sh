# shellcheck shell=sh
# Stops the agent and removes what install.sh put there; the data folder stays (see purge-data.sh).
# Runs after common.sh and the generated header.
stop_agent
if has_systemd && [ -f "$UNIT_FILE" ]; then
  systemctl disable "$UNIT" >&2 || true
  rm -f "$UNIT_FILE"
  systemctl daemon-reload
fi
rm -rf "$INSTALL_DIR"
