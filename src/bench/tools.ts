/**
 * `ephemera bench tools`: real programs' scratch work (issue 15) under `ephemera run`, on a tmpfs and
 * on the disk, side by side in one run.
 *
 * Each workload is one invocation of workloads/tools/toolbench.sh (or its Python half), which sets
 * up its input untimed, times the programs' work inside its own process and prints
 * `elapsed_us N`: neither `ephemera run`'s start-up (Node.js, the daemon) nor the shell's is in the
 * figure. Rounds alternate the contenders in rotating order, and a round's ratio compares runs made
 * seconds apart, so the table shows per-round ratios: their median and their spread (lowest and
 * highest). `ephemera run -- true` against `true` is the one row that measures start-up, timed
 * around the whole process from here.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { EphemeraError } from '../core/errors.js';
import { readStatsFile } from '../daemon-client/stats.js';
import { markdown, median } from './io.js';
import type { Progress } from './progress.js';
import { makeScratch } from './scratch.js';

const execFileP = promisify(execFile);

/** What the harness needs from the checkout and the build. */
export interface ToolsBenchTools {
  /** build/ephemera */
  readonly ephemera: string;
  /** workloads/tools/toolbench.sh */
  readonly script: string;
  /** The repository whose sources `tar` unpacks and packs. */
  readonly repo: string;
  /**
   * `ephemera run` through Node's CLI (`node build/js/cli/main.js run`), the path before the
   * native launcher: timed beside it in the start-up row when given.
   */
  readonly nodeCli?: readonly string[];
}

export interface ToolsBenchOptions {
  /** Rounds; each runs every workload once per contender. @default 3 */
  readonly rounds: number;
  /** Workload sizes in percent of the defaults (tiny runs for tests). @default 100 */
  readonly scale: number;
  /** Directory on disk for the scratch area. @default /var/tmp */
  readonly workBase: string;
  readonly progress: Progress;
}

export const TOOLS_DEFAULTS = { rounds: 3, scale: 100, workBase: '/var/tmp' } as const;

/** A bound on any one run: nothing may hang. */
const RUN_TIMEOUT_MS = 600_000;

/**
 * Start-up pairs (`true`, `ephemera run -- true`) per round. One pair a round left the row to the
 * host's noise: single runs of `true` from here range over 1.5-16 ms on the 2-core VM, so a median of
 * three differences could land anywhere in that range. A pair costs ~30 ms.
 */
export const START_PAIRS_PER_ROUND = 10;

export type ToolContender = 'ephemera' | 'tmpfs' | 'disk';
export const TOOL_CONTENDERS: readonly ToolContender[] = ['ephemera', 'tmpfs', 'disk'];

export interface ToolWorkload {
  /** toolbench.sh's workload name. */
  readonly key: string;
  /** The row's label, given the workload's size N. */
  readonly label: (n: number) => string;
  /** N at 100%. */
  readonly n: number;
  /** N never goes below this. */
  readonly min: number;
}

export const TOOL_WORKLOADS: readonly ToolWorkload[] = [
  { key: 'sort', label: (n) => `sort -S 2M -T spilling ${String(n)} MB`, n: 20, min: 1 },
  { key: 'tar', label: () => "tar x then tar cz of this repository's sources", n: 1, min: 1 },
  { key: 'sqlite-rollback', label: (n) => `SQLite rollback journal, ${String(n)} transactions`, n: 500, min: 10 },
  { key: 'sqlite-wal', label: (n) => `SQLite WAL, ${String(n)} transactions`, n: 500, min: 10 },
  { key: 'git', label: (n) => `git add + commit of ${String(n)} files`, n: 500, min: 10 },
  { key: 'gcc', label: (n) => `gcc build of ${String(n)} C files, TMPDIR in the root`, n: 40, min: 2 },
  { key: 'tempfile', label: (n) => `Python tempfile churn, ${String(n)} rounds`, n: 1000, min: 10 },
  { key: 'zip', label: (n) => `zip then unzip of ${String(n)} small files`, n: 1000, min: 10 },
];

/** A workload's N at `scale` percent. */
export function scaledSize(w: ToolWorkload, scale: number): number {
  return Math.max(w.min, Math.round((w.n * scale) / 100));
}

/**
 * Contenders in round r's order: rotated by one each round and reversed every other cycle, so each
 * runs first, last and after each other one equally often over 6 rounds.
 */
export function roundOrder<T>(items: readonly T[], r: number): T[] {
  const n = items.length;
  const rotated = items.map((_, j) => items[(r + j) % n] as T);
  return Math.floor(r / n) % 2 === 1 ? rotated.reverse() : rotated;
}

/**
 * The elapsed time a toolbench run printed, in µs.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when the last line is not `elapsed_us N`
 */
