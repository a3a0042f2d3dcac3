/**
 * The node agent's run path in real containers: what it waits for before an action runs and what
 * it leaves until after the reply. A Manager that holds its answers to invocation-start lets the
 * test see the order: a container no move can reach first runs while its start is still held; a
 * first run, or one that a move queued before its start may reach, waits for it. Each run's counters are its own, the Manager hears
 * start and end alternately, and the runtime answers other clients while the agent keeps its
 * connection open.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { ManagerEvent, ManagerSnapshot, PoolName } from '../manager/types.js';
import { actionRequest } from './action-client.js';
import { inProcessManagers, managerDefaults } from './managers.js';
import type { TenantManagerPort } from './tenants.js';
import { dockerReady, startTestNode, type TestNode } from './testkit.js';

const MiB = 1024 * 1024;

/** Writes a file in /tmp when asked to; otherwise does nothing. */
const ACTION = `
def main(args):
    if args.get("write"):
        with open("/tmp/run-path.txt", "w") as f:
            f.write("y" * 50000)
    return {"ok": True}
`;

/** Writes a scratch file of `scratch` MiB in /tmp and deletes it at once. */
const SCRATCH = `
import os
def main(args):
    mb = args.get("scratch", 0)
    with open("/tmp/scratch.bin", "wb") as f:
        for _ in range(mb):
            f.write(b"s" * (1 << 20))
    os.unlink("/tmp/scratch.bin")
    return {"ok": True}
`;

interface Held {
  /** Events in the order the Manager was given them. */
  readonly events: ManagerEvent[];
  /** While set, invocation-start answers only when `release` is called. */
  hold: boolean;
  release: () => void;
  /** Called when an invocation-start arrives while held. */
  onHeld: () => void;
  /** What the snapshots say of lending while idle. */
  lendWhileIdle: boolean;
}

/** A Manager that moves nothing, calls every container `harvest`, and can hold invocation-start. */
function holdingManager(state: Held): (tenant: string) => Promise<TenantManagerPort> {
  return (tenant) => {
    const pool: PoolName = 'harvest';
    return Promise.resolve({
      apply: (e: ManagerEvent) => {
        state.events.push(e);
        if (e.kind !== 'invocation-start' || !state.hold) return Promise.resolve([]);
        return new Promise((resolve) => {
          // Bounded: a run path that waited for the start wrongly ends here, not in a hang.
          const timer = setTimeout(() => { resolve([]); }, 10_000);
          state.release = () => {
            clearTimeout(timer);
            resolve([]);
          };
          state.onHeld();
        });
      },
      recover: () => Promise.resolve([]),
      snapshot: (): Promise<ManagerSnapshot> => {
        const ids = [...new Set(state.events.flatMap((e) => (e.kind === 'register' ? [e.container.id] : [])))];
        return Promise.resolve({
          tenant,
          sharing: 'tenant',
          lendWhileIdle: state.lendWhileIdle,
          containers: ids.map((id) => ({ id, fn: 'f', pool, initialQuota: 0, peakMemory: 0, maxFileSize: 0, adjustedQuota: 0, floor: 0, wantedBytes: 0, profiled: true, running: false, runningSince: null, reclaimable: true, lentTo: [], borrowedFrom: [] })),
          totals: { containers: ids.length, running: 0, initialQuotaBytes: 0, limitBytes: 0, lentBytes: 0, unmetBytes: 0 },
        });
      },
      close: () => Promise.resolve(),
    });
  };
}

/**
 * Holds the next invocation-start: `first` starts a run whose start is held; once the Manager has
 * it, `during` runs; then the start is released and both are awaited.
 */
async function heldWhile(state: Held, first: () => Promise<unknown>, during: () => Promise<unknown>): Promise<void> {
  state.hold = true;
  let inner: Promise<unknown> = Promise.resolve();
  const held = new Promise<void>((resolve) => {
    state.onHeld = () => {
      state.onHeld = () => undefined;
      state.hold = false;
      resolve();
    };
  });
  const outer = first();
  await held;
  inner = during();
  // `during` finishes first only if it did not wait for the held start; it is released either way.
  await Promise.race([inner, new Promise((res) => setTimeout(res, 600))]);
  state.release();
  await Promise.all([outer, inner]);
}

const runReq = (write: boolean, id: string): Parameters<TestNode['client']['run']>[1] => ({
  value: { write },
  namespace: 'guest',
  action_name: '/guest/f',
  activation_id: id,
  transaction_id: 't',
  deadline: String(Date.now() + 60_000),
  timeoutMs: 30_000,
});

