# shellcheck shell=sh
# Stops the agent (and a load balancer's HAProxy) and removes what install.sh put there; the data
# folder stays (see purge-data.sh). Runs after common.sh and the generated header.
stop_agent
remove_unit "$UNIT" "$UNIT_FILE"
remove_haproxy
rm -rf "$INSTALL_DIR"
