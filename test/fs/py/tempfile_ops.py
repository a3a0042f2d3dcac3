"""tempfile with TMPDIR pointing into the managed root (TemporaryFile uses O_TMPFILE)."""
import os
import shutil
import sys
import tempfile

from common import check, report, rng, sha

root = sys.argv[1]
check(os.path.realpath(tempfile.gettempdir()) == os.path.realpath(root), f"gettempdir {tempfile.gettempdir()} is not the root")
r = rng(3)
blob = r.randbytes(300000)

with tempfile.TemporaryFile() as f:
    f.write(blob)
    f.seek(1000)
    check(f.read(5000) == blob[1000:6000], "TemporaryFile read back")
    f.seek(0)
    check(f.read() == blob, "TemporaryFile whole")

with tempfile.NamedTemporaryFile(suffix=".dat") as f:
    f.write(blob)
    f.flush()
    name = f.name
    check(os.path.dirname(name) == root, f"NamedTemporaryFile in {name}")
    with open(name, "rb") as g:
        check(g.read() == blob, "reopen a NamedTemporaryFile by name")
check(not os.path.exists(name), "NamedTemporaryFile not removed")

fd, p = tempfile.mkstemp(prefix="ms-")
os.write(fd, blob[:1234])
os.close(fd)
with open(p, "rb") as g:
    check(g.read() == blob[:1234], "mkstemp content")

d = tempfile.mkdtemp()
for i in range(20):
    with open(os.path.join(d, f"f{i}"), "wb") as g:
        g.write(blob[i * 100:(i + 1) * 1000])
check(len(os.listdir(d)) == 20, "mkdtemp listing")
shutil.rmtree(d)
check(not os.path.exists(d), "rmtree of a mkdtemp dir")

with tempfile.TemporaryDirectory() as td:
    os.makedirs(os.path.join(td, "x", "y"))
    with open(os.path.join(td, "x", "y", "z"), "wb") as g:
        g.write(blob)
    check(os.path.getsize(os.path.join(td, "x", "y", "z")) == len(blob), "file in TemporaryDirectory")
check(not os.path.exists(td), "TemporaryDirectory not cleaned up")

with tempfile.SpooledTemporaryFile(max_size=1000) as f:
    f.write(blob[:50000])  # rolls over to a real file in the root
    f.seek(0)
    check(f.read() == blob[:50000], "SpooledTemporaryFile after rollover")

left = sorted(os.listdir(root))
check(left == [os.path.basename(p)], f"leftovers in the root: {left}")
report({"mkstemp": sha(blob[:1234])})
