/**
 * `ephemera bench fig16b|fig16c|table4-model`: the scheduler's benchmarks on in-memory model nodes
 * (src/scheduler/bench.ts, src/scheduler/table4.ts), and `table4` on real containers
 * (src/bench/table4.ts); this file parses flags and writes the results.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import { writePlot } from '../bench/eval/plot.js';
import { formatFig16bAgents, runFig16bAgents, saturation } from '../bench/fig16b-agents.js';
import { runTable4 } from '../bench/table4.js';
import { runTable4Bound } from '../bench/table4-bound.js';
import { FIG16C_DEFAULTS, fig16cCsv, fig16cPlotSpec, formatFig16c, runFig16c } from '../scheduler/bench.js';
import { FIG16B_DEFAULTS, formatFig16b, runFig16b } from '../scheduler/bench-fig16b.js';
import { TABLE4_ARRIVALS, formatTable4Model } from '../scheduler/table4.js';
import { flagCpus, flagPositiveInt, flagSet, flagValue, parseFlags } from './flags.js';
import { BUILD_DIR } from './paths.js';

export const SCHEDULER_BENCH_USAGE = `  fig16c  scheduling decision time (p50/p90) for 200 requests on 200 to 100,000 in-memory model
        nodes fed to the real scheduler code: ours (O(log n) index), the paper's linear scan and the
        most-free baseline. Flags: --nodes 200,1000,... (default ${FIG16C_DEFAULTS.nodes.join(',')}),
        --requests N (default ${FIG16C_DEFAULTS.requests}), --rounds N (default ${FIG16C_DEFAULTS.rounds}), --out DIR (default
        results/scheduler), --no-plot.
  fig16b  the same on two nodes with 200 to 1000 requests arriving evenly within one second (ours
        and most-free; placed tasks released after --hold-ms, default ${FIG16B_DEFAULTS.holdMs}), in two arms side by
        side: two model nodes, and two real node agents (\`ephemera node\` processes) through the
        platform's placement path (needs Docker; no container is created). Flags: --rates
        200,400,... (default ${FIG16B_DEFAULTS.rates.join(',')}), --agent-rates LIST (the real-agent arm's rates, default
        --rates; go higher to find where it saturates), --no-agents, --hold-ms N, --out DIR.
  table4-model  Table 4's allocation (six tasks on two 1024 MB nodes) through the real scheduler,
        ours vs the most-free baseline, beside the paper's rows. Flags: --out DIR.
  table4  Table 4 on real containers: two \`ephemera up --nodes 2 --node-memory 1024M\` platforms
        (ephemera, most-free), runs alternated; average latency per task kind, per node memory
        requested/allocated/used. Flags: --runs N (default 5), --cpu-seconds N (default 8),
        --io-mib N (default 250), --container-cpus N (the CPU cap of every container in both arms;
        default the machine's cores / 6, so that the six tasks never contend), --out DIR.
  table4-bound  the largest improvement any placement could give in Table 4's scenario here: Table
        4's I/O task in real containers at its 150 MiB limit (spilling), at a loan's 258 MiB and
        with all its files in memory, in turns, side by side; the ratio and the bound it implies,
        and the disk under Docker (device, dd with and without page cache / O_DIRECT / fsync).
        Flags: --runs N (default 5), --containers 150,258,512 (MiB; the first is the spill arm),
        --concurrent N (I/O tasks at once, default 4 as in Table 4), --io-mib N (default 250),
        --cpu-seconds N (the CPU task's spin, its latency floor; default 8), --container-cpus N
        (default cores / 6, as table4), --out DIR.`;

/** The ephemera CLI as a command line (to start `ephemera up` and `ephemera node` as processes). */
const selfCli = (): string[] => [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))];

/** `--container-cpus`, by default the cores shared out over Table 4's six tasks, so that the six never contend. */
function table4Cpus(parsed: ReturnType<typeof parseFlags>, context: string): number {
  const cores = availableParallelism();
  return flagCpus(parsed, 'container-cpus', context, cores) ?? Math.floor((cores / TABLE4_ARRIVALS.length) * 100) / 100;
}

