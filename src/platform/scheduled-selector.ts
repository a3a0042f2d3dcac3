/**
 * The platform's placement through the scheduler (src/scheduler): a {@link NodeSelector} that keeps
 * a {@link Dispatcher} (Algorithm 1 or most-free, plus the bounded wait queue) fed with the node
 * agents' reports, and reserves at decision time.
 *
 * - Reports: each agent's `GET /v1/node` (through `NodeAgent.state`), every `refreshMs` and after
 *   each container creation or removal. A report's `running` list is the placements whose
 *   container this selector saw created on that node *before* the report was asked for: those the
 *   agent's figures already count, so their reservations stop being added on top (the scheduler's
 *   reconciliation, docs/ARCHITECTURE.md "Reservations").
 * - A reservation lives as long as its container: the invoker calls `released` when the container
 *   is removed (or its creation failed), not when one invocation ends, since a warm container keeps
 *   its limit on the node.
 * - No node fits: the placement waits in the queue (the invoker is asked to `reclaim` idle warm
 *   containers), and is placed by a later release or report; a full queue, a task larger than any
 *   node, or a wait past `maxWaitMs` reject with the scheduler's `EPH_SCHED_*` error (503).
 */
import type { Logger } from 'pino';

import { EphemeraError } from '../core/errors.js';
import type { SchedulerPolicy, TaskProfile } from '../scheduler/algorithm.js';
import { Dispatcher } from '../scheduler/dispatcher.js';
import { Scheduler, type Placement as Decision, type ScheduleRequest } from '../scheduler/scheduler.js';
import { waitTimeoutError, type DrainResult } from '../scheduler/wait-queue.js';
import type { NodeAgent, NodeLoad, NodeSelector, Placement } from './agent.js';

export interface ScheduledSelectorOptions {
  readonly policy: SchedulerPolicy;
  readonly nodes: readonly NodeAgent[];
  readonly log: Logger;
  /** How often every agent is asked for its figures. @default 1000 */
  readonly refreshMs?: number;
  /** How many placements may wait for room. @default 256 */
  readonly queueCapacity?: number;
  /** How long a placement may wait for room. @default 60000 */
  readonly maxWaitMs?: number;
  readonly now?: () => number;
}

interface Waiter {
  readonly resolve: (agent: NodeAgent) => void;
  readonly reject: (err: Error) => void;
}

/** `T_lim` and `T_mem` of a placement: the estimate, else the profile's peaks, else the limit. */
export function taskOfPlacement(p: Pick<Placement, 'memoryBytes' | 'profile' | 'taskMem'>): TaskProfile {
  return { limit: p.memoryBytes, mem: p.taskMem ?? (p.profile === undefined ? p.memoryBytes : p.profile.ownPeakBytes + p.profile.filePeakBytes) };
}

