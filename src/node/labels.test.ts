import assert from 'node:assert/strict';
import { test } from 'node:test';

import { containerLabels, parseLabels } from './labels.js';

test('labels carry what recovery needs, and read back the same', () => {
  const info = { tenant: 'acme', fn: 'io', workflow: 'wf', initialQuota: 64 << 20, profile: { ownPeakBytes: 20 << 20, filePeakBytes: 80 << 20 } };
  const labels = containerLabels('n1', '0123456789ab', info);
  assert.equal(labels['ephemera.node'], 'n1');
  assert.deepEqual(parseLabels('id1', labels), { dir: '0123456789ab', info: { id: 'id1', ...info } });
  const bare = containerLabels('n1', '0123456789ab', { tenant: 't', fn: 'f', initialQuota: 1 << 26 });
  assert.deepEqual(parseLabels('id2', bare), { dir: '0123456789ab', info: { id: 'id2', tenant: 't', fn: 'f', initialQuota: 1 << 26 } });
});

test('a container with missing or malformed labels is not taken for one of ours', () => {
  const good = containerLabels('n1', '0123456789ab', { tenant: 't', fn: 'f', initialQuota: 1 << 26 });
  assert.equal(parseLabels('x', {}), null);
  assert.equal(parseLabels('x', { ...good, 'ephemera.quota': '12x' }), null);
  assert.equal(parseLabels('x', { ...good, 'ephemera.dir': '../../etc' }), null);
});
