/**
 * `ephemera bench fig14|fig15`: the plans of the paper's two sharing experiments (§5.4, §5.5) and
 * what is written from one run: the table on stdout, `<out>/<fig>.json`, `.csv`, `.svg`, `.png`.
 *
 * Fig. 14: one tenant, a CPU-bound factorial with a 512 MiB quota (it uses a few MiB) and the
 * I/O-bound micro benchmark (two files, random 8 KiB operations) with a 64 MiB quota, run together
 * (the factorial first, so that it is running when the I/O task starts: the paper's rule lends
 * only from a running donor). Arms: the agent with `--sharing none`, with `--sharing tenant`, and
 * OverlayFS (the `none` agent's containers, the files on the container's upper layer, no shim).
 *
 * Fig. 15: one tenant, two factorials and two micro benchmarks, workflow A = (cpu1 → io1) and
 * workflow B = (cpu2 → io2). Scenario "concurrent": all four at once. Scenario "sequence":
 * workflow A, its CPU task then its I/O task. Variants: `--sharing none|function|workflow|tenant`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { writePlot } from '../eval/plot.js';
import type { Progress } from '../progress.js';
import { cells, cellsPlotSpec, fig14Verdicts, formatCells, samplesCsv } from './report.js';
import { runSharing, type ContainerPlan, type SharingPlan, type SharingTools, type Workload } from './run.js';

const MiB = 1024 * 1024;

export interface FigureOptions {
  readonly runs: number;
  readonly warmup: number;
  readonly workload: Workload;
  readonly outDir: string;
  readonly plot: boolean;
  /** The agents lend from idle warm donors too (`ephemera node --lend-while-idle`); the files get an `-idle` suffix. */
  readonly lendWhileIdle: boolean;
}

export const FIGURE_DEFAULTS = {
  runs: 5,
  warmup: 1,
  fileMiB: 32,
  ops: 100_000,
  n: 80_000,
  cpus: 1,
} as const;

/** The paper's quotas; the profiles are what the Manager is told before the first run measures them. */
function cpuContainer(name: string, workflow: string): ContainerPlan {
  return { name, task: 'cpu', workflow, memoryBytes: 512 * MiB, profile: { ownPeakBytes: 32 * MiB, filePeakBytes: 0 } };
}

function ioContainer(name: string, workflow: string, fileBytes: number): ContainerPlan {
  return { name, task: 'io', workflow, memoryBytes: 64 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 2 * fileBytes } };
}

export function fig14Plan(o: FigureOptions): SharingPlan {
  return {
    containers: [cpuContainer('cpu', 'fig14'), ioContainer('io', 'fig14', o.workload.fileBytes)],
    arms: [
      { arm: 'overlay', sharing: 'none', fs: 'overlay' },
      { arm: 'none', sharing: 'none', fs: 'ephemera' },
      { arm: 'tenant', sharing: 'tenant', fs: 'ephemera' },
    ],
    scenarios: [{ name: 'pair', phases: [['cpu', 'io']] }],
    runs: o.runs,
    warmup: o.warmup,
    workload: o.workload,
    lendWhileIdle: o.lendWhileIdle,
  };
}

export function fig15Plan(o: FigureOptions): SharingPlan {
  const f = o.workload.fileBytes;
  return {
    containers: [cpuContainer('cpu1', 'wf-a'), cpuContainer('cpu2', 'wf-b'), ioContainer('io1', 'wf-a', f), ioContainer('io2', 'wf-b', f)],
    arms: (['none', 'function', 'workflow', 'tenant'] as const).map((s) => ({ arm: s, sharing: s, fs: 'ephemera' as const })),
    scenarios: [
      { name: 'concurrent', phases: [['cpu1', 'cpu2', 'io1', 'io2']] },
      { name: 'sequence', phases: [['cpu1'], ['io1']] },
    ],
    runs: o.runs,
    warmup: o.warmup,
    workload: o.workload,
    lendWhileIdle: o.lendWhileIdle,
  };
}

export interface FigureReport {
  readonly table: string;
  readonly files: readonly string[];
}

export async function runFigure(fig: 'fig14' | 'fig15', o: FigureOptions, tools: SharingTools, progress: Progress): Promise<FigureReport> {
  const plan = fig === 'fig14' ? fig14Plan(o) : fig15Plan(o);
  const result = await runSharing(plan, tools, progress);
  const cs = cells(result.samples);
  const w = o.workload;
  const rule = o.lendWhileIdle ? 'idle warm donors lend too (--lend-while-idle)' : "the paper's rule: donors lend while they run";
  const setup = `${rule}; ${String(plan.runs)} runs per arm (after ${String(plan.warmup)} untimed), arms alternated; microbench: 2 × ${String(w.fileBytes / MiB)} MiB files, ${String(w.ops)} random 8 KiB ops (64 MiB quota); factorial n = ${String(w.n)} (512 MiB quota); --cpus ${String(w.cpus)} per container in every arm`;
  const returned = { what: 'every loan back when no invocation runs (limits at their quotas)', value: result.unreturned.length === 0 ? 'yes' : result.unreturned.join('; '), met: result.unreturned.length === 0 };
  const verdicts = [...(fig === 'fig14' ? fig14Verdicts(cs, result.oomKills) : [{ what: 'OOM kills in every run: 0', value: String(result.oomKills), met: result.oomKills === 0 }]), returned];
  const paper =
    fig === 'fig14'
      ? ['paper (Fig. 14): I/O task vs OverlayFS −90.27% without sharing, −95.73% with; factorial 10.80 s → 10.66 s (within 1.29%)']
      : ['paper (Fig. 15): the CPU tasks the same in every variant; the I/O tasks faster only with single-tenant sharing'];
  const title = fig === 'fig14' ? 'Fig. 14: memory sharing between a CPU task and an I/O task of one tenant (real node agent, real containers)' : 'Fig. 15: sharing scopes (none, single-function, single-workflow, single-tenant) in two scenarios';
  const table = formatCells(title, cs, verdicts, [setup, ...paper, `OOM kills (containers' memory cgroups and Docker's OOMKilled): ${String(result.oomKills)}`]);
  await mkdir(o.outDir, { recursive: true });
  const base = join(o.outDir, o.lendWhileIdle ? `${fig}-idle` : fig);
  const files = [`${base}.json`, `${base}.csv`];
  await writeFile(`${base}.json`, JSON.stringify({ figure: fig, setup, cells: cs, verdicts, oomKills: result.oomKills, unreturned: result.unreturned, samples: result.samples }, null, 2) + '\n');
  await writeFile(`${base}.csv`, samplesCsv(result.samples));
  if (o.plot) files.push(...(await writePlot(cellsPlotSpec(title, cs, setup), base)));
  return { table, files };
}
