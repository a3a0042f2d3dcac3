/**
 * The views over node agents: the agent's own client (NodeClient) against a stand-in agent on a
 * unix socket serving API v1 shapes, then against a real agent with real containers in Docker.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Fastify, { type FastifyInstance } from 'fastify';

import { isEphemeraError } from '../core/errors.js';
import type { ContainerView, NodeInfo } from '../node/api.js';
import { NodeClient } from '../node/client.js';
import { inProcessManagers, managerDefaults } from '../node/managers.js';
import { dockerReady, startTestNode, type TestNode } from '../node/testkit.js';
import { NodeAgentsSource } from './node-source.js';
import { MiB } from './scenario.js';
import { dashboardView } from './view.js';

const INFO: NodeInfo = {
  version: 1,
  node: 'n1',
  sharing: 'tenant',
  cgroupVersion: 1,
  memory: { limit: 4096 * MiB, allocated: 336 * MiB, requested: 300 * MiB },
  tenants: { acme: { limit: 336 * MiB, allocated: 336 * MiB, requested: 300 * MiB } },
};

function view(id: string, fn: string, pool: ContainerView['pool'], initial: number, granted: number, loans: Partial<Pick<ContainerView, 'lentTo' | 'borrowedFrom'>>): ContainerView {
  return {
    id,
    name: `eph-${id}`,
    tenant: 'acme',
    function: fn,
    origin: 'created',
    pool,
    running: true,
    initialBytes: initial,
    grantedBytes: granted,
    usageBytes: 30 * MiB,
    filesInMemory: 2,
    fileBytesInMemory: 20 * MiB,
    lentTo: loans.lentTo ?? [],
    borrowedFrom: loans.borrowedFrom ?? [],
  };
}

describe('NodeAgentsSource over a stand-in agent', { timeout: 20_000 }, () => {
  let dir: string;
  let agent: FastifyInstance;
  let containers: ContainerView[] = [];
  let failing = false;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ephemera-dashboard-agent-'));
    agent = Fastify();
    agent.get('/v1/node', (_req, reply) => (failing ? reply.code(500).send({ error: { code: 'EPH_NODE_RUNTIME', message: 'docker is gone' } }) : INFO));
    agent.get('/v1/containers', () => containers);
    await agent.listen({ path: join(dir, 'node.sock') });
  });
  after(async () => {
    await agent.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("the agent's figures, containers and loans; run counters summed per container and dropped with it", async () => {
    containers = [
      view('donor', 'factorial', 'harvest', 256 * MiB, 200 * MiB, { lentTo: [{ id: 'recipient', bytes: 56 * MiB }] }),
      view('recipient', 'io', 'allocation', 80 * MiB, 136 * MiB, { borrowedFrom: [{ id: 'donor', bytes: 56 * MiB }] }),
    ];
    const source = new NodeAgentsSource([new NodeClient(join(dir, 'node.sock'), { timeoutMs: 5000 })], { now: () => 42 });
    const run = { fast_reads: 10, fast_writes: 5, slow_ops: 2, evictions: 1, bytes_in_memory_peak: 0 };
    source.recordRun('recipient', run);
    source.recordRun('recipient', run);
    const snap = await source.snapshot();
    assert.deepEqual(snap.nodes, [{ name: 'n1', sharing: true, memory: INFO.memory, tenants: INFO.tenants }]);
    const recipient = snap.containers.find((c) => c.id === 'recipient');
    assert.deepEqual(recipient, {
      id: 'recipient',
      node: 'n1',
      tenant: 'acme',
      action: 'io',
      pool: 'allocation',
      initial: 80 * MiB,
      granted: 136 * MiB,
      usage: 30 * MiB,
      fileBytes: 20 * MiB,
      files: 2,
      evictions: 2,
      fastReads: 20,
      fastWrites: 10,
      slowOps: 4,
      lent: [],
      borrowed: [{ partner: 'donor', bytes: 56 * MiB }],
    });
    assert.deepEqual(dashboardView(snap, { role: 'admin' }).loans, [{ node: 'n1', tenant: 'acme', from: 'donor', to: 'recipient', bytes: 56 * MiB }]);

    containers = containers.filter((c) => c.id !== 'recipient');
    await source.snapshot();
    containers = [...containers, view('recipient', 'io', 'allocation', 80 * MiB, 80 * MiB, {})];
    assert.equal((await source.snapshot()).containers.find((c) => c.id === 'recipient')?.fastReads, 0, 'a container that left starts from zero');
  });

  test('an agent that fails makes the snapshot fail with EPH_VIEW_SOURCE and its reason', async () => {
    failing = true;
    try {
      const source = new NodeAgentsSource([new NodeClient(join(dir, 'node.sock'), { timeoutMs: 5000 })]);
      await assert.rejects(source.snapshot(), (err: unknown) => isEphemeraError(err, 'EPH_VIEW_SOURCE') && /node agent 1 of 1 did not answer: .*docker is gone/.test(err.message));
    } finally {
      failing = false;
    }
  });
});

describe('NodeAgentsSource over a real node agent (Docker)', { timeout: 300_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  before(async () => {
    skip = await dockerReady();
    if (skip === null) node = await startTestNode(inProcessManagers(managerDefaults('tenant')), { node: `dashboard${String(process.pid)}` });
  });
  after(async () => {
    await node?.close();
  });

  test('two containers of one tenant, a live loan between them, as the dashboard sees it', { timeout: 240_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const client = node.client;
    const donor = await client.createContainer({ tenant: 'acme', function: 'factorial', memoryBytes: 256 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 0 } });
    const recipient = await client.createContainer({ tenant: 'acme', function: 'io', memoryBytes: 80 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 64 * MiB } });
    const source = new NodeAgentsSource([client]);
    await client.invocationStart(donor.id);
    await client.invocationStart(recipient.id);
    try {
      const v = dashboardView(await source.snapshot(), { role: 'admin' });
      const tenant = v.nodes.find((n) => n.name === node?.node)?.tenants.find((x) => x.tenant === 'acme');
      assert.ok(tenant !== undefined, JSON.stringify(v.nodes));
      assert.deepEqual(tenant.containers.map((c) => [c.id, c.action, c.pool]).sort(), [
        [donor.id, 'factorial', 'harvest'],
        [recipient.id, 'io', 'allocation'],
      ].sort());
      const [loan, ...more] = v.loans;
      assert.ok(loan !== undefined && more.length === 0, JSON.stringify(v.loans));
      assert.deepEqual([loan.from, loan.to], [donor.id, recipient.id]);
      assert.ok(loan.bytes > 0);
      const r = tenant.containers.find((c) => c.id === recipient.id);
      assert.ok(r !== undefined);
      assert.equal(r.granted, 80 * MiB + loan.bytes);
      assert.equal(r.borrowedBytes, loan.bytes);
    } finally {
      await client.invocationEnd(recipient.id).catch(() => undefined);
      await client.invocationEnd(donor.id).catch(() => undefined);
    }
    const back = dashboardView(await source.snapshot(), { role: 'admin' });
    assert.deepEqual(back.loans, []);
  });
});