export class ScheduledSelector implements NodeSelector {
  readonly name: string;
  readonly reserves = true;
  readonly maxWaitMs: number;
  readonly dispatcher: Dispatcher;
  private readonly agents = new Map<string, NodeAgent>();
  /** Placement ids whose container exists, by node name. */
  private readonly live = new Map<string, Set<string>>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly now: () => number;
  private readonly refreshMs: number;
  private readonly timer: NodeJS.Timeout;
  private readonly firstReports: Promise<void>;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: ScheduledSelectorOptions) {
    this.name = opts.policy;
    this.now = opts.now ?? Date.now;
    this.refreshMs = opts.refreshMs ?? 1000;
    this.maxWaitMs = opts.maxWaitMs ?? 60_000;
    this.dispatcher = new Dispatcher(new Scheduler({ policy: opts.policy }), { capacity: opts.queueCapacity ?? 256, maxWaitMs: this.maxWaitMs });
    for (const a of opts.nodes) {
      this.agents.set(a.name, a);
      this.live.set(a.name, new Set());
    }
    this.firstReports = this.firstRefresh();
    this.timer = setInterval(() => {
      void this.refreshAll().then(() => { this.settle(this.dispatcher.tick(this.now())); });
    }, this.refreshMs);
    this.timer.unref();
  }

  /** The node state the extender reads (the last reports plus the live reservations). */
  get scheduler(): Scheduler {
    return this.dispatcher.scheduler;
  }

  /** Asks every agent for its figures now (bounded: an agent that does not answer is skipped). */
  async refreshAll(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => this.refresh(a)));
  }

  /**
   * The first reports, asked in parallel and applied in the agents' order: the scheduler numbers
   * nodes in the order it first hears of them, and ties go to the lower number.
   */
  private async firstRefresh(): Promise<void> {
    const asked = [...this.agents.values()].map((a) => ({ a, seq: ++this.seq, got: this.ask(a) }));
    for (const { a, seq, got } of asked) this.apply(a, seq, [], await got);
  }

  private async refresh(agent: NodeAgent): Promise<void> {
    const seq = ++this.seq;
    const running = [...(this.live.get(agent.name) ?? [])];
    this.apply(agent, seq, running, await this.ask(agent));
  }

  /** The agent's figures, or undefined (logged) when it fails or does not answer in time. */
  private async ask(agent: NodeAgent): Promise<NodeLoad | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const bound = Math.max(5 * this.refreshMs, 5000);
    try {
      return await Promise.race([
        agent.state(),
        new Promise<never>((_r, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${bound} ms`)); }, bound); }),
      ]);
    } catch (err) {
      this.opts.log.warn({ node: agent.name, err: err instanceof Error ? err.message : String(err) }, 'node agent report failed; the scheduler keeps its last figures');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private apply(agent: NodeAgent, seq: number, running: readonly string[], load: NodeLoad | undefined): void {
    if (load === undefined) return;
    const tenants: Record<string, { alloc: number; req: number }> = {};
    for (const [t, f] of Object.entries(load.tenants ?? {})) tenants[t] = { alloc: f.allocated, req: f.requested };
    try {
      this.settle(this.dispatcher.report({ node: agent.name, seq, lim: load.memory.limit, alloc: load.memory.allocated, req: load.memory.requested, tenants, running }, this.now()));
    } catch (err) {
      this.opts.log.error({ node: agent.name, err: err instanceof Error ? err.message : String(err) }, 'node agent report refused by the scheduler');
    }
  }

  async select(_nodes: readonly NodeAgent[], placement: Placement): Promise<NodeAgent> {
    await this.firstReports;
    if (this.closed) throw new Error('the platform is shutting down');
    const req: ScheduleRequest = { id: placement.id, tenant: placement.tenant, task: taskOfPlacement(placement) };
    const got = this.dispatcher.submit(req, this.now());
    if (got.status === 'placed') return this.agentOf(got.placement);
    this.opts.log.info({ placement: placement.id, tenant: placement.tenant, task: req.task, position: got.position }, 'no node has room; the placement waits');
    const waited = new Promise<NodeAgent>((resolve, reject) => { this.waiters.set(placement.id, { resolve, reject }); });
    placement.reclaim?.();
    return waited;
  }

  created(id: string, node: NodeAgent): void {
    this.live.get(node.name)?.add(id);
    void this.refresh(node);
  }

  released(id: string, node: NodeAgent): void {
    this.live.get(node.name)?.delete(id);
    this.settle(this.dispatcher.release(id, this.now()));
    void this.refresh(node);
  }

  waiting(): number {
    return this.waiters.size;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const [id, w] of this.waiters) {
      this.waiters.delete(id);
      w.reject(new Error('the platform is shutting down'));
    }
  }

  private agentOf(p: Decision): NodeAgent {
    const agent = this.agents.get(p.node);
    if (agent === undefined) throw new EphemeraError('EPH_SCHED_BAD_INPUT', `the scheduler chose node ${JSON.stringify(p.node)}, which no agent serves`);
    return agent;
  }

  /** Answers the placements a drain placed or timed out. */
  private settle(r: DrainResult<ScheduleRequest, Decision>): void {
    for (const { item, placement, waitedMs } of r.placed) {
      const w = this.waiters.get(item.id);
      this.waiters.delete(item.id);
      if (w === undefined) {
        this.dispatcher.scheduler.release(item.id, this.now());
        continue;
      }
      this.opts.log.info({ placement: item.id, node: placement.node, waitedMs }, 'waiting placement placed');
      w.resolve(this.agentOf(placement));
    }
    for (const item of r.expired) {
      const w = this.waiters.get(item.id);
      this.waiters.delete(item.id);
      w?.reject(waitTimeoutError(this.maxWaitMs));
    }
  }
}
