import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { EphemeraError } from '../core/errors.js';
import { DockerEngine, demuxLogs } from './engine.js';
import { busyboxOnRealEngine } from './testimage.js';

const MiB = 1024 * 1024;

test('demuxLogs splits stdout and stderr frames', () => {
  const frame = (stream: number, text: string): Buffer => {
    const payload = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(payload.length, 4);
    return Buffer.concat([head, payload]);
  };
  const logs = demuxLogs(Buffer.concat([frame(1, 'a\n'), frame(2, 'oops\n'), frame(1, 'b\n')]));
  assert.deepEqual(logs, { stdout: 'a\nb\n', stderr: 'oops\n' });
});

test('an unreachable socket is a typed EPH_DOCKER_API error that says what to do', async () => {
  const engine = new DockerEngine({ socketPath: '/nonexistent/docker.sock' });
  await assert.rejects(engine.ping(), (err: unknown) => {
    assert.ok(err instanceof EphemeraError);
    assert.equal(err.code, 'EPH_DOCKER_API');
    assert.match(err.message, /scripts\/docker\.sh ensure/);
    return true;
  });
});

describe('DockerEngine against the real engine', () => {
  const engine = new DockerEngine();
  let image = '';
  let skip: string | null = null;

  before(async () => {
    ({ skip, image } = await busyboxOnRealEngine(engine));
  });

  test('run returns exit code, and stdout and stderr apart', async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await engine.run({ image, cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.oomKilled, false);
  });

  test('allowMemoryLock adds CAP_IPC_LOCK (beside SYS_PTRACE when both are asked), and only then', async (t) => {
    if (skip !== null) return t.skip(skip);
    const caps = async (spec: { allowMemoryLock?: boolean; allowPtrace?: boolean }): Promise<bigint> => {
      const r = await engine.run({ image, cmd: ['sh', '-c', 'grep CapEff /proc/self/status'], ...spec });
      assert.equal(r.exitCode, 0, r.stderr);
      return BigInt(`0x${r.stdout.trim().split(/\s+/)[1] ?? '0'}`);
    };
    const IPC_LOCK = 1n << 14n;
    const SYS_PTRACE = 1n << 19n;
    assert.equal((await caps({})) & IPC_LOCK, 0n);
    assert.equal((await caps({ allowMemoryLock: true })) & IPC_LOCK, IPC_LOCK);
    const both = await caps({ allowMemoryLock: true, allowPtrace: true });
    assert.equal(both & (IPC_LOCK | SYS_PTRACE), IPC_LOCK | SYS_PTRACE);
  });

  test('memory limit and cpuset are applied, and update changes the limit in place', async (t) => {
    if (skip !== null) return t.skip(skip);
    const id = await engine.create({ image, cmd: ['sleep', '60'], memory: 64 * MiB, cpuset: '0' });
    try {
      await engine.start(id);
      let st = await engine.inspect(id);
      assert.equal(st.running, true);
      assert.equal(st.memory, 64 * MiB);
      assert.equal(st.memorySwap, 64 * MiB, 'memory and swap are set together: no swap');
      assert.equal(st.cpuset, '0');
      await engine.update(id, { memory: 96 * MiB });
      st = await engine.inspect(id);
      assert.equal(st.memory, 96 * MiB);
      assert.equal(st.memorySwap, 96 * MiB);
      await engine.update(id, { memory: 48 * MiB });
      assert.equal((await engine.inspect(id)).memory, 48 * MiB);
    } finally {
      await engine.remove(id);
    }
  });

  test('a tmpfs filled past the memory limit gets the container OOM-killed, and inspect says so', async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await engine.run({
      image,
      cmd: ['dd', 'if=/dev/zero', 'of=/scratch/fill', 'bs=1048576', 'count=96'],
      memory: 32 * MiB,
      mounts: [{ type: 'tmpfs', target: '/scratch' }],
    });
    assert.equal(r.oomKilled, true);
    assert.equal(r.exitCode, 137);
  });

  test('the same write on the writable layer finishes under the same limit', async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await engine.run({
      image,
      cmd: ['dd', 'if=/dev/zero', 'of=/tmp/fill', 'bs=1048576', 'count=96'],
      memory: 32 * MiB,
    });
    assert.equal(r.oomKilled, false);
    assert.equal(r.exitCode, 0, r.stderr);
  });

  test('wait with a timeout kills the container and reports it', async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await engine.run({ image, cmd: ['sleep', '30'] }, { timeoutMs: 300 });
    assert.equal(r.timedOut, true);
    assert.notEqual(r.exitCode, 0);
  });

  test('errors from the engine carry the status and the message', async (t) => {
    if (skip !== null) return t.skip(skip);
    await assert.rejects(engine.inspect('no-such-container-ephemera'), (err: unknown) => {
      assert.ok(err instanceof EphemeraError);
      assert.equal(err.code, 'EPH_DOCKER_API');
      assert.match(err.message, /404/);
      return true;
    });
  });
});
