// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { compile } from 'vega-lite';

import { FIG16C_ARMS, fig16cCsv, fig16cPlotSpec, formatFig16c, runFig16c } from './bench.js';
import { formatFig16b, runFig16b } from './bench-fig16b.js';
import { formatTable4Model } from './table4.js';

test('fig16c runs every arm on every cluster size and reports what it measured (no timing asserted)', { timeout: 30_000 }, () => {
  const lines: string[] = [];
  const rows = runFig16c({ nodes: [50, 1000], requests: 20, rounds: 2, seed: 3, progress: (l) => lines.push(l) });
  assert.deepEqual(rows.map((r) => [r.nodes, r.arm]), [50, 1000].flatMap((n) => FIG16C_ARMS.map((a) => [n, a])));
  for (const r of rows) {
    assert.equal(r.samples, 40);
    assert.ok(r.p50Us > 0 && r.p90Us >= r.p50Us, JSON.stringify(r));
  }
  assert.ok(lines.includes('fig16c: 1000 nodes: linear scan'));
  const text = formatFig16c(rows, { requests: 20, rounds: 2 });
  assert.match(text, /nodes are in-memory models/);
  assert.match(text, /target ≤ 10 µs at 1000 nodes: p50 [\d.]+ µs, p90 [\d.]+ µs -> (met|met at p50 only|MISSED)/);
  assert.equal(fig16cCsv(rows).trim().split('\n').length, 1 + rows.length);
  const vega = compile(fig16cPlotSpec(rows));
  assert.ok(vega.spec.marks !== undefined && vega.spec.marks.length > 0);
});

test('the Table 4 model prints our rows and the baseline beside the paper', { timeout: 5_000 }, () => {
  const { text, result } = formatTable4Model();
  assert.match(text, /ephemera\s+node1\s+778\s+750\s+750\s+778\/750\/748/);
  assert.match(text, /most-free\s+node2\s+1032\s+600\s+600\s+1032\/600\/600/);
  assert.match(text, /wasted .* 188 MB \(paper: 190 MB\)/);
  assert.match(text, /wasted .* 592 MB \(paper: 592 MB\)/);
  assert.equal(result.ephemera.length, 2);
});

test('fig16b paces requests over one second on two model nodes, for both policies', { timeout: 20_000 }, async () => {
  const started = performance.now();
  const rows = await runFig16b({ rates: [40], holdMs: 5, seed: 2 });
  assert.ok(performance.now() - started >= 2 * 975, 'the warm-up second and one second per policy, paced');
  assert.deepEqual(rows.map((r) => [r.rate, r.policy, r.samples, r.placed]), [[40, 'ephemera', 40, 40], [40, 'most-free', 40, 40]]);
  assert.match(formatFig16b(rows, 5), /released 5 ms later[\s\S]*\n\s+40\s+[\d.]+ \/ [\d.]+ \/ [\d.]+/);
});
