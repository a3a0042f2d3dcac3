// test-tier: unit
/**
 * The pure core, by tables that show each formula and by small scenarios that spell out the moves
 * of §3.3 (both arrival orders, the flag, the safeguard, the sharing scopes, undo and recovery).
 * The randomized check over long event sequences is in core-random.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { classify, createManager, donorFloor, mayShare } from './core.js';
import type { ContainerInfo, Manager, ManagerConfig, Move, PoolEntry, SharingScope, Usage } from './types.js';
import { isEphemeraError } from '../core/errors.js';

const MiB = 1024 * 1024;
const T = { timeout: 5_000 };

const BASE: ManagerConfig = {
  tenant: 't1',
  sharing: 'tenant',
  harvestThresholdBytes: 16 * MiB,
  donorMarginBytes: 8 * MiB,
  engineMinimumBytes: 6 * MiB,
  lendWhileIdle: false,
};

function usage(ownMiB: number, filesMiB: number): Usage {
  return { ownPeakBytes: ownMiB * MiB, filePeakBytes: filesMiB * MiB };
}

function info(id: string, quotaMiB: number, profile?: Usage, extra: Partial<ContainerInfo> = {}): ContainerInfo {
  return { id, tenant: 't1', fn: id, initialQuota: quotaMiB * MiB, ...(profile === undefined ? {} : { profile }), ...extra };
}

/** Moves as short strings, e.g. "cpu>io 488M lend". */
function brief(moves: readonly Move[]): string[] {
  return moves.map((m) => `${m.from ?? '-'}>${m.to ?? '-'} ${String(m.bytes / MiB)}M ${m.reason}`);
}

/** A Manager with these containers registered, then these started in this order (their moves unchecked). */
function given(config: ManagerConfig, containers: readonly ContainerInfo[], running: readonly string[] = []): Manager {
  const m = createManager(config);
  for (const container of containers) m.apply({ kind: 'register', container }, 0);
  for (const id of running) m.apply({ kind: 'invocation-start', id }, 1);
  return m;
}

function entry(m: Manager, id: string): PoolEntry {
  const found = m.snapshot().containers.find((c) => c.id === id);
  assert.ok(found, `${id} is in the snapshot`);
  return found;
}

function limits(m: Manager): Record<string, number> {
  return Object.fromEntries(m.snapshot().containers.map((c) => [c.id, c.adjustedQuota / MiB]));
}

test('classification: allocation above T_lim, harvest below T_lim - threshold, else self-sufficient', T, () => {
  // T_mem = own + files; T_lim = 256 MiB, threshold 16 MiB.
  const rows: [own: number, files: number, pool: string][] = [
    [4, 0, 'harvest'],
    [200, 39, 'harvest'], // 239 < 240
    [200, 40, 'self-sufficient'], // 240 = 256 - 16: not below
    [256, 0, 'self-sufficient'], // = T_lim
    [200, 57, 'allocation'], // 257 > 256
    [8, 64, 'harvest'],
    [8, 300, 'allocation'],
  ];
  for (const [own, files, pool] of rows) {
    assert.equal(classify((own + files) * MiB, 256 * MiB, 16 * MiB), pool, `own ${String(own)} files ${String(files)}`);
  }
});

test('donor floor = min(T_lim, max(T_mem + margin, engine minimum))', T, () => {
  const rows: [tMem: number, tLim: number, margin: number, min: number, floor: number][] = [
    [4, 512, 8, 6, 12],
    [0, 512, 0, 6, 6],
    [1, 512, 2, 6, 6],
    [500, 512, 32, 6, 512],
    [100, 512, 0, 6, 100],
  ];
  for (const [tMem, tLim, margin, min, floor] of rows) {
    assert.equal(donorFloor(tMem, tLim, margin, min), floor, JSON.stringify({ tMem, tLim, margin, min }));
  }
});

