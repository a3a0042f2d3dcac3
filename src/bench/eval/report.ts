/**
 * From raw samples to results: per-cell summaries, side-by-side reductions next to the paper's,
 * the digest cross-check between modes, and the I/O-intensity table; written as JSON and CSV and
 * printed as a table.
 */
import type { Cell, Contender, Experiment } from './experiments.js';
import { PAPER_INTENSITY } from './experiments.js';
import { ioIntensity, ioShare } from './intensity.js';
import type { Sample } from './runner.js';
import type { Summary } from './stats.js';
import { reductionPct, summarize } from './stats.js';
import type { WorkloadName } from './workloads.js';

export interface CellResult {
  readonly id: string;
  readonly group: string;
  readonly label: string;
  readonly contender: Contender;
  readonly memory: number;
  readonly workload: string;
  readonly params: Record<string, unknown>;
  readonly runs: number;
  readonly ok: number;
  readonly oomKills: number;
  readonly failures: readonly string[];
  readonly metrics: Readonly<Record<string, Summary>>;
  readonly cpu: { utime_s: number; stime_s: number } | null;
  readonly strace: Record<string, { seconds: number; calls: number }> | null;
  readonly digests: readonly string[];
  /** The daemon's final stats of the last run (ephemera mode). */
  readonly daemon: Record<string, unknown> | null;
}

export interface Comparison {
  readonly group: string;
  readonly label: string;
  readonly metric: string;
  readonly contender: Contender;
  readonly baseline: Contender;
  readonly reductionPct: number;
  readonly paperPct: number | null;
}

export interface IntensityRow {
  readonly workload: string;
  readonly label: string;
  readonly utime_s: number;
  readonly stime_s: number;
  readonly ioShareTime: number;
  readonly ioShareCalls: number;
  readonly intensityPct: number;
  readonly paperPct: number | null;
}

export interface ExperimentResult {
  readonly experiment: string;
  readonly title: string;
  readonly cells: readonly CellResult[];
  readonly comparisons: readonly Comparison[];
  readonly digestMismatches: readonly { group: string; digests: Record<string, readonly string[]> }[];
  readonly intensity: readonly IntensityRow[] | null;
}

function cellResult(cell: Cell, samples: readonly Sample[]): CellResult {
  const ok = samples.filter((s) => s.outcome.ok);
  const keys = new Set(ok.flatMap((s) => Object.keys(s.outcome.workload?.timings ?? {})));
  const metrics: Record<string, Summary> = {};
  for (const k of keys) {
    const vals = ok.map((s) => s.outcome.workload?.timings[k]).filter((v): v is number => typeof v === 'number');
    if (vals.length > 0) metrics[k] = summarize(vals);
  }
  const launches = ok.map((s) => s.outcome.launch).filter((l) => l !== null);
  const traced = launches.find((l) => l.strace !== undefined);
  // CPU time of the function's measured phases when the workload reports it (setup and the
  // interpreter's start-up left out, as strace is), else of the whole invocation.
  const cpus = cell.strace === true ? [] : ok.map((s) => s.outcome.workload?.cpu ?? s.outcome.launch).filter((c) => c != null);
  const last = ok.at(-1);
  return {
    id: cell.id,
    group: cell.group,
    label: cell.label,
    contender: cell.contender,
    memory: cell.memory,
    workload: cell.invocation.workload,
    params: last?.outcome.workload?.params ?? {},
    runs: samples.length,
    ok: ok.length,
    oomKills: samples.filter((s) => s.outcome.oomKilled).length,
    failures: samples.filter((s) => !s.outcome.ok).map((s) => s.outcome.error ?? 'failed'),
    metrics,
    cpu: cpus.length > 0 ? { utime_s: summarize(cpus.map((c) => c.utime_s)).median, stime_s: summarize(cpus.map((c) => c.stime_s)).median } : null,
    strace: traced?.strace ?? null,
    digests: [...new Set(ok.map((s) => s.outcome.workload?.digest ?? ''))],
    daemon: last?.outcome.launch?.daemon ?? null,
  };
}

