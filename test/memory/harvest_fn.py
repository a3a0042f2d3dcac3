"""A function for test/memory/harvest.test.ts: 60% of its memory limit in scratch files, then its
own heap grows to 90% of the limit, then it checks every file.  Under ephemera the files must
move to disk as the heap grows; on a tmpfs the same program cannot fit and is OOM-killed.

usage: harvest_fn.py ROOT LIMIT_BYTES
Prints one JSON line and exits 0 when every file read back intact, 3 otherwise.
"""
import hashlib
import json
import os
import sys
import time

root, limit = sys.argv[1], int(sys.argv[2])
NFILES = 6
STEP = 4 << 20          # heap growth per step
PAUSE = 0.05            # 4 MiB per 50 ms: the daemon must react within 100 ms
CHUNK = 1 << 20
# At least 60% of the limit in all, in whole MiB per file.
size = -(-int(limit * 0.6) // (NFILES * CHUNK)) * CHUNK


def chunk(i):
    """1 MiB of file i's content: its pattern, generated per chunk so that writing the files
    does not grow the function's own memory."""
    return hashlib.sha256(b"scratch-%d" % i).digest() * (CHUNK // 32)


def rss():
    """The function's own resident memory: anonymous and file-backed, but not the shared
    mappings of in-memory files (RssShmem), which the limit already counts as files."""
    own = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                own += int(line.split()[1]) * 1024
    return own


digests = {}
for i in range(NFILES):
    path = os.path.join(root, "scratch-%d.bin" % i)
    data = chunk(i)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // CHUNK):
            f.write(data)
            h.update(data)
    digests[path] = h.hexdigest()

heap = []
while rss() + STEP <= int(limit * 0.9):
    heap.append(bytes([len(heap) % 251 + 1]) * STEP)
    time.sleep(PAUSE)

intact = True
for path, want in digests.items():
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    intact = intact and h.hexdigest() == want

print(json.dumps({"rss": rss(), "limit": limit, "file_bytes": size * NFILES, "intact": intact}), flush=True)
sys.exit(0 if intact else 3)
