/**
 * `ephemera bench startup`: what `ephemera run -- true` costs over `true` (issue 15 item 5, target
 * ≤ 10 ms), side by side in one run, and the same for other builds (`--against DIR`, e.g. a copy of
 * main's build/) so that a change to the start-up path is measured against what it replaces under
 * the same load.
 *
 * Each round runs every contender once, in rotating order, timed around the whole process from
 * here (spawnSync: the harness's own cost is in `true`'s time too, so it cancels in the
 * difference). The figures are per-round differences: their median and their spread.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { markdown, median } from './io.js';
import type { Progress } from './progress.js';
import { roundOrder, type Spread } from './tools.js';

/** A bound on any one run: nothing may hang. */
const RUN_TIMEOUT_MS = 60_000;

export interface StartupContender {
  /** How the table names it. */
  readonly label: string;
  /** argv before `run --root DIR --discard -- true`; empty for `true` itself. */
  readonly ephemera: readonly string[];
}

export interface StartupBenchOptions {
  readonly rounds: number;
  /** Directory on disk for the managed root. */
  readonly workBase: string;
  readonly progress: Progress;
}

export const STARTUP_DEFAULTS = { rounds: 40, workBase: '/var/tmp' } as const;

export interface StartupRow {
  readonly label: string;
  readonly medianMs: number;
  /** Per-round (contender − `true`), ms. */
  readonly overTrueMs: Spread;
  /** Per-round (contender − the first ephemera contender), ms; undefined for that one itself. */
  readonly overFirstMs?: Spread;
}

export interface StartupReport {
  readonly rounds: number;
  readonly trueMs: number;
  readonly rows: readonly StartupRow[];
}

function spreadOf(xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  return ok.length === 0 ? [NaN, NaN, NaN] : [Math.min(...ok), median(ok), Math.max(...ok)];
}

function minus(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x - (b[i] ?? NaN));
}

/** The report from ms per round: `trueMs[r]`, and `samples[c][r]` for each ephemera contender c. */
export function summariseStartupBench(labels: readonly string[], trueMs: readonly number[], samples: readonly (readonly number[])[]): StartupReport {
  const first = samples[0] ?? [];
  return {
    rounds: trueMs.length,
    trueMs: median(trueMs),
    rows: labels.map((label, c): StartupRow => {
      const ms = samples[c] ?? [];
      return { label, medianMs: median(ms), overTrueMs: spreadOf(minus(ms, trueMs)), ...(c === 0 ? {} : { overFirstMs: spreadOf(minus(ms, first)) }) };
    }),
  };
}

function fmt(s: Spread): string {
  return `${s[1].toFixed(2)} (${s[0].toFixed(2)} to ${s[2].toFixed(2)})`;
}

/** The table, and the verdict against the 10 ms target for the first contender. */
export function renderStartupTable(r: StartupReport): string {
  const rows = [
    ['`ephemera run -- true`', 'ms, median', 'over `true`, ms: median (lowest to highest)', 'minus the first row, ms: median (lowest to highest)'],
    ['`true`', r.trueMs.toFixed(2), '', ''],
    ...r.rows.map((row) => [row.label, row.medianMs.toFixed(2), fmt(row.overTrueMs), row.overFirstMs === undefined ? '' : fmt(row.overFirstMs)]),
  ];
  const head = r.rows[0];
  const verdict = head === undefined ? '' : `\n\n${head.label}: ${head.overTrueMs[1].toFixed(2)} ms over \`true\` (median of ${String(r.rounds)} rounds); target ≤ 10 ms: ${head.overTrueMs[1] <= 10 ? 'met' : 'NOT met'}`;
  return markdown(rows) + verdict;
}

function timeOnce(argv: readonly string[], what: string): number {
  const [file, ...args] = argv;
  const t0 = performance.now();
  const r = spawnSync(file ?? '', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: RUN_TIMEOUT_MS });
  const ms = performance.now() - t0;
  if (r.error !== undefined || r.status !== 0) {
    const why = r.error?.message ?? (r.signal !== null ? `killed by ${r.signal}` : `exit status ${String(r.status)}: ${r.stderr.toString().trim()}`);
    throw new EphemeraError('EPH_BENCH_FAILED', `${what} failed (${argv.join(' ')}): ${why}`);
  }
  return ms;
}

/**
 * Time `true` and `ephemera run --root DIR --discard -- true` for each contender, one of each per
 * round.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when a run fails
 */
export function runStartupBench(contenders: readonly StartupContender[], opts: StartupBenchOptions): StartupReport {
  const root = mkdtempSync(join(opts.workBase, 'ephemera-startup-'));
  try {
    const trueMs: number[] = [];
    const samples: number[][] = contenders.map(() => []);
    const order = [-1, ...contenders.map((_, i) => i)];
    opts.progress.begin(opts.rounds * order.length);
    for (let r = 0; r < opts.rounds; r++) {
      for (const c of roundOrder(order, r)) {
        const who = contenders[c];
        const what = who === undefined ? 'true' : who.label;
        const argv = who === undefined ? ['true'] : [...who.ephemera, 'run', '--root', root, '--discard', '--', 'true'];
        const ms = timeOnce(argv, what);
        (who === undefined ? trueMs : (samples[c] ?? [])).push(ms);
        opts.progress.finish(`${what}, round ${String(r + 1)}`, `${ms.toFixed(2)} ms`);
      }
    }
    return summariseStartupBench(
      contenders.map((c) => c.label),
      trueMs,
      samples,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
