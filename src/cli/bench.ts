/**
 * `ephemera bench EXPERIMENT`: benchmarks that print one table of side-by-side ratios per run.
 */
import { accessSync, constants, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import { DEMO_DEFAULTS, runDemo } from '../bench/demo.js';
import { IO_DEFAULTS, runIoBench } from '../bench/io.js';
import { Progress } from '../bench/progress.js';
import { STARTUP_DEFAULTS, renderStartupTable, runStartupBench, type StartupContender } from '../bench/startup.js';
import { TOOLS_DEFAULTS, renderToolsTable, runToolsBench, writeToolsReport } from '../bench/tools.js';
import { EVAL_EXPERIMENTS } from '../bench/eval/main.js';
import { MANAGER_BENCH_DEFAULTS, runManagerBench } from '../manager/bench.js';
import { EVAL_USAGE, evalBenchMain } from './bench-eval.js';
import { MOVE_BENCH_DEFAULTS, runMoveBench } from '../node/bench-move.js';
import { flagPositiveInt, flagSet, flagValue, parseFlags, type ParsedFlags } from './flags.js';
import { DASHBOARD_BENCH_DEFAULTS } from '../dashboard/bench-defaults.js';
import { MICRO_USAGE, microBenchMain } from './bench-micro.js';
import { SCHEDULER_BENCH_USAGE, fig16bMain, fig16cMain, table4BoundMain, table4Main, table4ModelMain } from './bench-scheduler.js';
import { BUILD_DIR, buildOutput } from './paths.js';
import { PLATFORM_DEFAULTS, plotPlatformBench, runPlatformBench } from '../bench/platform.js';
import { runPlatformDemo } from '../bench/platform-demo.js';
import { SHARING_USAGE, fig16aMain, figureMain } from './bench-sharing.js';

export const BENCH_USAGE = `usage: ephemera bench EXPERIMENT [FLAGS]

experiments:
  io    file-system micro-benchmark: ephemera vs tmpfs vs disk vs memcpy, namespace rows
        (create, rename, mkdir, readdir, locks), plus pass-through overhead. Flags: --repeats N
        (default ${IO_DEFAULTS.repeats}), --ops N (default ${IO_DEFAULTS.ops}), --passes N (default ${IO_DEFAULTS.passes}),
        --work DIR (a disk directory, default ${IO_DEFAULTS.workBase}),
        --json FILE (also write the medians as JSON). Mounting the tmpfs needs root.
  tools real programs' scratch work (sort -T, tar, SQLite rollback and WAL, git, gcc, Python
        tempfile, zip) under ephemera vs tmpfs vs disk, timed inside the process, and
        \`ephemera run -- true\` against \`true\`. Flags: --rounds N (default ${String(TOOLS_DEFAULTS.rounds)}),
        --scale PERCENT of the default sizes (default ${String(TOOLS_DEFAULTS.scale)}), --work DIR (default ${TOOLS_DEFAULTS.workBase}),
        --json FILE, --csv FILE. Mounting the tmpfs needs root.
  startup  \`ephemera run -- true\` against \`true\`, whole processes in alternating order, the
        difference per round (target <= 10 ms). Flags: --rounds N (default ${String(STARTUP_DEFAULTS.rounds)}),
        --against DIR (repeatable: another build directory's ephemera, e.g. a copy of main's build/,
        timed in the same rounds), --node (also Node's CLI, \`node build/js/cli/main.js run\`),
        --work DIR (default ${STARTUP_DEFAULTS.workBase}), --json FILE.
  platform  warm invoke latency through the platform vs straight to the container's /run, from
        1, 4 and 16 clients, and the cold start split into engine, runtime and Ephemera parts.
        Flags: --calls N (per client count, default ${PLATFORM_DEFAULTS.calls}), --rounds N (turns, default
        ${PLATFORM_DEFAULTS.rounds}), --colds N (default ${PLATFORM_DEFAULTS.colds}), --json FILE, --csv FILE, --plot BASE
        (writes BASE.svg and BASE.png). Needs Docker; take numbers on a quiet machine.
  platform-demo  ephemera up, one tenant's CPU-bound and I/O-heavy actions invoked together with
        the node's sharing off and on: latency, granted memory, file operations served from memory
        (make demo). Needs Docker.
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
  dashboard  the views' targets: GET /metrics with 1000 containers (in-memory models fed to the
        real collectors) and the dashboard's first render in headless Chromium with 100 containers
        and 1000 activations. Flags: --scrapes N (default ${DASHBOARD_BENCH_DEFAULTS.scrapes}), --renders N (default ${DASHBOARD_BENCH_DEFAULTS.renders}).
${MICRO_USAGE}
${SCHEDULER_BENCH_USAGE}
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

async function tools(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { rounds: { value: true }, scale: { value: true }, work: { value: true }, json: { value: true }, csv: { value: true } }, 'ephemera bench tools');
  const scale = positiveInt(parsed, 'scale', TOOLS_DEFAULTS.scale);
  if (scale > 100) throw new EphemeraError('EPH_CLI_USAGE', `ephemera bench tools: --scale is a percentage of the default sizes, 1-100, got ${String(scale)}`);
  const progress = new Progress();
  const report = await runToolsBench(
    {
      ephemera: buildOutput('ephemera', true),
      script: fileURLToPath(new URL('../../../workloads/tools/toolbench.sh', import.meta.url)),
      repo: fileURLToPath(new URL('../../../', import.meta.url)),
      nodeCli: [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))],
    },
    { rounds: positiveInt(parsed, 'rounds', TOOLS_DEFAULTS.rounds), scale, workBase: flagValue(parsed, 'work') ?? TOOLS_DEFAULTS.workBase, progress },
  );
  progress.end();
  process.stdout.write(`${renderToolsTable(report)}\n`);
  writeToolsReport(report, flagValue(parsed, 'json'), flagValue(parsed, 'csv'));
  return 0;
}

function startup(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { rounds: { value: true }, against: { value: true, repeatable: true }, node: { value: false }, work: { value: true }, json: { value: true } }, 'ephemera bench startup');
  const contenders: StartupContender[] = [
    { label: 'this build', ephemera: [buildOutput('ephemera', true)] },
    ...(parsed.values.get('against') ?? []).map((dir) => {
      const ephemera = resolve(dir, 'ephemera');
      try {
        accessSync(ephemera, constants.X_OK);
      } catch {
        throw new EphemeraError('EPH_CLI_USAGE', `ephemera bench startup: --against ${JSON.stringify(dir)}: ${ephemera} is not an executable; give a build directory (e.g. a copy of another checkout's build/)`);
      }
      return { label: `--against ${dir}`, ephemera: [ephemera] };
    }),
    ...(flagSet(parsed, 'node') ? [{ label: "Node's CLI", ephemera: [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))] }] : []),
  ];
  const progress = new Progress();
  const report = runStartupBench(contenders, { rounds: positiveInt(parsed, 'rounds', STARTUP_DEFAULTS.rounds), workBase: flagValue(parsed, 'work') ?? STARTUP_DEFAULTS.workBase, progress });
  progress.end();
  process.stdout.write(`${renderStartupTable(report)}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  return Promise.resolve(0);
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

/** Runs a benchmark that reports what it is about to do as one line at a time, on the one progress reporter. */
async function withProgressLine<T>(run: (line: (what: string) => void) => Promise<T>): Promise<T> {
  const progress = new Progress();
  try {
    return await run((what) => {
      progress.start(what);
    });
  } finally {
    progress.end();
  }
}

async function platform(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { calls: { value: true }, rounds: { value: true }, colds: { value: true }, json: { value: true }, csv: { value: true }, plot: { value: true } }, 'ephemera bench platform');
  buildOutput('ephemerad', true);
  buildOutput('libephemera.so', false);
  const report = await withProgressLine((line) => runPlatformBench({
    cli: [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))],
    buildDir: BUILD_DIR,
    calls: positiveInt(parsed, 'calls', PLATFORM_DEFAULTS.calls),
    rounds: positiveInt(parsed, 'rounds', PLATFORM_DEFAULTS.rounds),
    colds: positiveInt(parsed, 'colds', PLATFORM_DEFAULTS.colds),
    clients: PLATFORM_DEFAULTS.clients,
    progress: line,
  }));
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) writeFileSync(json, `${JSON.stringify({ latency: report.latency, ratios: report.ratios, cpu: report.cpu, cold: report.cold, containers: report.containers }, null, 2)}\n`);
  const csv = flagValue(parsed, 'csv');
  if (csv !== undefined) writeFileSync(csv, report.csv);
  const plot = flagValue(parsed, 'plot');
  if (plot !== undefined) process.stdout.write(`plots: ${(await plotPlatformBench(report, plot)).join(', ')}\n`);
  const failed = report.latency.reduce((s, l) => s + l.failed, 0);
  return failed === 0 ? 0 : 1;
}

async function manager(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(
    argv,
    { events: { value: true }, seconds: { value: true }, 'process-events': { value: true }, 'no-process': { value: false }, 'lend-while-idle': { value: false }, spin: { value: false }, json: { value: true } },
    'ephemera bench manager',
  );
  const report = await withProgressLine((line) => runManagerBench({
    ...MANAGER_BENCH_DEFAULTS,
    events: positiveInt(parsed, 'events', MANAGER_BENCH_DEFAULTS.events),
    seconds: positiveInt(parsed, 'seconds', MANAGER_BENCH_DEFAULTS.seconds),
    processEvents: flagSet(parsed, 'no-process') ? 0 : positiveInt(parsed, 'process-events', MANAGER_BENCH_DEFAULTS.processEvents),
    lendWhileIdle: flagSet(parsed, 'lend-while-idle'),
    spin: flagSet(parsed, 'spin'),
    progress: line,
  }));
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) writeFileSync(json, JSON.stringify({ rows: report.rows, need_met: report.coverage, timer_ns: report.timerNs }, null, 2) + '\n');
  return 0;
}

async function move(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { rounds: { value: true }, decisions: { value: true }, json: { value: true } }, 'ephemera bench move');
  const report = await withProgressLine((line) => runMoveBench({
    rounds: positiveInt(parsed, 'rounds', MOVE_BENCH_DEFAULTS.rounds),
    decisions: positiveInt(parsed, 'decisions', MOVE_BENCH_DEFAULTS.decisions),
    progress: line,
  }));
  process.stdout.write(`${report.table}\n`);
  const json = flagValue(parsed, 'json');
  if (json !== undefined) {
    const figures = { decisionCore: report.decisionCore, decisionProcess: report.decisionProcess, move: report.move, whole: report.whole, steps: report.steps, cgroupVersion: report.cgroupVersion };
    writeFileSync(json, JSON.stringify({ unit: 'us', ...figures }, null, 2) + '\n');
  }
  return 0;
}

async function platformDemo(argv: readonly string[]): Promise<number> {
  parseFlags(argv, {}, 'ephemera bench platform-demo');
  const report = await withProgressLine((line) => runPlatformDemo({ cli: [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))], progress: line }));
  process.stdout.write(`${report.table}\n`);
  return 0;
}

async function dashboard(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { scrapes: { value: true }, renders: { value: true } }, 'ephemera bench dashboard');
  // Loaded here: it drives Chromium through puppeteer-core, which no other command needs.
  const { runDashboardBench } = await import('../dashboard/bench.js');
  const report = await withProgressLine((line) => runDashboardBench({
    ...DASHBOARD_BENCH_DEFAULTS,
    scrapes: positiveInt(parsed, 'scrapes', DASHBOARD_BENCH_DEFAULTS.scrapes),
    renders: positiveInt(parsed, 'renders', DASHBOARD_BENCH_DEFAULTS.renders),
    progress: line,
  }));
  process.stdout.write(`${report.table}\n`);
  return 0;
}

const EXPERIMENTS: Readonly<Record<string, (argv: readonly string[]) => Promise<number>>> = {
  io,
  tools,
  startup,
  platform,
  'platform-demo': platformDemo,
  demo,
  manager,
  move,
  dashboard,
  fig7: (argv) => microBenchMain('fig7', argv),
  fig8: (argv) => microBenchMain('fig8', argv),
  fig9: (argv) => microBenchMain('fig9', argv),
  fig16b: (argv) => withProgressLine((line) => fig16bMain(argv, line)),
  fig16c: (argv) => withProgressLine((line) => fig16cMain(argv, line)),
  'table4-model': (argv) => Promise.resolve(table4ModelMain(argv)),
  table4: (argv) => withProgressLine((line) => table4Main(argv, line)),
  'table4-bound': (argv) => withProgressLine((line) => table4BoundMain(argv, line)),
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
