// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isEphemeraError } from '../core/errors.js';
import { applyCommand, formatCommand, parseCommand } from './sentinel-core.js';

test('hold and release lines round-trip and keep the record', () => {
  const held = new Map<string, 1 | 2>();
  for (const line of [formatCommand({ op: 'hold', dir: '/sys/fs/cgroup/memory/a', version: 1 }), formatCommand({ op: 'hold', dir: '/sys/fs/cgroup/b c', version: 2 })]) {
    assert.ok(line.endsWith('\n'));
    applyCommand(held, parseCommand(line.trimEnd()));
  }
  assert.deepEqual([...held], [['/sys/fs/cgroup/memory/a', 1], ['/sys/fs/cgroup/b c', 2]]);
  applyCommand(held, parseCommand(formatCommand({ op: 'release', dir: '/sys/fs/cgroup/memory/a' }).trimEnd()));
  applyCommand(held, parseCommand('{"op":"release","dir":"/never/held"}'));
  assert.deepEqual([...held], [['/sys/fs/cgroup/b c', 2]]);
});

test('anything else is refused with a message that quotes it', () => {
  for (const line of ['hold /x', '{"op":"hold","dir":"/x"}', '{"op":"hold","dir":"/x","version":3}', '{"op":"hold","dir":"relative","version":1}', '{"op":"lift","dir":"/x"}', '{"op":"release"}', 'null', '[]']) {
    assert.throws(
      () => parseCommand(line),
      (e: unknown) => isEphemeraError(e, 'EPH_GUARD_SENTINEL') && e.message.includes(JSON.stringify(line)),
      line,
    );
  }
});
