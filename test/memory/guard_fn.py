"""The OOM guard's workloads (test/memory/guard.test.ts).

    guard_fn.py ROOT fits FILES_MIB HEAP_MIB
        writes FILES_MIB of files under ROOT (8 MiB each), then touches HEAP_MIB of heap at once:
        faster than any poll, so only the guard (and its watchdog) can keep the function alive;
        then reads every file back and checks its bytes.  Exit 0 when all is intact.
    guard_fn.py ROOT outgrows FILES_MIB STEP_MIB
        writes FILES_MIB of files, then grows its heap by STEP_MIB at a time without end: it must
        be killed by the kernel (the guard lifted), never left frozen.
"""
import sys

MiB = 1 << 20
root, mode, files_mib, heap_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
nfiles = files_mib // 8


def pattern(i):
    return bytes([(i * 37 + 11) & 0xFF]) * MiB


for i in range(nfiles):
    block = pattern(i)
    with open(f"{root}/f{i}", "wb") as f:
        for _ in range(8):
            f.write(block)

if mode == "fits":
    heap = bytearray(b"\x01") * (heap_mib * MiB)
    bad = []
    for i in range(nfiles):
        block = pattern(i)
        with open(f"{root}/f{i}", "rb") as f:
            for k in range(8):
                if f.read(MiB) != block:
                    bad.append(f"f{i} MiB {k}")
                    break
            if f.read(1):
                bad.append(f"f{i} too long")
    if heap[-1] != 1 or bad:
        print("corrupt:", bad, file=sys.stderr)
        sys.exit(5)
    print(f"ok: {nfiles} files intact beside a {heap_mib} MiB heap")
else:
    chunks = []
    while True:
        chunks.append(bytearray(b"\x01") * (heap_mib * MiB))
