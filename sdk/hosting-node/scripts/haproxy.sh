# shellcheck shell=sh
# A load balancer's HAProxy, run by HostingNode's install script (after common.sh and the header:
# HAPROXY_BIN, HAPROXY_MAIN_CONF, HAPROXY_MAIN_CONF_TEXT, HAPROXY_CONF, HAPROXY_MASTER_SOCKET,
# HAPROXY_ARGS and HAPROXY_UNIT_ARGS, and write_supervisor, write_haproxy_unit and
# write_haproxy_poller). HAProxy keeps running through an agent upgrade; it restarts only when
# its main file or command line changed.

# Before the agent starts: the global section (no secret in it: 0644), and whether it changed.
write_haproxy_main_conf() {
  mkdir -p "$(dirname "$HAPROXY_MAIN_CONF")" "$(dirname "$HAPROXY_CONF")"
  printf '%s\n' "$HAPROXY_MAIN_CONF_TEXT" >"$HAPROXY_MAIN_CONF.next"
  chmod 644 "$HAPROXY_MAIN_CONF.next"
  if cmp -s "$HAPROXY_MAIN_CONF.next" "$HAPROXY_MAIN_CONF"; then
    rm -f "$HAPROXY_MAIN_CONF.next"
    HAPROXY_CHANGED=no
  else
    mv "$HAPROXY_MAIN_CONF.next" "$HAPROXY_MAIN_CONF"
    HAPROXY_CHANGED=yes
  fi
}

haproxy_failed() {
  [ ! -f "$INSTALL_DIR/haproxy.log" ] || tail -n 20 "$INSTALL_DIR/haproxy.log" >&2
  # As for the agent: a failed create is not recorded, so nothing would stop them later.
  stop_haproxy
  stop_agent
  fail "$1"
}

# After the agent answered (its routes file exists): HAProxy as a service, then its master CLI.
start_haproxy() {
  "$HAPROXY_BIN" -c -q -f "$HAPROXY_MAIN_CONF" -f "$HAPROXY_CONF" >&2 ||
    haproxy_failed "HAProxy refuses $HAPROXY_MAIN_CONF with $HAPROXY_CONF (see its output above)"
  if has_systemd; then
    write_haproxy_unit >"$HAPROXY_UNIT_FILE.next"
    cmp -s "$HAPROXY_UNIT_FILE.next" "$HAPROXY_UNIT_FILE" || HAPROXY_CHANGED=yes
    mv "$HAPROXY_UNIT_FILE.next" "$HAPROXY_UNIT_FILE"
    systemctl daemon-reload
    systemctl enable "$HAPROXY_UNIT" >&2
    if [ "$HAPROXY_CHANGED" = yes ]; then systemctl restart "$HAPROXY_UNIT"; else systemctl start "$HAPROXY_UNIT"; fi
  elif [ "$HAPROXY_CHANGED" = yes ] || ! { [ -f "$HAPROXY_PID_FILE" ] && kill -0 "$(cat "$HAPROXY_PID_FILE")" 2>/dev/null; }; then
    stop_haproxy
    rm -f "$HAPROXY_MASTER_SOCKET"
    write_supervisor >"$INSTALL_DIR/run-haproxy.sh"
    # Words the generator validated (no spaces or quotes): split on purpose.
    # shellcheck disable=SC2086
    setsid sh "$INSTALL_DIR/run-haproxy.sh" "$INSTALL_DIR" "$HAPROXY_PID_FILE" "$HAPROXY_BIN" $HAPROXY_ARGS </dev/null >>"$INSTALL_DIR/haproxy.log" 2>&1 &
  fi
  write_haproxy_poller >"$INSTALL_DIR/wait-haproxy.cjs"
  "$NODE" "$INSTALL_DIR/wait-haproxy.cjs" "$HAPROXY_MASTER_SOCKET" "$HEALTH_TIMEOUT_SECONDS" ||
    haproxy_failed "HAProxy did not start"
}
