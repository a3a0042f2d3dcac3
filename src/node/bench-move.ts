/**
 * `ephemera bench move`: what one memory move costs on this node, from one run (issue 10's targets:
 * the decision alone at most 1 µs at p50; a whole move at most 1 ms at p50 for a donor that holds
 * no files).
 *
 * Two real function containers of one tenant (a donor with a large quota and a small profile, a
 * recipient whose profile exceeds its quota), the agent with a real Manager process, and the
 * recipient's invocations started and ended back to back while the donor runs: each start lends
 * (one move donor → recipient), each end returns it (one move back). Measured per event:
 *  - the decision alone: the manager core's `apply` on the same two-container pool, in process;
 *  - the decision through the Manager process (the unix-socket round trip the agent pays);
 *  - the move itself: the giver's daemon shrink and ack, its cgroup limit lowered, the receiver's
 *    raised, its daemon's grow acknowledged;
 *  - the whole: event in, decision, move, every limit in force.
 * Docker's recorded limit follows later, off this path, and is not in these figures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { ensureDockerEngine } from '../container/dockerd.js';
import { DockerEngine } from '../container/engine.js';
import { ensureFunctionImage } from '../container/image.js';
import { REPO_DIR } from '../container/repo.js';
import { EphemeraError } from '../core/errors.js';
import { createManager } from '../manager/core.js';
import type { ManagerEvent, Usage } from '../manager/types.js';
import { NodeAgent } from './agent.js';
import { managerDefaults, processManagers } from './managers.js';
import type { ManagerFactory } from './tenants.js';

const MiB = 1024 * 1024;

export interface MoveBenchOptions {
  /** Lend-and-return rounds timed (two moves each). @default 300 */
  readonly rounds: number;
  /** Events timed for the in-process decision. @default 200000 */
  readonly decisions: number;
  readonly progress: (line: string) => void;
}

export const MOVE_BENCH_DEFAULTS = { rounds: 300, decisions: 200_000 } as const;

