/**
 * Decision-time benchmark (the paper's Fig. 16c, and past it): 200 requests on clusters of 200 to
 * 100,000 nodes. The nodes are in-memory models, each with an agent's report fed to the real
 * scheduler code; no containers run. Three arms see the same cluster and the same requests:
 *
 * - `ephemera`: the {@link Scheduler} with its per-tenant {@link FitIndex} (O(log n));
 * - `linear scan`: Algorithm 1 as the paper runs it, {@link algorithm1} over every node;
 * - `most-free`: the baseline, also indexed.
 *
 * A decision is timed from the request to the reservation on the chosen node (the paper's
 * `allocate(task)`), one `process.hrtime.bigint()` pair per request.
 */
import type { TopLevelSpec } from 'vega-lite';

import { algorithm1, type TaskProfile } from './algorithm.js';
import { mulberry32, randomInt } from '../core/random.js';
import { Scheduler } from './scheduler.js';

const MiB = 1024 * 1024;

export const FIG16C_DEFAULTS = {
  nodes: [200, 400, 600, 800, 1000, 10_000, 100_000],
  requests: 200,
  rounds: 5,
  seed: 16,
} as const;

/** The paper's Fig. 16c: about 418 µs (mean) at 1000 nodes, growing linearly from 200 nodes. */
export const PAPER_US_AT_1000 = 418;

export const FIG16C_ARMS = ['ephemera', 'linear scan', 'most-free'] as const;
export type Fig16cArm = (typeof FIG16C_ARMS)[number];

export interface Fig16cOptions {
  readonly nodes: readonly number[];
  readonly requests: number;
  readonly rounds: number;
  readonly seed: number;
  readonly progress?: (line: string) => void;
}

export interface Fig16cRow {
  readonly nodes: number;
  readonly arm: Fig16cArm;
  readonly samples: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly meanUs: number;
}

export interface ModelNode {
  readonly name: string;
  readonly lim: number;
  readonly alloc: number;
  readonly req: number;
  readonly tenants: Record<string, { alloc: number; req: number }>;
}

export interface ModelRequest {
  readonly tenant: string;
  readonly task: TaskProfile;
}

export const TENANTS = ['t0', 't1', 't2', 't3'];

/** A cluster of `n` model nodes (16 to 64 GiB, a third to two thirds given out, spread over four tenants). */
export function modelCluster(n: number, seed: number): ModelNode[] {
  const rnd = mulberry32(seed + n);
  const nodes: ModelNode[] = [];
  for (let i = 0; i < n; i++) {
    const lim = randomInt(rnd, 16, 64) * 1024 * MiB;
    const tenants: Record<string, { alloc: number; req: number }> = {};
    let alloc = 0;
    let req = 0;
    for (const t of TENANTS) {
      const a = randomInt(rnd, 0, Math.floor(lim / MiB / 6)) * MiB;
      const r = randomInt(rnd, 0, Math.floor(lim / MiB / 6)) * MiB;
      tenants[t] = { alloc: a, req: r };
      alloc += a;
      req += r;
    }
    nodes.push({ name: `node-${i}`, lim, alloc, req, tenants });
  }
  return nodes;
}

/** Tasks shaped like the paper's: I/O-bound (T_mem above T_lim) and CPU-bound (far below). */
export function modelRequests(count: number, seed: number): ModelRequest[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: count }, () => {
    const limit = randomInt(rnd, 128, 512) * MiB;
    const io = rnd() < 2 / 3;
    const mem = io ? limit + randomInt(rnd, 0, 512) * MiB : randomInt(rnd, 4, 64) * MiB;
    return { tenant: TENANTS[randomInt(rnd, 0, TENANTS.length - 1)] ?? 't0', task: { limit, mem } };
  });
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

function summarize(nodes: number, arm: Fig16cArm, ns: readonly number[]): Fig16cRow {
  const us = ns.map((x) => x / 1000).sort((a, b) => a - b);
  return { nodes, arm, samples: us.length, p50Us: percentile(us, 0.5), p90Us: percentile(us, 0.9), meanUs: us.reduce((s, x) => s + x, 0) / us.length };
}

