// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import Fastify from 'fastify';
import { pino } from 'pino';

import type { ClusterEvent } from '../dashboard/source.js';
import type { NodeEvent, NodeEventsReply } from '../node/api.js';
import type { NodeAgent, Placement } from './agent.js';
import { AgentEventFeed, clusterEvent } from './event-feed.js';
import { STATUSES, type ActivationRecord } from './model.js';
import type { Tenant } from './store.js';
import { ControllerViews, StoreAuthorizer, activationSummary, observeSelections } from './views.js';

const tenant = (name: string, admin = false): Tenant => ({ name, uuid: `${name}-uuid`, key: `${name}-key`, admin, created: 0 });

test('keys: the operator key is admin, a tenant key its tenant, anything else nobody', { timeout: 5000 }, async () => {
  const keys = [tenant('admin', true), tenant('alpha')];
  const auth = new StoreAuthorizer({ authenticate: (uuid, key) => keys.find((t) => t.uuid === uuid && t.key === key) });
  assert.deepEqual(await auth.principalFor('admin-uuid:admin-key'), { role: 'admin' });
  assert.deepEqual(await auth.principalFor('alpha-uuid:alpha-key'), { role: 'tenant', tenant: 'alpha' });
  assert.equal(await auth.principalFor('alpha-uuid:wrong'), undefined);
  assert.equal(await auth.principalFor('no-colon'), undefined);
  assert.equal(await auth.principalFor(':alpha-key'), undefined);
});

test("an activation record as the views show it: qualified action, status, duration, the ephemera annotation", { timeout: 5000 }, () => {
  const rec = {
    activationId: 'a1', namespace: 'alpha', name: 'io', subject: 's', version: '0.0.1', publish: false, start: 5, end: 905, duration: 900, logs: [],
    annotations: [{ key: 'kind', value: 'python:3' }, { key: 'ephemera', value: { pool: 'allocation', fast_reads: 3 } }],
    response: { status: STATUSES[1], statusCode: 1, success: false, result: {} },
  } as unknown as ActivationRecord;
  assert.deepEqual(activationSummary(rec), {
    activationId: 'a1', tenant: 'alpha', action: 'alpha/io', status: 'application error', start: 5, durationMs: 900, ephemera: { pool: 'allocation', fast_reads: 3 },
  });
  assert.equal(activationSummary({ ...rec, annotations: [] }).ephemera, undefined);
});

test('every selection is told: placed with its duration, unschedulable when the selector throws', { timeout: 5000 }, async () => {
  const node = { name: 'n1' } as NodeAgent;
  const seen: ClusterEvent[] = [];
  let clock = 0;
  let fail = false;
  const inner = { name: 'ephemera', select: () => { clock += 2; return fail ? Promise.reject(new Error('no node fits')) : Promise.resolve(node); } };
  const s = observeSelections(inner, (e) => seen.push(e), () => clock);
  assert.equal(s.name, 'ephemera');
  const placement: Placement = { id: 'p1', tenant: 't', function: 't/f', memoryBytes: 1, pending: new Map() };
  assert.equal(await s.select([node], placement), node);
  fail = true;
  await assert.rejects(s.select([node], placement), /no node fits/);
  assert.deepEqual(seen.map((e) => (e.type === 'schedule' ? [e.outcome, e.policy, e.durationSeconds] : [])), [['placed', 'ephemera', 0.002], ['unschedulable', 'ephemera', 0.002]]);
});

test("journal entries become the views' events; restoring moves have the node on one side", { timeout: 5000 }, () => {
  const move: NodeEvent = { type: 'move', tenant: 't', from: 'a', to: 'b', bytes: 7, reason: 'lend', durationUs: 2500, seq: 4, at: 9 };
  assert.deepEqual(clusterEvent('n1', move), { type: 'move', node: 'n1', tenant: 't', seq: 4, from: 'a', to: 'b', bytes: 7, reason: 'lend', durationSeconds: 0.0025, at: 9 });
  const restore = clusterEvent('n1', { ...move, from: 'a', to: null, reason: 'restore' });
  assert.equal(restore.type === 'move' ? restore.to : '', 'n1');
  assert.deepEqual(clusterEvent('n1', { type: 'oom-kill', tenant: 't', container: 'c', seq: 1, at: 2 }), { type: 'oom-kill', node: 'n1', tenant: 't', container: 'c', at: 2 });
});

test('the feed starts at the end of each journal, then emits what is new, and survives an agent that fails', { timeout: 5000 }, async () => {
  const journal: NodeEvent[] = [{ type: 'shortfall', tenant: 't', container: 'old', bytes: 1, seq: 1, at: 0 }];
  let down = false;
  const reader = {
    events: (after: number): Promise<NodeEventsReply> => {
      if (down) return Promise.reject(new Error('agent down'));
      const events = journal.filter((e) => e.seq > after);
      return Promise.resolve({ events, next: events.at(-1)?.seq ?? after, missed: 0 });
    },
  };
  const got: ClusterEvent[] = [];
  const feed = new AgentEventFeed([{ node: 'n1', reader }], (e) => got.push(e), pino({ level: 'silent' }), 60_000);
  await feed.start();
  await feed.poll();
  assert.deepEqual(got, []);
  journal.push({ type: 'shortfall', tenant: 't', container: 'new', bytes: 2, seq: 2, at: 5 });
  down = true;
  await feed.poll();
  down = false;
  await feed.poll();
  await feed.poll();
  assert.deepEqual(got, [{ type: 'shortfall', node: 'n1', tenant: 't', container: 'new', bytes: 2, at: 5 }]);
  await feed.stop();
});