export interface Percentiles {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export interface MoveBenchReport {
  /** Microseconds. */
  readonly decisionCore: Percentiles;
  readonly decisionProcess: Percentiles;
  readonly move: Percentiles;
  readonly whole: Percentiles;
  /** Between consecutive steps of the moves, by `from -> to` step kinds. */
  readonly steps: Readonly<Record<string, Percentiles>>;
  readonly cgroupVersion: 1 | 2;
  readonly table: string;
}

export function percentiles(samples: readonly number[]): Percentiles {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { n: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.at(-1) ?? Number.NaN };
}

const DONOR: Usage = { ownPeakBytes: 20 * MiB, filePeakBytes: 0 };
const RECIPIENT: Usage = { ownPeakBytes: 20 * MiB, filePeakBytes: 80 * MiB };

/** The manager core's decision time on the two-container pool, each apply timed on its own (µs). */
function timeCoreDecisions(events: number): number[] {
  const m = createManager({ ...managerDefaults('tenant'), tenant: 'bench' });
  m.apply({ kind: 'register', container: { id: 'd', tenant: 'bench', fn: 'cpu', initialQuota: 256 * MiB, profile: DONOR } }, 0);
  m.apply({ kind: 'register', container: { id: 'r', tenant: 'bench', fn: 'io', initialQuota: 64 * MiB, profile: RECIPIENT } }, 0);
  m.apply({ kind: 'invocation-start', id: 'd' }, 0);
  const start: ManagerEvent = { kind: 'invocation-start', id: 'r' };
  const end: ManagerEvent = { kind: 'invocation-end', id: 'r', used: RECIPIENT };
  const out: number[] = [];
  for (let i = 0; i < events; i++) {
    const t0 = process.hrtime.bigint();
    m.apply(i % 2 === 0 ? start : end, i);
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out;
}

/**
 * Wraps a factory so every event's round trip is timed (µs): `apply`, and the variants the agent
 * prefers when the port has them (`applyWithStanding`, `applyPair`), which would otherwise pass
 * through the spread untimed.
 */
function timedManagers(inner: ManagerFactory, samples: number[], spans: { start: number; end: number }[]): ManagerFactory {
  const timed = async <T>(call: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await call();
    const t1 = performance.now();
    samples.push((t1 - t0) * 1000);
    spans.push({ start: t0, end: t1 });
    return out;
  };
  return async (tenant) => {
    const port = await inner(tenant);
    return {
      ...port,
      apply: (event) => timed(() => port.apply(event)),
      ...(port.applyWithStanding === undefined ? {} : { applyWithStanding: (event: ManagerEvent, at?: number) => timed(() => port.applyWithStanding?.(event, at) ?? Promise.reject(new Error('unreachable'))) }),
      ...(port.applyPair === undefined ? {} : { applyPair: (first: ManagerEvent, firstAt: number, second: ManagerEvent) => timed(() => port.applyPair?.(first, firstAt, second) ?? Promise.reject(new Error('unreachable'))) }),
    };
  };
}

/**
 * @throws {EphemeraError} `EPH_DOCKER_API` when no Docker engine can run here,
 *   `EPH_BENCH_FAILED` when a round does not move exactly one loan each way
 */
export async function runMoveBench(opts: MoveBenchOptions): Promise<MoveBenchReport> {
  const why = ensureDockerEngine();
  if (why !== null) throw new EphemeraError('EPH_DOCKER_API', `bench move needs the Docker engine: ${why}`);
  const engine = new DockerEngine();
  const image = (await ensureFunctionImage(engine, { onProgress: opts.progress })).ref;
  opts.progress(`decision alone: ${opts.decisions} events on the manager core`);
  const decisionCore = percentiles(timeCoreDecisions(opts.decisions));

  const stateDir = await mkdtemp('/tmp/eph-bench-move-');
  const node = `benchmove${String(process.pid)}`;
  const ipc: number[] = [];
  const spans: { start: number; end: number }[] = [];
  const steps: { kind: string; at: number }[] = [];
  const agent = new NodeAgent({
    onStep: (_tenant, step) => steps.push({ kind: step.kind, at: performance.now() }),
    node,
    sharing: 'tenant',
    memoryBytes: 1024 * MiB,
    stateDir,
    parentCgroup: `/ephemera-${node}`,
    image,
    buildDir: join(REPO_DIR, 'build'),
    engine,
    managers: timedManagers(processManagers(managerDefaults('tenant'), join(stateDir, 'm')).factory, ipc, spans),
  });
  try {
    await agent.prepare();
    opts.progress('starting a donor and a recipient container');
    const donor = await agent.create({ tenant: 'bench', function: 'cpu', memoryBytes: 256 * MiB, profile: DONOR });
    const recipient = await agent.create({ tenant: 'bench', function: 'io', memoryBytes: 64 * MiB, profile: RECIPIENT });
    await agent.invocationStart(donor.id);
    const moves: number[] = [];
    const whole: number[] = [];
    const phases = new Map<string, number[]>();
    const warmup = Math.min(20, opts.rounds);
    for (let round = -warmup; round < opts.rounds; round++) {
      if (round % 50 === 0) opts.progress(`moves: round ${String(Math.max(0, round))}/${String(opts.rounds)}`);
      const ipcBefore = ipc.length;
      steps.length = 0;
      spans.length = 0;
      const t0 = performance.now();
      const lent = await agent.invocationStart(recipient.id);
      const t1 = performance.now();
      const lentSteps = steps.splice(0);
      const lentSpan = spans.splice(0);
      const back = await agent.invocationEnd(recipient.id, RECIPIENT);
      const t2 = performance.now();
      if (lent.moves.length !== 1 || back.moves.length !== 1 || lent.refused.length + back.refused.length > 0) {
        throw new EphemeraError('EPH_BENCH_FAILED', `round ${String(round)} moved ${JSON.stringify(lent)} and ${JSON.stringify(back)}; expected one loan out and one back`);
      }
      if (round < 0) {
        ipc.length = ipcBefore;
        continue;
      }
      whole.push((t1 - t0) * 1000, (t2 - t1) * 1000);
      collectStages(t0, t1, lentSpan, lentSteps, phases);
      collectStages(t1, t2, spans, steps, phases);
      for (const m of [...lent.moves, ...back.moves]) moves.push(m.durationUs);
    }
    await agent.invocationEnd(donor.id, DONOR);
    if (ipc.length < 2 * opts.rounds) {
      throw new EphemeraError('EPH_BENCH_FAILED', `timed ${String(ipc.length)} Manager round trips for ${String(2 * opts.rounds)} events: the agent reached the Manager through a call this bench does not time`);
    }
    const info = await agent.info();
    const report = {
      decisionCore,
      decisionProcess: percentiles(ipc.slice(-2 * opts.rounds)),
      move: percentiles(moves),
      whole: percentiles(whole),
      steps: Object.fromEntries([...phases].map(([k, v]) => [k, percentiles(v)])),
      cgroupVersion: info.cgroupVersion,
    };
    return { ...report, table: table(report) };
  } finally {
    await agent.close({ removeContainers: true });
    for (const c of await engine.list([`ephemera.node=${node}`]).catch(() => [])) await engine.remove(c.id).catch(() => undefined);
    await rm(stateDir, { recursive: true, force: true });
  }
}

/**
 * One event's path cut into stages (µs): the agent's own work before the Manager is asked, the
 * Manager's round trip, its reply to the giver's shrink acknowledged (the limits read, the
 * engine-record hold, the shrink request), then from one step of the move to the next, and from
 * the last step to the event's return.
 */
function collectStages(t0: number, t1: number, spans: readonly { start: number; end: number }[], steps: readonly { kind: string; at: number }[], into: Map<string, number[]>): void {
  const add = (key: string, us: number): void => {
    const list = into.get(key) ?? [];
    list.push(us);
    into.set(key, list);
  };
  const ask = spans[0];
  const first = steps[0];
  const last = steps.at(-1);
  if (ask === undefined || first === undefined || last === undefined) return;
  add('event in -> Manager asked (agent)', (ask.start - t0) * 1000);
  add('Manager reply -> shrink acked', (first.at - ask.end) * 1000);
  for (let i = 1; i < steps.length; i++) {
    const a = steps[i - 1];
    const b = steps[i];
    if (a === undefined || b === undefined) continue;
    add(`${a.kind} -> ${b.kind}`, (b.at - a.at) * 1000);
  }
  add('last step -> event answered (agent)', (t1 - last.at) * 1000);
}

function table(r: Omit<MoveBenchReport, 'table'>): string {
  const fmt = (v: number): string => (v < 10 ? v.toFixed(2) : v.toFixed(0)).padStart(9);
  const row = (what: string, p: Percentiles, target?: number): string =>
    `${what.padEnd(46)}${String(p.n).padStart(7)}${fmt(p.p50)}${fmt(p.p90)}${fmt(p.p99)}${fmt(p.max)}${target === undefined ? '' : `   ${target.toString().padStart(6)} µs  p50/target ${(p.p50 / target).toFixed(3)}`}`;
  return [
    `one memory move on this node (cgroup v${String(r.cgroupVersion)}), times in µs`,
    `${'what'.padEnd(46)}${'n'.padStart(7)}${'p50'.padStart(9)}${'p90'.padStart(9)}${'p99'.padStart(9)}${'max'.padStart(9)}   target`,
    row('decision alone (manager core, in process)', r.decisionCore, 1),
    row('decision through the Manager process', r.decisionProcess),
    row('move: daemon ack + both limits in force', r.move),
    row('whole: event -> decision -> limits in force', r.whole, 1000),
    'stages of one event (each from the end of the one before, as they completed):',
    ...Object.entries(r.steps).map(([k, p]) => row(`  ${k}`, p)),
  ].join('\n');
}
