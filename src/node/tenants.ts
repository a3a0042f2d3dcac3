/**
 * The agent's side of the Tenant Managers: one Manager per tenant on the node, each behind a
 * {@link TenantManagerPort} (its own OS process in production), fed the tenant's events one at a
 * time, with every move it answers carried out by the agent in the safe order.
 *
 * A tenant's events and moves are serialized: a move never interleaves with another of the same
 * tenant, so a Manager's model and the cgroup limits advance together. Different tenants proceed
 * independently; they never share a container.
 *
 * A move the agent cannot or will not carry out (another tenant's container, an unknown one, a
 * step that failed) leaves every limit as it was; the Manager is told with `move-failed` events,
 * as its contract asks: the failed move and every move of the batch after it, last first.
 */
import { isEphemeraError, type EphemeraError } from '../core/errors.js';
import type { ContainerStanding, LiveContainer, ManagerEvent, ManagerSnapshot, Move } from '../manager/types.js';
import { carryOut, type MoveContext, type MoveOutcome } from './moves.js';

/** What the agent needs of a tenant's Manager (the manager's process client satisfies it). */
export interface TenantManagerPort {
  apply(event: ManagerEvent): Promise<readonly Move[]>;
  /**
   * The same as {@link apply}, also answering the standing of the event's container after the
   * event (one round trip instead of an event and a snapshot). It must decide exactly as `apply`
   * (a port that changes `apply`'s answers must change or drop this one too). Optional: without it
   * the agent asks for a snapshot.
   */
  applyWithStanding?(event: ManagerEvent, at?: number): Promise<Applied>;
  /**
   * Two events in one round trip (an invocation's start and its end): the Manager applies the second
   * only if the first decided no move; otherwise `second` is absent and the caller carries out the
   * first's moves and sends the second alone. Optional: without it, the events go one by one.
   */
  applyPair?(first: ManagerEvent, firstAt: number, second: ManagerEvent): Promise<{ readonly first: Applied; readonly second?: Applied }>;
  recover(live: readonly LiveContainer[]): Promise<readonly Move[]>;
  snapshot(): Promise<ManagerSnapshot>;
  close(): Promise<void>;
}

/** A Manager's answer to one event. */
export interface Applied {
  readonly moves: readonly Move[];
  readonly standing: ContainerStanding | undefined;
  /** The tenant is quiet after the event (no container needs memory, no failed move to repair); absent: unknown. */
  readonly quiet?: boolean;
}

/** Starts the Manager of one tenant. */
export type ManagerFactory = (tenant: string) => Promise<TenantManagerPort>;

export interface RefusedMove {
  readonly move: Move;
  readonly code: string;
  readonly message: string;
}

export interface BatchResult {
  readonly done: MoveOutcome[];
  readonly refused: RefusedMove[];
  /**
   * The event's container's standing after it, when the Manager answered one and the batch was
   * empty (no move done or refused, no recovery): then it is what a snapshot taken next would show.
   */
  readonly standing?: ContainerStanding;
}

/** What a replacement Manager is rebuilt from. */
export interface RecoveryView {
  readonly live: readonly LiveContainer[];
  /** Containers running an invocation now. */
  readonly running: readonly string[];
}

interface Tenant {
  manager: Promise<TenantManagerPort>;
  queue: Promise<unknown>;
  /** Events and snapshots queued or running. */
  pending: number;
  /** The Manager's last answer said the tenant was quiet, and nothing has been sent since. */
  quiet: boolean;
  /** An invocation-start held back until the next request to the Manager (see {@link TenantHost.deferStart}). */
  deferred: Deferred | undefined;
}

interface Deferred {
  readonly event: Extract<ManagerEvent, { kind: 'invocation-start' }>;
  readonly at: number;
  readonly resolve: (r: BatchResult) => void;
  readonly reject: (e: unknown) => void;
}

