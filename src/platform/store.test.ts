/**
 * The store on a real SQLite file: its read caches follow commits made by another connection (as
 * `ephemera tenant add` makes from its own process), and finished records written behind the
 * answer are seen at once by every read, committed by the end of the event-loop turn, and on close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setImmediate as turn } from 'node:timers/promises';

import { scratchDir } from './harness.js';
import { buildAction, response, type ActivationRecord } from './model.js';
import { Store } from './store.js';

function record(id: string, namespace: string, start: number): ActivationRecord {
  return {
    activationId: id, namespace, name: 'a', subject: namespace, version: '0.0.1', publish: false,
    start, end: start + 1, duration: 1, logs: [], annotations: [], response: response(0, { n: start }),
  };
}

const id = (n: number): string => n.toString(16).padStart(32, '0');

/** What another connection (another process) sees committed. */
function committed(dir: string, activationId: string): { running: number } | undefined {
  const db = new DatabaseSync(join(dir, 'platform.db'), { readOnly: true });
  try {
    const row = db.prepare('SELECT running FROM activations WHERE id = ?').get(activationId) as { running: number } | undefined;
    return row === undefined ? undefined : { running: row.running };
  } finally {
    db.close();
  }
}

test("a key changed or a tenant added by another connection is seen at the next request; the old key stops working", { timeout: 10_000 }, () => {
  const dir = scratchDir('store-auth');
  const store = Store.open(dir);
  const other = Store.open(dir);
  try {
    const t = store.ensureTenant('alpha');
    assert.equal(store.authenticate(t.uuid, t.key)?.name, 'alpha');
    assert.equal(store.authenticate(t.uuid, t.key)?.name, 'alpha', 'again, from the cache');
    assert.equal(store.authenticate(t.uuid, `${t.key}x`), undefined, 'a wrong key is refused even when the tenant is cached');

    const added = other.ensureTenant('beta');
    assert.equal(store.authenticate(added.uuid, added.key)?.name, 'beta');

    const raw = new DatabaseSync(join(dir, 'platform.db'));
    raw.prepare('UPDATE tenants SET key = ? WHERE name = ?').run('k'.repeat(64), 'alpha');
    raw.close();
    assert.equal(store.authenticate(t.uuid, t.key), undefined, 'the old key no longer works');
    assert.equal(store.authenticate(t.uuid, 'k'.repeat(64))?.name, 'alpha');
  } finally {
    other.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an action changed or deleted by another connection is read again; this connection's own writes are seen at once", { timeout: 10_000 }, () => {
  const dir = scratchDir('store-actions');
  const store = Store.open(dir);
  const other = Store.open(dir);
  try {
    const v1 = buildAction('alpha', 'a', { exec: { kind: 'python:3', code: 'def main(a):\n    return {}\n' } }, undefined, 1);
    store.putAction(v1);
    assert.equal(store.getAction('alpha', 'a')?.version, '0.0.1');
    const v2 = buildAction('alpha', 'a', { parameters: [{ key: 'p', value: 2 }] }, v1, 2);
    store.putAction(v2);
    assert.deepEqual(store.getAction('alpha', 'a')?.parameters, [{ key: 'p', value: 2 }]);

    other.putAction(buildAction('alpha', 'a', { parameters: [{ key: 'p', value: 3 }] }, v2, 3));
    assert.deepEqual(store.getAction('alpha', 'a')?.parameters, [{ key: 'p', value: 3 }], "the other connection's update");
    other.deleteAction('alpha', 'a');
    assert.equal(store.getAction('alpha', 'a'), undefined, "the other connection's delete");

    store.putAction(v1);
    store.deleteAction('alpha', 'a');
    assert.equal(store.getAction('alpha', 'a'), undefined);
  } finally {
    other.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a finished record is read at once, committed by the end of the turn, and one begun after it commits both', { timeout: 10_000 }, async () => {
  const dir = scratchDir('store-behind');
  const store = Store.open(dir);
  try {
    const meta = (n: number) => ({ activationId: id(n), namespace: 'alpha', name: 'a', subject: 'alpha', version: '0.0.1', start: n });
    store.begin(meta(1));
    assert.deepEqual(committed(dir, id(1)), { running: 1 }, 'begin commits before it returns');
    store.finish(record(id(1), 'alpha', 1));
    assert.deepEqual(committed(dir, id(1)), { running: 1 }, 'not yet committed in this turn');
    const got = store.getActivation('alpha', id(1));
    assert.ok(got !== undefined && got !== 'running');
    assert.deepEqual(got.response.result, { n: 1 });
    assert.equal(store.getActivation('beta', id(1)), undefined, 'another namespace does not see it');
    await turn();
    assert.deepEqual(committed(dir, id(1)), { running: 0 }, 'committed by the end of the turn');

    store.begin(meta(2));
    store.finish(record(id(2), 'alpha', 2));
    store.begin(meta(3));
    assert.deepEqual(committed(dir, id(2)), { running: 0 }, 'the next begin commits it with its own row');
    assert.deepEqual(committed(dir, id(3)), { running: 1 });

    store.finish(record(id(3), 'alpha', 3));
    assert.deepEqual(store.listActivations('alpha', { skip: 0, limit: 10 }).map((r) => r.activationId), [id(3), id(2), id(1)]);
    assert.deepEqual(committed(dir, id(3)), { running: 0 }, 'a list commits what is unwritten first');

    store.begin(meta(4));
    store.finish(record(id(4), 'alpha', 4));
  } finally {
    store.close();
  }
  try {
    assert.deepEqual(committed(dir, id(4)), { running: 0 }, 'close commits what is unwritten');
    const again = Store.open(dir);
    try {
      assert.deepEqual(again.failInFlight(10), [], 'nothing was left running');
    } finally {
      again.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pruning keeps the newest records of each namespace and none past the age, in bounded batches; running ones stay', { timeout: 10_000 }, () => {
  const dir = scratchDir('store-prune');
  const store = Store.open(dir);
  try {
    const meta = (n: number, ns: string, start: number) => ({ activationId: id(n), namespace: ns, name: 'a', subject: ns, version: '0.0.1', start });
    // alpha: 10 finished (start 100..109, two share start 109) and one still running (start 1);
    // beta: 3 finished, old.
    for (let n = 0; n < 10; n++) {
      store.begin(meta(n, 'alpha', 100 + Math.min(n, 9)));
      store.finish(record(id(n), 'alpha', 100 + Math.min(n, 9)));
    }
    store.begin(meta(10, 'alpha', 109));
    store.finish(record(id(10), 'alpha', 109));
    store.begin(meta(11, 'alpha', 1));
    for (let n = 20; n < 23; n++) {
      store.begin(meta(n, 'beta', 10 + n));
      store.finish(record(id(n), 'beta', 10 + n));
    }
    const ids = (ns: string): string[] => store.listActivations(ns, { skip: 0, limit: 100 }).map((r) => r.activationId);
    const before = ids('alpha');

    assert.equal(store.prune({ keepPerNamespace: 4, maxAgeMs: 0 }, 1000, 3), 3, 'a batch deletes at most its size');
    assert.equal(store.prune({ keepPerNamespace: 4, maxAgeMs: 0 }, 1000, 3), 3);
    assert.equal(store.prune({ keepPerNamespace: 4, maxAgeMs: 0 }, 1000, 3), 1);
    assert.equal(store.prune({ keepPerNamespace: 4, maxAgeMs: 0 }, 1000, 3), 0, 'nothing left to prune');
    assert.deepEqual(ids('alpha'), before.slice(0, 4), 'the four newest, in list order (ties on start by id)');
    assert.equal(ids('beta').length, 3, 'another namespace keeps its own four');
    assert.equal(store.getActivation('alpha', before[4] ?? ''), undefined, 'a pruned id is gone');
    assert.equal(store.getActivation('alpha', id(11)), 'running', 'a running activation is never pruned');

    // Age: beta's records started at 30..32; at now = 1032 with a 1000 ms age, those before 32 go.
    assert.equal(store.prune({ keepPerNamespace: 0, maxAgeMs: 1000 }, 1032, 100), 2);
    assert.deepEqual(ids('beta'), [id(22)]);
    assert.equal(ids('alpha').length, 4, 'alpha is younger than the age');
    assert.equal(store.prune({ keepPerNamespace: 0, maxAgeMs: 0 }, 1_000_000, 100), 0, 'both rules off: nothing goes');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
