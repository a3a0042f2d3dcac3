/**
 * `ephemera bench table4-bound`: how much any placement could gain in Table 4's scenario on this
 * host, measured. Table 4's placements differ only in the memory an I/O task's container ends up
 * with (its 150 MiB limit, or grown by a loan to about 258 MiB); under equal CPU caps a CPU task
 * takes the same time wherever it runs, and both "nodes" share one host's disk. So the best any
 * placement can do is give every I/O task all its files in memory, and the worst the baseline can
 * do is leave every I/O task at its limit, spilling the rest to disk. This command runs Table 4's
 * exact I/O task (same code, file size, profile and CPU cap) in real containers of each size, in
 * turns, `concurrent` at a time (Table 4 has four I/O tasks), and bounds the improvement from it.
 * It also reports what the disk under Docker is, and how fast it writes with and without the page
 * cache, so that the reader sees why a spill costs what it costs here.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { ensureDockerEngine } from '../container/dockerd.js';
import { stopChild } from '../platform/child.js';
import { IO_CODE, IO_LIMIT_MIB, IO_PROFILE, api, awaitActivation, awaitEmptyNodes, mean, startPlatform, stat, type Activation, type Platform, type Stat } from './table4.js';

/** The paper's Table 4: our average latency 44.92 % below the baseline's. */
export const PAPER_TABLE4_IMPROVEMENT = 0.4492;
/** Table 4's scenario: four I/O tasks and two CPU tasks. */
const IO_TASKS = 4;
const CPU_TASKS = 2;

export interface BoundOptions {
  readonly cli: readonly string[];
  readonly runs: number;
  /** Container sizes to compare, MiB; the first is the limit alone (the spill arm). */
  readonly containersMiB: readonly number[];
  readonly ioMiB: number;
  readonly containerCpus: number;
  /** I/O tasks run at once in an arm (Table 4 has four). */
  readonly concurrent: number;
  /** The CPU task's spin (Table 4's `--cpu-seconds`): a floor on its latency. */
  readonly cpuSeconds: number;
  readonly progress: (line: string) => void;
}

export interface BoundArm {
  readonly containerMiB: number;
  /** Per run: the mean over the run's concurrent tasks. */
  readonly latencyMs: readonly number[];
  readonly durationMs: readonly number[];
  readonly inMemoryMiB: readonly number[];
  readonly grantedMiB: readonly number[];
  readonly failed: number;
}

export interface DdResult {
  readonly mode: string;
  readonly mibPerSec: number;
  readonly seconds: number;
}

export interface DiskReport {
  readonly dockerRoot: string;
  readonly mounts: readonly string[];
  readonly devices: readonly string[];
  readonly dd: readonly DdResult[];
}

export interface BoundReport {
  readonly arms: readonly BoundArm[];
  readonly disk: DiskReport;
  /** t(limit) / t(all in memory), medians of the run means. */
  readonly ratio: number;
  /** The largest average-latency improvement any placement could give, with t_cpu at its floor. */
  readonly bound: number;
  /** The I/O task's latency in memory that the paper's 44.92 % would need. */
  readonly neededInMemoryMs: number;
  readonly loadavg: readonly number[];
  readonly table: string;
}

/**
 * The largest improvement of the average latency of `io` I/O tasks and `cpu` CPU tasks that a
 * placement can give, when an I/O task takes at most `spillMs` (left at its limit) and at least
 * `memMs` (all files in memory), and a CPU task takes `cpuMs` whatever the placement:
 * `io (spill − mem) / (io spill + cpu cpuMs)`. It falls as `cpuMs` grows, so a floor for `cpuMs`
 * gives a ceiling.
 */
export function improvementBound(spillMs: number, memMs: number, cpuMs: number, io = IO_TASKS, cpu = CPU_TASKS): number {
  return (io * (spillMs - memMs)) / (io * spillMs + cpu * cpuMs);
}

/** The in-memory latency at which {@link improvementBound} reaches `target`. */
export function memMsFor(target: number, spillMs: number, cpuMs: number, io = IO_TASKS, cpu = CPU_TASKS): number {
  return spillMs - (target * (io * spillMs + cpu * cpuMs)) / io;
}

function run(cmd: string, args: readonly string[], timeoutMs = 120_000): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  return { ok: r.status === 0, out: r.stdout, err: r.error === undefined ? r.stderr : r.error.message };
}

/** Seconds from dd's last line ("N bytes (...) copied, 0.38 s, 700 MB/s"). */
export function ddSeconds(stderr: string): number {
  const m = /copied, ([0-9.]+) s/.exec(stderr);
  return m === null ? NaN : Number(m[1]);
}

/**
 * What backs Docker's root and `/`, and `dd` of `mib` MiB in 1 MiB blocks into Docker's root:
 * through the page cache, through it with an fsync at the end, and with O_DIRECT (no cache).
 */
