#!/usr/bin/python3
"""The Python workloads of `ephemera bench tools`, timed inside the process (start-up excluded).

usage: toolbench.py sqlite-rollback|sqlite-wal|tempfile DIR N

Prints `elapsed_us N` as its last line. TMPDIR is DIR (the harness sets it), so tempfile's files
land in the directory under test.
"""
import os
import sqlite3
import sys
import tempfile
import time


def sqlite(d, n, mode):
    """N small transactions, one insert each: rollback mode creates and deletes a journal per commit."""
    path = os.path.join(d, "bench.db")
    con = sqlite3.connect(path, isolation_level=None)
    got = con.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
    if got.lower() != mode.lower():
        sys.exit(f"toolbench.py: journal_mode {mode} refused (got {got})")
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    t0 = time.perf_counter_ns()
    for i in range(n):
        con.execute("BEGIN")
        con.execute("INSERT INTO t (v) VALUES (?)", (f"row {i} " * 8,))
        con.execute("COMMIT")
    t1 = time.perf_counter_ns()
    count = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    if count != n:
        sys.exit(f"toolbench.py: {count} rows, expected {n}")
    return t1 - t0


def churn(d, n):
    """What Python programs do with scratch files: named temporaries, mkstemp + rename, temp dirs."""
    data = b"x" * 4096
    t0 = time.perf_counter_ns()
    for i in range(n):
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
        fd, p = tempfile.mkstemp(suffix=".tmp")
        os.write(fd, data)
        os.close(fd)
        os.replace(p, p + ".done")
        os.unlink(p + ".done")
        with tempfile.TemporaryDirectory() as td:
            with open(os.path.join(td, "a"), "wb") as f:
                f.write(data)
    t1 = time.perf_counter_ns()
    if os.listdir(d):
        sys.exit(f"toolbench.py: temporaries left behind in {d}: {os.listdir(d)[:5]}")
    return t1 - t0


def main():
    if len(sys.argv) != 4 or not sys.argv[3].isdigit():
        sys.exit("usage: toolbench.py sqlite-rollback|sqlite-wal|tempfile DIR N")
    wl, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if tempfile.gettempdir() != os.path.realpath(d) and tempfile.gettempdir() != d:
        sys.exit(f"toolbench.py: TMPDIR should be {d}, tempfile uses {tempfile.gettempdir()}")
    if wl == "sqlite-rollback":
        ns = sqlite(d, n, "delete")
    elif wl == "sqlite-wal":
        ns = sqlite(d, n, "wal")
    elif wl == "tempfile":
        ns = churn(d, n)
    else:
        sys.exit(f"toolbench.py: unknown workload {wl}")
    print(f"elapsed_us {ns // 1000}")


if __name__ == "__main__":
    main()
