/**
 * `ephemera bench io`: the file-system micro-benchmark of issue 2.
 *
 * Every timed loop runs in native code (bench/native/iobench.c); this harness only places the
 * contenders, repeats the runs, takes medians and prints one table of ratios, all from one run:
 *
 * - ephemera: a file in a managed root, under `ephemera run`;
 * - tmpfs: a tmpfs this harness mounts (needs root);
 * - disk: a directory on the machine's disk file system (page cache);
 * - memcpy: the same access pattern as plain memcpy on a malloc'd arena, the physical limit.
 *
 * The data workloads (random and sequential) are paired: one iobench process under `ephemera run`
 * per repeat times all four contenders in turns of one lap each (random: LAP_OPS operations;
 * sequential: one pass), in rotating order.  The tmpfs and disk files are called through libc's own
 * definitions (pointers from libc.so.6), so the shim in the process costs them nothing; the
 * ephemera file is called by name, through the shim.  Every round compares the contenders at the
 * same moment, so the table's ratios are medians of per-round ratios, not quotients of medians
 * taken from processes that ran seconds apart (those differ by +-10% here, as much as the gap being
 * measured).  Before each random lap the contender reads its whole file untimed: the four
 * contenders' 32 MiB each cannot share the 32 MiB last-level cache, and without it every lap would
 * measure the refill after the previous contender's lap.  The metadata loop runs one process per
 * contender.
 *
 * Pass-through overhead is measured separately, on a directory that is *not* managed: iobench's
 * pass-* loops run 250 pairs of short laps in one process, one calling open/fstat/close/pread by
 * name (which the shim interposes) and one calling libc's own definitions through pointers from
 * libc.so.6 (which it cannot see), and report the median of the per-pair ratios, so a burst of
 * someone else's work spoils a pair, not the result.  Both halves share the process's layout, the
 * file and the moment, so the ratio is the shim's cost alone.  It is measured with the shim loaded
 * (and a daemon running) and without it (the control, about 1.00); the overhead is their quotient.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { EphemeraError } from '../core/errors.js';
import { formatSize } from '../core/size.js';
import { readStatsFile } from '../daemon-client/stats.js';
import type { Progress } from './progress.js';
import { makeScratch } from './scratch.js';

const execFileP = promisify(execFile);

/** What the harness needs from the build. */
export interface IoBenchTools {
  /** build/ephemera */
  readonly ephemera: string;
  /** build/iobench */
  readonly iobench: string;
}

export interface IoBenchOptions {
  /** Runs of each (workload, contender); the median is reported. @default 5 */
  readonly repeats: number;
  /** Operations per random/meta run. @default 500000 */
  readonly ops: number;
  /** Whole-file passes per sequential run. @default 8 */
  readonly passes: number;
  /** Directory on disk for the work files. @default /var/tmp */
  readonly workBase: string;
  /** Told about each run (stderr); the table is returned. */
  readonly progress: Progress;
}

export const IO_DEFAULTS = { repeats: 5, ops: 500_000, passes: 8, workBase: '/var/tmp' } as const;

const FILE_SIZE = 32 * 1024 * 1024;
const BLOCK = 8192;

/**
 * Random operations per lap of a paired run.  The four contenders' data (3 files and an arena of
 * 32 MiB each) cannot share the 32 MiB last-level cache, so each lap starts with the caches full of
 * the previous contender's data.  Laps of 500-5,000 operations measured every contender slower
 * (memcpy 1.3-1.5 µs instead of 1.0) and the ratios squeezed towards 1 by that refill; from
 * 20,000 operations (20-60 ms a lap) on, the ratios stopped moving with the lap length (20,000,
 * 50,000 and 100,000 gave the same spread).  25,000 leaves 20 rounds per 500,000-operation run.
 */
export const LAP_OPS = 25_000;

export type Contender = 'ephemera' | 'tmpfs' | 'disk' | 'memcpy';
const CONTENDERS: readonly Contender[] = ['ephemera', 'tmpfs', 'disk', 'memcpy'];

type Kind = 'random' | 'sequential' | 'meta' | 'namespace';

