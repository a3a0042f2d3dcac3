/**
 * createInstanceCgroup on the machine's real memory cgroups (needs root and a memory controller;
 * otherwise each test is skipped with the reason).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, chmod, cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

import { createInstanceCgroup, type InstanceCgroup } from './cgroup.js';
import { findMemoryCgroup, memoryCgroupUnusable } from './detect.js';
import { isEphemeraError } from '../core/errors.js';

const MiB = 1024 * 1024;

const SKIP = await memoryCgroupUnusable();
if (SKIP !== undefined) console.log(`# skipping real-cgroup tests: ${SKIP}`);

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

async function runIn(cg: InstanceCgroup, argv: string[]): Promise<Exit> {
  const [file, ...args] = cg.command(argv);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout };
}

async function withCgroup(limit: number, fn: (cg: InstanceCgroup) => Promise<void>): Promise<void> {
  const cg = await createInstanceCgroup({ memoryLimit: limit });
  try {
    await fn(cg);
  } finally {
    await cg.destroy();
  }
}

test('creates a cgroup with the limit and no swap, below the caller\'s own memory cgroup', { skip: SKIP }, async () => {
  const own = await findMemoryCgroup();
  await withCgroup(64 * MiB, async (cg) => {
    assert.equal(cg.version, own.version);
    assert.equal(cg.limiter.kind, own.version === 1 ? 'cgroup-v1' : 'cgroup-v2');
    assert.ok(cg.path.startsWith(own.version === 1 ? join(own.dir, 'ephemera') + '/' : join(own.mountPoint, 'ephemera') + '/'), cg.path);
    assert.equal(await cg.limiter.getLimit(), 64 * MiB);
    if (cg.version === 1) {
      const memsw = join(cg.path, 'memory.memsw.limit_in_bytes');
      if (await access(memsw).then(() => true, () => false)) assert.equal((await readFile(memsw, 'utf8')).trim(), String(64 * MiB));
    } else {
      assert.equal((await readFile(join(cg.path, 'memory.swap.max'), 'utf8')).trim(), '0');
    }
    assert.equal(await cg.oomKills(), 0);
    assert.deepEqual(await cg.pids(), []);
  });
});

test('command() runs the program inside the cgroup from its first instruction', { skip: SKIP }, async () => {
  await withCgroup(64 * MiB, async (cg) => {
    const r = await runIn(cg, ['/bin/cat', '/proc/self/cgroup']);
    assert.equal(r.code, 0);
    const memLine = r.stdout.split('\n').find((l) => (cg.version === 1 ? /^\d+:memory:/.test(l) : l.startsWith('0::')));
    assert.ok(memLine?.endsWith(`/${cg.path.split('/').pop() ?? ''}`), `${String(memLine)} should name ${cg.path}`);
    assert.throws(() => cg.command([]), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
  });
});

test('a program that outgrows the limit is OOM-killed, and the kill and peak are reported', { skip: SKIP }, async () => {
  await withCgroup(32 * MiB, async (cg) => {
    const r = await runIn(cg, ['/usr/bin/python3', '-c', `b = b"x" * (${64 * MiB})`]);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(await cg.oomKills(), 1);
    const peak = await cg.peak();
    assert.ok(peak === null || peak >= 30 * MiB, String(peak));
  });
});

test('raising and lowering an idle cgroup works in both directions (write order of the two v1 limits)', { skip: SKIP }, async () => {
  await withCgroup(32 * MiB, async (cg) => {
    for (const limit of [128 * MiB, 16 * MiB, 256 * MiB, 8 * MiB]) {
      await cg.setLimit(limit);
      assert.equal(await cg.limiter.getLimit(), limit);
    }
    await cg.setLimit(null);
    assert.equal(await cg.limiter.getLimit(), null);
  });
});

test('cgroup v1 refuses a limit below unreclaimable usage: EPH_LIMIT_BELOW_USAGE, limit unchanged', { skip: SKIP }, async (t) => {
  await withCgroup(96 * MiB, async (cg) => {
    if (cg.version !== 1) {
      t.skip('cgroup v2 never refuses a limit (it OOM-kills instead)');
      return;
    }
    const [file, ...args] = cg.command(['/usr/bin/python3', '-c', `import sys, time\nb = b"x" * (${48 * MiB})\nprint("ready", flush=True)\ntime.sleep(60)`]);
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(child.stdout, 'data');
      await assert.rejects(cg.setLimit(16 * MiB), (err) => isEphemeraError(err, 'EPH_LIMIT_BELOW_USAGE') && err.message.includes('shrink'));
      assert.equal(await cg.limiter.getLimit(), 96 * MiB);
      assert.equal(child.exitCode, null, 'the holder must not have been killed');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

test('destroy() kills what still runs and removes the directory; twice is fine', { skip: SKIP }, async () => {
  const cg = await createInstanceCgroup({ memoryLimit: 32 * MiB });
  const [file, ...args] = cg.command(['/bin/sleep', '600']);
  const child = spawn(file, args, { stdio: 'ignore' });
  const exited = once(child, 'exit');
  for (let i = 0; i < 200 && (await cg.pids()).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal((await cg.pids()).length, 1);
  await cg.destroy();
  const [, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  assert.equal(signal, 'SIGKILL');
  await assert.rejects(access(cg.path));
  await cg.destroy();
});

test('bad names, bad limits and taken names get clear errors', { skip: SKIP }, async () => {
  await assert.rejects(createInstanceCgroup({ name: '../escape', memoryLimit: MiB }), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID') && err.message.includes('../escape'));
  await assert.rejects(createInstanceCgroup({ name: '..', memoryLimit: MiB }), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
  await assert.rejects(createInstanceCgroup({ memoryLimit: 0 }), (err) => isEphemeraError(err, 'EPH_LIMIT_INVALID'));
  const name = `eph-test-${process.pid}`;
  const first = await createInstanceCgroup({ name, memoryLimit: 16 * MiB });
  try {
    await assert.rejects(createInstanceCgroup({ name, memoryLimit: 16 * MiB }), (err) => isEphemeraError(err, 'EPH_CGROUP_EXISTS') && err.message.includes(`rmdir ${first.path}`));
  } finally {
    await first.destroy();
  }
});

test('without root: EPH_CGROUP_NOT_ROOT telling to use --budget', { skip: SKIP }, async (t) => {
  // The unprivileged child must be able to read the compiled modules, wherever the checkout lives
  // (CI clones into a folder of its own, often below a 0700 home): give it a world-readable copy.
  const compiled = fileURLToPath(new URL('..', import.meta.url));
  const copy = await mkdtemp(join(tmpdir(), 'eph-nonroot-'));
  t.after(() => rm(copy, { recursive: true, force: true }));
  await cp(join(compiled, 'limiter'), join(copy, 'limiter'), { recursive: true });
  await cp(join(compiled, 'core'), join(copy, 'core'), { recursive: true });
  await chmodTree(copy);
  const module = join(copy, 'limiter', 'cgroup.js');
  const script = `import(${JSON.stringify(module)}).then((m) => m.createInstanceCgroup({ memoryLimit: 1 << 24 })).then(() => console.log('created'), (e) => console.log(e.code + ' ' + e.message));`;
  const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await once(child, 'exit');
  assert.match(out, /^EPH_CGROUP_NOT_ROOT .*uid 65534.*--budget/);
});

/** Makes a directory tree readable (and its directories searchable) by every user. */
async function chmodTree(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chmodTree(p);
    else await chmod(p, 0o644);
  }
}
