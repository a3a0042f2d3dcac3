/**
 * Placement of new files (daemon/place.c): a file that will most likely not fit starts on disk
 * instead of being written into memory and copied out half-way, and the prediction forgets once
 * the function moves on to small files. A static budget keeps the numbers exact (no cgroup noise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { EPHEMERA, MiB, PYTHON, REPO, run } from './harness.js';

const FN = join(REPO, 'test/memory/place_fn.py');
const BUDGET = 40 * MiB;
const SIZE = 24 * MiB;
const SMALL = 6;

async function runFn(mode: 'open' | 'closed'): Promise<Record<string, number>> {
  const work = await mkdtemp('/var/tmp/eph-place-');
  try {
    const root = join(work, 'root');
    await mkdir(root);
    const statsFile = join(work, 'stats.json');
    const r = await run([EPHEMERA, 'run', '--budget', String(BUDGET), '--root', root, '--stats', statsFile, '--', PYTHON, FN, root, String(SIZE), mode, String(SMALL)]);
    assert.equal(r.code, 0, `the function must finish with every byte intact; stdout ${r.stdout} stderr ${r.stderr}`);
    return JSON.parse(await readFile(statsFile, 'utf8')) as Record<string, number>;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

test('a second large file that cannot fit beside one in use starts on disk: no copy', async (t) => {
  const s = await runFn('open');
  t.diagnostic(JSON.stringify({ created: s['files_created'], on_disk: s['files_on_disk'], predicted: s['files_on_disk_predicted'], evictions: s['evictions'] }));
  assert.equal(s['evictions'], 0, 'B must not be written to memory and then moved');
  assert.equal(s['bytes_evicted'], 0);
  // B, then the small files while B (24 MiB) is among the last four created.
  assert.equal(s['files_on_disk_predicted'], 1 + 4);
  assert.equal(s['files_on_disk'], 1 + 4);
  // A, and the small files once the guess has forgotten the large ones.
  assert.equal(s['files_created'], 1 + SMALL - 4);
});

test('a closed file does not count against the room: the new file starts in memory and pushes it out', async (t) => {
  const s = await runFn('closed');
  t.diagnostic(JSON.stringify({ created: s['files_created'], on_disk: s['files_on_disk'], predicted: s['files_on_disk_predicted'], evictions: s['evictions'] }));
  assert.equal(s['files_on_disk_predicted'], 0);
  assert.equal(s['files_created'], 2 + SMALL);
  assert.equal(s['evictions'], 1, 'A (closed) goes to disk to make room for B');
});
