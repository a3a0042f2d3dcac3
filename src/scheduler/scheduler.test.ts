// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import { fits, freeOf, linearDecision, SCHEDULER_POLICIES, score, type Figures, type NodeView, type TaskProfile } from './algorithm.js';
import { mulberry32, randomInt } from '../core/random.js';
import { Scheduler, type NodeReport } from './scheduler.js';

const report = (node: string, seq: number, lim: number, alloc = 0, req = 0, tenants: Record<string, Figures> = {}, running: string[] = []): NodeReport => ({
  node,
  seq,
  lim,
  alloc,
  req,
  tenants,
  running,
});

test('property: every decision of the O(log n) index equals a plain linear scan, ties included, over random clusters and task streams', { timeout: 60_000 }, () => {
  for (const policy of SCHEDULER_POLICIES) {
    let totalTies = 0;
    let totalMisses = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = mulberry32(seed * 7919 + (policy === 'ephemera' ? 0 : 1));
      const s = new Scheduler({ policy, reservationTtlMs: 50 });
      const tenants = ['a', 'b', 'c'].slice(0, randomInt(rnd, 1, 3));
      const nodeCount = randomInt(rnd, 1, 40);
      const seqs = new Map<string, number>();
      const placed: string[] = [];
      let now = 0;
      // Small multiples of 10 so that equal scores and equal free memory happen often.
      const randomReport = (node: string): NodeReport => {
        const seq = (seqs.get(node) ?? 0) + 1;
        seqs.set(node, seq);
        const per: Record<string, Figures> = {};
        let alloc = 0;
        let req = 0;
        for (const t of tenants) {
          if (rnd() < 0.4) continue;
          const f = { alloc: randomInt(rnd, 0, 8) * 10, req: randomInt(rnd, 0, 8) * 10 };
          per[t] = f;
          alloc += f.alloc;
          req += f.req;
        }
        // The agent lists some of the placements as counted (those on other nodes it ignores).
        return report(node, seq, randomInt(rnd, 5, 30) * 10, alloc, req, per, placed.filter(() => rnd() < 0.5));
      };
      for (let i = 0; i < nodeCount; i++) s.report(randomReport(`node-${i}`), now);
      let decisions = 0;
      let ties = 0;
      let misses = 0;
      for (let step = 0; step < 400; step++) {
        now += randomInt(rnd, 0, 5);
        const op = rnd();
        if (op < 0.6) {
          const tenant = tenants[randomInt(rnd, 0, tenants.length - 1)] ?? 'a';
          const task: TaskProfile = { limit: randomInt(rnd, 1, 6) * 10, mem: randomInt(rnd, 0, 10) * 10 };
          s.expire(now); // schedule() expires first too: take the linear scan's view after that
          const view = s.snapshot(tenant);
          const want = view[linearDecision(policy, view, task)]?.name ?? null;
          const id = `p${step}`;
          const got = s.schedule({ id, tenant, task }, now);
          const fitting = view.filter((v) => fits(v, task));
          const key = (v: NodeView): number => (policy === 'ephemera' ? score(v, task) : freeOf(v.lim, v.node));
          const best = Math.max(...fitting.map(key));
          if (fitting.filter((v) => key(v) === best).length > 1) ties++;
          if (want === null) misses++;
          assert.equal(got?.node ?? null, want, `${policy} seed ${seed} step ${step}: tenant ${tenant} task ${JSON.stringify(task)}`);
          if (got !== null) placed.push(id);
          decisions++;
        } else if (op < 0.75 && placed.length > 0) {
          const id = placed.splice(randomInt(rnd, 0, placed.length - 1), 1)[0] ?? '';
          s.release(id, now);
        } else if (op < 0.95) {
          s.report(randomReport(`node-${randomInt(rnd, 0, nodeCount - 1)}`), now);
        } else if (rnd() < 0.5) {
          s.removeNode(`node-${randomInt(rnd, 0, nodeCount - 1)}`);
        } else {
          s.expire(now);
        }
      }
      assert.ok(decisions > 100);
      totalTies += ties;
      totalMisses += misses;
    }
    assert.ok(totalTies > 1000 && totalMisses > 100, `the streams exercise ties (${totalTies}) and full clusters (${totalMisses})`);
  }
});

