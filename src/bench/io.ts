/**
 * `ephemera bench io`: the file-system micro-benchmark of issue 2.
 *
 * Every timed loop runs in native code (bench/native/iobench.c); this harness only places the
 * contenders, repeats the runs in interleaved order, takes medians and prints one table of ratios,
 * all from one run:
 *
 * - ephemera: iobench under `ephemera run`, its directory a managed root;
 * - tmpfs: a tmpfs this harness mounts (needs root);
 * - disk: a directory on the machine's disk file system (page cache);
 * - memcpy: the same access pattern as plain memcpy, the physical limit.
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
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { EphemeraError } from '../core/errors.js';
import { formatSize } from '../core/size.js';
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
  /** Progress lines go here (stderr), the table to `print`. */
  readonly progress: (line: string) => void;
}

export const IO_DEFAULTS = { repeats: 5, ops: 500_000, passes: 8, workBase: '/var/tmp' } as const;

const FILE_SIZE = 32 * 1024 * 1024;
const BLOCK = 8192;

export type Contender = 'ephemera' | 'tmpfs' | 'disk' | 'memcpy';
const CONTENDERS: readonly Contender[] = ['ephemera', 'tmpfs', 'disk', 'memcpy'];

type Kind = 'random' | 'sequential' | 'meta';

interface Workload {
  readonly name: string;
  readonly label: string;
  readonly kind: Kind;
}

const WORKLOADS: readonly Workload[] = [
  { name: 'rand-pread', label: 'random 8 KiB pread', kind: 'random' },
  { name: 'rand-pwrite', label: 'random 8 KiB pwrite', kind: 'random' },
  { name: 'rand-read', label: 'random 8 KiB lseek+read', kind: 'random' },
  { name: 'rand-write', label: 'random 8 KiB lseek+write', kind: 'random' },
  { name: 'seq-write', label: 'sequential 8 KiB write', kind: 'sequential' },
  { name: 'seq-read', label: 'sequential 8 KiB read', kind: 'sequential' },
  { name: 'meta', label: 'open+fstat+close', kind: 'meta' },
];

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
  const line = stdout.trim().split('\n').pop() ?? '';
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new EphemeraError('EPH_BENCH_FAILED', `iobench printed ${JSON.stringify(line.slice(0, 200))}, not a JSON result; rebuild with make`);
  }
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
  const s = JSON.parse(readFileSync(statsFile, 'utf8')) as Record<string, unknown>;
  const n = (k: string): number => (typeof s[k] === 'number' ? s[k] : 0);
  return { reads: n('fast_reads'), writes: n('fast_writes'), seeks: n('fast_seeks'), stats: n('fast_stats') };
}

/** `target` is a directory, or `memcpy`. */
function iobenchArgs(tools: IoBenchTools, w: Workload, opts: IoBenchOptions, target: string): string[] {
  return [
    tools.iobench,
    w.name,
    ...(target === 'memcpy' ? ['--memcpy'] : ['--dir', target]),
    '--ops', String(opts.ops),
    '--passes', String(opts.passes),
    '--size', String(FILE_SIZE),
    '--block', String(BLOCK),
  ];
}

function underEphemera(tools: IoBenchTools, places: Places, statsFile: string, argv: readonly string[]): string[] {
  return [tools.ephemera, 'run', '--root', places.ephRoot, '--discard', '--stats', statsFile, '--', ...argv];
}

export interface IoBenchReport {
  /** Median ns per operation by workload and contender; absent when skipped. */
  readonly medians: Record<string, Partial<Record<Contender, number>>>;
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
    const total = opts.repeats * (WORKLOADS.length * CONTENDERS.length + PASS_THROUGH.length * 2);
    let done = 0;
    const t0 = Date.now();
    const tick = (what: string): void => {
      done++;
      const eta = ((Date.now() - t0) / done) * (total - done);
      opts.progress(`[${done}/${total}] ${what} (eta ${Math.round(eta / 1000)} s)`);
    };