export function parseElapsed(stdout: string, what: string): number {
  const line = stdout.trim().split('\n').pop() ?? '';
  const m = /^elapsed_us (\d+)$/.exec(line);
  if (m?.[1] === undefined) {
    throw new EphemeraError('EPH_BENCH_FAILED', `${what} printed ${JSON.stringify(line.slice(0, 200))}, not "elapsed_us N"; check workloads/tools/toolbench.sh`);
  }
  return Number(m[1]);
}

/** Lowest, median and highest of a list. */
export type Spread = readonly [number, number, number];

function spread(xs: readonly number[]): Spread | undefined {
  return xs.length === 0 ? undefined : [Math.min(...xs), median(xs), Math.max(...xs)];
}

/** One workload's results: µs per round per contender (NaN where a round lacks one). */
export type ToolSamples = Partial<Record<ToolContender, readonly number[]>>;

export interface ToolSummary {
  /** Median µs per contender. */
  readonly us: Partial<Record<ToolContender, number>>;
  /** Per-round ephemera ÷ tmpfs time. */
  readonly vsTmpfs: Spread | undefined;
  /** Per-round ephemera ÷ disk time. */
  readonly vsDisk: Spread | undefined;
  readonly rounds: number;
}

/** Per-round quotients a/b of the rounds that have both. */
function perRound(a: readonly number[] | undefined, b: readonly number[] | undefined): number[] {
  if (a === undefined || b === undefined) return [];
  return a.flatMap((x, i) => {
    const y = b[i];
    return y === undefined || !(y > 0) || !(x > 0) ? [] : [x / y];
  });
}

export function summariseTool(s: ToolSamples): ToolSummary {
  const us: Partial<Record<ToolContender, number>> = {};
  for (const c of TOOL_CONTENDERS) {
    const xs = (s[c] ?? []).filter((x) => x > 0);
    if (xs.length > 0) us[c] = median(xs);
  }
  return {
    us,
    vsTmpfs: spread(perRound(s.ephemera, s.tmpfs)),
    vsDisk: spread(perRound(s.ephemera, s.disk)),
    rounds: s.ephemera?.length ?? 0,
  };
}

/** `ephemera run -- true` against `true`: wall-clock ms of each, START_PAIRS_PER_ROUND pairs per round. */
export interface StartupSummary {
  readonly ephemeraMs: number;
  readonly trueMs: number;
  /** How many pairs were timed (START_PAIRS_PER_ROUND a round). */
  readonly pairs: number;
  /** Median of the pairs' differences, ms, with the lowest and highest. */
  readonly overMs: Spread;
  /** The same run through Node's CLI, when it was timed too: its median and its differences. */
  readonly nodeCli?: { readonly ms: number; readonly overMs: Spread };
}

function overTrue(ms: readonly number[], trueMs: readonly number[]): Spread {
  return spread(ms.map((x, i) => x - (trueMs[i] ?? NaN)).filter((x) => Number.isFinite(x))) ?? [NaN, NaN, NaN];
}

export function summariseStartup(ephemeraMs: readonly number[], trueMs: readonly number[], nodeCliMs: readonly number[] = []): StartupSummary {
  return {
    ephemeraMs: median(ephemeraMs),
    trueMs: median(trueMs),
    pairs: Math.min(ephemeraMs.length, trueMs.length),
    overMs: overTrue(ephemeraMs, trueMs),
    ...(nodeCliMs.length === 0 ? {} : { nodeCli: { ms: median(nodeCliMs), overMs: overTrue(nodeCliMs, trueMs) } }),
  };
}

function fmtOver(s: Spread): string {
  return `${s[1].toFixed(1)} (${s[0].toFixed(1)}–${s[2].toFixed(1)})`;
}

/** "1.43× (1.30–1.60)": a median ratio and the lowest and highest round. */
export function fmtSpread(s: Spread | undefined): string {
  return s === undefined ? 'n/a' : `${s[1].toFixed(2)}× (${s[0].toFixed(2)}–${s[2].toFixed(2)})`;
}

function fmtMs(us: number | undefined): string {
  return us === undefined ? 'n/a' : (us / 1000).toFixed(1);
}

export interface ToolRow {
  readonly key: string;
  readonly label: string;
  readonly n: number;
  readonly summary: ToolSummary;
  /** Files the last ephemera run created in memory (the daemon's files_created). */
  readonly filesInMemory: number | undefined;
}

export interface ToolsReport {
  readonly rows: readonly ToolRow[];
  readonly startup: StartupSummary;
  readonly rounds: number;
  readonly skipped: readonly string[];
}

