"""SQLite WAL databases started by several writers at once, round after round (the WAL soak).

    python3 wal_start.py DIR ROUNDS WRITERS

Per round: a fresh database in WAL mode (made and closed, so the WAL and -shm files are gone),
then WRITERS processes forked at once that each connect, run 3 transactions of 5 rows and
rewrite a 60 KB file of their own after each, while a filler process rewrites ten 60 KB files
without pause; under `ephemera run --budget 300K` that keeps files moving to disk while the
writers make the WAL and -shm files.  Every writer must finish, and the rows must all be there.
A failed writer prints SQLite's extended error code (the bug hidden-create showed as 522,
SQLITE_IOERR_SHORT_READ, at a writer's first BEGIN IMMEDIATE: test/README.md).  The last line
is "rounds N failed F".  Exit 1 when any round failed.
"""
import os
import signal
import sqlite3
import sys
import time

root, rounds, writers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.chdir(root)
TXNS = 3


def writer(db, w):
    c = sqlite3.connect(db, timeout=60, isolation_level=None)
    c.execute("PRAGMA busy_timeout=60000")
    k = -1
    try:
        for k in range(TXNS):
            c.execute("BEGIN IMMEDIATE")
            for j in range(5):
                c.execute("insert into t values (?,?,?)", (w, k * 5 + j, bytes([w]) * 1500))
            c.execute("COMMIT")
            with open(f"own-{w}-{k % 2}", "wb") as f:
                f.write(os.urandom(60000))
    except sqlite3.Error as e:
        print(f"{db}: writer {w}, transaction {k}: {e} (extended code {e.sqlite_errorcode}, "
              f"{e.sqlite_errorname})", flush=True)
        return 1
    c.close()
    return 0


def filler():
    i = 0
    while True:
        with open(f"fill-{i % 10}", "wb") as f:
            f.write(os.urandom(60000))
        i += 1
        time.sleep(0.001)


fpid = os.fork()
if fpid == 0:
    try:
        filler()
    finally:
        os._exit(0)
failed = 0
try:
    for r in range(rounds):
        db = f"db-{r}"
        c = sqlite3.connect(db)
        c.execute("PRAGMA journal_mode=wal")
        c.execute("create table t(w int, i int, pad blob)")
        c.commit()
        c.close()
        pids = []
        for w in range(writers):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = writer(db, w)
                finally:
                    os._exit(code)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        c = sqlite3.connect(db)
        n = c.execute("select count(*) from t").fetchone()[0]
        ok = c.execute("PRAGMA integrity_check").fetchone()[0]
        c.close()
        if any(codes) or n != writers * TXNS * 5 or ok != "ok":
            failed += 1
            print(f"round {r}: writers' exit codes {codes}, {n} rows, integrity {ok}", flush=True)
        for name in (db, db + "-wal", db + "-shm"):
            if os.path.exists(name):
                os.unlink(name)
finally:
    os.kill(fpid, signal.SIGKILL)
    os.waitpid(fpid, 0)
print(f"rounds {rounds} failed {failed}", flush=True)
sys.exit(1 if failed else 0)