export interface Workload {
  /** iobench's workload name. */
  readonly name: string;
  /** The row's key in the report (defaults to `name`). */
  readonly key?: string;
  readonly label: string;
  readonly kind: Kind;
  /** The I/O buffer lies this many bytes into a page (iobench --buf-offset); malloc's choice if absent. */
  readonly bufOffset?: number;
  /** Shown for what it tells, not one of the targets. */
  readonly informational?: true;
  /** Namespace workloads: operations per lap at the default --ops (scaled with --ops). */
  readonly lapOps?: number;
  /** Namespace workloads: iobench --entries (files listed, or files per rename set; a rename lap is one set). */
  readonly entries?: number;
  /** Namespace workloads: whether --entries scales with --ops like a lap (a set) or stays fixed (a listing). */
  readonly scaleEntries?: boolean;
  /** Namespace workloads: laps per contender per run, a multiple of 6 (see NS_ROUNDS, the default). */
  readonly rounds?: number;
}

const keyOf = (w: Workload): string => w.key ?? w.name;

/**
 * The lock row's laps: short, and many.  A lock + unlock pair takes about 1.1 µs, so a lap of 2000
 * pairs (2.4 ms) spanned time slices on a loaded machine and timed the wait for a core (2-5× the
 * CPU time; the per-round ratio's quartiles as far apart as 0.28 and 2.83 at load 7).  A lap of
 * 100 pairs (110 µs) mostly fits in one slice, and the median of 240 per-round ratios resolves 1%
 * (quartiles mostly within ±2% at the same load).  Same operations per run as before (24,000 pairs
 * per contender).
 */
const LOCK_LAP = 100;
export const LOCK_ROUNDS = 240;

const WORKLOADS: readonly Workload[] = [
  { name: 'rand-pread', label: 'random 8 KiB pread', kind: 'random' },
  { name: 'rand-pwrite', label: 'random 8 KiB pwrite', kind: 'random' },
  { name: 'rand-read', label: 'random 8 KiB lseek+read', kind: 'random' },
  { name: 'rand-write', label: 'random 8 KiB lseek+write', kind: 'random' },
  { name: 'seq-write', label: 'sequential 8 KiB write', kind: 'sequential' },
  { name: 'seq-read', label: 'sequential 8 KiB read', kind: 'sequential' },
  { name: 'meta', label: 'open+fstat+close', kind: 'meta' },
  // glibc puts a malloc'd buffer of 128 KiB or more 16 bytes into a page; reading a page-aligned
  // range into it is where rep movsb (memcpy's and the kernel's copy) slows down 4-5x on AMD Zen 3.
  { name: 'rand-pread', key: 'rand-pread-buf16', label: 'random 8 KiB pread, buffer 16 B into a page', kind: 'random', bufOffset: 16, informational: true },
  // Issue 15's namespace rows: paired like the data workloads, NS_ROUNDS laps per contender.
  { name: 'md-create', label: 'create+write 4 KiB+close+unlink', kind: 'namespace', lapOps: 200 },
  { name: 'md-rename', label: 'create/rename/stat/unlink, per file of a set', kind: 'namespace', entries: 1000, scaleEntries: true },
  { name: 'md-mkdir', label: 'mkdir+rmdir', kind: 'namespace', lapOps: 200 },
  { name: 'md-readdir', label: 'readdir of 1000 entries', kind: 'namespace', lapOps: 5, entries: 1000 },
  { name: 'md-lock', label: 'fcntl lock+unlock', kind: 'namespace', lapOps: LOCK_LAP, rounds: LOCK_ROUNDS },
  // The same by F_OFD_SETLK: the open file description's lock, which the shim first gives a description of its own.
  { name: 'md-ofdlock', label: 'fcntl OFD lock+unlock', kind: 'namespace', lapOps: LOCK_LAP, rounds: LOCK_ROUNDS },
];

/**
 * Laps per contender of a namespace workload unless it says otherwise (Workload.rounds): a multiple
 * of 2 × 3 contenders, so that the rotating order puts each contender in each position, after each
 * other one, equally often.
 */
export const NS_ROUNDS = 12;

/**
 * A namespace workload's iobench sizes at a given --ops: the lap (and a rename set) shrink in
 * proportion to --ops / its default, never below a few operations, so a tiny run still takes
 * NS_ROUNDS laps of every contender.
 */
