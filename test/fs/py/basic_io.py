"""open/read/write/seek/truncate/append and text mode, checked against an in-memory model."""
import os
import sys

from common import check, report, rng, sha

root = sys.argv[1]
r = rng(1)
path = os.path.join(root, "data.bin")
model = bytearray()

with open(path, "wb") as f:
    for _ in range(300):
        chunk = r.randbytes(r.randint(1, 20000))
        f.write(chunk)
        model += chunk
    check(f.tell() == len(model), f"tell {f.tell()} after writing {len(model)} bytes")

with open(path, "r+b") as f:
    for i in range(500):
        off = r.randint(0, len(model) + 5000)
        data = r.randbytes(r.randint(0, 5000))
        f.seek(off)
        f.write(data)
        if off > len(model):
            model += b"\0" * (off - len(model))  # a hole reads back as zeros
        model[off:off + len(data)] = data
        ro = r.randint(0, len(model))
        f.seek(ro)
        want = bytes(model[ro:ro + r.randint(0, 9000)])
        got = f.read(len(want))
        check(got == want, f"iteration {i}: read {len(want)} at {ro} returned different bytes")
    f.seek(0, os.SEEK_END)
    check(f.tell() == len(model), f"SEEK_END gives {f.tell()}, file is {len(model)}")
    f.truncate(len(model) // 2)
    del model[len(model) // 2:]
    f.seek(len(model) + 3000)
    f.write(b"after-hole")
    model += b"\0" * 3000 + b"after-hole"

with open(path, "ab") as f:
    f.write(b"tail")
    model += b"tail"
check(os.path.getsize(path) == len(model), f"getsize {os.path.getsize(path)} != {len(model)}")

text = os.path.join(root, "text.txt")
lines = [f"line {i} \u00fc\u00df\u20ac\n" for i in range(5000)]
with open(text, "w", encoding="utf-8") as f:
    f.writelines(lines)
with open(text, encoding="utf-8") as f:
    check(f.readlines() == lines, "text lines read back differ")
with open(text, "a", encoding="utf-8") as f:
    f.write("appended\n")
lines.append("appended\n")
with open(text, encoding="utf-8") as f:
    check(f.read() == "".join(lines), "text after append differs")

with open(path, "rb") as f:
    check(f.read() == bytes(model), "final content of data.bin differs from the model")

# many small files, written then read in another order
small = {}
for i in range(200):
    p = os.path.join(root, f"small-{i}.txt")
    data = r.randbytes(r.randint(0, 3000))
    with open(p, "wb") as f:
        f.write(data)
    small[p] = data
for p in sorted(small, reverse=True):
    with open(p, "rb") as f:
        check(f.read() == small[p], f"{p} reads back differently")

report({"data.bin": sha(bytes(model)), "text.txt": sha("".join(lines).encode()), "small": len(small)})
