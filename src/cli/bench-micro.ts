/**
 * `ephemera bench fig7|fig8|fig9`: command-line flags for the micro-benchmark sweeps
 * (src/bench/micro/); this file only parses and prints.
 */
import { writeFileSync } from 'node:fs';

import { EphemeraError } from '../core/errors.js';
import { CONTENDERS, type Contender } from '../bench/micro/contenders.js';
import { FIGURES, type FigureId } from '../bench/micro/figures.js';
import { MICRO_DEFAULTS, runMicroBench } from '../bench/micro/main.js';
import { Progress } from '../bench/progress.js';
import { flagPositiveInt, flagValue, parseFlags } from './flags.js';
import { buildOutput } from './paths.js';

export const MICRO_USAGE = `  fig7  the paper's micro benchmark (two files, random 8 KiB ops) at memory limits 32-256 MiB
  fig8  the same with 32-160 MiB of files at a 150 MiB limit
  fig9  the same with 500 to 500,000 operations at a 128 MiB limit
        Each point runs disk, tmpfs and ephemera (ephemera run --memory) in memory cgroups with the
        same limit and prints latency, change vs disk and OOM kills. Needs root. Flags: --reps N
        (default ${MICRO_DEFAULTS.reps}), --ops N (figs. 7-8, default ${MICRO_DEFAULTS.ops}), --work DIR (a disk directory,
        default ${MICRO_DEFAULTS.workBase}), --only disk,tmpfs,ephemera,memcpy, --points 32,64 (a subset
        of the sweep, by the numbers of its labels), --json FILE (every run).`;

const FLAGS = { reps: { value: true }, ops: { value: true }, work: { value: true }, only: { value: true }, points: { value: true }, json: { value: true } } as const;

function contenders(text: string | undefined, context: string): readonly Contender[] {
  if (text === undefined) return CONTENDERS;
  const list = text.split(',').map((s) => s.trim());
  for (const c of list) {
    if (!(CONTENDERS as readonly string[]).includes(c)) {
      throw new EphemeraError('EPH_CLI_USAGE', `${context}: --only takes a comma-separated list of ${CONTENDERS.join(', ')}; got ${JSON.stringify(c)}`);
    }
  }
  return CONTENDERS.filter((c) => list.includes(c));
}

/** Runs one figure; returns the exit status. */
export async function microBenchMain(id: FigureId, argv: readonly string[]): Promise<number> {
  if (!FIGURES.includes(id)) throw new EphemeraError('EPH_CLI_USAGE', `ephemera bench: unknown figure ${JSON.stringify(id)}`);
  const context = `ephemera bench ${id}`;
  const parsed = parseFlags(argv, FLAGS, context);
  const tools = { ephemera: buildOutput('ephemera', true), microbench: buildOutput('microbench', true) };
  const progress = new Progress();
  const report = await runMicroBench(id, tools, {
    reps: flagPositiveInt(parsed, 'reps', context, MICRO_DEFAULTS.reps),
    ops: flagPositiveInt(parsed, 'ops', context, MICRO_DEFAULTS.ops),
    workBase: flagValue(parsed, 'work') ?? MICRO_DEFAULTS.workBase,
    contenders: contenders(flagValue(parsed, 'only'), context),
    ...(flagValue(parsed, 'points') === undefined ? {} : { points: (flagValue(parsed, 'points') ?? '').split(',').map((x) => x.trim()) }),
    progress,
  });
  progress.end();
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) writeFileSync(json, JSON.stringify({ figure: id, runs: report.runs }, null, 2) + '\n');
  return 0;
}
