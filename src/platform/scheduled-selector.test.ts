// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pino } from 'pino';

import { isEphemeraError } from '../core/errors.js';
import type { ContainerSpec, MemoryLoad, NodeAgent, NodeLoad, Placement, RunResult } from './agent.js';
import { ScheduledSelector } from './scheduled-selector.js';

const MiB = 1 << 20;
const log = pino({ level: 'silent' });

/** A node that counts the containers created on it, as a node agent's GET /v1/node does. */
class CountingNode implements NodeAgent {
  readonly containers = new Map<string, ContainerSpec>();
  reports = 0;
  private next = 0;
  constructor(readonly name: string, private readonly limit: number) {}
  create(spec: ContainerSpec): Promise<{ id: string }> {
    const id = `${this.name}-c${String(++this.next)}`;
    this.containers.set(id, spec);
    return Promise.resolve({ id });
  }
  init(): Promise<{ statusCode: number; body: unknown }> {
    return Promise.resolve({ statusCode: 200, body: { ok: true } });
  }
  run(): Promise<RunResult> {
    return Promise.reject(new Error('not used'));
  }
  remove(id: string): Promise<void> {
    this.containers.delete(id);
    return Promise.resolve();
  }
  state(): Promise<NodeLoad> {
    this.reports++;
    let allocated = 0;
    let requested = 0;
    const tenants: Record<string, MemoryLoad> = {};
    for (const c of this.containers.values()) {
      const req = c.profile === undefined ? c.memoryBytes : c.profile.ownPeakBytes + c.profile.filePeakBytes;
      allocated += c.memoryBytes;
      requested += req;
      const t = tenants[c.tenant] ?? { limit: 0, allocated: 0, requested: 0 };
      tenants[c.tenant] = { limit: t.limit + c.memoryBytes, allocated: t.allocated + c.memoryBytes, requested: t.requested + req };
    }
    return Promise.resolve({ node: this.name, memory: { limit: this.limit, allocated, requested }, tenants });
  }
}

const placement = (id: string, memMiB: number, own: number, file: number, reclaim?: () => void): Placement => ({
  id, tenant: 'guest', function: `guest/${id}`, memoryBytes: memMiB * MiB, pending: new Map(),
  profile: { ownPeakBytes: own * MiB, filePeakBytes: file * MiB }, ...(reclaim === undefined ? {} : { reclaim }),
});

async function place(sel: ScheduledSelector, nodes: readonly CountingNode[], p: Placement): Promise<{ node: CountingNode; id: string }> {
  const agent = await sel.select(nodes, p);
  const node = nodes.find((n) => n === agent);
  assert.ok(node !== undefined);
  const { id } = await node.create({ tenant: p.tenant, function: p.function, memoryBytes: p.memoryBytes, ...(p.profile === undefined ? {} : { profile: p.profile }) });
  sel.created(p.id, node);
  return { node, id };
}

test('Table 4 through the selector: reservations at decision time give the paper rows, reports or not', { timeout: 10_000 }, async () => {
  const nodes = [new CountingNode('n1', 1024 * MiB), new CountingNode('n2', 1024 * MiB)];
  const sel = new ScheduledSelector({ policy: 'ephemera', nodes, log, refreshMs: 60_000 });
  try {
    const tasks = [[300, 4, 0], [150, 8, 250], [150, 8, 250], [300, 4, 0], [150, 8, 250], [150, 8, 250]] as const;
    // All six decided before any container exists: only the reservations keep them apart.
    const agents = await Promise.all(tasks.map(([m, o, f], i) => sel.select(nodes, placement(`a${String(i)}`, m, o, f))));
    assert.deepEqual(agents.map((a) => a.name), ['n1', 'n2', 'n1', 'n2', 'n1', 'n1']);
    const f1 = sel.scheduler.figures('n1');
    assert.deepEqual(f1?.node, { alloc: 750 * MiB, req: 778 * MiB });
  } finally {
    sel.close();
  }
});

test('most-free through the selector spreads by free memory', { timeout: 10_000 }, async () => {
  const nodes = [new CountingNode('n1', 1024 * MiB), new CountingNode('n2', 1024 * MiB)];
  const sel = new ScheduledSelector({ policy: 'most-free', nodes, log, refreshMs: 60_000 });
  try {
    const tasks = [[300, 4, 0], [150, 8, 250], [150, 8, 250], [300, 4, 0], [150, 8, 250], [150, 8, 250]] as const;
    const got: string[] = [];
    for (const [i, [m, o, f]] of tasks.entries()) got.push((await place(sel, nodes, placement(`b${String(i)}`, m, o, f))).node.name);
    assert.deepEqual(got, ['n1', 'n2', 'n2', 'n1', 'n2', 'n2']);
    // After a report, the created containers are counted once (reservation reconciled, not doubled).
    await sel.refreshAll();
    assert.deepEqual(sel.scheduler.figures('n2')?.node, { alloc: 600 * MiB, req: 1032 * MiB });
    assert.equal(sel.scheduler.reservationCount, 6);
  } finally {
    sel.close();
  }
});

test('no room: the placement waits, reclaim is asked for, a removal places it; a full queue and a task too large fail with their codes', { timeout: 10_000 }, async () => {
  const nodes = [new CountingNode('n1', 512 * MiB)];
  const sel = new ScheduledSelector({ policy: 'ephemera', nodes, log, refreshMs: 60_000, queueCapacity: 1 });
  try {
    const first = await place(sel, nodes, placement('c1', 400, 10, 0));
    let reclaimed = 0;
    const waiting = sel.select(nodes, placement('c2', 256, 10, 0, () => { reclaimed++; }));
    await new Promise((r) => setImmediate(r));
    assert.equal(reclaimed, 1);
    await assert.rejects(sel.select(nodes, placement('c3', 256, 10, 0)), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_QUEUE_FULL'));
    await assert.rejects(sel.select(nodes, placement('c4', 1024, 10, 0)), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_NEVER_FITS'));
    await first.node.remove(first.id);
    sel.released('c1', first.node);
    assert.equal((await waiting).name, 'n1');
  } finally {
    sel.close();
  }
});

test('a placement that waits past maxWaitMs fails with EPH_SCHED_WAIT_TIMEOUT; close fails the rest', { timeout: 10_000 }, async () => {
  const nodes = [new CountingNode('n1', 512 * MiB)];
  const sel = new ScheduledSelector({ policy: 'most-free', nodes, log, refreshMs: 50, maxWaitMs: 200 });
  try {
    await place(sel, nodes, placement('d1', 400, 10, 0));
    await assert.rejects(sel.select(nodes, placement('d2', 256, 10, 0)), (e: unknown) => isEphemeraError(e, 'EPH_SCHED_WAIT_TIMEOUT'));
    const left = sel.select(nodes, placement('d3', 256, 10, 0));
    sel.close();
    await assert.rejects(left, /shutting down/);
    assert.ok(nodes[0] !== undefined && nodes[0].reports >= 2, 'the agents are asked for reports on the interval');
  } finally {
    sel.close();
  }
});
