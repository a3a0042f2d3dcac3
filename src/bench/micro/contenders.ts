/**
 * Running one point of a micro-benchmark sweep for one contender, in a memory cgroup with the
 * point's limit:
 *
 * - disk: the files in a fresh directory on the disk file system (page cache, written back when
 *   the cgroup runs short): the analogue of a container's OverlayFS upper layer;
 * - tmpfs: the files on a tmpfs mounted for the run; its pages are charged to the cgroup;
 * - ephemera: `ephemera run --memory LIMIT --root DIR`, which makes its own cgroup with that limit
 *   and starts both ephemerad and the benchmark in it;
 * - memcpy: the same operations as memcpy on malloc'd memory, without a cgroup: the physical limit
 *   of any in-memory file system on this machine (a reference, not a contender under the limit).
 *
 * The timed loops are bench/native/microbench.c; this module only starts it and collects what it
 * printed, its exit, and the cgroup's OOM-kill count and peak.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { EphemeraError, isEphemeraError } from '../../core/errors.js';
import { readStatsFile, type DaemonStats } from '../../daemon-client/stats.js';
import { createInstanceCgroup } from '../../limiter/cgroup.js';
import type { Point } from './figures.js';

export type Contender = 'disk' | 'tmpfs' | 'ephemera' | 'memcpy';
export const CONTENDERS: readonly Contender[] = ['disk', 'tmpfs', 'ephemera', 'memcpy'];

/** The build outputs a run needs. */
export interface MicroTools {
  /** build/ephemera */
  readonly ephemera: string;
  /** build/microbench */
  readonly microbench: string;
}

/** microbench's JSON line. */
export interface MicrobenchOutput {
  readonly create_ns: number;
  readonly ops_ns: number;
  readonly total_ns: number;
  readonly ops: number;
  readonly file_size: number;
}

/** What the daemon reported (ephemera only). */
export interface EphemeraCounters {
  readonly evictions: number;
  readonly bytes_evicted: number;
  readonly bytes_in_memory_peak: number;
  readonly fast_reads: number;
  readonly fast_writes: number;
}

export interface RunResult {
  readonly contender: Contender;
  /** The benchmark's timings, or null when it did not finish (OOM-killed or failed). */
  readonly output: MicrobenchOutput | null;
  /** `ok`, `killed by SIGKILL`, `exit status 1`... */
  readonly exit: string;
  readonly oomKills: number;
  /** Highest cgroup usage during the run, bytes. */
  readonly peak: number | null;
  readonly counters: EphemeraCounters | null;
  /** stderr of a failed run, for the report. */
  readonly error: string;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A run that takes longer than this is stopped and reported as timed out (a hang is a result). */
const RUN_TIMEOUT_MS = 600_000;

function collect(argv: readonly string[]): Promise<Exit> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file ?? '', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    // SIGTERM first: `ephemera run` forwards it and removes its cgroup; SIGKILL if that hangs too.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, RUN_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new EphemeraError('EPH_BENCH_FAILED', `cannot start ${file ?? ''}: ${err.message}; run make`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) stderr = `timed out after ${RUN_TIMEOUT_MS / 1000} s (hung?)\n${stderr}`;
      resolve({ code: timedOut ? null : code, signal, stdout, stderr });
    });
  });
}

async function must(argv: readonly string[]): Promise<void> {
  const r = await collect(argv);
  if (r.code !== 0) {
    throw new EphemeraError('EPH_BENCH_FAILED', `${argv.join(' ')} failed (${describeExit(r)}): ${r.stderr.trim()}`);
  }
}

function describeExit(r: Pick<Exit, 'code' | 'signal'>): string {
  if (r.signal !== null) return `killed by ${r.signal}`;
  return r.code === 0 ? 'ok' : `exit status ${String(r.code)}`;
}

