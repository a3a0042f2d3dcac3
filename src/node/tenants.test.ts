import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { ManagerEvent, ManagerSnapshot, Move } from '../manager/types.js';
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
  const host = new TenantHost(() => Promise.resolve(scripted(batch, seen)), () => noMoves, () => undefined);
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
  const host = new TenantHost(() => Promise.resolve(slow), () => noMoves, () => undefined);
  await Promise.all([
    host.event('t', { kind: 'register', container: { id: 'c', tenant: 't', fn: 'f', initialQuota: 1 } }),
    host.event('t', { kind: 'invocation-start', id: 'c' }),
  ]);
  assert.deepEqual(order, ['start register', 'end register', 'start invocation-start', 'end invocation-start']);
});
