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
 * 3. heap: a Node.js child in the function's cgroup fills 88 MiB of buffers (Node.js itself takes
 *    some 17 MiB more) while 32 MiB of the files are in memory, more than the limit holds with the
 *    daemon's headroom: the daemon moves files to disk, no OOM kill,
 *    `cmp` finds every file's bytes intact; the daemon's `peaks` window around the run gives the
 *    usage the agent would report (usage.ts);
 * 4. peak: the agent's {@link CgroupPeakWindow} and the limiter's peak;
 * 5. OOM count: a Node.js child that outgrows a second cgroup (no daemon, nothing to evict) is
 *    killed by the kernel, and the agent's {@link OomKillCounter} and the limiter count it.
 *
 * Not a test itself: the guest has no test runner, and the checks belong on the host, where a
 * failure can show the whole report.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
import type { ContainerEngine } from '../container/engine.js';
import { NodeAgent } from './agent.js';
import { CgroupPeakWindow, OomKillCounter } from './cgroup-peak.js';
import { inProcessManagers, managerDefaults } from './managers.js';
import { usageFromPeaks } from './usage.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 16 * MiB;
/** The function's quota, what a resize lowers it to, and the heap that pushes against it. */
const QUOTA = 128 * MiB;
const LOWERED = 48 * MiB;
const HEAP_MIB = 88;
/** The agent phase's two containers. */
const DONOR_QUOTA = 160 * MiB;
const RECIPIENT_QUOTA = 64 * MiB;
const FILES = ['/scratch/f1', '/scratch/f2', '/scratch/f3'];
const SOURCE = '/data/source';
const RUNDIR = '/run/eph';
/** Runs its arguments in the daemon's cgroup, in a mount namespace where the cgroup tree is read-only. */
const AS_CONTAINER = 'echo $$ > /sys/fs/cgroup/daemon/cgroup.procs && mount --bind /sys/fs/cgroup /sys/fs/cgroup && mount -o remount,bind,ro /sys/fs/cgroup && exec "$@"';
/** The environment that runs a program under the shim, served by the daemon of `rundir` for `root`. */
const shimEnv = (rundir: string, root: string): NodeJS.ProcessEnv => ({ LD_PRELOAD: '/lib/libephemera.so', EPHEMERA_SOCK: `${rundir}/shim.sock`, EPHEMERA_ROOTS: root, PATH: '/bin' });
const SHIM_ENV = shimEnv(RUNDIR, '/scratch');

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

/**
 * Starts ephemerad for the function cgroup `cg` as it runs in a container: in a cgroup of its own
 * (the files it moves to disk land on this guest's tmpfs root, charged to their writer), with the
 * cgroup tree read-only, so it follows the guard its host sets.
 */
async function containerDaemon(cg: InstanceCgroup, rundir: string, root: string): Promise<{ proc: ChildProcess; client: DaemonClient }> {
  mkdirSync(rundir, { recursive: true, mode: 0o700 });
  mkdirSync(root, { recursive: true });
  const proc = await startDaemon({
    argv: ['/bin/ephemerad', '--rundir', rundir, '--root', root, '--cgroup', cg.path, '--log', `${rundir}.log`, '--debug'],
    wrap: (argv) => ['/bin/unshare', '-m', '/bin/sh', '-c', AS_CONTAINER, 'sh', ...argv],
    stdout: 'ignore',
    stderr: 'inherit',
    timeoutMs: 60_000,
  });
  return { proc, client: await DaemonClient.connect(`${rundir}/control.sock`, { timeoutMs: 5000, requestTimeoutMs: 60_000 }) };
}

async function stopDaemon(d: { proc: ChildProcess; client: DaemonClient }): Promise<void> {
  d.client.close();
  d.proc.kill('SIGTERM');
  await until(() => d.proc.exitCode !== null || d.proc.signalCode !== null, 10_000);
}