test('sharing scopes (Fig. 15): who may lend to whom', T, () => {
  const a = info('a', 64, undefined, { fn: 'f', workflow: 'w' });
  const sameFn = info('b', 64, undefined, { fn: 'f' });
  const sameWf = info('c', 64, undefined, { fn: 'g', workflow: 'w' });
  const other = info('d', 64, undefined, { fn: 'g' });
  const rows: [SharingScope, ContainerInfo, boolean][] = [
    ['none', sameFn, false],
    ['function', sameFn, true],
    ['function', sameWf, false],
    ['workflow', sameWf, true],
    ['workflow', sameFn, false],
    ['tenant', other, true],
  ];
  for (const [scope, b, yes] of rows) assert.equal(mayShare(scope, a, b), yes, `${scope} ${b.id}`);
  // No workflow on either side: no workflow sharing.
  assert.equal(mayShare('workflow', sameFn, other), false);
});

test('bad configs are refused with EPH_MANAGER_CONFIG naming the field', T, () => {
  const bad: Partial<ManagerConfig>[] = [
    { sharing: 'cluster' as SharingScope },
    { tenant: '' },
    { harvestThresholdBytes: -1 },
    { donorMarginBytes: 1.5 },
    { engineMinimumBytes: Number.NaN },
  ];
  for (const b of bad) {
    const field = Object.keys(b)[0] ?? '';
    assert.throws(() => createManager({ ...BASE, ...b }), (e) => isEphemeraError(e, 'EPH_MANAGER_CONFIG') && e.message.includes(field), field);
  }
});

test('paper §3.3.2 example: A short runs first, B arrives and lends, B finishes first and reclaims', T, () => {
  const m = createManager(BASE);
  assert.deepEqual(m.apply({ kind: 'register', container: info('A', 64, usage(8, 120)) }, 0), []);
  assert.deepEqual(m.apply({ kind: 'register', container: info('B', 512, usage(4, 0)) }, 0), []);
  assert.deepEqual(m.apply({ kind: 'invocation-start', id: 'A' }, 1), [], 'no running donor yet: A starts with its own quota');
  // B's floor is 4 + 8 = 12 MiB: it could give 500, A needs 128 - 64 = 64.
  assert.deepEqual(brief(m.apply({ kind: 'invocation-start', id: 'B' }, 2)), ['B>A 64M lend']);
  const snap = m.snapshot();
  const a = entry(m, 'A');
  const b = entry(m, 'B');
  assert.deepEqual(a.borrowedFrom, [{ id: 'B', bytes: 64 * MiB }]);
  assert.deepEqual(b.lentTo, [{ id: 'A', bytes: 64 * MiB }]);
  assert.equal(a.pool, 'allocation');
  assert.equal(b.pool, 'harvest');
  assert.equal(snap.totals.lentBytes, 64 * MiB);
  assert.equal(snap.totals.limitBytes, snap.totals.initialQuotaBytes);
  // B finishes first: it takes its memory back from the running A (A's daemon shrinks first).
  assert.deepEqual(brief(m.apply({ kind: 'invocation-end', id: 'B', used: usage(4, 0) }, 3)), ['A>B 64M reclaim']);
  assert.deepEqual(limits(m), { A: 64, B: 512 });
  assert.deepEqual(m.apply({ kind: 'invocation-end', id: 'A', used: usage(8, 120) }, 4), []);
});

test('the other arrival order: a running donor lends to a recipient that starts; the recipient returns at its end', T, () => {
  const m = given(BASE, [
    info('cpu', 512, usage(4, 0)),
    info('io', 64, usage(8, 120)),
  ]);
  assert.deepEqual(m.apply({ kind: 'invocation-start', id: 'cpu' }, 1), []);
  assert.deepEqual(brief(m.apply({ kind: 'invocation-start', id: 'io' }, 2)), ['cpu>io 64M lend']);
  assert.deepEqual(brief(m.apply({ kind: 'invocation-end', id: 'io', used: usage(8, 120) }, 3)), ['io>cpu 64M return']);
  assert.deepEqual(limits(m), { cpu: 512, io: 64 });
});

