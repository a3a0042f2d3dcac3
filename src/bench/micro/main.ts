/**
 * `ephemera bench fig7|fig8|fig9`: the paper's micro benchmark (§5.2) under memory limits, each
 * point run for disk, tmpfs and ephemera in one go, contenders interleaved per repetition so that
 * drift in the machine's load hits all of them alike.
 */
import { EphemeraError } from '../../core/errors.js';
import type { Progress } from '../progress.js';
import { makeScratch } from '../scratch.js';
import { CONTENDERS, runContender, type Contender, type MicroTools, type Places, type RunResult } from './contenders.js';
import { DEFAULT_OPS, figure, selectPoints, type Figure, type FigureId } from './figures.js';
import { renderSweep, summarise, type PointSummary, type Sweep } from './report.js';

export interface MicroBenchOptions {
  /** Runs per (point, contender); the median is reported. @default 3 */
  readonly reps: number;
  /** Random operations per run for figs. 7 and 8. @default 100000 */
  readonly ops: number;
  /** A directory on disk for the work files. @default /var/tmp */
  readonly workBase: string;
  /** Which contenders to run. @default all */
  readonly contenders: readonly Contender[];
  /** Which points of the sweep, by the number of their label (see selectPoints). @default all */
  readonly points?: readonly string[];
  /** Told about each run (stderr); the table is returned. */
  readonly progress: Progress;
}

export const MICRO_DEFAULTS = { reps: 3, ops: DEFAULT_OPS, workBase: '/var/tmp', contenders: CONTENDERS } as const;

export interface MicroBenchReport {
  readonly table: string;
  readonly sweep: Sweep;
  /** Every run, for --json. */
  readonly runs: ReadonlyArray<{ readonly point: string; readonly rep: number } & RunResult>;
}

/**
 * Runs one figure's sweep and renders its table.
 * @throws {EphemeraError} `EPH_BENCH_NEEDS_ROOT` without root (cgroups and tmpfs need it),
 *   `EPH_BENCH_FAILED` when the work directory is on a tmpfs, the tmpfs cannot be mounted, or a
 *   contender cannot be set up
 */
export async function runMicroBench(id: FigureId, tools: MicroTools, opts: MicroBenchOptions): Promise<MicroBenchReport> {
  if (process.getuid?.() !== 0) {
    throw new EphemeraError('EPH_BENCH_NEEDS_ROOT', `ephemera bench ${id} puts every contender in a memory cgroup and mounts a tmpfs, which needs root (uid is ${String(process.getuid?.())}); run it as root`);
  }
  let fig: Figure;
  try {
    fig = selectPoints(figure(id, { ops: opts.ops }), opts.points);
  } catch (err) {
    throw new EphemeraError('EPH_CLI_USAGE', `ephemera bench ${id} --points: ${(err as Error).message}`);
  }
  const largest = Math.max(...fig.points.map((p) => p.fileSize));
  // The tmpfs is sized so that only the cgroup limit can stop the writes, as in a container.
  const scratch = makeScratch({ base: opts.workBase, prefix: `ephemera-${id}-`, tmpfsBytes: 2 * largest + 64 * 1024 * 1024 });
  try {
    if (scratch.tmpfs === undefined) throw new EphemeraError('EPH_BENCH_NEEDS_ROOT', scratch.tmpfsSkipped ?? 'no tmpfs could be mounted');
    return await sweep(id, fig, tools, opts, { disk: scratch.dir, tmpfs: scratch.tmpfs });
  } finally {
    scratch.dispose();
  }
}

async function sweep(id: FigureId, fig: Figure, tools: MicroTools, opts: MicroBenchOptions, places: Places): Promise<MicroBenchReport> {
  const runs: Array<{ point: string; rep: number } & RunResult> = [];
  const points: Array<{ point: (typeof fig.points)[number]; summary: PointSummary }> = [];
  opts.progress.begin(fig.points.length * opts.reps * opts.contenders.length);
  for (const point of fig.points) {
    const byContender = new Map<Contender, RunResult[]>();
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const c of opts.contenders) {
        const what = `${id} ${fig.axis} ${point.label}: ${c} run ${rep}/${opts.reps}`;
        opts.progress.start(what);
        const r = await runContender(c, point, tools, places);
        opts.progress.finish(what, r.exit);
        runs.push({ point: point.label, rep, ...r });
        byContender.set(c, [...(byContender.get(c) ?? []), r]);
      }
    }
    const summary: PointSummary = {};
    for (const [c, rs] of byContender) summary[c] = summarise(rs);
    points.push({ point, summary });
  }
  const sweep: Sweep = { figure: fig, reps: opts.reps, contenders: opts.contenders, points };
  return { table: renderSweep(sweep), sweep, runs };
}
