"""gzip and zipfile on files in the root (both seek and tell a lot)."""
import gzip
import io
import os
import sys
import zipfile

from common import check, report, rng, sha

root = sys.argv[1]
j = lambda *p: os.path.join(root, *p)  # noqa: E731
r = rng(5)
lines = [f"{i} {r.random()} {'word ' * r.randint(0, 20)}\n" for i in range(20000)]
text = "".join(lines)

with gzip.open(j("t.gz"), "wt", encoding="utf-8") as f:
    f.write(text)
with gzip.open(j("t.gz"), "rt", encoding="utf-8") as f:
    check(f.read() == text, "gzip text round trip")
with gzip.open(j("t.gz"), "rb") as f:
    f.seek(100000)
    check(f.read(50) == text.encode()[100000:100050], "seek inside a gzip stream")
blob = r.randbytes(500000)
with open(j("b.gz"), "wb") as f:
    f.write(gzip.compress(blob, 9))
with open(j("b.gz"), "rb") as f:
    check(gzip.decompress(f.read()) == blob, "gzip.compress/decompress via a file")

members = {"a.txt": text.encode(), "dir/b.bin": blob, "dir/empty": b"", "c.bin": r.randbytes(70000)}
with zipfile.ZipFile(j("z.zip"), "w", compression=zipfile.ZIP_DEFLATED) as z:
    for name, data in members.items():
        z.writestr(name, data)
with zipfile.ZipFile(j("z.zip"), "a", compression=zipfile.ZIP_STORED) as z:  # append rewrites the central directory
    z.write(j("b.gz"), "stored/b.gz")
members["stored/b.gz"] = open(j("b.gz"), "rb").read()
with zipfile.ZipFile(j("z.zip")) as z:
    check(z.testzip() is None, "zip CRC check")
    check(sorted(z.namelist()) == sorted(members), f"zip names {z.namelist()}")
    for name, data in members.items():
        check(z.read(name) == data, f"zip member {name}")
    z.extractall(j("out"))
for name, data in members.items():
    check(open(j("out", name), "rb").read() == data, f"extracted {name}")
# zip of an in-memory buffer written in one go, then opened from the root
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("x", b"x" * 1000)
with open(j("mem.zip"), "wb") as f:
    f.write(buf.getvalue())
with zipfile.ZipFile(j("mem.zip")) as z:
    check(z.read("x") == b"x" * 1000, "zip written from a buffer")
report({"text": sha(text.encode()), "blob": sha(blob)})
