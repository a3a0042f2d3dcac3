// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { cgroupDir, findMemoryCgroup, locateMemoryCgroup, parseMountinfo, parseProcCgroup } from './detect.js';
import { isEphemeraError } from '../core/errors.js';

// Lines as this machine's kernel prints them (hybrid: v1 memory, v2 unified without memory).
const HYBRID_MOUNTINFO = [
  '24 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
  '30 24 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const HYBRID_CGROUP = '9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n';

const noMemory = (): Promise<boolean> => Promise.resolve(false);
const withMemory = (): Promise<boolean> => Promise.resolve(true);

test('parseMountinfo finds v1 hierarchies with their controllers and cgroup2 mounts', () => {
  const mounts = parseMountinfo(HYBRID_MOUNTINFO);
  assert.deepEqual(
    mounts.map((m) => [m.version, m.mountPoint, m.controllers.includes('memory')]),
    [
      [1, '/sys/fs/cgroup/cpu', false],
      [1, '/sys/fs/cgroup/memory', true],
      [2, '/sys/fs/cgroup/unified', false],
    ],
  );
});

test('parseMountinfo unescapes octal escapes in mount points', () => {
  const [m] = parseMountinfo('50 1 0:40 / /mnt/my\\040cg rw - cgroup2 none rw');
  assert.equal(m?.mountPoint, '/mnt/my cg');
});

test('parseProcCgroup splits v1 controllers and the v2 line', () => {
  const p = parseProcCgroup('5:cpu,cpuacct:/a\n4:memory:/m/x\n0::/u\n');
  assert.equal(p.v1.get('memory'), '/m/x');
  assert.equal(p.v1.get('cpuacct'), '/a');
  assert.equal(p.v2, '/u');
});

test('hybrid layout: memory on v1 beside a unified tree without it', async () => {
  const loc = await locateMemoryCgroup(parseMountinfo(HYBRID_MOUNTINFO), parseProcCgroup(HYBRID_CGROUP), noMemory);
  assert.deepEqual(loc, { version: 1, layout: 'hybrid', mountPoint: '/sys/fs/cgroup/memory', dir: '/sys/fs/cgroup/memory/process_api/abc' });
});

test('pure v1 layout', async () => {
  const text = '35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';
  const loc = await locateMemoryCgroup(parseMountinfo(text), parseProcCgroup('4:memory:/\n'), noMemory);
  assert.equal(loc?.layout, 'v1');
  assert.equal(loc.dir, '/sys/fs/cgroup/memory');
});

test('pure v2 layout', async () => {
  const text = '30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate';
  const loc = await locateMemoryCgroup(parseMountinfo(text), parseProcCgroup('0::/system.slice/fn.scope\n'), withMemory);
  assert.deepEqual(loc, { version: 2, layout: 'v2', mountPoint: '/sys/fs/cgroup', dir: '/sys/fs/cgroup/system.slice/fn.scope' });
});

test('v2 without the memory controller is not a memory cgroup', async () => {
  const text = '30 24 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw';
  assert.equal(await locateMemoryCgroup(parseMountinfo(text), parseProcCgroup('0::/\n'), noMemory), null);
});

test('inside a Docker container on v1 the mount root is the container cgroup', () => {
  // docker run without a cgroup namespace: /proc/self/cgroup names the host path, the mount shows it at its top.
  const [m] = parseMountinfo('700 690 0:31 /docker/0123 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory');
  assert.ok(m);
  assert.equal(cgroupDir(m, '/docker/0123'), '/sys/fs/cgroup/memory');
  assert.equal(cgroupDir(m, '/docker/0123/child'), '/sys/fs/cgroup/memory/child');
  // Outside the mounted subtree: fall back to the mount itself.
  assert.equal(cgroupDir(m, '/other'), '/sys/fs/cgroup/memory');
  assert.equal(cgroupDir(m, '/docker/01234'), '/sys/fs/cgroup/memory');
});

test('findMemoryCgroup reads proc files from a given proc root and checks v2 controllers', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eph-detect-'));
  try {
    const cgroupRoot = join(dir, 'cg');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'proc', 'self'), { recursive: true });
    await mkdir(join(dir, 'proc', '42'), { recursive: true });
    await mkdir(cgroupRoot);
    await writeFile(join(dir, 'proc', 'self', 'mountinfo'), `30 24 0:26 / ${cgroupRoot} rw - cgroup2 cgroup2 rw\n`);
    await writeFile(join(dir, 'proc', '42', 'cgroup'), '0::/fn\n');
    await writeFile(join(cgroupRoot, 'cgroup.controllers'), 'cpu io pids\n');
    await assert.rejects(findMemoryCgroup({ pid: 42, procRoot: join(dir, 'proc') }), (err) => isEphemeraError(err, 'EPH_CGROUP_UNAVAILABLE'));
    await writeFile(join(cgroupRoot, 'cgroup.controllers'), 'cpu io memory pids\n');
    const loc = await findMemoryCgroup({ pid: 42, procRoot: join(dir, 'proc') });
    assert.equal(loc.dir, join(cgroupRoot, 'fn'));
    await assert.rejects(findMemoryCgroup({ pid: 43, procRoot: join(dir, 'proc') }), (err) => isEphemeraError(err, 'EPH_CGROUP_UNAVAILABLE'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
