// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ioIntensity, ioShare } from './intensity.js';
import { reductionPct, summarize } from './stats.js';

test('summarize: median of odd and even counts, min, max and relative spread', () => {
  assert.deepEqual(summarize([3, 1, 2]), { n: 3, median: 2, min: 1, max: 3, spread: 1 });
  assert.equal(summarize([4, 1, 2, 3]).median, 2.5);
  assert.equal(summarize([5]).spread, 0);
  assert.throws(() => summarize([]), RangeError);
});

test('reductionPct: positive when faster than the baseline', () => {
  assert.ok(Math.abs(reductionPct(45, 100) - 55) < 1e-9);
  assert.equal(reductionPct(150, 100), -50);
  assert.ok(Number.isNaN(reductionPct(1, 0)));
});

test('I/O intensity follows t_k × p / (t_k + t_u), with waiting calls left out of p', () => {
  const rows = { read: { seconds: 0.6, calls: 10 }, write: { seconds: 0.2, calls: 10 }, mmap: { seconds: 0.2, calls: 80 }, wait4: { seconds: 9, calls: 2 } };
  const p = ioShare(rows);
  assert.ok(Math.abs(p.byTime - 0.8) < 1e-12);
  assert.ok(Math.abs(p.byCalls - 0.2) < 1e-12);
  // t_k = 3 s, t_u = 1 s, p = 0.8 → 3 × 0.8 / 4 = 0.6
  assert.ok(Math.abs(ioIntensity(3, 1, p.byTime) - 0.6) < 1e-12);
  assert.equal(ioIntensity(0, 0, 0.5), 0);
});
