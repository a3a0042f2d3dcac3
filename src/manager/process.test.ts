/**
 * The Manager as a real child process on a real unix socket: start, events and moves, errors at the
 * edge, the 0700 directory, a SIGKILL and a restart that recovers from live limits, and that a
 * Manager dies with the agent that started it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isEphemeraError } from '../core/errors.js';
import { MANAGER_MAIN, spawnManager, type ManagerProcess } from './client.js';
import type { ContainerInfo, ManagerConfig, Move } from './types.js';

const MiB = 1024 * 1024;
const T = { timeout: 30_000 };

const CONFIG: ManagerConfig = {
  tenant: 'acme',
  sharing: 'tenant',
  harvestThresholdBytes: 16 * MiB,
  donorMarginBytes: 8 * MiB,
  engineMinimumBytes: 6 * MiB,
  lendWhileIdle: false,
};

const cpu: ContainerInfo = { id: 'acme-cpu', tenant: 'acme', fn: 'factorial', initialQuota: 512 * MiB, profile: { ownPeakBytes: 4 * MiB, filePeakBytes: 0 } };
const io: ContainerInfo = { id: 'acme-io', tenant: 'acme', fn: 'rw', initialQuota: 64 * MiB, profile: { ownPeakBytes: 8 * MiB, filePeakBytes: 64 * MiB } };

/** Every Manager a test started; killed at the end of the test even when it failed. */
const live = new Set<ManagerProcess>();

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'manager-proc-'));
  try {
    await fn(dir);
  } finally {
    await Promise.all([...live].map((p) => p.kill()));
    live.clear();
    await rm(dir, { recursive: true, force: true });
  }
}

async function started(dir: string, config: ManagerConfig = CONFIG): Promise<ManagerProcess> {
  const p = await spawnManager({ config, socketDir: join(dir, 'sock'), requestTimeoutMs: 5000 });
  live.add(p);
  return p;
}

test('a Manager process takes events over its socket and answers with moves', T, async () => {
  await withDir(async (dir) => {
    const m = await started(dir);
    try {
      assert.equal(statSync(join(dir, 'sock')).mode & 0o777, 0o700, 'socket directory is 0700');
      const hello = await m.client.hello();
      assert.equal(hello.tenant, 'acme');
      assert.equal(hello.pid, m.pid);
      await m.client.apply({ kind: 'register', container: cpu });
      await m.client.apply({ kind: 'register', container: io });
      await m.client.apply({ kind: 'invocation-start', id: 'acme-cpu' });
      const reply = await m.client.apply({ kind: 'invocation-start', id: 'acme-io' }, 1000);
      assert.deepEqual(reply.moves, [{ seq: 1, from: 'acme-cpu', to: 'acme-io', bytes: 8 * MiB, reason: 'lend' }]);
      assert.ok(reply.decisionNs > 0);
      const snap = await m.client.snapshot();
      assert.equal(snap.totals.lentBytes, 8 * MiB);
      assert.equal(snap.containers.find((c) => c.id === 'acme-io')?.runningSince, 1000);
    } finally {
      assert.equal(await m.stop(), 0, 'SIGTERM ends it cleanly');
    }
    assert.ok(!existsSync(m.socketPath), 'a clean stop removes the socket');
  });
});