export function namespaceSizes(w: Workload, ops: number): { readonly lapOps: number; readonly entries: number; readonly ops: number } {
  const scale = ops / IO_DEFAULTS.ops;
  const scaled = (base: number, min: number): number => Math.max(min, Math.round(base * scale));
  const entries = w.entries === undefined ? 1000 : w.scaleEntries === true ? scaled(w.entries, 10) : w.entries;
  const lapOps = w.name === 'md-rename' ? entries : scaled(w.lapOps ?? 100, 2);
  return { lapOps, entries, ops: lapOps * (w.rounds ?? NS_ROUNDS) };
}

/** Pass-through loops: on an unmanaged directory, with and without the shim. */
const PASS_THROUGH: readonly Workload[] = [
  { name: 'pass-pread', label: 'random 8 KiB pread, unmanaged', kind: 'random' },
  { name: 'pass-meta', label: 'open+fstat+close, unmanaged', kind: 'meta' },
];

/** One pass-through measurement: by-name laps and direct-libc laps of one process. */
export interface PassThrough {
  /** Median over runs of the libc half's median lap, with the shim loaded. */
  readonly shim: number;
  /** The same without the shim. */
  readonly plain: number;
  /** Median over runs of each run's median by-name/direct lap-pair ratio, with the shim. */
  readonly shimRatio: number;
  /** The same without the shim. */
  readonly plainRatio: number;
  /** Lowest and highest per-repeat overhead (the shim run and the plain run of one repeat). */
  readonly range: readonly [number, number];
}

/** Pass-through overhead: how much more the shim's libc entry points cost than plain libc's. */
export function passThroughOverhead(p: PassThrough): number {
  return p.shimRatio / p.plainRatio - 1;
}

/**
 * The repeats of one pass-through loop: `shimRatios[i]` and `plainRatios[i]` are repeat i's
 * by-name/direct ratios with and without the shim, the µs lists the by-name laps (for scale only).
 */
export function summarisePassThrough(
  shimRatios: readonly number[],
  plainRatios: readonly number[],
  shimNs: readonly number[],
  plainNs: readonly number[],
): PassThrough {
  const perRun = shimRatios.map((x, i) => x / (plainRatios[i] ?? NaN) - 1);
  return {
    shim: median(shimNs),
    plain: median(plainNs),
    shimRatio: median(shimRatios),
    plainRatio: median(plainRatios),
    range: [Math.min(...perRun), Math.max(...perRun)],
  };
}

/** One line of iobench output. */
export interface IobenchResult {
  readonly workload: string;
  readonly target: string;
  readonly ops: number;
  readonly ns: number;
  readonly ns_per_op: number;
  /** The median over the loop's laps (see iobench.c): what the table reports. */
  readonly lap_median_ns_per_op: number;
  /** pass-* workloads: the median lap of the direct-libc half; 0 otherwise. */
  readonly direct_lap_median_ns_per_op: number;
  /** pass-* workloads: the median over lap pairs of by-name lap / direct lap; 0 otherwise. */
  readonly pair_ratio_median: number;
}

/** q1, median and q3 of a list (linear interpolation between ranks). */
export type Quartiles = readonly [number, number, number];

export function quartiles(xs: readonly number[]): Quartiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => {
    const pos = (s.length - 1) * q;
    const lo = Math.floor(pos);
    const a = s[lo] ?? NaN;
    const b = s[Math.min(lo + 1, s.length - 1)] ?? NaN;
    return a + (b - a) * (pos - lo);
  };
  return [at(0.25), at(0.5), at(0.75)];
}

/**
 * iobench's result: the last line of its output, parsed.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when that line is not JSON
 */
function lastJsonLine(stdout: string): { readonly line: string; readonly v: unknown } {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return { line, v: JSON.parse(line) as unknown };
  } catch {
    throw new EphemeraError('EPH_BENCH_FAILED', `iobench printed ${JSON.stringify(line.slice(0, 200))}, not a JSON result; rebuild with make`);
  }
}

/** One paired iobench run: each contender's laps in ns per operation, in round order. */
export interface PairedRun {
  readonly workload: string;
  readonly laps: Partial<Record<Contender, readonly number[]>>;
}