test('priority: take from the donor with the most spare first; serve the recipient that needs the least first', T, () => {
  const m = given({ ...BASE, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('d-small', 100, usage(70, 0)), // spare 30
    info('d-big', 100, usage(50, 0)), // spare 50
    info('r-20', 100, usage(10, 110)), // needs 20
    info('r-70', 100, usage(10, 160)), // needs 70
  ], ['r-70', 'r-20', 'd-small']);
  // d-small alone (spare 30): r-20 first (needs least), r-70 gets the remaining 10.
  // Then d-big (spare 50) arrives: r-70 still misses 60 and takes all 50.
  const moves = brief(m.apply({ kind: 'invocation-start', id: 'd-big' }, 2));
  assert.deepEqual(moves, ['d-big>r-70 50M lend']);
  assert.deepEqual(limits(m), { 'd-big': 50, 'd-small': 70, 'r-20': 120, 'r-70': 160 });

  // Both donors present at once: the recipient takes from the one with most spare first.
  const m2 = given({ ...BASE, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('d-small', 100, usage(70, 0)),
    info('d-big', 100, usage(50, 0)),
    info('r', 100, usage(10, 160)),
  ], ['d-small', 'd-big']);
  assert.deepEqual(brief(m2.apply({ kind: 'invocation-start', id: 'r' }, 2)), ['d-big>r 50M lend', 'd-small>r 20M lend']);
});

test('a donor never goes below its floor, nor below the engine minimum', T, () => {
  const m = given({ ...BASE, donorMarginBytes: 4 * MiB, engineMinimumBytes: 6 * MiB }, [
    info('tiny', 64, usage(1, 0)), // floor max(5, 6) = 6
    info('io', 64, usage(8, 1000)),
  ], ['tiny']);
  assert.deepEqual(brief(m.apply({ kind: 'invocation-start', id: 'io' }, 2)), ['tiny>io 58M lend']);
  const tiny = entry(m, 'tiny');
  assert.equal(tiny.floor, 6 * MiB);
  assert.equal(tiny.adjustedQuota, 6 * MiB);
});

test('invocation end re-classifies from what was used', T, () => {
  const m = given(BASE, [
    info('x', 128, usage(4, 0)),
  ], ['x']);
  m.apply({ kind: 'invocation-end', id: 'x', used: usage(100, 100) }, 2);
  const x = entry(m, 'x');
  assert.equal(x.pool, 'allocation');
  assert.equal(x.peakMemory, 100 * MiB);
  assert.equal(x.maxFileSize, 100 * MiB);
  // An estimate at start overrides the profile for that invocation.
  m.apply({ kind: 'invocation-start', id: 'x', estimate: usage(2, 2) }, 3);
  assert.equal(entry(m, 'x').pool, 'harvest');
});

test('unprofiled containers are self-sufficient: they neither lend nor borrow', T, () => {
  const m = given(BASE, [
    info('u', 512),
    info('io', 64, usage(8, 120)),
  ], ['u']);
  assert.deepEqual(m.apply({ kind: 'invocation-start', id: 'io' }, 2), []);
  assert.equal(entry(m, 'u').pool, 'self-sufficient');
});

