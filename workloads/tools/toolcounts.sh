#!/bin/bash
# System calls of one `ephemera bench tools` workload's timed part, for docs/BENCHMARKS.md: the same
# set-up and commands as toolbench.sh, with the timed commands under `strace -f -c -o OUT`.
#
#   toolcounts.sh WORKLOAD DIR INPUTS OUT   WORKLOAD: git tar zip tempfile; INPUTS from
#                                           `toolbench.sh prepare` (tar reads INPUTS/src.tar)
#
# Run it under `ephemera run --root DIR -- ...` or on a tmpfs directory.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: toolcounts.sh git|tar|zip|tempfile DIR INPUTS OUT" >&2; exit 2; }
wl=$1 dir=$2 in=$3 out=$4
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=files.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/files.sh"
case $wl in
git)
  mkdir "$dir/repo" && git -C "$dir/repo" init -q && make_files "$dir/repo" 500
  strace -f -c -o "$out" bash -c 'git -C "$1/repo" add -A && git -C "$1/repo" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false commit -q -m files' _ "$dir" ;;
tar)
  mkdir "$dir/x"
  strace -f -c -o "$out" bash -c 'tar -xf "$2/src.tar" -C "$1/x" && tar -czf "$1/src.tgz" -C "$1/x" .' _ "$dir" "$in" ;;
zip)
  make_files "$dir/src" 1000
  (cd "$dir" && strace -f -c -o "$out" bash -c 'zip -qr a.zip src && unzip -q a.zip -d out') ;;
tempfile)
  TMPDIR=$dir strace -f -c -o "$out" /usr/bin/python3 "$here/toolbench.py" tempfile "$dir" 1000 > /dev/null ;;
*)
  echo "toolcounts.sh: unknown workload '$wl' (git tar zip tempfile)" >&2; exit 2 ;;
esac
rm -rf "${dir:?}"/*