/**
 * Parse the JSON line of a paired iobench run (several targets).
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when it is not a paired result with equal lap counts
 */
export function parsePaired(stdout: string): PairedRun {
  const { line, v } = lastJsonLine(stdout);
  const r = v as { workload?: unknown; paired?: unknown; laps?: unknown };
  if (typeof r.workload !== 'string' || r.paired !== true || typeof r.laps !== 'object' || r.laps === null) {
    throw new EphemeraError('EPH_BENCH_FAILED', `iobench result is not a paired run (workload, paired, laps): ${line.slice(0, 200)}; rebuild with make`);
  }
  const laps: Partial<Record<Contender, readonly number[]>> = {};
  let rounds: number | undefined;
  for (const [name, list] of Object.entries(r.laps)) {
    if (!(CONTENDERS as readonly string[]).includes(name) || !Array.isArray(list) || !list.every((x) => typeof x === 'number' && x > 0)) {
      throw new EphemeraError('EPH_BENCH_FAILED', `iobench paired result has a bad lap list for ${JSON.stringify(name)}: ${line.slice(0, 200)}`);
    }
    if (rounds !== undefined && list.length !== rounds) {
      throw new EphemeraError('EPH_BENCH_FAILED', `iobench paired result: ${name} has ${list.length} laps, the others ${rounds}`);
    }
    rounds = list.length;
    laps[name as Contender] = list as number[];
  }
  return { workload: r.workload, laps };
}

/** Per-round quotients num/den over all runs that have both contenders. */
export function roundRatios(runs: readonly PairedRun[], num: Contender, den: Contender): number[] {
  const out: number[] = [];
  for (const run of runs) {
    const a = run.laps[num];
    const b = run.laps[den];
    if (a === undefined || b === undefined) continue;
    a.forEach((x, i) => out.push(x / (b[i] ?? NaN)));
  }
  return out;
}

/** What the paired runs of one data workload show. */
export interface PairedSummary {
  /** Median lap per contender (ns per operation), over every round of every run. */
  readonly lap: Partial<Record<Contender, number>>;
  /** Per-round tmpfs/ephemera time: ephemera's speed-up over tmpfs. */
  readonly vsTmpfs: Quartiles | undefined;
  /** Per-round disk/ephemera time. */
  readonly vsDisk: Quartiles | undefined;
  /** Per-round ephemera/memcpy time: the shim's distance from the physical limit. */
  readonly toMemcpy: Quartiles | undefined;
  /** Per-round tmpfs/memcpy time: the most any copying design could gain over tmpfs in that round. */
  readonly bound: Quartiles | undefined;
  /** Rounds over all runs. */
  readonly rounds: number;
}

export function summarisePaired(runs: readonly PairedRun[]): PairedSummary {
  const lap: Partial<Record<Contender, number>> = {};
  for (const c of CONTENDERS) {
    const all = runs.flatMap((r) => r.laps[c] ?? []);
    if (all.length > 0) lap[c] = median(all);
  }
  const q = (num: Contender, den: Contender): Quartiles | undefined => {
    const xs = roundRatios(runs, num, den);
    return xs.length === 0 ? undefined : quartiles(xs);
  };
  return {
    lap,
    vsTmpfs: q('tmpfs', 'ephemera'),
    vsDisk: q('disk', 'ephemera'),
    toMemcpy: q('ephemera', 'memcpy'),
    bound: q('tmpfs', 'memcpy'),
    rounds: runs.reduce((n, r) => n + (r.laps.ephemera?.length ?? 0), 0),
  };
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? NaN;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? NaN) + hi) / 2;
}

/**
 * Parse iobench's one JSON line.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when it is not what iobench prints
 */
