/**
 * The scheduler's state and decisions (pure: no clock, no I/O; the caller passes `now`).
 *
 * It holds what the node agents last reported, plus the reservations it made since (the paper's
 * `allocate(task)`), so that a burst of decisions between two reports does not pile onto one stale
 * node. A decision is O(log n) in the number of nodes: the `ephemera` policy keeps, per tenant, a
 * {@link FitIndex} of every node keyed by that tenant's gap `N_alloc − N_req`, with the node-wide
 * free memory as the augmented value; `most-free` keeps one index keyed by free memory.
 *
 * Reservations and reports (docs/ARCHITECTURE.md, "Reservations"):
 * - `schedule` reserves on the chosen node at once (`pending`: added on top of the report);
 * - a report replaces the node's figures; a pending reservation the agent lists in `running` is now
 *   in its figures (`counted`: no longer added); one it does not list stays added, for at most
 *   `reservationTtlMs` (then it is dropped: the task never reached the node);
 * - `release` at completion takes a pending reservation off; for a counted one it subtracts until a
 *   report no longer lists it (or the TTL passes), since the last report still counts it.
 */
import { EphemeraError } from '../core/errors.js';
import { freeOf, gapOf, type Figures, type NodeView, type SchedulerPolicy, type TaskProfile } from './algorithm.js';
import type { NodeFigures, NodeStateSource } from './extender.js';
import { FitIndex } from './fit-index.js';

/** What a node agent reports, node-wide and per tenant (whole bytes). */
export interface NodeReport {
  readonly node: string;
  /** Increases with every report of this agent; an older or repeated one is ignored. */
  readonly seq: number;
  /** `N_lim`: memory the node offers to tasks. */
  readonly lim: number;
  /** Node-wide `N_alloc` and `N_req`. */
  readonly alloc: number;
  readonly req: number;
  /** Per tenant `N_alloc` and `N_req`; a tenant not listed has nothing on the node. */
  readonly tenants: Readonly<Record<string, Figures>>;
  /** The ids of the placements (activation ids) the agent already counts in these figures. */
  readonly running: readonly string[];
}

export interface ScheduleRequest {
  /** Unique per placement: the activation id, which the agent later lists in `running`. */
  readonly id: string;
  readonly tenant: string;
  readonly task: TaskProfile;
}

export interface Placement {
  readonly id: string;
  readonly node: string;
}

export interface SchedulerOptions {
  readonly policy: SchedulerPolicy;
  /** How long a reservation the agent has not yet counted (or a release it has not yet seen) lives. */
  readonly reservationTtlMs?: number;
}

export const DEFAULT_RESERVATION_TTL_MS = 30_000;

export interface ReportOutcome {
  readonly status: 'applied' | 'stale';
  /** Reservations dropped because they outlived the TTL without the agent counting them. */
  readonly expired: readonly string[];
}

interface MutableFigures {
  alloc: number;
  req: number;
}

interface NodeState {
  readonly name: string;
  readonly ordinal: number;
  seq: number;
  lim: number;
  /** Effective node-wide figures: the report plus the live reservations. */
  readonly node: MutableFigures;
  readonly tenants: Map<string, MutableFigures>;
  readonly reservations: Map<string, Reservation>;
}

type ReservationState = 'pending' | 'counted' | 'releasing';

interface Reservation {
  readonly id: string;
  readonly node: NodeState;
  readonly tenant: string;
  readonly task: TaskProfile;
  readonly created: number;
  state: ReservationState;
  releasedAt: number;
  gone: boolean;
}

/** How a reservation in this state adds to the reported figures. */
const SIGN: Readonly<Record<ReservationState, number>> = { pending: 1, counted: 0, releasing: -1 };

function badInput(message: string, detail: Record<string, unknown> = {}): EphemeraError {
  return new EphemeraError('EPH_SCHED_BAD_INPUT', message, { detail });
}

