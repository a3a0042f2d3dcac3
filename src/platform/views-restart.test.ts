/**
 * The operator's views of a controller that starts on a store another controller left behind (a
 * real store on disk, the real controller, its real `/metrics` and `/dashboard` routes; a node that
 * answers at once): the finished records are listed again and not counted, the one left running is
 * recorded as lost, listed once and counted by the new controller, and new activations count.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { pino } from 'pino';

import type { NodeEventsReply } from '../node/api.js';
import { startController } from './controller.js';
import { InstantNode } from './fake-node.js';
import { readProps, scratchDir } from './harness.js';
import type { ActivationRecord } from './model.js';
import { MostFreeSelector } from './selector.js';
import { Store } from './store.js';

/** The node agent as the views read it: one node, nothing on it, an empty journal. */
const viewsClient = {
  node: () => Promise.resolve({ version: 1, node: 'instant', sharing: 'tenant' as const, cgroupVersion: 1 as const, memory: { limit: 1, allocated: 0, requested: 0 }, tenants: {} }),
  listContainers: () => Promise.resolve([]),
  events: (after: number): Promise<NodeEventsReply> => Promise.resolve({ events: [], next: after, missed: 0 }),
};

test('a controller started on an old store: finished records listed, not counted; the one left running counted once as lost; new ones counted', { timeout: 30_000 }, async () => {
  const dir = scratchDir('views-restart');
  const state = join(dir, 'state');
  try {
    // What the previous controller left: one finished activation, one still running.
    const old = Store.open(state);
    old.ensureTenant('guest');
    const t0 = Date.now() - 60_000;
    const meta = (id: string, start: number) => ({ activationId: id, namespace: 'guest', name: 'quick', subject: 'guest', version: '0.0.1', start });
    old.begin(meta('done1', t0));
    old.finish({
      ...meta('done1', t0), publish: false, end: t0 + 5, duration: 5, logs: [], annotations: [],
      response: { status: 'success', statusCode: 0, success: true, result: {} },
    } as unknown as ActivationRecord);
    old.begin(meta('lost1', t0 + 10));
    old.close();

    const ctl = await startController({
      stateDir: state,
      home: join(dir, 'home'),
      host: '127.0.0.1',
      port: 0,
      tenants: ['guest'],
      nodes: [new InstantNode()],
      selector: new MostFreeSelector(),
      log: pino({ level: 'silent' }),
      keepAliveMs: 60_000,
      blockingWaitMs: 10_000,
      views: [{ node: 'instant', client: viewsClient }],
    });
    try {
      const header = (tenant: string): string => `Basic ${Buffer.from(readProps(ctl.props.get(tenant) ?? '').AUTH ?? '').toString('base64')}`;
      const get = async (path: string): Promise<string> => {
        const res = await fetch(`${ctl.url}${path}`, { headers: { authorization: header('admin') }, signal: AbortSignal.timeout(10_000) });
        assert.equal(res.status, 200, path);
        return res.text();
      };
      const listed = async (): Promise<string[][]> =>
        (JSON.parse(await get('/dashboard/api/view')) as { activations: { activationId: string; status: string }[] }).activations.map((a) => [a.activationId, a.status]);
      const counted = async (): Promise<(string | number | undefined)[][]> =>
        [...(await get('/metrics')).matchAll(/^ephemera_activations_total\{tenant="([^"]+)",action="([^"]+)",status="([^"]+)"\} (\S+)$/gm)].map((m) => [m[2], m[3], Number(m[4])]);

      assert.deepEqual(await listed(), [['lost1', 'whisk internal error'], ['done1', 'success']]);
      assert.deepEqual(await counted(), [['guest/quick', 'whisk internal error', 1]]);

      const api = (method: string, path: string, body: unknown): Promise<Response> =>
        fetch(`${ctl.url}/api/v1/namespaces/_/${path}`, { method, headers: { authorization: header('guest'), 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      assert.equal((await api('PUT', 'actions/quick', { exec: { kind: 'python:3', code: 'def main(a):\n    return a\n' } })).status, 200);
      const rec = (await (await api('POST', 'actions/quick?blocking=true', {})).json()) as { activationId: string };
      assert.deepEqual((await listed())[0], [rec.activationId, 'success']);
      assert.deepEqual((await counted()).sort(), [['guest/quick', 'success', 1], ['guest/quick', 'whisk internal error', 1]]);
    } finally {
      await ctl.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
