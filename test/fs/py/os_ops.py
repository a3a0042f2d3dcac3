"""os.*: stat, listdir, scandir, walk, rename/replace/remove, makedirs, fd-level calls."""
import errno
import os
import stat
import sys

from common import check, report, sha

root = sys.argv[1]
j = lambda *p: os.path.join(root, *p)  # noqa: E731

os.makedirs(j("a", "b", "c"))
os.makedirs(j("a", "b", "c"), exist_ok=True)
try:
    os.makedirs(j("a", "b", "c"))
    check(False, "makedirs of an existing dir did not raise")
except FileExistsError:
    pass
for rel, size in [("a/x", 10), ("a/b/y", 2000), ("a/b/c/z", 70000), ("top", 0)]:
    with open(j(rel), "wb") as f:
        f.write(bytes([len(rel)]) * size)
    st = os.stat(j(rel))
    check(st.st_size == size and stat.S_ISREG(st.st_mode), f"stat {rel}: size {st.st_size}, want {size}")

check(sorted(os.listdir(root)) == ["a", "top"], f"listdir root: {sorted(os.listdir(root))}")
check(sorted(os.listdir(j("a"))) == ["b", "x"], f"listdir a: {sorted(os.listdir(j('a')))}")
entries = sorted((e.name, e.is_file(), e.is_dir(), e.stat().st_size if e.is_file() else -1) for e in os.scandir(j("a", "b")))
check(entries == [("c", False, True, -1), ("y", True, False, 2000)], f"scandir a/b: {entries}")

walk = [(os.path.relpath(d, root), sorted(ds), sorted(fs)) for d, ds, fs in os.walk(root)]
walk.sort()
check(walk == [(".", ["a"], ["top"]), ("a", ["b"], ["x"]), ("a/b", ["c"], ["y"]), ("a/b/c", [], ["z"])], f"walk: {walk}")

os.rename(j("a", "x"), j("a", "x2"))
check(not os.path.exists(j("a", "x")) and os.path.getsize(j("a", "x2")) == 10, "rename a/x -> a/x2")
os.replace(j("a", "b", "y"), j("a", "x2"))  # over an existing file
check(os.path.getsize(j("a", "x2")) == 2000, "replace over an existing file kept the old bytes")
os.rename(j("a", "b"), j("a", "b2"))  # a directory holding in-memory files
check(os.path.getsize(j("a", "b2", "c", "z")) == 70000, "file under a renamed directory")
try:
    os.rmdir(j("a", "b2"))
    check(False, "rmdir of a non-empty dir succeeded")
except OSError as e:
    check(e.errno == errno.ENOTEMPTY, f"rmdir non-empty: {e}")
os.remove(j("a", "b2", "c", "z"))
os.rmdir(j("a", "b2", "c"))
check(os.listdir(j("a", "b2")) == [], "a/b2 should be empty")
try:
    os.remove(j("a", "nope"))
    check(False, "remove of a missing file succeeded")
except FileNotFoundError:
    pass
try:
    os.open(j("top"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    check(False, "O_EXCL on an existing file succeeded")
except FileExistsError:
    pass
try:
    os.open(j("top", "sub"), os.O_RDONLY)
    check(False, "a file used as a directory")
except NotADirectoryError:
    pass

# fd level: pread/pwrite, dup offsets, truncate, unlink while open, chmod, utime
fd = os.open(j("fdfile"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
check(stat.S_IMODE(os.fstat(fd).st_mode) == 0o640 & ~0o022, f"mode {oct(os.fstat(fd).st_mode)}")
check(os.write(fd, b"hello world") == 11, "write")
check(os.pread(fd, 5, 6) == b"world", "pread")
check(os.pwrite(fd, b"HELLO", 0) == 5, "pwrite")
fd2 = os.dup(fd)
os.lseek(fd, 2, os.SEEK_SET)
check(os.lseek(fd2, 0, os.SEEK_CUR) == 2, "dup shares the offset")
check(os.read(fd2, 3) == b"LLO", "read through the dup")
check(os.lseek(fd, 0, os.SEEK_CUR) == 5, "offset moved for both")
os.ftruncate(fd, 20)
check(os.pread(fd, 20, 0) == b"HELLO world" + b"\0" * 9, "truncate up gives zeros")
os.truncate(j("fdfile"), 4)
check(os.fstat(fd).st_size == 4, "truncate by path seen through the fd")
os.lseek(fd, 10, os.SEEK_SET)
os.write(fd, b"X")
check(os.pread(fd, 100, 0) == b"HELL" + b"\0" * 6 + b"X", "write past EOF leaves a hole")
os.fsync(fd)
os.unlink(j("fdfile"))
check(not os.path.exists(j("fdfile")), "unlinked name still there")
check(os.fstat(fd).st_nlink == 0, f"nlink after unlink {os.fstat(fd).st_nlink}")
os.write(fd, b"still")
check(os.pread(fd, 100, 0) == b"HELL" + b"\0" * 6 + b"Xstill", "I/O on an unlinked open file")
os.close(fd2)
os.close(fd)

os.chmod(j("top"), 0o600)
check(stat.S_IMODE(os.stat(j("top")).st_mode) == 0o600, "chmod")
os.utime(j("top"), ns=(1_000_000_000_123, 2_000_000_000_456))
st = os.stat(j("top"))
check(st.st_mtime_ns == 2_000_000_000_456, f"utime mtime {st.st_mtime_ns}")
ino = os.stat(j("a", "x2")).st_ino
os.rename(j("a", "x2"), j("x3"))
check(os.stat(j("x3")).st_ino == ino, "inode number changed by rename")
with open(j("x3"), "rb") as f:
    check(os.fstat(f.fileno()).st_ino == ino, "fstat and stat disagree on the inode")
    data = f.read()
check(os.access(j("x3"), os.R_OK | os.W_OK) and not os.access(j("missing"), os.F_OK), "access")
report({"x3": sha(data), "walk": walk})
