import { test } from 'node:test';
import assert from 'node:assert/strict';

import { markdown, median, parseIobench, passThroughOverhead, verdict } from './io.js';
import { isEphemeraError } from '../core/errors.js';

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});

test('parseIobench takes the last line and checks the fields', () => {
  const r = parseIobench('noise\n{"workload":"rand-pread","target":"memcpy","ops":10,"block":8192,"size":1,"ns":100,"ns_per_op":10.0,"laps":10,"lap_median_ns_per_op":9.5,"lap_min_ns_per_op":9,"checksum":1}\n');
  assert.equal(r.ns_per_op, 10);
  assert.equal(r.lap_median_ns_per_op, 9.5);
  assert.throws(() => parseIobench('oops'), (err: unknown) => isEphemeraError(err, 'EPH_BENCH_FAILED'));
  assert.throws(() => parseIobench('{"workload":"x"}'), (err: unknown) => isEphemeraError(err, 'EPH_BENCH_FAILED'));
});

test('verdicts follow the targets: random ≥2.5× tmpfs and ≤1.3× memcpy, sequential ≥ tmpfs, meta ≤1.5× tmpfs time', () => {
  assert.equal(verdict('random', { ephemera: 1, tmpfs: 2.5, memcpy: 1 / 1.3 }).met, true);
  assert.equal(verdict('random', { ephemera: 1, tmpfs: 2.4, memcpy: 1 }).met, false);
  assert.equal(verdict('random', { ephemera: 1, tmpfs: 3, memcpy: 0.7 }).met, false);
  assert.equal(verdict('random', { ephemera: 1, memcpy: 1 }).met, undefined);
  assert.equal(verdict('sequential', { ephemera: 1, tmpfs: 1 }).met, true);
  assert.equal(verdict('sequential', { ephemera: 1.1, tmpfs: 1 }).met, false);
  assert.equal(verdict('meta', { ephemera: 1.5, tmpfs: 1 }).met, true);
  assert.equal(verdict('meta', { ephemera: 1.6, tmpfs: 1 }).met, false);
});

test('markdown pads columns', () => {
  assert.equal(markdown([['a', 'bb'], ['ccc', 'd']]), '| a   | bb  |\n| --- | --- |\n| ccc | d   |');
});

test('pass-through overhead is a ratio of libc/syscall ratios', () => {
  // libc costs 2% over the raw syscall without the shim and 5% with it: the shim adds ~2.9%.
  const o = passThroughOverhead({ shim: 0, plain: 0, shimRatio: 1.05, plainRatio: 1.02 });
  assert.ok(Math.abs(o - (1.05 / 1.02 - 1)) < 1e-12);
  assert.equal(passThroughOverhead({ shim: 0, plain: 0, shimRatio: 1, plainRatio: 1 }), 0);
});