test('bad requests get a clear error code and change nothing', T, async () => {
  await withDir(async (dir) => {
    const m = await started(dir);
    try {
      await m.client.apply({ kind: 'register', container: cpu });
      // Another tenant's container: refused by the core.
      await assert.rejects(m.client.apply({ kind: 'register', container: { ...io, tenant: 'other' } }), (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT') && /tenant "other"/.test(e.message));
      // Not a valid event: refused at the edge by the schema.
      const bogus = { kind: 'shortfall', id: 'acme-cpu', neededBytes: '12' } as unknown as Parameters<typeof m.client.apply>[0];
      await assert.rejects(m.client.apply(bogus), (e) => isEphemeraError(e, 'EPH_MANAGER_PROTOCOL') && /neededBytes/.test(e.message));
      const unknownKind = { kind: 'explode', id: 'x' } as unknown as Parameters<typeof m.client.apply>[0];
      await assert.rejects(m.client.apply(unknownKind), (e) => isEphemeraError(e, 'EPH_MANAGER_PROTOCOL'));
      assert.equal((await m.client.snapshot()).totals.containers, 1);
    } finally {
      await m.stop();
    }
  });
});

test('a bad config or a busy socket directory fails the start with its reason', T, async () => {
  await withDir(async (dir) => {
    await assert.rejects(started(dir, { ...CONFIG, sharing: 'cluster' as ManagerConfig['sharing'] }), (e) => isEphemeraError(e, 'EPH_MANAGER_START') && /EPH_MANAGER_CONFIG: sharing/.test(e.message));
    const m = await started(dir);
    try {
      await assert.rejects(started(dir), (e) => isEphemeraError(e, 'EPH_MANAGER_START') && /already serves/.test(e.message));
    } finally {
      await m.stop();
    }
    await writeFile(join(dir, 'file'), '');
    await assert.rejects(spawnManager({ config: CONFIG, socketDir: join(dir, 'file') }), (e) => isEphemeraError(e, 'EPH_MANAGER_START'));
  });
});

test('SIGKILL mid-move: a new Manager process recovers from the live limits and returns every lent byte', T, async () => {
  await withDir(async (dir) => {
    const first = await started(dir);
    await first.client.apply({ kind: 'register', container: cpu });
    await first.client.apply({ kind: 'register', container: io });
    await first.client.apply({ kind: 'invocation-start', id: 'acme-cpu' });
    const { moves } = await first.client.apply({ kind: 'invocation-start', id: 'acme-io' });
    assert.equal(moves.length, 1);
    // The agent lowered the giver's limit (step 2), then the Manager was killed before step 3.
    const limits = new Map([
      ['acme-cpu', { info: cpu, limitBytes: cpu.initialQuota - 8 * MiB }],
      ['acme-io', { info: io, limitBytes: io.initialQuota }],
    ]);
    assert.equal(await first.kill(), 'SIGKILL');
    assert.ok(existsSync(first.socketPath), 'a killed Manager leaves its socket behind');

    const second = await started(dir);
    try {
      assert.notEqual(second.pid, first.pid);
      const restore = await second.client.recover([...limits.values()]);
      assert.deepEqual(restore, [{ seq: 1, from: null, to: 'acme-cpu', bytes: 8 * MiB, reason: 'restore' }]);
      for (const m of restore as readonly Move[]) {
        const to = m.to === null ? undefined : limits.get(m.to);
        if (to !== undefined) to.limitBytes += m.bytes;
      }
      for (const { info, limitBytes } of limits.values()) assert.equal(limitBytes, info.initialQuota);
      const snap = await second.client.snapshot();
      assert.equal(snap.totals.lentBytes, 0);
      assert.equal(snap.totals.limitBytes, snap.totals.initialQuotaBytes);
      // The agent replays the invocation still in flight; lending resumes.
      await second.client.apply({ kind: 'invocation-start', id: 'acme-cpu' });
      const again = await second.client.apply({ kind: 'invocation-start', id: 'acme-io' });
      assert.equal(again.moves[0]?.reason, 'lend');
    } finally {
      await second.stop();
    }
  });
});

test('a Manager exits when the agent that started it dies (its stdin pipe ends)', T, async () => {
  await withDir(async (dir) => {
    // A stand-in agent: a node process that starts the Manager with a stdin pipe, prints its pid, and is SIGKILLed.
    const agentCode = `
      const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, [${JSON.stringify(MANAGER_MAIN)}, ${JSON.stringify(join(dir, 'sock'))}, ${JSON.stringify(JSON.stringify(CONFIG))}], { stdio: ['pipe', 'pipe', 'inherit'] });
      c.stdout.on('data', (d) => process.stdout.write(d));
    `;
    const agent = spawn(process.execPath, ['-e', agentCode], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<{ pid: number }>((resolve, reject) => {
      let out = '';
      agent.stdout.setEncoding('utf8');
      agent.stdout.on('data', (c: string) => {
        out += c;
        if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as { pid: number });
      });
      agent.once('exit', () => {
        reject(new Error(`agent exited early: ${out}`));
      });
    });
    agent.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    let alive = true;
    while (alive && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        process.kill(ready.pid, 0);
      } catch {
        alive = false;
      }
    }
    if (alive) process.kill(ready.pid, 'SIGKILL');
    assert.equal(alive, false, 'the Manager outlived its agent by 10 s');
  });
});
