"""subprocess.run(cwd=) into a directory in memory (Python's vfork child changes directory before
its exec).  Mode "memory": children that load the shim (/bin/cat, env={} too, where the shim puts
LD_PRELOAD back) read the files by relative names; the node test then checks that nothing went to
disk.  Mode "disk": children that cannot load the shim (a static binary, EPHEMERA_NO_PRELOAD) read
them through the kernel, which must see the bytes."""
import os
import subprocess
import sys

from common import check, report, rng, sha

root, mode = sys.argv[1], sys.argv[2]
sub = os.path.join(root, "sub")
os.makedirs(sub)
r = rng(11)
files = {f"f{i}": r.randbytes(100 + 37 * i) for i in range(20)}
for name, data in files.items():
    with open(os.path.join(sub, name), "wb") as f:
        f.write(data)
for name, data in files.items():
    with open(os.path.join(sub, name), "rb") as f:
        check(f.read() == data, f"{name} read back")

if mode == "memory":
    for k in range(6):
        name = f"f{k}"
        out = subprocess.run(["/bin/cat", name], cwd=sub, check=True, capture_output=True).stdout
        check(out == files[name], f"cat {name} with cwd={sub} read {len(out)} bytes")
    out = subprocess.run(["/bin/cat", "f7", "f8"], cwd=sub, env={}, check=True, capture_output=True).stdout
    check(out == files["f7"] + files["f8"], "cat with cwd= and env={} read different bytes")
    # a relative name for the program, looked up in PATH, and a shell in the directory
    out = subprocess.run("cat f9 | wc -c", cwd=sub, shell=True, check=True, capture_output=True).stdout
    check(int(out) == len(files["f9"]), f"sh -c 'cat f9 | wc -c' with cwd= said {out!r}")
else:
    static_reader = sys.argv[3]
    fnv = 0xCBF29CE484222325
    for b in files["f3"]:
        fnv = ((fnv ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    out = subprocess.run([static_reader, "f3"], cwd=sub, check=True, capture_output=True, text=True).stdout
    check(out == f"bytes={len(files['f3'])} fnv={fnv:016x}\n", f"static reader with cwd= saw {out!r}")
    env = dict(os.environ, EPHEMERA_NO_PRELOAD="1")
    out = subprocess.run(["/bin/cat", "f4"], cwd=sub, env=env, check=True, capture_output=True).stdout
    check(out == files["f4"], "cat with cwd= and EPHEMERA_NO_PRELOAD read different bytes")
for name, data in files.items():  # and Python still reads them all
    with open(os.path.join(sub, name), "rb") as f:
        check(f.read() == data, f"final read of {name}")
report({name: sha(data) for name, data in files.items()})
