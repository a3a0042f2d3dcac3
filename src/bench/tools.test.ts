// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import { fmtSpread, parseElapsed, renderToolsTable, roundOrder, scaledSize, summariseStartup, summariseTool, TOOL_WORKLOADS, toolsCsv, type ToolsReport } from './tools.js';

test('parseElapsed takes the last line and insists on "elapsed_us N"', () => {
  assert.equal(parseElapsed('noise\nelapsed_us 1234\n', 'x'), 1234);
  for (const bad of ['', 'elapsed_us', 'elapsed_us -3', 'elapsed_us 1.5', 'elapsed_us 12\nmore']) {
    assert.throws(() => parseElapsed(bad, 'sort on tmpfs'), (err: unknown) => isEphemeraError(err, 'EPH_BENCH_FAILED') && /sort on tmpfs/.test(err.message));
  }
});

test('sizes scale in percent and never drop below the minimum', () => {
  const git = TOOL_WORKLOADS.find((w) => w.key === 'git');
  assert.ok(git !== undefined);
  assert.equal(scaledSize(git, 100), 500);
  assert.equal(scaledSize(git, 10), 50);
  assert.equal(scaledSize(git, 1), 10);
  assert.equal(git.label(50), 'git add + commit of 50 files');
  assert.deepEqual(TOOL_WORKLOADS.map((w) => w.key), ['sort', 'tar', 'sqlite-rollback', 'sqlite-wal', 'git', 'gcc', 'tempfile', 'zip']);
});

test('roundOrder rotates each round and reverses every other cycle: each contender leads equally often', () => {
  const c = ['ephemera', 'tmpfs', 'disk'];
  assert.deepEqual(roundOrder(c, 0), ['ephemera', 'tmpfs', 'disk']);
  assert.deepEqual(roundOrder(c, 1), ['tmpfs', 'disk', 'ephemera']);
  assert.deepEqual(roundOrder(c, 3), ['disk', 'tmpfs', 'ephemera']);
  const firsts = new Map<string, number>();
  const lasts = new Map<string, number>();
  for (let r = 0; r < 6; r++) {
    const o = roundOrder(c, r);
    firsts.set(o[0] ?? '', (firsts.get(o[0] ?? '') ?? 0) + 1);
    lasts.set(o[2] ?? '', (lasts.get(o[2] ?? '') ?? 0) + 1);
  }
  assert.deepEqual([...firsts.values()], [2, 2, 2]);
  assert.deepEqual([...lasts.values()], [2, 2, 2]);
});

test('summariseTool: per-round ratios ephemera ÷ contender, their median and spread; a missing contender is n/a', () => {
  const s = summariseTool({ ephemera: [300, 200, 100], tmpfs: [100, 100, 100], disk: [600, 400, 50] });
  assert.deepEqual(s.us, { ephemera: 200, tmpfs: 100, disk: 400 });
  assert.deepEqual(s.vsTmpfs, [1, 2, 3]);
  assert.deepEqual(s.vsDisk, [0.5, 0.5, 2]);
  assert.equal(s.rounds, 3);
  const noTmpfs = summariseTool({ ephemera: [1, 2], tmpfs: [], disk: [2, 2] });
  assert.equal(noTmpfs.vsTmpfs, undefined);
  assert.equal(noTmpfs.us.tmpfs, undefined);
  assert.equal(fmtSpread(noTmpfs.vsTmpfs), 'n/a');
  assert.equal(fmtSpread([0.9, 1.43, 1.6]), '1.43× (0.90–1.60)');
});

test('summariseStartup: per-round differences in ms', () => {
  const s = summariseStartup([120, 130, 125], [2, 3, 4]);
  assert.equal(s.ephemeraMs, 125);
  assert.equal(s.trueMs, 3);
  assert.equal(s.pairs, 3);
  assert.deepEqual(s.overMs, [118, 121, 127]);
});

function report(): ToolsReport {
  return {
    rows: [
      { key: 'sort', label: 'sort -S 2M -T spilling 20 MB', n: 20, summary: summariseTool({ ephemera: [900, 1000, 1100], tmpfs: [1000, 1000, 1000], disk: [2000, 2000, 2000] }), filesInMemory: 3 },
      { key: 'git', label: 'git add + commit of 500 files', n: 500, summary: summariseTool({ ephemera: [5000, 6000, 7000], tmpfs: [1000, 1000, 1000], disk: [] }), filesInMemory: undefined },
    ],
    startup: summariseStartup([120, 130, 125], [2, 3, 4]),
    rounds: 3,
    skipped: ['disk: test'],
  };
}

test('the table: ms per contender, ratios with their spread, the target verdict and the start-up row', () => {
  const t = renderToolsTable(report());
  const row = (label: string): string[] => (t.split('\n').find((l) => l.startsWith(`| ${label} `)) ?? '').split('|').slice(1, -1).map((c) => c.trim());
  assert.deepEqual(row('sort -S 2M -T spilling 20 MB'), ['sort -S 2M -T spilling 20 MB', '1.0', '1.0', '2.0', '1.00× (0.90–1.10)', '0.50× (0.45–0.55)', '3', '≤1.0× tmpfs', 'yes']);
  assert.deepEqual(row('git add + commit of 500 files'), ['git add + commit of 500 files', '6.0', '1.0', 'n/a', '6.00× (5.00–7.00)', 'n/a', 'n/a', '≤1.0× tmpfs', 'NO']);
  assert.deepEqual(row('ephemera run -- true'), ['ephemera run -- true', '125.0', '3.0', '121.0 (118.0–127.0)', '≤10 ms over', 'NO']);
  assert.match(t, /skipped: disk: test/);
});

test("the start-up row through Node's CLI, timed in the same rounds, is shown beside the launcher's", () => {
  const r = { ...report(), startup: summariseStartup([9, 10, 11], [2, 3, 4], [120, 130, 125]) };
  assert.deepEqual(r.startup.nodeCli, { ms: 125, overMs: [118, 121, 127] });
  const t = renderToolsTable(r);
  const row = (label: string): string[] => (t.split('\n').find((l) => l.startsWith(`| ${label} `)) ?? '').split('|').slice(1, -1).map((c) => c.trim());
  assert.deepEqual(row('ephemera run -- true'), ['ephemera run -- true', '10.0', '3.0', '7.0 (7.0–7.0)', '≤10 ms over', 'yes']);
  assert.deepEqual(row("the same through Node's CLI"), ["the same through Node's CLI", '125.0', '3.0', '121.0 (118.0–127.0)', 'comparison', '']);
  const lines = toolsCsv(r).trim().split('\n');
  assert.equal(lines.at(-2), 'startup,1,node-cli-run-true-over-true,121000,,,');
  assert.equal(lines.at(-1), 'startup,1,ephemera-run-true-over-true,7000,,,');
  assert.equal(summariseStartup([1], [1]).nodeCli, undefined);
});

test('the CSV: a line per workload and contender, and the start-up difference in µs', () => {
  const lines = toolsCsv(report()).trim().split('\n');
  assert.equal(lines[0], 'workload,n,contender,median_us,ephemera_div_median,ephemera_div_lowest,ephemera_div_highest');
  assert.ok(lines.includes('sort,20,tmpfs,1000,1.0000,0.9000,1.1000'));
  assert.ok(lines.includes('sort,20,ephemera,1000,1.0000,1.0000,1.0000'));
  assert.ok(!lines.some((l) => l.startsWith('git,500,disk')), 'a contender without samples has no line');
  assert.equal(lines.at(-1), 'startup,1,ephemera-run-true-over-true,121000,,,');
});
