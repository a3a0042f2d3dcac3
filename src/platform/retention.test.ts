/**
 * Activation records beyond the retention disappear from a running controller, off the request
 * path, and their ids then answer as OpenWhisk answers for an activation that does not exist: 404
 * with `{error, code}`, through the official client as well.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { FakeNode } from './fake-node.js';
import { scratchDir, startTestPlatform } from './harness.js';

test('a controller keeping 2 records per namespace prunes the older ones; get, logs and result of a pruned id are 404', { timeout: 60_000 }, async () => {
  const code = scratchDir('retention-code');
  const p = await startTestPlatform('retention', new FakeNode(code), { tenants: ['guest', 'other'], retention: { keepPerNamespace: 2, maxAgeMs: 0 }, pruneEveryMs: 100 });
  try {
    const ow = p.client('guest');
    await ow.actions.create({ name: 'n', action: 'def main(a):\n    return {"i": a.get("i")}\n', kind: 'python:3' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await ow.actions.invoke({ name: 'n', blocking: true, params: { i } })).activationId);
      // Distinct start times, so that "the newest two" is one answer.
      await sleep(5);
    }
    const other = p.client('other');
    await other.actions.create({ name: 'n', action: 'def main(a):\n    return {}\n', kind: 'python:3' });
    const otherId = (await other.actions.invoke({ name: 'n', blocking: true })).activationId;

    let listed: string[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      listed = (await ow.activations.list({ limit: 50 })).map((a) => a.activationId);
      if (listed.length <= 2) break;
      await sleep(50);
    }
    assert.deepEqual(listed, [ids[4], ids[3]], 'the newest two remain, newest first');
    assert.deepEqual((await other.activations.list()).map((a) => a.activationId), [otherId], "another namespace's records are its own count");

    for (const pruned of ids.slice(0, 3)) {
      for (const suffix of ['', '/logs', '/result']) {
        const r = await p.request('GET', `/api/v1/namespaces/_/activations/${pruned}${suffix}`, { tenant: 'guest' });
        assert.equal(r.status, 404, `${pruned}${suffix}`);
        const body = r.body as { error?: unknown; code?: unknown };
        assert.equal(body.code, 'EPH_API_NOT_FOUND');
        assert.match(String(body.error), /^The requested resource does not exist/);
      }
      await assert.rejects(ow.activations.get({ name: pruned }), (err: { statusCode?: number }) => err.statusCode === 404);
    }
    const kept = await ow.activations.get({ name: ids[4] ?? '' });
    assert.deepEqual(kept.response?.result, { i: 4 });
    assert.deepEqual((await p.request('GET', '/api/v1/namespaces/_/activations?count=true', { tenant: 'guest' })).body, { activations: 2 });
  } finally {
    await p.close();
    rmSync(code, { recursive: true, force: true });
  }
});