test('lendWhileIdle: an idle warm donor keeps lending, and takes back what it needs before its next invocation', T, () => {
  const m = given({ ...BASE, lendWhileIdle: true, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('io', 64, usage(8, 120)),
  ], ['io']);
  // The donor lends as soon as it is registered, idle.
  assert.deepEqual(brief(m.apply({ kind: 'register', container: info('cpu', 100, usage(50, 0)) }, 2)), ['cpu>io 50M lend']);
  // Its invocation starts with a larger estimate (80): it takes back 30 from the running io first.
  assert.deepEqual(brief(m.apply({ kind: 'invocation-start', id: 'cpu', estimate: usage(80, 0) }, 3)), ['io>cpu 30M reclaim']);
  // It ends having used 20: it stays a donor, idle, and lends 60 more (io still misses 64 - 20 = 44).
  assert.deepEqual(brief(m.apply({ kind: 'invocation-end', id: 'cpu', used: usage(20, 0) }, 4)), ['cpu>io 44M lend']);
  assert.deepEqual(limits(m), { cpu: 36, io: 128 });
  // Without the flag, the same end reclaims everything.
  const p = given({ ...BASE, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('io', 64, usage(8, 120)),
  ]);
  assert.deepEqual(p.apply({ kind: 'register', container: info('cpu', 100, usage(50, 0)) }, 0), [], 'idle donors do not lend without the flag');
  p.apply({ kind: 'invocation-start', id: 'io' }, 1);
  assert.deepEqual(brief(p.apply({ kind: 'invocation-start', id: 'cpu' }, 2)), ['cpu>io 50M lend']);
  assert.deepEqual(brief(p.apply({ kind: 'invocation-end', id: 'cpu', used: usage(20, 0) }, 3)), ['io>cpu 50M reclaim']);
});

test('safeguard: a short donor takes back all it lent, then is granted more; it lends to nobody until its end', T, () => {
  const m = given({ ...BASE, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('d1', 100, usage(20, 0)),
    info('d2', 100, usage(40, 0)),
    info('r', 100, usage(10, 140)),
  ], ['d1', 'r']);
  assert.deepEqual(limits(m), { d1: 50, d2: 100, r: 150 });
  m.apply({ kind: 'invocation-start', id: 'd2' }, 2);
  // d1 runs short by 60 at limit 50: it takes back its 50 (safeguard), then borrows 10 from d2
  // (which also tops r back up with the 50 it lost).
  const moves = brief(m.apply({ kind: 'shortfall', id: 'd1', neededBytes: 60 * MiB }, 3));
  assert.deepEqual(moves, ['r>d1 50M safeguard', 'd2>d1 10M lend', 'd2>r 50M lend']);
  const d1 = entry(m, 'd1');
  assert.equal(d1.reclaimable, false);
  assert.equal(d1.adjustedQuota, 110 * MiB);
  // A recipient that starts now cannot take from the non-reclaimable d1.
  m.apply({ kind: 'register', container: info('r2', 10, usage(1, 100)) }, 4);
  assert.deepEqual(brief(m.apply({ kind: 'invocation-end', id: 'r', used: usage(10, 140) }, 4)), ['r>d2 50M return']);
  assert.deepEqual(brief(m.apply({ kind: 'invocation-start', id: 'r2' }, 5)), ['d2>r2 50M lend']);
  // Its end makes it reclaimable again; it returns what it borrowed, which d2 lends on to r2.
  assert.deepEqual(brief(m.apply({ kind: 'invocation-end', id: 'd1', used: usage(20, 0) }, 6)), ['d1>d2 10M return', 'd2>r2 10M lend']);
  assert.equal(entry(m, 'd1').reclaimable, true);
});

test('safeguard: a short recipient or self-sufficient container is granted more from a donor', T, () => {
  const m = given({ ...BASE, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('d', 100, usage(20, 0)),
    info('s', 100, usage(90, 0)),
  ], ['d', 's']);
  assert.deepEqual(brief(m.apply({ kind: 'shortfall', id: 's', neededBytes: 30 * MiB }, 2)), ['d>s 30M lend']);
  assert.equal(entry(m, 's').reclaimable, false);
});

