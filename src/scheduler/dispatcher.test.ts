// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import { Dispatcher } from './dispatcher.js';
import { Scheduler } from './scheduler.js';

const MiB = 1024 * 1024;

function dispatcher(): Dispatcher {
  const s = new Scheduler({ policy: 'ephemera', reservationTtlMs: 10_000 });
  s.report({ node: 'n1', seq: 1, lim: 1024 * MiB, alloc: 0, req: 0, tenants: {}, running: [] }, 0);
  return new Dispatcher(s, { capacity: 2, maxWaitMs: 1000, agingMs: 400 });
}

const req = (id: string, limitMiB: number): { id: string; tenant: string; task: { limit: number; mem: number } } => ({ id, tenant: 't', task: { limit: limitMiB * MiB, mem: limitMiB * MiB } });

test('submit places at once, queues when full, refuses what can never fit and what overflows the queue', { timeout: 5_000 }, () => {
  const d = dispatcher();
  assert.deepEqual(d.submit(req('a', 800), 0), { status: 'placed', placement: { id: 'a', node: 'n1' } });
  assert.deepEqual(d.submit(req('b', 300), 0), { status: 'queued', position: 1 });
  assert.deepEqual(d.submit(req('c', 300), 0), { status: 'queued', position: 2 });
  assert.throws(() => d.submit(req('d', 300), 0), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_QUEUE_FULL'));
  assert.throws(() => d.submit(req('huge', 2048), 0), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_NEVER_FITS') && /no node offers that much \(1 nodes reporting\)/.test(e.message));
  const r = d.release('a', 100);
  assert.deepEqual(r.placed.map((p) => [p.item.id, p.placement.node]), [['b', 'n1'], ['c', 'n1']]);
  assert.equal(d.queue.length, 0);
});

test('a new request is not placed ahead of one that has waited agingMs; waits that outlive maxWaitMs come back expired', { timeout: 5_000 }, () => {
  const d = dispatcher();
  d.submit(req('a', 900), 0);
  d.submit(req('big', 500), 0);
  assert.equal(d.submit(req('small', 100), 100).status, 'placed', 'the waiting one is young: the small one may pass');
  d.release('small', 150);
  assert.equal(d.submit(req('small2', 100), 450).status, 'queued', 'the waiting one has aged: the small one queues behind it');
  const t = d.tick(1000);
  assert.deepEqual(t.expired.map((x) => x.id), ['big']);
  assert.deepEqual(t.placed.map((p) => p.item.id), ['small2']);
});

test('an agent report that frees memory drains the queue', { timeout: 5_000 }, () => {
  const d = dispatcher();
  d.submit(req('a', 900), 0);
  d.submit(req('b', 500), 0);
  // First the agent counts a (no change), then a has finished and the node is empty.
  const r = d.report({ node: 'n1', seq: 2, lim: 1024 * MiB, alloc: 900 * MiB, req: 900 * MiB, tenants: { t: { alloc: 900 * MiB, req: 900 * MiB } }, running: ['a'] }, 50);
  assert.equal(r.outcome.status, 'applied');
  assert.deepEqual(r.placed, []);
  const r2 = d.report({ node: 'n1', seq: 3, lim: 1024 * MiB, alloc: 0, req: 0, tenants: {}, running: [] }, 60);
  assert.deepEqual(r2.placed.map((p) => p.item.id), ['b']);
});
