/**
 * The paper's Fig. 16b on model nodes: two nodes, 200 to 1000 requests arriving evenly within one
 * second; the decision time of each (from the request to the reservation). The nodes are in-memory
 * models fed to the real scheduler code, as in Fig. 16c; each placed task is released `holdMs`
 * later, so the nodes fill and drain as with running functions. The arm on two real node agents
 * (src/bench/fig16b-agents.ts) runs beside this one in `bench fig16b`.
 */
import type { SchedulerPolicy } from './algorithm.js';
import { modelCluster, modelRequests, percentile } from './bench.js';
import { Scheduler } from './scheduler.js';

export const FIG16B_DEFAULTS = {
  rates: [200, 400, 600, 800, 1000],
  holdMs: 50,
  seed: 16,
} as const;

/** The paper's Fig. 16b: about 2 µs at every rate. */
export const PAPER_FIG16B_US = 2;

export interface Fig16bRow {
  readonly rate: number;
  readonly policy: SchedulerPolicy;
  readonly samples: number;
  readonly placed: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly meanUs: number;
}

export interface Fig16bOptions {
  readonly rates: readonly number[];
  readonly holdMs: number;
  readonly seed: number;
  readonly progress?: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function oneSecond(policy: SchedulerPolicy, rate: number, o: Fig16bOptions): Promise<Fig16bRow> {
  const s = new Scheduler({ policy });
  for (const n of modelCluster(2, o.seed)) s.report({ node: n.name, seq: 1, lim: n.lim, alloc: n.alloc, req: n.req, tenants: n.tenants, running: [] }, 0);
  const requests = modelRequests(rate, o.seed + rate);
  const ns: number[] = [];
  const live: { id: string; until: number }[] = [];
  let placed = 0;
  const start = performance.now();
  for (let i = 0; i < requests.length; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0.5) await sleep(wait);
    const now = performance.now();
    while (live.length > 0 && (live[0]?.until ?? Infinity) <= now) {
      const done = live.shift();
      if (done !== undefined) s.release(done.id, now);
    }
    const q = requests[i];
    if (q === undefined) continue;
    const id = `r${i}`;
    const t0 = process.hrtime.bigint();
    const p = s.schedule({ id, tenant: q.tenant, task: q.task }, now);
    const t1 = process.hrtime.bigint();
    ns.push(Number(t1 - t0));
    if (p !== null) {
      placed++;
      live.push({ id, until: now + o.holdMs });
    }
  }
  const us = ns.map((x) => x / 1000).sort((a, b) => a - b);
  return { rate, policy, samples: us.length, placed, p50Us: percentile(us, 0.5), p90Us: percentile(us, 0.9), meanUs: us.reduce((a, b) => a + b, 0) / us.length };
}

/** One second per rate and policy, in turns. */
export async function runFig16b(o: Fig16bOptions): Promise<Fig16bRow[]> {
  const rows: Fig16bRow[] = [];
  await oneSecond('ephemera', 200, o); // warm-up, not reported
  for (const rate of o.rates) {
    for (const policy of ['ephemera', 'most-free'] as const) {
      o.progress?.(`fig16b: ${rate} requests/s: ${policy}`);
      rows.push(await oneSecond(policy, rate, o));
    }
  }
  return rows;
}

export function formatFig16b(rows: readonly Fig16bRow[], holdMs: number): string {
  const lines = [
    'Fig. 16b: scheduling decision time on two nodes, requests arriving evenly within one second',
    `nodes are in-memory models fed to the real scheduler code; placed tasks are released ${holdMs} ms later`,
    '',
    `${'req/s'.padStart(6)}  ${'ephemera p50/p90/mean µs'.padStart(26)}  ${'most-free p50/p90/mean µs'.padStart(27)}  placed (ours)`,
  ];
  for (const rate of [...new Set(rows.map((r) => r.rate))]) {
    const cell = (policy: SchedulerPolicy): string => {
      const r = rows.find((x) => x.rate === rate && x.policy === policy);
      return r === undefined ? '-' : `${r.p50Us.toFixed(2)} / ${r.p90Us.toFixed(2)} / ${r.meanUs.toFixed(2)}`;
    };
    const ours = rows.find((x) => x.rate === rate && x.policy === 'ephemera');
    lines.push(`${String(rate).padStart(6)}  ${cell('ephemera').padStart(26)}  ${cell('most-free').padStart(27)}  ${ours === undefined ? '-' : `${ours.placed}/${ours.samples}`}`);
  }
  lines.push('', `paper: about ${PAPER_FIG16B_US} µs (mean) at every rate`);
  return lines.join('\n');
}