test('property: the scheduler\'s figures are always the last report plus the live reservations', { timeout: 30_000 }, () => {
  const rnd = mulberry32(42);
  const s = new Scheduler({ policy: 'ephemera', reservationTtlMs: 1_000_000 });
  const model = new Map<string, { alloc: number; req: number }>();
  for (let i = 0; i < 5; i++) {
    s.report(report(`n${i}`, 1, 10_000), 0);
    model.set(`n${i}`, { alloc: 0, req: 0 });
  }
  const live: { id: string; node: string; task: TaskProfile }[] = [];
  for (let step = 0; step < 500; step++) {
    if (rnd() < 0.7 || live.length === 0) {
      const task = { limit: randomInt(rnd, 1, 50), mem: randomInt(rnd, 0, 80) };
      const p = s.schedule({ id: `r${step}`, tenant: 't', task }, step);
      if (p !== null) {
        live.push({ id: p.id, node: p.node, task });
        const m = model.get(p.node);
        assert.ok(m);
        m.alloc += task.limit;
        m.req += task.mem;
      }
    } else {
      const [r] = live.splice(randomInt(rnd, 0, live.length - 1), 1);
      assert.ok(r);
      assert.equal(s.release(r.id, step), true);
      const m = model.get(r.node);
      assert.ok(m);
      m.alloc -= r.task.limit;
      m.req -= r.task.mem;
    }
    for (const [name, m] of model) {
      const f = s.figures(name);
      assert.ok(f);
      assert.deepEqual({ ...f.node }, m);
      assert.deepEqual({ ...(f.tenants.get('t') ?? { alloc: 0, req: 0 }) }, m);
    }
  }
});

test('a burst of decisions between two reports spreads by reservation instead of piling on one stale node', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'most-free' });
  s.report(report('a', 1, 1000), 0);
  s.report(report('b', 1, 1000), 0);
  const got = [0, 1, 2, 3].map((i) => s.schedule({ id: `x${i}`, tenant: 't', task: { limit: 300, mem: 300 } }, 0)?.node);
  assert.deepEqual(got, ['a', 'b', 'a', 'b']);
  assert.equal(s.schedule({ id: 'x4', tenant: 't', task: { limit: 500, mem: 1 } }, 0), null, 'each node has 400 left');
});

test('reconcile: a report replaces the figures, keeps reservations the agent has not seen, and absorbs those it lists', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'ephemera', reservationTtlMs: 10_000 });
  s.report(report('a', 1, 1000), 0);
  assert.equal(s.schedule({ id: 'r1', tenant: 't', task: { limit: 100, mem: 150 } }, 10)?.node, 'a');
  assert.equal(s.schedule({ id: 'r2', tenant: 't', task: { limit: 200, mem: 50 } }, 20)?.node, 'a');
  // The agent saw r1 (its figures include it), not yet r2; another tenant's task also runs there.
  s.report(report('a', 2, 1000, 400, 450, { t: { alloc: 100, req: 150 }, u: { alloc: 300, req: 300 } }, ['r1']), 30);
  assert.deepEqual(s.figures('a')?.node, { alloc: 600, req: 500 });
  assert.deepEqual(s.figures('a')?.tenants.get('t'), { alloc: 300, req: 200 });
  // A stale (reordered) report changes nothing.
  assert.equal(s.report(report('a', 2, 1000, 0, 0, {}, []), 40).status, 'stale');
  assert.deepEqual(s.figures('a')?.node, { alloc: 600, req: 500 });
  // r1 finishes: the last report still counts it, so it is subtracted until a report stops listing it.
  assert.equal(s.release('r1', 50), true);
  assert.deepEqual(s.figures('a')?.node, { alloc: 500, req: 350 });
  s.report(report('a', 3, 1000, 400, 450, { t: { alloc: 100, req: 150 }, u: { alloc: 300, req: 300 } }, ['r1', 'r2']), 60);
  assert.deepEqual(s.figures('a')?.node, { alloc: 300, req: 300 }, 'r1 still listed: still subtracted; r2 now counted by the agent');
  s.report(report('a', 4, 1000, 500, 350, { t: { alloc: 200, req: 50 }, u: { alloc: 300, req: 300 } }, ['r2']), 70);
  assert.deepEqual(s.figures('a')?.node, { alloc: 500, req: 350 });
  assert.equal(s.reservationCount, 1);
  s.report(report('a', 5, 1000, 300, 300, { u: { alloc: 300, req: 300 } }, []), 80);
  assert.equal(s.reservationCount, 0, 'r2 ended without a release: forgotten once the agent stops listing it');
  assert.equal(s.release('r2', 90), false);
});

