// The shim copies with its own loop where glibc's memcpy (rep movsb) falls off a cliff: a
// destination 1-31 bytes past the source modulo 4 KiB.  Reads and writes of every size class
// (below and above the 2 KiB switch, with and without a tail) at buffer and file offsets that put
// the distance inside, at the edges of and outside that range, through read/pread/preadv and
// write/pwrite/pwritev, must move exactly the same bytes as on tmpfs.  The buffers are anonymous
// mmaps, so their page offset (and with it the distance) is what the script says.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, assertServedFromMemory, requireBuilt, runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import hashlib, mmap, os, sys
d = sys.argv[1]
def fail(*a):
    print("FAIL", *a); sys.exit(1)
size = 1 << 20
pattern = bytes((i * 7 + i // 251) & 255 for i in range(size))
fd = os.open(os.path.join(d, "f"), os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, pattern, 0)
buf = mmap.mmap(-1, 256 << 10)
view = memoryview(buf)
sizes = [1, 2047, 2048, 2049, 3000, 8192, 8192 + 77, 65536 + 5, 131072]
boffs = [0, 1, 15, 16, 17, 31, 32, 33, 63, 4095]
foffs = [0, 1, 5, 4096, 4096 + 17, 8192 - 16]
h = hashlib.sha256()
n_ops = 0
for n in sizes:
    for b in boffs:
        for f in foffs:
            # reads: three entry points
            dst = view[b:b + n]
            how = n_ops % 3
            if how == 0:
                got = os.preadv(fd, [dst], f)
            elif how == 1:
                os.lseek(fd, f, os.SEEK_SET); got = os.readv(fd, [dst])
            else:
                data = os.pread(fd, n, f); dst[:len(data)] = data; got = len(data)
            if got != n or bytes(dst) != pattern[f:f + n]:
                fail("read", n, "bytes at file offset", f, "into page offset", b)
            # writes: the same bytes shifted by one, then read back
            src = view[b:b + n]
            src[:] = pattern[f + 1:f + 1 + n] if f + 1 + n <= size else pattern[:n]
            want = bytes(src)
            how = n_ops % 3
            if how == 0:
                w = os.pwrite(fd, src, f)
            elif how == 1:
                os.lseek(fd, f, os.SEEK_SET); w = os.write(fd, src)
            else:
                w = os.pwritev(fd, [src], f)
            if w != n or os.pread(fd, n, f) != want:
                fail("write", n, "bytes at file offset", f, "from page offset", b)
            os.pwrite(fd, pattern[f:f + n], f)  # restore
            n_ops += 1
h.update(os.pread(fd, size, 0))
print("digest", h.hexdigest(), n_ops)
`;

test('reads and writes at every alignment class move the same bytes as on tmpfs', async (t) => {
  requireBuilt(PYTHON);
  const { tmpfs: r0, shim: r, sc } = await runOnTmpfsAndShim('copy-align', SCRIPT);
  assert.match(r0.stdout.toString(), /digest [0-9a-f]{64}/, r0.stderr.toString());
  assert.match(r.stdout.toString(), /digest [0-9a-f]{64}/, r.stdout.toString() + r.stderr.toString());
  assert.equal(r.stdout.toString(), r0.stdout.toString());
  assertServedFromMemory(r.stats, 'copy-align');
  t.diagnostic(`fast_reads=${r.stats.fast_reads} fast_writes=${r.stats.fast_writes}`);
  sc.done();
});