test('sharing scopes decide who lends (Fig. 15 scenarios)', T, () => {
  const rows: [SharingScope, number][] = [
    ['none', 0],
    ['function', 0],
    ['workflow', 64], // cpu and io in one workflow, running together
    ['tenant', 64],
  ];
  for (const [sharing, lent] of rows) {
    const m = createManager({ ...BASE, sharing });
    m.apply({ kind: 'register', container: info('cpu', 512, usage(4, 0), { fn: 'fact', workflow: 'wf' }) }, 0);
    m.apply({ kind: 'register', container: info('io', 64, usage(8, 120), { fn: 'rw', workflow: 'wf' }) }, 0);
    m.apply({ kind: 'invocation-start', id: 'cpu' }, 1);
    m.apply({ kind: 'invocation-start', id: 'io' }, 1);
    assert.equal(m.snapshot().totals.lentBytes, lent * MiB, sharing);
  }
  // Two instances of one function share under `function`.
  const f = given({ ...BASE, sharing: 'function' }, [
    info('io-1', 512, usage(4, 0), { fn: 'rw' }),
    info('io-2', 64, usage(8, 120), { fn: 'rw' }),
  ], ['io-1']);
  assert.deepEqual(brief(f.apply({ kind: 'invocation-start', id: 'io-2' }, 1)), ['io-1>io-2 64M lend']);
});

test('forget: a lender takes back what it lent, a borrower returns it, before it leaves', T, () => {
  const m = given({ ...BASE, lendWhileIdle: true, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('d', 100, usage(50, 0)),
    info('d2', 100, usage(80, 0)),
    info('r', 100, usage(10, 140)),
  ]);
  assert.deepEqual(brief(m.apply({ kind: 'invocation-start', id: 'r' }, 1)), ['d>r 50M lend']);
  // d leaves: r gives its 50 back, and d2 (spare 20) covers what it can.
  assert.deepEqual(brief(m.apply({ kind: 'forget', id: 'd' }, 2)), ['r>d 50M reclaim', 'd2>r 20M lend']);
  assert.deepEqual(brief(m.apply({ kind: 'forget', id: 'r' }, 3)), ['r>d2 20M return']);
  assert.deepEqual(limits(m), { d2: 100 });
});

