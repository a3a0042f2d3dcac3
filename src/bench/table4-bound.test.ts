// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ddSeconds, improvementBound, memMsFor, PAPER_TABLE4_IMPROVEMENT } from './table4-bound.js';

test('improvementBound: four I/O tasks from spill to in-memory time, two CPU tasks unchanged', { timeout: 5_000 }, () => {
  // Averages over six tasks: (4·10 + 2·8)/6 against (4·5 + 2·8)/6, i.e. 56 against 36.
  assert.equal(improvementBound(10_000, 5_000, 8_000), 20 / 56);
  assert.equal(improvementBound(10_000, 10_000, 8_000), 0);
  // A slower in-memory task is a negative bound, not a clamp.
  assert.ok(improvementBound(10_000, 11_000, 8_000) < 0);
  // Longer CPU tasks dilute the gain: a floor for them gives a ceiling for the bound.
  assert.ok(improvementBound(10_000, 5_000, 9_000) < improvementBound(10_000, 5_000, 8_000));
});

test('memMsFor inverts improvementBound', { timeout: 5_000 }, () => {
  const mem = memMsFor(PAPER_TABLE4_IMPROVEMENT, 9_460, 8_000);
  assert.ok(Math.abs(improvementBound(9_460, mem, 8_000) - PAPER_TABLE4_IMPROVEMENT) < 1e-12);
});

test('ddSeconds reads the time from dd\'s last line, NaN when absent', { timeout: 5_000 }, () => {
  assert.equal(ddSeconds('256+0 records in\n256+0 records out\n268435456 bytes (268 MB, 256 MiB) copied, 0.170481 s, 1.6 GB/s\n'), 0.170481);
  assert.ok(Number.isNaN(ddSeconds('dd: failed to open: Permission denied\n')));
});