export function buildResult(exp: Experiment, cells: readonly Cell[], samples: readonly Sample[]): ExperimentResult {
  const results = cells.map((c) => cellResult(c, samples.filter((s) => s.cell.id === c.id)));
  const groups = [...new Set(results.map((r) => r.group))];

  const comparisons: Comparison[] = [];
  for (const g of groups) {
    const inGroup = results.filter((r) => r.group === g && !r.id.endsWith('/strace'));
    for (const m of exp.metrics) {
      for (const baseline of ['overlay', 'tmpfs'] as const) {
        const base = inGroup.find((r) => r.contender === baseline)?.metrics[m.key];
        if (base === undefined) continue;
        for (const r of inGroup) {
          const v = r.metrics[m.key];
          if (r.contender === baseline || v === undefined) continue;
          if (baseline === 'tmpfs' && r.contender !== 'ephemera') continue;
          const claim = exp.claims.find((c) => c.group === g && c.metric === m.key && c.contender === r.contender && c.baseline === baseline);
          comparisons.push({ group: g, label: r.label, metric: m.key, contender: r.contender, baseline, reductionPct: reductionPct(v.median, base.median), paperPct: claim?.reductionPct ?? null });
        }
      }
    }
  }

  const digestMismatches = groups.flatMap((g) => {
    const inGroup = results.filter((r) => r.group === g && r.ok > 0);
    const all = new Set(inGroup.flatMap((r) => r.digests));
    if (all.size <= 1) return [];
    return [{ group: g, digests: Object.fromEntries(inGroup.map((r) => [r.id, r.digests])) }];
  });

  let intensity: IntensityRow[] | null = null;
  if (exp.name === 'table3') {
    intensity = groups.flatMap((g) => {
      const plain = results.find((r) => r.group === g && r.cpu !== null);
      const traced = results.find((r) => r.group === g && r.strace !== null);
      if (plain?.cpu == null || traced?.strace == null) return [];
      const p = ioShare(traced.strace);
      const { utime_s, stime_s } = plain.cpu;
      return [{
        workload: plain.workload,
        label: plain.label,
        utime_s,
        stime_s,
        ioShareTime: p.byTime,
        ioShareCalls: p.byCalls,
        intensityPct: ioIntensity(stime_s, utime_s, p.byTime) * 100,
        paperPct: PAPER_INTENSITY[plain.workload as WorkloadName] ?? null,
      }];
    });
  }
  return { experiment: exp.name, title: exp.title, cells: results, comparisons, digestMismatches, intensity };
}

const CSV_HEADER = 'experiment,group,label,contender,memory_bytes,metric,n,median,min,max,spread,runs,ok,oom_kills';

export function toCsv(results: readonly ExperimentResult[]): string {
  const q = (s: string): string => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [CSV_HEADER];
  for (const e of results) {
    for (const c of e.cells) {
      for (const [metric, s] of Object.entries(c.metrics)) {
        lines.push([e.experiment, c.group, q(c.label), c.contender, c.memory, metric, s.n, s.median, s.min, s.max, s.spread.toFixed(4), c.runs, c.ok, c.oomKills].join(','));
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function pct(v: number | null): string {
  if (v === null || Number.isNaN(v)) return '-';
  return `${v >= 0 ? '−' : '+'}${Math.abs(v).toFixed(1)}%`;
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

/** A readable table: median (spread) per contender, then reductions against overlay and tmpfs. */
export function formatResult(e: ExperimentResult, metricsTitles: Readonly<Record<string, string>>): string {
  const out: string[] = [`== ${e.title}`];
  const contenders = [...new Set(e.cells.filter((c) => !c.id.endsWith('/strace')).map((c) => c.contender))];
  const groups = [...new Set(e.cells.map((c) => c.group))];
  if (e.intensity === null) {
    const rows: string[][] = [['workload', 'metric', ...contenders, ...contenders.filter((c) => c !== 'overlay').map((c) => `${c} vs overlay (paper)`), ...(contenders.includes('ephemera') && contenders.includes('tmpfs') ? ['ephemera vs tmpfs (paper)'] : [])]];
    for (const g of groups) {
      for (const m of Object.keys(metricsTitles)) {
        const cells = contenders.map((c) => e.cells.find((x) => x.group === g && x.contender === c));
        const label = cells.find((c) => c !== undefined)?.label ?? g;
        const shown = cells.map((c) => {
          if (c === undefined) return '-';
          const s = c.metrics[m];
          if (s === undefined) return c.oomKills > 0 ? 'OOM' : c.failures.length > 0 ? 'failed' : '-';
          return `${s.median.toFixed(3)}s ±${(s.spread * 50).toFixed(0)}%`;
        });
        const vs = (contender: Contender, baseline: Contender): string => {
          const cmp = e.comparisons.find((x) => x.group === g && x.metric === m && x.contender === contender && x.baseline === baseline);
          if (cmp === undefined) return '-';
          return `${pct(cmp.reductionPct)}${cmp.paperPct !== null ? ` (${pct(cmp.paperPct)})` : ''}`;
        };
        rows.push([label, m.replace(/_s$/, ''), ...shown, ...contenders.filter((c) => c !== 'overlay').map((c) => vs(c, 'overlay')), ...(contenders.includes('ephemera') && contenders.includes('tmpfs') ? [vs('ephemera', 'tmpfs')] : [])]);
      }
    }
    out.push(table(rows));
    out.push('(median of the repeats ± half the min–max spread; "−x%" = x% less time than the baseline; paper in parentheses)');
  } else {
    const rows: string[][] = [['workload', 'user s', 'kernel s', 'I/O share of syscall time', 'I/O intensity', 'paper']];
    for (const r of e.intensity) {
      rows.push([r.label, r.utime_s.toFixed(2), r.stime_s.toFixed(2), `${(r.ioShareTime * 100).toFixed(1)}%`, `${r.intensityPct.toFixed(2)}%`, r.paperPct === null ? 'dynamic' : `${r.paperPct.toFixed(2)}%`]);
    }
    out.push(table(rows));
  }
  for (const c of e.cells) {
    if (c.failures.length > 0) out.push(`  ${c.id}: ${c.failures.length}/${c.runs} runs failed (${[...new Set(c.failures)].join('; ')})`);
  }
  for (const d of e.digestMismatches) out.push(`  DIGEST MISMATCH in ${d.group}: ${JSON.stringify(d.digests)}`);
  return out.join('\n');
}