test('move-failed undoes the last batch, last move first, and nothing else', T, () => {
  const m = given({ ...BASE, donorMarginBytes: 0, engineMinimumBytes: 0 }, [
    info('a', 100, usage(50, 0)),
    info('b', 100, usage(70, 0)),
    info('r', 100, usage(10, 170)),
  ], ['a', 'b']);
  const batch = m.apply({ kind: 'invocation-start', id: 'r' }, 2);
  assert.deepEqual(brief(batch), ['a>r 50M lend', 'b>r 30M lend']);
  const [first, second] = batch;
  assert.ok(first !== undefined && second !== undefined);
  assert.throws(() => m.apply({ kind: 'move-failed', move: first, reason: 'x' }, 3), (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT'));
  assert.deepEqual(m.apply({ kind: 'move-failed', move: second, reason: 'daemon did not ack' }, 3), []);
  assert.deepEqual(limits(m), { a: 50, b: 100, r: 150 });
  assert.throws(() => m.apply({ kind: 'move-failed', move: second, reason: 'twice' }, 3), (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT'));
  m.apply({ kind: 'move-failed', move: first, reason: 'skipped' }, 3);
  assert.deepEqual(limits(m), { a: 100, b: 100, r: 100 });
  assert.equal(m.snapshot().totals.lentBytes, 0);
});

test('events that do not fit the state are refused with EPH_MANAGER_EVENT', T, () => {
  const m = given(BASE, [
    info('a', 64),
  ]);
  const bad: [string, () => unknown][] = [
    ['another tenant', () => m.apply({ kind: 'register', container: { ...info('x', 64), tenant: 't2' } }, 0)],
    ['repeated id', () => m.apply({ kind: 'register', container: info('a', 64) }, 0)],
    ['zero quota', () => m.apply({ kind: 'register', container: info('z', 0) }, 0)],
    ['negative usage', () => m.apply({ kind: 'register', container: info('n', 64, { ownPeakBytes: -1, filePeakBytes: 0 }) }, 0)],
    ['unknown id', () => m.apply({ kind: 'invocation-start', id: 'nope' }, 0)],
    ['end while idle', () => m.apply({ kind: 'invocation-end', id: 'a', used: usage(1, 1) }, 0)],
    ['zero shortfall', () => m.apply({ kind: 'shortfall', id: 'a', neededBytes: 0 }, 0)],
  ];
  for (const [what, fn] of bad) assert.throws(fn, (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT'), what);
  m.apply({ kind: 'invocation-start', id: 'a' }, 1);
  assert.throws(() => m.apply({ kind: 'invocation-start', id: 'a' }, 1), /already running/);
  assert.equal(m.snapshot().totals.containers, 1, 'a refused event changes nothing');
});

test('recover: every container back to its initial quota, lowering before raising', T, () => {
  type Row = [what: string, live: [id: string, quota: number, limit: number][], moves: string[]];
  const rows: Row[] = [
    ['nothing lent', [['a', 64, 64], ['b', 128, 128]], []],
    ['a loan in place', [['d', 512, 448], ['r', 64, 128]], ['r>d 64M restore']],
    ['killed between lowering the giver and raising the receiver', [['d', 512, 448], ['r', 64, 64]], ['->d 64M restore']],
    [
      'two loans, one half done',
      [['d1', 100, 50], ['d2', 100, 70], ['r', 100, 150]],
      ['r>d1 50M restore', '->d2 30M restore'],
    ],
    ['a limit raised behind the Manager', [['a', 64, 80], ['b', 64, 64]], ['a>- 16M restore']],
  ];
  for (const [what, live, expected] of rows) {
    const m = createManager(BASE);
    const moves = m.recover(live.map(([id, quota, limit]) => ({ info: info(id, quota), limitBytes: limit * MiB })));
    assert.deepEqual(brief(moves), expected, what);
    const snap = m.snapshot();
    assert.ok(snap.containers.every((c) => c.adjustedQuota === c.initialQuota && !c.running && c.lentTo.length === 0), what);
  }
  const m = createManager(BASE);
  assert.throws(() => m.recover([{ info: { ...info('x', 64), tenant: 'other' }, limitBytes: 64 * MiB }]), (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT'));
  assert.throws(
    () => m.recover([{ info: info('x', 64), limitBytes: 64 * MiB }, { info: info('x', 64), limitBytes: 64 * MiB }]),
    (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT'),
  );
});

test("standing(id) is the container's pool and loans as the snapshot shows them, at every step", T, () => {
  const m = createManager(BASE);
  const check = (what: string): void => {
    const snap = m.snapshot();
    for (const c of snap.containers) {
      assert.deepEqual(m.standing(c.id), { pool: c.pool, lends: c.lentTo.length > 0, borrows: c.borrowedFrom.length > 0, lendWhileIdle: snap.lendWhileIdle }, `${what}: ${c.id}`);
    }
  };
  m.apply({ kind: 'register', container: info('A', 64, usage(8, 120)) }, 0);
  m.apply({ kind: 'register', container: info('B', 512, usage(4, 0)) }, 0);
  check('registered');
  m.apply({ kind: 'invocation-start', id: 'A' }, 1);
  m.apply({ kind: 'invocation-start', id: 'B' }, 2);
  check('B lends to A');
  assert.equal(m.standing('B')?.lends, true);
  assert.equal(m.standing('A')?.borrows, true);
  m.apply({ kind: 'invocation-end', id: 'B', used: usage(4, 0) }, 3);
  check('B reclaimed');
  m.apply({ kind: 'invocation-end', id: 'A', used: usage(70, 0) }, 4);
  check('A re-classified by its end');
  assert.equal(m.standing('nobody'), undefined);
  m.apply({ kind: 'forget', id: 'A' }, 5);
  assert.equal(m.standing('A'), undefined);
});
