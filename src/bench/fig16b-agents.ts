/**
 * Fig. 16b on two real node agents: two `ephemera node` processes (as `ephemera up --nodes 2`
 * starts them, each with its own state directory and socket) report their figures over their
 * sockets to the platform's own placement path, the {@link ScheduledSelector} (the Dispatcher and
 * Scheduler behind `ephemera up --scheduler`). Requests arrive evenly within one second; each is a
 * `select` as the invoker makes it, and its decision time runs from the call to the node it gets.
 * A placed task is released `holdMs` later, as the invoker does when a container goes, which makes
 * the selector ask that agent for fresh figures, as on the real path. No container is created:
 * at 1000 a second no machine starts containers, and the decision is what Fig. 16b times; the
 * agents' figures therefore stay those of empty nodes, and the reservations carry the load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import pino from 'pino';

import { EphemeraError } from '../core/errors.js';
import { ensureDockerEngine } from '../container/dockerd.js';
import type { ContainerSpec, InitValue, NodeAgent, NodeLoad, Placement, RunRequest, RunResult } from '../platform/agent.js';
import { connectNode } from '../platform/node-adapter.js';
import { startNodeProcess, type NodeProcess } from '../platform/node-procs.js';
import { ScheduledSelector } from '../platform/scheduled-selector.js';
import type { SchedulerPolicy } from '../scheduler/algorithm.js';
import { modelRequests, percentile } from '../scheduler/bench.js';

/** Each agent's N_lim: the largest of the model nodes (16 to 64 GiB). */
export const AGENT_NODE_MEMORY = 64 * 1024 * 1024 * 1024;
/** A rate is sustained when its requests all went out within this much of their second. */
const SUSTAIN_SLACK = 1.05;

export interface AgentRow {
  readonly rate: number;
  readonly policy: SchedulerPolicy;
  readonly requests: number;
  readonly placed: number;
  /** Placements whose node is one that a real agent process reports as its own name. */
  readonly onAgents: number;
  /** From the first request's due time to the last request's issue. */
  readonly issueMs: number;
  /** Requests issued per second of `issueMs` (plus one interval). */
  readonly achievedRate: number;
  /** How late requests went out against their due time, 90th percentile. */
  readonly lagP90Ms: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly meanUs: number;
  /** The agents' reports (GET /v1/node over their sockets) answered during the second. */
  readonly reports: number;
  readonly sustained: boolean;
}

export interface AgentArmOptions {
  readonly cli: readonly string[];
  readonly rates: readonly number[];
  readonly holdMs: number;
  readonly seed: number;
  readonly progress?: (line: string) => void;
}