describe("the node agent's run path", { timeout: 240_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  const state: Held = { events: [], hold: false, release: () => undefined, onHeld: () => undefined, lendWhileIdle: false };

  before(async () => {
    skip = await dockerReady();
    if (skip === null) node = await startTestNode(holdingManager(state), { node: `runpath${String(process.pid)}` });
  });
  after(async () => {
    state.release();
    await node?.close();
  });

  test('a container no move can reach runs before its invocation-start is answered; a first run, or one a queued move may reach, waits', { timeout: 120_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const { client } = node;
    const c = await client.createContainer({ tenant: 'alice', function: 'f', memoryBytes: 128 * MiB });
    assert.equal((await client.init(c.id, { value: { code: ACTION } })).statusCode, 200);

    // The first run has no baseline yet: the start is awaited, then the counters read.
    const first = await client.run(c.id, runReq(true, 'r1'));
    assert.equal(first.statusCode, 200);
    assert.ok(first.ephemera.stats.fast_writes > 0, JSON.stringify(first.ephemera.stats));
    assert.equal(first.ephemera.pool, 'harvest');

    // The second: its start is held by the Manager, and the run still answers.
    state.hold = true;
    let heldSeen = false;
    state.onHeld = () => { heldSeen = true; };
    const second = await client.run(c.id, runReq(false, 'r2'));
    assert.equal(heldSeen, true, 'the Manager got the invocation-start');
    const startsBefore = state.events.filter((e) => e.kind === 'invocation-start').length;
    assert.equal(second.statusCode, 200);
    assert.equal(second.ephemera.stats.fast_writes, 0, `this run wrote nothing; its counters are its own: ${JSON.stringify(second.ephemera.stats)}`);
    assert.equal(second.ephemera.pool, 'harvest', 'the pool the start put it in, known from the last end');
    assert.ok(!state.events.some((e, n) => e.kind === 'invocation-end' && n >= state.events.findLastIndex((x) => x.kind === 'invocation-start')), 'its end waits behind its held start');
    state.hold = false;
    state.release();

    // The third writes again: its counters are its own too, and start and end alternate.
    const third = await client.run(c.id, runReq(true, 'r3'));
    assert.ok(third.ephemera.stats.fast_writes > 0, JSON.stringify(third.ephemera.stats));
    assert.equal(state.events.filter((e) => e.kind === 'invocation-start').length, startsBefore + 1);
    const kinds = state.events.filter((e) => (e.kind === 'invocation-start' || e.kind === 'invocation-end') && e.id === c.id).map((e) => e.kind);
    for (let n = 0; n < kinds.length; n++) assert.equal(kinds[n], n % 2 === 0 ? 'invocation-start' : 'invocation-end', kinds.join(','));

    // The runtime answers another client while the agent keeps its connection open.
    const socket = join(node.stateDir, 'c', (await client.listContainers('alice')).find((v) => v.id === c.id)?.name.split('-').pop() ?? '', 'action.sock');
    assert.equal((await actionRequest(socket, 'GET', '/health', undefined, 5000)).statusCode, 200);

    // A first run (no baseline yet) waits for its start. Meanwhile the tenant's queue is busy, but
    // idle containers do not lend: nothing queued can reach the warm one, which runs at once.
    const big = await client.createContainer({ tenant: 'alice', function: 'f', memoryBytes: 128 * MiB });
    assert.equal((await client.init(big.id, { value: { code: ACTION } })).statusCode, 200);
    const order: string[] = [];
    await heldWhile(state, () => client.run(big.id, runReq(false, 'b1')).then(() => { order.push('big'); }), async () => {
      await client.run(c.id, runReq(false, 'c4'));
      order.push('warm');
    });
    assert.deepEqual(order, ['warm', 'big']);

    // When idle containers lend, a busy queue may hold a move that reaches the warm one: it waits.
    state.lendWhileIdle = true;
    await client.run(c.id, runReq(false, 'c5')); // its bookkeeping now knows
    order.length = 0;
    // big is warm now: its run goes at once, and its start, held, keeps the queue busy.
    await heldWhile(state, async () => {
      await client.run(big.id, runReq(false, 'b2'));
      order.push('big');
    }, async () => {
      const r = client.run(c.id, runReq(false, 'c6')).then(() => { order.push('warm'); });
      await new Promise((res) => setTimeout(res, 500));
      order.push('checked');
      return r;
    });
    assert.deepEqual(order, ['big', 'checked', 'warm'], 'the warm run waited for the held start');
    state.lendWhileIdle = false;
    await client.removeContainer(big.id);
    await client.removeContainer(c.id);
  });

  test("each run's peaks are its own window of the daemon's: a scratch file deleted at once counts, a later smaller run reports its own", { timeout: 120_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const { client } = node;
    const c = await client.createContainer({ tenant: 'alice', function: 'scratch', memoryBytes: 128 * MiB });
    try {
      assert.equal((await client.init(c.id, { value: { code: SCRATCH } })).statusCode, 200);
      const run = async (mb: number, id: string): Promise<NonNullable<Awaited<ReturnType<typeof client.run>>['ephemera']>['stats']> => {
        const r = await client.run(c.id, { ...runReq(false, id), value: { scratch: mb } });
        assert.equal(r.statusCode, 200, JSON.stringify(r.body));
        return r.ephemera.stats;
      };
      const big = await run(24, 's1');
      assert.equal(big.peaks, 'daemon', JSON.stringify(big));
      assert.ok((big.filePeakBytes ?? 0) >= 24 * MiB && big.bytes_in_memory_peak >= 24 * MiB, `24 MiB written and deleted: ${JSON.stringify(big)}`);
      // The next run's window opened after the first: its peak is its own 2 MiB, not the 24 before.
      const small = await run(2, 's2');
      assert.ok((small.filePeakBytes ?? 0) >= 2 * MiB && (small.filePeakBytes ?? 0) < 24 * MiB, `2 MiB written and deleted: ${JSON.stringify(small)}`);
      assert.ok(small.bytes_in_memory_peak >= 2 * MiB && small.bytes_in_memory_peak < 24 * MiB, JSON.stringify(small));
      // A run without files: no file peak, and no reserve for files in its own peak.
      const none = await run(0, 's3');
      assert.equal(none.filePeakBytes, 0, JSON.stringify(none));
      assert.ok((none.ownPeakBytes ?? 0) > 0 && (none.ownPeakBytes ?? 0) < 128 * MiB, JSON.stringify(none));
    } finally {
      await client.removeContainer(c.id);
    }
  });
});

