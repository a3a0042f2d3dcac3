/**
 * `ephemera bench demo`: a small I/O-heavy Python function
 * (workloads/demo/scratch_io.py) run three ways — under `ephemera run`, on a tmpfs and on the plain
 * disk — with the times side by side and the daemon's stats.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { EphemeraError } from '../core/errors.js';
import { formatSize } from '../core/size.js';
import { readStatsFile, type DaemonStats } from '../daemon-client/stats.js';
import { markdown, median } from './io.js';
import type { Progress } from './progress.js';
import { makeScratch } from './scratch.js';

const execFileP = promisify(execFile);

export interface DemoTools {
  /** build/ephemera */
  readonly ephemera: string;
  /** workloads/demo/scratch_io.py */
  readonly script: string;
  /** Debian's interpreter. @default /usr/bin/python3 */
  readonly python: string;
}

export interface DemoOptions {
  readonly repeats: number;
  readonly scale: number;
  readonly workBase: string;
  /** Told about each run (stderr); the table is returned. */
  readonly progress: Progress;
}

export const DEMO_DEFAULTS = { repeats: 3, scale: 1, workBase: '/var/tmp' } as const;

type Mode = 'ephemera' | 'tmpfs' | 'disk';

interface FunctionResult {
  readonly digest: string;
  readonly seconds: number;
  readonly bytes_written: number;
}

function parseResult(stdout: string, mode: Mode): FunctionResult {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    const r = JSON.parse(line) as Partial<FunctionResult>;
    if (typeof r.digest === 'string' && typeof r.seconds === 'number' && typeof r.bytes_written === 'number') {
      return { digest: r.digest, seconds: r.seconds, bytes_written: r.bytes_written };
    }
  } catch {
    // fall through to the error below
  }
  throw new EphemeraError('EPH_BENCH_FAILED', `the demo function on ${mode} printed ${JSON.stringify(line.slice(0, 200))}, not its JSON result`);
}

async function timed(argv: readonly string[], mode: Mode): Promise<{ result: FunctionResult; wall: number }> {
  const [file, ...args] = argv;
  const t0 = process.hrtime.bigint();
  try {
    const { stdout } = await execFileP(file ?? '', args, { maxBuffer: 1 << 20 });
    return { result: parseResult(stdout, mode), wall: Number(process.hrtime.bigint() - t0) / 1e9 };
  } catch (err) {
    if (err instanceof EphemeraError) throw err;
    const e = err as { stderr?: string; message: string };
    throw new EphemeraError('EPH_BENCH_FAILED', `the demo function on ${mode} failed: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

export interface DemoReport {
  readonly table: string;
  readonly stats: DaemonStats;
}

/**
 * Run the demo.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when a run fails or the modes disagree on the result
 */
export async function runDemo(tools: DemoTools, opts: DemoOptions): Promise<DemoReport> {
  const scratch = makeScratch({ base: opts.workBase, prefix: 'ephemera-demo-', tmpfsBytes: 512 * 1024 * 1024 });
  const work = scratch.dir;
  const notes: string[] = [];
  let shmDir: string | undefined;
  try {
    const dirs: Record<Mode, string> = { ephemera: join(work, 'managed'), tmpfs: scratch.tmpfs ?? '', disk: join(work, 'disk') };
    mkdirSync(dirs.ephemera);
    mkdirSync(dirs.disk);
    if (scratch.tmpfs === undefined) {
      shmDir = mkdtempSync('/dev/shm/ephemera-demo-');
      dirs.tmpfs = shmDir;
      notes.push(`not root: used ${shmDir} (the machine's shared tmpfs) instead of mounting one`);
    }
    const statsFile = join(work, 'stats.json');
    const wall: Record<Mode, number[]> = { ephemera: [], tmpfs: [], disk: [] };
    const inner: Record<Mode, number[]> = { ephemera: [], tmpfs: [], disk: [] };
    const digests = new Set<string>();
    let written = 0;
    const fn = (dir: string): string[] => [tools.python, tools.script, dir, '--scale', String(opts.scale)];
    opts.progress.begin(opts.repeats * 3);
    for (let r = 0; r < opts.repeats; r++) {
      for (const mode of ['ephemera', 'tmpfs', 'disk'] as const) {
        const argv = mode === 'ephemera' ? [tools.ephemera, 'run', '--root', dirs.ephemera, '--stats', statsFile, '--', ...fn(dirs.ephemera)] : fn(dirs[mode]);
        const what = `run ${r + 1}/${opts.repeats}: ${mode}`;
        opts.progress.start(what);
        const { result, wall: w } = await timed(argv, mode);
        opts.progress.finish(what, `${result.seconds.toFixed(3)}s`);
        wall[mode].push(w);
        inner[mode].push(result.seconds);
        digests.add(result.digest);
        written = result.bytes_written;
      }
    }
    if (digests.size !== 1) {
      throw new EphemeraError('EPH_BENCH_FAILED', `the demo function computed different results on different file systems: ${[...digests].join(', ')}; this is a bug, please report it`);
    }
    const stats = readStatsFile(statsFile);
    const disk = median(inner.disk);
    const rows = [['mode', 'function time (s)', 'vs disk', 'wall incl. start/stop (s)']];
    for (const mode of ['ephemera', 'tmpfs', 'disk'] as const) {
      const t = median(inner[mode]);
      rows.push([mode, t.toFixed(3), `${(disk / t).toFixed(2)}×`, median(wall[mode]).toFixed(3)]);
    }
    const keys = ['fast_reads', 'fast_writes', 'files_in_memory_peak', 'bytes_in_memory_peak', 'evictions', 'bytes_evicted', 'budget'] as const;
    const statRows = [['ephemera stat (last run)', 'value'], ...keys.map((k) => [k, String(stats[k])])];
    const table = [
      `ephemera demo: workloads/demo/scratch_io.py (scale ${opts.scale}, ${formatSize(written)} written per run), median of ${opts.repeats} runs, same digest in every mode (${[...digests][0] ?? ''})`,
      '',
      markdown(rows),
      '',
      markdown(statRows),
      ...notes.map((n) => `note: ${n}`),
    ].join('\n');
    return { table, stats };
  } finally {
    if (shmDir !== undefined) rmSync(shmDir, { recursive: true, force: true });
    scratch.dispose();
  }
}
