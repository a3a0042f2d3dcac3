/**
 * The guest side of cgroup-v2-node-vm.test.ts: run by Node.js inside a QEMU guest booted with
 * `cgroup_no_v1=all` (test/vm/cgroup-v2-node-init.sh), it drives the node agent's own cgroup v2
 * code against the real memory controller, and prints what the host test checks, one
 * `V2N key value` line each (values are JSON).
 *
 * It wires the pieces as the agent does for one container (agent.ts #attach): a
 * {@link CgroupV2Limiter} wrapped by its {@link ContainerGuard} (memory.high kept in step with
 * memory.max), the guard set and lifted as the daemon's `guard` events ask, its watchdog running;
 * ephemerad runs outside the function's cgroup in a mount namespace where the cgroup tree is
 * read-only, as in a container (so it follows the host's guard instead of setting its own). Then:
 *
 * 1. files: 3 × 16 MiB written under the shim by `dd` in a 128 MiB function cgroup;
 * 2. resize: {@link resizeInstance} lowers the limit to 48 MiB and raises it to 128 MiB again; the
 *    daemon's requests and the cgroup writes are logged in the order they happen;
 * 3. heap: a Node.js child in the function's cgroup fills 56 MiB of buffers (Node.js itself takes
 *    some 50 MiB more) while the files are in memory: the daemon moves files to disk, no OOM kill,
 *    `cmp` finds every file's bytes intact; the daemon's `peaks` window around the run gives the
 *    usage the agent would report (usage.ts);
 * 4. peak: the agent's {@link CgroupPeakWindow} and the limiter's peak;
 * 5. OOM count: a Node.js child that outgrows a second cgroup (no daemon, nothing to evict) is
 *    killed by the kernel, and the agent's {@link OomKillCounter} and the limiter count it.
 *
 * Not a test itself: the guest has no test runner, and the checks belong on the host, where a
 * failure can show the whole report.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DaemonClient, type DaemonStats } from '../daemon-client/client.js';
import { startDaemon } from '../daemon-client/start.js';
import { cgroupGuardArm, type GuardArm } from '../guard/arm.js';
import { ContainerGuard } from '../guard/container-guard.js';
import { cgroupGuardKnobs } from '../guard/watchdog.js';
import { createInstanceCgroup, type InstanceCgroup } from '../limiter/cgroup.js';
import { findMemoryCgroup } from '../limiter/detect.js';
import type { MemoryLimiter } from '../limiter/limiter.js';
import { resizeInstance, type ResizeDaemon } from '../limiter/resize.js';
import { CgroupPeakWindow, OomKillCounter } from './cgroup-peak.js';
import { usageFromPeaks } from './usage.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 16 * MiB;
/** The function's quota, what a resize lowers it to, and the heap that pushes against it. */
const QUOTA = 128 * MiB;
const LOWERED = 48 * MiB;
const HEAP_MIB = 56;
const FILES = ['/scratch/f1', '/scratch/f2', '/scratch/f3'];
const SOURCE = '/data/source';
const RUNDIR = '/run/eph';
/** Runs its arguments in the daemon's cgroup, in a mount namespace where the cgroup tree is read-only. */
const AS_CONTAINER = 'echo $$ > /sys/fs/cgroup/daemon/cgroup.procs && mount --bind /sys/fs/cgroup /sys/fs/cgroup && mount -o remount,bind,ro /sys/fs/cgroup && exec "$@"';
const SHIM_ENV = { LD_PRELOAD: '/lib/libephemera.so', EPHEMERA_SOCK: `${RUNDIR}/shim.sock`, EPHEMERA_ROOTS: '/scratch', PATH: '/bin' };

const started = performance.now();

/** One report line; a `V2T` line beside it says when (seconds since start), for the test's timing. */
function say(key: string, value: unknown): void {
  process.stdout.write(`V2N ${key} ${JSON.stringify(value)}\nV2T ${key} ${((performance.now() - started) / 1000).toFixed(1)}\n`);
}

interface Ran {
  readonly status: number | null;
  readonly signal: string | null;
  readonly out: string;
}

/** Runs `argv` to its end (killed after `ms`), collecting its output. */
function run(argv: readonly string[], env: NodeJS.ProcessEnv, ms: number): Promise<Ran> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    const child = spawn(file ?? '', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, out: out.slice(-400) });
    });
  });
}