/** The table: seconds per contender, per-round ratios, and the targets. */
export function renderToolsTable(r: ToolsReport): string {
  const rows: string[][] = [['workload', 'ephemera ms', 'tmpfs ms', 'disk ms', 'ephemera ÷ tmpfs', 'ephemera ÷ disk', 'files in memory', 'target', 'met']];
  for (const row of r.rows) {
    const t = row.summary.vsTmpfs;
    rows.push([
      row.label,
      fmtMs(row.summary.us.ephemera),
      fmtMs(row.summary.us.tmpfs),
      fmtMs(row.summary.us.disk),
      fmtSpread(t),
      fmtSpread(row.summary.vsDisk),
      row.filesInMemory === undefined ? 'n/a' : String(row.filesInMemory),
      '≤1.0× tmpfs',
      t === undefined ? 'n/a' : t[1] <= 1 ? 'yes' : 'NO',
    ]);
  }
  const s = r.startup;
  const start = [
    ['start-up', 'ephemera run -- true ms', 'true ms', 'over true ms (median, lowest–highest)', 'target', 'met'],
    ['ephemera run -- true', s.ephemeraMs.toFixed(1), s.trueMs.toFixed(1), fmtOver(s.overMs), '≤10 ms over', s.overMs[1] <= 10 ? 'yes' : 'NO'],
    ...(s.nodeCli === undefined ? [] : [['the same through Node\'s CLI', s.nodeCli.ms.toFixed(1), s.trueMs.toFixed(1), fmtOver(s.nodeCli.overMs), 'comparison', '']]),
  ];
  const header = [
    `ephemera bench tools: ${String(r.rounds)} rounds, contenders in rotating order; times are measured inside the workload's own process (toolbench.sh, Python's perf_counter for SQLite and tempfile), so ephemera run's start-up is excluded; set-up and checks untimed`,
    'ephemera: the scratch directory in a managed root on disk under `ephemera run --discard`; tmpfs: a tmpfs mounted for the run; disk: a directory on the disk; TMPDIR is the scratch directory in every case',
    '"ephemera ÷ X" = ephemera time / X time per round (lower is better for ephemera): median (lowest–highest round); "files in memory" = files the last ephemera run created in memory',
    'start-up: wall time of the whole process from the harness, `ephemera run --discard -- true` (build/ephemera: the native launcher) against `true`, ' +
      `${String(START_PAIRS_PER_ROUND)} pairs per round in rotating order, median of the pairs' differences; "through Node's CLI": \`node build/js/cli/main.js run --discard -- true\` in the same rounds`,
  ];
  return [...header, '', markdown(rows), '', markdown(start), ...r.skipped.map((x) => `skipped: ${x}`)].join('\n');
}

/**
 * The report as CSV: one line per workload and contender, with ephemera's time divided by that
 * contender's per round (median, lowest, highest; 1 for ephemera itself), and a start-up line.
 */
export function toolsCsv(r: ToolsReport): string {
  const lines = ['workload,n,contender,median_us,ephemera_div_median,ephemera_div_lowest,ephemera_div_highest'];
  for (const row of r.rows) {
    for (const c of TOOL_CONTENDERS) {
      const us = row.summary.us[c];
      if (us === undefined) continue;
      const q = c === 'tmpfs' ? row.summary.vsTmpfs : c === 'disk' ? row.summary.vsDisk : ([1, 1, 1] as const);
      lines.push([row.key, String(row.n), c, us.toFixed(0), q?.[1].toFixed(4) ?? '', q?.[0].toFixed(4) ?? '', q?.[2].toFixed(4) ?? ''].join(','));
    }
  }
  const node = r.startup.nodeCli;
  if (node !== undefined) lines.push(['startup', '1', 'node-cli-run-true-over-true', (node.overMs[1] * 1000).toFixed(0), '', '', ''].join(','));
  lines.push(['startup', '1', 'ephemera-run-true-over-true', (r.startup.overMs[1] * 1000).toFixed(0), '', '', ''].join(','));
  return lines.join('\n') + '\n';
}

async function run(argv: readonly string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  const [file, ...args] = argv;
  try {
    const { stdout } = await execFileP(file ?? '', args, { env, maxBuffer: 1 << 20, timeout: RUN_TIMEOUT_MS });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string; killed?: boolean };
    const why = e.killed === true ? `killed after ${String(RUN_TIMEOUT_MS / 1000)} s` : (e.stderr ?? '').trim() || e.message;
    throw new EphemeraError('EPH_BENCH_FAILED', `${what} failed (${argv.join(' ')}): ${why}`, { cause: err });
  }
}

/**
 * Run the whole benchmark.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when a run fails or prints no time
 */
