/**
 * Issue 3's first test: a function whose heap grows to 90% of its limit while 60% of the limit is
 * in scratch files. Under `ephemera run --memory` it finishes, its files are intact and the stats
 * show evictions; with the files on a tmpfs in a cgroup with the same limit, the same program is
 * OOM-killed; on plain disk it finishes (slowly), which is what ephemera must never be worse than.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { createInstanceCgroup } from '../../build/js/limiter/cgroup.js';
import { cgroupSkipReason, EPHEMERA, MiB, PYTHON, REPO, run } from './harness.js';

const FN = join(REPO, 'test/memory/harvest_fn.py');
const LIMIT = 128 * MiB;
const SKIP = await cgroupSkipReason();

interface FnOutput {
  rss: number;
  limit: number;
  file_bytes: number;
  intact: boolean;
}

/** What harvest_fn.py writes to scratch-I.bin: sha256("scratch-I") repeated. */
function expected(i: number, size: number): string {
  const unit = createHash('sha256').update(`scratch-${i}`).digest();
  const h = createHash('sha256');
  for (let n = 0; n < size / 32; n++) h.update(unit);
  return h.digest('hex');
}

test('heap to 90% of the limit with 60% in files: ephemera evicts and finishes, tmpfs is OOM-killed', { skip: SKIP, timeout: 180_000 }, async (t) => {
  const work = await mkdtemp('/var/tmp/eph-harvest-');
  try {
    // ephemera: daemon and function in a fresh 128 MiB cgroup.
    const root = join(work, 'ephemera');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(root);
    const statsFile = join(work, 'stats.json');
    const eph = await run([EPHEMERA, 'run', '--memory', String(LIMIT), '--root', root, '--stats', statsFile, '--', PYTHON, FN, root, String(LIMIT)]);
    assert.equal(eph.code, 0, `under ephemera the function must finish; stderr: ${eph.stderr}`);
    const out = JSON.parse(eph.stdout.trim().split('\n').pop() ?? '') as FnOutput;
    assert.equal(out.intact, true);
    assert.ok(out.rss >= 0.85 * LIMIT, `the heap reached ${out.rss} bytes, meant to be ~90% of ${LIMIT}`);
    assert.ok(out.file_bytes >= 0.59 * LIMIT, `files were ${out.file_bytes} bytes, meant to be 60% of ${LIMIT}`);
    const stats = JSON.parse(await readFile(statsFile, 'utf8')) as Record<string, number>;
    assert.equal(stats['oom_kills'], 0);
    assert.ok((stats['evictions'] ?? 0) > 0, `no evictions in the stats: ${JSON.stringify(stats)}`);
    assert.ok((stats['bytes_in_memory_peak'] ?? 0) >= out.file_bytes, 'the files were in memory before the heap grew');
    // Written back on exit: every file is at its path, byte for byte.
    const names = (await readdir(root)).sort();
    assert.equal(names.length, 6);
    const size = out.file_bytes / 6;
    for (const [i, name] of names.entries()) {
      const got = createHash('sha256').update(await readFile(join(root, name))).digest('hex');
      assert.equal(got, expected(i, size), `${name} differs after the run`);
    }
    t.diagnostic(`ephemera: evictions ${stats['evictions']}, bytes evicted ${stats['bytes_evicted']}, cgroup peak ${stats['cgroup_peak']}, OOM kills 0`);

    // tmpfs: the same program, its files on a tmpfs, in a cgroup with the same limit.
    const tmpfs = join(work, 'tmpfs');
    await mkdir(tmpfs);
    const mount = await run(['mount', '-t', 'tmpfs', '-o', `size=${LIMIT},mode=0700`, 'eph-harvest', tmpfs]);
    assert.equal(mount.code, 0, mount.stderr);
    const cg = await createInstanceCgroup({ memoryLimit: LIMIT });
    try {
      const r = await run(cg.command([PYTHON, FN, tmpfs, String(LIMIT)]));
      assert.equal(r.signal, 'SIGKILL', `on tmpfs the function should be OOM-killed, got ${String(r.code)} ${r.stdout}`);
      assert.ok((await cg.oomKills()) >= 1);
      t.diagnostic(`tmpfs: killed by ${r.signal}, OOM kills ${await cg.oomKills()}`);
    } finally {
      await cg.destroy();
      await run(['umount', tmpfs]);
    }

    // Plain disk under the same limit finishes too: the baseline ephemera must match.
    const disk = join(work, 'disk');
    await mkdir(disk);
    const cgDisk = await createInstanceCgroup({ memoryLimit: LIMIT });
    try {
      const r = await run(cgDisk.command([PYTHON, FN, disk, String(LIMIT)]));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await cgDisk.oomKills(), 0);
    } finally {
      await cgDisk.destroy();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
