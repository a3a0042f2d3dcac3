import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseNodeFlags } from './node.js';

test('ephemera node flags: defaults, sizes, and clear errors', () => {
  const f = parseNodeFlags(['--state-dir', '/tmp/x', '--node-name', 'n1', '--memory', '2G', '--sharing', 'workflow', '--donor-margin', '8M', '--lend-while-idle']);
  assert.equal(f.stateDir, '/tmp/x');
  assert.equal(f.memoryBytes, 2 * 1024 ** 3);
  assert.equal(f.parentCgroup, '/ephemera-n1');
  assert.equal(f.sharing, 'workflow');
  assert.equal(f.managers.sharing, 'workflow');
  assert.equal(f.managers.donorMarginBytes, 8 * 1024 ** 2);
  assert.equal(f.managers.lendWhileIdle, true);
  assert.equal(parseNodeFlags(['--node-name', 'n1']).sharing, 'tenant');
  assert.throws(() => parseNodeFlags(['--sharing', 'cluster']), { code: 'EPH_CLI_USAGE', message: /--sharing must be one of none, function, workflow, tenant, got "cluster"/ });
  assert.throws(() => parseNodeFlags(['--memory', 'lots']), { code: 'EPH_CLI_BAD_SIZE' });
  assert.throws(() => parseNodeFlags(['--node-name', 'a b']), { code: 'EPH_CLI_USAGE' });
  assert.throws(() => parseNodeFlags(['--parent-cgroup', '../etc']), { code: 'EPH_CLI_USAGE' });
  assert.throws(() => parseNodeFlags(['--memory', '1M']), /below 6 MiB/);
});
