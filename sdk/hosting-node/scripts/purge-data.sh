# shellcheck shell=sh
# Appended to remove.sh when the node was declared with purgeData: its data goes with it (and a
# load balancer's routes file, wherever it was put).
rm -rf "$DATA_DIR"
[ -z "$HAPROXY_CONF" ] || rm -f "$HAPROXY_CONF"
