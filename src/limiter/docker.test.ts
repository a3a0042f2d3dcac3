/**
 * DockerLimiter: first against a stand-in Engine API on a unix socket (the process seam), which
 * records what reached "Docker"; then against the real engine with a busybox container.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

import { DockerLimiter } from './docker.js';
import { DockerEngine } from '../container/engine.js';
import { busyboxOnRealEngine } from '../container/testimage.js';
import { isEphemeraError } from '../core/errors.js';

const MiB = 1024 * 1024;

interface StandIn {
  engine: DockerEngine;
  requests: Array<{ method: string; url: string; body: unknown }>;
  state: { pid: number; running: boolean; memory: number; oomKilled: boolean };
  close(): Promise<void>;
}

async function standIn(): Promise<StandIn> {
  const dir = await mkdtemp(join(tmpdir(), 'eph-docker-'));
  const socketPath = join(dir, 'docker.sock');
  const requests: StandIn['requests'] = [];
  const state = { pid: 0, running: false, memory: 128 * MiB, oomKilled: false };
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      const body: unknown = text === '' ? null : JSON.parse(text);
      requests.push({ method: req.method ?? '', url: req.url ?? '', body });
      const send = (status: number, obj: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
      };
      if (req.url === '/containers/fn1/json') {
        return send(200, { Id: 'fn1', State: { Pid: state.pid, Running: state.running, OOMKilled: state.oomKilled, ExitCode: 0 }, HostConfig: { Memory: state.memory, MemorySwap: state.memory } });
      }
      if (req.url === '/containers/fn1/update' && req.method === 'POST') {
        state.memory = (body as { Memory: number }).Memory;
        return send(200, { Warnings: [] });
      }
      return send(404, { message: 'No such container: nope' });
    });
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return {
    engine: new DockerEngine({ socketPath }),
    requests,
    state,
    close: async () => {
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('setLimit sends Memory and MemorySwap together and equal; null and bad values are refused', async () => {
  const s = await standIn();
  try {
    const l = new DockerLimiter(s.engine, 'fn1');
    assert.equal(l.kind, 'docker');
    assert.equal(await l.getLimit(), 128 * MiB);
    await l.setLimit(64 * MiB);
    assert.deepEqual(s.requests.at(-1), { method: 'POST', url: '/containers/fn1/update', body: { Memory: 64 * MiB, MemorySwap: 64 * MiB } });
    assert.equal(await l.getLimit(), 64 * MiB);
    const before = s.requests.length;
    await assert.rejects(l.setLimit(null), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
    await assert.rejects(l.setLimit(-1), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
    assert.equal(s.requests.length, before);
  } finally {
    await s.close();
  }
});

test('readings come from the memory cgroup of the container\'s init pid', async (t) => {
  const s = await standIn();
  try {
    // Stand in for the container's init with this very process: its cgroup is real.
    Object.assign(s.state, { pid: process.pid, running: true });
    const l = new DockerLimiter(s.engine, 'fn1');
    let usage: number;
    try {
      usage = await l.getUsage();
    } catch (err) {
      t.skip(`no readable memory cgroup on this machine: ${(err as Error).message}`);
      return;
    }
    assert.ok(usage > MiB, String(usage));
    assert.equal(await l.oomKills(), 0);
  } finally {
    await s.close();
  }
});

test('a stopped container: usage is a clear error, OOM kills come from Docker\'s flag', async () => {
  const s = await standIn();
  try {
    const l = new DockerLimiter(s.engine, 'fn1');
    await assert.rejects(l.getUsage(), (err) => isEphemeraError(err, 'EPH_DOCKER_API') && err.message.includes('not running'));
    assert.equal(await l.oomKills(), 0);
    s.state.oomKilled = true;
    assert.equal(await l.oomKills(), 1);
    await assert.rejects(new DockerLimiter(s.engine, 'nope').getLimit(), (err) => isEphemeraError(err, 'EPH_DOCKER_API') && err.message.includes('404'));
  } finally {
    await s.close();
  }
});

describe('DockerLimiter against the real engine', () => {
  const engine = new DockerEngine();
  let image = '';
  let skip: string | null = null;

  before(async () => {
    ({ skip, image } = await busyboxOnRealEngine(engine));
  });

  test('reads and changes the limit of a running container; usage and peak from its cgroup', async (t) => {
    if (skip !== null) return t.skip(`no Docker engine: ${skip}`);
    const id = await engine.create({ image, cmd: ['sleep', '600'], memory: 64 * MiB });
    try {
      await engine.start(id);
      const l = new DockerLimiter(engine, id);
      assert.equal(await l.getLimit(), 64 * MiB);
      await l.setLimit(96 * MiB);
      assert.equal(await l.getLimit(), 96 * MiB);
      const state = await engine.inspect(id);
      assert.equal(state.memorySwap, 96 * MiB);
      await l.setLimit(48 * MiB);
      assert.equal(await l.getLimit(), 48 * MiB);
      const usage = await l.getUsage();
      assert.ok(usage > 0 && usage < 48 * MiB, String(usage));
      const peak = await l.getPeak();
      assert.ok(peak === null || peak >= usage);
      assert.equal(await l.oomKills(), 0);
    } finally {
      await engine.remove(id);
    }
  });

  test('a limit below unreclaimable usage is EPH_LIMIT_BELOW_USAGE and leaves the limit alone', async (t) => {
    if (skip !== null) return t.skip(`no Docker engine: ${skip}`);
    // 40 MiB on a tmpfs: shmem, which cannot be reclaimed without swap.
    const id = await engine.create({ image, cmd: ['sh', '-c', 'dd if=/dev/zero of=/scratch/f bs=1M count=40 && echo filled && sleep 600'], memory: 64 * MiB, mounts: [{ type: 'tmpfs', target: '/scratch' }] });
    try {
      await engine.start(id);
      for (let i = 0; i < 100 && !(await engine.logs(id)).stdout.includes('filled'); i++) await new Promise((r) => setTimeout(r, 50));
      const l = new DockerLimiter(engine, id);
      await assert.rejects(l.setLimit(16 * MiB), (err) => isEphemeraError(err, 'EPH_LIMIT_BELOW_USAGE') && err.message.includes('shrink'));
      assert.equal(await l.getLimit(), 64 * MiB);
      assert.equal(await l.oomKills(), 0);
    } finally {
      await engine.remove(id);
    }
  });

  test('an OOM kill inside the container is counted', async (t) => {
    if (skip !== null) return t.skip(`no Docker engine: ${skip}`);
    const id = await engine.create({ image, cmd: ['sh', '-c', 'dd if=/dev/zero of=/scratch/f bs=1M count=64; sleep 600'], memory: 32 * MiB, mounts: [{ type: 'tmpfs', target: '/scratch' }] });
    try {
      await engine.start(id);
      const l = new DockerLimiter(engine, id);
      let kills = 0;
      for (let i = 0; i < 200 && kills === 0; i++) {
        kills = await l.oomKills();
        if (kills === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(kills >= 1, 'the dd into the tmpfs must have been OOM-killed');
    } finally {
      await engine.remove(id);
    }
  });
});
