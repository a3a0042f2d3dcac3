// The shim keeps a file's pages across O_TRUNC, so bytes past the size may be stale (see
// ARCHITECTURE.md, "The stale tail").  Everything that grows a file without writing its bytes must
// still read back zeros, and no program may see the old bytes: a Python script rewrites files that
// were full of 0xAA..0xEE and checks each way of growing them, an mmap, a subprocess with the
// shim and a static binary without it.  The same script runs on a real tmpfs as the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { PYTHON, TEST_BIN, assertServedFromMemory, requireBuilt, runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import mmap, os, subprocess, sys
d, static_reader = sys.argv[1], sys.argv[2]
p = os.path.join(d, "f")
def chk(name, got, want):
    if got != want:
        print("FAIL", name, len(got), len(want), got[:32], want[:32]); sys.exit(1)
def fill(byte):
    with open(p, "wb") as f:
        f.write(bytes([byte]) * 100000)
fill(0xaa)  # O_TRUNC open, then a write past the end: the gap reads zeros
fd = os.open(p, os.O_RDWR | os.O_TRUNC); os.lseek(fd, 50001, 0); os.write(fd, b"x")
chk("lseek+write past EOF", os.pread(fd, 60000, 0), b"\\0" * 50001 + b"x"); os.close(fd)
fd = os.open(p, os.O_RDWR | os.O_TRUNC); os.ftruncate(fd, 70000)  # cached reopen, truncate up
chk("ftruncate up", os.pread(fd, 80000, 0), b"\\0" * 70000); os.close(fd)
fill(0xbb)
fd = os.open(p, os.O_RDWR | os.O_TRUNC); os.write(fd, b"abc"); os.pwrite(fd, b"z", 9000)
chk("pwrite past EOF", os.pread(fd, 20000, 0), b"abc" + b"\\0" * 8997 + b"z")
os.posix_fallocate(fd, 0, 30000)
chk("fallocate", os.pread(fd, 40000, 0), b"abc" + b"\\0" * 8997 + b"z" + b"\\0" * 20999); os.close(fd)
fill(0xcc)
with open(p, "wb") as f: f.write(b"12")
fd = os.open(p, os.O_RDWR | os.O_APPEND); os.ftruncate(fd, 5000); os.write(fd, b"q")
chk("append after truncate up", os.pread(fd, 9000, 0), b"12" + b"\\0" * 4998 + b"q"); os.close(fd)
fill(0xdd)
with open(p, "r+b") as f:
    f.truncate(0); f.seek(0); f.write(b"hello"); f.flush()
    m = mmap.mmap(f.fileno(), 0); chk("mmap", m[:], b"hello"); m.close()
fill(0xee)
with open(p, "wb") as f: f.write(b"hi")
out = subprocess.run(["/bin/cat", p], capture_output=True).stdout
chk("cat (with the shim)", out, b"hi")
def fnv1a64(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & 0xffffffffffffffff
    return h
out = subprocess.run([static_reader, p], capture_output=True).stdout.strip()
chk("static reader (kernel view)", out, b"bytes=2 fnv=%016x" % fnv1a64(b"hi"))
print("stale tail ok")
`;

test('files rewritten after O_TRUNC never show their old bytes (stale tail)', async (t) => {
  const reader = join(TEST_BIN, 'static_reader');
  requireBuilt(PYTHON, reader);
  const { shim: r, sc } = await runOnTmpfsAndShim('stale-tail', SCRIPT, { args: () => [reader] });
  assert.match(r.stdout.toString(), /stale tail ok/);
  assertServedFromMemory(r.stats, 'stale tail');
  t.diagnostic(`fast_reads=${r.stats.fast_reads} fast_writes=${r.stats.fast_writes}`);
  sc.done();
});