async function main(): Promise<void> {
  say('location', await findMemoryCgroup());
  mkdirSync('/sys/fs/cgroup/daemon');
  mkdirSync('/data');
  writeFileSync(SOURCE, randomBytes(FILE_BYTES));
  const fn = await createInstanceCgroup({ name: 'fn', memoryLimit: QUOTA });
  say('fn', { path: fn.path, version: fn.version, max: control(fn, 'memory.max'), swap_max: control(fn, 'memory.swap.max') });

  const { proc: daemonProc, client: daemon } = await containerDaemon(fn, RUNDIR, '/scratch');

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
    await stopDaemon({ proc: daemonProc, client: daemon });
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
  await agentPhase();
  say('daemon_log', readFileSync(`${RUNDIR}.log`, 'utf8').split('\n').filter((l) => /budget |oom guard|follow/.test(l)).slice(0, 8));
}

/**
 * The engine seam of the agent in this guest, which has no Docker: each "container" is a process
 * in a function cgroup (what `inspect` reports, so the agent finds the cgroup from its pid, as it
 * does for a Docker container), registered with the agent (`registerExternal`), which is all a
 * registered container needs of the engine. There is no engine record to keep true, so `update`
 * only counts. Everything a created container needs is refused: test support, not a process mode.
 */
function guestEngine(inits: ReadonlyMap<string, ChildProcess>, updates: string[]): ContainerEngine {
  const refuse = (op: string): Promise<never> => Promise.reject(new Error(`the guest has no container engine: ${op} is not available; only registered containers run here`));
  return {
    ping: () => Promise.resolve({ apiVersion: 'guest' }),
    info: () => refuse('info'),
    hasImage: () => Promise.resolve(false),
    importImage: () => refuse('importImage'),
    removeImage: () => refuse('removeImage'),
    create: () => refuse('create'),
    start: () => refuse('start'),
    update: (id, limits) => {
      updates.push(`${id} ${String(limits.memory)}`);
      return Promise.resolve();
    },
    wait: () => refuse('wait'),
    kill: () => refuse('kill'),
    logs: () => refuse('logs'),
    inspect: (id) => {
      const init = inits.get(id);
      if (init?.pid === undefined) return Promise.reject(new Error(`no process ${id} in the guest`));
      const running = init.exitCode === null && init.signalCode === null;
      return Promise.resolve({ id, running, exitCode: init.exitCode ?? 0, oomKilled: false, pid: running ? init.pid : 0, memory: 0, memorySwap: 0, cpuset: '' });
    },
    remove: () => refuse('remove'),
    list: () => Promise.resolve([]),
    followLogs: () => refuse('followLogs'),
    run: () => refuse('run'),
  };
}

/**
 * 6. The whole node agent ({@link NodeAgent}, with its tenant's Manager in this process) on
 * v2: a donor (160 MiB quota, small profile) and a recipient (64 MiB quota, 88 MiB profile) of
 * one tenant, each a cgroup with an ephemerad, registered with the agent. The recipient starts, the
 * donor arrives and lends; the recipient writes 64 MiB of files; the donor finishes first and
 * takes its memory back (the recipient's daemon shrinks first, its files go to disk, intact).
 * Every step's limits are read from the cgroup files, to check the tenant's invariant.
 */
