import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { RecordedLimitSync } from './recorded-limit.js';

/** A fake engine call whose answers the test releases by hand, and which notes overlaps. */
function engine(): { record: (id: string, bytes: number) => Promise<void>; calls: number[]; finish: () => void; inflight: () => number; overlaps: number } {
  const pending: (() => void)[] = [];
  let inflight = 0;
  const state = {
    calls: [] as number[],
    overlaps: 0,
    record: (_id: string, bytes: number) => {
      state.calls.push(bytes);
      inflight++;
      if (inflight > 1) state.overlaps++;
      return new Promise<void>((resolve) => {
        pending.push(() => {
          inflight--;
          resolve();
        });
      });
    },
    finish: () => pending.shift()?.(),
    inflight: () => inflight,
  };
  return state;
}

test('the record follows the last value once the limit is still, and a move waits for an update in flight', async () => {
  const e = engine();
  const sync = new RecordedLimitSync(e.record, { quietMs: 5 });
  sync.track('c', 100);
  await sync.hold('c');
  sync.release('c', 80);
  await sync.hold('c');
  sync.release('c', 60); // two moves in a row: one update, with the last value
  await sleep(20);
  assert.deepEqual(e.calls, [60]);
  // A move now has to wait for that update to land before it writes the cgroup.
  let held = false;
  const holding = sync.hold('c').then(() => (held = true));
  await sleep(10);
  assert.equal(held, false, 'the move waits while docker update is in flight');
  e.finish();
  await holding;
  assert.equal(sync.recorded('c'), 60);
  sync.release('c', 90);
  await sleep(20);
  e.finish();
  await sync.settle();
  assert.deepEqual(e.calls, [60, 90]);
  assert.equal(sync.recorded('c'), 90);
  assert.equal(e.overlaps, 0, 'updates of one container never overlap');
});

test('no update starts while a move holds the container, and none when the record is right', async () => {
  const e = engine();
  const sync = new RecordedLimitSync(e.record, { quietMs: 1 });
  sync.track('c', 100);
  await sync.hold('c');
  await sleep(10);
  assert.deepEqual(e.calls, []);
  sync.release('c', 100);
  await sleep(10);
  assert.deepEqual(e.calls, [], 'the engine already records 100');
});

test('a failed update is reported and tried again on the next release', async () => {
  let fail = true;
  const calls: number[] = [];
  const errors: string[] = [];
  const sync = new RecordedLimitSync(
    (_id, bytes) => {
      calls.push(bytes);
      return fail ? Promise.reject(new Error('engine down')) : Promise.resolve();
    },
    { quietMs: 1, onError: (_id, err) => errors.push((err as Error).message) },
  );
  sync.track('c', 100);
  sync.release('c', 50);
  await sync.settle();
  assert.deepEqual(errors, ['engine down']);
  fail = false;
  sync.release('c', 40);
  await sync.settle();
  assert.equal(sync.recorded('c'), 40);
  assert.deepEqual(calls, [50, 40]);
});
