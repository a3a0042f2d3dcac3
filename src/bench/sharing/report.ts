/**
 * The pure half of `ephemera bench fig14|fig15`: samples in, medians, spreads, the ratios the
 * issue's targets are stated in, the table, the CSV and the vega-lite spec out. No I/O.
 */
import type { TopLevelSpec } from 'vega-lite';

import { reductionPct, summarize, type Summary } from '../eval/stats.js';

export type Task = 'cpu' | 'io';

/** One timed activation. */
export interface Sample {
  /** The scenario ("concurrent", "sequence"; Fig. 14 has one, "pair"). */
  readonly scenario: string;
  /** The arm or variant: "none", "tenant", "overlay", "function", "workflow". */
  readonly arm: string;
  /** The container's name in the plan ("cpu1", "io1"). */
  readonly container: string;
  readonly task: Task;
  readonly run: number;
  /** The action's own time (microbench's create + operations; the factorial loop), ms. */
  readonly ms: number;
  /** The agent's time of the whole activation (events, moves, /run), ms. */
  readonly agentMs: number;
  readonly initialBytes: number;
  /** The highest limit it ran under. */
  readonly grantedBytes: number;
  readonly evictions: number;
  /** What the agent measured and told the Manager after the run (T_mem = own + files). */
  readonly ownPeakBytes: number;
  readonly filePeakBytes: number;
  readonly oom: boolean;
}

export interface Cell {
  readonly scenario: string;
  readonly arm: string;
  readonly task: Task;
  readonly time: Summary;
  /** Median of the highest limit each run had, MiB. */
  readonly grantedMiB: number;
  readonly evictions: number;
  readonly ooms: number;
}

const MiB = 1024 * 1024;

function median(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : summarize(xs).median;
}

/** One cell per (scenario, arm, task), in the order they first appear. */
export function cells(samples: readonly Sample[]): Cell[] {
  const keys = [...new Set(samples.map((s) => `${s.scenario}\u0000${s.arm}\u0000${s.task}`))];
  return keys.map((k) => {
    const [scenario = '', arm = '', task = 'io'] = k.split('\u0000');
    const of = samples.filter((s) => s.scenario === scenario && s.arm === arm && s.task === task);
    return {
      scenario,
      arm,
      task: task as Task,
      // An OOM-killed run has no time of its own; it is counted in `ooms`.
      time: summarize(of.some((s) => !s.oom) ? of.filter((s) => !s.oom).map((s) => s.ms) : [Number.NaN]),
      grantedMiB: median(of.map((s) => s.grantedBytes / MiB)),
      evictions: of.reduce((a, s) => a + s.evictions, 0),
      ooms: of.filter((s) => s.oom).length,
    };
  });
}

function find(cs: readonly Cell[], scenario: string, arm: string, task: Task): Cell | undefined {
  return cs.find((c) => c.scenario === scenario && c.arm === arm && c.task === task);
}

export interface Verdict {
  readonly what: string;
  readonly value: string;
  readonly met: boolean;
}

/** The Fig. 14 targets, from one run's cells, and the paper's figures beside them. */
export function fig14Verdicts(cs: readonly Cell[], oomKills: number): Verdict[] {
  const v: Verdict[] = [];
  const ioNone = find(cs, 'pair', 'none', 'io');
  const ioShared = find(cs, 'pair', 'tenant', 'io');
  if (ioNone !== undefined && ioShared !== undefined) {
    const ratio = ioNone.time.median / ioShared.time.median;
    v.push({ what: 'I/O task: latency without sharing ÷ with sharing ≥ 2.28', value: `${ratio.toFixed(2)}×`, met: ratio >= 2.28 });
  }
  const cpuNone = find(cs, 'pair', 'none', 'cpu');
  const cpuShared = find(cs, 'pair', 'tenant', 'cpu');
  if (cpuNone !== undefined && cpuShared !== undefined) {
    const diff = Math.abs(cpuShared.time.median - cpuNone.time.median) / cpuNone.time.median;
    // The run-to-run spread as the table prints it: half the range over the median, the larger of the two arms'.
    const spread = Math.max(cpuNone.time.spread, cpuShared.time.spread) / 2;
    v.push({
      what: 'factorial: median with sharing within its run-to-run spread of without',
      value: `${(100 * diff).toFixed(2)}% apart, spread ±${(100 * spread).toFixed(1)}%`,
      met: diff <= spread,
    });
  }
  v.push({ what: 'OOM kills in every run: 0', value: String(oomKills), met: oomKills === 0 });
  return v;
}

