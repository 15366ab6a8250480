# shellcheck shell=bash
# What tests/e2e/setup-node.test.ts puts before the blocks of docs/setup-node.md: the machine has
# no systemd, and the test installs no packages (.ci/run does), so these two commands stand in.
# LBH_UNIT_PIDS (a file: "<unit> <pid>" per started unit) and LBH_UNIT_LOGS (a folder) come from
# the test.
set -euo pipefail

# Packages are checked, not installed: every one the page names must be there already.
apt-get() {
  [ "$1" = install ] || { echo "apt-get $1: not followed by the test" >&2; return 1; }
  shift
  local package
  for package in "$@"; do
    case "$package" in -*) continue ;; esac
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      { echo "package $package is not installed" >&2; return 1; }
  done
}

# A unit starts as systemd starts it: ExecStart in a session of its own (for Type=forking: until
# it forks, then the daemon is the pid its PIDFile names), then ExecStartPost, which must succeed.
start_unit() {
  local file="$UNIT_DIR/$1.service" body type command post pidfile
  body="$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$file")"
  type="$(printf '%s\n' "$body" | sed -n 's/^Type=//p')"
  command="$(printf '%s\n' "$body" | sed -n 's/^ExecStart=//p')"
  post="$(printf '%s\n' "$body" | sed -n 's/^ExecStartPost=//p')"
  [ -n "$command" ] || { echo "$file has no ExecStart" >&2; return 1; }
  if [ "$type" = forking ]; then
    pidfile="$(printf '%s\n' "$body" | sed -n 's/^PIDFile=//p')"
    # shellcheck disable=SC2086 # the unit's command line is split into words, as systemd does
    setsid $command </dev/null >>"$LBH_UNIT_LOGS/$1.log" 2>&1
    printf '%s %s\n' "$1" "$(cat "$pidfile")" >>"$LBH_UNIT_PIDS"
  else
    # shellcheck disable=SC2086
    setsid $command </dev/null >>"$LBH_UNIT_LOGS/$1.log" 2>&1 &
    printf '%s %s\n' "$1" "$!" >>"$LBH_UNIT_PIDS"
  fi
  # shellcheck disable=SC2086
  if [ -n "$post" ]; then $post >/dev/null; fi
}

systemctl() {
  case "$1" in
    daemon-reload) ;;
    disable) ;; # Debian's own services never run here
    enable)
      shift
      [ "$1" = --now ] && shift
      local unit
      for unit in "$@"; do start_unit "$unit"; done
      ;;
    *) echo "systemctl $1: not followed by the test" >&2; return 1 ;;
  esac
}