async function agentPhase(): Promise<void> {
  const donor = await createInstanceCgroup({ name: 'donor', memoryLimit: DONOR_QUOTA });
  const recipient = await createInstanceCgroup({ name: 'recipient', memoryLimit: RECIPIENT_QUOTA });
  const inits = new Map<string, ChildProcess>();
  const daemons: { proc: ChildProcess; client: DaemonClient }[] = [];
  try {
    for (const [name, cg] of [['donor', donor], ['recipient', recipient]] as const) {
      daemons.push(await containerDaemon(cg, `/run/eph-${name}`, `/scratch-${name}`));
      inits.set(name, spawn('/bin/sh', ['-c', `echo $$ > ${cg.procsFile} && exec sleep 600`], { stdio: 'ignore' }));
      await until(() => control(cg, 'cgroup.procs') !== '', 10_000);
    }
    const limits = (): { donor: number; recipient: number } => ({ donor: Number(control(donor, 'memory.max')), recipient: Number(control(recipient, 'memory.max')) });
    const highs = (): { donor: string; recipient: string } => ({ donor: control(donor, 'memory.high'), recipient: control(recipient, 'memory.high') });
    const steps: string[] = [];
    let worst = 0;
    const updates: string[] = [];
    const agent = new NodeAgent({
      node: 'guest',
      sharing: 'tenant',
      memoryBytes: 512 * MiB,
      stateDir: '/run/agent',
      parentCgroup: 'ephemera-guest',
      image: 'none (registered containers only)',
      buildDir: '/bin',
      engine: guestEngine(inits, updates),
      // In this process: a Manager process loads fastify for its socket API, which takes longer
      // than spawnManager's 10 s ready bound under an emulated CPU. The Manager's code is the same.
      managers: inProcessManagers(managerDefaults('tenant')),
      onStep: (_tenant, step) => {
        const l = limits();
        worst = Math.max(worst, l.donor + l.recipient);
        steps.push(`${step.kind} ${step.id} ${String(step.bytes)} -> ${String(l.donor)} + ${String(l.recipient)}`);
      },
      log: (m) => say('agent_log', m),
    });
    await agent.prepare();
    const daemonStats = async (): Promise<Record<string, ReturnType<typeof files>>> =>
      Object.fromEntries(await Promise.all(daemons.map(async (d, i) => [i === 0 ? 'donor' : 'recipient', files(await d.client.stats())] as const)));
    await agent.registerExternal('donor', { tenant: 't', function: 'factorial', memoryBytes: DONOR_QUOTA, profile: { ownPeakBytes: 8 * MiB, filePeakBytes: 0 }, controlSocket: '/run/eph-donor/control.sock' });
    await agent.registerExternal('recipient', { tenant: 't', function: 'io', memoryBytes: RECIPIENT_QUOTA, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 64 * MiB }, controlSocket: '/run/eph-recipient/control.sock' });
    const info = await agent.info();
    say('agent_info', { cgroupVersion: info.cgroupVersion, memory: info.memory });

    const started = await agent.invocationStart('recipient');
    const lent = await agent.invocationStart('donor');
    say('agent_lend', { first: started.moves, moves: lent.moves, refused: lent.refused, limits: limits(), highs: highs(), daemons: await daemonStats() });
    const written = [];
    for (const f of ['/scratch-recipient/f1', '/scratch-recipient/f2', '/scratch-recipient/f3', '/scratch-recipient/f4']) {
      written.push((await run(recipient.command(['/bin/dd', `if=${SOURCE}`, `of=${f}`, 'bs=1M']), shimEnv('/run/eph-recipient', '/scratch-recipient'), 120_000)).status);
    }
    say('agent_files', { dd: written, limits: limits(), highs: highs(), daemons: await daemonStats() });
    // The donor's run ends first: its usage measured by the agent (daemon peaks, the v2 cgroup peak).
    const back = await agent.invocationEnd('donor');
    say('agent_reclaim', { moves: back.moves, refused: back.refused, limits: limits(), highs: highs(), daemons: await daemonStats(), oom_kill: [events(donor)['oom_kill'], events(recipient)['oom_kill']] });
    const cmp = [];
    for (const f of ['/scratch-recipient/f1', '/scratch-recipient/f2', '/scratch-recipient/f3', '/scratch-recipient/f4']) {
      cmp.push((await run(['/bin/cmp', SOURCE, f], shimEnv('/run/eph-recipient', '/scratch-recipient'), 120_000)).status);
    }
    const ended = await agent.invocationEnd('recipient');
    await agent.settleRecords();
    say('agent_end', { moves: ended.moves, cmp, limits: limits(), steps, worst, quotas: DONOR_QUOTA + RECIPIENT_QUOTA, updates });
    await agent.forget('donor');
    await agent.forget('recipient');
    await agent.close({ removeContainers: false });
  } finally {
    for (const init of inits.values()) init.kill('SIGKILL');
    for (const d of daemons) await stopDaemon(d);
    await donor.destroy();
    await recipient.destroy();
  }
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
