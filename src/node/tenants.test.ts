// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EphemeraError } from '../core/errors.js';
import type { LiveContainer, ManagerEvent, ManagerSnapshot, Move } from '../manager/types.js';
import { inProcessManagers, managerDefaults } from './managers.js';
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

test('a tenant is idle only when none of its events or snapshots is queued or running', async () => {
  let finish: () => void = () => undefined;
  const held: TenantManagerPort = {
    apply: (e) => (e.kind === 'invocation-end' ? new Promise<Move[]>((res) => { finish = () => { res([]); }; }) : Promise.resolve([])),
    recover: () => Promise.resolve([]),
    snapshot: () => Promise.resolve({} as ManagerSnapshot),
    close: () => Promise.resolve(),
  };
  const host = new TenantHost(() => Promise.resolve(held), () => noMoves, () => Promise.resolve({ live: [], running: [] }), () => undefined);
  assert.equal(host.idle('t'), true, 'a tenant never seen has nothing queued');
  await host.event('t', { kind: 'register', container: { id: 'c', tenant: 't', fn: 'f', initialQuota: 1 } });
  assert.equal(host.idle('t'), true);
  const ending = host.event('t', { kind: 'invocation-end', id: 'c', used: { ownPeakBytes: 1, filePeakBytes: 0 } });
  const snap = host.snapshot('t');
  assert.equal(host.idle('t'), false, 'an event in progress');
  assert.equal(host.idle('u'), true, 'other tenants are independent');
  await new Promise((res) => setImmediate(res));
  finish();
  await ending;
  await snap;
  await new Promise((res) => setImmediate(res));
  assert.equal(host.idle('t'), true, 'everything done');
  const failing = host.event('t', { kind: 'forget', id: 'nope' });
  held.apply = () => Promise.reject(new EphemeraError('EPH_MANAGER_EVENT', 'no such container'));
  await assert.rejects(failing);
  await new Promise((res) => setImmediate(res));
  assert.equal(host.idle('t'), true, 'a refused event is done too');
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

test("an event whose batch is empty answers its container's standing, the same a snapshot then shows; one with moves answers none", { timeout: 5_000 }, async () => {
  const MiB = 1024 * 1024;
  const limits = new Map([
    ['cpu', 512 * MiB],
    ['io', 64 * MiB],
  ]);
  const moves: MoveContext = {
    party: (id) => ({
      id,
      tenant: 'acme',
      limiter: {
        kind: 'cgroup-v1',
        target: id,
        getLimit: () => Promise.resolve(limits.get(id) ?? null),
        setLimit: (bytes) => {
          limits.set(id, bytes ?? 0);
          return Promise.resolve();
        },
        getUsage: () => Promise.resolve(0),
        getPeak: () => Promise.resolve(null),
        oomKills: () => Promise.resolve(0),
      },
      daemon: { shrink: () => Promise.resolve(), grow: () => Promise.resolve() },
    }),
    hold: () => Promise.resolve(),
    release: () => undefined,
  };
  const host = new TenantHost(inProcessManagers({ ...managerDefaults('tenant'), lendWhileIdle: false }), () => moves, () => Promise.resolve({ live: [], running: [] }), () => undefined);
  const standingIn = async (id: string): Promise<unknown> => {
    const snap = await host.snapshot('acme');
    const c = snap.containers.find((x) => x.id === id);
    return c === undefined ? undefined : { pool: c.pool, lends: c.lentTo.length > 0, borrows: c.borrowedFrom.length > 0, lendWhileIdle: snap.lendWhileIdle };
  };
  await host.event('acme', { kind: 'register', container: { id: 'cpu', tenant: 'acme', fn: 'cpu', initialQuota: 512 * MiB, profile: { ownPeakBytes: 4 * MiB, filePeakBytes: 0 } } });
  await host.event('acme', { kind: 'register', container: { id: 'io', tenant: 'acme', fn: 'io', initialQuota: 64 * MiB, profile: { ownPeakBytes: 8 * MiB, filePeakBytes: 120 * MiB } } });
  const warm = await host.event('acme', { kind: 'invocation-start', id: 'cpu' });
  assert.equal(warm.done.length, 0);
  assert.deepEqual(warm.standing, await standingIn('cpu'));
  const ended = await host.event('acme', { kind: 'invocation-end', id: 'cpu', used: { ownPeakBytes: 4 * MiB, filePeakBytes: 0 } });
  assert.deepEqual(ended.standing, { pool: 'harvest', lends: false, borrows: false, lendWhileIdle: false });
  assert.deepEqual(ended.standing, await standingIn('cpu'));
  await host.event('acme', { kind: 'invocation-start', id: 'cpu' });
  const lent = await host.event('acme', { kind: 'invocation-start', id: 'io' });
  assert.ok(lent.done.length > 0, `the running cpu container lends to io: ${JSON.stringify(lent.refused)}`);
  assert.equal(lent.standing, undefined, 'after moves the agent must ask for a snapshot');
  await host.close();
});

/** The real core in process, with every call to it written down (`apply A`, `pair A+B`, `snapshot`). */
async function counted(calls: string[]): Promise<TenantManagerPort> {
  const port = await inProcessManagers(managerDefaults('tenant'))('t');
  const name = (e: ManagerEvent): string => `${e.kind}${'id' in e ? ` ${e.id}` : ''}`;
  return {
    ...port,
    apply: (e) => { calls.push(`apply ${name(e)}`); return port.apply(e); },
    applyWithStanding: (e, at) => { calls.push(`apply ${name(e)}`); return (port.applyWithStanding ?? (() => Promise.reject(new Error('none'))))(e, at); },
    applyPair: (a, at, b) => { calls.push(`pair ${name(a)} + ${name(b)}`); return (port.applyPair ?? (() => Promise.reject(new Error('none'))))(a, at, b); },
    snapshot: () => { calls.push('snapshot'); return port.snapshot(); },
  };
}

/** A host over {@link counted}, with the calls list and the port. */
async function countedHost(): Promise<{ calls: string[]; port: TenantManagerPort; host: TenantHost }> {
  const calls: string[] = [];
  const port = await counted(calls);
  const host = new TenantHost(() => Promise.resolve(port), () => noMoves, () => Promise.resolve({ live: [], running: [] }), () => undefined);
  return { calls, port, host };
}

const MiB = 1 << 20;
const reg = (id: string, quota: number): ManagerEvent => ({ kind: 'register', container: { id, tenant: 't', fn: `f-${id}`, initialQuota: quota, profile: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 } } });
const start = (id: string): Extract<ManagerEvent, { kind: 'invocation-start' }> => ({ kind: 'invocation-start', id, estimate: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 } });
const end = (id: string, filePeakBytes = 0): ManagerEvent => ({ kind: 'invocation-end', id, used: { ownPeakBytes: 8 * MiB, filePeakBytes } });