/** Errors that mean the Manager process is gone or stuck, not that it refused the event. */
const LOST: ReadonlySet<string> = new Set(['EPH_MANAGER_UNAVAILABLE', 'EPH_MANAGER_TIMEOUT', 'EPH_MANAGER_PROTOCOL']);

/** How many rounds of `move-failed` answers are followed before the agent stops. */
const MAX_ROUNDS = 4;

export class TenantHost {
  readonly #factory: ManagerFactory;
  readonly #moves: (tenant: string) => MoveContext;
  readonly #tenants = new Map<string, Tenant>();
  readonly #log: (msg: string) => void;

  readonly #live: (tenant: string) => Promise<RecoveryView>;
  readonly #onMove: (tenant: string, outcome: MoveOutcome) => void;

  /**
   * @param live the tenant's containers with their limits in force, and those running an
   *   invocation now, for a Manager that must be rebuilt after its process was lost
   * @param onMove told of every move carried out, whatever asked for it (the agent's journal)
   */
  constructor(
    factory: ManagerFactory,
    moves: (tenant: string) => MoveContext,
    live: (tenant: string) => Promise<RecoveryView>,
    log: (msg: string) => void,
    onMove: (tenant: string, outcome: MoveOutcome) => void = () => undefined,
  ) {
    this.#factory = factory;
    this.#moves = moves;
    this.#live = live;
    this.#log = log;
    this.#onMove = onMove;
  }

