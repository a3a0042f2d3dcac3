import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fmtPct, markdown, median, parseIobench, passThroughOverhead, summarisePassThrough, verdict } from './io.js';
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
  assert.equal(r.pair_ratio_median, 0);
});

test('parseIobench reads the pair ratio of a pass-through loop, and insists on it', () => {
  const base = '"target":"/u","ops":10,"block":8192,"size":1,"ns":100,"ns_per_op":10.0,"laps":10,"lap_median_ns_per_op":9.5,"direct_lap_median_ns_per_op":9';
  assert.equal(parseIobench(`{"workload":"pass-meta",${base},"pairs":250,"pair_ratio_median":1.25}`).pair_ratio_median, 1.25);
  assert.throws(() => parseIobench(`{"workload":"pass-meta",${base}}`), (err: unknown) => isEphemeraError(err, 'EPH_BENCH_FAILED'));
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

test('pass-through overhead is a ratio of by-name/direct ratios', () => {
  // Calls by name cost 2% over direct libc calls without the shim (PLT vs pointer) and 5% with it: the shim adds ~2.9%.
  const o = passThroughOverhead({ shim: 0, plain: 0, shimRatio: 1.05, plainRatio: 1.02, range: [0, 0] });
  assert.ok(Math.abs(o - (1.05 / 1.02 - 1)) < 1e-12);
  assert.equal(passThroughOverhead({ shim: 0, plain: 0, shimRatio: 1, plainRatio: 1, range: [0, 0] }), 0);
});

test('pass-through summary: medians over repeats, and the range of per-repeat overheads', () => {
  const p = summarisePassThrough([1.1, 1.3, 1.2], [1.1, 1.2, 1.0], [5, 7, 6], [4, 4, 5]);
  assert.equal(p.shimRatio, 1.2);
  assert.equal(p.plainRatio, 1.1);
  assert.equal(p.shim, 6);
  assert.equal(p.plain, 4);
  assert.ok(Math.abs(p.range[0] - 0) < 1e-12);
  assert.ok(Math.abs(p.range[1] - 0.2) < 1e-12);
  assert.ok(Math.abs(passThroughOverhead(p) - (1.2 / 1.1 - 1)) < 1e-12);
});

test('percentages: one decimal, no negative zero', () => {
  assert.equal(fmtPct(0.0123), '1.2%');
  assert.equal(fmtPct(-0.0004), '0.0%');
  assert.equal(fmtPct(-0.012), '-1.2%');
});