/** \`ephemera bench table4\` */
export async function table4Main(argv: readonly string[], progress: (line: string) => void): Promise<number> {
  const context = 'ephemera bench table4';
  const parsed = parseFlags(argv, { runs: { value: true }, 'cpu-seconds': { value: true }, 'io-mib': { value: true }, 'container-cpus': { value: true }, out: { value: true } }, context);
  const report = await runTable4({
    cli: selfCli(),
    runs: flagPositiveInt(parsed, 'runs', context, 5),
    cpuSeconds: flagPositiveInt(parsed, 'cpu-seconds', context, 8),
    ioMiB: flagPositiveInt(parsed, 'io-mib', context, 250),
    containerCpus: table4Cpus(parsed, context),
    progress,
  });
  const out = flagValue(parsed, 'out') ?? defaultOut();
  mkdirSync(out, { recursive: true });
  const file = join(out, 'table4.json');
  writeFileSync(file, JSON.stringify({ experiment: 'table4', runs: report.runs, summary: report.summary, improvement: report.improvement, loadavg: report.loadavg, containerCpus: report.containerCpus }, null, 2) + '\n');
  process.stdout.write(`${report.table}\nwrote ${file}\n`);
  return report.runs.some((r) => r.failed > 0) ? 1 : 0;
}

/** \`ephemera bench table4-bound\` */
export async function table4BoundMain(argv: readonly string[], progress: (line: string) => void): Promise<number> {
  const context = 'ephemera bench table4-bound';
  const parsed = parseFlags(argv, { runs: { value: true }, containers: { value: true }, concurrent: { value: true }, 'io-mib': { value: true }, 'cpu-seconds': { value: true }, 'container-cpus': { value: true }, out: { value: true } }, context);
  const containersMiB = countList(flagValue(parsed, 'containers'), [150, 258, 512], 'containers', context);
  if (containersMiB.some((m) => m < 64)) throw new EphemeraError('EPH_CLI_USAGE', `${context}: --containers takes sizes in MiB of at least 64 (the function runtime needs that much); got ${containersMiB.join(',')}`);
  const report = await runTable4Bound({
    cli: selfCli(),
    runs: flagPositiveInt(parsed, 'runs', context, 5),
    containersMiB,
    concurrent: flagPositiveInt(parsed, 'concurrent', context, 4),
    ioMiB: flagPositiveInt(parsed, 'io-mib', context, 250),
    cpuSeconds: flagPositiveInt(parsed, 'cpu-seconds', context, 8),
    containerCpus: table4Cpus(parsed, context),
    progress,
  });
  const out = flagValue(parsed, 'out') ?? defaultOut();
  mkdirSync(out, { recursive: true });
  const file = join(out, 'table4-bound.json');
  writeFileSync(file, JSON.stringify({ experiment: 'table4-bound', arms: report.arms, disk: report.disk, ratio: report.ratio, bound: report.bound, neededInMemoryMs: report.neededInMemoryMs, loadavg: report.loadavg }, null, 2) + '\n');
  process.stdout.write(`${report.table}\nwrote ${file}\n`);
  return report.arms.some((a) => a.failed > 0) ? 1 : 0;
}

const defaultOut = (): string => join(BUILD_DIR, '..', 'results', 'scheduler');

function countList(text: string | undefined, fallback: readonly number[], flag: string, context: string): readonly number[] {
  if (text === undefined) return fallback;
  const list = text.split(',').map((s) => s.trim());
  return list.map((s) => {
    if (!/^[1-9]\d*$/.test(s) || Number(s) > 1_000_000) {
      throw new EphemeraError('EPH_CLI_USAGE', `${context}: --${flag} takes a comma-separated list of whole numbers from 1 to 1000000; got ${JSON.stringify(s)}`);
    }
    return Number(s);
  });
}

