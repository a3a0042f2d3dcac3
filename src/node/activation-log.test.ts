import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ACTIVATION_SENTINEL, ActivationLog } from './activation-log.js';

const S = ACTIVATION_SENTINEL;

test('an activation is the lines of both streams up to their sentinels, in arrival order', async () => {
  const log = new ActivationLog(() => 0);
  log.push('stdout', 'one\ntw');
  log.push('stderr', 'oops\n');
  log.push('stdout', `o\n${S}\nnext run\n`);
  log.push('stderr', `${S}\n`);
  assert.deepEqual(await log.take(1000), ['1970-01-01T00:00:00.000Z stdout: one', '1970-01-01T00:00:00.000Z stderr: oops', '1970-01-01T00:00:00.000Z stdout: two']);
  // "next run" came after stdout's sentinel: it belongs to the next activation.
  log.push('stderr', `late\n${S}\n`);
  log.push('stdout', `${S}\n`);
  assert.deepEqual(await log.take(1000), ['1970-01-01T00:00:00.000Z stdout: next run', '1970-01-01T00:00:00.000Z stderr: late']);
});

test('take waits for the sentinels that are still on their way', async () => {
  const log = new ActivationLog(() => 0);
  log.push('stdout', `a\n${S}\n`);
  const pending = log.take(5000);
  setTimeout(() => log.push('stderr', `${S}\n`), 20);
  assert.deepEqual(await pending, ['1970-01-01T00:00:00.000Z stdout: a']);
});

test('a missing sentinel ends the wait after the timeout, and says so', async () => {
  const log = new ActivationLog(() => 0);
  log.push('stdout', `a\n${S}\n`);
  const lines = await log.take(30);
  assert.equal(lines[0], '1970-01-01T00:00:00.000Z stdout: a');
  assert.match(lines[1] ?? '', /sentinel did not arrive on stderr within 30 ms/);
});