export async function runToolsBench(tools: ToolsBenchTools, opts: ToolsBenchOptions): Promise<ToolsReport> {
  const scratch = makeScratch({ base: opts.workBase, prefix: 'ephemera-tools-', tmpfsBytes: 1024 * 1024 * 1024 });
  const skipped: string[] = scratch.tmpfsSkipped === undefined ? [] : [`tmpfs: ${scratch.tmpfsSkipped}`];
  try {
    const managed = join(scratch.dir, 'managed');
    const disk = join(scratch.dir, 'disk');
    const inputs = join(scratch.dir, 'inputs');
    for (const d of [managed, disk]) mkdirSync(d);
    const statsFile = join(scratch.dir, 'stats.json');
    const base: Record<ToolContender, string | undefined> = { ephemera: managed, tmpfs: scratch.tmpfs, disk };
    const contenders = TOOL_CONTENDERS.filter((c) => base[c] !== undefined);
    const sortWorkload = TOOL_WORKLOADS.find((w) => w.key === 'sort');
    const sortBytes = (sortWorkload === undefined ? 1 : scaledSize(sortWorkload, opts.scale)) * 1_000_000;
    await run(['bash', tools.script, 'prepare', inputs, String(sortBytes), tools.repo], process.env, 'preparing the inputs');

    opts.progress.begin(opts.rounds * (TOOL_WORKLOADS.length * contenders.length + START_PAIRS_PER_ROUND * (tools.nodeCli === undefined ? 2 : 3)));
    const samples = new Map<string, Record<ToolContender, number[]>>();
    const filesInMemory = new Map<string, number>();
    const startEph: number[] = [];
    const startTrue: number[] = [];
    const startNode: number[] = [];
    const startArgv = { true: ['true'], ephemera: [tools.ephemera], node: tools.nodeCli ?? [] } as const;
    const startWhat = { true: 'true', ephemera: 'ephemera run -- true', node: "ephemera run -- true through Node's CLI" } as const;
    const startSamples = { true: startTrue, ephemera: startEph, node: startNode } as const;
    const starters = tools.nodeCli === undefined ? (['true', 'ephemera'] as const) : (['true', 'ephemera', 'node'] as const);
    for (let r = 0; r < opts.rounds; r++) {
      for (const w of TOOL_WORKLOADS) {
        const n = scaledSize(w, opts.scale);
        const got = samples.get(w.key) ?? { ephemera: [], tmpfs: [], disk: [] };
        samples.set(w.key, got);
        for (const c of roundOrder(contenders, r)) {
          const dir = join(base[c] ?? '', `${w.key}-${String(r)}`);
          mkdirSync(dir);
          const cmd = ['bash', tools.script, w.key, dir, inputs, String(n)];
          const argv = c === 'ephemera' ? [tools.ephemera, 'run', '--root', managed, '--discard', '--stats', statsFile, '--', ...cmd] : cmd;
          const out = await run(argv, { ...process.env, TMPDIR: dir, LC_ALL: 'C' }, `${w.key} on ${c}`);
          got[c].push(parseElapsed(out, `${w.key} on ${c}`));
          if (c === 'ephemera') filesInMemory.set(w.key, readStatsFile(statsFile).files_created);
          opts.progress.finish(`${w.key} on ${c}, round ${String(r + 1)}`, `${(got[c].at(-1) ?? 0) / 1000} ms`);
        }
      }
      for (let p = 0; p < START_PAIRS_PER_ROUND; p++) {
        for (const which of roundOrder(starters, r * START_PAIRS_PER_ROUND + p)) {
          const argv = which === 'true' ? startArgv.true : [...startArgv[which], 'run', '--root', managed, '--discard', '--', 'true'];
          const t0 = performance.now();
          await run(argv, process.env, startWhat[which]);
          const ms = performance.now() - t0;
          startSamples[which].push(ms);
          opts.progress.finish(`${startWhat[which]}, round ${String(r + 1)}, pair ${String(p + 1)}`, `${ms.toFixed(1)} ms`);
        }
      }
    }
    const rows = TOOL_WORKLOADS.map((w): ToolRow => {
      const n = scaledSize(w, opts.scale);
      return { key: w.key, label: w.label(n), n, summary: summariseTool(samples.get(w.key) ?? {}), filesInMemory: filesInMemory.get(w.key) };
    });
    return { rows, startup: summariseStartup(startEph, startTrue, startNode), rounds: opts.rounds, skipped };
  } finally {
    scratch.dispose();
  }
}

/** Write the report as JSON and/or CSV, where asked. */
export function writeToolsReport(r: ToolsReport, json: string | undefined, csv: string | undefined): void {
  if (json !== undefined) writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  if (csv !== undefined) writeFileSync(csv, toolsCsv(r));
}
