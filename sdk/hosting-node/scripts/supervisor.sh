#!/bin/sh
# lbhosting agent supervisor (HostingNode), where systemd does not run: restarts the agent when
# it exits; SIGTERM stops both.   sh run-agent.sh <install dir> <agent command…>
install_dir=$1
shift
pid_file="$install_dir/agent.pid"
echo $$ >"$pid_file"
child=
trap 'trap - TERM INT; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null; wait; rm -f "$pid_file"; exit 0' TERM INT
# Ends when the installation is gone (removed by hand): nothing left to run.
while [ -d "$install_dir" ]; do
  "$@" &
  child=$!
  wait "$child" || true
  sleep 2
done