export function parseIobench(stdout: string): IobenchResult {
  const { line, v } = lastJsonLine(stdout);
  const r = v as Partial<Record<keyof IobenchResult, unknown>>;
  if (
    typeof r.workload !== 'string' ||
    typeof r.ns_per_op !== 'number' ||
    typeof r.lap_median_ns_per_op !== 'number' ||
    typeof r.ops !== 'number' ||
    typeof r.ns !== 'number' ||
    typeof r.target !== 'string'
  ) {
    throw new EphemeraError('EPH_BENCH_FAILED', `iobench result lacks workload/target/ops/ns/ns_per_op/lap_median_ns_per_op: ${line.slice(0, 200)}; rebuild with make`);
  }
  const direct = typeof r.direct_lap_median_ns_per_op === 'number' ? r.direct_lap_median_ns_per_op : 0;
  const pair = typeof r.pair_ratio_median === 'number' ? r.pair_ratio_median : 0;
  if (r.workload.startsWith('pass-') && !(pair > 0)) {
    throw new EphemeraError('EPH_BENCH_FAILED', `iobench ${r.workload} result lacks pair_ratio_median: ${line.slice(0, 200)}; rebuild with make`);
  }
  return {
    workload: r.workload,
    target: r.target,
    ops: r.ops,
    ns: r.ns,
    ns_per_op: r.ns_per_op,
    lap_median_ns_per_op: r.lap_median_ns_per_op,
    direct_lap_median_ns_per_op: direct,
    pair_ratio_median: pair,
  };
}

