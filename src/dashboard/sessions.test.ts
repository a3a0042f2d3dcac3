// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { basicAuthFor, keyFromBasicAuth, maySee } from './auth.js';
import { SessionStore } from './sessions.js';

test('a session is a random token for a key, forgotten after its idle time or when deleted', () => {
  let now = 0;
  const store = new SessionStore({ idleMs: 1000, now: () => now });
  const a = store.create('u:a');
  const b = store.create('u:b');
  assert.match(a, /^[\w-]{43}$/);
  assert.notEqual(a, b);
  now = 900;
  assert.equal(store.keyFor(a), 'u:a');
  now = 1800; // a was used at 900: still within its idle time; b was not used since 0
  assert.equal(store.keyFor(a), 'u:a');
  assert.equal(store.keyFor(b), undefined);
  store.delete(a);
  assert.equal(store.keyFor(a), undefined);
  assert.equal(store.keyFor(undefined), undefined);
  assert.equal(store.keyFor('made-up'), undefined);
});

test('at most `max` sessions: the least recently used goes first', () => {
  const store = new SessionStore({ max: 2 });
  const first = store.create('u:1');
  const second = store.create('u:2');
  assert.equal(store.keyFor(first), 'u:1'); // first is now the most recently used
  const third = store.create('u:3');
  assert.equal(store.keyFor(second), undefined);
  assert.equal(store.keyFor(first), 'u:1');
  assert.equal(store.keyFor(third), 'u:3');
});

test('Basic credentials: uuid:key round trip; anything else is no key', () => {
  assert.equal(keyFromBasicAuth(basicAuthFor('uuid:key:with:colons')), 'uuid:key:with:colons');
  assert.equal(keyFromBasicAuth('basic ' + Buffer.from('a:b').toString('base64')), 'a:b');
  for (const bad of [undefined, '', 'Bearer abc', 'Basic', 'Basic !!!', `Basic ${Buffer.from('nocolon').toString('base64')}`]) {
    assert.equal(keyFromBasicAuth(bad), undefined, String(bad));
  }
  assert.equal(maySee({ role: 'admin' }, 'x'), true);
  assert.equal(maySee({ role: 'tenant', tenant: 'x' }, 'x'), true);
  assert.equal(maySee({ role: 'tenant', tenant: 'x' }, 'y'), false);
});
