// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { figure, FIGURES, selectPoints } from './figures.js';
import { change, pointVerdicts, renderSweep, summarise } from './report.js';
import { parseMicrobench, type RunResult } from './contenders.js';

const MiB = 1024 * 1024;

function run(contender: RunResult['contender'], ms: number | null, extra: Partial<RunResult> = {}): RunResult {
  return {
    contender,
    output: ms === null ? null : { create_ns: 0, ops_ns: ms * 1e6, total_ns: ms * 1e6, ops: 1, file_size: 1 },
    exit: ms === null ? 'killed by SIGKILL' : 'ok',
    oomKills: ms === null ? 1 : 0,
    peak: 10 * MiB,
    counters: contender === 'ephemera' ? { evictions: 2, bytes_evicted: MiB, bytes_in_memory_peak: MiB, fast_reads: 1, fast_writes: 1 } : null,
    error: '',
    ...extra,
  };
}

test('the sweeps follow the paper: limits, file usage, operation counts', () => {
  assert.deepEqual(figure('fig7').points.map((p) => p.limit / MiB), [32, 64, 128, 256]);
  assert.deepEqual(figure('fig7').points.map((p) => p.minSpeedup), [undefined, 1.5, 2.5, undefined]);
  assert.deepEqual(figure('fig8').points.map((p) => (2 * p.fileSize) / MiB), [32, 64, 96, 128, 160]);
  assert.ok(figure('fig8').points.every((p) => p.limit === 150 * MiB));
  assert.deepEqual(figure('fig9').points.map((p) => p.ops), [500, 5000, 50000, 500000]);
  assert.equal(figure('fig7', { ops: 7 }).points[0]?.ops, 7);
  assert.deepEqual(FIGURES, ['fig7', 'fig8', 'fig9']);
});

test('selectPoints picks points by the numbers of their labels and names the valid ones', () => {
  assert.deepEqual(selectPoints(figure('fig7'), ['64', '32 MiB']).points.map((p) => p.label), ['32 MiB', '64 MiB']);
  assert.deepEqual(selectPoints(figure('fig9'), ['5,000']).points.map((p) => p.ops), [5000]);
  assert.equal(selectPoints(figure('fig8'), undefined).points.length, 5);
  assert.throws(() => selectPoints(figure('fig7'), ['48']), /fig7 has no point "48"; its points are 32, 64, 128, 256/);
});

test('change() prints latency change the way the paper does', () => {
  assert.equal(change(45.27, 100), '−54.7%');
  assert.equal(change(103, 100), '+3.0%');
});

test('summaries take the median of finished runs and count OOM kills of all', () => {
  const s = summarise([run('tmpfs', 30), run('tmpfs', null), run('tmpfs', 10)]);
  assert.equal(s.ns, 20e6);
  assert.equal(s.failed, 1);
  assert.equal(s.oomKills, 1);
  assert.deepEqual(s.exits, ['killed by SIGKILL']);
});

test('the spread of runs is reported beside a missed 5% rule, which stays missed', () => {
  const p = figure('fig7').points[0];
  assert.ok(p);
  const disk = summarise([run('disk', 90), run('disk', 100), run('disk', 130)]);
  assert.equal(disk.spread, 0.2);
  assert.equal(summarise([run('disk', 90)]).spread, null);
  const v = pointVerdicts(p, { disk, ephemera: summarise([run('ephemera', 110)]) });
  assert.deepEqual(v.map((x) => [x.met, x.detail]), [[true, '0 OOM kills'], [false, '+10.0%; disk runs ±20%']]);
  const text = renderSweep({ figure: figure('fig7'), reps: 3, contenders: ['disk', 'ephemera'], points: [{ point: p, summary: { disk, ephemera: summarise([run('ephemera', 110)]) } }] });
  assert.match(text, /run-to-run spread \(half the range over the median\): 32 MiB: disk ±20%$/m);
});

test('verdicts: the speed-up target, the 5% rule and zero OOM kills', () => {
  const p = figure('fig7').points[2];
  assert.ok(p);
  const good = pointVerdicts(p, { disk: summarise([run('disk', 300)]), ephemera: summarise([run('ephemera', 100)]) });
  assert.deepEqual(good.map((v) => v.met), [true, true, true]);
  const slow = pointVerdicts(p, { disk: summarise([run('disk', 100)]), ephemera: summarise([run('ephemera', 106)]) });
  assert.deepEqual(slow.map((v) => [v.label, v.met]), [['no OOM kill', true], ['≤ disk +5%', false], ['≥ 2.5× disk', false]]);
  const bounded = pointVerdicts(p, { disk: summarise([run('disk', 300)]), ephemera: summarise([run('ephemera', 200)]), memcpy: summarise([run('memcpy', 190)]) });
  assert.match(bounded[2]?.detail ?? '', /^1\.50×; memcpy itself: 1\.58×$/);
  const killed = pointVerdicts(p, { disk: summarise([run('disk', 100)]), ephemera: summarise([run('ephemera', null)]) });
  assert.deepEqual(killed.map((v) => v.met), [false, false]);
});

test('the table shows times, changes, OOM kills, the paper and the targets', () => {
  const fig = figure('fig7');
  const [p32, p64] = fig.points;
  assert.ok(p32 && p64);
  const text = renderSweep({
    figure: fig,
    reps: 1,
    contenders: ['disk', 'tmpfs', 'ephemera'],
    points: [
      { point: p32, summary: { disk: summarise([run('disk', 1000)]), tmpfs: summarise([run('tmpfs', null)]), ephemera: summarise([run('ephemera', 1010)]) } },
      { point: p64, summary: { disk: summarise([run('disk', 600)]), tmpfs: summarise([run('tmpfs', null)]), ephemera: summarise([run('ephemera', 200)]) } },
    ],
  });
  assert.match(text, /\| 32 MiB +\| 1000\.0 +\| OOM \(1\/1\) +\| 1010\.0 +\| \+1\.0% \(0\.99×\) +\| — +\| 0 \/ 1 \/ 0 +\| 2 +\| ≈ disk/);
  assert.match(text, /\| 64 MiB .*−66\.7% \(3\.00×\).*−92\.67%.*≥ 1\.5× disk: met/);
  assert.match(text, /ephemera OOM kills in this sweep: 0 \(target: 0\)/);
  assert.match(text, /worst point vs disk: 32 MiB, \+1\.0%/);
  assert.match(text, /targets met: 5 of 5/);
});

test('parseMicrobench takes the JSON line and rejects incomplete ones', () => {
  const line = '{"file_size":8192,"files":2,"ops":5,"reads":2,"block":8192,"create_ns":1,"ops_ns":2,"total_ns":3,"verify_ns":4}';
  assert.equal(parseMicrobench(`noise\n${line}\n`)?.total_ns, 3);
  assert.equal(parseMicrobench(''), null);
  assert.throws(() => parseMicrobench('{"file_size":1}'), /lacks create_ns/);
});
