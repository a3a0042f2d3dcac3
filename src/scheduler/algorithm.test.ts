// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import { algorithm1, fits, mostFree, parseSchedulerPolicy, score, type NodeView, type TaskProfile } from './algorithm.js';
import { simulateTable4, simulateTable4Reading } from './table4.js';

const node = (ordinal: number, lim: number, alloc: number, req: number, tAlloc = alloc, tReq = req): NodeView => ({
  name: `n${ordinal}`,
  ordinal,
  lim,
  node: { alloc, req },
  tenant: { alloc: tAlloc, req: tReq },
});

const T: TaskProfile = { limit: 100, mem: 160 }; // short by 60: wants a node whose tenant gap is 60

test('the filter is N_alloc + T_lim ≤ N_lim, node-wide (the printed one keeps the nodes that cannot take it, and the exact fit)', { timeout: 5_000 }, () => {
  const cases: readonly [string, NodeView, boolean][] = [
    ['room to spare', node(0, 1000, 800, 0), true],
    ['exactly full after', node(0, 1000, 900, 0), true],
    ['one byte short', node(0, 1000, 901, 0), false],
    ['full', node(0, 1000, 1000, 0), false],
    ['tenant figures do not count for the filter', node(0, 1000, 950, 0, 0, 0), false],
  ];
  for (const [name, v, want] of cases) {
    assert.equal(fits(v, T), want, name);
    assert.equal(algorithm1([v], T) === 0, want, name);
    const exact = v.node.alloc + T.limit === v.lim;
    assert.equal(algorithm1([v], T, { filter: 'printed', score: 'absolute' }) === 0, !want || exact, `${name} (printed filter)`);
  }
});

test('the score is −|N_req + T_mem − N_alloc − T_lim| with the tenant figures', { timeout: 5_000 }, () => {
  const cases: readonly [string, NodeView, number][] = [
    ['gap equals the shortfall', node(0, 4000, 0, 0, 300, 240), -0],
    ['gap 100 more than the shortfall', node(0, 4000, 0, 0, 400, 240), -100],
    ['no gap', node(0, 4000, 0, 0, 0, 0), -60],
    ['tenant over-committed (gap −40)', node(0, 4000, 0, 0, 200, 240), -100],
    ['node-wide figures do not count for the score', node(0, 4000, 3000, 0, 60, 0), -0],
  ];
  for (const [name, v, want] of cases) assert.equal(score(v, T), want, name);
});

test('Algorithm 1 picks the best score among fitting nodes; the printed score would pick the most wasteful', { timeout: 5_000 }, () => {
  const nodes = [node(0, 4000, 0, 0, 0, 0), node(1, 4000, 0, 0, 65, 0), node(2, 4000, 0, 0, 1000, 0), node(3, 150, 100, 0, 60, 0)];
  assert.equal(algorithm1(nodes, T), 1, 'gap 65 is nearest the shortfall 60 among the nodes where 100 fits (node 3 has gap 60 but no room)');
  assert.equal(algorithm1(nodes, T, { filter: 'intended', score: 'printed' }), 2, 'printed score: the largest gap');
});

test('ties: equal scores go to the lowest ordinal, whether above or below the shortfall', { timeout: 5_000 }, () => {
  const above = node(5, 4000, 0, 0, 70, 0);
  const below = node(2, 4000, 0, 0, 50, 0);
  const twin = node(7, 4000, 0, 0, 50, 0);
  assert.equal(algorithm1([above, below, twin], T), 1);
  assert.equal(algorithm1([twin, above], T), 1, 'ordinal 5 beats ordinal 7, whatever the list order');
});

test('no candidates: null (-1) when the task fits nowhere, from both policies', { timeout: 5_000 }, () => {
  const full = [node(0, 1000, 950, 0), node(1, 99, 0, 0)];
  assert.equal(algorithm1(full, T), -1);
  assert.equal(mostFree(full, T), -1);
  assert.equal(algorithm1([], T), -1);
  assert.equal(mostFree([], T), -1);
});

test('the baseline picks the most free memory node-wide, lowest ordinal on ties, ignoring the score', { timeout: 5_000 }, () => {
  const nodes = [node(0, 1000, 500, 0, 60, 0), node(1, 2000, 1200, 0), node(2, 1800, 1000, 0), node(3, 5000, 4950, 0)];
  assert.equal(mostFree(nodes, T), 1, 'free 800 at ordinals 1 and 2: the first');
});

test('Table 4: the intended reading reproduces the paper rows 778/750 and 262/450 MB, the baseline 1032/600 and 8/600', { timeout: 5_000 }, () => {
  const ours = simulateTable4('ephemera');
  assert.deepEqual(
    ours.map((r) => [r.node, r.reqMiB, r.allocMiB, r.usedMiB, r.tasks.join(',')]),
    [
      ['node1', 778, 750, 750, 'cpu,io,io,io'],
      ['node2', 262, 450, 262, 'io,cpu'],
    ],
  );
  const base = simulateTable4('most-free');
  // The paper numbers the baseline's nodes the other way round; the rows are the same.
  assert.deepEqual(
    base.map((r) => [r.node, r.reqMiB, r.allocMiB, r.usedMiB, r.tasks.join(',')]),
    [
      ['node1', 8, 600, 8, 'cpu,cpu'],
      ['node2', 1032, 600, 600, 'io,io,io,io'],
    ],
  );
  const waste = (rows: typeof ours): number => rows.reduce((s, r) => s + r.allocMiB - r.usedMiB, 0);
  assert.equal(waste(ours), 188, 'the paper says 190: Docker would not give a CPU task less than 6 MB');
  assert.equal(waste(base), 592);
});

test('Table 4: the linear scan agrees; the printed score does not reproduce the rows, the printed filter places nothing', { timeout: 5_000 }, () => {
  const intended = simulateTable4Reading({ filter: 'intended', score: 'absolute' });
  assert.equal(intended.unplaced, 0);
  assert.deepEqual(intended.rows.map((r) => [r.reqMiB, r.allocMiB]), [[778, 750], [262, 450]]);
  const printedScore = simulateTable4Reading({ filter: 'intended', score: 'printed' });
  assert.deepEqual(printedScore.rows.map((r) => [r.reqMiB, r.allocMiB]), [[524, 900], [516, 300]]);
  const printed = simulateTable4Reading({ filter: 'printed', score: 'printed' });
  assert.equal(printed.unplaced, 6);
});

test('policies are chosen by name; an unknown name is a clear error', { timeout: 5_000 }, () => {
  assert.equal(parseSchedulerPolicy('ephemera'), 'ephemera');
  assert.equal(parseSchedulerPolicy('most-free'), 'most-free');
  assert.throws(
    () => parseSchedulerPolicy('random'),
    (e: unknown) => isEphemeraError(e, 'EPH_SCHED_UNKNOWN_POLICY') && /"random".*ephemera or most-free/.test(e.message),
  );
});
