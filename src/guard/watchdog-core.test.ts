// test-tier: unit
/** The watchdog's decisions, sample by sample (no cgroup, no clock). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { INITIAL_STATE, MAX_GRACES, decide, graceBytes, type GuardSample, type WatchdogAction, type WatchdogConfig, type WatchdogState } from './watchdog-core.js';

const MiB = 1024 * 1024;
const LIMIT = 128 * MiB;
const V1: WatchdogConfig = { stallMs: 1000, grace: true };
const V2: WatchdogConfig = { stallMs: 1000, grace: false };

const calm: GuardSample = { armed: true, stalled: false, usage: 100 * MiB, limit: LIMIT };
const stalled: GuardSample = { armed: true, stalled: true, usage: LIMIT, limit: LIMIT };

/** Feed samples at the given times; return every action that was not 'none'. */
function run(cfg: WatchdogConfig, steps: readonly [number, GuardSample][], start: WatchdogState = INITIAL_STATE): { actions: [number, WatchdogAction][]; state: WatchdogState } {
  let state = start;
  const actions: [number, WatchdogAction][] = [];
  for (const [t, s] of steps) {
    const r = decide(state, s, t, cfg);
    state = r.state;
    if (r.action.kind !== 'none') actions.push([t, r.action]);
  }
  return { actions, state };
}

test('graceBytes: limit/16 within 16..64 MiB, whole pages', () => {
  assert.equal(graceBytes(128 * MiB), 16 * MiB);
  assert.equal(graceBytes(512 * MiB), 32 * MiB);
  assert.equal(graceBytes(4096 * MiB), 64 * MiB);
  assert.equal(graceBytes(300_000_001) % 4096, 0);
});

test('a stall shorter than the bound is the guard at work: nothing happens', () => {
  const { actions, state } = run(V1, [[0, stalled], [500, stalled], [999, stalled], [1000, calm], [1500, stalled], [2400, stalled]]);
  assert.deepEqual(actions, []);
  assert.deepEqual(state, { phase: 'watching', stallSince: 1500 });
});

test('a stall without the guard armed is the kernel OOM killer at work: not ours', () => {
  const unguarded = { ...stalled, armed: false };
  assert.deepEqual(run(V1, [[0, unguarded], [5000, unguarded]]).actions, []);
});

test('v1: a long stall gets a grace; when it is over and usage fits, the limit is put back', () => {
  const granted = LIMIT + 16 * MiB;
  const { actions, state } = run(V1, [
    [0, stalled],
    [1000, stalled],
    [1050, { ...calm, usage: LIMIT + 4 * MiB, limit: granted }], // the daemon runs again
    [1100, { ...calm, usage: 90 * MiB, limit: granted }], // and has evicted
  ]);
  assert.deepEqual(actions, [
    [1000, { kind: 'grace', limit: granted, stalledMs: 1000 }],
    [1100, { kind: 'restore', limit: LIMIT }],
  ]);
  assert.deepEqual(state, INITIAL_STATE);
});

test('v1: a stall that outlasts MAX_GRACES graces lifts the guard; the limit is put back after the kill', () => {
  assert.equal(MAX_GRACES, 4);
  const g = 16 * MiB;
  const at = (n: number): GuardSample => ({ ...stalled, usage: LIMIT + n * g, limit: LIMIT + n * g });
  const { actions } = run(V1, [
    [0, stalled],
    [1000, stalled], // grace 1
    [1100, at(1)],
    [2100, at(1)], // grace 2
    [2200, at(2)],
    [3200, at(2)], // grace 3
    [3300, at(3)],
    [4300, at(3)], // grace 4
    [4400, at(4)],
    [5400, at(4)], // lift
    [5450, { ...at(4), armed: false }], // the kernel kills
    [5500, { armed: false, stalled: false, usage: 20 * MiB, limit: LIMIT + 4 * g }],
  ]);
  assert.deepEqual(actions, [
    [1000, { kind: 'grace', limit: LIMIT + g, stalledMs: 1000 }],
    [2100, { kind: 'grace', limit: LIMIT + 2 * g, stalledMs: 1000 }],
    [3200, { kind: 'grace', limit: LIMIT + 3 * g, stalledMs: 1000 }],
    [4300, { kind: 'grace', limit: LIMIT + 4 * g, stalledMs: 1000 }],
    [5400, { kind: 'lift', stalledMs: 1000 }],
    [5500, { kind: 'restore', limit: LIMIT }],
  ]);
});

test('v1: during a grace, usage above the original limit keeps the grace (no EBUSY write)', () => {
  const granted = LIMIT + 16 * MiB;
  const { actions, state } = run(V1, [[0, stalled], [1000, stalled], [1100, { ...calm, usage: LIMIT + MiB, limit: granted }]]);
  assert.equal(actions.length, 1);
  assert.equal(state.phase, 'grace');
});

test('a limit changed by someone else during a grace wins', () => {
  const { actions, state } = run(V1, [[0, stalled], [1000, stalled], [1100, { ...calm, usage: 10 * MiB, limit: 256 * MiB }]]);
  assert.deepEqual(actions.map(([, a]) => a.kind), ['grace']);
  assert.deepEqual(state, INITIAL_STATE);
});

test('v2 (no freeze, no grace) and v1 without a limit: a long stall lifts the guard at once', () => {
  assert.deepEqual(run(V2, [[0, stalled], [1000, stalled]]).actions, [[1000, { kind: 'lift', stalledMs: 1000 }]]);
  const unlimited = { ...stalled, limit: null };
  assert.deepEqual(run(V1, [[0, unlimited], [1200, unlimited]]).actions, [[1200, { kind: 'lift', stalledMs: 1200 }]]);
});

test('after a lift the watchdog watches afresh: a new stall counts from its own start', () => {
  const { actions } = run(V2, [[0, stalled], [1000, stalled], [1100, calm], [1200, stalled], [2100, stalled], [2200, stalled]]);
  assert.deepEqual(actions, [
    [1000, { kind: 'lift', stalledMs: 1000 }],
    [2200, { kind: 'lift', stalledMs: 1000 }],
  ]);
});
