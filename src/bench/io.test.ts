// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { fmtPct, fmtQ, LOCK_ROUNDS, markdown, median, namespaceSizes, NS_ROUNDS, pairedTargets, parseIobench, parsePaired, passThroughOverhead, quartiles, roundRatios, summarisePaired, summarisePassThrough, verdict } from './io.js';
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
  assert.equal(verdict('random', { vsTmpfs: 2.5, toMemcpy: 1.3 }).met, true);
  assert.equal(verdict('random', { vsTmpfs: 2.4, toMemcpy: 1 }).met, false);
  assert.equal(verdict('random', { vsTmpfs: 3, toMemcpy: 1.31 }).met, false);
  assert.equal(verdict('random', { vsTmpfs: undefined, toMemcpy: 1 }).met, undefined);
  assert.equal(verdict('sequential', { vsTmpfs: 1, toMemcpy: undefined }).met, true);
  assert.equal(verdict('sequential', { vsTmpfs: 0.9, toMemcpy: undefined }).met, false);
  assert.equal(verdict('meta', { vsTmpfs: 1 / 1.5, toMemcpy: undefined }).met, true);
  assert.equal(verdict('meta', { vsTmpfs: 1 / 1.6, toMemcpy: undefined }).met, false);
});

test('quartiles interpolate between ranks', () => {
  assert.deepEqual(quartiles([4, 1, 3, 2, 5]), [2, 3, 4]);
  assert.deepEqual(quartiles([1, 2, 3, 4]), [1.75, 2.5, 3.25]);
  assert.deepEqual(quartiles([7]), [7, 7, 7]);
  assert.equal(fmtQ([2.4, 2.61, 2.7]), '2.61× (2.40–2.70)');
  assert.equal(fmtQ(undefined), 'n/a');
});

const PAIRED = '{"workload":"rand-pread","paired":true,"ops":4,"block":8192,"size":1,"rounds":2,"lap_ops":2,"laps":{"ephemera":[1000,1100],"tmpfs":[2600,2200],"disk":[2000,2200],"memcpy":[900,1000]},"checksum":1}';

test('parsePaired reads every contender\'s laps and rejects what is not a paired run', () => {
  const r = parsePaired(`noise\n${PAIRED}\n`);
  assert.equal(r.workload, 'rand-pread');
  assert.deepEqual(r.laps.tmpfs, [2600, 2200]);
  const bad = (text: string): void => assert.throws(() => parsePaired(text), (err: unknown) => isEphemeraError(err, 'EPH_BENCH_FAILED'));
  bad('oops');
  bad('{"workload":"rand-pread","target":"/x","ns_per_op":1}'); // a single-target result
  bad('{"workload":"rand-pread","paired":true,"laps":{"ephemera":[1,2],"tmpfs":[1]}}'); // lap counts differ
  bad('{"workload":"rand-pread","paired":true,"laps":{"ramfs":[1]}}'); // unknown contender
  bad('{"workload":"rand-pread","paired":true,"laps":{"ephemera":[0]}}'); // a lap that took no time
});

test('paired ratios are taken per round, then summarised over all rounds of all runs', () => {
  const a = parsePaired(PAIRED);
  const b = parsePaired(PAIRED.replace('"tmpfs":[2600,2200]', '"tmpfs":[3000,2400]'));
  // round by round: 2.6, 2.0 in run a; 3.0, 2.182 in run b (not the quotient of the medians)
  assert.deepEqual(roundRatios([a, b], 'tmpfs', 'ephemera').map((x) => Math.round(x * 1000) / 1000), [2.6, 2, 3, 2.182]);
  const s = summarisePaired([a, b]);
  assert.equal(s.rounds, 4);
  assert.equal(s.lap.ephemera, 1050);
  assert.equal(s.lap.memcpy, 950);
  assert.ok(Math.abs((s.vsTmpfs?.[1] ?? 0) - (2400 / 1100 + 2.6) / 2) < 1e-9);
  assert.ok(Math.abs((s.bound?.[1] ?? 0) - median([2600 / 900, 2200 / 1000, 3000 / 900, 2400 / 1000])) < 1e-9);
  assert.ok(Math.abs((s.toMemcpy?.[1] ?? 0) - median([1000 / 900, 1.1, 1000 / 900, 1.1])) < 1e-9);
  // without a tmpfs (not root) the tmpfs ratios are absent, the rest stays
  const noTmpfs = summarisePaired([parsePaired(PAIRED.replace('"tmpfs":[2600,2200],', ''))]);
  assert.equal(noTmpfs.vsTmpfs, undefined);
  assert.equal(noTmpfs.bound, undefined);
  assert.ok(noTmpfs.vsDisk !== undefined);
});

