// mmap pins end when the mappings do.  An application's mmap of an in-memory file pins it (the kernel
// serves that mapping from the memfd's pages, so the daemon must not move the file).  Before the fix
// the pin was never cleared: a file mapped once, then unmapped and closed everywhere, stayed in
// memory for good and the budget could not be kept.  Now, when eviction has work to do, the daemon
// looks for mappings of closed pinned files in /proc/<pid>/smaps (the shim's own fast-path views are
// MADV_DONTDUMP, the program's are not) and unpins the ones nobody maps.  A file that is still mapped
// must stay: its mapping keeps working and writes through it land in the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, describe, ephemeraRun, scratch } from './lib/harness.mjs';

const SCRIPT = String.raw`
import json, mmap, os, subprocess, sys
os.chdir(sys.argv[1])
def in_memory(name):
    # A fresh process: it remembers no identity from an earlier open of the file.
    code = 'import os,sys;print(os.stat(sys.argv[1]).st_ino >= 1 << 44)'
    return subprocess.run([sys.executable, '-c', code, name], capture_output=True, text=True, check=True).stdout.strip()
def pressure(first, n):
    for i in range(first, first + n):
        with open('big%d' % i, 'wb') as f:
            f.write(os.urandom(100000))
out = {}
A = bytes((i * 7) % 251 for i in range(300000))
with open('A', 'wb') as f:
    f.write(A)
f = open('A', 'r+b')
m = mmap.mmap(f.fileno(), 0)
f.close()
m[0:5] = b'ABCDE'
m.close()
# A child maps it too, writes, and exits.
subprocess.run([sys.executable, '-c', 'import mmap;f=open("A","r+b");m=mmap.mmap(f.fileno(),0);m[5:8]=b"fgh"'], check=True)
with open('B', 'wb') as f:
    f.write(b'b' * 100000)
g = open('B', 'r+b')
mb = mmap.mmap(g.fileno(), 0)
g.close()
mb[0:3] = b'xyz'
out['before'] = [in_memory('A'), in_memory('B')]
pressure(0, 12)
out['after'] = [in_memory('A'), in_memory('B')]
mb[3:6] = b'uvw'
out['B read after a write through its mapping'] = open('B', 'rb').read(8).decode()
out['A intact'] = open('A', 'rb').read() == b'ABCDEfgh' + A[8:]
pressure(12, 12)
out['B after more pressure'] = [in_memory('B'), mb[0:8].decode(), open('B', 'rb').read(8).decode()]
mb.close()
print('RESULT ' + json.dumps(out))
`;

test('a file mapped, then unmapped and closed everywhere, is evicted; one still mapped is not', async () => {
  const sc = scratch('pins');
  const root = sc.sub('root');
  const r = await ephemeraRun({ root, budget: 600_000, cmd: PYTHON, args: ['-c', SCRIPT, root], statsDir: sc.dir });
  assert.equal(r.status, 0, `script under the shim: ${describe(r)}\n(scratch kept in ${sc.dir})`);
  const line = r.stdout.toString().split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line: ${describe(r)}`);
  const out = JSON.parse(line.slice('RESULT '.length));
  assert.deepEqual(out.before, ['True', 'True'], 'both files start in memory');
  assert.equal(out.after[0], 'False', `A, no longer mapped nor open, should have left memory (stats ${JSON.stringify(r.stats)})`);
  assert.equal(out.after[1], 'True', 'B is still mapped: it must stay in memory');
  assert.equal(out['A intact'], true, 'A read back after its eviction differs from what was written through the mappings');
  assert.equal(out['B read after a write through its mapping'], 'xyzuvwbb');
  assert.deepEqual(out['B after more pressure'], ['True', 'xyzuvwbb', 'xyzuvwbb']);
  assert.ok(r.stats && r.stats.evictions > 0, `no eviction counted: ${JSON.stringify(r.stats)}`);
  sc.done();
});
