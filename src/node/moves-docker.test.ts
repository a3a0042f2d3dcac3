/**
 * Memory moved live between two real containers of one tenant, through the node agent's API:
 * the safe order of every move, the tenant invariant checked from the cgroup files after every
 * step, the recipient's files kept in memory thanks to the loan (and not without it), the loan
 * returned at the end, Docker's recorded limits brought in line; and a Manager that asks for a
 * cross-tenant move is refused with nothing moved.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Move } from '../manager/types.js';
import type { RunReply } from './api.js';
import { inProcessManagers, managerDefaults, processManagers } from './managers.js';
import type { MoveStep } from './moves.js';
import type { ManagerFactory } from './tenants.js';
import { dockerReady, startTestNode, type TestNode } from './testkit.js';

const MiB = 1024 * 1024;

/** Writes two files of `mb` MiB each under /tmp and reads them back. */
const WRITER = `
def main(args):
    mb = int(args["mb"])
    block = b"e" * (1024 * 1024)
    for name in ("a", "b"):
        with open("/tmp/" + name, "wb") as f:
            for _ in range(mb):
                f.write(block)
    total = 0
    for name in ("a", "b"):
        with open("/tmp/" + name, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
    # The files stay: at the end of the invocation the loan goes back, and the daemon moves them
    # to disk to fit its own quota again.
    return {"read": total}
`;

/** The limit in force for a container: its cgroup file, read synchronously (inside onStep). */
function cgroupLimit(cgroupDir: string): number {
  const file = existsV2(cgroupDir) ? 'memory.max' : 'memory.limit_in_bytes';
  return Number(readFileSync(join(cgroupDir, file), 'utf8').trim());
}

function existsV2(dir: string): boolean {
  try {
    readFileSync(join(dir, 'memory.max'));
    return true;
  } catch {
    return false;
  }
}