async function run(argv: readonly string[]): Promise<string> {
  const [file, ...args] = argv;
  try {
    const { stdout } = await execFileP(file ?? '', args, { maxBuffer: 1 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new EphemeraError('EPH_BENCH_FAILED', `${argv.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

interface Places {
  readonly work: string;
  readonly ephRoot: string;
  readonly disk: string;
  readonly unmanaged: string;
  readonly tmpfs: string | undefined;
}

/** Statistics from the last ephemera run, to show the data really was served from memory. */
interface FastOps {
  reads: number;
  writes: number;
  seeks: number;
  stats: number;
}

function readFastOps(statsFile: string): FastOps {
  const s = readStatsFile(statsFile);
  return { reads: s.fast_reads, writes: s.fast_writes, seeks: s.fast_seeks, stats: s.fast_stats };
}

/** `targets`: iobench's target flags (`--dir DIR`, `--memcpy`, ...). */
function iobenchArgs(tools: IoBenchTools, w: Workload, opts: IoBenchOptions, targets: readonly string[]): string[] {
  if (w.kind === 'namespace') {
    const n = namespaceSizes(w, opts.ops);
    return [tools.iobench, w.name, ...targets, '--ops', String(n.ops), '--lap-ops', String(n.lapOps), '--entries', String(n.entries)];
  }
  return [
    tools.iobench,
    w.name,
    ...targets,
    '--ops', String(opts.ops),
    '--passes', String(opts.passes),
    '--size', String(FILE_SIZE),
    '--block', String(BLOCK),
    '--lap-ops', String(Math.min(LAP_OPS, opts.ops)),
    ...(w.bufOffset === undefined ? [] : ['--buf-offset', String(w.bufOffset)]),
  ];
}

/**
 * The targets of a paired run: ephemera by name (through the shim), tmpfs and disk straight into
 * libc (the shim in the process costs them nothing), memcpy.
 */
export function pairedTargets(places: { readonly ephRoot: string; readonly disk: string; readonly tmpfs: string | undefined }, memcpy = true): string[] {
  return [
    '--by-name', `ephemera=${places.ephRoot}`,
    ...(places.tmpfs === undefined ? [] : ['--direct', `tmpfs=${places.tmpfs}`]),
    '--direct', `disk=${places.disk}`,
    ...(memcpy ? ['--memcpy'] : []),
  ];
}

function underEphemera(tools: IoBenchTools, places: Places, statsFile: string, argv: readonly string[]): string[] {
  return [tools.ephemera, 'run', '--root', places.ephRoot, '--discard', '--stats', statsFile, '--', ...argv];
}

export interface IoBenchReport {
  /** Median ns per operation by workload and contender (data workloads: median lap of the paired runs); absent when skipped. */
  readonly medians: Record<string, Partial<Record<Contender, number>>>;
  /** Data workloads: the paired runs' per-round ratios. */
  readonly paired: Record<string, PairedSummary>;
  readonly passThrough: Record<string, PassThrough>;
  readonly fastOps: Record<string, FastOps>;
  readonly skipped: readonly string[];
  readonly table: string;
}

/**
 * Run the whole benchmark and build the table.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when a run fails or the work directory is on a tmpfs
 */
export async function runIoBench(tools: IoBenchTools, opts: IoBenchOptions): Promise<IoBenchReport> {
  const scratch = makeScratch({ base: opts.workBase, prefix: 'ephemera-bench-', tmpfsBytes: 4 * FILE_SIZE });
  const work = scratch.dir;
  const skipped: string[] = scratch.tmpfsSkipped === undefined ? [] : [`tmpfs: ${scratch.tmpfsSkipped}`];
  try {
    const ephRoot = join(work, 'managed');
    const disk = join(work, 'disk');
    const unmanaged = join(work, 'unmanaged');
    for (const d of [ephRoot, disk, unmanaged]) mkdirSync(d);
    const places: Places = { work, ephRoot, disk, unmanaged, tmpfs: scratch.tmpfs };
    const statsFile = join(work, 'stats.json');
    const samples = new Map<string, number[]>();
    const add = (key: string, v: number): void => {
      const list = samples.get(key) ?? [];
      list.push(v);
      samples.set(key, list);
    };
    const fastOps: Record<string, FastOps> = {};
    const pairedRuns = new Map<string, PairedRun[]>();
    const metaContenders = CONTENDERS.filter((c) => c !== 'memcpy' && (c !== 'tmpfs' || places.tmpfs !== undefined));
    const data = WORKLOADS.filter((w) => w.kind !== 'meta');
    const meta = WORKLOADS.filter((w) => w.kind === 'meta');
    const total = opts.repeats * (data.length + meta.length * metaContenders.length + PASS_THROUGH.length * 2);
    opts.progress.begin(total);
    const tick = (what: string): void => opts.progress.finish(what, 'done');

    for (let r = 0; r < opts.repeats; r++) {
      for (const w of data) {
        const out = await run(underEphemera(tools, places, statsFile, iobenchArgs(tools, w, opts, pairedTargets(places, w.kind !== 'namespace'))));
        const res = parsePaired(out);
        pairedRuns.set(keyOf(w), [...(pairedRuns.get(keyOf(w)) ?? []), res]);
        fastOps[keyOf(w)] = readFastOps(statsFile);
        tick(`${keyOf(w)}, all contenders in turns`);
      }
      for (const w of meta) {
        for (const c of metaContenders) {
          const target = c === 'ephemera' ? places.ephRoot : c === 'tmpfs' ? (places.tmpfs ?? '') : places.disk;
          const argv = iobenchArgs(tools, w, opts, ['--dir', target]);
          const out = await run(c === 'ephemera' ? underEphemera(tools, places, statsFile, argv) : argv);
          add(`${w.name}/${c}`, parseIobench(out).lap_median_ns_per_op);
          if (c === 'ephemera') fastOps[w.name] = readFastOps(statsFile);
          tick(`${w.name} on ${c}`);
        }
      }
      for (const w of PASS_THROUGH) {
        const argv = iobenchArgs(tools, w, opts, ['--dir', places.unmanaged]);
        // Alternate which goes first, so a warming machine favours neither.
        const order = r % 2 === 0 ? (['shim', 'plain'] as const) : (['plain', 'shim'] as const);
        for (const mode of order) {
          const out = await run(mode === 'shim' ? underEphemera(tools, places, statsFile, argv) : argv);
          const res = parseIobench(out);
          add(`pass/${w.name}/${mode}`, res.lap_median_ns_per_op);
          add(`pass/${w.name}/${mode}/ratio`, res.pair_ratio_median);
          tick(`${w.name} unmanaged ${mode === 'shim' ? 'with' : 'without'} the shim`);
        }
      }
    }

    const medians: Record<string, Partial<Record<Contender, number>>> = {};
    const paired: Record<string, PairedSummary> = {};
    for (const w of data) {
      const p = summarisePaired(pairedRuns.get(keyOf(w)) ?? []);
      paired[keyOf(w)] = p;
      medians[keyOf(w)] = p.lap;
    }
    for (const w of meta) {
      const row: Partial<Record<Contender, number>> = {};
      for (const c of CONTENDERS) {
        const s = samples.get(`${w.name}/${c}`);
        if (s !== undefined) row[c] = median(s);
      }
      medians[w.name] = row;
    }
    const passThrough: Record<string, PassThrough> = {};
    for (const w of PASS_THROUGH) {
      const get = (key: string): number[] => samples.get(`pass/${w.name}/${key}`) ?? [];
      passThrough[w.name] = summarisePassThrough(get('shim/ratio'), get('plain/ratio'), get('shim'), get('plain'));
    }
    const table = renderTable(medians, paired, passThrough, fastOps, opts, skipped);
    return { medians, paired, passThrough, fastOps, skipped, table };
  } finally {
    scratch.dispose();
  }
}

function fmtUs(ns: number | undefined): string {
  return ns === undefined ? 'n/a' : (ns / 1000).toFixed(3);
}

/** A fraction as a signed percentage with one decimal ("-0.0%" reads as 0.0%). */
export function fmtPct(x: number): string {
  const p = Math.round(x * 1000) / 10;
  return `${p === 0 ? '0.0' : p.toFixed(1)}%`;
}

function fmtX(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(2)}×`;
}

interface Verdict {
  readonly target: string;
  readonly met: boolean | undefined;
}

/**
 * The targets, as a check on the measured figures: `vsTmpfs` is tmpfs time / ephemera
 * time (ephemera's speed-up), `toMemcpy` ephemera time / memcpy time.
 */
export function verdict(kind: Kind, f: { readonly vsTmpfs: number | undefined; readonly toMemcpy: number | undefined }): Verdict {
  const { vsTmpfs, toMemcpy } = f;
  switch (kind) {
    case 'random':
      return {
        target: '≥2.5× tmpfs, ≤1.3× memcpy',
        met: vsTmpfs === undefined || toMemcpy === undefined ? undefined : vsTmpfs >= 2.5 && toMemcpy <= 1.3,
      };
    case 'sequential':
      return { target: '≥1.0× tmpfs', met: vsTmpfs === undefined ? undefined : vsTmpfs >= 1 };
    case 'meta':
      return { target: 'time ≤1.5× tmpfs', met: vsTmpfs === undefined ? undefined : 1 / vsTmpfs <= 1.5 };
    case 'namespace':
      return { target: 'time ≤1.0× tmpfs', met: vsTmpfs === undefined ? undefined : vsTmpfs >= 1 };
  }
}

/** "2.61× (2.50–2.72)": a median ratio and its quartiles. */
export function fmtQ(q: Quartiles | undefined): string {
  return q === undefined ? 'n/a' : `${q[1].toFixed(2)}× (${q[0].toFixed(2)}–${q[2].toFixed(2)})`;
}

function renderTable(
  medians: Record<string, Partial<Record<Contender, number>>>,
  paired: Record<string, PairedSummary>,
  passThrough: Record<string, PassThrough>,
  fastOps: Record<string, FastOps>,
  opts: IoBenchOptions,
  skipped: readonly string[],
): string {
  const rows: string[][] = [];
  rows.push(['workload', 'ephemera µs/op', 'tmpfs µs/op', 'disk µs/op', 'memcpy µs/op', 'vs tmpfs', 'vs disk', 'ephemera/memcpy', 'bound: memcpy vs tmpfs', 'fast ops', 'target', 'met']);
  const boundShort: string[] = [];
  for (const w of WORKLOADS) {
    const row = medians[keyOf(w)] ?? {};
    const p = paired[keyOf(w)];
    const eph = row.ephemera;
    const f = fastOps[keyOf(w)];
    let cells: string[];
    let v: Verdict;
    if (p !== undefined) {
      v = verdict(w.kind, { vsTmpfs: p.vsTmpfs?.[1], toMemcpy: p.toMemcpy?.[1] });
      cells = [fmtQ(p.vsTmpfs), fmtQ(p.vsDisk), fmtQ(p.toMemcpy), fmtQ(p.bound)];
      if (w.kind === 'random' && w.informational === undefined && p.bound !== undefined && p.bound[1] < 2.5) boundShort.push(`${w.label} (${p.bound[1].toFixed(2)}×)`);
    } else {
      const ratio = (other: number | undefined): number | undefined => (eph === undefined || other === undefined ? undefined : other / eph);
      v = verdict(w.kind, { vsTmpfs: ratio(row.tmpfs), toMemcpy: undefined });
      cells = [fmtX(ratio(row.tmpfs)), fmtX(ratio(row.disk)), 'n/a', 'n/a'];
    }
    if (w.informational) v = { target: 'none (alignment case)', met: undefined };
    rows.push([
      w.label,
      fmtUs(eph),
      fmtUs(row.tmpfs),
      fmtUs(row.disk),
      fmtUs(row.memcpy),
      ...cells,
      f === undefined ? 'n/a' : String(f.reads + f.writes + f.seeks + f.stats),
      v.target,
      v.met === undefined ? 'n/a' : v.met ? 'yes' : 'NO',
    ]);
  }
  const pass: string[][] = [['pass-through loop', 'with shim µs/op', 'without µs/op', 'by name/direct with shim', 'by name/direct without', 'overhead', 'per-run range', 'target', 'met']];
  for (const w of PASS_THROUGH) {
    const p = passThrough[w.name];
    if (p === undefined) continue;
    const overhead = passThroughOverhead(p);
    pass.push([
      w.label,
      fmtUs(p.shim),
      fmtUs(p.plain),
      p.shimRatio.toFixed(3),
      p.plainRatio.toFixed(3),
      fmtPct(overhead),
      `${fmtPct(p.range[0])} … ${fmtPct(p.range[1])}`,
      '≤3%',
      overhead <= 0.03 ? 'yes' : 'NO',
    ]);
  }
  const rounds = Object.values(paired)[0]?.rounds ?? 0;
  const header = [
    `ephemera bench io: ${formatSize(FILE_SIZE)} file, ${formatSize(BLOCK)} blocks, ${opts.ops} random/meta ops, ${opts.passes} sequential passes, ${opts.repeats} runs`,
    `namespace rows (issue 15): paired like the data workloads, ${String(NS_ROUNDS)} laps per contender per run (the lock rows: ${String(LOCK_ROUNDS)} laps of ${String(LOCK_LAP)} pairs, short enough to fit in a time slice on a busy machine), ephemera through the shim, tmpfs and disk straight into libc, each in a directory of its own; a rename row's lap is one set (create every file, then rename, stat and unlink each), its µs are per file`,
    `data workloads: one process per run times all contenders in turns (random: laps of ${Math.min(LAP_OPS, opts.ops)} ops, each after an untimed read of that contender's whole file, since 4 × 32 MiB cannot share the last-level cache; sequential: one pass a lap; rotating order), ephemera through the shim, tmpfs and disk straight into libc; µs/op = median lap over all runs; ratios = median (quartiles) of the per-round ratios, ${rounds} rounds for random workloads`,
    'the buffer row reads into a buffer 16 bytes into a page (where malloc puts buffers of 128 KiB or more): there rep movsb, in memcpy and in the kernel\'s copy, is 4-5× slower on AMD Zen 3; the shim copies with its own loop; not an issue target',
    '"vs X" = X time / ephemera time (higher is better for ephemera); "bound" = tmpfs time / memcpy time in the same round, the most any copying design can gain over tmpfs; meta: one process per contender, median over runs of each run\'s median lap; "fast ops" = reads, writes, seeks and fstats the last ephemera run served from memory without a system call',
    'pass-through: each run alternates 250 pairs of short laps (ABBA order) in one process, one calling open/fstat/close/pread by name (what the shim interposes), one calling libc\'s own definitions through pointers from libc.so.6 (what it cannot see), and takes the median of the per-pair ratios; overhead = (median over runs with the shim) / (median over runs without, the control) - 1; per-run range = lowest and highest of that quotient within one repeat; the µs columns are the by-name laps, for scale',
  ];
  const notes = boundShort.length === 0 ? [] : [`bound below 2.5× in this run (no copying design could reach 2.5× tmpfs here): ${boundShort.join(', ')}`];
  return [...header, '', markdown(rows), ...notes, '', markdown(pass), ...skipped.map((s) => `skipped: ${s}`)].join('\n');
}

/** A markdown table, columns padded so it also reads well on a terminal. */
export function markdown(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 3, cell.length)));
  const line = (r: readonly string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head, ...body] = rows;
  if (head === undefined) return '';
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join('\n');
}