  tenants(): string[] {
    return [...this.#tenants.keys()];
  }

  /**
   * Runs `fn` after everything queued for the tenant before it. A deferred invocation-start goes to
   * the Manager first, so every request sees the events in the order they happened; `fn` gets it
   * instead (to send it with its own event) when `takes` says it is the one to pair with.
   */
  serialize<T>(tenant: string, fn: (manager: TenantManagerPort, deferred: Deferred | undefined) => Promise<T>, takes?: (d: Deferred) => boolean): Promise<T> {
    const t = this.#tenant(tenant);
    t.pending++;
    // Counted down before the caller hears the answer, so that it sees the tenant idle at once.
    const run = t.queue.then(async () => {
      try {
        const m = await t.manager;
        t.quiet = false;
        const d = t.deferred;
        t.deferred = undefined;
        if (d === undefined) return await fn(m, undefined);
        if (takes?.(d) === true) return await fn(m, d);
        await this.#send(tenant, m, d);
        return await fn(await t.manager, undefined);
      } finally {
        t.pending--;
      }
    });
    t.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Whether nothing is queued or running for the tenant now: no event being applied, no move being
   * carried out, so every limit of its containers is the one last written.
   */
  idle(tenant: string): boolean {
    const t = this.#tenants.get(tenant);
    return t === undefined || (t.pending === 0 && t.deferred === undefined);
  }

  /**
   * Whether an invocation-start may be deferred now: nothing is queued, running or deferred for the
   * tenant, and the Manager's answer to the last event said the tenant was quiet. Then the start
   * of a container with no loans either way whose estimate fits its limit decides no move.
   */
  quiet(tenant: string): boolean {
    const t = this.#tenants.get(tenant);
    return t !== undefined && t.pending === 0 && t.deferred === undefined && t.quiet;
  }

  /**
   * Holds back an invocation-start that the caller has found to decide no move ({@link quiet}, and
   * the container's own standing): it goes to the Manager ahead of the tenant's next request of any
   * kind, or in one round trip with its own invocation-end when that is the next. The Manager sees
   * the same events in the same order either way; its clock for the start is the time given here.
   */
  deferStart(tenant: string, event: Extract<ManagerEvent, { kind: 'invocation-start' }>): Promise<BatchResult> {
    if (!this.quiet(tenant)) return this.event(tenant, event);
    const t = this.#tenant(tenant);
    return new Promise<BatchResult>((resolve, reject) => {
      t.deferred = { event, at: Date.now(), resolve, reject };
    });
  }

  /** Sends a deferred invocation-start now (it is otherwise sent with the tenant's next request). */
  flush(tenant: string): void {
    if (this.#tenants.get(tenant)?.deferred !== undefined) void this.serialize(tenant, () => Promise.resolve()).catch(() => undefined);
  }

  /** Sends a deferred start alone and settles its caller's promise with the outcome. */
  async #send(tenant: string, m: TenantManagerPort, d: Deferred): Promise<void> {
    try {
      d.resolve(await this.#apply(tenant, m, d.event, d.at));
    } catch (err) {
      d.reject(err);
    }
  }

  /**
   * Tells the tenant's Manager one event and carries out its moves. A Manager whose process is
   * gone (killed, stuck) is replaced first: the new one is rebuilt from the live containers and
   * its restoring moves carried out (every loan returned), then it gets the event, unless the
   * event no longer fits the rebuilt state (an invocation-end for a container it now sees idle).
   */
  event(tenant: string, event: ManagerEvent): Promise<BatchResult> {
    // An invocation-end goes in one round trip with its own start when that start is still deferred.
    const takes = (d: Deferred): boolean => event.kind === 'invocation-end' && d.event.id === event.id;
    return this.serialize(tenant, async (m, d) => {
      if (d === undefined) return this.#apply(tenant, m, event);
      if (m.applyPair === undefined) {
        await this.#send(tenant, m, d);
        return this.#apply(tenant, await this.#tenant(tenant).manager, event);
      }
      let pair: { readonly first: Applied; readonly second?: Applied };
      try {
        pair = await m.applyPair(d.event, d.at, event);
      } catch (err) {
        if (!isEphemeraError(err) || !LOST.has(err.code)) {
          d.reject(err);
          throw err;
        }
        // The Manager is gone: one by one, through the recovery that #apply does.
        await this.#send(tenant, m, d);
        return this.#apply(tenant, await this.#tenant(tenant).manager, event);
      }
      const started = await this.#batch(tenant, m, pair.first);
      d.resolve(started);
      // The start decided moves after all (its caller's reading was stale): now carried out, the
      // end goes alone, as it would have.
      if (pair.second === undefined) return this.#apply(tenant, m, event);
      return this.#batch(tenant, m, pair.second);
    }, takes);
  }

  /** Carries out one answer's moves; notes whether the tenant is quiet after it. */
  async #batch(tenant: string, m: TenantManagerPort, a: Applied): Promise<BatchResult> {
    const result = await this.execute(tenant, m, a.moves);
    const empty = result.done.length === 0 && result.refused.length === 0;
    this.#tenant(tenant).quiet = empty && a.quiet === true;
    return a.standing !== undefined && empty ? { ...result, standing: a.standing } : result;
  }

  /** One event to the Manager and its moves carried out; a lost Manager is replaced first (see {@link event}). */
  async #apply(tenant: string, m: TenantManagerPort, event: ManagerEvent, at?: number): Promise<BatchResult> {
    let applied: Applied;
    try {
      if (m.applyWithStanding !== undefined) applied = await m.applyWithStanding(event, at);
      else applied = { moves: await m.apply(event), standing: undefined };
    } catch (err) {
      if (!isEphemeraError(err) || !LOST.has(err.code)) throw err;
      this.#log(`tenant ${tenant}: its Manager is lost (${err.message}); starting a new one and recovering`);
      const fresh = await this.#replace(tenant, m);
      const view = await this.#live(tenant);
      const restored = await this.execute(tenant, fresh, await fresh.recover(view.live));
      // The invocations still in flight start again in the new model (its contract, step 5.4).
      for (const id of view.running) {
        if (event.kind === 'invocation-start' && event.id === id) continue;
        const r = await this.execute(tenant, fresh, await fresh.apply({ kind: 'invocation-start', id }));
        restored.done.push(...r.done);
        restored.refused.push(...r.refused);
      }
      let moves: readonly Move[];
      try {
        moves = await fresh.apply(event);
      } catch (again) {
        if (!isEphemeraError(again, 'EPH_MANAGER_EVENT')) throw again;
        this.#log(`tenant ${tenant}: after recovery, ${event.kind} no longer applies: ${again.message}`);
        return restored;
      }
      const next = await this.execute(tenant, fresh, moves);
      return { done: [...restored.done, ...next.done], refused: [...restored.refused, ...next.refused] };
    }
    return this.#batch(tenant, m, applied);
  }

  async #replace(tenant: string, lost: TenantManagerPort): Promise<TenantManagerPort> {
    await lost.close().catch(() => undefined);
    const t = this.#tenant(tenant);
    const fresh = this.#factory(tenant);
    t.manager = fresh;
    return fresh;
  }