describe("the node agent's warm runs with the real Manager core", { timeout: 240_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  const calls = { snapshots: 0, withStanding: 0 };
  let real: TenantManagerPort | undefined;

  /** The real core in process, counting the snapshots the agent asks for. */
  const counting = async (tenant: string): Promise<TenantManagerPort> => {
    const m = await inProcessManagers(managerDefaults('tenant'))(tenant);
    real = m;
    return {
      apply: (e) => m.apply(e),
      applyWithStanding: (e) => {
        calls.withStanding++;
        return (m.applyWithStanding ?? ((x: ManagerEvent) => m.apply(x).then((moves) => ({ moves, standing: undefined }))))(e);
      },
      recover: (live) => m.recover(live),
      snapshot: () => {
        calls.snapshots++;
        return m.snapshot();
      },
      close: () => m.close(),
    };
  };

  before(async () => {
    skip = await dockerReady();
    if (skip === null) node = await startTestNode(counting, { node: `warmcore${String(process.pid)}` });
  });
  after(async () => {
    await node?.close();
  });

  test('after an invocation-end that moved nothing the agent asks for no snapshot; each reply still has the pool a snapshot shows, and its own counters', { timeout: 120_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const { client } = node;
    const c = await client.createContainer({ tenant: 'carol', function: 'f', memoryBytes: 128 * MiB, profile: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 } });
    assert.equal((await client.init(c.id, { value: { code: ACTION } })).statusCode, 200);
    const poolNow = async (): Promise<PoolName | undefined> => {
      await client.listContainers(); // waits for the last run's bookkeeping (and counts one snapshot)
      const snap = await real?.snapshot(); // the core itself, not counted
      return snap?.containers.find((x) => x.id === c.id)?.pool;
    };
    const first = await client.run(c.id, runReq(true, 'w1'));
    assert.equal(first.statusCode, 200);
    await client.listContainers();
    const afterFirst = calls.snapshots;
    for (let n = 2; n <= 5; n++) {
      const write = n % 2 === 1;
      const r = await client.run(c.id, runReq(write, `w${String(n)}`));
      assert.equal(r.statusCode, 200);
      assert.equal(r.ephemera.stats.peaks, 'daemon');
      if (write) assert.ok(r.ephemera.stats.fast_writes > 0, JSON.stringify(r.ephemera.stats));
      else assert.equal(r.ephemera.stats.fast_writes, 0, `run ${String(n)} wrote nothing: its counters are its own: ${JSON.stringify(r.ephemera.stats)}`);
      assert.equal(r.ephemera.pool, await poolNow(), 'the pool the Manager shows');
    }
    // listContainers itself takes one snapshot per call (its view); the runs took none.
    assert.equal(calls.snapshots - afterFirst, 4, `only the four listings asked for a snapshot (${String(calls.snapshots - afterFirst)})`);
    assert.ok(calls.withStanding >= 8, 'starts and ends went through the answer with the standing');
  });
});
