// Syncs in a managed root (docs/ARCHITECTURE.md, "Syncs in a managed root"): the root promises no
// durability, so fsync, fdatasync, syncfs and sync_file_range of its fds (a directory of the root,
// the root itself, an in-memory file, a file that left memory) answer without the kernel, as
// tmpfs's cost nothing; outside the roots every one of them still reaches the kernel.  SQLite's
// rollback journal syncs its directory after each journal delete, which cost ~40% of a
// transaction when it went to the disk.  test/fs/c/sync_count.c makes the calls between marker
// calls; strace counts them in each window, with and without the shim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, cleanEnv, compileProgram, describe, ephemeraRun, run, scratch } from './lib/harness.mjs';

const SYNCS = ['fsync', 'fdatasync', 'syncfs', 'sync_file_range'];

/** Sync calls (by name) in each marker window of an `strace -f -o` file. */
function windows(file) {
  const counts = {};
  let inside;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const mark = /"\/nonexistent-sync\/([a-z]+)-(begin|end)"/.exec(line);
    if (mark) {
      inside = mark[2] === 'begin' ? mark[1] : undefined;
      if (inside) counts[inside] = Object.fromEntries(SYNCS.map((s) => [s, 0]));
      continue;
    }
    const m = /^\d+\s+([a-z0-9_]+)\(/.exec(line);
    if (inside && m && SYNCS.includes(m[1])) counts[inside][m[1]] += 1;
  }
  return counts;
}

test('syncs of a managed root answer without the kernel; outside the roots they all reach it', { timeout: 60_000 }, async () => {
  const sc = scratch('sync');
  const prog = await compileProgram(sc, 'sync_count', readFileSync(join(REPO, 'test/fs/c/sync_count.c'), 'utf8'), { flags: ['-O1', '-Wall', '-Wextra', '-Werror'] });

  // Without the shim: the kernel's own count of the same calls, both windows.
  const plainIn = sc.sub('plain-in');
  const plainTrace = join(sc.dir, 'plain.txt');
  const plain = await run('strace', ['-f', '-o', plainTrace, prog, plainIn, sc.sub('plain-out')], { env: cleanEnv(), timeoutMs: 30_000 });
  assert.equal(plain.status, 0, describe(plain));
  const kernel = windows(plainTrace);
  // sync_all on three fds and an fsync of a dup inside; on two fds and the reused fd outside
  assert.deepEqual(kernel.managed, { fsync: 4, fdatasync: 3, syncfs: 3, sync_file_range: 3 });
  assert.deepEqual(kernel.outside, { fsync: 3, fdatasync: 2, syncfs: 2, sync_file_range: 2 });

  // Under the shim, with a budget a quarter of the big file: it leaves memory while it is written.
  const root = sc.sub('root');
  const shimTrace = join(sc.dir, 'shim.txt');
  const shim = await ephemeraRun({ root, budget: '1M', cmd: 'strace', args: ['-f', '-o', shimTrace, prog, root, sc.sub('outside')], statsDir: sc.dir, timeoutMs: 30_000 });
  assert.equal(shim.status, 0, describe(shim));
  const out = shim.stdout.toString();
  assert.match(out, /^big on disk 1$/m, `the big file was still in memory at its syncs, so they tested nothing new: ${out}`);
  assert.match(out, /^reused 1$/m, `the fopen did not take the closed managed directory's fd number, so the stale-mark check tested nothing: ${out}`);
  assert.ok(shim.stats.evictions > 0, `stats.evictions is ${shim.stats.evictions}`);
  const counted = windows(shimTrace);
  assert.deepEqual(counted.managed, { fsync: 0, fdatasync: 0, syncfs: 0, sync_file_range: 0 }, 'a sync of a managed fd reached the kernel');
  assert.deepEqual(counted.outside, kernel.outside, 'outside the roots, every sync must reach the kernel, as without the shim');
  sc.done();
});