test('paired targets: ephemera by name through the shim, tmpfs and disk straight into libc, memcpy', () => {
  assert.deepEqual(pairedTargets({ ephRoot: '/w/m', disk: '/w/d', tmpfs: '/w/t' }), ['--by-name', 'ephemera=/w/m', '--direct', 'tmpfs=/w/t', '--direct', 'disk=/w/d', '--memcpy']);
  assert.deepEqual(pairedTargets({ ephRoot: '/w/m', disk: '/w/d', tmpfs: undefined }), ['--by-name', 'ephemera=/w/m', '--direct', 'disk=/w/d', '--memcpy']);
  // namespace workloads have no memcpy form
  assert.deepEqual(pairedTargets({ ephRoot: '/w/m', disk: '/w/d', tmpfs: '/w/t' }, false), ['--by-name', 'ephemera=/w/m', '--direct', 'tmpfs=/w/t', '--direct', 'disk=/w/d']);
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

test('namespace rows: laps scale with --ops, a rename lap is one set, a listing keeps its 1000 entries', () => {
  const create = { name: 'md-create', label: 'c', kind: 'namespace', lapOps: 200 } as const;
  const rename = { name: 'md-rename', label: 'r', kind: 'namespace', entries: 1000, scaleEntries: true } as const;
  const readdir = { name: 'md-readdir', label: 'l', kind: 'namespace', lapOps: 5, entries: 1000 } as const;
  assert.deepEqual(namespaceSizes(create, 500_000), { lapOps: 200, entries: 1000, ops: 200 * NS_ROUNDS });
  assert.deepEqual(namespaceSizes(create, 250_000), { lapOps: 100, entries: 1000, ops: 100 * NS_ROUNDS });
  assert.deepEqual(namespaceSizes(create, 10), { lapOps: 2, entries: 1000, ops: 2 * NS_ROUNDS });
  assert.deepEqual(namespaceSizes(rename, 500_000), { lapOps: 1000, entries: 1000, ops: 1000 * NS_ROUNDS });
  assert.deepEqual(namespaceSizes(rename, 2000), { lapOps: 10, entries: 10, ops: 10 * NS_ROUNDS });
  assert.deepEqual(namespaceSizes(readdir, 2000), { lapOps: 2, entries: 1000, ops: 2 * NS_ROUNDS });
  assert.equal(NS_ROUNDS % 6, 0, 'every contender takes every position equally often');
  const lock = { name: 'md-lock', label: 'l', kind: 'namespace', lapOps: 100, rounds: 240 } as const;
  assert.deepEqual(namespaceSizes(lock, 500_000), { lapOps: 100, entries: 1000, ops: 100 * 240 });
  assert.deepEqual(namespaceSizes(lock, 2000), { lapOps: 2, entries: 1000, ops: 2 * 240 });
  assert.equal(LOCK_ROUNDS % 6, 0, 'the lock row too');
});

test('namespace verdict: ephemera\'s time at most tmpfs\'s', () => {
  assert.equal(verdict('namespace', { vsTmpfs: 1, toMemcpy: undefined }).met, true);
  assert.equal(verdict('namespace', { vsTmpfs: 0.99, toMemcpy: undefined }).met, false);
  assert.equal(verdict('namespace', { vsTmpfs: undefined, toMemcpy: undefined }).met, undefined);
});

test('summarisePaired of a namespace run: per-round ratios without a memcpy contender', () => {
  const run = parsePaired('{"workload":"md-create","paired":true,"laps":{"ephemera":[100,300],"tmpfs":[10,20],"disk":[50,60]}}');
  const p = summarisePaired([run]);
  assert.deepEqual(p.vsTmpfs, quartiles([0.1, 20 / 300]));
  assert.deepEqual(p.vsDisk, quartiles([0.5, 0.2]));
  assert.equal(p.toMemcpy, undefined);
  assert.equal(p.rounds, 2);
});
