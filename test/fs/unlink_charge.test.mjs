// A file deleted after it was closed must stop costing its container memory.  The shim keeps the
// mapping and a private fd of recently closed files for a fast reopen; once the file is unlinked
// (here, or replaced by a rename) that cache must let go, or the memfd's pages stay charged to the
// container's memory cgroup while the daemon reports the file gone (a recipient of a memory loan
// then cannot shrink back).  Checked on a real memory cgroup (v1 or v2), as root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, describe, ephemeraRun, scratch } from './lib/harness.mjs';

/** A fresh memory cgroup of our own, or null (with the reason) where none can be made. */
function makeCgroup(name) {
  if (process.getuid() !== 0) return { skip: 'needs root to create a memory cgroup' };
  const v1 = '/sys/fs/cgroup/memory';
  const v2 = '/sys/fs/cgroup';
  let dir;
  if (existsSync(join(v1, 'memory.usage_in_bytes'))) dir = join(v1, name);
  else if (existsSync(join(v2, 'cgroup.controllers')) && readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8').includes('memory')) dir = join(v2, name);
  else return { skip: 'no memory cgroup controller (v1 memory or v2 with memory enabled)' };
  mkdirSync(dir);
  return { dir, remove: () => rmdirSync(dir) };
}

// Moves itself into the cgroup, then for each case: writes the files, closes them, reads the
// cgroup's shmem, removes them as the case says, reads shmem again.
const WORKLOAD = `
import json, os, sys
root, cg = sys.argv[1], sys.argv[2]
with open(os.path.join(cg, 'cgroup.procs'), 'w') as f:
    f.write(str(os.getpid()))
def shmem():
    for line in open(os.path.join(cg, 'memory.stat')):
        k, v = line.split()
        if k == 'shmem':
            return int(v)
    raise SystemExit('no shmem line in memory.stat')
chunk = bytes(range(256)) * 4096   # 1 MiB
def make(name):
    with open(os.path.join(root, name), 'wb') as f:
        for _ in range(32):
            f.write(chunk)
out = {}
# unlink of closed files (the measured case: two files of 32 MiB)
make('a.bin'); make('b.bin')
before = shmem()
os.unlink(os.path.join(root, 'a.bin')); os.unlink(os.path.join(root, 'b.bin'))
out['unlink'] = [before, shmem()]
# a closed file replaced by a rename over it
make('old.bin')
with open(os.path.join(root, 'new.bin'), 'wb') as f:
    f.write(b'n')
before = shmem()
os.rename(os.path.join(root, 'new.bin'), os.path.join(root, 'old.bin'))
out['rename'] = [before, shmem()]
# a closed file unlinked by another process: our cache goes at our next unlink
make('c.bin')
before = shmem()
pid = os.fork()
if pid == 0:
    os.unlink(os.path.join(root, 'c.bin'))
    os._exit(0)
os.waitpid(pid, 0)
with open(os.path.join(root, 'd.bin'), 'wb') as f:
    f.write(b'd')
os.unlink(os.path.join(root, 'd.bin'))
out['other'] = [before, shmem()]
print(json.dumps(out), flush=True)
`;

const MiB = 1 << 20;

test('deleting a closed in-memory file gives its pages back to the cgroup', { timeout: 60_000 }, async (t) => {
  const cg = makeCgroup(`ephemera-shim2-unlink-${process.pid}`);
  if (cg.skip) {
    t.skip(cg.skip);
    return;
  }
  const s = scratch('unlink_charge');
  try {
    const root = s.sub('root');
    const r = await ephemeraRun({ root, budget: '512M', cmd: PYTHON, args: ['-c', WORKLOAD, root, cg.dir], timeoutMs: 50_000 });
    assert.equal(r.status, 0, describe(r));
    const out = JSON.parse(r.stdout.toString());
    assert.ok(r.stats.files_created >= 6, `the files were created in memory: ${JSON.stringify(r.stats)}`);
    const cases = { unlink: 64 * MiB, rename: 32 * MiB, other: 32 * MiB };
    for (const [name, size] of Object.entries(cases)) {
      const [before, after] = out[name];
      assert.ok(before >= size, `${name}: the files' pages were charged to the cgroup (shmem ${before} bytes)`);
      assert.ok(before - after >= size - 2 * MiB,
        `${name}: shmem fell back by the files' size after the delete: ${before} -> ${after} bytes (expected a drop of ${size})`);
    }
    s.done();
  } finally {
    cg.remove();
  }
});
