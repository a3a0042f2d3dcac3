/**
 * `ephemera bench EXPERIMENT`: benchmarks that print one table of side-by-side ratios per run.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import { DEMO_DEFAULTS, runDemo } from '../bench/demo.js';
import { IO_DEFAULTS, runIoBench } from '../bench/io.js';
import { Progress } from '../bench/progress.js';
import { EVAL_EXPERIMENTS } from '../bench/eval/main.js';
import { MANAGER_BENCH_DEFAULTS, runManagerBench } from '../manager/bench.js';
import { EVAL_USAGE, evalBenchMain } from './bench-eval.js';
import { MOVE_BENCH_DEFAULTS, runMoveBench } from '../node/bench-move.js';
import { flagPositiveInt, flagSet, flagValue, parseFlags, type ParsedFlags } from './flags.js';
import { MICRO_USAGE, microBenchMain } from './bench-micro.js';
import { SHARING_USAGE, fig16aMain, figureMain } from './bench-sharing.js';
import { buildOutput } from './paths.js';

export const BENCH_USAGE = `usage: ephemera bench EXPERIMENT [FLAGS]

experiments:
  io    file-system micro-benchmark: ephemera vs tmpfs vs disk vs memcpy, plus pass-through
        overhead. Flags: --repeats N (default ${IO_DEFAULTS.repeats}), --ops N (default ${IO_DEFAULTS.ops}),
        --passes N (default ${IO_DEFAULTS.passes}), --work DIR (a disk directory, default ${IO_DEFAULTS.workBase}),
        --json FILE (also write the medians as JSON). Mounting the tmpfs needs root.
  demo  a small I/O-heavy Python function under ephemera, on tmpfs and on disk, on the host.
        Flags: --repeats N (default ${DEMO_DEFAULTS.repeats}), --scale N (default ${DEMO_DEFAULTS.scale}), --work DIR.
  manager  the Tenant Manager's decision time per event (target <= 1 µs at p50), back to back on
        pools of 2, 8 and 32 containers, paced at 200-1000 events/s (Fig. 16a's decision half), and
        through a real Manager process. Flags: --events N (default ${String(MANAGER_BENCH_DEFAULTS.events)}), --seconds N per
        rate (default ${String(MANAGER_BENCH_DEFAULTS.seconds)}), --process-events N (default ${String(MANAGER_BENCH_DEFAULTS.processEvents)}), --no-process,
        --lend-while-idle, --spin (also pace by busy-waiting: warm caches), --json FILE.
  move  one memory move between two real containers through the node agent (targets: decision
        <= 1 µs, whole move <= 1 ms at p50, donor without files): decision alone, through the
        Manager process, the move (daemon ack + both limits), and the whole. Flags: --rounds N
        (default ${String(MOVE_BENCH_DEFAULTS.rounds)}), --decisions N (default ${String(MOVE_BENCH_DEFAULTS.decisions)}), --json FILE.
${MICRO_USAGE}
${EVAL_USAGE}
${SHARING_USAGE}

Timed loops are native code or whole processes; the harness only starts them and takes medians.`;

function positiveInt(parsed: ParsedFlags, name: string, fallback: number): number {
  return flagPositiveInt(parsed, name, 'ephemera bench', fallback);
}

async function io(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { repeats: { value: true }, ops: { value: true }, passes: { value: true }, work: { value: true }, json: { value: true } }, 'ephemera bench io');
  const progress = new Progress();
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
  progress.end();
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) {
    writeFileSync(json, JSON.stringify({ medians_ns_per_op: report.medians, paired_ratios: report.paired, pass_through: report.passThrough, fast_ops: report.fastOps, skipped: report.skipped }, null, 2) + '\n');
  }
  return 0;
}

async function demo(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { repeats: { value: true }, scale: { value: true }, work: { value: true } }, 'ephemera bench demo');
  const progress = new Progress();
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
  progress.end();
  process.stdout.write(`${report.table}\n`);
  return 0;
}

async function manager(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(
    argv,
    { events: { value: true }, seconds: { value: true }, 'process-events': { value: true }, 'no-process': { value: false }, 'lend-while-idle': { value: false }, spin: { value: false }, json: { value: true } },
    'ephemera bench manager',
  );
  const progress = new Progress();
  const report = await runManagerBench({
    ...MANAGER_BENCH_DEFAULTS,
    events: positiveInt(parsed, 'events', MANAGER_BENCH_DEFAULTS.events),
    seconds: positiveInt(parsed, 'seconds', MANAGER_BENCH_DEFAULTS.seconds),
    processEvents: flagSet(parsed, 'no-process') ? 0 : positiveInt(parsed, 'process-events', MANAGER_BENCH_DEFAULTS.processEvents),
    lendWhileIdle: flagSet(parsed, 'lend-while-idle'),
    spin: flagSet(parsed, 'spin'),
    progress: (line) => {
      progress.start(line);
    },
  });
  progress.end();
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) writeFileSync(json, JSON.stringify({ rows: report.rows, need_met: report.coverage, timer_ns: report.timerNs }, null, 2) + '\n');
  return 0;
}

async function move(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { rounds: { value: true }, decisions: { value: true }, json: { value: true } }, 'ephemera bench move');
  const progress = new Progress();
  const report = await runMoveBench({
    rounds: positiveInt(parsed, 'rounds', MOVE_BENCH_DEFAULTS.rounds),
    decisions: positiveInt(parsed, 'decisions', MOVE_BENCH_DEFAULTS.decisions),
    progress: (line) => {
      progress.start(line);
    },
  });
  progress.end();
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) {
    const figures = { decisionCore: report.decisionCore, decisionProcess: report.decisionProcess, move: report.move, whole: report.whole, steps: report.steps, cgroupVersion: report.cgroupVersion };
    writeFileSync(json, JSON.stringify({ unit: 'us', ...figures }, null, 2) + '\n');
  }
  return 0;
}

const EXPERIMENTS: Readonly<Record<string, (argv: readonly string[]) => Promise<number>>> = {
  io,
  demo,
  manager,
  move,
  fig7: (argv) => microBenchMain('fig7', argv),
  fig8: (argv) => microBenchMain('fig8', argv),
  fig9: (argv) => microBenchMain('fig9', argv),
  fig14: (argv) => figureMain('fig14', argv),
  fig15: (argv) => figureMain('fig15', argv),
  fig16a: fig16aMain,
  ...Object.fromEntries(EVAL_EXPERIMENTS.map((name) => [name, (argv: readonly string[]) => evalBenchMain([name, ...argv])])),
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
