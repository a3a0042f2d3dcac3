#!/usr/bin/env bash
# Build and run every C unit test, test/c/*_test.c, plainly or under ASan/UBSan.
#
#   test/c/run_c_tests.sh plain|asan [unit]
#
# Convention for test authors: a test is one file test/c/NAME_test.c with a main() that exits 0
# when all its checks pass.  Extra sources it links with go on one comment line in that file:
#   // test-sources: shim/pathnorm.c shim/paths.c
# It runs from the repository root with EPHEMERAD (the daemon binary of the same flavour),
# EPHEMERAD_FAULTY (its fault build, daemon/sys.h) and
# EPHEMERA_SHIM (build/libephemera.so) in its environment.  In asan mode the sanitised tester
# programs (difftest, mt_hammer) also run their own self-checks on a tmpfs directory.
# A pure unit test (no daemon, no shim, no processes: `make test-unit`) says so on a line of its own:
#   // test-tier: unit
# and `unit` as the second argument runs only those, without the self-checks.
set -uo pipefail
cd "$(dirname "$0")/../.."

mode=${1:?usage: run_c_tests.sh plain|asan [unit]}
tier=${2:-all}
case $tier in
  all|unit) ;;
  *) echo "run_c_tests.sh: the tier must be unit (or absent for all), got '$tier'" >&2; exit 2 ;;
esac
CC=${CC:-gcc}
CFLAGS_COMMON=${CFLAGS_COMMON:--std=gnu11 -D_GNU_SOURCE -Iinclude -Wall -Wextra -Werror -g}
SAN=${SAN:--fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined}
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

case $mode in
  plain) out=build/test; flags="-O2"; export EPHEMERAD=$PWD/build/ephemerad EPHEMERAD_FAULTY=$PWD/build/test/ephemerad-faults ;;
  asan) out=build/asan; flags="-O1 $SAN"; export EPHEMERAD=$PWD/build/asan/ephemerad EPHEMERAD_FAULTY=$PWD/build/asan/ephemerad-faults ;;
  *) echo "run_c_tests.sh: mode must be plain or asan, got '$mode'" >&2; exit 2 ;;
esac
export EPHEMERA_SHIM=$PWD/build/libephemera.so
mkdir -p "$out"

passed=0
failed=0
failures=()

# run NAME CMD... : one test, its output indented, a PASS/FAIL line after it
run() {
  local name=$1; shift
  local start=$SECONDS log
  log=$(mktemp)
  local to=(timeout 600)
  declare -F "$1" >/dev/null && to=()  # shell functions cannot go through timeout(1)
  if "${to[@]}" "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS $name ($((SECONDS - start)) s)"
  else
    local rc=$?
    failed=$((failed + 1))
    failures+=("$name")
    sed 's/^/    /' "$log" | tail -n 60
    echo "FAIL $name (exit $rc, $((SECONDS - start)) s)"
  fi
  rm -f "$log"
}

for src in test/c/*_test.c; do
  [ -e "$src" ] || continue
  [ "$tier" = unit ] && ! grep -qx '// test-tier: unit' "$src" && continue
  name=$(basename "$src" .c)
  extra=$(sed -n 's|^// test-sources:||p' "$src" | head -n 1)
  # shellcheck disable=SC2086
  if ! $CC $CFLAGS_COMMON -Ishim -Idaemon -Ibuild/gen $flags -o "$out/$name" "$src" $extra -lpthread -ldl 2>"$out/$name.build.log"; then
    failed=$((failed + 1))
    failures+=("$name (build)")
    sed 's/^/    /' "$out/$name.build.log" | head -n 40
    echo "FAIL $name: does not compile ($mode)"
    continue
  fi
  run "$name [$mode]" "$out/$name"
done

if [ "$mode" = asan ] && [ "$tier" = all ]; then
  # The testers' own code, sanitised, on a real tmpfs (no shim): a tester bug must not pass as a shim bug.
  ref=$(mktemp -d /dev/shm/ephemera-ctest-XXXXXX)
  disk=$(mktemp -d "$PWD/build/test/ctest-XXXXXX")
  selfcheck() {
    local a b
    for m in single multi fork; do
      rm -rf "${ref:?}"/* "${disk:?}"/*
      a=$(DIFFTEST_SELFCHECK=1 "$out/difftest" --dir "$ref" --seed 11 --ops 4000 --mode $m --loose 2>"$ref.err") || return 1
      if grep "model lost track" "$ref.err"; then echo "difftest --mode $m: the model disagrees with tmpfs"; return 1; fi
      b=$("$out/difftest" --dir "$disk" --seed 11 --ops 4000 --mode $m --loose) || return 1
      if [ "$a" != "$b" ]; then echo "difftest --mode $m: tmpfs and disk traces differ"; diff <(echo "$a") <(echo "$b") | head; return 1; fi
    done
  }
  run "difftest self-check [asan]" selfcheck
  # The model against tmpfs where it once lost names, so that a later open took a file for new and
  # its mtime window began too late.  Soak seed 305686565: "rename f0 b/f0" of two hard links to one
  # symlink does nothing, but the model dropped f0, so f1 made through it was unknown.  Seed 7919000,
  # turn 199: uid 1001 could not list a/, so the turn's model had no a/f2 (its chmod opened a/).
  selfcheck_model() {
    local seed ops m
    while read -r seed ops m; do
      rm -rf "${ref:?}"/*
      DIFFTEST_SELFCHECK=1 "$out/difftest" --dir "$ref" --seed "$seed" --ops "$ops" --mode "$m" --loose >/dev/null 2>"$ref.err" || return 1
      if grep "model lost track" "$ref.err"; then echo "difftest's model disagrees with tmpfs (seed $seed, --mode $m)"; return 1; fi
    done <<<"305686565 30300 single
7919000 8000 users"
  }
  run "difftest model self-check [asan]" selfcheck_model
  rm -rf "${ref:?}"/*
  run "mt_hammer on tmpfs [asan]" "$out/mt_hammer" "$ref" 4 400
  rm -rf "$ref" "$ref.err" "$disk"
fi

label=$mode
[ "$tier" = unit ] && label+=", unit tier"
summary="C tests ($label): $passed passed, $failed failed"
[ "$failed" -gt 0 ] && summary+=": ${failures[*]}"
echo "$summary"
[ "$failed" -eq 0 ]
