// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { NodeEventJournal } from './event-journal.js';

const shortfall = (container: string) => ({ type: 'shortfall' as const, tenant: 't', container, bytes: 1 });

test('events are numbered from 1 and read after a number, oldest first, up to a limit', { timeout: 5000 }, () => {
  let now = 1000;
  const j = new NodeEventJournal({ now: () => now++ });
  assert.deepEqual(j.since(0, 10), { events: [], next: 0, missed: 0 });
  for (const c of ['a', 'b', 'c']) j.push(shortfall(c));
  assert.equal(j.last, 3);
  const all = j.since(0, 10);
  assert.deepEqual(all.events.map((e) => [e.seq, e.at, e.type === 'shortfall' ? e.container : '']), [[1, 1000, 'a'], [2, 1001, 'b'], [3, 1002, 'c']]);
  assert.equal(all.next, 3);
  assert.deepEqual(j.since(1, 1).events.map((e) => e.seq), [2]);
  assert.equal(j.since(1, 1).next, 2);
  assert.deepEqual(j.since(3, 10), { events: [], next: 3, missed: 0 });
});

test('a reader that fell behind the ring is told how many it missed', { timeout: 5000 }, () => {
  const j = new NodeEventJournal({ capacity: 2 });
  for (const c of ['a', 'b', 'c', 'd', 'e']) j.push(shortfall(c));
  const r = j.since(1, 10);
  assert.deepEqual(r.events.map((e) => e.seq), [4, 5]);
  assert.equal(r.missed, 2);
  assert.equal(r.next, 5);
  assert.equal(j.since(0, 10).missed, 3);
});

test("a number past the newest (a reader of an earlier agent) reads from the beginning", { timeout: 5000 }, () => {
  const j = new NodeEventJournal();
  j.push(shortfall('a'));
  const r = j.since(40, 10);
  assert.deepEqual(r.events.map((e) => e.seq), [1]);
  assert.equal(r.next, 1);
});