describe('moves between real containers', { timeout: 300_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  /** Cgroup directories of the tenant's containers, by id, for the invariant. */
  const cgroups = new Map<string, { dir: string; tenant: string; initial: number }>();
  const violations: string[] = [];

  function checkInvariant(tenant: string, step: MoveStep): void {
    let sum = 0;
    let initial = 0;
    for (const c of cgroups.values()) {
      if (c.tenant !== tenant) continue;
      sum += cgroupLimit(c.dir);
      initial += c.initial;
    }
    if (sum > initial) violations.push(`after ${step.kind} of ${step.id.slice(0, 12)}: tenant ${tenant} limits sum to ${sum} > ${initial}`);
  }

  before(async () => {
    skip = await dockerReady();
    if (skip === null) node = await startTestNode(inProcessManagers(managerDefaults('tenant')), { onStep: checkInvariant });
  });
  after(async () => {
    await node?.close();
  });

  async function track(id: string, tenant: string, initial: number): Promise<void> {
    if (node === undefined) throw new Error('no node');
    const state = await node.engine.inspect(id);
    const { findMemoryCgroup } = await import('../limiter/detect.js');
    cgroups.set(id, { dir: (await findMemoryCgroup({ pid: state.pid })).dir, tenant, initial });
  }

  test('a running donor lends to a recipient in the safe order; its files stay in memory; the loan comes back', { timeout: 200_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const client = node.client;
    const donor = await client.createContainer({ tenant: 'acme', function: 'factorial', memoryBytes: 256 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 0 } });
    // The paper's micro benchmark: two files of 32 MiB, more than its quota leaves room for.
    const recipient = await client.createContainer({ tenant: 'acme', function: 'io', memoryBytes: 80 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 80 * MiB } });
    // The same function alone in a tenant of its own: nobody to borrow from.
    const alone = await client.createContainer({ tenant: 'solo', function: 'io', memoryBytes: 80 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 80 * MiB } });
    await track(donor.id, 'acme', 256 * MiB);
    await track(recipient.id, 'acme', 80 * MiB);
    for (const c of [recipient, alone]) assert.equal((await client.init(c.id, { value: { code: WRITER } })).statusCode, 200);

    const views = await client.listContainers('acme');
    assert.deepEqual(views.map((v) => [v.function, v.pool]).sort(), [['factorial', 'harvest'], ['io', 'allocation']]);

    // The donor runs (the paper lends while the donor runs); the recipient starts after it.
    await client.invocationStart(donor.id);
    node.steps.length = 0;
    const run: RunReply = await client.run(recipient.id, { value: { mb: 32 }, timeoutMs: 60_000 });
    assert.equal(run.statusCode, 200, JSON.stringify(run.body));
    assert.deepEqual(run.body, { read: 2 * 32 * MiB });
    assert.equal(run.ephemera.pool, 'allocation');
    assert.ok(run.ephemera.grantedBytes > 80 * MiB, `the recipient ran with more than its quota: ${run.ephemera.grantedBytes}`);

    // The order of the lending move, and of the return at the end (the run's invocation-end and
    // its moves follow its reply; a listing waits for them).
    await client.listContainers('acme');
    // The giver's own closing grow may go out with the receiver's raise; the rest is strict.
    const kinds = node.steps.map((s) => `${s.step.kind}:${s.step.id === donor.id ? 'donor' : 'recipient'}`);
    assert.equal(kinds.length, 10, kinds.join(' '));
    const lend = kinds.slice(0, 5);
    const ret = kinds.slice(5);
    const strict = (ks: string[], giver: string): string[] => ks.filter((k) => k !== `grow:${giver}`);
    assert.deepEqual(strict(lend, 'donor'), ['shrink:donor', 'lower:donor', 'raise:recipient', 'grow:recipient'], kinds.join(' '));
    assert.ok(lend.indexOf('grow:donor') > lend.indexOf('lower:donor'), kinds.join(' '));
    assert.deepEqual(strict(ret, 'recipient'), ['shrink:recipient', 'lower:recipient', 'raise:donor', 'grow:donor'], kinds.join(' '));
    assert.ok(ret.indexOf('grow:recipient') > ret.indexOf('lower:recipient'), kinds.join(' '));
    assert.deepEqual(violations, []);

    // Thanks to the loan its files stayed in memory; alone, the same run had to evict.
    assert.equal(run.ephemera.stats.evictions, 0, JSON.stringify(run.ephemera.stats));
    assert.ok(run.ephemera.stats.bytes_in_memory_peak >= 2 * 32 * MiB, JSON.stringify(run.ephemera.stats));
    const lonely = await client.run(alone.id, { value: { mb: 32 }, timeoutMs: 60_000 });
    assert.equal(lonely.statusCode, 200);
    assert.equal(lonely.ephemera.grantedBytes, 80 * MiB);
    assert.ok(lonely.ephemera.stats.evictions > 0 || lonely.ephemera.stats.bytes_in_memory_peak < 2 * 32 * MiB, `without a loan the files did not all fit: ${JSON.stringify(lonely.ephemera.stats)}`);

    // The loan came back at the recipient's end; the donor ends too.
    await client.invocationEnd(donor.id, { ownPeakBytes: 24 * MiB, filePeakBytes: 0 });
    const back = await client.listContainers('acme');
    for (const v of back) {
      assert.equal(v.grantedBytes, v.initialBytes, `${v.function} is back at its quota`);
      assert.deepEqual([v.lentTo, v.borrowedFrom], [[], []]);
    }
    await node.agent.settleRecords();
    for (const id of [donor.id, recipient.id]) {
      const cg = cgroups.get(id);
      assert.ok(cg !== undefined);
      assert.equal((await node.engine.inspect(id)).memory, cgroupLimit(cg.dir), "Docker's record follows the cgroup");
    }
    for (const c of [donor, recipient, alone]) await client.removeContainer(c.id);
    for (const id of [donor.id, recipient.id]) cgroups.delete(id);
  });
});

