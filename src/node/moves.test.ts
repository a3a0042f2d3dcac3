/**
 * The move executor against fakes at its two seams (the cgroup limit and the daemon), which keep
 * one journal: the order of steps, the tenant check before anything is touched, and the limits put
 * back when a later step fails. The real thing is in moves-docker.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EphemeraError } from '../core/errors.js';
import type { MemoryLimiter } from '../limiter/limiter.js';
import type { Move } from '../manager/types.js';
import { carryOut, type MoveContext, type MoveParty } from './moves.js';

const MiB = 1 << 20;

interface Fake extends MoveParty {
  limit: number;
  failRaise?: boolean;
}

function party(id: string, tenant: string, limit: number, journal: string[]): Fake {
  const p: Fake = {
    id,
    tenant,
    limit,
    limiter: undefined as unknown as MemoryLimiter,
    daemon: {
      shrink: (b) => {
        journal.push(`shrink ${id} ${b / MiB}`);
        return Promise.resolve();
      },
      grow: (b) => {
        journal.push(`grow ${id} ${b / MiB}`);
        return Promise.resolve();
      },
    },
  };
  const limiter: MemoryLimiter = {
    kind: 'cgroup-v1',
    target: id,
    getLimit: () => Promise.resolve(p.limit),
    setLimit: (b) => {
      if (p.failRaise === true && b !== null && b > p.limit) return Promise.reject(new EphemeraError('EPH_CGROUP_IO', 'write refused'));
      journal.push(`limit ${id} ${(b ?? 0) / MiB}`);
      p.limit = b ?? 0;
      return Promise.resolve();
    },
    getUsage: () => Promise.resolve(0),
    getPeak: () => Promise.resolve(null),
    oomKills: () => Promise.resolve(0),
  };
  return Object.assign(p, { limiter });
}

function context(parties: Fake[], journal: string[]): MoveContext {
  return {
    party: (id) => parties.find((p) => p.id === id),
    hold: (id) => {
      journal.push(`hold ${id}`);
      return Promise.resolve();
    },
    release: (id, bytes) => journal.push(`release ${id} ${bytes / MiB}`),
  };
}

const lend = (from: string, to: string, mib: number): Move => ({ seq: 1, from, to, bytes: mib * MiB, reason: 'lend' });

test('a move shrinks and lowers the giver before it raises the receiver and tells its daemon', async () => {
  const j: string[] = [];
  const d = party('d', 'acme', 256 * MiB, j);
  const r = party('r', 'acme', 64 * MiB, j);
  const out = await carryOut('acme', lend('d', 'r', 50), context([d, r], j));
  // (The giver's closing grow is sent here but not waited for: the receiver's raise goes out with it.)
  assert.deepEqual(j, ['hold d', 'hold r', 'shrink d 202.78125', 'limit d 206', 'grow d 206', 'limit r 114', 'grow r 114', 'release d 206', 'release r 114']);
  assert.deepEqual(out.limits, { d: 206 * MiB, r: 114 * MiB });
});

test('a move that names another tenant is refused before anything is touched', async () => {
  const j: string[] = [];
  const parties = [party('d', 'acme', 256 * MiB, j), party('x', 'zeta', 64 * MiB, j)];
  await assert.rejects(carryOut('acme', lend('d', 'x', 16), context(parties, j)), { code: 'EPH_NODE_CROSS_TENANT' });
  await assert.rejects(carryOut('acme', lend('x', 'd', 16), context(parties, j)), /belongs to tenant zeta, not to acme/);
  await assert.rejects(carryOut('acme', lend('d', 'ghost', 16), context(parties, j)), { code: 'EPH_NODE_MOVE_FAILED' });
  await assert.rejects(carryOut('acme', lend('d', 'd', 16), context(parties, j)), { code: 'EPH_NODE_MOVE_FAILED' });
  assert.deepEqual(j, []);
});

test('when the receiver cannot be raised the giver gets its bytes back, in the safe way', async () => {
  const j: string[] = [];
  const d = party('d', 'acme', 256 * MiB, j);
  const r = party('r', 'acme', 64 * MiB, j);
  r.failRaise = true;
  await assert.rejects(carryOut('acme', lend('d', 'r', 50), context([d, r], j)), { code: 'EPH_NODE_MOVE_FAILED' });
  assert.equal(d.limit, 256 * MiB);
  assert.equal(r.limit, 64 * MiB);
  assert.deepEqual(j.slice(-4), ['limit d 256', 'grow d 256', 'release d 256', 'release r 64']);
});

test('a giver never goes below the engine minimum; restore moves touch one side', async () => {
  const j: string[] = [];
  const d = party('d', 'acme', 10 * MiB, j);
  const r = party('r', 'acme', 64 * MiB, j);
  await assert.rejects(carryOut('acme', lend('d', 'r', 8), context([d, r], j)), /engine's minimum/);
  assert.equal(d.limit, 10 * MiB);
  j.length = 0;
  await carryOut('acme', { seq: 2, from: null, to: 'd', bytes: 6 * MiB, reason: 'restore' }, context([d, r], j));
  assert.deepEqual(j, ['hold d', 'limit d 16', 'grow d 16', 'release d 16']);
});
