#!/bin/bash
# Real programs' scratch work for `ephemera bench tools` (issue 15): one workload in DIR, timed
# inside this process, so that neither `ephemera run`'s start-up (Node.js, the daemon) nor this
# shell's is in the figure. Set-up and checks are untimed; the last line is `elapsed_us N`.
#
#   toolbench.sh prepare INPUTS SORT_BYTES REPO   inputs shared by every contender, outside the roots
#   toolbench.sh WORKLOAD DIR INPUTS N            WORKLOAD: sort tar sqlite-rollback sqlite-wal git
#                                                 gcc tempfile zip; N: its size (see tools.ts)
#
# The harness sets TMPDIR=DIR, so programs that make temporaries (gcc, Python's tempfile) make them
# in the directory under test.
set -euo pipefail
export LC_ALL=C
here=$(dirname "$(readlink -f "$0")")
py=/usr/bin/python3

die() { echo "toolbench: $*" >&2; exit 1; }

if [ "${1:-}" = prepare ]; then
  [ $# -eq 4 ] || die "usage: toolbench.sh prepare INPUTS SORT_BYTES REPO"
  in=$2 bytes=$3 repo=$4
  mkdir -p "$in"
  # Lines of random hex of 8-47 characters (about 1.19 bytes of text per random byte): sort has real
  # comparisons to make. Nothing in the pipe stops early (pipefail would see its SIGPIPE).
  head -c "$((bytes * 5 / 6))" /dev/urandom | od -An -v -tx1 -w24 | tr -d ' ' | awk '{ print substr($0, 1, 8 + NR % 40) }' > "$in/sort.txt"
  if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z | tar --null -cf "$in/src.tar" -T -)
  else
    tar -cf "$in/src.tar" -C "$repo" src include shim daemon bench test docs
  fi
  exit 0
fi

[ $# -eq 4 ] || die "usage: toolbench.sh WORKLOAD DIR INPUTS N"
wl=$1 dir=$2 in=$3 n=$4
[ -d "$dir" ] || die "$dir is not a directory"
case $n in ''|*[!0-9]*) die "N must be a positive integer, got '$n'";; esac

start() { t0=${EPOCHREALTIME/./}; }
stop() { t1=${EPOCHREALTIME/./}; elapsed=$((10#$t1 - 10#$t0)); }

# shellcheck source=files.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/files.sh"

case $wl in
sort)
  start
  sort -S 2M -T "$dir" -o "$dir/sorted" "$in/sort.txt"
  stop
  [ "$(wc -l < "$dir/sorted")" = "$(wc -l < "$in/sort.txt")" ] || die "sort lost lines"
  sort -c "$dir/sorted" || die "sort output is not sorted"
  ;;
tar)
  mkdir "$dir/x"
  start
  tar -xf "$in/src.tar" -C "$dir/x"
  tar -czf "$dir/src.tgz" -C "$dir/x" .
  stop
  [ "$(tar -tzf "$dir/src.tgz" | grep -vc '/$')" = "$(tar -tf "$in/src.tar" | grep -vc '/$')" ] || die "tar lost files"
  ;;
sqlite-rollback|sqlite-wal|tempfile)
  out=$("$py" "$here/toolbench.py" "$wl" "$dir" "$n") || die "$wl failed"
  elapsed=${out##*elapsed_us }
  ;;
git)
  mkdir "$dir/repo"
  git -C "$dir/repo" init -q
  make_files "$dir/repo" "$n"
  start
  git -C "$dir/repo" add -A
  git -C "$dir/repo" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false commit -q -m "$n files"
  stop
  [ "$(git -C "$dir/repo" ls-files | wc -l)" = "$n" ] || die "git committed the wrong number of files"
  ;;
gcc)
  p=$dir/proj
  mkdir "$p"
  printf 'int f%d(int x);\n' $(seq 0 $((n - 1))) > "$p/fns.h"
  for ((i = 0; i < n; i++)); do
    printf '#include "fns.h"\n#include <string.h>\nstatic int t%d[64];\nint f%d(int x) {\n  for (int i = 0; i < 64; i++) t%d[i] = x * i + %d;\n  int s = 0;\n  for (int i = 0; i < 64; i++) s += t%d[i] %% 7;\n  return s + (int)strlen("f%d");\n}\n' "$i" "$i" "$i" "$i" "$i" "$i" > "$p/f$i.c"
  done
  { printf '#include <stdio.h>\n#include "fns.h"\nint main(void) {\n  long s = 0;\n'
    for ((i = 0; i < n; i++)); do printf '  s += f%d(%d);\n' "$i" "$i"; done
    printf '  printf("%%ld\\n", s);\n  return 0;\n}\n'; } > "$p/main.c"
  objs=$(for ((i = 0; i < n; i++)); do printf 'f%d.o ' "$i"; done)
  printf 'prog: main.o %s\n\tgcc -o $@ $^\n%%.o: %%.c fns.h\n\tgcc -O1 -c -o $@ $<\n' "$objs" > "$p/Makefile"
  start
  make -s -C "$p"
  stop
  [ -x "$p/prog" ] && "$p/prog" > /dev/null || die "the built program does not run"
  ;;
zip)
  make_files "$dir/src" "$n"
  start
  (cd "$dir" && zip -qr a.zip src && unzip -q a.zip -d out)
  stop
  diff -r "$dir/src" "$dir/out/src" > /dev/null || die "unzip did not give back what zip took"
  ;;
*)
  die "unknown workload '$wl' (sort tar sqlite-rollback sqlite-wal git gcc tempfile zip)"
  ;;
esac
rm -rf "${dir:?}"/*
echo "elapsed_us $elapsed"
