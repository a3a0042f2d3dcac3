"""The OOM guard's workloads (test/memory/guard.test.ts, and src/node/guard-docker.test.ts, which
loads this file as an OpenWhisk action: main(args) runs a workload in /tmp).

    guard_fn.py ROOT fits FILES_MIB HEAP_MIB
        writes FILES_MIB of files under ROOT (8 MiB each), then touches HEAP_MIB of heap at once:
        faster than any poll, so only the guard (and its watchdog) can keep the function alive;
        then reads every file back and checks its bytes.  Exit 0 when all is intact.
    guard_fn.py ROOT outgrows FILES_MIB STEP_MIB
        writes FILES_MIB of files, then grows its heap by STEP_MIB at a time without end: it must
        be killed by the kernel (the guard lifted), never left frozen.

As an action, "outgrows" may take "pause_s": it waits that long between the files and the heap
(src/cli/node-e2e.test.ts kills the node agent in that pause, with the guard set).
"""
import sys
import time

MiB = 1 << 20


def pattern(i):
    return bytes([(i * 37 + 11) & 0xFF]) * MiB


def write_files(root, nfiles):
    for i in range(nfiles):
        block = pattern(i)
        with open(f"{root}/f{i}", "wb") as f:
            for _ in range(8):
                f.write(block)


def fits(root, files_mib, heap_mib):
    """The files, then the heap at once, then every file read back: what was wrong, if anything."""
    nfiles = files_mib // 8
    write_files(root, nfiles)
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
    if heap[-1] != 1:
        bad.append("heap")
    return bad


def outgrows(root, files_mib, step_mib, pause_s=0):
    write_files(root, files_mib // 8)
    time.sleep(pause_s)
    chunks = []
    while True:
        chunks.append(bytearray(b"\x01") * (step_mib * MiB))


def main(args):
    """The action: the "fits" workload (or with mode "outgrows", that one) in the managed /tmp."""
    if args.get("mode") == "outgrows":
        outgrows("/tmp", args["files_mib"], args["step_mib"], args.get("pause_s", 0))
    return {"files": args["files_mib"] // 8, "bad": fits("/tmp", args["files_mib"], args["heap_mib"])}


if __name__ == "__main__":
    root, mode, files_mib, size_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "fits":
        bad = fits(root, files_mib, size_mib)
        if bad:
            print("corrupt:", bad, file=sys.stderr)
            sys.exit(5)
        print(f"ok: {files_mib // 8} files intact beside a {size_mib} MiB heap")
    else:
        outgrows(root, files_mib, size_mib)
