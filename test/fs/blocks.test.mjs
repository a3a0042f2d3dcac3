// st_blocks as tmpfs counts it: holes (a write past the end, truncate up, a punched range) are not
// allocated, reading through a hole does not allocate it, fallocate does, and a file rewritten after
// O_TRUNC counts only what it holds now.  The same script on a real tmpfs and under the shim.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import os, sys
d = sys.argv[1]
out = []
def st(p, tag):
    s = os.stat(p)
    out.append(f'{tag}: size={s.st_size} blocks={s.st_blocks}')
p = os.path.join(d, 'sparse')
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b'a' * 100)
st(p, 'small')
os.lseek(fd, 1 << 20, os.SEEK_SET)
os.write(fd, b'b' * 5000)
st(p, 'gap write')
os.pread(fd, 4096, 500000)
st(p, 'after reading the hole')
os.ftruncate(fd, 3 << 20)
st(p, 'truncate up')
os.ftruncate(fd, (3 << 20) + 100)
st(p, 'truncate up partial')
os.posix_fallocate(fd, 2 << 20, 8192)
st(p, 'fallocate')
os.lseek(fd, 0, os.SEEK_SET)
data = os.read(fd, 4 << 20)
out.append(f'read {len(data)} sum={sum(data)}')
st(p, 'after reading all')
try:
    out.append(f'seek_data 4096 -> {os.lseek(fd, 4096, os.SEEK_DATA)}, seek_hole 0 -> {os.lseek(fd, 0, os.SEEK_HOLE)}')
except OSError as e:
    out.append(f'seek {e}')
os.close(fd)
q = os.path.join(d, 'dense')
with open(q, 'wb') as f:
    f.write(b'x' * 100000)
st(q, 'dense')
fd = os.open(q, os.O_RDWR | os.O_TRUNC)
st(q, 'O_TRUNC')
os.write(fd, b'y' * 10000)
st(q, 'rewritten')
os.close(fd)

p = os.path.join(d, 'f3')
with open(p, 'wb') as f:
    f.write(b'z' * 30000)
fd = os.open(p, os.O_TRUNC | os.O_CREAT | os.O_WRONLY, 0o644)
st(p, 'O_TRUNC of a written file')
os.truncate(p, 48512)
st(p, 'truncate by path')
os.ftruncate(fd, 0)
os.write(fd, b'q' * 5000)
os.ftruncate(fd, 20000)
st(p, 'rewrite then truncate up')
os.lseek(fd, 100000, os.SEEK_SET)
os.write(fd, b'e' * 10)
st(p, 'write far past the end')
os.close(fd)
print('\\n'.join(out))
`;

test('st_blocks of sparse in-memory files matches tmpfs', async () => {
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('blocks', SCRIPT);
  assert.ok(shim.stats.files_created >= 3, 'the files were created in memory');
  assert.ok(shim.stats.fast_reads > 0, 'reads were served by the shim');
  assert.equal(shim.stdout.toString(), tmpfs.stdout.toString());
  sc.done();
});
