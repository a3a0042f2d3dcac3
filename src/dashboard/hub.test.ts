/**
 * The event stream over real HTTP: the framing, one poller shared by all pages, and what each
 * viewer receives.
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { test } from 'node:test';

import Fastify from 'fastify';

import { basicAuthFor } from './auth.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { MemoryClusterSource } from './memory-source.js';
import { activation, KEYS, node, playScenario, scenarioAuthorizer, scenarioContainers } from './scenario.js';

interface Stream {
  readonly events: { event: string; data: unknown }[];
  next(event: string): Promise<unknown>;
  close(): void;
}

/** Opens GET /dashboard/events with a key and parses `event:`/`data:` blocks as they come. */
function openStream(base: string, key: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/dashboard/events`, { headers: { authorization: basicAuthFor(key) }, timeout: 5000 }, (res: IncomingMessage) => {
      assert.equal(res.statusCode, 200);
      assert.match(res.headers['content-type'] ?? '', /^text\/event-stream/);
      const events: { event: string; data: unknown }[] = [];
      // Each event type is read in order: next('x') returns the first 'x' not returned yet.
      const cursor = new Map<string, number>();
      const waiters: { event: string; resolve: (d: unknown) => void }[] = [];
      let buffer = '';
      const take = (event: string): { found: boolean; data?: unknown } => {
        const from = cursor.get(event) ?? 0;
        const at = events.findIndex((e, i) => i >= from && e.event === event);
        if (at < 0) return { found: false };
        cursor.set(event, at + 1);
        return { found: true, data: events[at]?.data };
      };
      const check = (): void => {
        for (const w of [...waiters]) {
          const got = take(w.event);
          if (got.found) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(got.data);
          }
        }
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
        }
        check();
      });
      resolve({
        events,
        next: (event) =>
          new Promise((resolveNext, rejectNext) => {
            const timer = setTimeout(() => rejectNext(new Error(`no ${event} event within 5 s`)), 5000);
            waiters.push({
              event,
              resolve: (d) => {
                clearTimeout(timer);
                resolveNext(d);
              },
            });
            check();
          }),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('pages get their view and activations, then only what their viewer may see; polling stops with the last page', { timeout: 20_000 }, async () => {
  const source = new MemoryClusterSource();
  playScenario(source);
  const app = Fastify();
  await app.register(dashboardRoutes, { source, authorizer: scenarioAuthorizer, refreshMs: 100 });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const alpha = await openStream(base, KEYS.alpha);
    const beta = await openStream(base, KEYS.beta);
    const alphaView = (await alpha.next('view')) as { viewer: unknown; loans: unknown[] };
    assert.deepEqual(alphaView.viewer, { role: 'tenant', tenant: 'alpha' });
    assert.equal(alphaView.loans.length, 1);
    assert.deepEqual(((await alpha.next('activations')) as { activationId: string }[]).map((a) => a.activationId), ['act-3', 'act-2', 'act-1']);
    assert.deepEqual(await beta.next('activations'), []);
    assert.equal(source.subscribers, 1, 'one subscription for all pages');

    source.emit({ type: 'activation', activation: activation('b-1', 'beta', 'infer', 10) });
    source.emit({ type: 'activation', activation: activation('a-4', 'alpha', 'gzip', 10) });
    assert.equal(((await beta.next('activation')) as { activationId: string }).activationId, 'b-1');
    assert.equal(((await alpha.next('activation')) as { activationId: string }).activationId, 'a-4');
    assert.ok(!alpha.events.some((e) => e.event === 'activation' && (e.data as { tenant: string }).tenant === 'beta'));

    // The loan is returned: alpha's next view has none; beta's view did not change, so beta gets none.
    const back = scenarioContainers(false);
    source.setState([node('node-1', back)], back);
    source.emit({ type: 'move', node: 'node-1', tenant: 'alpha', seq: 2, from: 'alpha-gzip-0', to: 'alpha-resize-0', bytes: 1, reason: 'return', durationSeconds: 0.001, at: 0 });
    assert.equal(((await alpha.next('move')) as { seq: number }).seq, 2);
    assert.deepEqual(((await alpha.next('view')) as { loans: unknown[] }).loans, []);
    assert.equal(beta.events.filter((e) => e.event === 'view').length, 1);
    assert.ok(!beta.events.some((e) => e.event === 'move'));

    alpha.close();
    beta.close();
    const deadline = Date.now() + 5000;
    const listening = (): number => source.subscribers;
    while (listening() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(source.subscribers, 0, 'nothing listens once no page is connected');
  } finally {
    await app.close();
  }
});