test('a held-back start goes with its own end in one round trip; the Manager sees start then end', async () => {
  const { calls, port, host } = await countedHost();
  assert.equal(host.quiet('t'), false, 'nothing is known of a tenant never seen');
  await host.event('t', reg('a', 256 * MiB));
  assert.equal(host.quiet('t'), true, 'the answer said quiet: nobody needs memory');
  calls.length = 0;
  const started = host.deferStart('t', start('a'));
  assert.equal(host.idle('t'), false, 'a held-back start counts as queued');
  assert.equal(host.quiet('t'), false, 'one held back at a time');
  assert.deepEqual(calls, [], 'the start is not sent yet');
  const ended = await host.event('t', end('a'));
  assert.deepEqual((await started).done, []);
  assert.deepEqual(calls, ['pair invocation-start a + invocation-end a']);
  assert.equal(ended.standing?.pool, 'harvest', 'the end answers its standing as when sent alone');
  const snap = await port.snapshot();
  assert.equal(snap.containers.find((c) => c.id === 'a')?.running, false);
  assert.equal(host.quiet('t'), true);
});

test("a held-back start goes first, alone, when any other request of the tenant comes before its end", async () => {
  const { calls, host } = await countedHost();
  await host.event('t', reg('a', 256 * MiB));
  await host.event('t', reg('b', 256 * MiB));
  calls.length = 0;
  const started = host.deferStart('t', start('a'));
  // Another container's start: the Manager must see a running before it decides anything for b.
  await host.event('t', start('b'));
  await started;
  const snap = await host.snapshot('t');
  assert.equal(snap.containers.find((c) => c.id === 'a')?.running, true, 'a runs in the model from its own start on');
  await host.event('t', end('a'));
  assert.deepEqual(calls, ['apply invocation-start a', 'apply invocation-start b', 'snapshot', 'apply invocation-end a']);
  // b runs within its limit: the tenant is still quiet, so a's next start is held; flush() sends it.
  const again = host.deferStart('t', start('a'));
  assert.equal(calls.length, 4, 'held back');
  host.flush('t');
  await again;
  assert.equal(calls.at(-1), 'apply invocation-start a');
});

test('a start is not held back while the tenant is not quiet: a running container wants more than its limit', async () => {
  const { calls, host } = await countedHost();
  await host.event('t', reg('io', 64 * MiB));
  await host.event('t', reg('cpu', 512 * MiB));
  // io runs wanting 100 MiB of files against its 64 MiB: it needs memory; a start of cpu would lend it.
  await host.event('t', { kind: 'invocation-start', id: 'io', estimate: { ownPeakBytes: 8 * MiB, filePeakBytes: 100 * MiB } });
  assert.equal(host.quiet('t'), false);
  calls.length = 0;
  const r = await host.deferStart('t', start('cpu'));
  assert.equal(calls[0], 'apply invocation-start cpu', 'sent at once, not held');
  // The Manager lent cpu's memory to io at cpu's start (this test's context refuses to carry it out).
  assert.ok(r.refused.some((x) => x.move.from === 'cpu' && x.move.to === 'io'), `cpu lends to io at its start: ${JSON.stringify(r)}`);
});
