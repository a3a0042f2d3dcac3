"""Writer and reader for test/memory/resize.test.ts, run as two processes of one instance while
the test lowers and raises its memory limit.

usage: resize_io.py writer ROOT N SIZE
       resize_io.py reader ROOT N SIZE
The writer publishes N files of SIZE bytes (write to .tmp, then rename) and appends one line per
file to journal.log, which it keeps open the whole time; then it creates 'done'.  The reader
verifies every published file and the journal over and over until the writer is done, then once
more in full.  Any wrong byte exits 1 with a message; success prints one JSON line.
"""
import hashlib
import json
import os
import sys
import time

mode, root, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def content(i):
    return hashlib.sha256(b"resize-%d" % i).digest() * (size // 32)


def fail(msg):
    print("resize_io %s: %s" % (mode, msg), file=sys.stderr, flush=True)
    sys.exit(1)


def writer():
    journal = open(os.path.join(root, "journal.log"), "a", buffering=1)
    for i in range(n):
        tmp = os.path.join(root, "f%d.tmp" % i)
        data = content(i)
        with open(tmp, "wb") as f:
            for off in range(0, size, 256 << 10):
                f.write(data[off:off + (256 << 10)])
        os.rename(tmp, os.path.join(root, "f%d.dat" % i))
        journal.write("%d\n" % i)
        time.sleep(0.03)
    journal.close()
    open(os.path.join(root, "done"), "w").close()
    print(json.dumps({"written": n}), flush=True)


def check_file(i):
    with open(os.path.join(root, "f%d.dat" % i), "rb") as f:
        got = f.read()
    if got != content(i):
        fail("f%d.dat: %d bytes, differs from what was written" % (i, len(got)))


def check_journal(published):
    try:
        with open(os.path.join(root, "journal.log")) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return
    whole = lines[:-1]  # the writer may be mid-line
    if [int(x) for x in whole] != list(range(len(whole))):
        fail("journal.log is out of order or damaged: %r" % whole[:20])


def reader():
    verified, passes = set(), 0
    while True:
        done = os.path.exists(os.path.join(root, "done"))
        published = sorted(int(e[1:-4]) for e in os.listdir(root) if e.startswith("f") and e.endswith(".dat"))
        for i in published:
            check_file(i)
            verified.add(i)
        check_journal(published)
        passes += 1
        if done:
            break
        time.sleep(0.01)
    for i in range(n):
        check_file(i)
    with open(os.path.join(root, "journal.log")) as f:
        if f.read() != "".join("%d\n" % i for i in range(n)):
            fail("journal.log incomplete at the end")
    print(json.dumps({"verified": len(verified), "passes": passes}), flush=True)


writer() if mode == "writer" else reader()
