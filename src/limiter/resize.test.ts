// test-tier: unit
/**
 * The order of operations in resizeInstance, with a recording limiter over a temporary cgroup
 * directory and a scripted daemon standing in for the control socket. The same function against
 * real cgroups and a real ephemerad is exercised in test/memory/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CgroupV2Limiter } from './cgroup-v2.js';
import { resizeInstance, type ResizeDaemon } from './resize.js';
import { EphemeraError, isEphemeraError } from '../core/errors.js';

const MiB = 1024 * 1024;

class RecordingLimiter extends CgroupV2Limiter {
  constructor(
    dir: string,
    readonly log: string[],
    readonly refusals: number[] = [],
  ) {
    super(dir);
  }
  override async setLimit(bytes: number | null): Promise<void> {
    if (this.refusals.length > 0) {
      this.refusals.shift();
      this.log.push(`cgroup refuses ${String(bytes)}`);
      throw new EphemeraError('EPH_LIMIT_BELOW_USAGE', 'EBUSY');
    }
    this.log.push(`cgroup ${String(bytes)}`);
    await super.setLimit(bytes);
  }
}

function daemon(log: string[], failShrink = false): ResizeDaemon {
  return {
    shrink: (b) => {
      log.push(`shrink ${b}`);
      return failShrink ? Promise.reject(new EphemeraError('EPH_DAEMON_REPLY', 'EPH_CANNOT_SHRINK', { detail: { daemonCode: 'EPH_CANNOT_SHRINK' } })) : Promise.resolve({});
    },
    grow: (b) => {
      log.push(`grow ${b}`);
      return Promise.resolve({});
    },
  };
}

async function withDir(limit: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'eph-resize-'));
  await writeFile(join(dir, 'memory.max'), limit);
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true });
  }
}

test('lowering: shrink below the target first, then the cgroup, then grow back to the target', async () => {
  await withDir(String(128 * MiB), async (dir) => {
    const log: string[] = [];
    const r = await resizeInstance(new RecordingLimiter(dir, log), daemon(log), 64 * MiB, { margin: MiB });
    assert.deepEqual(log, [`shrink ${63 * MiB}`, `cgroup ${64 * MiB}`, `grow ${64 * MiB}`]);
    assert.deepEqual(r, { from: 128 * MiB, to: 64 * MiB, direction: 'lower', attempts: 1 });
  });
});

test('raising: the cgroup first, then grow', async () => {
  await withDir(String(64 * MiB), async (dir) => {
    const log: string[] = [];
    const r = await resizeInstance(new RecordingLimiter(dir, log), daemon(log), 256 * MiB);
    assert.deepEqual(log, [`cgroup ${256 * MiB}`, `grow ${256 * MiB}`]);
    assert.equal(r.direction, 'raise');
  });
});

test('an unlimited instance gets lowered (shrink first)', async () => {
  await withDir('max', async (dir) => {
    const log: string[] = [];
    await resizeInstance(new RecordingLimiter(dir, log), daemon(log), 64 * MiB);
    assert.equal(log[0], `shrink ${63 * MiB}`);
  });
});

test('a kernel refusal (v1 EBUSY) is retried with a doubled margin', async () => {
  await withDir(String(128 * MiB), async (dir) => {
    const log: string[] = [];
    const r = await resizeInstance(new RecordingLimiter(dir, log, [1]), daemon(log), 64 * MiB, { margin: 2 * MiB });
    assert.deepEqual(log, [`shrink ${62 * MiB}`, `cgroup refuses ${64 * MiB}`, `shrink ${60 * MiB}`, `cgroup ${64 * MiB}`, `grow ${64 * MiB}`]);
    assert.equal(r.attempts, 2);
  });
});

test('a daemon that cannot shrink leaves the cgroup alone and gets its old limit back', async () => {
  await withDir(String(128 * MiB), async (dir) => {
    const log: string[] = [];
    await assert.rejects(resizeInstance(new RecordingLimiter(dir, log), daemon(log, true), 64 * MiB, { margin: MiB }), (err) => isEphemeraError(err, 'EPH_RESIZE_FAILED') && err.detail['limit'] === 128 * MiB);
    assert.deepEqual(log, [`shrink ${63 * MiB}`, `grow ${128 * MiB}`]);
  });
});

test('a kernel that keeps refusing ends in EPH_RESIZE_FAILED after the attempts', async () => {
  await withDir(String(128 * MiB), async (dir) => {
    const log: string[] = [];
    await assert.rejects(resizeInstance(new RecordingLimiter(dir, log, [1, 1, 1]), daemon(log), 64 * MiB, { margin: MiB, attempts: 3 }), (err) => isEphemeraError(err, 'EPH_RESIZE_FAILED'));
    assert.equal(log.filter((l) => l.startsWith('cgroup refuses')).length, 3);
    assert.equal(log.at(-1), `grow ${128 * MiB}`);
  });
});

test('the margin takes at most half of a small target', async () => {
  await withDir(String(128 * MiB), async (dir) => {
    const log: string[] = [];
    await resizeInstance(new RecordingLimiter(dir, log), daemon(log), 1024, { margin: MiB });
    assert.deepEqual(log, ['shrink 512', 'cgroup 1024', 'grow 1024']);
  });
});

test('bad targets are refused before anything happens', async () => {
  await withDir(String(128 * MiB), async (dir) => {
    const log: string[] = [];
    for (const bad of [0, -5, 1.5]) {
      await assert.rejects(resizeInstance(new RecordingLimiter(dir, log), daemon(log), bad), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
    }
    assert.deepEqual(log, []);
  });
});
