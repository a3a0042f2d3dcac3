// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import { Scheduler } from './scheduler.js';
import { WaitQueue, waitTimeoutError } from './wait-queue.js';

interface Inv {
  readonly id: string;
  readonly limit: number;
}

test('the queue is bounded: the item past capacity gets EPH_SCHED_QUEUE_FULL, nothing is dropped', { timeout: 5_000 }, () => {
  const q = new WaitQueue<Inv>({ capacity: 2, maxWaitMs: 1000 });
  q.enqueue({ id: 'a', limit: 1 }, 0);
  q.enqueue({ id: 'b', limit: 1 }, 0);
  assert.throws(
    () => q.enqueue({ id: 'c', limit: 1 }, 0),
    (e: unknown) => isEphemeraError(e, 'EPH_SCHED_QUEUE_FULL') && /2 invocations already wait.*holds 2/.test(e.message),
  );
  assert.equal(q.length, 2);
  assert.throws(() => new WaitQueue({ capacity: 0, maxWaitMs: 1 }), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_BAD_INPUT'));
  assert.throws(() => new WaitQueue({ capacity: 1, maxWaitMs: 0 }), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_BAD_INPUT'));
});

test('drain places waiting invocations on the scheduler when memory comes free, in arrival order', { timeout: 5_000 }, () => {
  const s = new Scheduler({ policy: 'ephemera' });
  s.report({ node: 'n', seq: 1, lim: 1000, alloc: 0, req: 0, tenants: {}, running: [] }, 0);
  const q = new WaitQueue<Inv>({ capacity: 10, maxWaitMs: 10_000 });
  const place = (i: Inv): string | null => s.schedule({ id: i.id, tenant: 't', task: { limit: i.limit, mem: i.limit } }, 0)?.node ?? null;
  assert.equal(place({ id: 'big', limit: 900 }), 'n');
  assert.equal(place({ id: 'w1', limit: 600 }), null);
  // w2 and w3 arrive behind w1 (the platform queues behind waiting ones rather than passing them).
  for (const inv of [{ id: 'w1', limit: 600 }, { id: 'w2', limit: 50 }, { id: 'w3', limit: 400 }]) q.enqueue(inv, 0);
  // w2 fits in the 100 left and, w1 being young, may pass it.
  let r = q.drain(place, 100);
  assert.deepEqual(r.placed.map((p) => [p.item.id, p.placement, p.waitedMs]), [['w2', 'n', 100]]);
  s.release('big', 200);
  r = q.drain(place, 200);
  assert.deepEqual(r.placed.map((p) => [p.item.id, p.placement, p.waitedMs]), [['w1', 'n', 200]]);
  assert.equal(q.length, 1, 'w3 (400) does not fit in the 350 left and keeps waiting');
  assert.deepEqual(r.expired, []);
});

test('an invocation that waited agingMs is not passed any more; one that waited maxWaitMs comes back expired', { timeout: 5_000 }, () => {
  let free = 100;
  const place = (i: Inv): string | null => {
    if (i.limit > free) return null;
    free -= i.limit;
    return 'n';
  };
  const q = new WaitQueue<Inv>({ capacity: 10, maxWaitMs: 1000, agingMs: 300 });
  q.enqueue({ id: 'large', limit: 500 }, 0);
  q.enqueue({ id: 's1', limit: 10 }, 0);
  assert.deepEqual(q.drain(place, 100).placed.map((p) => p.item.id), ['s1'], 'young: passed');
  q.enqueue({ id: 's2', limit: 10 }, 100);
  assert.deepEqual(q.drain(place, 300).placed, [], 'aged: s2 waits behind it');
  assert.equal(q.nextDeadline(), 1000);
  const r = q.drain(place, 1000);
  assert.deepEqual(r.expired.map((i) => i.id), ['large']);
  assert.deepEqual(r.placed.map((p) => p.item.id), ['s2']);
  assert.equal(q.length, 0);
  assert.equal(q.nextDeadline(), undefined);
  const err = waitTimeoutError(1000);
  assert.equal(err.code, 'EPH_SCHED_WAIT_TIMEOUT');
  assert.match(err.message, /within 1000 ms/);
});
