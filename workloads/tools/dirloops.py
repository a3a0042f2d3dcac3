#!/usr/bin/env python3
"""The loops behind bench tools' tempfile row, one at a time (issue 15, branch dirfd).

usage: dirloops.py DIR [ROUNDS]

Prints one line per loop: its name and the microseconds per round (perf_counter, inside the
process, so ephemera run's start-up is excluded). Run it in a root under `ephemera run` and in a
directory on /dev/shm to compare.
"""
import os
import sys
import tempfile
import time


def loops(d):
    data = b"x" * 4096

    def named():
        with tempfile.NamedTemporaryFile(dir=d) as f:
            f.write(data)
            f.flush()

    def mkstemp():
        fd, p = tempfile.mkstemp(dir=d, suffix=".tmp")
        os.write(fd, data)
        os.close(fd)
        os.replace(p, p + ".done")
        os.unlink(p + ".done")

    def tempdir():
        with tempfile.TemporaryDirectory(dir=d) as t:
            with open(os.path.join(t, "f"), "wb") as f:
                f.write(data)

    p = os.path.join(d, "loopdir")

    def mkrm():
        os.mkdir(p)
        os.rmdir(p)

    def mkfile():
        os.mkdir(p)
        q = os.path.join(p, "f")
        os.close(os.open(q, os.O_CREAT | os.O_WRONLY, 0o600))
        os.unlink(q)
        os.rmdir(p)

    def scan():
        os.mkdir(p)
        with os.scandir(p) as it:
            list(it)
        os.rmdir(p)

    return [("NamedTemporaryFile write 4K", named), ("mkstemp write close replace unlink", mkstemp),
            ("TemporaryDirectory + one file", tempdir), ("mkdir + rmdir", mkrm),
            ("mkdir create unlink rmdir", mkfile), ("mkdir scandir rmdir", scan)]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    d = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) == 3 else 1000
    for name, fn in loops(d):
        for _ in range(10):
            fn()
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        us = (time.perf_counter_ns() - t0) / 1000 / n
        print(f"{name:40s} {us:8.1f} us")


if __name__ == "__main__":
    main()