describe('a Manager cannot move memory across tenants', { timeout: 200_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  const victim: { id: string } = { id: '' };

  /** The real Manager, except that tenant "evil"'s answers to invocation-start add raids on `victim`. */
  const buggy: ManagerFactory = async (tenant) => {
    const real = await inProcessManagers(managerDefaults('tenant'))(tenant);
    if (tenant !== 'evil') return real;
    // Only the raw apply: the standing variant would bypass the raids.
    return {
      recover: (live) => real.recover(live),
      snapshot: () => real.snapshot(),
      close: () => real.close(),
      apply: async (event) => {
        const moves = await real.apply(event);
        if (event.kind !== 'invocation-start') return moves;
        const raid: Move[] = [
          { seq: 1_000_000, from: victim.id, to: event.id, bytes: 16 * MiB, reason: 'lend' },
          { seq: 1_000_001, from: event.id, to: victim.id, bytes: 8 * MiB, reason: 'lend' },
        ];
        return [...moves, ...raid];
      },
    };
  };

  before(async () => {
    skip = await dockerReady();
    if (skip === null) node = await startTestNode(buggy);
  });
  after(async () => {
    await node?.close();
  });

  test('the agent refuses the move, says why, and no limit changes', { timeout: 150_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const good = await node.client.createContainer({ tenant: 'honest', function: 'f', memoryBytes: 128 * MiB });
    victim.id = good.id;
    const evil = await node.client.createContainer({ tenant: 'evil', function: 'g', memoryBytes: 64 * MiB });
    const reply = await node.client.invocationStart(evil.id);
    assert.deepEqual(reply.moves, []);
    const refusal = reply.refused[0];
    assert.ok(refusal !== undefined, 'the raid was refused');
    assert.equal(refusal.code, 'EPH_NODE_CROSS_TENANT');
    assert.match(refusal.message, /belongs to tenant honest, not to evil/);
    assert.deepEqual(node.steps, [], 'not one step was taken');
    const limits = Object.fromEntries((await node.client.listContainers()).map((v) => [v.tenant, v.grantedBytes]));
    assert.deepEqual(limits, { honest: 128 * MiB, evil: 64 * MiB });
    await node.client.removeContainer(evil.id);
    await node.client.removeContainer(good.id);
  });
});

