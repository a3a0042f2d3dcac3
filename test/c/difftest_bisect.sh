#!/usr/bin/env bash
# Find the first operation after which the shim's final tree differs from tmpfs's, for one
# difftest sequence.  A trace mismatch is often seen long after the operation that caused it (a
# write lost into the wrong file shows only when the file is read); the final tree after N
# operations shows it at once, so bisecting N pins the culprit.  It assumes a difference, once
# there, stays; when later operations overwrite the bad bytes it may stop at an earlier culprit.
#
#   test/c/difftest_bisect.sh --seed S --ops N [--mode M] [--loose] [--budget B] [other difftest args]
#
# Prints the operation and the final-tree difference.  Needs build/test/difftest and a built
# build/ephemera; runs on /dev/shm and build/test/scratch.
set -uo pipefail
cd "$(dirname "$0")/../.."

args=()
budget=4294967296
ops=""
mode=single
procs=3
while [ $# -gt 0 ]; do
  case $1 in
    --budget) budget=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --mode) mode=$2; args+=("$1" "$2"); shift 2 ;;
    --procs) procs=$2; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -z "$ops" ]; then echo "difftest_bisect.sh: --ops N is required" >&2; exit 2; fi

ref=$(mktemp -d /dev/shm/difftest-bisect-XXXXXX)
mkdir -p build/test/scratch
work=$(mktemp -d "$PWD/build/test/scratch/difftest-bisect-XXXXXX")
trap 'rm -rf "$ref" "$work"' EXIT

# tree N: writes $work/t.txt and $work/s.txt, succeeds when the final trees are equal
tree() {
  rm -rf "${ref:?}"/* "$work/root"
  mkdir -p "$work/root"
  build/test/difftest --dir "$ref" --ops "$1" "${args[@]}" | sed -n '/^# final tree/,$p' > "$work/t.txt"
  build/ephemera run --root "$work/root" --budget "$budget" -- \
    build/test/difftest --dir "$work/root" --ops "$1" "${args[@]}" 2>/dev/null | sed -n '/^# final tree/,$p' > "$work/s.txt"
  cmp -s "$work/t.txt" "$work/s.txt"
}

if tree "$ops"; then
  echo "final trees agree after $ops operations: nothing to bisect"
  exit 0
fi
lo=0
hi=$ops
while [ $((hi - lo)) -gt 1 ]; do
  mid=$(((lo + hi) / 2))
  if tree "$mid"; then lo=$mid; else hi=$mid; fi
done
tree "$hi"
# in multi mode --ops is shared out among the children, so the culprit is near ops/procs in one of them
last=$hi
[ "$mode" = multi ] && last=$((hi / procs))
echo "the final trees first differ after operation $hi (--ops $hi; the last operations run were):"
rm -rf "${ref:?}"/*
build/test/difftest --dir "$ref" --ops "$hi" "${args[@]}" | grep -E "^(c[0-9]+:)?($((last - 2))|$((last - 1))|$last) " || true
echo "--- final tree, tmpfs (<) vs shim (>) ---"
diff "$work/t.txt" "$work/s.txt" | head -20
exit 1
