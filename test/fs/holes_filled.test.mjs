// A file that had holes reads through the kernel (a fault through the shared mapping would
// allocate a hole's page, which tmpfs leaves alone), but only while a hole is left: FunctionBench's
// disk I/O ftruncates its file and then writes every page, and its reads must take the fast path
// again.  Under the shim, the reads of the filled file make no read system call (syscr in
// /proc/self/io); a file that stays sparse keeps its holes (st_blocks as on tmpfs), and reads of
// its written ranges take the fast path too (the hole check is per range), while reads that touch
// a hole still go through the kernel and return zeros.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, assertServedFromMemory, requireBuilt, runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import os, sys
d, shim = sys.argv[1], sys.argv[2] == "shim"
def fail(*a):
    print("FAIL", *a); sys.exit(1)
def read_syscalls():
    for line in open("/proc/self/io"):
        if line.startswith("syscr:"):
            return int(line.split()[1])
    return 0
size = 4 << 20
fd = os.open(os.path.join(d, "filled"), os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)  # all holes...
for off in range(0, size, 65536):
    os.pwrite(fd, bytes([off >> 16 & 255]) * 65536, off)  # ...then every page written
before = read_syscalls()
for i in range(4000):
    off = (i * 7919 % 512) * 8192
    if os.pread(fd, 8192, off) != bytes([off >> 16 & 255]) * 8192: fail("data at", off)
calls = read_syscalls() - before - 1  # the look at /proc/self/io itself
if shim and calls > 100: fail("4000 reads of the filled file made %d read system calls" % calls)
g = os.open(os.path.join(d, "sparse"), os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(g, 1 << 20); os.pwrite(g, b"x", 500000)
for i in range(50):
    if os.pread(g, 4096, 0) != b"\\0" * 4096: fail("hole reads", os.pread(g, 16, 0))
# still sparse: holes at [0, 1 MiB) and [3 MiB, 4 MiB), data in between
h = os.open(os.path.join(d, "partly"), os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(h, 4 << 20)
for off in range(1 << 20, 3 << 20, 65536):
    os.pwrite(h, bytes([off >> 16 & 255]) * 65536, off)
before = read_syscalls()
for i in range(4000):
    off = (1 << 20) + (i * 7919 % 256) * 8192
    if os.pread(h, 8192, off) != bytes([off >> 16 & 255]) * 8192: fail("data of the sparse file at", off)
calls = read_syscalls() - before - 1
if shim and calls > 100: fail("4000 reads of data ranges of a sparse file made %d read system calls" % calls)
edge = os.pread(h, 16384, (3 << 20) - 8192)  # last data page and the first hole page
if edge != bytes([47]) * 8192 + b"\\0" * 8192: fail("read across data and hole", edge[8190:8194])
if os.pread(h, 8192, 8192) != b"\\0" * 8192: fail("leading hole")
print("blocks", os.fstat(g).st_blocks, os.fstat(fd).st_blocks, os.fstat(h).st_blocks)
print("holes ok")
`;

test('a file whose holes were all written reads from memory again; a sparse one keeps its holes and reads its data from memory', async (t) => {
  requireBuilt(PYTHON);
  const { tmpfs: r0, shim: r, sc } = await runOnTmpfsAndShim('holes-filled', SCRIPT, { args: (side) => [side] });
  assert.match(r.stdout.toString(), /holes ok/);
  // st_blocks of both files as on tmpfs: the sparse one keeps its holes
  const blocks = (out) => /blocks (\d+) (\d+) (\d+)/.exec(out)?.slice(1);
  assert.deepEqual(blocks(r.stdout.toString()), blocks(r0.stdout.toString()));
  assertServedFromMemory(r.stats, 'holes-filled');
  t.diagnostic(`fast_reads=${r.stats.fast_reads} slow_ops=${r.stats.slow_ops}`);
  sc.done();
});