describe('a Manager process killed with a loan out', { timeout: 200_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  let managers: ReturnType<typeof processManagers> | undefined;
  let root = '';

  before(async () => {
    skip = await dockerReady();
    if (skip !== null) return;
    root = await mkdtemp('/tmp/eph-node-m-');
    managers = processManagers(managerDefaults('tenant'), root);
    node = await startTestNode(managers.factory);
  });
  after(async () => {
    await node?.close();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  test('is replaced on the next event, and every lent byte goes back first', { timeout: 150_000 }, async (t) => {
    if (skip !== null || node === undefined || managers === undefined) return t.skip(skip ?? 'no node');
    const client = node.client;
    const donor = await client.createContainer({ tenant: 'acme', function: 'cpu', memoryBytes: 192 * MiB, profile: { ownPeakBytes: 20 * MiB, filePeakBytes: 0 } });
    const recipient = await client.createContainer({ tenant: 'acme', function: 'io', memoryBytes: 64 * MiB, profile: { ownPeakBytes: 20 * MiB, filePeakBytes: 80 * MiB } });
    await client.invocationStart(donor.id);
    const lent = await client.invocationStart(recipient.id);
    assert.ok(lent.moves.length > 0, 'a loan is out');
    const pid = managers.pids().get('acme');
    assert.ok(pid !== undefined && pid !== process.pid, "acme's Manager is a process of its own");
    process.kill(pid, 'SIGKILL');
    await sleep(200);
    // The recipient's end arrives at a Manager that is gone.
    const reply = await client.invocationEnd(recipient.id, { ownPeakBytes: 20 * MiB, filePeakBytes: 80 * MiB });
    assert.ok(reply.moves.some((m) => m.reason === 'restore'), JSON.stringify(reply));
    for (const v of await client.listContainers('acme')) {
      assert.equal(v.grantedBytes, v.initialBytes, `${v.function} is back at its quota`);
      assert.deepEqual([v.lentTo, v.borrowedFrom], [[], []]);
    }
    assert.notEqual(managers.pids().get('acme'), pid, 'a new Manager process serves acme');
    for (const c of [donor, recipient]) await client.removeContainer(c.id);
  });
});

/** Sleeps, then grows its own memory by 8 MiB every 50 ms (160 MiB/s) and holds it. */
const GROWER = `
import time
def main(args):
    time.sleep(args["wait"])
    held = []
    for _ in range(args["steps"]):
        held.append(bytearray(b"g") * (8 << 20))
        time.sleep(0.05)
    return {"heldMiB": 8 * len(held)}
`;

describe('the safeguard: a donor that outgrows its profile gets its memory back', { timeout: 200_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;
  const stepTimes: { kind: string; id: string; at: number }[] = [];

  before(async () => {
    skip = await dockerReady();
    if (skip === null) {
      node = await startTestNode(inProcessManagers(managerDefaults('tenant')), {
        onStep: (_tenant, step) => stepTimes.push({ kind: step.kind, id: step.id, at: Date.now() }),
      });
    }
  });
  after(async () => {
    await node?.close();
  });

  test('its daemon reports the shortfall, the agent forwards it, the loan comes back before the limit: no OOM kill', { timeout: 150_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const client = node.client;
    const donor = await client.createContainer({ tenant: 'acme', function: 'grower', memoryBytes: 256 * MiB, profile: { ownPeakBytes: 20 * MiB, filePeakBytes: 0 } });
    const recipient = await client.createContainer({ tenant: 'acme', function: 'io', memoryBytes: 64 * MiB, profile: { ownPeakBytes: 20 * MiB, filePeakBytes: 80 * MiB } });
    assert.equal((await client.init(donor.id, { value: { code: GROWER } })).statusCode, 200);
    // The donor's run starts (it lends while it runs), then the recipient starts and borrows.
    const running = client.run(donor.id, { value: { wait: 1.5, steps: 27 }, timeoutMs: 60_000 });
    await sleep(500);
    const lent = await client.invocationStart(recipient.id);
    const loan = lent.moves.find((m) => m.from === donor.id && m.to === recipient.id);
    assert.ok(loan !== undefined && loan.bytes >= 32 * MiB, `the donor lent enough that its growth needs it back: ${JSON.stringify(lent)}`);
    const run = await running;
    const done = Date.now();
    assert.equal(run.statusCode, 200, JSON.stringify(run));
    assert.deepEqual(run.body, { heldMiB: 216 });
    assert.equal(run.oom, undefined, 'not OOM-killed');
    // The donor's limit went back up while its run was still going: the safeguard, not its end.
    const raised = stepTimes.find((s) => s.kind === 'raise' && s.id === donor.id);
    assert.ok(raised !== undefined && raised.at < done, `the donor got its memory back during its run: ${JSON.stringify(stepTimes)}`);
    // The agent's journal (GET /v1/events) has all of it: the lend, the donor's shortfall, the
    // safeguard's move back to it; the controller's /metrics and dashboard read them from there.
    const journal = (await client.events(0)).events;
    assert.ok(journal.some((e) => e.type === 'move' && e.reason === 'lend' && e.from === donor.id && e.to === recipient.id), JSON.stringify(journal));
    assert.ok(journal.some((e) => e.type === 'shortfall' && e.container === donor.id && e.tenant === 'acme'), JSON.stringify(journal));
    assert.ok(journal.some((e) => e.type === 'move' && e.reason === 'safeguard' && e.to === donor.id && e.bytes > 0), JSON.stringify(journal));
    assert.ok(!journal.some((e) => e.type === 'oom-kill'), JSON.stringify(journal));
    await client.invocationEnd(recipient.id, { ownPeakBytes: 20 * MiB, filePeakBytes: 80 * MiB });
    for (const v of await client.listContainers('acme')) assert.equal(v.grantedBytes, v.initialBytes, `${v.function} is back at its quota`);
    for (const c of [donor, recipient]) await client.removeContainer(c.id);
  });
});