function timeIndexed(policy: 'ephemera' | 'most-free', cluster: readonly ModelNode[], requests: readonly ModelRequest[], rounds: number): number[] {
  const s = new Scheduler({ policy, reservationTtlMs: 3_600_000 });
  for (const n of cluster) s.report({ node: n.name, seq: 1, lim: n.lim, alloc: n.alloc, req: n.req, tenants: n.tenants, running: [] }, 0);
  for (const t of TENANTS) s.peek(t, { limit: 1, mem: 0 }); // builds each tenant's index before timing
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const ids: string[] = [];
    requests.forEach((q, i) => {
      const id = `r${r}-${i}`;
      const t0 = process.hrtime.bigint();
      const p = s.schedule({ id, tenant: q.tenant, task: q.task }, 0);
      const t1 = process.hrtime.bigint();
      out.push(Number(t1 - t0));
      if (p !== null) ids.push(id);
    });
    for (const id of ids) s.release(id, 0); // back to the reported state for the next round
  }
  return out;
}

/** A {@link NodeView} the linear arm updates in place. */
interface LinearView {
  readonly name: string;
  readonly ordinal: number;
  readonly lim: number;
  readonly node: { alloc: number; req: number };
  readonly tenant: { alloc: number; req: number };
}

function timeLinear(cluster: readonly ModelNode[], requests: readonly ModelRequest[], rounds: number): number[] {
  // One view array per tenant, as Algorithm 1 reads it: the node-wide figures (one object per node,
  // shared by every tenant's view) for the filter, the tenant's own for the score.
  const nodeFigures = cluster.map((n) => ({ alloc: n.alloc, req: n.req }));
  const views = new Map<string, LinearView[]>(
    TENANTS.map((t) => [
      t,
      cluster.map((n, ordinal) => ({ name: n.name, ordinal, lim: n.lim, node: nodeFigures[ordinal] ?? { alloc: 0, req: 0 }, tenant: { ...(n.tenants[t] ?? { alloc: 0, req: 0 }) } })),
    ]),
  );
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const placed: { v: LinearView; task: TaskProfile }[] = [];
    for (const q of requests) {
      const view = views.get(q.tenant);
      if (view === undefined) continue;
      const t0 = process.hrtime.bigint();
      const v = view[algorithm1(view, q.task)];
      if (v !== undefined) {
        // allocate(task)
        v.node.alloc += q.task.limit;
        v.node.req += q.task.mem;
        v.tenant.alloc += q.task.limit;
        v.tenant.req += q.task.mem;
      }
      const t1 = process.hrtime.bigint();
      out.push(Number(t1 - t0));
      if (v !== undefined) placed.push({ v, task: q.task });
    }
    for (const { v, task } of placed) {
      v.node.alloc -= task.limit;
      v.node.req -= task.mem;
      v.tenant.alloc -= task.limit;
      v.tenant.req -= task.mem;
    }
  }
  return out;
}

/** Runs the benchmark; rows in node-count order, arms in {@link FIG16C_ARMS} order. */
export function runFig16c(o: Fig16cOptions): Fig16cRow[] {
  const rows: Fig16cRow[] = [];
  const requests = modelRequests(o.requests, o.seed);
  // Warm-up, not reported: let the JIT compile every arm before the first timed cluster.
  o.progress?.('fig16c: warm-up');
  const warm = modelCluster(1000, o.seed + 1);
  for (let i = 0; i < 3; i++) {
    timeIndexed('ephemera', warm, requests, 2);
    timeLinear(warm, requests, 2);
    timeIndexed('most-free', warm, requests, 2);
  }
  for (const n of o.nodes) {
    const cluster = modelCluster(n, o.seed);
    o.progress?.(`fig16c: ${n} nodes: ephemera`);
    rows.push(summarize(n, 'ephemera', timeIndexed('ephemera', cluster, requests, o.rounds)));
    o.progress?.(`fig16c: ${n} nodes: linear scan`);
    rows.push(summarize(n, 'linear scan', timeLinear(cluster, requests, o.rounds)));
    o.progress?.(`fig16c: ${n} nodes: most-free`);
    rows.push(summarize(n, 'most-free', timeIndexed('most-free', cluster, requests, o.rounds)));
  }
  return rows;
}