/** A NodeAgent that counts the reports it serves. */
class CountedAgent implements NodeAgent {
  reports = 0;
  constructor(private readonly inner: NodeAgent) {}
  get name(): string {
    return this.inner.name;
  }
  create(spec: ContainerSpec): Promise<{ readonly id: string }> {
    return this.inner.create(spec);
  }
  init(id: string, value: InitValue): Promise<{ readonly statusCode: number; readonly body: unknown }> {
    return this.inner.init(id, value);
  }
  run(id: string, request: RunRequest): Promise<RunResult> {
    return this.inner.run(id, request);
  }
  remove(id: string): Promise<void> {
    return this.inner.remove(id);
  }
  async state(): Promise<NodeLoad> {
    const s = await this.inner.state();
    this.reports++;
    return s;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function oneSecond(agents: readonly CountedAgent[], policy: SchedulerPolicy, rate: number, o: AgentArmOptions): Promise<AgentRow> {
  const selector = new ScheduledSelector({ policy, nodes: agents, log: pino({ level: 'silent' }), refreshMs: 1000, queueCapacity: 256, maxWaitMs: 10_000 });
  try {
    await selector.refreshAll();
    const reportsBefore = agents.reduce((s, a) => s + a.reports, 0);
    // The node names as the agent processes themselves report them (GET /v1/node).
    const names = new Set((await Promise.all(agents.map((a) => a.state()))).map((l) => l.node));
    const requests = modelRequests(rate, o.seed + rate);
    const us: number[] = [];
    const lag: number[] = [];
    const decisions: Promise<void>[] = [];
    const holds: Promise<void>[] = [];
    let placed = 0;
    let onAgents = 0;
    const start = performance.now();
    let last = start;
    for (let i = 0; i < requests.length; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0.5) await sleep(wait);
      const q = requests[i];
      if (q === undefined) continue;
      last = performance.now();
      lag.push(Math.max(0, last - due));
      const placement: Placement = { id: `f16b-${String(rate)}-${String(i)}`, tenant: q.tenant, function: 'fig16b', memoryBytes: q.task.limit, taskMem: q.task.mem, pending: new Map() };
      const t0 = process.hrtime.bigint();
      decisions.push(selector.select(agents, placement).then((agent) => {
        us.push(Number(process.hrtime.bigint() - t0) / 1000);
        placed++;
        if (names.has(agent.name)) onAgents++;
        holds.push(sleep(o.holdMs).then(() => { selector.released(placement.id, agent); }));
      }, () => undefined));
    }
    const issueMs = last - start;
    // Bounded: the selector rejects a placement that waits past its maxWaitMs.
    await Promise.all(decisions);
    await Promise.all(holds);
    await selector.refreshAll();
    const reports = agents.reduce((s, a) => s + a.reports, 0) - reportsBefore;
    us.sort((a, b) => a - b);
    lag.sort((a, b) => a - b);
    const achievedRate = (requests.length * 1000) / (issueMs + 1000 / rate);
    return {
      rate, policy, requests: requests.length, placed, onAgents, issueMs, achievedRate,
      lagP90Ms: percentile(lag, 0.9), p50Us: percentile(us, 0.5), p90Us: percentile(us, 0.9),
      meanUs: us.reduce((a, b) => a + b, 0) / Math.max(1, us.length), reports,
      sustained: placed === requests.length && issueMs <= 1000 * SUSTAIN_SLACK,
    };
  } finally {
    selector.close();
  }
}

/**
 * Starts two node agents under a temporary directory, runs one second per rate and policy (after
 * an unreported warm-up second), and stops the agents, also on failure.
 */
export async function runFig16bAgents(o: AgentArmOptions): Promise<AgentRow[]> {
  const docker = ensureDockerEngine();
  if (docker !== null) throw new EphemeraError('EPH_BENCH_FAILED', `bench fig16b's real-agent arm needs Docker (the node agent does): ${docker}`);
  const dir = mkdtempSync('/tmp/f16b-');
  const procs: NodeProcess[] = [];
  try {
    for (let i = 1; i <= 2; i++) {
      const name = `f16b-${String(process.pid)}-node-${String(i)}`;
      o.progress?.(`fig16b: starting node agent ${name}`);
      procs.push(await startNodeProcess(o.cli, { name, stateDir: join(dir, name), memoryBytes: AGENT_NODE_MEMORY }, connectNode));
    }
    const agents = procs.map((p) => new CountedAgent(p.agent));
    const rows: AgentRow[] = [];
    await oneSecond(agents, 'ephemera', 200, o); // warm-up, not reported
    for (const rate of o.rates) {
      for (const policy of ['ephemera', 'most-free'] as const) {
        o.progress?.(`fig16b: ${String(rate)} requests/s on two real agents: ${policy}`);
        rows.push(await oneSecond(agents, policy, rate, o));
      }
    }
    return rows;
  } finally {
    await Promise.all(procs.map((p) => p.stop(30_000)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The highest rate both policies sustained, and the first rate either did not. */
export function saturation(rows: readonly AgentRow[]): { sustained: number | undefined; saturatedAt: number | undefined } {
  const rates = [...new Set(rows.map((r) => r.rate))].sort((a, b) => a - b);
  let sustained: number | undefined;
  for (const rate of rates) {
    if (rows.filter((r) => r.rate === rate).every((r) => r.sustained)) sustained = rate;
    else return { sustained, saturatedAt: rate };
  }
  return { sustained, saturatedAt: undefined };
}

export function formatFig16bAgents(rows: readonly AgentRow[], holdMs: number): string {
  const lines = [
    'Fig. 16b on two real node agents (`ephemera node` processes, their reports over their sockets) through the platform\'s placement path',
    `(ScheduledSelector.select, as the invoker calls it); no container is created; placed tasks are released ${String(holdMs)} ms later`,
    '',
    `${'req/s'.padStart(6)}  ${'policy'.padEnd(9)}  ${'p50/p90/mean µs'.padStart(24)}  ${'placed'.padStart(11)}  ${'on agents'.padStart(9)}  ${'achieved/s'.padStart(10)}  ${'lag p90 ms'.padStart(10)}  ${'reports'.padStart(7)}  sustained`,
  ];
  for (const r of rows) {
    lines.push(`${String(r.rate).padStart(6)}  ${r.policy.padEnd(9)}  ${`${r.p50Us.toFixed(1)} / ${r.p90Us.toFixed(1)} / ${r.meanUs.toFixed(1)}`.padStart(24)}  ${`${String(r.placed)}/${String(r.requests)}`.padStart(11)}  ${String(r.onAgents).padStart(9)}  ${r.achievedRate.toFixed(0).padStart(10)}  ${r.lagP90Ms.toFixed(2).padStart(10)}  ${String(r.reports).padStart(7)}  ${r.sustained ? 'yes' : 'no'}`);
  }
  const s = saturation(rows);
  lines.push('', `highest rate sustained by both policies: ${s.sustained === undefined ? 'none' : `${String(s.sustained)}/s`}; ${s.saturatedAt === undefined ? 'no rate tried saturated' : `saturates at ${String(s.saturatedAt)}/s`}`);
  return lines.join('\n');
}
