import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EphemeraError } from '../core/errors.js';
import type { LiveContainer, ManagerEvent, ManagerSnapshot, Move } from '../manager/types.js';
import type { MoveContext } from './moves.js';
import { TenantHost, type TenantManagerPort } from './tenants.js';

/** A Manager that answers a fixed batch and records every event it gets. */
function scripted(batch: Move[], seen: ManagerEvent[]): TenantManagerPort {
  return {
    apply: (e) => {
      seen.push(e);
      return Promise.resolve(e.kind === 'invocation-start' ? batch : []);
    },
    recover: () => Promise.resolve([]),
    snapshot: () => Promise.resolve({} as ManagerSnapshot),
    close: () => Promise.resolve(),
  };
}

const noMoves: MoveContext = { party: () => undefined, hold: () => Promise.resolve(), release: () => undefined };

test('a refused move and the rest of its batch come back to the Manager as move-failed, last first', async () => {
  const seen: ManagerEvent[] = [];
  const batch: Move[] = [1, 2, 3].map((seq) => ({ seq, from: `a${seq}`, to: `b${seq}`, bytes: 1, reason: 'lend' as const }));
  const host = new TenantHost(() => Promise.resolve(scripted(batch, seen)), () => noMoves, () => Promise.resolve({ live: [], running: [] }), () => undefined);
  const r = await host.event('acme', { kind: 'invocation-start', id: 'x' });
  assert.equal(r.done.length, 0);
  assert.equal(r.refused.length, 1);
  assert.deepEqual(
    seen.flatMap((e) => (e.kind === 'move-failed' ? [e.move.seq] : [])),
    [3, 2, 1],
  );
});

test("one tenant's events run one at a time, in order", async () => {
  const order: string[] = [];
  const slow: TenantManagerPort = {
    apply: async (e) => {
      order.push(`start ${e.kind}`);
      await new Promise((res) => setTimeout(res, e.kind === 'register' ? 30 : 1));
      order.push(`end ${e.kind}`);
      return [];
    },
    recover: () => Promise.resolve([]),
    snapshot: () => Promise.resolve({} as ManagerSnapshot),
    close: () => Promise.resolve(),
  };
  const host = new TenantHost(() => Promise.resolve(slow), () => noMoves, () => Promise.resolve({ live: [], running: [] }), () => undefined);
  await Promise.all([
    host.event('t', { kind: 'register', container: { id: 'c', tenant: 't', fn: 'f', initialQuota: 1 } }),
    host.event('t', { kind: 'invocation-start', id: 'c' }),
  ]);
  assert.deepEqual(order, ['start register', 'end register', 'start invocation-start', 'end invocation-start']);
});

test('a lost Manager is replaced, rebuilt from the live containers, and its restoring moves carried out', async () => {
  const live: LiveContainer[] = [{ info: { id: 'c', tenant: 't', fn: 'f', initialQuota: 64 }, limitBytes: 32 }];
  const seen: string[] = [];
  let started = 0;
  const factory = (): Promise<TenantManagerPort> => {
    const n = ++started;
    return Promise.resolve({
      apply: (e) => {
        seen.push(`${String(n)} ${e.kind}${e.kind === 'invocation-start' ? ` ${e.id}` : ''}`);
        return n === 1 ? Promise.reject(new EphemeraError('EPH_MANAGER_UNAVAILABLE', 'gone')) : Promise.resolve([]);
      },
      recover: (l) => {
        seen.push(`${String(n)} recover ${String(l.length)}`);
        return Promise.resolve([{ seq: 1, from: null, to: 'c', bytes: 32, reason: 'restore' as const }]);
      },
      snapshot: () => Promise.resolve({} as ManagerSnapshot),
      close: () => Promise.resolve(),
    });
  };
  const raised: string[] = [];
  const ctx: MoveContext = { party: () => undefined, hold: () => Promise.resolve(), release: (id) => raised.push(id) };
  const host = new TenantHost(factory, () => ctx, () => Promise.resolve({ live, running: ['c', 'other'] }), () => undefined);
  const r = await host.event('t', { kind: 'invocation-start', id: 'c' });
  // The invocation in flight elsewhere ("other") starts again in the new model; "c" gets its own event.
  assert.deepEqual(seen, ['1 invocation-start c', '2 recover 1', '2 move-failed', '2 invocation-start other', '2 invocation-start c']);
  // The restore named a container this fake context does not hold: refused, nothing applied.
  assert.equal(r.refused.length, 1);
  assert.equal(started, 2);
});
