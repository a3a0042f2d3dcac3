/**
 * The decision benchmark runs end to end on small numbers and reports every row; its event stream
 * is valid for the core (no start of a running container, no end of an idle one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { benchEvents, benchPool, percentiles, runManagerBench, MANAGER_BENCH_DEFAULTS } from './bench.js';
import { createManager } from './core.js';

test('percentiles of a known sample', { timeout: 5_000 }, () => {
  const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.deepEqual([p.n, p.p50Ns, p.p90Ns, p.p99Ns, p.meanNs], [100, 51, 91, 100, 50.5]);
});

test('the bench event stream is a valid sequence that moves memory', { timeout: 5_000 }, () => {
  const { infos, used } = benchPool(8, 'b');
  const m = createManager({ tenant: 'b', sharing: 'tenant', harvestThresholdBytes: 0, donorMarginBytes: 0, engineMinimumBytes: 0, lendWhileIdle: false });
  for (const info of infos) m.apply({ kind: 'register', container: info }, 0);
  let moves = 0;
  for (const e of benchEvents(infos, used, 5000, 1)) moves += m.apply(e, 0).length;
  assert.ok(moves > 500, `only ${String(moves)} moves`);
  assert.equal(m.snapshot().totals.lentBytes, 0, 'the stream ends with everything returned');
});

test('ephemera bench manager runs every kind of row', { timeout: 60_000 }, async () => {
  const report = await runManagerBench({ ...MANAGER_BENCH_DEFAULTS, events: 2000, sizes: [2, 8], rates: [1000], seconds: 1, processEvents: 50, spin: false, progress: () => undefined });
  assert.deepEqual(report.rows.map((r) => r.kind), ['back-to-back', 'back-to-back', 'paced', 'process']);
  for (const r of report.rows) assert.ok(r.stats.n > 0 && r.stats.p50Ns > 0 && r.movingShare > 0, JSON.stringify(r));
  assert.match(report.table, /target: the decision alone <= 1 µs at p50/);
  // Lending while idle can only meet more of the recipients' need than lending while running.
  assert.equal(report.coverage.length, 2);
  for (const c of report.coverage) assert.ok(c.paperRule > 0 && c.paperRule <= c.lendWhileIdle && c.lendWhileIdle <= 1, JSON.stringify(c));
});
