#!/usr/bin/python3
"""A small I/O-heavy serverless-style function for `make demo`.

It uses its scratch directory the way real functions do: many small files written, read back and
rewritten, a gzip round trip, a sqlite3 database, copies, renames and directory listings. All input
is generated from a fixed seed, so every run computes the same digest wherever the directory lives.

usage: scratch_io.py SCRATCH_DIR [--scale N]

Prints one JSON line: {"digest": ..., "seconds": ..., "bytes_written": ...}.
"""
import gzip
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import time


def small_files(scratch, rng, h, count, size):
    """Write many small files, read them back, append to each, and read them again."""
    d = os.path.join(scratch, "objects")
    os.mkdir(d)
    written = 0
    for i in range(count):
        with open(os.path.join(d, f"obj-{i:05d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))
        written += size
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            h.update(f.read())
    for i in range(0, count, 2):
        with open(os.path.join(d, f"obj-{i:05d}.bin"), "ab") as f:
            f.write(b"appended" * 64)
            written += 512
    for i in range(count):
        path = os.path.join(d, f"obj-{i:05d}.bin")
        h.update(os.stat(path).st_size.to_bytes(8, "little"))
        with open(path, "rb") as f:
            f.seek(-512, os.SEEK_END)
            h.update(f.read())
    return written


def gzip_round_trip(scratch, rng, h, size):
    """Compress a semi-compressible file with gzip and read it back."""
    raw = os.path.join(scratch, "input.log")
    words = [rng.randbytes(6).hex().encode() for _ in range(512)]
    with open(raw, "wb") as f:
        left = size
        while left > 0:
            line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
            f.write(line)
            left -= len(line)
    with open(raw, "rb") as src, gzip.open(raw + ".gz", "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, 1 << 16)
    with gzip.open(raw + ".gz", "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    written = os.path.getsize(raw) + os.path.getsize(raw + ".gz")
    os.unlink(raw)
    return written


def sqlite_work(scratch, rng, h, rows):
    """Build an indexed sqlite3 table, update and query it."""
    db = os.path.join(scratch, "state.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
    con.executemany("INSERT INTO kv VALUES (?, ?, ?)", ((i, rng.randbytes(24).hex(), rng.randrange(1000)) for i in range(rows)))
    con.commit()
    con.execute("CREATE INDEX kv_n ON kv(n)")
    for _ in range(20):
        con.execute("UPDATE kv SET n = n + 1 WHERE k % 7 = ?", (rng.randrange(7),))
        con.commit()
    for (total,) in con.execute("SELECT sum(n) FROM kv WHERE n BETWEEN 100 AND 900"):
        h.update(str(total).encode())
    con.close()
    return os.path.getsize(db)


def shuffle_and_clean(scratch, h):
    """Copy, rename and list, then remove everything like a function leaving its scratch dir."""
    d = os.path.join(scratch, "objects")
    out = os.path.join(scratch, "out")
    os.mkdir(out)
    names = sorted(os.listdir(d))
    for name in names[::5]:
        shutil.copy(os.path.join(d, name), os.path.join(out, name))
    for name in sorted(os.listdir(out)):
        os.rename(os.path.join(out, name), os.path.join(out, name + ".done"))
    h.update("\n".join(sorted(os.listdir(out))).encode())
    shutil.rmtree(d)
    shutil.rmtree(out)
    os.unlink(os.path.join(scratch, "state.db"))
    os.unlink(os.path.join(scratch, "input.log.gz"))


def main():
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--scale"):
        sys.exit("usage: scratch_io.py SCRATCH_DIR [--scale N]")
    scratch = sys.argv[1]
    scale = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    rng = random.Random(20261127)
    h = hashlib.sha256()
    start = time.perf_counter()
    written = small_files(scratch, rng, h, 400 * scale, 32 * 1024)
    written += gzip_round_trip(scratch, rng, h, 4 * 1024 * 1024 * scale)
    written += sqlite_work(scratch, rng, h, 20000 * scale)
    shuffle_and_clean(scratch, h)
    seconds = time.perf_counter() - start
    print(json.dumps({"digest": h.hexdigest(), "seconds": round(seconds, 4), "bytes_written": written}))


if __name__ == "__main__":
    main()
