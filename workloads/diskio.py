"""FunctionBench's sequential and random disk I/O functions, ported to Python 3.

The originals are Python 2 and break on Python 3 in known ways, fixed here:
  * ``range(total / block)`` gets a float: the op count is computed with integer division;
  * ``while byte != ""`` never ends because a binary read returns b"": the loop stops on b"";
  * the random variant opened its file in text mode: every open here is binary and unbuffered,
    so each operation is exactly one lseek plus one read or write reaching the file system.

The paper's setup (section 5.3.1): a 32 MB file, 8 KiB operations, 500,000 writes followed by
500,000 reads. ``seq`` writes/reads contiguously and seeks back to 0 at the end of the file;
``rand`` seeks to a random offset before every operation. The write phase ends with fsync, as in
FunctionBench. ``--access mmap`` does the same operations through a shared mapping instead of
read/write, which is the paper's Fig. 3 "mmap" contender.
"""

import mmap
import os
import random
import zlib

import contract

PRESETS = {  # size -> (file MiB, operations per phase)
    "tiny": (1, 2000),
    "small": (32, 50_000),
    "full": (32, 500_000),
}
SEED = 20240501


def offsets(pattern, file_bytes, block, ops):
    if pattern == "seq":
        per_pass = file_bytes // block
        return [(i % per_pass) * block for i in range(ops)]
    rng = random.Random(SEED)
    return [rng.randrange(0, file_bytes - block + 1) for _ in range(ops)]


def blocks(block):
    rng = random.Random(SEED + 1)
    return [rng.randbytes(block) for _ in range(16)]


def write_syscalls(path, file_bytes, offs, data, presize):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if presize:
            os.ftruncate(fd, file_bytes)
        n = len(data)
        pos = 0
        for i, off in enumerate(offs):
            if off != pos:
                os.lseek(fd, off, os.SEEK_SET)
            os.write(fd, data[i % n])
            pos = off + len(data[0])
        os.fsync(fd)
    finally:
        os.close(fd)


def read_syscalls(path, offs, block):
    buf = bytearray(block)
    head = memoryview(buf)[:64]
    crc = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        for off in offs:
            if off != pos:
                os.lseek(fd, off, os.SEEK_SET)
            got = os.readv(fd, [buf])
            if got != block:
                raise SystemExit(f"diskio: short read of {got} bytes at offset {off}")
            crc = zlib.crc32(head, crc)
            pos = off + block
    finally:
        os.close(fd)
    return crc


def write_mmap(path, file_bytes, offs, data):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, file_bytes)
        with mmap.mmap(fd, file_bytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
            n = len(data)
            block = len(data[0])
            for i, off in enumerate(offs):
                m[off:off + block] = data[i % n]
            m.flush()
        os.fsync(fd)
    finally:
        os.close(fd)


def read_mmap(path, offs, block):
    buf = bytearray(block)
    head = memoryview(buf)[:64]
    crc = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ) as m:
            for off in offs:
                buf[:] = m[off:off + block]
                crc = zlib.crc32(head, crc)
    finally:
        os.close(fd)
    return crc


def main():
    p = contract.parser(__doc__.splitlines()[0])
    p.add_argument("--pattern", choices=("seq", "rand"), required=True)
    p.add_argument("--access", choices=("syscall", "mmap"), default="syscall")
    p.add_argument("--file-mb", type=int, help="file size in MiB (default: from --size)")
    p.add_argument("--ops", type=int, help="operations per phase (default: from --size)")
    p.add_argument("--block", type=int, default=8192, help="bytes per operation (default 8192)")
    a = p.parse_args()
    file_mb, ops = PRESETS[a.size]
    file_mb = a.file_mb or file_mb
    ops = a.ops or ops
    file_bytes = file_mb << 20
    if a.block <= 0 or a.block > file_bytes:
        raise SystemExit(f"diskio: --block {a.block} must be between 1 and the file size {file_bytes}")

    work = contract.prepare_scratch(a.scratch)
    path = os.path.join(work, f"diskio-{a.pattern}.dat")
    ph = contract.Phases(["write", "read"])
    offs = ph.run("gen_offsets", offsets, a.pattern, file_bytes, a.block, ops)
    data = ph.run("gen_blocks", blocks, a.block)
    if a.access == "mmap":
        ph.run("write", write_mmap, path, file_bytes, offs, data)
        crc = ph.run("read", read_mmap, path, offs, a.block)
    else:
        # Random writes land anywhere, so the file is sized first and every read stays inside
        # it; sequential writes grow it from 0 as FunctionBench's do, with no hole in it.
        ph.run("write", write_syscalls, path, file_bytes, offs, data, a.pattern == "rand")
        crc = ph.run("read", read_syscalls, path, offs, a.block)
    digest = contract.digest_files([path])
    os.unlink(path)
    params = {"pattern": a.pattern, "access": a.access, "file_mb": file_mb, "ops": ops,
              "block": a.block}
    contract.emit(f"diskio-{a.pattern}", params, ph,
                  ["gen_offsets", "gen_blocks"], f"{digest}:{crc:08x}")


if __name__ == "__main__":
    main()