export async function fig16cMain(argv: readonly string[], progress: (line: string) => void): Promise<number> {
  const context = 'ephemera bench fig16c';
  const parsed = parseFlags(argv, { nodes: { value: true }, requests: { value: true }, rounds: { value: true }, out: { value: true }, 'no-plot': { value: false } }, context);
  const options = {
    nodes: countList(flagValue(parsed, 'nodes'), FIG16C_DEFAULTS.nodes, 'nodes', context),
    requests: flagPositiveInt(parsed, 'requests', context, FIG16C_DEFAULTS.requests),
    rounds: flagPositiveInt(parsed, 'rounds', context, FIG16C_DEFAULTS.rounds),
    seed: FIG16C_DEFAULTS.seed,
    progress,
  };
  const rows = runFig16c(options);
  process.stdout.write(`${formatFig16c(rows, options)}\n`);
  const out = flagValue(parsed, 'out') ?? defaultOut();
  mkdirSync(out, { recursive: true });
  const base = join(out, 'fig16c');
  writeFileSync(`${base}.json`, JSON.stringify({ experiment: 'fig16c', model_nodes: true, requests: options.requests, rounds: options.rounds, rows }, null, 2) + '\n');
  writeFileSync(`${base}.csv`, fig16cCsv(rows));
  const written = [`${base}.json`, `${base}.csv`];
  if (!flagSet(parsed, 'no-plot')) written.push(...(await writePlot(fig16cPlotSpec(rows), base)));
  process.stdout.write(`results: ${written.join(' ')}\n`);
  return 0;
}

export async function fig16bMain(argv: readonly string[], progress: (line: string) => void): Promise<number> {
  const context = 'ephemera bench fig16b';
  const parsed = parseFlags(argv, { rates: { value: true }, 'agent-rates': { value: true }, 'no-agents': { value: false }, 'hold-ms': { value: true }, out: { value: true } }, context);
  const holdMs = flagPositiveInt(parsed, 'hold-ms', context, FIG16B_DEFAULTS.holdMs);
  const rates = countList(flagValue(parsed, 'rates'), FIG16B_DEFAULTS.rates, 'rates', context);
  const agentRates = countList(flagValue(parsed, 'agent-rates'), rates, 'agent-rates', context);
  const rows = await runFig16b({ rates, holdMs, seed: FIG16B_DEFAULTS.seed, progress });
  const agentRows = flagSet(parsed, 'no-agents')
    ? []
    : await runFig16bAgents({ cli: selfCli(), rates: agentRates, holdMs, seed: FIG16B_DEFAULTS.seed, progress });
  process.stdout.write(`${formatFig16b(rows, holdMs)}\n`);
  if (agentRows.length > 0) process.stdout.write(`\n${formatFig16bAgents(agentRows, holdMs)}\n`);
  const out = flagValue(parsed, 'out') ?? defaultOut();
  mkdirSync(out, { recursive: true });
  const file = join(out, 'fig16b.json');
  writeFileSync(file, JSON.stringify({ experiment: 'fig16b', model_nodes: true, rows, real_agents: { rows: agentRows, ...saturation(agentRows) } }, null, 2) + '\n');
  process.stdout.write(`results: ${file}\n`);
  return agentRows.every((r) => r.onAgents === r.placed) ? 0 : 1;
}

export function table4ModelMain(argv: readonly string[]): number {
  const parsed = parseFlags(argv, { out: { value: true } }, 'ephemera bench table4-model');
  const { text, result } = formatTable4Model();
  process.stdout.write(`${text}\n`);
  const out = flagValue(parsed, 'out') ?? defaultOut();
  mkdirSync(out, { recursive: true });
  const file = join(out, 'table4-model.json');
  writeFileSync(file, JSON.stringify({ experiment: 'table4-model', rows: result }, null, 2) + '\n');
  process.stdout.write(`results: ${file}\n`);
  return 0;
}