    for (let r = 0; r < opts.repeats; r++) {
      for (const w of WORKLOADS) {
        for (const c of CONTENDERS) {
          if (c === 'memcpy' && w.kind === 'meta') continue;
          if (c === 'tmpfs' && places.tmpfs === undefined) continue;
          const target = c === 'ephemera' ? places.ephRoot : c === 'tmpfs' ? (places.tmpfs ?? '') : c === 'disk' ? places.disk : 'memcpy';
          const argv = iobenchArgs(tools, w, opts, target);
          const out = await run(c === 'ephemera' ? underEphemera(tools, places, statsFile, argv) : argv);
          add(`${w.name}/${c}`, parseIobench(out).lap_median_ns_per_op);
          if (c === 'ephemera') fastOps[w.name] = readFastOps(statsFile);
          tick(`${w.name} on ${c}`);
        }
      }
      for (const w of PASS_THROUGH) {
        const argv = iobenchArgs(tools, w, opts, places.unmanaged);
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
    for (const w of WORKLOADS) {
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
    const table = renderTable(medians, passThrough, fastOps, opts, skipped);
    return { medians, passThrough, fastOps, skipped, table };
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

/** The targets, as a check on the medians. */
export function verdict(kind: Kind, row: Partial<Record<Contender, number>>): Verdict {
  const eph = row.ephemera;
  const tmpfs = row.tmpfs;
  const mem = row.memcpy;
  const both = (a: number | undefined, b: number | undefined): boolean => a !== undefined && b !== undefined;
  switch (kind) {
    case 'random': {
      const speed = both(eph, tmpfs) ? (tmpfs ?? 0) / (eph ?? 1) : undefined;
      const toMem = both(eph, mem) ? (eph ?? 0) / (mem ?? 1) : undefined;
      return {
        target: '≥2.5× tmpfs, ≤1.3× memcpy',
        met: speed === undefined || toMem === undefined ? undefined : speed >= 2.5 && toMem <= 1.3,
      };
    }
    case 'sequential':
      return { target: '≥1.0× tmpfs', met: both(eph, tmpfs) ? (tmpfs ?? 0) / (eph ?? 1) >= 1 : undefined };
    case 'meta':
      return { target: 'time ≤1.5× tmpfs', met: both(eph, tmpfs) ? (eph ?? 0) / (tmpfs ?? 1) <= 1.5 : undefined };
  }
}

function renderTable(
  medians: Record<string, Partial<Record<Contender, number>>>,
  passThrough: Record<string, PassThrough>,
  fastOps: Record<string, FastOps>,
  opts: IoBenchOptions,
  skipped: readonly string[],
): string {
  const rows: string[][] = [];
  rows.push(['workload', 'ephemera µs/op', 'tmpfs µs/op', 'disk µs/op', 'memcpy µs/op', 'vs tmpfs', 'vs disk', 'ephemera/memcpy', 'fast ops', 'target', 'met']);
  for (const w of WORKLOADS) {
    const row = medians[w.name] ?? {};
    const eph = row.ephemera;
    const ratio = (other: number | undefined): number | undefined => (eph === undefined || other === undefined ? undefined : other / eph);
    const f = fastOps[w.name];
    const v = verdict(w.kind, row);
    rows.push([
      w.label,
      fmtUs(eph),
      fmtUs(row.tmpfs),
      fmtUs(row.disk),
      fmtUs(row.memcpy),
      fmtX(ratio(row.tmpfs)),
      fmtX(ratio(row.disk)),
      eph === undefined || row.memcpy === undefined ? 'n/a' : fmtX(eph / row.memcpy),
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
  const header = [
    `ephemera bench io: ${formatSize(FILE_SIZE)} file, ${formatSize(BLOCK)} blocks, ${opts.ops} random/meta ops, ${opts.passes} sequential passes; each cell is the median over ${opts.repeats} runs of each run's median lap (iobench times 10 laps per loop)`,
    '"vs X" = X time / ephemera time (higher is better for ephemera); "fast ops" = reads, writes, seeks and fstats the last ephemera run served from memory without a system call',
    'pass-through: each run alternates 250 pairs of short laps (ABBA order) in one process, one calling open/fstat/close/pread by name (what the shim interposes), one calling libc\'s own definitions through pointers from libc.so.6 (what it cannot see), and takes the median of the per-pair ratios; overhead = (median over runs with the shim) / (median over runs without, the control) - 1; per-run range = lowest and highest of that quotient within one repeat; the µs columns are the by-name laps, for scale',
  ];
  return [...header, '', markdown(rows), '', markdown(pass), ...skipped.map((s) => `skipped: ${s}`)].join('\n');
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