/** Latency change against the OverlayFS arm of the same scenario and task, as the paper prints it. */
export function vsOverlay(cs: readonly Cell[], c: Cell): string {
  const base = find(cs, c.scenario, 'overlay', c.task);
  if (base === undefined || c.arm === 'overlay') return '';
  const r = -reductionPct(c.time.median, base.time.median);
  return `${r >= 0 ? '+' : '−'}${Math.abs(r).toFixed(2)}%`;
}

/** Speed-up against the arm without sharing of the same scenario and task. */
export function vsNone(cs: readonly Cell[], c: Cell): string {
  const base = find(cs, c.scenario, 'none', c.task);
  if (base === undefined || c.arm === 'none' || c.arm === 'overlay') return '';
  return `${(base.time.median / c.time.median).toFixed(2)}×`;
}

function pad(cols: readonly string[], widths: readonly number[]): string {
  return cols.map((c, i) => (i < 3 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
}

/** The table: one line per cell, then the verdicts. */
export function formatCells(title: string, cs: readonly Cell[], verdicts: readonly Verdict[], notes: readonly string[]): string {
  const head = ['scenario', 'arm', 'task', 'runs', 'median ms', 'min ms', 'max ms', 'spread', 'limit MiB', 'evictions', 'OOM', 'vs overlay', 'vs none'];
  const rows = cs.map((c) => [
    c.scenario,
    c.arm,
    c.task === 'io' ? 'I/O (microbench)' : 'CPU (factorial)',
    String(c.time.n),
    c.time.median.toFixed(1),
    c.time.min.toFixed(1),
    c.time.max.toFixed(1),
    `±${((100 * c.time.spread) / 2).toFixed(1)}%`,
    c.grantedMiB.toFixed(0),
    String(c.evictions),
    String(c.ooms),
    vsOverlay(cs, c),
    vsNone(cs, c),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const lines = [title, '', pad(head, widths), ...rows.map((r) => pad(r, widths))];
  if (verdicts.length > 0) {
    lines.push('', 'targets:');
    for (const v of verdicts) lines.push(`  ${v.met ? 'met   ' : 'MISSED'} ${v.what}: ${v.value}`);
  }
  for (const n of notes) lines.push(n);
  return lines.join('\n');
}

export function samplesCsv(samples: readonly Sample[]): string {
  const cols = ['scenario', 'arm', 'container', 'task', 'run', 'ms', 'agentMs', 'initialBytes', 'grantedBytes', 'evictions', 'ownPeakBytes', 'filePeakBytes', 'oom'] as const;
  return [cols.join(','), ...samples.map((s) => cols.map((k) => String(s[k])).join(','))].join('\n') + '\n';
}

/** Splits a subtitle into lines of at most `width` characters at spaces, so that it does not widen the plot. */
export function wrapLines(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

const ARM_ORDER = ['overlay', 'none', 'function', 'workflow', 'tenant'];
const ARM_COLORS = ['#8c8c8c', '#4c78a8', '#f58518', '#b279a2', '#54a24b'];

/** Bars of the medians with the min–max range, one column per scenario, one row per task. */
export function cellsPlotSpec(title: string, cs: readonly Cell[], subtitle: string): TopLevelSpec {
  const values = cs.map((c) => ({ scenario: c.scenario, arm: c.arm, task: c.task === 'io' ? 'I/O task (microbench)' : 'CPU task (factorial)', median: c.time.median / 1000, min: c.time.min / 1000, max: c.time.max / 1000 }));
  const arms = ARM_ORDER.filter((a) => values.some((v) => v.arm === a));
  const color = { field: 'arm', type: 'nominal' as const, sort: arms, scale: { domain: arms, range: arms.map((a) => ARM_COLORS[ARM_ORDER.indexOf(a)] ?? '#000') }, legend: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: wrapLines(title, 70), subtitle: wrapLines(subtitle, 64) },
    data: { values },
    facet: {
      column: { field: 'scenario', type: 'nominal', title: null },
      row: { field: 'task', type: 'nominal', title: null },
    },
    spec: {
      width: 55 * arms.length,
      height: 160,
      layer: [
        { mark: 'bar', encoding: { x: { field: 'arm', type: 'nominal', sort: arms, title: null, axis: { labelAngle: -40 } }, y: { field: 'median', type: 'quantitative', title: 'median (s)' }, color } },
        { mark: { type: 'rule', color: 'black' }, encoding: { x: { field: 'arm', type: 'nominal', sort: arms }, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}
