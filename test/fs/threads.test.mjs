// Many threads on managed fds at once (test/c/mt_hammer.c): own regions, one shared offset,
// O_APPEND, size publication, namespace churn.  Plain and sanitised, with and without evictions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { BUILD, TEST_BIN, asanOptions, assertServedFromMemory, describe, ephemeraRun, requireBuilt, scratch } from './lib/harness.mjs';

const cases = [
  { name: 'mt_hammer, 8 threads', bin: join(TEST_BIN, 'mt_hammer'), args: ['8', '2000'] },
  { name: 'mt_hammer, 6 threads, 1 MiB budget (evictions while threads run)', bin: join(TEST_BIN, 'mt_hammer'), args: ['6', '1500'], budget: 1 << 20 },
  { name: 'mt_hammer under ASan/UBSan, 4 threads', bin: join(BUILD, 'asan', 'mt_hammer'), args: ['4', '600'] },
];

for (const c of cases) {
  test(c.name, { timeout: 600_000 }, async (t) => {
    requireBuilt(c.bin);
    const sc = scratch('mt_hammer');
    const root = sc.sub('root');
    const r = await ephemeraRun({ root, budget: c.budget, cmd: c.bin, args: [root, ...c.args], env: { ASAN_OPTIONS: asanOptions() }, statsDir: sc.dir, timeoutMs: 500_000 });
    assert.equal(r.status, 0, `${c.name}: ${describe(r)}\n(scratch kept in ${sc.dir})`);
    assert.match(r.stdout.toString(), /all ok/);
    assertServedFromMemory(r.stats, c.name);
    if (c.budget) assert.ok(r.stats.evictions > 0, `budget ${c.budget} but no eviction happened: ${JSON.stringify(r.stats)}`);
    t.diagnostic(`${r.stdout.toString().trim().split('\n').pop()}; fast_reads=${r.stats.fast_reads} fast_writes=${r.stats.fast_writes} evictions=${r.stats.evictions}`);
    sc.done();
  });
}
