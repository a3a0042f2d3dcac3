/**
 * `ephemera bench fig16a`: the Tenant Manager's overhead from an invocation request to its
 * container being released to run (§5.6, Fig. 16a), at 200 to 1000 requests per second.
 *
 * Two figures per rate, from one run:
 * - the decision alone: the manager core's `apply` paced at the rate on the paper's two-container
 *   pool (`ephemera bench manager`'s paced rows, reused as they are);
 * - the whole path on the real system: a node agent (child process, a Manager process per tenant)
 *   with two real containers of one tenant, a donor (512 MiB quota, running) and a recipient
 *   (64 MiB quota, its profile above it); each request is the recipient's raw `invocations/start`
 *   (the Manager decides, the agent lends: the donor's daemon shrinks and acks, both cgroup limits
 *   are written, the recipient's daemon grows), timed from the request sent to the answer, which
 *   is when the container may run; then its `invocations/end` returns the loan. The agent's own
 *   time of each move (daemon ack and both limit writes) is reported beside it.
 *
 * Two cores cannot run 1000 real invocations a second, so no action runs: the events are the
 * agent's raw invocation API, which is what the platform sends around each real invocation.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { TopLevelSpec } from 'vega-lite';

import { EphemeraError } from '../../core/errors.js';
import { MANAGER_BENCH_DEFAULTS, percentiles, runManagerBench } from '../../manager/bench.js';
import type { Usage } from '../../manager/types.js';
import { writePlot } from '../eval/plot.js';
import type { Progress } from '../progress.js';
import { AgentProcess } from './agent-process.js';
import { wrapLines } from './report.js';
import { TENANT, type SharingTools } from './run.js';

const MiB = 1024 * 1024;
const DONOR: Usage = { ownPeakBytes: 32 * MiB, filePeakBytes: 0 };
const RECIPIENT: Usage = { ownPeakBytes: 24 * MiB, filePeakBytes: 64 * MiB };

export interface Fig16aOptions {
  readonly rates: readonly number[];
  /** Seconds per rate. */
  readonly seconds: number;
  readonly outDir: string;
  readonly plot: boolean;
}

export const FIG16A_DEFAULTS = { rates: [200, 400, 600, 800, 1000], seconds: 2 } as const;

export interface Stat {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly mean: number;
}

export interface Fig16aRow {
  readonly rate: number;
  /** Requests per second actually sent (lower when the path is slower than the pace). */
  readonly achieved: number;
  /** µs: the manager core's decision, paced at this rate. */
  readonly decision: Stat;
  /** µs: request → answer of `invocations/start` through the agent (Manager process, daemons, limits). */
  readonly release: Stat;
  /** µs: the agent's own time of each move (daemon ack, both limit writes, the grow). */
  readonly move: Stat;
  /** µs: `invocations/end` (the loan returned). */
  readonly end: Stat;
}

/** The manager benchmark's percentiles, in the unit of the samples (µs here). */
export function stat(xs: readonly number[]): Stat {
  const p = percentiles([...xs]);
  return { n: p.n, p50: p.p50Ns, p90: p.p90Ns, mean: p.meanNs };
}

export const FIG16A_NOTE = 'Two cores cannot run 1000 real invocations a second: each request is the agent\'s raw invocations/start (and /end) against two real containers, no action runs.';

export function fig16aTable(rows: readonly Fig16aRow[]): string {
  const f = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(1));
  const lines = [
    'Fig. 16a: the Manager\'s overhead from an invocation request to its container released to run (µs)',
    '',
    'req/s  sent/s  decision p50  decision mean  release p50  release p90  release mean  move p50  end p50',
  ];
  for (const r of rows) {
    lines.push(
      [String(r.rate).padStart(5), r.achieved.toFixed(0).padStart(6), f(r.decision.p50).padStart(12), f(r.decision.mean).padStart(13), f(r.release.p50).padStart(11), f(r.release.p90).padStart(11), f(r.release.mean).padStart(12), f(r.move.p50).padStart(8), f(r.end.p50).padStart(7)].join('  '),
    );
  }
  lines.push('', 'decision: the manager core alone (ephemera bench manager, paced, two containers); release: the request through the node agent, its Manager process, the');
  lines.push('donor daemon\'s shrink and ack, both cgroup limit writes and the recipient daemon\'s grow, until the answer; move: that move alone, as the agent timed it.');
  lines.push(FIG16A_NOTE, 'paper (Fig. 16a): about 6 µs at every rate from 200 to 1000 requests/s');
  return lines.join('\n');
}

