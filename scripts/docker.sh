#!/usr/bin/env bash
# Make a Docker engine available for the evaluation: install Debian's docker.io when dockerd is
# missing, start dockerd when nothing answers on the socket, and check that overlay2 works.
#
#   scripts/docker.sh ensure    install + start if needed; exit 0 when the engine answers
#   scripts/docker.sh status    exit 0 when the engine answers, 1 otherwise (installs nothing)
#   scripts/docker.sh stop      stop a dockerd that this script started
#
# The script prints one final line "docker: ok (...)" or "docker: unavailable: REASON"; the
# benchmark harness reads the reason and falls back to plain cgroups when the engine is absent.
set -uo pipefail

SOCK=${EPHEMERA_DOCKER_SOCK:-/var/run/docker.sock}
STATE=${EPHEMERA_DOCKER_STATE:-/var/lib/ephemera-docker}
PIDFILE=$STATE/dockerd.pid
LOG=$STATE/dockerd.log

say_unavailable() { echo "docker: unavailable: $*"; exit 1; }

engine_answers() {
  # /_ping is the cheapest request the Engine API answers.
  [ -S "$SOCK" ] || return 1
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 3 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
  else
    docker -H "unix://$SOCK" version >/dev/null 2>&1
  fi
}

install_docker() {
  if command -v dockerd >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then say_unavailable "dockerd is not installed and installing it needs root (run: apt-get install docker.io)"; fi
  echo "docker: installing Debian's docker.io (one time)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends docker.io curl >&2; then
    apt-get update >&2 || true
    apt-get install -y --no-install-recommends docker.io curl >&2 ||
      say_unavailable "apt-get install docker.io failed"
  fi
}

start_dockerd() {
  mkdir -p "$STATE"
  # iptables may be missing or unusable in a VM without netfilter modules; the evaluation never
  # needs container networking, so run without it and without a bridge.
  echo "docker: starting dockerd (log: $LOG)" >&2
  setsid dockerd --host "unix://$SOCK" --storage-driver overlay2 --iptables=false \
    --ip-masq=false --bridge=none --exec-opt native.cgroupdriver=cgroupfs \
    --pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do
    if engine_answers; then return 0; fi
    if ! kill -0 $! 2>/dev/null; then break; fi
    sleep 0.5
  done
  say_unavailable "dockerd did not come up: $(tail -n 3 "$LOG" | tr '\n' ' ')"
}

check_overlay2() {
  local driver
  driver=$(docker -H "unix://$SOCK" info --format '{{.Driver}}' 2>/dev/null)
  [ "$driver" = overlay2 ] || say_unavailable "storage driver is '$driver', the overlay baseline needs overlay2"
  echo "$driver"
}

case "${1:-ensure}" in
  status)
    if engine_answers; then echo "docker: ok (already running)"; exit 0; fi
    say_unavailable "no engine answers on $SOCK"
    ;;
  ensure)
    if ! engine_answers; then
      install_docker
      # The package's own init script may have started an engine already; never start a second.
      engine_answers || start_dockerd
    fi
    drv=$(check_overlay2)
    echo "docker: ok (socket $SOCK, storage $drv)"
    ;;
  stop)
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      kill "$(cat "$PIDFILE")"
      echo "docker: stopped"
    else
      echo "docker: not started by this script"
    fi
    ;;
  *)
    echo "usage: $0 ensure|status|stop" >&2; exit 2 ;;
esac