  /** Rebuilds the tenant's Manager from its live containers and carries out the restoring moves. */
  recover(tenant: string, live: readonly LiveContainer[]): Promise<BatchResult> {
    return this.serialize(tenant, async (m) => this.execute(tenant, m, await m.recover(live)));
  }

  snapshot(tenant: string): Promise<ManagerSnapshot> {
    return this.serialize(tenant, (m) => m.snapshot());
  }

  /** Stops the tenant's Manager (its last container is gone). */
  async retire(tenant: string): Promise<void> {
    this.flush(tenant);
    const t = this.#tenants.get(tenant);
    if (t === undefined) return;
    this.#tenants.delete(tenant);
    await t.queue;
    await (await t.manager).close();
  }

  async close(): Promise<void> {
    await Promise.all(this.tenants().map((t) => this.retire(t).catch(() => undefined)));
  }

  /** Carries out a batch in order; see the module comment for what happens on a failure. */
  async execute(tenant: string, manager: TenantManagerPort, first: readonly Move[]): Promise<BatchResult> {
    const done: MoveOutcome[] = [];
    const refused: RefusedMove[] = [];
    let batch = first;
    for (let round = 0; round < MAX_ROUNDS && batch.length > 0; round++) {
      let failedAt = -1;
      for (let i = 0; i < batch.length; i++) {
        const move = batch[i];
        if (move === undefined) continue;
        try {
          const outcome = await carryOut(tenant, move, this.#moves(tenant));
          done.push(outcome);
          this.#onMove(tenant, outcome);
        } catch (err) {
          if (!isEphemeraError(err)) throw err;
          refused.push(refusal(move, err));
          this.#log(`tenant ${tenant}: ${err.code}: ${err.message}`);
          failedAt = i;
          break;
        }
      }
      if (failedAt < 0) break;
      const next: Move[] = [];
      for (let i = batch.length - 1; i >= failedAt; i--) {
        const move = batch[i];
        if (move === undefined) continue;
        const reason = i === failedAt ? (refused.at(-1)?.message ?? 'failed') : 'skipped after an earlier move of its batch failed';
        try {
          next.push(...(await manager.apply({ kind: 'move-failed', move, reason })));
        } catch (err) {
          // A Manager that does not know its own move (a buggy one) cannot undo it; the limits
          // are right regardless, since the agent applied nothing of it.
          if (!isEphemeraError(err)) throw err;
          this.#log(`tenant ${tenant}: the Manager did not take move-failed for move ${move.seq}: ${err.message}`);
        }
      }
      batch = next;
    }
    return { done, refused };
  }

  #tenant(tenant: string): Tenant {
    let t = this.#tenants.get(tenant);
    if (t === undefined) {
      const manager = this.#factory(tenant);
      const entry: Tenant = { manager, queue: Promise.resolve(), pending: 0, quiet: false, deferred: undefined };
      // A Manager that failed to start is tried again on the tenant's next event.
      entry.queue = manager.catch(() => {
        if (this.#tenants.get(tenant) === entry) this.#tenants.delete(tenant);
      });
      this.#tenants.set(tenant, entry);
      t = entry;
    }
    return t;
  }
}

function refusal(move: Move, err: EphemeraError): RefusedMove {
  return { move, code: err.code, message: err.message };
}
