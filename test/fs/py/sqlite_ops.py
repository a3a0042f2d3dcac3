"""sqlite3 databases in the root, rollback journal and WAL (whose -shm file is mmap'ed)."""
import os
import sqlite3
import sys

from common import check, report, rng

root = sys.argv[1]
r = rng(6)
rows = [(i, r.randint(0, 1000000), f"name-{r.random()}") for i in range(20000)]
want_sum = sum(v for _, v, _ in rows)
results = {}
for mode in ["DELETE", "WAL"]:
    path = os.path.join(root, f"db-{mode}.sqlite")
    con = sqlite3.connect(path)
    jm = con.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
    check(jm.upper() == mode, f"journal_mode {jm}, asked {mode}")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, name TEXT)")
    for k in range(0, len(rows), 1000):
        with con:
            con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows[k:k + 1000])
    con.execute("CREATE INDEX iv ON t(v)")
    check(con.execute("SELECT count(*), sum(v) FROM t").fetchone() == (len(rows), want_sum), f"{mode}: count/sum")
    with con:
        con.execute("UPDATE t SET v = v + 1 WHERE id % 2 = 0")
        con.execute("DELETE FROM t WHERE id % 3 = 0")
    exp = sum((v + 1 if i % 2 == 0 else v) for i, v, _ in rows if i % 3 != 0)
    got = con.execute("SELECT sum(v) FROM t").fetchone()[0]
    check(got == exp, f"{mode}: sum after update/delete {got} != {exp}")
    if mode == "WAL":
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        con.execute("VACUUM")
    check(con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"{mode}: integrity_check")
    con.close()
    # a second connection sees the same data
    con = sqlite3.connect(path)
    check(con.execute("SELECT count(*), sum(v) FROM t").fetchone() == (sum(1 for i, _, _ in rows if i % 3), exp), f"{mode}: reopen")
    con.close()
    results[mode] = exp
report(results)
