#!/usr/bin/env bash
# Run daemon_proto_test (ASan build by default) N times in a row and count passes, failures and
# hangs.  A run that outlives TIMEOUT seconds is a hang: the memory cgroup it left frozen (cgroup
# v1, oom_kill_disable=1 with tasks asleep at the limit) is released and removed, so the next run
# starts clean.  Used by `make soak` and to reproduce issue 9's freeze.
#
#   test/c/proto_soak.sh [N] [TIMEOUT] [TEST_BINARY] [EPHEMERAD]
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50}
limit=${2:-120}
bin=${3:-build/asan/daemon_proto_test}
export EPHEMERAD=${4:-$PWD/build/asan/ephemerad}
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=86}
[ -x "$bin" ] || { echo "proto_soak: $bin is missing; run make test-c-asan first" >&2; exit 2; }

# Release and remove what a hung run left: its cgroups (ephd-test-PID) and their tasks.
rescue() {
  local cg
  for cg in /sys/fs/cgroup/memory/ephd-test-* /sys/fs/cgroup/ephd-test-*; do
    [ -d "$cg" ] || continue
    [ -f "$cg/memory.oom_control" ] && echo 0 > "$cg/memory.oom_control" 2>/dev/null
    while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$cg/cgroup.procs"
    for _ in $(seq 100); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
  done
}

pass=0 fail=0 hang=0
for i in $(seq "$n"); do
  start=$SECONDS
  log=$(mktemp)
  timeout -k 5 "$limit" "$bin" >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1)); what=pass
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    hang=$((hang + 1)); what="HANG (over ${limit} s)"
    grep -h "" /sys/fs/cgroup/memory/ephd-test-*/memory.oom_control 2>/dev/null | tr '\n' ' '
    rescue
  else
    fail=$((fail + 1)); what="FAIL (exit $rc)"; tail -n 20 "$log" | sed 's/^/    /'
  fi
  rm -f "$log"
  echo "run $i: $what, $((SECONDS - start)) s"
done
echo "daemon_proto_test x$n ($bin): $pass passed, $((fail + hang)) failed ($hang hung)"
[ $((fail + hang)) -eq 0 ]