export function probeDisk(mib = 256): DiskReport {
  const info = run('docker', ['info', '--format', '{{.DockerRootDir}}'], 30_000);
  const dockerRoot = info.ok ? info.out.trim() : '/var/lib/docker';
  const mounts = [dockerRoot, '/'].map((t) => {
    const f = run('findmnt', ['-n', '-o', 'TARGET,SOURCE,FSTYPE,OPTIONS', '-T', t], 10_000);
    return `${t}: ${f.ok ? f.out.trim().replace(/\s+/g, ' ') : `findmnt failed: ${f.err.trim()}`}`;
  });
  const lsblk = run('lsblk', ['-d', '-n', '-o', 'NAME,TYPE,SIZE,ROTA,MODEL'], 10_000);
  const devices = lsblk.ok ? lsblk.out.trim().split('\n').map((l) => l.trim().replace(/\s+/g, ' ')) : [`lsblk failed: ${lsblk.err.trim()}`];
  const file = join(dockerRoot, `ephemera-table4-bound-${String(process.pid)}.dd`);
  const dd: DdResult[] = [];
  try {
    for (const [mode, extra] of [['page cache', []], ['page cache + fsync', ['conv=fsync']], ['O_DIRECT', ['oflag=direct']], ['O_DIRECT + fsync', ['oflag=direct', 'conv=fsync']]] as const) {
      rmSync(file, { force: true });
      const r = run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${String(mib)}`, ...extra]);
      const seconds = ddSeconds(r.err);
      dd.push({ mode, seconds, mibPerSec: r.ok ? mib / seconds : NaN });
    }
  } finally {
    rmSync(file, { force: true });
  }
  return { dockerRoot, mounts, devices, dd };
}

async function oneArm(p: Platform, containerMiB: number, o: BoundOptions): Promise<{ acts: Activation[]; failed: number }> {
  const ids: string[] = [];
  for (let i = 0; i < o.concurrent; i++) {
    const r = await api(p, 'POST', `actions/io-${String(containerMiB)}-${String(i + 1)}`, { mb: o.ioMiB });
    if (r.status !== 202) throw new EphemeraError('EPH_BENCH_FAILED', `table4-bound: invoking the ${String(containerMiB)} MiB I/O task answered ${String(r.status)}: ${JSON.stringify(r.body).slice(0, 200)}`);
    ids.push(String(r.body.activationId));
  }
  const deadline = Date.now() + 300_000;
  const acts: Activation[] = [];
  for (const id of ids) acts.push(await awaitActivation(p, id, deadline, 'table4-bound'));
  await awaitEmptyNodes(p, 1, 'table4-bound');
  return { acts, failed: acts.filter((a) => !a.success).length };
}

export async function runTable4Bound(o: BoundOptions): Promise<BoundReport> {
  const docker = ensureDockerEngine();
  if (docker !== null) throw new EphemeraError('EPH_BENCH_FAILED', `bench table4-bound needs Docker: ${docker}`);
  o.progress('bench table4-bound: probing the disk under Docker (dd, 256 MiB, four ways)');
  const disk = probeDisk();
  const dir = mkdtempSync('/tmp/t4b-');
  let child: ChildProcess | undefined;
  try {
    // One node with room for every arm's containers at once, so that no arm waits for room; one
    // arm runs at a time, so no container lends to another (the I/O tasks all need more than their limit).
    const largest = Math.max(...o.containersMiB);
    const nodeMemory = `${String(largest * o.concurrent + 256)}M`;
    o.progress(`bench table4-bound: starting a platform (1 node of ${nodeMemory}, every container capped at ${String(o.containerCpus)} CPUs)`);
    const p = await startPlatform(o.cli, dir, 'most-free', { nodes: 1, nodeMemory, cpus: o.containerCpus, tag: 't4b' });
    child = p.child;
    for (const mib of o.containersMiB) {
      for (let i = 0; i < o.concurrent; i++) {
        const r = await api(p, 'PUT', `actions/io-${String(mib)}-${String(i + 1)}?overwrite=true`, {
          exec: { kind: 'python:3', code: IO_CODE },
          limits: { memory: mib, timeout: 300_000 },
          annotations: [{ key: 'ephemera.profile', value: IO_PROFILE }],
        });
        if (r.status !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `table4-bound: deploying the ${String(mib)} MiB I/O task answered ${String(r.status)}: ${JSON.stringify(r.body).slice(0, 200)}`);
      }
    }
    const arms = o.containersMiB.map((containerMiB) => ({ containerMiB, latencyMs: [] as number[], durationMs: [] as number[], inMemoryMiB: [] as number[], grantedMiB: [] as number[], failed: 0 }));
    for (let r = 1; r <= o.runs; r++) {
      // Rotate which size goes first, so that none always runs on a machine another just warmed.
      const order = arms.map((_a, i) => arms[(i + r - 1) % arms.length]).filter((a) => a !== undefined);
      for (const arm of order) {
        o.progress(`bench table4-bound: run ${String(r)}/${String(o.runs)}, ${String(o.concurrent)} I/O task(s) in ${String(arm.containerMiB)} MiB containers`);
        const { acts, failed } = await oneArm(p, arm.containerMiB, o);
        arm.latencyMs.push(mean(acts.map((a) => a.latencyMs)));
        arm.durationMs.push(mean(acts.map((a) => a.durationMs)));
        arm.inMemoryMiB.push(mean(acts.map((a) => a.inMemoryMiB)));
        arm.grantedMiB.push(mean(acts.map((a) => a.grantedMiB)));
        arm.failed += failed;
      }
    }
    const spill = stat(arms[0]?.latencyMs ?? []).median;
    const best = Math.min(...arms.map((a) => stat(a.latencyMs).median));
    const cpuMs = o.cpuSeconds * 1000;
    const ratio = spill / best;
    const bound = improvementBound(spill, best, cpuMs);
    const neededInMemoryMs = memMsFor(PAPER_TABLE4_IMPROVEMENT, spill, cpuMs);
    const { loadavg } = await import('node:os');
    const load = loadavg();
    return { arms, disk, ratio, bound, neededInMemoryMs, loadavg: load, table: format(arms, disk, { ratio, bound, neededInMemoryMs, spill, best, cpuMs, load, o }) };
  } finally {
    if (child !== undefined) await stopChild(child, 'SIGTERM', 120_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Derived {
  readonly ratio: number;
  readonly bound: number;
  readonly neededInMemoryMs: number;
  readonly spill: number;
  readonly best: number;
  readonly cpuMs: number;
  readonly load: readonly number[];
  readonly o: BoundOptions;
}

function format(arms: readonly BoundArm[], disk: DiskReport, d: Derived): string {
  const sec = (x: Stat): string => `${(x.median / 1000).toFixed(2)} s [${(x.min / 1000).toFixed(2)}–${(x.max / 1000).toFixed(2)}]`;
  const lines = [
    `Table 4's bound: its I/O task (${String(d.o.ioMiB)} MiB file, written and read 3 times, 1 MiB blocks) in real containers, ${String(d.o.concurrent)} at once,`,
    `every container capped at ${String(d.o.containerCpus)} CPUs; sizes in turns, ${String(d.o.runs)} runs; median [min–max] of the run means`,
    '',
    'container   latency (wait+run)    run time              files in memory at peak   container at end',
  ];
  for (const a of arms) {
    lines.push(`${`${String(a.containerMiB)} MiB`.padEnd(11)} ${sec(stat(a.latencyMs)).padEnd(21)} ${sec(stat(a.durationMs)).padEnd(21)} ${`${stat(a.inMemoryMiB).median.toFixed(0)} MiB`.padEnd(25)} ${stat(a.grantedMiB).median.toFixed(0)} MiB`);
  }
  const failed = arms.reduce((s, a) => s + a.failed, 0);
  lines.push(
    '',
    `I/O task at its ${String(arms[0]?.containerMiB ?? IO_LIMIT_MIB)} MiB limit (spilling) against the fastest size: ratio ${d.ratio.toFixed(3)} (${(d.spill / 1000).toFixed(2)} s / ${(d.best / 1000).toFixed(2)} s)`,
    `largest average-latency improvement any placement could give (${String(IO_TASKS)} I/O at ${(d.spill / 1000).toFixed(2)} s -> ${(d.best / 1000).toFixed(2)} s, ${String(CPU_TASKS)} CPU at >= ${(d.cpuMs / 1000).toFixed(2)} s): ${(d.bound * 100).toFixed(2)}% (paper: ${(PAPER_TABLE4_IMPROVEMENT * 100).toFixed(2)}%)`,
    d.neededInMemoryMs > 0
      ? `the paper's ${(PAPER_TABLE4_IMPROVEMENT * 100).toFixed(2)}% would need the in-memory I/O task to take ${(d.neededInMemoryMs / 1000).toFixed(2)} s, i.e. a ratio of ${(d.spill / d.neededInMemoryMs).toFixed(2)}`
      : `the paper's ${(PAPER_TABLE4_IMPROVEMENT * 100).toFixed(2)}% is out of reach here: even an I/O task of 0 s would give ${(improvementBound(d.spill, 0, d.cpuMs) * 100).toFixed(2)}%`,
    '',
    `disk: Docker's root ${disk.dockerRoot}`,
    ...disk.mounts.map((m) => `  mount ${m}`),
    ...disk.devices.map((m) => `  device ${m}`),
    ...disk.dd.map((x) => `  dd 256 MiB, 1 MiB blocks, ${x.mode.padEnd(18)} ${x.mibPerSec.toFixed(0).padStart(6)} MiB/s (${x.seconds.toFixed(3)} s)`),
    '',
    `failed activations: ${String(failed)}; load average at the end: ${d.load.map((l) => l.toFixed(2)).join(' ')}`,
  );
  return lines.join('\n');
}
