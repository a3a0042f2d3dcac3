"""Rounds of Python's directory churn between two marker calls, for memdir_fds.test.mjs's counts.

usage: memdir_rounds.py DIR N

Per round: tempfile.TemporaryDirectory with one file in it (its cleanup is shutil.rmtree: lstat,
open, fstat, scandir of the fd, unlink relative to it, rmdir), then mkdir + os.scandir + rmdir.
os.access of /nonexistent-ns-count/begin and .../end mark the window strace counts (as
test/fs/c/ns_count.c does); one round before it keeps start-up out.
"""
import os
import sys
import tempfile


def one_round(d, i):
    with tempfile.TemporaryDirectory(dir=d) as t:
        with open(os.path.join(t, "f"), "wb") as f:
            f.write(b"x" * 4096)
        if os.listdir(t) != ["f"]:
            sys.exit(f"round {i}: listing of {t} is {os.listdir(t)}")
    if os.path.exists(t):
        sys.exit(f"round {i}: {t} is still there")
    p = os.path.join(d, f"s{i}")
    os.mkdir(p)
    with os.scandir(p) as it:
        if list(it):
            sys.exit(f"round {i}: {p} is not empty")
    os.rmdir(p)


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    one_round(d, -1)
    os.access("/nonexistent-ns-count/begin", os.F_OK)
    for i in range(n):
        one_round(d, i)
    os.access("/nonexistent-ns-count/end", os.F_OK)
    print(f"{n} rounds")


main()