/** A store of alpha's activations, newest first as the store lists them, and one node agent with nothing on it. */
function storedFixture(records: readonly ActivationRecord[]) {
  const tenants = [tenant('admin', true), tenant('alpha')];
  const store = {
    authenticate: (uuid: string, key: string) => tenants.find((t) => t.uuid === uuid && t.key === key),
    tenants: () => tenants,
    listActivations: (ns: string, q: { limit: number }) => (ns === 'alpha' ? [...records].sort((a, b) => b.start - a.start).slice(0, q.limit) : []),
    getActivation: (ns: string, id: string) => (ns === 'alpha' ? records.find((r) => r.activationId === id) : undefined),
  };
  const agent = {
    node: () => Promise.resolve({ version: 1, node: 'n1', sharing: 'tenant' as const, cgroupVersion: 1 as const, memory: { limit: 1, allocated: 0, requested: 0 }, tenants: {} }),
    listContainers: () => Promise.resolve([]),
    events: (after: number): Promise<NodeEventsReply> => Promise.resolve({ events: [], next: after, missed: 0 }),
  };
  return { store, views: new ControllerViews([{ node: 'n1', client: agent }], pino({ level: 'silent' })) };
}

const storedRecord = (id: string, start: number, status: (typeof STATUSES)[number] = 'success'): ActivationRecord => ({
  activationId: id, namespace: 'alpha', name: 'io', subject: 's', version: '0.0.1', publish: false, start, end: start + 10, duration: 10, logs: [], annotations: [],
  response: { status, statusCode: STATUSES.indexOf(status), success: status === 'success', result: {} },
}) as unknown as ActivationRecord;

const ADMIN = `Basic ${Buffer.from('admin-uuid:admin-key').toString('base64')}`;

test('a starting controller shows the newest stored activations again but does not count them in /metrics', { timeout: 10_000 }, async () => {
  const { store, views } = storedFixture([storedRecord('a3', 30), storedRecord('a2', 20), storedRecord('a1', 10)]);
  const app = Fastify();
  try {
    await views.start(app, store, { keep: 2 });
    const res = await app.inject({ method: 'GET', url: '/dashboard/api/view', headers: { authorization: ADMIN } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json<{ activations: { activationId: string; action: string }[] }>().activations.map((a) => [a.activationId, a.action]), [['a3', 'alpha/io'], ['a2', 'alpha/io']]);
    const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: ADMIN } });
    assert.equal(metrics.statusCode, 200);
    assert.doesNotMatch(metrics.body, /^ephemera_activations_total\{/m);
    // The counters count from the process's start, and say when that was.
    const started = Number(/^process_start_time_seconds (\S+)$/m.exec(metrics.body)?.[1]);
    assert.ok(Math.abs(started - performance.timeOrigin / 1000) <= 1, metrics.body);
  } finally {
    await app.close();
    await views.stop();
  }
});

test('activations the starting controller recorded as lost in flight are shown once and counted, as they finish now', { timeout: 10_000 }, async () => {
  // a4 began before a3 and was still running when the previous controller stopped.
  const { store, views } = storedFixture([storedRecord('a3', 30), storedRecord('a4', 25, 'whisk internal error'), storedRecord('a2', 20), storedRecord('a1', 10)]);
  const app = Fastify();
  try {
    await views.start(app, store, { keep: 2, settled: ['a4'] });
    const res = await app.inject({ method: 'GET', url: '/dashboard/api/view', headers: { authorization: ADMIN } });
    assert.equal(res.statusCode, 200, res.body);
    // Newest first: the lost one finished last.
    assert.deepEqual(res.json<{ activations: { activationId: string; status: string }[] }>().activations.map((a) => [a.activationId, a.status]), [['a4', 'whisk internal error'], ['a3', 'success'], ['a2', 'success']]);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: ADMIN } })).body;
    assert.match(metrics, /^ephemera_activations_total\{tenant="alpha",action="alpha\/io",status="whisk internal error"\} 1$/m);
    assert.doesNotMatch(metrics, /^ephemera_activations_total\{[^}]*status="success"/m);
    assert.match(metrics, /^ephemera_activation_duration_seconds_count\{tenant="alpha",action="alpha\/io"\} 1$/m);
  } finally {
    await app.close();
    await views.stop();
  }
});

test('the observed selector keeps what a reserving scheduler needs: reserves, created, released, waiting, close', { timeout: 5000 }, () => {
  const calls: string[] = [];
  const inner = {
    name: 'ephemera',
    reserves: true,
    maxWaitMs: 10,
    select: () => Promise.reject(new Error('unused')),
    created: (id: string) => calls.push(`created ${id}`),
    released: (id: string) => calls.push(`released ${id}`),
    waiting: () => 3,
    close: () => calls.push('close'),
  };
  const s = observeSelections(inner, () => undefined);
  const node = { name: 'n1' } as NodeAgent;
  assert.equal(s.reserves, true);
  assert.equal(s.maxWaitMs, 10);
  s.created?.('p1', node);
  s.released?.('p1', node);
  assert.equal(s.waiting?.(), 3);
  s.close?.();
  assert.deepEqual(calls, ['created p1', 'released p1', 'close']);
});
