// test-tier: unit
/**
 * The v1 and v2 limiters against a temporary directory standing in for a cgroup (the kernel seam).
 * What only the kernel enforces (write order, EBUSY) is covered by cgroup.test.ts on real cgroups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CgroupV1Limiter } from './cgroup-v1.js';
import { CgroupV2Limiter } from './cgroup-v2.js';
import { isEphemeraError } from '../core/errors.js';

/** A temporary directory standing in for a cgroup, holding files (name: text), given to use and removed after. */
async function withFakeCgroup(files: Record<string, string>, use: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'eph-fakecg-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    await use(dir);
  } finally {
    await rm(dir, { recursive: true });
  }
}

const read = async (dir: string, f: string): Promise<string> => (await readFile(join(dir, f), 'utf8')).trim();

test('v1: reads limit, usage, peak and OOM kills; the kernel ceiling is unlimited', async () => {
  await withFakeCgroup({
    'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.memsw.limit_in_bytes': '9223372036854771712\n',
    'memory.usage_in_bytes': '11694080\n',
    'memory.max_usage_in_bytes': '67108864\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n',
  }, async (dir) => {
    const l = new CgroupV1Limiter(dir);
    assert.equal(l.kind, 'cgroup-v1');
    assert.equal(await l.getLimit(), null);
    assert.equal(await l.getUsage(), 11694080);
    assert.equal(await l.getPeak(), 67108864);
    assert.equal(await l.oomKills(), 3);
  });
});

test('v1: setLimit writes the RAM and RAM+swap limits to the same value; null writes -1', async () => {
  await withFakeCgroup({ 'memory.limit_in_bytes': '9223372036854771712', 'memory.memsw.limit_in_bytes': '9223372036854771712' }, async (dir) => {
    const l = new CgroupV1Limiter(dir);
    await l.setLimit(64 << 20);
    assert.equal(await read(dir, 'memory.limit_in_bytes'), String(64 << 20));
    assert.equal(await read(dir, 'memory.memsw.limit_in_bytes'), String(64 << 20));
    await l.setLimit(128 << 20);
    assert.equal(await read(dir, 'memory.memsw.limit_in_bytes'), String(128 << 20));
    await l.setLimit(null);
    assert.equal(await read(dir, 'memory.limit_in_bytes'), '-1');
    assert.equal(await read(dir, 'memory.memsw.limit_in_bytes'), '-1');
  });
});

test('v1: without swap accounting only the RAM limit is written; with swap allowed memsw is left alone', async () => {
  await withFakeCgroup({ 'memory.limit_in_bytes': '1' }, async (dir) => {
    await new CgroupV1Limiter(dir).setLimit(4096);
    assert.equal(await read(dir, 'memory.limit_in_bytes'), '4096');
    await writeFile(join(dir, 'memory.memsw.limit_in_bytes'), '77');
    await new CgroupV1Limiter(dir, { swap: true }).setLimit(8192);
    assert.equal(await read(dir, 'memory.memsw.limit_in_bytes'), '77');
  });
});

test('v1: a kernel without the oom_kill counter gives a clear error', async () => {
  await withFakeCgroup({ 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\n' }, async (dir) => {
    await assert.rejects(new CgroupV1Limiter(dir).oomKills(), (err) => isEphemeraError(err, 'EPH_CGROUP_IO') && /4\.13/.test(err.message));
  });
});

test('v2: reads memory.max ("max" is unlimited), current, peak and oom_kill from memory.events', async () => {
  await withFakeCgroup({
    'memory.max': 'max\n',
    'memory.current': '4096\n',
    'memory.peak': '8192\n',
    'memory.events': 'low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n',
    'memory.swap.max': 'max\n',
  }, async (dir) => {
    const l = new CgroupV2Limiter(dir);
    assert.equal(await l.getLimit(), null);
    assert.equal(await l.getUsage(), 4096);
    assert.equal(await l.getPeak(), 8192);
    assert.equal(await l.oomKills(), 1);
    await l.setLimit(32 << 20);
    assert.equal(await read(dir, 'memory.max'), String(32 << 20));
    assert.equal(await read(dir, 'memory.swap.max'), '0');
    assert.equal(await l.getLimit(), 32 << 20);
    await l.setLimit(null);
    assert.equal(await read(dir, 'memory.max'), 'max');
  });
});

test('v2: no memory.peak (Linux < 5.19) means an unknown peak', async () => {
  await withFakeCgroup({ 'memory.current': '1' }, async (dir) => {
    assert.equal(await new CgroupV2Limiter(dir).getPeak(), null);
  });
});

test('limits must be positive integers', async () => {
  await withFakeCgroup({ 'memory.max': 'max' }, async (dir) => {
    const l = new CgroupV2Limiter(dir);
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
      await assert.rejects(l.setLimit(bad), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID') && err.message.includes(String(bad)), String(bad));
    }
    assert.equal(await read(dir, 'memory.max'), 'max');
  });
});

test('garbage in a control file and missing files are EPH_CGROUP_IO naming the file', async () => {
  await withFakeCgroup({ 'memory.current': 'lots\n' }, async (dir) => {
    const l = new CgroupV2Limiter(dir);
    await assert.rejects(l.getUsage(), (err) => isEphemeraError(err, 'EPH_CGROUP_IO') && err.message.includes('memory.current') && err.message.includes('"lots"'));
    await assert.rejects(l.getLimit(), (err) => isEphemeraError(err, 'EPH_CGROUP_IO') && err.message.includes('memory.max') && err.message.includes('ENOENT'));
  });
});

test('a control file that cannot be written is EPH_CGROUP_IO', async (t) => {
  if (process.getuid?.() === 0) {
    // root ignores file modes; use a directory in place of the file instead.
    await withFakeCgroup({}, async (dir) => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(dir, 'memory.max'));
      await assert.rejects(new CgroupV2Limiter(dir).setLimit(4096), (err) => isEphemeraError(err, 'EPH_CGROUP_IO') && err.message.includes('EISDIR'));
    });
    return;
  }
  try {
    await withFakeCgroup({ 'memory.max': 'max' }, async (dir) => {
      await chmod(join(dir, 'memory.max'), 0o444);
      await assert.rejects(new CgroupV2Limiter(dir).setLimit(4096), (err) => isEphemeraError(err, 'EPH_CGROUP_IO'));
    });
  } finally {
    t.diagnostic('non-root run');
  }
});
