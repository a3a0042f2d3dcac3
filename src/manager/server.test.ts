/**
 * The Manager's HTTP API through fastify.inject (the real process is in process.test.ts): every
 * event example in docs/PROTOCOL.md is accepted by the schema, and what the schema refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { buildManagerApp } from './server.js';
import type { ManagerConfig } from './types.js';

const CONFIG: ManagerConfig = { tenant: 'acme', sharing: 'tenant', harvestThresholdBytes: 0, donorMarginBytes: 0, engineMinimumBytes: 0, lendWhileIdle: false };
const T = { timeout: 10_000 };

// build/js/manager/server.test.js -> repository root
const protocol = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');

function post(app: ReturnType<typeof buildManagerApp>, url: string, payload: unknown): Promise<{ statusCode: number; json: () => unknown }> {
  return app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> });
}

test('every event example in docs/PROTOCOL.md passes the schema, in the documented order', T, async () => {
  const section = protocol.slice(protocol.indexOf('# Tenant Manager process API'));
  const examples = [...section.matchAll(/^\{"kind":.*\}$/gm)].map((m) => JSON.parse(m[0]) as { kind: string });
  assert.deepEqual(examples.map((e) => e.kind), ['register', 'forget', 'invocation-start', 'invocation-end', 'shortfall', 'move-failed']);
  const app = buildManagerApp(CONFIG);
  try {
    for (const event of examples) {
      const res = await post(app, '/v1/events', { event, now: 5 });
      // The examples are shapes, not one story: a schema refusal would be 400; the core may refuse (409).
      assert.ok(res.statusCode === 200 || res.statusCode === 409, `${event.kind}: ${String(res.statusCode)} ${JSON.stringify(res.json())}`);
    }
  } finally {
    await app.close();
  }
});

test('the schema refuses wrong types, unknown fields and unknown kinds with EPH_MANAGER_PROTOCOL naming the value', T, async () => {
  const app = buildManagerApp(CONFIG);
  try {
    const rows: [unknown, RegExp][] = [
      [{ event: { kind: 'shortfall', id: 'a', neededBytes: '12' } }, /neededBytes must be integer \(got "12"\)/],
      [{ event: { kind: 'shortfall', id: 'a', neededBytes: 0 } }, /neededBytes must be >= 1/],
      [{ event: { kind: 'forget', id: 'a', extra: 1 } }, /unknown field "extra"/],
      [{ event: { kind: 'explode' } }, /tag "kind"/],
      [{ event: { kind: 'register', container: { id: 'x', tenant: 'acme', fn: 'f', initialQuota: 1.5 } } }, /initialQuota must be integer/],
      [{ live: 'nope' }, /must have required property 'event'/],
    ];
    for (const [body, message] of rows) {
      const res = await post(app, '/v1/events', body);
      const reply = res.json() as { code: string; message: string };
      assert.equal(res.statusCode, 400, JSON.stringify(body));
      assert.equal(reply.code, 'EPH_MANAGER_PROTOCOL');
      assert.match(reply.message, message);
    }
    const recover = await post(app, '/v1/recover', { live: [{ info: { id: 'x', tenant: 'acme', fn: 'f', initialQuota: 10 }, limitBytes: -1 }] });
    assert.equal(recover.statusCode, 400);
    const snap = await app.inject({ method: 'GET', url: '/v1/snapshot' });
    assert.equal(snap.json<{ totals: { containers: number } }>().totals.containers, 0, 'nothing refused changed the state');
  } finally {
    await app.close();
  }
});

test("an event that names a container answers its standing after the event; a forgotten one has none", T, async () => {
  const app = buildManagerApp(CONFIG);
  try {
    const container = { id: 'c1', tenant: 'acme', fn: 'f', initialQuota: 64 * 1024 * 1024, profile: { ownPeakBytes: 1024 * 1024, filePeakBytes: 0 } };
    const reg = (await post(app, '/v1/events', { event: { kind: 'register', container } })).json() as Record<string, unknown>;
    assert.equal(reg['standing'], undefined, 'register names no id');
    const start = (await post(app, '/v1/events', { event: { kind: 'invocation-start', id: 'c1' } })).json() as Record<string, unknown>;
    assert.deepEqual(start['standing'], { pool: 'harvest', lends: false, borrows: false, lendWhileIdle: false });
    const end = (await post(app, '/v1/events', { event: { kind: 'invocation-end', id: 'c1', used: { ownPeakBytes: 100 * 1024 * 1024, filePeakBytes: 0 } } })).json() as Record<string, unknown>;
    assert.deepEqual(end['standing'], { pool: 'allocation', lends: false, borrows: false, lendWhileIdle: false }, 'the pool its end re-classified it into');
    const forgot = (await post(app, '/v1/events', { event: { kind: 'forget', id: 'c1' } })).json() as Record<string, unknown>;
    assert.equal(forgot['standing'], undefined);
  } finally {
    await app.close();
  }
});

test('every event answers whether the tenant is quiet; /v1/events/pair applies the second only after a first that decided no move', T, async () => {
  const app = buildManagerApp({ ...CONFIG, harvestThresholdBytes: 16 * 1024 * 1024 });
  const MiB = 1024 * 1024;
  try {
    const reg = (id: string, quota: number): Promise<unknown> => post(app, '/v1/events', { event: { kind: 'register', container: { id, tenant: 'acme', fn: id, initialQuota: quota, profile: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 } } } });
    await reg('cpu', 512 * MiB);
    await reg('io', 64 * MiB);
    const pair = (await post(app, '/v1/events/pair', {
      first: { event: { kind: 'invocation-start', id: 'cpu' }, now: 1000 },
      second: { event: { kind: 'invocation-end', id: 'cpu', used: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 } }, now: 1005 },
    })).json() as { first: Record<string, unknown>; second?: Record<string, unknown> };
    assert.deepEqual(pair.first['moves'], []);
    assert.equal(pair.first['quiet'], true);
    assert.ok(pair.second !== undefined, 'the start decided no move: the end was applied');
    assert.deepEqual(pair.second['moves'], []);
    assert.deepEqual(pair.second['standing'], { pool: 'harvest', lends: false, borrows: false, lendWhileIdle: false });
    // io runs wanting 100 MiB against its 64: the tenant is not quiet.
    const io = (await post(app, '/v1/events', { event: { kind: 'invocation-start', id: 'io', estimate: { ownPeakBytes: 8 * MiB, filePeakBytes: 100 * MiB } } })).json() as Record<string, unknown>;
    assert.equal(io['quiet'], false);
    // cpu's start now lends to io: the pair stops there, its end is not applied.
    const lent = (await post(app, '/v1/events/pair', {
      first: { event: { kind: 'invocation-start', id: 'cpu' }, now: 2000 },
      second: { event: { kind: 'invocation-end', id: 'cpu', used: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 } }, now: 2005 },
    })).json() as { first: { moves: { from: string; to: string }[] }; second?: unknown };
    assert.ok(lent.first.moves.some((m) => m.from === 'cpu' && m.to === 'io'), JSON.stringify(lent));
    assert.equal(lent.second, undefined);
    const snap = (await app.inject({ method: 'GET', url: '/v1/snapshot' })).json<{ containers: { id: string; running: boolean; runningSince: number | null }[] }>();
    assert.deepEqual(snap.containers.find((c) => c.id === 'cpu'), { ...snap.containers.find((c) => c.id === 'cpu'), running: true, runningSince: 2000 }, 'the start is applied at its own time, the end is not');
    const bad = await post(app, '/v1/events/pair', { first: { event: { kind: 'forget', id: 'x' } } });
    assert.equal(bad.statusCode, 400);
  } finally {
    await app.close();
  }
});
