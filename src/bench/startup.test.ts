// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { renderStartupTable, summariseStartupBench } from './startup.js';

test('per-round differences over `true` and over the first build', () => {
  const r = summariseStartupBench(['this build', '--against /b'], [1, 2, 3], [[4, 6, 5], [5, 9, 6]]);
  assert.equal(r.rounds, 3);
  assert.equal(r.trueMs, 2);
  assert.deepEqual(r.rows[0], { label: 'this build', medianMs: 5, overTrueMs: [2, 3, 4] });
  assert.deepEqual(r.rows[1], { label: '--against /b', medianMs: 6, overTrueMs: [3, 4, 7], overFirstMs: [1, 1, 3] });
});

test('the table ends with the verdict against the 10 ms target', () => {
  const met = renderStartupTable(summariseStartupBench(['this build'], [1, 1, 1], [[4, 5, 6]]));
  assert.match(met, /\| this build +\| 5\.00 +\| 4\.00 \(3\.00 to 5\.00\) +\| +\|/);
  assert.match(met, /this build: 4\.00 ms over `true` \(median of 3 rounds\); target ≤ 10 ms: met$/);
  const not = renderStartupTable(summariseStartupBench(['this build'], [1], [[20]]));
  assert.match(not, /target ≤ 10 ms: NOT met$/);
});
