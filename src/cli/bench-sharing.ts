/**
 * `ephemera bench fig14|fig15|fig16a`: command-line flags for the memory-sharing experiments
 * (src/bench/sharing/); this file only parses and prints.
 */
import { join } from 'node:path';

import { ensureDockerEngine } from '../container/dockerd.js';
import { DockerEngine } from '../container/engine.js';
import { ensureFunctionImage } from '../container/image.js';
import { REPO_DIR } from '../container/repo.js';
import { EphemeraError } from '../core/errors.js';
import { Progress } from '../bench/progress.js';
import { FIG16A_DEFAULTS, runFig16a } from '../bench/sharing/fig16a.js';
import { FIGURE_DEFAULTS, runFigure } from '../bench/sharing/figures.js';
import type { SharingTools } from '../bench/sharing/run.js';
import { flagPositiveInt, flagSet, flagValue, parseFlags } from './flags.js';
import { buildOutput } from './paths.js';

const D = FIGURE_DEFAULTS;
export const SHARING_USAGE = `  fig14 fig15  memory sharing between a tenant's containers through a real node agent (child
        process) and real containers: fig14 a factorial (512 MiB quota) beside the micro
        benchmark (64 MiB quota) without sharing, with sharing and on OverlayFS; fig15 the
        sharing scopes none/function/workflow/tenant with two CPU and two I/O tasks at once and
        CPU then I/O in sequence. Flags: --runs N (default ${String(D.runs)}), --warmup N (default ${String(D.warmup)}),
        --file-mib N per file (default ${String(D.fileMiB)}), --ops N (default ${String(D.ops)}), --n N factorial (default
        ${String(D.n)}), --cpus X per container (default ${String(D.cpus)}), --out DIR (default results/sharing),
        --no-plot, --lend-while-idle (the agents' flag: idle warm donors lend too; files get -idle).
  fig16a  the Manager's overhead per invocation at 200-1000 requests/s: the decision alone and
        the request through a real agent to its container released (limits written). Flags:
        --rates R,R,... (default ${FIG16A_DEFAULTS.rates.join(',')}), --seconds N per rate (default ${String(FIG16A_DEFAULTS.seconds)}),
        --out DIR, --no-plot.`;

const CONTEXT = 'ephemera bench';

function usage(message: string): EphemeraError {
  return new EphemeraError('EPH_CLI_USAGE', `${CONTEXT}: ${message}; see \`ephemera help bench\``);
}

async function tools(progress: Progress): Promise<SharingTools> {
  const ephemera = buildOutput('ephemera', true);
  const microbench = buildOutput('microbench', true);
  buildOutput('ephemerad', true);
  const why = ensureDockerEngine();
  if (why !== null) throw new EphemeraError('EPH_DOCKER_API', `the sharing benchmarks need the Docker engine: ${why}`);
  const engine = new DockerEngine();
  const image = (await ensureFunctionImage(engine, { onProgress: (l) => progress.note(l) })).ref;
  return { ephemera, microbench, image, engine };
}

function outDir(value: string | undefined): string {
  return value ?? join(REPO_DIR, 'results', 'sharing');
}

/** `ephemera bench fig14|fig15 [flags]`. */
export async function figureMain(fig: 'fig14' | 'fig15', argv: readonly string[]): Promise<number> {
  const ctx = `${CONTEXT} ${fig}`;
  const p = parseFlags(argv, { runs: { value: true }, warmup: { value: true }, 'file-mib': { value: true }, ops: { value: true }, n: { value: true }, cpus: { value: true }, out: { value: true }, 'no-plot': { value: false }, 'lend-while-idle': { value: false } }, ctx);
  const warmupText = flagValue(p, 'warmup') ?? String(D.warmup);
  if (!/^\d{1,2}$/.test(warmupText)) throw usage(`--warmup takes 0 to 99 runs, got ${JSON.stringify(warmupText)}`);
  const cpusText = flagValue(p, 'cpus') ?? String(D.cpus);
  const cpus = Number(cpusText);
  if (!/^\d+(\.\d+)?$/.test(cpusText) || cpus < 0.01) throw usage(`--cpus takes a number of CPUs such as 1 or 0.5, got ${JSON.stringify(cpusText)}`);
  const fileMiB = flagPositiveInt(p, 'file-mib', ctx, D.fileMiB);
  const progress = new Progress();
  const report = await runFigure(
    fig,
    {
      runs: flagPositiveInt(p, 'runs', ctx, D.runs),
      warmup: Number(warmupText),
      workload: { fileBytes: fileMiB * 1024 * 1024, ops: flagPositiveInt(p, 'ops', ctx, D.ops), n: flagPositiveInt(p, 'n', ctx, D.n), cpus },
      outDir: outDir(flagValue(p, 'out')),
      plot: !flagSet(p, 'no-plot'),
      lendWhileIdle: flagSet(p, 'lend-while-idle'),
    },
    await tools(progress),
    progress,
  );
  progress.end();
  process.stdout.write(`${report.table}\nwrote ${report.files.join(', ')}\n`);
  return 0;
}

/** `ephemera bench fig16a [flags]`. */
export async function fig16aMain(argv: readonly string[]): Promise<number> {
  const ctx = `${CONTEXT} fig16a`;
  const p = parseFlags(argv, { rates: { value: true }, seconds: { value: true }, out: { value: true }, 'no-plot': { value: false } }, ctx);
  const ratesText = flagValue(p, 'rates') ?? FIG16A_DEFAULTS.rates.join(',');
  if (!/^[1-9]\d*(,[1-9]\d*)*$/.test(ratesText)) throw usage(`--rates takes requests per second as R,R,..., got ${JSON.stringify(ratesText)}`);
  const progress = new Progress();
  const report = await runFig16a(
    { rates: ratesText.split(',').map(Number), seconds: flagPositiveInt(p, 'seconds', ctx, FIG16A_DEFAULTS.seconds), outDir: outDir(flagValue(p, 'out')), plot: !flagSet(p, 'no-plot') },
    await tools(progress),
    progress,
  );
  progress.end();
  process.stdout.write(`${report.table}\nwrote ${report.files.join(', ')}\n`);
  return 0;
}
