// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { container, MiB, node, scenarioContainers } from './scenario.js';
import type { ClusterSnapshot } from './source.js';
import { dashboardView } from './view.js';

const withLoan = scenarioContainers(true);
const snapshot: ClusterSnapshot = { at: 1000, nodes: [node('node-1', withLoan)], containers: withLoan };

test('the operator sees every node total, tenant and container, sorted, and the loans from the lenders', () => {
  const v = dashboardView(snapshot, { role: 'admin' });
  const [only, ...rest] = v.nodes;
  assert.ok(only !== undefined && rest.length === 0);
  assert.deepEqual(only.memory, { limit: 8192 * MiB, allocated: 1792 * MiB, requested: 1792 * MiB });
  assert.deepEqual(
    only.tenants.map((t) => [t.tenant, t.containers.map((c) => [c.id, c.pool, c.lentBytes, c.borrowedBytes])]),
    [
      ['alpha', [['alpha-gzip-0', 'allocation', 0, 64 * MiB], ['alpha-resize-0', 'harvest', 64 * MiB, 0]]],
      ['beta', [['beta-ml-0', 'self-sufficient', 0, 0]]],
    ],
  );
  assert.deepEqual(v.loans, [{ node: 'node-1', tenant: 'alpha', from: 'alpha-resize-0', to: 'alpha-gzip-0', bytes: 64 * MiB }]);
});

test('a tenant sees its own containers and totals, no node totals, no other tenant, no empty node', () => {
  const other = container('gamma-x-0', 'gamma', 'x', 'harvest', 128 * MiB, { node: 'node-2' });
  const containers = [...withLoan, other];
  const v = dashboardView({ at: 1, nodes: [node('node-1', containers), node('node-2', containers)], containers }, { role: 'tenant', tenant: 'beta' });
  assert.deepEqual(v.nodes.map((n) => [n.name, n.memory, n.tenants.map((t) => t.tenant)]), [['node-1', null, ['beta']]]);
  assert.deepEqual(v.nodes[0]?.tenants[0]?.memory, { limit: 1024 * MiB, allocated: 1024 * MiB, requested: 1024 * MiB });
  assert.deepEqual(v.loans, []);
  assert.deepEqual(v.actions.map((a) => a.action), ['infer']);
});

test('per action: fast operations over all file operations, null before the first', () => {
  const containers = [
    container('a-0', 't', 'a', 'harvest', 64 * MiB, { fastReads: 30, fastWrites: 10, slowOps: 10 }),
    container('a-1', 't', 'a', 'harvest', 64 * MiB, { fastReads: 50, fastWrites: 0, slowOps: 0 }),
    container('b-0', 't', 'b', 'allocation', 64 * MiB, { fastReads: 0, fastWrites: 0, slowOps: 0 }),
  ];
  const v = dashboardView({ at: 1, nodes: [], containers }, { role: 'admin' });
  assert.deepEqual(
    v.actions.map((a) => [a.action, a.containers, a.fastOps, a.slowOps, a.fastShare]),
    [
      ['a', 2, 90, 10, 0.9],
      ['b', 1, 0, 0, null],
    ],
  );
  // Containers on a node the snapshot has no totals for still show, without totals.
  assert.deepEqual(v.nodes.map((n) => [n.name, n.memory, n.sharing]), [['node-1', null, false]]);
});
