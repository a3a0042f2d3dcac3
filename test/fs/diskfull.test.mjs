// Disk full under the managed root (issue 9, item 3).  The root's "disk" is a 1 MiB tmpfs mounted
// for the test and filled to the last byte, and the memory budget is 256 KiB, so the daemon can
// neither keep a growing file in memory nor move anything to disk.  Wanted: the program gets ENOSPC
// where the kernel would (the write that needs room nobody has), every byte written before is
// there to read, a file whose eviction failed stays in memory intact, and once space is freed the
// program carries on.  Nothing is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, describe, ephemeraRun, run, scratch } from './lib/harness.mjs';

const PROGRAM = String.raw`
import errno, json, os, socket, sys
root, filler = sys.argv[1], sys.argv[2]
K = 1024
out = {}

def put(name, data):
    with open(os.path.join(root, name), 'wb') as f:
        f.write(data)

def get(name):
    with open(os.path.join(root, name), 'rb') as f:
        return f.read()

a, b = os.urandom(200 * K), os.urandom(200 * K)
put('a.bin', a)   # in memory
put('b.bin', b)   # in memory; a goes to disk to make room (LRU)

# Fill the disk to the last byte (an unmanaged file beside the root).
fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
try:
    while True:
        os.write(fd, b'\0' * 4096)
except OSError as e:
    out['filler_errno'] = e.errno
os.close(fd)

# A new file that needs room: b cannot be evicted (no disk), and c cannot go to disk either.
c = os.urandom(400 * K)
fd = os.open(os.path.join(root, 'c.bin'), os.O_WRONLY | os.O_CREAT, 0o644)
n = 0
try:
    while n < len(c):
        n += os.write(fd, c[n:n + 8 * K])
except OSError as e:
    out['c_errno'] = e.errno
out['c_written'] = n
out['c_size_at_error'] = os.fstat(fd).st_size
out['a_ok'] = get('a.bin') == a
out['b_ok'] = get('b.bin') == b
out['c_prefix_ok'] = get('c.bin') == c[:n]

# The instance is asked to shrink (the Tenant Manager taking memory back) while the disk is full:
# the files that cannot be written out stay in memory, over the budget, intact.
def control(req):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(os.path.join(os.path.dirname(os.environ['EPHEMERA_SOCK']), 'control.sock'))
    s.sendall(json.dumps(dict(v=1, id=1, **req)).encode() + b'\n')
    buf = b''
    while not buf.endswith(b'\n'):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)
rep = control({'op': 'shrink', 'bytes': 1 << 20})
out['shrink_ok'] = rep.get('ok')
out['files_in_memory_after_shrink'] = control({'op': 'stats'})['result']['files_in_memory']
out['b_ok_after_shrink'] = get('b.bin') == b
out['c_prefix_ok_after_shrink'] = get('c.bin') == c[:n]

# Space again: the program finishes the file and nothing is lost.
os.unlink(filler)
try:
    while n < len(c):
        n += os.write(fd, c[n:n + 8 * K])
    out['c_after_errno'] = 0
except OSError as e:
    out['c_after_errno'] = e.errno
os.close(fd)
out['c_ok'] = get('c.bin') == c
out['a_ok_end'] = get('a.bin') == a
out['b_ok_end'] = get('b.bin') == b
print(json.dumps(out))
`;

test('disk full: a write that needs room gets ENOSPC, nothing is lost, and the program carries on after space is freed', { timeout: 120_000 }, async () => {
  const sc = scratch('diskfull');
  const mnt = sc.sub('disk');
  const mounted = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'ephemera-test-diskfull', mnt]);
  assert.equal(mounted.status, 0, `mounting a 1 MiB tmpfs as the root's disk needs root: ${describe(mounted)}`);
  try {
    const root = join(mnt, 'root');
    mkdirSync(root);
    const r = await ephemeraRun({
      root,
      budget: 256 * 1024,
      cmd: PYTHON,
      args: ['-c', PROGRAM, root, join(mnt, 'filler')],
      statsDir: sc.dir,
      discard: true,
      timeoutMs: 100_000,
    });
    assert.equal(r.status, 0, describe(r));
    const out = JSON.parse(r.stdout.toString().trim().split('\n').pop());
    const show = `${JSON.stringify(out)}\nstats: ${JSON.stringify(r.stats)}\n${describe(r)}`;
    assert.equal(out.filler_errno, 28, `the filler should have met ENOSPC: ${show}`);
    assert.equal(out.c_errno, 28, `the write that needed room should get ENOSPC (28): ${show}`);
    assert.ok(out.c_written < 400 * 1024, `c.bin cannot have been written in full: ${show}`);
    assert.equal(out.c_size_at_error, out.c_written, `c.bin's size must be what the program was told it wrote: ${show}`);
    assert.ok(out.a_ok && out.b_ok && out.c_prefix_ok, `bytes lost while the disk was full: ${show}`);
    assert.equal(out.shrink_ok, false, `a shrink with the disk full cannot succeed: ${show}`);
    assert.ok(out.files_in_memory_after_shrink >= 1, `the files that could not be written out must stay in memory: ${show}`);
    assert.ok(out.b_ok_after_shrink && out.c_prefix_ok_after_shrink, `bytes lost by a shrink with the disk full: ${show}`);
    assert.equal(out.c_after_errno, 0, `after space was freed the rest of c.bin must go in: ${show}`);
    assert.ok(out.c_ok && out.a_ok_end && out.b_ok_end, `bytes lost after space was freed: ${show}`);
    // a.bin went to disk while there was room; b.bin's eviction failed, so it stayed in memory
    assert.ok(r.stats && r.stats.evictions >= 1 && r.stats.files_in_memory_peak >= 2, `expected an eviction before the disk filled: ${show}`);
  } finally {
    await run('umount', ['-l', mnt]);
  }
  rmSync(sc.dir, { recursive: true, force: true });
});
