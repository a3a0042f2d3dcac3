#!/bin/sh
# The SQLite WAL soak (issue 9, `make soak`; not part of `make test`): test/fs/py/wal_start.py under
# `build/ephemera run --budget 300K`, round after round of writers starting a fresh WAL database at
# once while files move to disk, with one busy loop per core.  It met the bug hidden-create (one
# name, two files: a writer's first BEGIN IMMEDIATE failed with SQLITE_IOERR_SHORT_READ) in about
# one round of 600 on a busy machine; the focused test is nsconc.test.mjs's hiddencreate.
#
#   test/fs/wal_soak.sh                         (make soak runs it: 1000 rounds, about 20 minutes)
#   WAL_SOAK_ROUNDS=200 WAL_SOAK_WRITERS=8 WAL_SOAK_HOGS=0 test/fs/wal_soak.sh
#
# The last line is wal_start.py's "rounds N failed F"; exit 1 when a round failed (the scratch
# directory and the daemon's log are kept then, and named).
set -u
cd "$(dirname "$0")/../.." || exit 2
rounds=${WAL_SOAK_ROUNDS:-1000}
writers=${WAL_SOAK_WRITERS:-6}
hogs=${WAL_SOAK_HOGS:-$(nproc)}
for v in "$rounds" "$writers" "$hogs"; do
    case "$v" in
    '' | *[!0-9]*) echo "wal_soak: WAL_SOAK_ROUNDS, WAL_SOAK_WRITERS and WAL_SOAK_HOGS are whole numbers (got '$v')" >&2; exit 2 ;;
    esac
done
[ -x build/ephemera ] || { echo "wal_soak: build/ephemera is missing: run make first" >&2; exit 2; }
mkdir -p build/test
dir=$(mktemp -d "$PWD/build/test/wal-soak-XXXXXX") || exit 2
mkdir "$dir/root"
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
i=0
while [ "$i" -lt "$hogs" ]; do
    sh -c 'while :; do :; done' &
    pids="$pids $!"
    i=$((i + 1))
done
# a bound far above the expected time (about a second per round on a busy 2-core machine)
timeout $((rounds * 10 + 60)) build/ephemera run --root "$dir/root" --budget 300K --log "$dir/ephemerad.log" \
    -- python3 test/fs/py/wal_start.py "$dir/root" "$rounds" "$writers"
rc=$?
if [ "$rc" -eq 0 ]; then
    rm -rf "$dir"
else
    echo "wal_soak: failed (exit $rc); scratch and the daemon's log kept in $dir" >&2
fi
exit "$rc"
