# shellcheck shell=sh
# Appended to remove.sh when the node was declared with purgeData: its data goes with it.
rm -rf "$DATA_DIR"