test('a reservation the agent never counts lives at most the TTL, with or without reports', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'ephemera', reservationTtlMs: 1000 });
  s.report(report('a', 1, 1000), 0);
  s.schedule({ id: 'lost', tenant: 't', task: { limit: 600, mem: 600 } }, 0);
  assert.equal(s.schedule({ id: 'next', tenant: 't', task: { limit: 600, mem: 600 } }, 500), null);
  assert.deepEqual(s.report(report('a', 2, 1000), 900).expired, []);
  assert.deepEqual(s.figures('a')?.node, { alloc: 600, req: 600 });
  assert.deepEqual(s.report(report('a', 3, 1000), 1001).expired, ['lost']);
  assert.deepEqual(s.figures('a')?.node, { alloc: 0, req: 0 });
  // Without any report: schedule() itself expires.
  s.schedule({ id: 'lost2', tenant: 't', task: { limit: 600, mem: 600 } }, 2000);
  assert.equal(s.schedule({ id: 'next2', tenant: 't', task: { limit: 600, mem: 600 } }, 3001)?.node, 'a');
  assert.deepEqual(s.expire(3001), []);
  assert.equal(s.reservationCount, 1);
});

test('a release the agent never acknowledges is bounded by the TTL too', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'ephemera', reservationTtlMs: 1000 });
  s.report(report('a', 1, 1000), 0);
  s.schedule({ id: 'r', tenant: 't', task: { limit: 400, mem: 400 } }, 0);
  s.report(report('a', 2, 1000, 400, 400, { t: { alloc: 400, req: 400 } }, ['r']), 10);
  s.release('r', 20);
  assert.deepEqual(s.figures('a')?.node, { alloc: 0, req: 0 });
  s.expire(1021);
  assert.deepEqual(s.figures('a')?.node, { alloc: 400, req: 400 }, 'back to what the agent last said');
  assert.equal(s.reservationCount, 0);
});

test('removing a node hands back its reservations; canEverFit knows the largest node', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'ephemera' });
  s.report(report('small', 1, 500), 0);
  s.report(report('big', 1, 2000), 0);
  assert.equal(s.schedule({ id: 'x', tenant: 't', task: { limit: 1500, mem: 10 } }, 0)?.node, 'big');
  assert.equal(s.canEverFit({ limit: 2000, mem: 0 }), true);
  assert.deepEqual(s.removeNode('big'), ['x']);
  assert.equal(s.canEverFit({ limit: 2000, mem: 0 }), false);
  assert.equal(s.canEverFit({ limit: 500, mem: 0 }), true);
  assert.equal(s.nodeCount, 1);
  assert.equal(s.reservationCount, 0);
  assert.equal(s.peek('t', { limit: 400, mem: 0 }), 'small');
});

test('bad input is refused with EPH_SCHED_BAD_INPUT naming the field and the value', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'ephemera' });
  const bad = (fn: () => unknown, re: RegExp): void => assert.throws(fn, (e: unknown) => isEphemeraError(e, 'EPH_SCHED_BAD_INPUT') && re.test(e.message));
  bad(() => s.report(report('a', 1, -5), 0), /N_lim.*-5/);
  bad(() => s.report(report('a', 1, 1.5), 0), /N_lim.*1\.5/);
  bad(() => s.report(report('', 1, 100), 0), /non-empty node name/);
  bad(() => s.report(report('a', 1, 100, 0, 0, { t: { alloc: -1, req: 0 } }), 0), /tenants\["t"\]\.alloc.*-1/);
  bad(() => s.report({ ...report('a', 1, 100), tenants: null as unknown as Record<string, Figures> }, 0), /tenants for node a must be an object.*null/);
  bad(() => s.report({ ...report('a', 1, 100), tenants: { t: 5 as unknown as Figures } }, 0), /tenants\["t"\] for node a must be \{alloc, req\}, got 5/);
  bad(() => s.report({ ...report('a', 1, 100), running: 'x' as unknown as string[] }, 0), /running for node a must be a list/);
  s.report(report('a', 1, 100), 0);
  bad(() => s.schedule({ id: 'x', tenant: 't', task: { limit: 0, mem: 1 } }, 0), /T_lim.*above 0/);
  bad(() => s.schedule({ id: 'x', tenant: 't', task: { limit: 10, mem: Number.NaN } }, 0), /T_mem.*null/);
  s.schedule({ id: 'x', tenant: 't', task: { limit: 10, mem: 1 } }, 0);
  bad(() => s.schedule({ id: 'x', tenant: 't', task: { limit: 10, mem: 1 } }, 0), /"x" is already reserved/);
  assert.throws(() => new Scheduler({ policy: 'ephemera', reservationTtlMs: 0 }), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_BAD_INPUT'));
});
