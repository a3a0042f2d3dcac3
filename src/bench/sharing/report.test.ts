// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fig16aTable, stat, FIG16A_NOTE } from './fig16a.js';
import { cells, cellsPlotSpec, fig14Verdicts, formatCells, samplesCsv, vsNone, vsOverlay, wrapLines, type Sample } from './report.js';

const MiB = 1024 * 1024;

function sample(arm: string, task: 'cpu' | 'io', run: number, ms: number, extra: Partial<Sample> = {}): Sample {
  return { scenario: 'pair', arm, container: task, task, run, ms, agentMs: ms + 5, initialBytes: (task === 'io' ? 64 : 512) * MiB, grantedBytes: (task === 'io' ? 64 : 512) * MiB, evictions: 0, ownPeakBytes: 10 * MiB, filePeakBytes: 0, oom: false, ...extra };
}

const FIG14: Sample[] = [];
for (let run = 1; run <= 5; run++) {
  FIG14.push(sample('overlay', 'io', run, 2000 + run), sample('overlay', 'cpu', run, 1000 + 10 * run));
  FIG14.push(sample('none', 'io', run, 1000 + run), sample('none', 'cpu', run, 1000 + 10 * run));
  FIG14.push(sample('tenant', 'io', run, 400 + run, { grantedBytes: 100 * MiB }), sample('tenant', 'cpu', run, 1005 + 10 * run));
}

test('cells: one per scenario, arm and task, median and spread of the action times, the loan as a median limit', () => {
  const cs = cells(FIG14);
  assert.equal(cs.length, 6);
  const io = cs.find((c) => c.arm === 'tenant' && c.task === 'io');
  const cpu = cs.find((c) => c.arm === 'none' && c.task === 'cpu');
  assert.ok(io !== undefined && cpu !== undefined);
  assert.deepEqual([io.time.median, io.time.n, io.grantedMiB], [403, 5, 100]);
  assert.equal(cpu.time.median, 1030);
  assert.ok(Math.abs(cpu.time.spread - 40 / 1030) < 1e-9);
  assert.equal(vsOverlay(cs, io), '−79.88%');
  assert.equal(vsNone(cs, io), '2.49×');
});

test('fig14Verdicts: the I/O ratio, the factorial within its spread, and OOM kills', () => {
  const v = fig14Verdicts(cells(FIG14), 0);
  assert.deepEqual(
    v.map((x) => x.met),
    [true, true, true],
  );
  assert.match(v[0]?.value ?? '', /^2\.49×$/);
  // The factorial medians 1030 and 1035 are 0.49% apart, within each arm's spread (±20/1030 = ±1.9%);
  // 100 ms slower is not.
  const slower = FIG14.map((s) => (s.arm === 'tenant' && s.task === 'cpu' ? { ...s, ms: s.ms + 95 } : s));
  assert.equal(fig14Verdicts(cells(slower), 0)[1]?.met, false);
  assert.equal(fig14Verdicts(cells(FIG14), 2)[2]?.met, false);
});

test('an OOM-killed run is counted, not timed', () => {
  const s = [sample('none', 'io', 1, Number.NaN, { oom: true }), sample('none', 'io', 2, 900)];
  const [c] = cells(s);
  assert.ok(c !== undefined);
  assert.deepEqual([c.ooms, c.time.median], [1, 900]);
});

test('the table, the CSV and the plot carry every cell', () => {
  const cs = cells(FIG14);
  const table = formatCells('Fig. 14', cs, fig14Verdicts(cs, 1), ['a note']);
  assert.match(table, /tenant +I\/O \(microbench\) +5 +403\.0/);
  assert.match(table, /MISSED OOM kills in every run: 0: 1/);
  assert.match(table, /a note$/);
  const csv = samplesCsv(FIG14).trim().split('\n');
  assert.equal(csv.length, FIG14.length + 1);
  assert.equal(csv[0], 'scenario,arm,container,task,run,ms,agentMs,initialBytes,grantedBytes,evictions,ownPeakBytes,filePeakBytes,oom');
  const spec = cellsPlotSpec('Fig. 14', cs, 'setup') as { data: { values: unknown[] } };
  assert.equal(spec.data.values.length, 6);
});

test('wrapLines: at spaces, no line past the width unless one word is', () => {
  assert.deepEqual(wrapLines('aa bb cc dddddd e', 5), ['aa bb', 'cc', 'dddddd', 'e']);
  assert.deepEqual(wrapLines('', 5), []);
});

test('fig16a: percentiles, and the table says that no action runs', () => {
  assert.deepEqual(stat([4, 1, 3, 2]), { n: 4, p50: 3, p90: 4, mean: 2.5 });
  assert.equal(stat([]).n, 0);
  const row = { rate: 200, achieved: 199, decision: stat([1]), release: stat([900]), move: stat([400]), end: stat([800]) };
  const t = fig16aTable([row]);
  assert.match(t, /^ {2}200 {5}199/m);
  assert.ok(t.includes(FIG16A_NOTE));
});
