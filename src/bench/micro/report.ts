/**
 * Summaries and the printed table of a micro-benchmark sweep. Pure: no I/O.
 */
import { summarize } from '../eval/stats.js';
import { median, markdown } from '../io.js';
import { MAX_SLOWDOWN, type Figure, type Point } from './figures.js';
import type { Contender, RunResult } from './contenders.js';

/** All runs of one contender at one point, summarised. */
export interface Summary {
  /** Median total time (create + ops) of the runs that finished, in ns; null when none did. */
  readonly ns: number | null;
  readonly runs: number;
  /** Runs that did not finish. */
  readonly failed: number;
  readonly oomKills: number;
  readonly peak: number | null;
  /** Evictions of the median run (ephemera only). */
  readonly evictions: number | null;
  /** Why runs failed, when they did. */
  readonly exits: readonly string[];
  /** Run-to-run noise: half the range of the finished runs' times over their median; null below two runs. */
  readonly spread: number | null;
}

export function summarise(runs: readonly RunResult[]): Summary {
  const done = runs.filter((r) => r.output !== null);
  const times = done.map((r) => r.output?.total_ns ?? 0);
  const ns = times.length > 0 ? median(times) : null;
  const mid = done.find((r) => r.output?.total_ns === ns) ?? done[0];
  const peaks = runs.map((r) => r.peak).filter((p): p is number => p !== null);
  return {
    ns,
    runs: runs.length,
    failed: runs.length - done.length,
    oomKills: runs.reduce((a, r) => a + r.oomKills, 0),
    peak: peaks.length > 0 ? Math.max(...peaks) : null,
    evictions: mid?.counters?.evictions ?? null,
    exits: runs.filter((r) => r.output === null).map((r) => (r.error === '' ? r.exit : `${r.exit}: ${r.error.split('\n').pop() ?? ''}`)),
    spread: times.length >= 2 ? summarize(times).spread / 2 : null,
  };
}

function spreadText(s: Summary | undefined): string | undefined {
  return s?.spread == null ? undefined : `±${(s.spread * 100).toFixed(0)}%`;
}

export type PointSummary = Partial<Record<Contender, Summary>>;

/** Time cell: ms, or why there is none. A contender with a failed run is not trusted for that point. */
function timeCell(s: Summary | undefined): string {
  if (s === undefined) return '—';
  if (s.failed > 0) return s.oomKills > 0 ? `OOM (${s.failed}/${s.runs})` : `failed (${s.failed}/${s.runs})`;
  return s.ns === null ? '—' : (s.ns / 1e6).toFixed(1);
}

/** The change of `x` against disk as the paper prints it: −54.7% is 54.7% less latency. */
export function change(x: number, disk: number): string {
  const pct = ((x - disk) / disk) * 100;
  const sign = pct < 0 ? '−' : '+';
  return `${sign}${Math.abs(pct).toFixed(1)}%`;
}

function vsDisk(s: Summary | undefined, disk: Summary | undefined): string {
  if (s?.ns == null || s.failed > 0 || disk?.ns == null || disk.failed > 0) return '—';
  return `${change(s.ns, disk.ns)} (${(disk.ns / s.ns).toFixed(2)}×)`;
}

export interface Verdict {
  readonly label: string;
  readonly met: boolean;
  readonly detail: string;
}

/** The issue's targets at one point. */
export function pointVerdicts(p: Point, s: PointSummary): Verdict[] {
  const eph = s.ephemera;
  const disk = s.disk;
  const out: Verdict[] = [];
  if (eph === undefined) return out;
  out.push({ label: 'no OOM kill', met: eph.oomKills === 0, detail: `${eph.oomKills} OOM kills` });
  if (eph.failed > 0) {
    out.push({ label: 'finishes', met: false, detail: eph.exits.join('; ') });
    return out;
  }
  if (disk?.ns != null && disk.failed === 0 && eph.ns !== null) {
    const speedup = disk.ns / eph.ns;
    // The disk runs' own spread says how much of a small difference is noise; the verdict stays as measured.
    const noise = spreadText(disk);
    out.push({ label: `≤ disk +${MAX_SLOWDOWN * 100}%`, met: eph.ns <= disk.ns * (1 + MAX_SLOWDOWN), detail: `${change(eph.ns, disk.ns)}${noise === undefined ? '' : `; disk runs ${noise}`}` });
    if (p.minSpeedup !== undefined) {
      // What memcpy itself achieves over disk bounds what any in-memory file system can.
      const mem = s.memcpy;
      const bound = mem?.ns != null && mem.failed === 0 ? `; memcpy itself: ${(disk.ns / mem.ns).toFixed(2)}×` : '';
      out.push({ label: `≥ ${p.minSpeedup}× disk`, met: speedup >= p.minSpeedup, detail: `${speedup.toFixed(2)}×${bound}` });
    }
  }
  return out;
}

