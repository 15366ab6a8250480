#!/bin/sh
# lbhosting supervisor (HostingNode), where systemd does not run: restarts its command (the agent,
# or a load balancer's HAProxy) when it exits; SIGTERM stops both.
#   sh run-agent.sh <install dir> <pid file> <command…>
install_dir=$1
pid_file=$2
shift 2
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
