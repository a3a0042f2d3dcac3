/**
 * DockerLimiter against a stand-in Engine API served on a unix socket in a temporary directory
 * (the process seam). It records the requests so the test can check what reached "Docker".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

import { DockerLimiter } from './docker.js';
import { isEphemeraError } from '../core/errors.js';

interface Engine {
  server: Server;
  socketPath: string;
  requests: Array<{ method: string; url: string; body: unknown }>;
  state: { pid: number; memory: number; oomKilled: boolean };
  close(): Promise<void>;
}

async function engine(): Promise<Engine> {
  const dir = await mkdtemp(join(tmpdir(), 'eph-docker-'));
  const socketPath = join(dir, 'docker.sock');
  const requests: Engine['requests'] = [];
  const state = { pid: 0, memory: 128 << 20, oomKilled: false };
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
      if (!(req.url ?? '').startsWith('/containers/fn1/')) return send(404, { message: 'No such container: x' });
      if (req.url === '/containers/fn1/json') return send(200, { State: { Pid: state.pid, Running: true, OOMKilled: state.oomKilled }, HostConfig: { Memory: state.memory, MemorySwap: state.memory } });
      if (req.url?.startsWith('/containers/fn1/stats')) return send(200, { memory_stats: { usage: 5000, max_usage: 9000, limit: state.memory } });
      if (req.url === '/containers/fn1/update' && req.method === 'POST') {
        const b = body as { Memory: number; MemorySwap: number };
        if (b.MemorySwap < b.Memory) return send(409, { message: 'Minimum memoryswap limit should be larger than memory limit' });
        state.memory = b.Memory;
        return send(200, { Warnings: [] });
      }
      return send(404, { message: 'page not found' });
    });
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return {
    server,
    socketPath,
    requests,
    state,
    close: async () => {
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('setLimit sends Memory and MemorySwap together and equal', async () => {
  const e = await engine();
  try {
    const l = new DockerLimiter('fn1', { socketPath: e.socketPath });
    assert.equal(l.kind, 'docker');
    assert.equal(await l.getLimit(), 128 << 20);
    await l.setLimit(64 << 20);
    assert.deepEqual(e.requests.at(-1), { method: 'POST', url: '/containers/fn1/update', body: { Memory: 64 << 20, MemorySwap: 64 << 20 } });
    assert.equal(await l.getLimit(), 64 << 20);
    await assert.rejects(l.setLimit(null), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
    await assert.rejects(l.setLimit(-1), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
  } finally {
    await e.close();
  }
});

test('without a visible cgroup, usage, peak and OOM come from stats and inspect', async () => {
  const e = await engine();
  try {
    const l = new DockerLimiter('fn1', { socketPath: e.socketPath });
    assert.equal(await l.getUsage(), 5000);
    assert.equal(await l.getPeak(), 9000);
    assert.equal(await l.oomKills(), 0);
    e.state.oomKilled = true;
    assert.equal(await l.oomKills(), 1);
  } finally {
    await e.close();
  }
});

test('with the container\'s pid visible, readings come from its memory cgroup', async (t) => {
  const e = await engine();
  try {
    // Stand in for the container's init with this very process: its cgroup is real.
    e.state.pid = process.pid;
    const l = new DockerLimiter('fn1', { socketPath: e.socketPath });
    let usage: number;
    try {
      usage = await l.getUsage();
    } catch (err) {
      t.skip(`no readable memory cgroup here: ${(err as Error).message}`);
      return;
    }
    assert.ok(usage > 1 << 20 && usage !== 5000, String(usage));
    assert.equal(e.requests.some((r) => r.url.includes('/stats')), false);
  } finally {
    await e.close();
  }
});

test('API errors and an absent engine are EPH_DOCKER_API with the cause', async () => {
  const e = await engine();
  try {
    await assert.rejects(new DockerLimiter('nope', { socketPath: e.socketPath }).getLimit(), (err) => isEphemeraError(err, 'EPH_DOCKER_API') && err.message.includes('404') && err.message.includes('No such container'));
  } finally {
    await e.close();
  }
  await assert.rejects(new DockerLimiter('fn1', { socketPath: e.socketPath }).getLimit(), (err) => isEphemeraError(err, 'EPH_DOCKER_API') && err.message.includes('is dockerd running'));
});
