/**
 * cgroup v2 on the real kernel (root). This machine is v1 for memory: its unified hierarchy
 * (systemd's hybrid layout, mounted at /sys/fs/cgroup/unified) exists but has no memory
 * controller, since a controller bound to a v1 hierarchy that has cgroups cannot move to v2 (and
 * only a boot option, `cgroup_no_v1=memory`, changes that). So the test takes what the kernel
 * offers: a real v2 cgroup with a real process in it, and each of Ephemera's v2 paths on it.
 * - Without the memory controller (here): detection keeps the v1 memory cgroup (layout `hybrid`),
 *   the peak window has no peak and never throws, the OOM count and the daemon refuse with errors
 *   that name the memory controller, and enabling `+memory` is refused by the kernel (ENOENT).
 * - With it (a v2 host): detection finds the v2 cgroup, `memory.peak` is windowed (Linux ≥ 6.12)
 *   and sees an allocation, the OOM count is 0, and the daemon takes its limit from `memory.max`.
 *   That branch does not run on this machine.
 * Skipped without root or a cgroup2 file system.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import { DaemonClient } from '../daemon-client/client.js';
import { startDaemon } from '../daemon-client/start.js';
import { findMemoryCgroup, parseMountinfo } from '../limiter/detect.js';
import { CgroupPeakWindow, OomKillCounter } from './cgroup-peak.js';

const MiB = 1024 * 1024;
/** This file runs from build/js/node/: the checkout is three levels up. */
const DAEMON = join(fileURLToPath(new URL('../../../', import.meta.url)), 'build', 'ephemerad');
const isRoot = process.getuid?.() === 0;
const hasCgroup2 = existsSync('/proc/filesystems') && /\tcgroup2$/m.test(readFileSync('/proc/filesystems', 'utf8'));
const skip = !isRoot ? 'needs root' : !hasCgroup2 ? 'no cgroup2 file system in this kernel' : !existsSync(DAEMON) ? 'needs build/ephemerad' : false;

/** The v2 hierarchy: where it is mounted already, or a mount of our own (unmounted at the end). */
function unifiedMount(): { dir: string; ours: boolean } {
  const found = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.version === 2 && m.root === '/');
  if (found !== undefined) return { dir: found.mountPoint, ours: false };
  const dir = mkdtempSync(join(tmpdir(), 'ephemera-cgroup2-'));
  const r = spawnSync('mount', ['-t', 'cgroup2', 'none', dir], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `mount -t cgroup2: ${r.stderr}`);
  return { dir, ours: true };
}

function exited(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) resolve();
    else p.once('exit', () => { resolve(); });
  });
}

test('cgroup v2 on this kernel: a real v2 cgroup with a process in it, and each v2 path of Ephemera on it', { skip, timeout: 30_000 }, async () => {
  const mount = unifiedMount();
  const name = `ephemera-v2-${String(process.pid)}`;
  const cg = join(mount.dir, name);
  let child: ChildProcess | undefined;
  try {
    mkdirSync(cg);
    const hasMemory = readFileSync(join(mount.dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).includes('memory');
    if (hasMemory && !readFileSync(join(mount.dir, 'cgroup.subtree_control'), 'utf8').includes('memory')) {
      writeFileSync(join(mount.dir, 'cgroup.subtree_control'), '+memory');
    }
    if (hasMemory) writeFileSync(join(cg, 'memory.max'), String(64 * MiB));
    // A process that joins the cgroup itself, then (with the memory controller) allocates 24 MiB.
    child = spawn('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec python3 -c "import sys, time; b = bytearray(24 << 20); b[::4096] = b'x' * len(b[::4096]); print('in', flush=True); time.sleep(20)"`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const proc = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('the process did not start in the cgroup within 10 s')); }, 10_000);
      proc.stdout?.once('data', () => { clearTimeout(timer); resolve(); });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the process exited (${String(code)}) before joining the cgroup`)); });
    });
    const pid = child.pid ?? 0;
    assert.match(readFileSync(`/proc/${String(pid)}/cgroup`, 'utf8'), new RegExp(`^0::/${name}$`, 'm'), 'the process is in the v2 cgroup');
    assert.match(readFileSync(join(cg, 'cgroup.events'), 'utf8'), /^populated 1$/m);

    const where = await findMemoryCgroup({ pid });
    const window = new CgroupPeakWindow(2, cg);
    const oom = new OomKillCounter(2, cg);
    const dir = mkdtempSync(join(tmpdir(), 'ephemera-v2d-'));
    try {
      window.open();
      const argv = [DAEMON, '--rundir', dir, '--root', dir, '--cgroup', cg];
      if (!hasMemory) {
        const daemon = spawnSync(argv[0] ?? DAEMON, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
        // The machine this was written on: what works and what does not, asserted so it stays true.
        assert.equal(where.version, 1, 'the memory cgroup stays the v1 one');
        assert.equal(where.layout, 'hybrid');
        assert.throws(() => { writeFileSync(join(mount.dir, 'cgroup.subtree_control'), '+memory'); }, (e: NodeJS.ErrnoException) => e.code === 'ENOENT', 'the kernel refuses the memory controller on v2 while v1 holds it');
        assert.equal(existsSync(join(cg, 'memory.max')), false);
        assert.equal(window.windowed, false);
        assert.equal(window.read(), null, 'no memory.peak: no peak, no exception');
        assert.throws(() => oom.read(), (e: unknown) => e instanceof EphemeraError && e.code === 'EPH_CGROUP_IO' && e.message.includes('memory controller'));
        assert.equal(daemon.status, 2, daemon.stderr);
        assert.match(daemon.stderr, /is not a cgroup directory with a memory controller \(no memory\.max or memory\.limit_in_bytes\)/);
        // PSI works per v2 cgroup without the memory controller.
        assert.match(readFileSync(join(cg, 'memory.pressure'), 'utf8'), /^some avg10=/);
      } else {
        assert.equal(where.version, 2);
        assert.equal(where.dir, cg);
        assert.ok((window.read() ?? 0) >= 24 * MiB, 'memory.peak saw the allocation');
        assert.equal(oom.read(), 0);
        // The daemon takes its limit from memory.max.
        const daemon = await startDaemon({ argv, stdout: 'ignore', stderr: 'ignore', timeoutMs: 10_000 });
        const c = await DaemonClient.connect(join(dir, 'control.sock'), { requestTimeoutMs: 10_000 }).catch((e: unknown) => {
          daemon.kill('SIGKILL');
          throw e;
        });
        try {
          const st = await c.stats();
          assert.equal(st.cgroup_version, 2);
          assert.equal(st.limit, 64 * MiB);
        } finally {
          c.close();
          daemon.kill('SIGKILL');
          await exited(daemon);
        }
      }
    } finally {
      window.close();
      oom.close();
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    if (existsSync(join(cg, 'cgroup.kill'))) writeFileSync(join(cg, 'cgroup.kill'), '1');
    else child?.kill('SIGKILL');
    if (child !== undefined) await exited(child);
    for (let i = 0; i < 50 && existsSync(cg); i++) {
      try {
        rmdirSync(cg);
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (mount.ours) {
      spawnSync('umount', [mount.dir], { timeout: 10_000 });
      rmdirSync(mount.dir);
    }
  }
});
