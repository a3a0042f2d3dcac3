"""Python threads doing file I/O at once (the shim must be thread-safe without a global lock)."""
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from common import check, report, rng, sha

root = sys.argv[1]
N = 8
REGION = 200000
shared = os.path.join(root, "shared.bin")
fd = os.open(shared, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, N * REGION)
expected = bytearray(N * REGION)
lock = threading.Lock()


def work(t):
    r = rng(100 + t)
    own = os.path.join(root, f"own-{t}.bin")
    body = bytearray()
    with open(own, "wb") as f:
        for _ in range(200):
            chunk = r.randbytes(r.randint(1, 5000))
            f.write(chunk)
            body += chunk
    with open(own, "rb") as f:
        check(f.read() == body, f"thread {t}: own file")
    region = bytearray(REGION)
    for _ in range(300):
        off = r.randint(0, REGION - 1)
        chunk = r.randbytes(r.randint(1, min(4000, REGION - off)))
        os.pwrite(fd, chunk, t * REGION + off)
        region[off:off + len(chunk)] = chunk
        ro = r.randint(0, REGION - 1)
        n = r.randint(0, min(4000, REGION - ro))
        check(os.pread(fd, n, t * REGION + ro) == bytes(region[ro:ro + n]), f"thread {t}: pread of own region")
    with lock:
        expected[t * REGION:(t + 1) * REGION] = region
    return sha(bytes(body))


with ThreadPoolExecutor(N) as ex:
    digests = list(ex.map(work, range(N)))
check(os.pread(fd, N * REGION, 0) == bytes(expected), "shared file after all threads")
os.close(fd)
report({"own": digests, "shared": sha(bytes(expected))})