/** Parses microbench's JSON line, or returns null when there is none. */
export function parseMicrobench(stdout: string): MicrobenchOutput | null {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{"file_size"'));
  if (line === undefined) return null;
  const v = JSON.parse(line) as Partial<Record<keyof MicrobenchOutput, unknown>>;
  for (const k of ['create_ns', 'ops_ns', 'total_ns', 'ops', 'file_size'] as const) {
    if (typeof v[k] !== 'number') throw new EphemeraError('EPH_BENCH_FAILED', `microbench output lacks ${k}: ${line}`);
  }
  return v as MicrobenchOutput;
}

function microArgs(tools: MicroTools, dir: string, p: Point): string[] {
  return [tools.microbench, '--dir', dir, '--file-size', String(p.fileSize), '--ops', String(p.ops)];
}

/** Runs microbench in a fresh cgroup with the point's limit, files in `dir`. */
async function inCgroup(contender: Contender, tools: MicroTools, dir: string, p: Point): Promise<RunResult> {
  const cg = await createInstanceCgroup({ memoryLimit: p.limit });
  try {
    const r = await collect(cg.command(microArgs(tools, dir, p)));
    const oomKills = await cg.oomKills();
    const output = r.code === 0 ? parseMicrobench(r.stdout) : null;
    return { contender, output, exit: describeExit(r), oomKills, peak: await cg.peak(), counters: null, error: r.code === 0 ? '' : r.stderr.trim() };
  } finally {
    await cg.destroy();
  }
}

async function underEphemera(tools: MicroTools, dir: string, work: string, p: Point): Promise<RunResult> {
  const statsFile = join(work, 'ephemera-stats.json');
  const r = await collect([tools.ephemera, 'run', '--memory', String(p.limit), '--root', dir, '--stats', statsFile, '--discard', '--', ...microArgs(tools, dir, p)]);
  let stats: DaemonStats | null = null;
  try {
    stats = readStatsFile(statsFile);
  } catch (err) {
    // No stats file: the instance did not get to the end; reported through exit and error below.
    // A file whose counters are wrong is a bug to report, not a run without counters.
    if (!isEphemeraError(err, 'EPH_STATS_FILE')) throw err;
  }
  const count = (k: string): number | null => (stats !== null && typeof stats[k] === 'number' ? stats[k] : null);
  const killed = r.code === 137 || r.signal === 'SIGKILL';
  const oomKills = count('oom_kills') ?? (killed ? 1 : 0);
  const ok = r.code === 0;
  return {
    contender: 'ephemera',
    output: ok ? parseMicrobench(r.stdout) : null,
    exit: describeExit(r),
    oomKills,
    peak: count('cgroup_peak'),
    counters:
      stats === null
        ? null
        : { evictions: stats.evictions, bytes_evicted: stats.bytes_evicted, bytes_in_memory_peak: stats.bytes_in_memory_peak, fast_reads: stats.fast_reads, fast_writes: stats.fast_writes },
    error: ok ? '' : r.stderr.trim(),
  };
}

/** Where runs put their files: a disk directory and a mounted tmpfs (bench/scratch.ts). */
export interface Places {
  readonly disk: string;
  readonly tmpfs: string;
}

/**
 * One run of one contender at one point, in a fresh directory under `places`.
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when the contender cannot be set up at all; a
 *   benchmark that is killed or fails is a result, not an exception.
 */
export async function runContender(contender: Contender, p: Point, tools: MicroTools, places: Places): Promise<RunResult> {
  if (contender === 'memcpy') {
    const r = await collect([tools.microbench, '--memcpy', '--file-size', String(p.fileSize), '--ops', String(p.ops)]);
    const output = r.code === 0 ? parseMicrobench(r.stdout) : null;
    return { contender, output, exit: describeExit(r), oomKills: 0, peak: null, counters: null, error: r.code === 0 ? '' : r.stderr.trim() };
  }
  // A killed run leaves its files behind: on the tmpfs they would stay charged, so each run gets
  // its own directory, removed afterwards.
  const work = await mkdtemp(join(contender === 'tmpfs' ? places.tmpfs : places.disk, `${contender}-`));
  // Dirty pages of the previous run must not be written back on this run's time.
  await must(['sync']);
  try {
    switch (contender) {
      case 'disk':
      case 'tmpfs':
        return await inCgroup(contender, tools, work, p);
      case 'ephemera': {
        const root = join(work, 'root');
        await mkdir(root);
        return await underEphemera(tools, root, work, p);
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