function checkBytes(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badInput(`${what} must be a whole number of bytes ≥ 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks a task profile: whole bytes, a limit above zero. */
export function checkTask(task: TaskProfile, what = 'task'): TaskProfile {
  checkBytes(task.limit, `${what}.limit (T_lim)`);
  checkBytes(task.mem, `${what}.mem (T_mem)`);
  if (task.limit === 0) throw badInput(`${what}.limit (T_lim) must be above 0 bytes, got 0; give the action's memory limit`);
  return task;
}

/** A queue of items in the order they were added, consumed from the front (amortised O(1)). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  push(item: T): void {
    this.items.push(item);
  }
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }
  shift(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

export class Scheduler implements NodeStateSource {
  readonly policy: SchedulerPolicy;
  readonly reservationTtlMs: number;
  private readonly nodes = new Map<string, NodeState>();
  private readonly byOrdinal = new Map<number, NodeState>();
  private nextOrdinal = 0;
  private readonly tenantIndex = new Map<string, FitIndex>();
  private readonly freeIndex = new FitIndex();
  private readonly reservations = new Map<string, Reservation>();
  private readonly pendingByAge = new Fifo<Reservation>();
  private readonly releasingByAge = new Fifo<Reservation>();
  private readonly limCounts = new Map<number, number>();

  constructor(options: SchedulerOptions) {
    this.policy = options.policy;
    this.reservationTtlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    if (!Number.isFinite(this.reservationTtlMs) || this.reservationTtlMs <= 0) {
      throw badInput(`reservationTtlMs must be a positive number of milliseconds, got ${this.reservationTtlMs}`);
    }
  }

  get nodeCount(): number {
    return this.nodes.size;
  }

  /** Reservations not yet released or forgotten (all states). */
  get reservationCount(): number {
    return this.reservations.size;
  }

  /** The last report plus the live reservations (what the extender reads). */
  figures(node: string): NodeFigures | undefined {
    const n = this.nodes.get(node);
    return n === undefined ? undefined : { lim: n.lim, node: n.node, tenants: n.tenants };
  }

  /** The nodes as a decision for `tenant` sees them, in ordinal order (O(n): for tests and the linear scan). */
  snapshot(tenant: string): NodeView[] {
    const out: NodeView[] = [];
    for (const n of this.nodes.values()) {
      const t = n.tenants.get(tenant);
      out.push({ name: n.name, ordinal: n.ordinal, lim: n.lim, node: { ...n.node }, tenant: t === undefined ? { alloc: 0, req: 0 } : { ...t } });
    }
    return out;
  }

  /** Whether some node is large enough for the task when empty (false: waiting would not help). */
  canEverFit(task: TaskProfile): boolean {
    for (const lim of this.limCounts.keys()) if (lim >= task.limit) return true;
    return false;
  }

  /**
   * Applies an agent's report (registering the node on its first one). Returns `stale` for a report
   * whose `seq` is not above the last one applied.
   */
  report(r: NodeReport, now: number): ReportOutcome {
    if (typeof r.node !== 'string' || r.node === '') throw badInput(`report.node must be a non-empty node name, got ${JSON.stringify(r.node)}`);
    if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq)) throw badInput(`report.seq for node ${r.node} must be an integer, got ${JSON.stringify(r.seq)}`);
    checkBytes(r.lim, `report.lim (N_lim) for node ${r.node}`);
    checkBytes(r.alloc, `report.alloc (N_alloc) for node ${r.node}`);
    checkBytes(r.req, `report.req (N_req) for node ${r.node}`);
    if (!Array.isArray(r.running)) throw badInput(`report.running for node ${r.node} must be a list of placement ids`);
    const tenantsValue: unknown = r.tenants;
    if (typeof tenantsValue !== 'object' || tenantsValue === null || Array.isArray(tenantsValue)) {
      throw badInput(`report.tenants for node ${r.node} must be an object of tenant figures, got ${JSON.stringify(tenantsValue)}`);
    }
    const tenantEntries = Object.entries(r.tenants);
    for (const [t, f] of tenantEntries) {
      const fv: unknown = f;
      if (typeof fv !== 'object' || fv === null) throw badInput(`report.tenants[${JSON.stringify(t)}] for node ${r.node} must be {alloc, req}, got ${JSON.stringify(fv)}`);
      checkBytes(f.alloc, `report.tenants[${JSON.stringify(t)}].alloc for node ${r.node}`);
      checkBytes(f.req, `report.tenants[${JSON.stringify(t)}].req for node ${r.node}`);
    }
    const expired = this.expire(now);
    let n = this.nodes.get(r.node);
    if (n !== undefined && r.seq <= n.seq) return { status: 'stale', expired };
    if (n === undefined) n = this.register(r.node, r.lim);

    const running = new Set(r.running);
    const oldFree = freeOf(n.lim, n.node);
    const oldGaps = new Map<string, number>();
    for (const t of this.tenantIndex.keys()) oldGaps.set(t, gapOf(n.tenants.get(t) ?? { alloc: 0, req: 0 }));

    this.setLim(n, r.lim);
    n.seq = r.seq;
    n.node.alloc = r.alloc;
    n.node.req = r.req;
    n.tenants.clear();
    for (const [t, f] of tenantEntries) if (f.alloc !== 0 || f.req !== 0) n.tenants.set(t, { alloc: f.alloc, req: f.req });

    for (const res of [...n.reservations.values()]) {
      const listed = running.has(res.id);
      if (res.state === 'pending') {
        if (listed) res.state = 'counted';
        else if (now - res.created > this.reservationTtlMs) {
          this.forget(res);
          expired.push(res.id);
        }
      } else if (!listed || (res.state === 'releasing' && now - res.releasedAt > this.reservationTtlMs)) {
        this.forget(res);
      }
      if (!res.gone) this.add(n, res.tenant, res.task, SIGN[res.state]);
    }
    this.reindex(n, oldFree, oldGaps);
    return { status: 'applied', expired };
  }

  /** Forgets a node (its agent is gone); returns the ids of the reservations that were on it. */
  removeNode(name: string): string[] {
    const n = this.nodes.get(name);
    if (n === undefined) return [];
    const ids = [...n.reservations.keys()];
    for (const res of [...n.reservations.values()]) this.forget(res);
    const free = freeOf(n.lim, n.node);
    for (const [t, index] of this.tenantIndex) index.remove(gapOf(n.tenants.get(t) ?? { alloc: 0, req: 0 }), n.ordinal);
    this.freeIndex.remove(-free, n.ordinal);
    this.setLim(n, 0);
    this.nodes.delete(name);
    this.byOrdinal.delete(n.ordinal);
    return ids;
  }

  /** Chooses a node for the request and reserves the task on it, or returns null when no node fits now. */
  schedule(req: ScheduleRequest, now: number): Placement | null {
    if (typeof req.id !== 'string' || req.id === '') throw badInput(`placement id must be a non-empty string, got ${JSON.stringify(req.id)}`);
    if (this.reservations.has(req.id)) throw badInput(`placement id ${JSON.stringify(req.id)} is already reserved; give every placement its own id (the activation id)`);
    checkTask(req.task);
    this.expire(now);
    const n = this.decide(req.tenant, req.task);
    if (n === undefined) return null;
    const res: Reservation = { id: req.id, node: n, tenant: req.tenant, task: req.task, created: now, state: 'pending', releasedAt: 0, gone: false };
    this.reservations.set(res.id, res);
    n.reservations.set(res.id, res);
    this.pendingByAge.push(res);
    this.change(n, res.tenant, res.task, 1);
    return { id: res.id, node: n.name };
  }

  /** The node a decision would choose, without reserving (undefined: none fits). */
  peek(tenant: string, task: TaskProfile): string | undefined {
    return this.decide(tenant, checkTask(task))?.name;
  }

  /** The task finished (or failed to start): returns false when the id is unknown (already forgotten). */
  release(id: string, now: number): boolean {
    const res = this.reservations.get(id);
    if (res === undefined) return false;
    if (res.state === 'pending') {
      this.change(res.node, res.tenant, res.task, -1);
      this.forget(res);
    } else if (res.state === 'counted') {
      res.state = 'releasing';
      res.releasedAt = now;
      this.releasingByAge.push(res);
      this.change(res.node, res.tenant, res.task, -1);
    }
    return true;
  }

  /** Drops reservations and releases older than the TTL; returns the ids of expired pending ones. */
  expire(now: number): string[] {
    const expired: string[] = [];
    for (let res = this.pendingByAge.peek(); res !== undefined; res = this.pendingByAge.peek()) {
      if (res.gone || res.state !== 'pending') this.pendingByAge.shift();
      else if (now - res.created > this.reservationTtlMs) {
        this.pendingByAge.shift();
        this.change(res.node, res.tenant, res.task, -1);
        this.forget(res);
        expired.push(res.id);
      } else break;
    }
    for (let res = this.releasingByAge.peek(); res !== undefined; res = this.releasingByAge.peek()) {
      if (res.gone || res.state !== 'releasing') this.releasingByAge.shift();
      else if (now - res.releasedAt > this.reservationTtlMs) {
        this.releasingByAge.shift();
        this.change(res.node, res.tenant, res.task, 1);
        this.forget(res);
      } else break;
    }
    return expired;
  }

  private decide(tenant: string, task: TaskProfile): NodeState | undefined {
    if (this.policy === 'most-free') {
      const e = this.freeIndex.firstFitFrom(-Infinity, -Infinity, task.limit);
      return e === undefined ? undefined : this.byOrdinal.get(e.ordinal);
    }
    const index = this.indexFor(tenant);
    // score = −|gap − c| with c = T_mem − T_lim: the fitting node whose gap is nearest c.
    const c = task.mem - task.limit;
    const hi = index.firstFitFrom(c, -Infinity, task.limit);
    const loMax = index.lastFitUpTo(c, Infinity, task.limit);
    // Among equal gaps, the lowest ordinal: the first fitting entry at that gap.
    const lo = loMax === undefined ? undefined : index.firstFitFrom(loMax.key, -Infinity, task.limit);
    let best = hi;
    if (lo !== undefined) {
      if (best === undefined) best = lo;
      else {
        const dLo = c - lo.key;
        const dHi = best.key - c;
        if (dLo < dHi || (dLo === dHi && lo.ordinal < best.ordinal)) best = lo;
      }
    }
    return best === undefined ? undefined : this.byOrdinal.get(best.ordinal);
  }

  private indexFor(tenant: string): FitIndex {
    let index = this.tenantIndex.get(tenant);
    if (index === undefined) {
      index = new FitIndex();
      for (const n of this.nodes.values()) index.insert(gapOf(n.tenants.get(tenant) ?? { alloc: 0, req: 0 }), n.ordinal, freeOf(n.lim, n.node));
      this.tenantIndex.set(tenant, index);
    }
    return index;
  }

  private register(name: string, lim: number): NodeState {
    const n: NodeState = { name, ordinal: this.nextOrdinal++, seq: -Infinity, lim: 0, node: { alloc: 0, req: 0 }, tenants: new Map(), reservations: new Map() };
    this.nodes.set(name, n);
    this.byOrdinal.set(n.ordinal, n);
    this.setLim(n, lim);
    const free = freeOf(n.lim, n.node);
    if (this.policy === 'ephemera') for (const index of this.tenantIndex.values()) index.insert(0, n.ordinal, free);
    else this.freeIndex.insert(-free, n.ordinal, free);
    return n;
  }

  private setLim(n: NodeState, lim: number): void {
    if (n.lim === lim) return;
    const old = this.limCounts.get(n.lim);
    if (old !== undefined) {
      if (old <= 1) this.limCounts.delete(n.lim);
      else this.limCounts.set(n.lim, old - 1);
    }
    if (lim > 0) this.limCounts.set(lim, (this.limCounts.get(lim) ?? 0) + 1);
    n.lim = lim;
  }

  private forget(res: Reservation): void {
    res.gone = true;
    this.reservations.delete(res.id);
    res.node.reservations.delete(res.id);
  }

  /** Adds `sign` times the task to the node's and the tenant's effective figures (no reindexing). */
  private add(n: NodeState, tenant: string, task: TaskProfile, sign: number): void {
    if (sign === 0) return;
    n.node.alloc += sign * task.limit;
    n.node.req += sign * task.mem;
    let t = n.tenants.get(tenant);
    if (t === undefined) {
      t = { alloc: 0, req: 0 };
      n.tenants.set(tenant, t);
    }
    t.alloc += sign * task.limit;
    t.req += sign * task.mem;
    if (t.alloc === 0 && t.req === 0) n.tenants.delete(tenant);
  }

  /** {@link add} and keep the indices right. */
  private change(n: NodeState, tenant: string, task: TaskProfile, sign: number): void {
    const oldFree = freeOf(n.lim, n.node);
    const before = n.tenants.get(tenant);
    const oldGap = before === undefined ? 0 : gapOf(before);
    this.add(n, tenant, task, sign);
    this.reindex(n, oldFree, tenant, oldGap);
  }

  /**
   * Moves the node in every index after its free memory or some tenants' gaps changed: `oldGaps`
   * maps a tenant to its gap before, or `oldGaps` is one tenant's name and `oneOldGap` its gap.
   */
  private reindex(n: NodeState, oldFree: number, oldGaps: ReadonlyMap<string, number> | string, oneOldGap = 0): void {
    const free = freeOf(n.lim, n.node);
    if (this.policy === 'most-free') {
      if (free !== oldFree) {
        this.freeIndex.remove(-oldFree, n.ordinal);
        this.freeIndex.insert(-free, n.ordinal, free);
      }
      return;
    }
    for (const [t, index] of this.tenantIndex) {
      const tf = n.tenants.get(t);
      const gap = tf === undefined ? 0 : gapOf(tf);
      const oldGap = typeof oldGaps === 'string' ? (t === oldGaps ? oneOldGap : gap) : (oldGaps.get(t) ?? gap);
      if (oldGap !== gap) {
        index.remove(oldGap, n.ordinal);
        index.insert(gap, n.ordinal, free);
      } else if (free !== oldFree) index.setFree(gap, n.ordinal, free);
    }
  }
}
