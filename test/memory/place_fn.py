"""A function for test/memory/place.test.ts: writes file A, then file B of the same size, then
SMALL small files, and checks every byte.  With `open`, A stays open and in use while B is
written; with `closed`, A is closed first.

usage: place_fn.py ROOT SIZE_BYTES open|closed SMALL
Prints one JSON line and exits 0 when every file read back intact, 3 otherwise.
"""
import hashlib
import json
import os
import sys

root, size, mode, small = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
CHUNK = 1 << 20


def chunk(name):
    return hashlib.sha256(name.encode()).digest() * (CHUNK // 32)


def write(f, name, n):
    data = chunk(name)
    for _ in range(n // CHUNK):
        f.write(data)
    f.flush()


def intact(name, n):
    data = chunk(name)
    with open(os.path.join(root, name), "rb") as f:
        for _ in range(n // CHUNK):
            if f.read(CHUNK) != data:
                return False
        return f.read(1) == b""


a = open(os.path.join(root, "a.bin"), "wb")
write(a, "a.bin", size)
if mode == "closed":
    a.close()
with open(os.path.join(root, "b.bin"), "wb") as b:
    write(b, "b.bin", size)
for i in range(small):
    with open(os.path.join(root, "s%d.bin" % i), "wb") as s:
        s.write(chunk("s%d.bin" % i)[:4096])
if mode == "open":
    a.close()
ok = intact("a.bin", size) and intact("b.bin", size)
for i in range(small):
    with open(os.path.join(root, "s%d.bin" % i), "rb") as s:
        ok = ok and s.read() == chunk("s%d.bin" % i)[:4096]
print(json.dumps({"intact": ok}))
sys.exit(0 if ok else 3)