function verdictCell(vs: readonly Verdict[]): string {
  if (vs.length === 0) return '—';
  return vs.map((v) => `${v.label}: ${v.met ? 'met' : `MISSED (${v.detail})`}`).join('; ');
}

export interface Sweep {
  readonly figure: Figure;
  readonly reps: number;
  readonly contenders: readonly Contender[];
  readonly points: ReadonlyArray<{ readonly point: Point; readonly summary: PointSummary }>;
}

/** The table for one figure, with the paper's numbers and the issue's targets beside the results. */
export function renderSweep(sw: Sweep): string {
  const has = (c: Contender): boolean => sw.contenders.includes(c);
  const head = [sw.figure.axis];
  if (has('disk')) head.push('disk ms');
  if (has('tmpfs')) head.push('tmpfs ms');
  if (has('ephemera')) head.push('ephemera ms');
  if (has('memcpy')) head.push('memcpy ms (no limit)');
  if (has('ephemera')) head.push('ephemera vs disk');
  if (has('tmpfs')) head.push('tmpfs vs disk');
  if (has('memcpy')) head.push('memcpy vs disk');
  // memcpy runs without a cgroup: it has no OOM count.
  const limited = sw.contenders.filter((c) => c !== 'memcpy');
  head.push(`OOM kills (${limited.join('/')})`);
  if (has('ephemera')) head.push('evictions', 'paper (Ephemera vs OverlayFS)', 'targets (issue 3)');
  const rows: string[][] = [head];
  const verdicts: Verdict[] = [];
  let worst: { label: string; pct: number } | undefined;
  for (const { point, summary: s } of sw.points) {
    const row = [point.label];
    if (has('disk')) row.push(timeCell(s.disk));
    if (has('tmpfs')) row.push(timeCell(s.tmpfs));
    if (has('ephemera')) row.push(timeCell(s.ephemera));
    if (has('memcpy')) row.push(timeCell(s.memcpy));
    if (has('ephemera')) row.push(vsDisk(s.ephemera, s.disk));
    if (has('tmpfs')) row.push(vsDisk(s.tmpfs, s.disk));
    if (has('memcpy')) row.push(vsDisk(s.memcpy, s.disk));
    row.push(limited.map((c) => String(s[c]?.oomKills ?? '—')).join(' / '));
    if (has('ephemera')) {
      const vs = pointVerdicts(point, s);
      verdicts.push(...vs);
      row.push(String(s.ephemera?.evictions ?? '—'), point.paper, verdictCell(vs));
      const e = s.ephemera;
      const d = s.disk;
      if (e?.ns != null && d?.ns != null && e.failed === 0 && d.failed === 0) {
        const pct = ((e.ns - d.ns) / d.ns) * 100;
        if (worst === undefined || pct > worst.pct) worst = { label: point.label, pct };
      }
    }
    rows.push(row);
  }
  const lines = [sw.figure.title, `median of ${sw.reps} run(s) per cell; time = write both files + the random operations, measured inside microbench; disk, tmpfs and ephemera each in a memory cgroup with the same limit and no swap${has('memcpy') ? '; memcpy = the same operations on malloc\'d memory without a limit, the physical bound' : ''}`, '', markdown(rows), ''];
  if (has('ephemera')) {
    const oom = sw.points.reduce((a, { summary }) => a + (summary.ephemera?.oomKills ?? 0), 0);
    lines.push(`ephemera OOM kills in this sweep: ${oom} (target: 0)`);
    if (worst !== undefined) lines.push(`ephemera's worst point vs disk: ${worst.label}, ${worst.pct >= 0 ? '+' : '−'}${Math.abs(worst.pct).toFixed(1)}% (target: no worse than +${MAX_SLOWDOWN * 100}%)`);
    lines.push(`targets met: ${verdicts.filter((v) => v.met).length} of ${verdicts.length}`);
  }
  const spreads = sw.points.flatMap(({ point, summary }) => {
    const parts = sw.contenders.flatMap((c) => {
      const t = spreadText(summary[c]);
      return t === undefined || c === 'memcpy' ? [] : [`${c} ${t}`];
    });
    return parts.length === 0 ? [] : [`${point.label}: ${parts.join(', ')}`];
  });
  if (spreads.length > 0) lines.push(`run-to-run spread (half the range over the median): ${spreads.join('; ')}`);
  const failures = sw.points.flatMap(({ point, summary }) =>
    sw.contenders.flatMap((c) => (summary[c]?.exits ?? []).filter((e) => !e.startsWith('killed by SIGKILL')).map((e) => `${point.label} ${c}: ${e}`)),
  );
  if (failures.length > 0) lines.push('', 'failed runs:', ...failures.map((f) => `  ${f}`));
  return lines.join('\n');
}