function control(cg: InstanceCgroup, file: string): string {
  return readFileSync(join(cg.path, file), 'utf8').trim();
}

function events(cg: InstanceCgroup): Record<string, number> {
  return Object.fromEntries(
    control(cg, 'memory.events')
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k ?? '', Number(v)]),
  );
}

/**
 * The daemon's limit and file bytes. `file_bytes_disk_counted` is kept at every size change;
 * `file_bytes_disk` comes from a walk that may be up to a second old.
 */
function files(s: DaemonStats): { limit: number | null; memory: number; disk: unknown; evictions: number } {
  return { limit: s.limit, memory: s.file_bytes_memory, disk: s['file_bytes_disk_counted'], evictions: s.evictions };
}

/** Polls `ok` every 50 ms for at most `ms`; whether it became true. */
async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Fills `mib` MiB of buffers, 8 MiB at a time, every page touched; prints `heap N`. */
const HEAP = (mib: number): string => `const b = []; for (let i = 0; i < ${mib / 8}; i++) b.push(Buffer.alloc(8 << 20, i + 1)); console.log('heap ' + b.length * 8);`;

async function main(): Promise<void> {
  say('location', await findMemoryCgroup());
  mkdirSync('/sys/fs/cgroup/daemon');
  mkdirSync('/scratch');
  mkdirSync('/data');
  mkdirSync(RUNDIR, { recursive: true, mode: 0o700 });
  writeFileSync(SOURCE, randomBytes(FILE_BYTES));
  const fn = await createInstanceCgroup({ name: 'fn', memoryLimit: QUOTA });
  say('fn', { path: fn.path, version: fn.version, max: control(fn, 'memory.max'), swap_max: control(fn, 'memory.swap.max') });

  const daemonProc = await startDaemon({
    argv: ['/bin/ephemerad', '--rundir', RUNDIR, '--root', '/scratch', '--cgroup', fn.path, '--log', '/run/eph.log', '--debug'],
    wrap: (argv) => ['/bin/unshare', '-m', '/bin/sh', '-c', AS_CONTAINER, 'sh', ...argv],
    stdout: 'ignore',
    stderr: 'inherit',
    timeoutMs: 60_000,
  });
  const daemon = await DaemonClient.connect(`${RUNDIR}/control.sock`, { timeoutMs: 5000, requestTimeoutMs: 60_000 });

  // The seams logged in the order things happen: the guard's memory.high writes, the limiter's
  // memory.max writes, the daemon's shrink and grow (each with the file's value after the write).
  const order: string[] = [];
  const realArm = cgroupGuardArm(fn.path, 2);
  const arm: GuardArm = {
    version: 2,
    limit: () => realArm.limit(),
    arm: async (limit) => {
      await realArm.arm(limit);
      order.push(`high ${control(fn, 'memory.high')}`);
    },
    disarm: async () => {
      await realArm.disarm();
      order.push(`high ${control(fn, 'memory.high')}`);
    },
  };
  const raw = fn.limiter;
  const logged: MemoryLimiter = {
    kind: raw.kind,
    target: raw.target,
    getLimit: () => raw.getLimit(),
    getUsage: () => raw.getUsage(),
    getPeak: () => raw.getPeak(),
    oomKills: () => raw.oomKills(),
    setLimit: async (bytes) => {
      await raw.setLimit(bytes);
      order.push(`max ${control(fn, 'memory.max')}`);
    },
  };
  const guard = new ContainerGuard(arm, cgroupGuardKnobs(fn.path, 2), { onEvent: (e) => say('guard_event', e.message) });
  guard.start();
  const limiter = guard.limiter(logged);
  const resizer: ResizeDaemon = {
    shrink: async (bytes) => {
      order.push(`shrink ${String(bytes)}`);
      return daemon.shrink(bytes);
    },
    grow: async (bytes) => {
      order.push(`grow ${String(bytes)}`);
      return daemon.grow(bytes);
    },
  };
  await daemon.subscribe(['shortfall', 'guard'], (event) => {
    if (event.event === 'guard') void guard.want(event['want'] === true);
    else say('shortfall', event);
  });
  say('daemon_start', files(await daemon.stats()));

  try {
    // 1. Files in memory, under the shim, charged to the function's cgroup.
    for (const f of FILES) {
      const r = await run(fn.command(['/bin/dd', `if=${SOURCE}`, `of=${f}`, 'bs=1M']), SHIM_ENV, 120_000);
      say('dd', { file: f, status: r.status, signal: r.signal, out: r.status === 0 ? '' : r.out });
    }
    say('files_written', files(await daemon.stats()));
    // How the agent finds a container's cgroup: from a pid in it (agent.ts #attach).
    const sleeper = spawn('/bin/sh', ['-c', `echo $$ > ${fn.procsFile} && exec sleep 30`], { stdio: 'ignore' });
    await until(() => control(fn, 'cgroup.procs') !== '', 10_000);
    say('located', (await findMemoryCgroup({ pid: sleeper.pid ?? 0 })).dir);
    sleeper.kill('SIGKILL');
    say('armed', await until(() => control(fn, 'memory.high') !== 'max', 10_000));
    say('armed_high', control(fn, 'memory.high'));

    // 2. Resizes, in the safe order, with the guard's memory.high tied to memory.max.
    order.length = 0;
    const down = await resizeInstance(limiter, resizer, LOWERED);
    say('lower', { result: down, order: order.splice(0), max: control(fn, 'memory.max'), high: control(fn, 'memory.high'), daemon: files(await daemon.stats()), oom_kill: events(fn)['oom_kill'] });
    const up = await resizeInstance(limiter, resizer, QUOTA);
    say('raise', { result: up, order: order.splice(0), max: control(fn, 'memory.max'), high: control(fn, 'memory.high'), daemon: files(await daemon.stats()), oom_kill: events(fn)['oom_kill'] });

    // 3. A heap pushing against the limit while the files are in memory: they go to disk.
    for (const f of FILES) await run(fn.command(['/bin/dd', `if=${f}`, 'of=/dev/null', 'bs=1M']), SHIM_ENV, 120_000);
    say('before_heap', { daemon: files(await daemon.stats()), current: control(fn, 'memory.current'), high: control(fn, 'memory.high'), events: events(fn) });
    // The agent's usage window around the run (agent.ts: `peaks` reset before, read after).
    await daemon.peaks({ reset: true });
    const heap = await run(fn.command([process.execPath, '-e', HEAP(HEAP_MIB)]), { PATH: '/bin' }, 300_000);
    say('heap', heap);
    const [peaks, after] = await Promise.all([daemon.peaks(), daemon.stats()]);
    say('after_heap', { daemon: files(after), events: events(fn), guard_armed: guard.armed });
    say('usage', { peaks, used: usageFromPeaks(peaks, after, null) });
    for (const f of FILES) {
      const r = await run(['/bin/cmp', SOURCE, f], SHIM_ENV, 120_000);
      say('cmp', { file: f, status: r.status, out: r.out });
    }

    // 4. The agent's peak window (kernel 6.1: no per-descriptor reset, so the lifetime peak).
    const win = new CgroupPeakWindow(2, fn.path);
    win.open();
    say('peak', { windowed: win.windowed, read: win.read(), file: Number(control(fn, 'memory.peak')), limiter: await fn.limiter.getPeak() });
    win.close();
    const fnOom = new OomKillCounter(2, fn.path);
    say('fn_oom', { counter: fnOom.read(), limiter: await fn.limiter.oomKills() });
    fnOom.close();
  } finally {
    await guard.stop({ disarm: true });
    daemon.close();
    daemonProc.kill('SIGTERM');
    await until(() => daemonProc.exitCode !== null || daemonProc.signalCode !== null, 10_000);
    await fn.destroy();
  }

  // 5. One real OOM kill, counted: a heap larger than its cgroup, with nothing to evict.
  const oomer = await createInstanceCgroup({ name: 'oomer', memoryLimit: 64 * MiB });
  try {
    const counter = new OomKillCounter(2, oomer.path);
    const before = counter.read();
    const r = await run(oomer.command([process.execPath, '-e', HEAP(128)]), { PATH: '/bin' }, 300_000);
    say('oom', { before, after: counter.read(), limiter: await oomer.limiter.oomKills(), status: r.status, signal: r.signal });
    counter.close();
  } finally {
    await oomer.destroy();
  }
  say('daemon_log', readFileSync('/run/eph.log', 'utf8').split('\n').filter((l) => /budget |oom guard|follow/.test(l)).slice(0, 8));
}

// Exits at once when done: a leftover handle must not keep the guest from powering off.
main().then(
  () => {
    say('done', true);
    process.exit(0);
  },
  (err: unknown) => {
    say('error', err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err));
    process.exit(1);
  },
);
