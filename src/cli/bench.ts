/**
 * `ephemera bench EXPERIMENT`: benchmarks that print one table of side-by-side ratios per run.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import { DEMO_DEFAULTS, runDemo } from '../bench/demo.js';
import { IO_DEFAULTS, runIoBench } from '../bench/io.js';
import { DASHBOARD_BENCH_DEFAULTS } from '../dashboard/bench-defaults.js';
import { EVAL_EXPERIMENTS, EVAL_USAGE, runEvalBench } from '../bench/eval/main.js';
import { flagPositiveInt, flagValue, parseFlags, type ParsedFlags } from './flags.js';
import { MICRO_USAGE, microBenchMain } from './bench-micro.js';
import { buildOutput } from './paths.js';

export const BENCH_USAGE = `usage: ephemera bench EXPERIMENT [FLAGS]

experiments:
  io    file-system micro-benchmark: ephemera vs tmpfs vs disk vs memcpy, plus pass-through
        overhead. Flags: --repeats N (default ${IO_DEFAULTS.repeats}), --ops N (default ${IO_DEFAULTS.ops}),
        --passes N (default ${IO_DEFAULTS.passes}), --work DIR (a disk directory, default ${IO_DEFAULTS.workBase}),
        --json FILE (also write the medians as JSON). Mounting the tmpfs needs root.
  demo  a small I/O-heavy Python function under ephemera, on tmpfs and on disk (make demo).
        Flags: --repeats N (default ${DEMO_DEFAULTS.repeats}), --scale N (default ${DEMO_DEFAULTS.scale}), --work DIR.
  dashboard  the views' targets: GET /metrics with 1000 containers (in-memory models fed to the
        real collectors) and the dashboard's first render in headless Chromium with 100 containers
        and 1000 activations. Flags: --scrapes N (default ${DASHBOARD_BENCH_DEFAULTS.scrapes}), --renders N (default ${DASHBOARD_BENCH_DEFAULTS.renders}).
${MICRO_USAGE}
${EVAL_USAGE}

Timed loops are native code or whole processes; the harness only starts them and takes medians.`;

function positiveInt(parsed: ParsedFlags, name: string, fallback: number): number {
  return flagPositiveInt(parsed, name, 'ephemera bench', fallback);
}

const progress = (line: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}`);
  else process.stderr.write(`${line}\n`);
};

const endProgress = (): void => {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
};

async function io(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { repeats: { value: true }, ops: { value: true }, passes: { value: true }, work: { value: true }, json: { value: true } }, 'ephemera bench io');
  const report = await runIoBench(
    { ephemera: buildOutput('ephemera', true), iobench: buildOutput('iobench', true) },
    {
      repeats: positiveInt(parsed, 'repeats', IO_DEFAULTS.repeats),
      ops: positiveInt(parsed, 'ops', IO_DEFAULTS.ops),
      passes: positiveInt(parsed, 'passes', IO_DEFAULTS.passes),
      workBase: flagValue(parsed, 'work') ?? IO_DEFAULTS.workBase,
      progress,
    },
  );
  endProgress();
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) {
    writeFileSync(json, JSON.stringify({ medians_ns_per_op: report.medians, paired_ratios: report.paired, pass_through: report.passThrough, fast_ops: report.fastOps, skipped: report.skipped }, null, 2) + '\n');
  }
  return 0;
}

async function demo(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { repeats: { value: true }, scale: { value: true }, work: { value: true } }, 'ephemera bench demo');
  const script = fileURLToPath(new URL('../../../workloads/demo/scratch_io.py', import.meta.url));
  const report = await runDemo(
    { ephemera: buildOutput('ephemera', true), script, python: '/usr/bin/python3' },
    {
      repeats: positiveInt(parsed, 'repeats', DEMO_DEFAULTS.repeats),
      scale: positiveInt(parsed, 'scale', DEMO_DEFAULTS.scale),
      workBase: flagValue(parsed, 'work') ?? DEMO_DEFAULTS.workBase,
      progress,
    },
  );
  endProgress();
  process.stdout.write(`${report.table}\n`);
  return 0;
}

async function dashboard(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { scrapes: { value: true }, renders: { value: true } }, 'ephemera bench dashboard');
  // Loaded here: it drives Chromium through puppeteer-core, which no other command needs.
  const { runDashboardBench } = await import('../dashboard/bench.js');
  const report = await runDashboardBench({
    ...DASHBOARD_BENCH_DEFAULTS,
    scrapes: positiveInt(parsed, 'scrapes', DASHBOARD_BENCH_DEFAULTS.scrapes),
    renders: positiveInt(parsed, 'renders', DASHBOARD_BENCH_DEFAULTS.renders),
    progress,
  });
  endProgress();
  process.stdout.write(`${report.table}\n`);
  return 0;
}

const EXPERIMENTS: Readonly<Record<string, (argv: readonly string[]) => Promise<number>>> = {
  io,
  demo,
  dashboard,
  fig7: (argv) => microBenchMain('fig7', argv),
  fig8: (argv) => microBenchMain('fig8', argv),
  fig9: (argv) => microBenchMain('fig9', argv),
  ...Object.fromEntries(EVAL_EXPERIMENTS.map((name) => [name, (argv: readonly string[]) => runEvalBench([name, ...argv])])),
};

/** `ephemera bench EXPERIMENT ...` */
export async function benchMain(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const run = name !== undefined && Object.hasOwn(EXPERIMENTS, name) ? EXPERIMENTS[name] : undefined;
  if (run === undefined) {
    throw new EphemeraError('EPH_CLI_USAGE', `ephemera bench: unknown experiment ${JSON.stringify(name ?? '')}; known: ${Object.keys(EXPERIMENTS).join(', ')}`);
  }
  return run(rest);
}