const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The table, the ratios measured in this run, and the targets' verdicts. */
export function formatFig16c(rows: readonly Fig16cRow[], o: Pick<Fig16cOptions, 'requests' | 'rounds'>): string {
  const get = (n: number, arm: Fig16cArm): Fig16cRow | undefined => rows.find((r) => r.nodes === n && r.arm === arm);
  const counts = [...new Set(rows.map((r) => r.nodes))];
  const lines = [
    `Fig. 16c: scheduling decision time, ${o.requests} requests x ${o.rounds} rounds per cluster size`,
    'nodes are in-memory models (agent reports fed to the real scheduler code in src/scheduler), not running agents',
    '',
    `${'nodes'.padStart(7)}  ${FIG16C_ARMS.map((a) => `${a} p50/p90 µs`.padStart(24)).join('')}  ${'linear/ours (p50)'.padStart(18)}`,
  ];
  for (const n of counts) {
    const cells = FIG16C_ARMS.map((a) => {
      const r = get(n, a);
      return (r === undefined ? '-' : `${fmt(r.p50Us)} / ${fmt(r.p90Us)}`).padStart(24);
    });
    const ours = get(n, 'ephemera');
    const lin = get(n, 'linear scan');
    const ratio = ours !== undefined && lin !== undefined ? `${(lin.p50Us / ours.p50Us).toFixed(1)}x` : '-';
    lines.push(`${String(n).padStart(7)}  ${cells.join('')}  ${ratio.padStart(18)}`);
  }
  const at = (n: number): Fig16cRow | undefined => get(n, 'ephemera');
  const small = at(1000);
  const large = at(100_000);
  lines.push('');
  lines.push(`paper (linear scan, mean): about ${PAPER_US_AT_1000} µs at 1000 nodes`);
  if (small !== undefined) lines.push(`target ≤ 10 µs at 1000 nodes: p50 ${fmt(small.p50Us)} µs, p90 ${fmt(small.p90Us)} µs -> ${small.p90Us <= 10 ? 'met' : small.p50Us <= 10 ? 'met at p50 only' : 'MISSED'} (${(PAPER_US_AT_1000 / small.meanUs).toFixed(0)}x below the paper's mean)`);
  if (large !== undefined) lines.push(`target ≤ 50 µs at 100,000 nodes: p50 ${fmt(large.p50Us)} µs, p90 ${fmt(large.p90Us)} µs -> ${large.p90Us <= 50 ? 'met' : large.p50Us <= 50 ? 'met at p50 only' : 'MISSED'}`);
  if (small !== undefined && large !== undefined) lines.push(`growth 1000 -> 100,000 nodes (100x): ours ${(large.p50Us / small.p50Us).toFixed(2)}x, linear scan ${((get(100_000, 'linear scan')?.p50Us ?? Number.NaN) / (get(1000, 'linear scan')?.p50Us ?? Number.NaN)).toFixed(1)}x`);
  return lines.join('\n');
}

export function fig16cCsv(rows: readonly Fig16cRow[]): string {
  return ['nodes,arm,samples,p50_us,p90_us,mean_us', ...rows.map((r) => `${r.nodes},${r.arm},${r.samples},${r.p50Us},${r.p90Us},${r.meanUs}`)].join('\n') + '\n';
}

/** Log-log plot of p50 (line) and p90 (dashed) against the node count, with the paper's point. */
export function fig16cPlotSpec(rows: readonly Fig16cRow[]): TopLevelSpec {
  const values = rows.flatMap((r) => [
    { nodes: r.nodes, arm: r.arm, stat: 'p50', us: r.p50Us },
    { nodes: r.nodes, arm: r.arm, stat: 'p90', us: r.p90Us },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Fig. 16c: scheduling decision time vs nodes', subtitle: 'nodes are in-memory models fed to the real scheduler code; black point: the paper (418 µs mean at 1000)' },
    width: 460,
    height: 300,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'nodes', type: 'quantitative', scale: { type: 'log' }, title: 'nodes' },
          y: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'decision time (µs)' },
          color: { field: 'arm', type: 'nominal', sort: [...FIG16C_ARMS], title: null },
          strokeDash: { field: 'stat', type: 'nominal', title: null, legend: { symbolType: 'stroke' } },
        },
      },
      {
        data: { values: [{ nodes: 1000, us: PAPER_US_AT_1000 }] },
        mark: { type: 'point', filled: true, color: 'black', size: 60 },
        encoding: { x: { field: 'nodes', type: 'quantitative' }, y: { field: 'us', type: 'quantitative' } },
      },
    ],
  };
}
