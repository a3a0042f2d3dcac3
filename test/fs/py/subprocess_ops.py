"""Files shared across exec: Python writes, gzip (a child) compresses, Python reads the .gz;
children writing to inherited managed fds; a static binary and a cleared environment."""
import gzip
import os
import subprocess
import sys

from common import check, report, rng, sha

root, static_reader = sys.argv[1], sys.argv[2]
j = lambda *p: os.path.join(root, *p)  # noqa: E731
r = rng(7)
data = r.randbytes(400000) + b"text " * 50000

with open(j("a"), "wb") as f:
    f.write(data)
subprocess.run(["gzip", j("a")], check=True)
check(not os.path.exists(j("a")) and os.path.exists(j("a.gz")), "gzip did not replace a with a.gz")
with gzip.open(j("a.gz"), "rb") as f:
    check(f.read() == data, "the .gz gzip wrote does not decompress to what Python wrote")
subprocess.run(["gunzip", j("a.gz")], check=True)
with open(j("a"), "rb") as f:
    check(f.read() == data, "gunzip round trip")

# a child writes to a managed file through an inherited fd (its stdout)
with open(j("out.txt"), "wb") as out:
    out.write(b"header\n")
    out.flush()
    subprocess.run(["cat", j("a")], stdout=out, check=True)
    out.write(b"footer\n")
with open(j("out.txt"), "rb") as f:
    check(f.read() == b"header\n" + data + b"footer\n", "child output through an inherited fd")

# a pipeline of children reading and writing the root
subprocess.run(f"cat {j('a')} | gzip -c > {j('p.gz')} && gunzip -c {j('p.gz')} > {j('p')}", shell=True, check=True)
with open(j("p"), "rb") as f:
    check(f.read() == data, "sh pipeline result")

# a static binary cannot load the shim: the file must be on disk for it
fnv = 0xcbf29ce484222325
for b in data:
    fnv = ((fnv ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
out = subprocess.run([static_reader, j("a"), "appended-by-static"], check=True, capture_output=True, text=True).stdout
check(out == f"bytes={len(data)} fnv={fnv:016x}\n", f"static reader saw {out!r}")
with open(j("a"), "rb") as f:
    check(f.read() == data + b"appended-by-static", "what the static binary appended is not visible")
out = subprocess.run(["sh", "-c", f"{static_reader} {j('p')}"], check=True, capture_output=True, text=True).stdout
check(out == f"bytes={len(data)} fnv={fnv:016x}\n", f"static reader via sh saw {out!r}")

# a child with a cleared environment still sees the in-memory file
with open(j("env.txt"), "wb") as f:
    f.write(b"seen without an environment\n" * 1000)
out = subprocess.run(["/bin/cat", j("env.txt")], env={}, check=True, capture_output=True).stdout
check(out == b"seen without an environment\n" * 1000, "cat with env={} read different bytes")
with open(j("a"), "rb") as f:  # and we keep using the file after all that
    check(f.read() == data + b"appended-by-static", "final read of a")
report({"a": sha(data + b"appended-by-static")})