export function fig16aPlotSpec(rows: readonly Fig16aRow[]): TopLevelSpec {
  const values = rows.flatMap((r) => [
    { rate: r.rate, what: 'decision alone (manager core)', us: r.decision.mean },
    { rate: r.rate, what: 'request → released, incl. limit writes (node agent)', us: r.release.mean },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Fig. 16a: Tenant Manager overhead per invocation (mean)',
      subtitle: [...wrapLines(FIG16A_NOTE, 80), `Requests go one after another: the agent path reached at most ${Math.max(...rows.map((r) => r.achieved)).toFixed(0)} requests/s.`],
    },
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'rate', type: 'quantitative', title: 'requests per second' },
      y: { field: 'us', type: 'quantitative', title: 'µs (log scale)', scale: { type: 'log' } },
      color: { field: 'what', type: 'nominal', title: null, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 500 } },
    },
    width: 420,
    height: 240,
  };
}

export async function runFig16a(o: Fig16aOptions, tools: SharingTools, progress: Progress): Promise<{ rows: Fig16aRow[]; table: string; files: string[] }> {
  progress.begin(2 * o.rates.length);
  const decisions = await runManagerBench({
    ...MANAGER_BENCH_DEFAULTS,
    sizes: [],
    rates: o.rates,
    seconds: o.seconds,
    processEvents: 0,
    progress: (line) => {
      progress.start(line);
    },
  });
  for (const r of decisions.rows) progress.finish(`decision at ${String(r.rate)}/s`, `p50 ${(r.stats.p50Ns / 1000).toFixed(3)} µs`);

  const agent = await AgentProcess.start({ ephemera: tools.ephemera, image: tools.image, sharing: 'tenant', name: `ephbench-${String(process.pid)}-16a`, engine: tools.engine, log: () => undefined });
  const rows: Fig16aRow[] = [];
  try {
    const c = agent.client;
    const donor = await c.createContainer({ tenant: TENANT, function: 'factorial', memoryBytes: 512 * MiB, profile: DONOR });
    const recipient = await c.createContainer({ tenant: TENANT, function: 'microbench', memoryBytes: 64 * MiB, profile: RECIPIENT });
    await c.invocationStart(donor.id);
    for (const rate of o.rates) {
      const what = `through the agent at ${String(rate)}/s for ${String(o.seconds)} s`;
      progress.start(what);
      const count = rate * o.seconds;
      const release: number[] = [];
      const end: number[] = [];
      const move: number[] = [];
      const gapMs = 1000 / rate;
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const wait = t0 + i * gapMs - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const a = performance.now();
        const lent = await c.invocationStart(recipient.id);
        const b = performance.now();
        const back = await c.invocationEnd(recipient.id, RECIPIENT);
        const e = performance.now();
        if (lent.moves.length === 0 || lent.refused.length + back.refused.length > 0) {
          throw new EphemeraError('EPH_BENCH_FAILED', `fig16a: request ${String(i)} at ${String(rate)}/s moved ${JSON.stringify(lent)}; expected a loan to the recipient`);
        }
        release.push((b - a) * 1000);
        end.push((e - b) * 1000);
        for (const m of lent.moves) move.push(m.durationUs);
      }
      const achieved = count / ((performance.now() - t0) / 1000);
      const d = decisions.rows.find((r) => r.rate === rate);
      const decision: Stat = d === undefined ? stat([]) : { n: d.stats.n, p50: d.stats.p50Ns / 1000, p90: d.stats.p90Ns / 1000, mean: d.stats.meanNs / 1000 };
      const row = { rate, achieved, decision, release: stat(release), move: stat(move), end: stat(end) };
      rows.push(row);
      progress.finish(what, `release p50 ${row.release.p50.toFixed(0)} µs, sent ${achieved.toFixed(0)}/s`);
    }
    await c.invocationEnd(donor.id, DONOR);
  } finally {
    await agent.stop();
  }
  const table = fig16aTable(rows);
  await mkdir(o.outDir, { recursive: true });
  const base = join(o.outDir, 'fig16a');
  const files = [`${base}.json`, `${base}.csv`];
  await writeFile(`${base}.json`, JSON.stringify({ figure: 'fig16a', unit: 'us', note: FIG16A_NOTE, rows }, null, 2) + '\n');
  const csv = ['rate,achieved,decision_p50_us,decision_mean_us,release_p50_us,release_p90_us,release_mean_us,move_p50_us,end_p50_us'];
  for (const r of rows) csv.push([r.rate, r.achieved, r.decision.p50, r.decision.mean, r.release.p50, r.release.p90, r.release.mean, r.move.p50, r.end.p50].map((x) => String(x)).join(','));
  await writeFile(`${base}.csv`, csv.join('\n') + '\n');
  if (o.plot) files.push(...(await writePlot(fig16aPlotSpec(rows), base)));
  return { rows, table, files };
}
