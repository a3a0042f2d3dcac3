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
  applyWithStanding?(event: ManagerEvent): Promise<{ readonly moves: readonly Move[]; readonly standing: ContainerStanding | undefined }>;
  recover(live: readonly LiveContainer[]): Promise<readonly Move[]>;
  snapshot(): Promise<ManagerSnapshot>;
  close(): Promise<void>;
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

  /** Runs `fn` after everything queued for the tenant before it. */
  serialize<T>(tenant: string, fn: (manager: TenantManagerPort) => Promise<T>): Promise<T> {
    const t = this.#tenant(tenant);
    t.pending++;
    // Counted down before the caller hears the answer, so that it sees the tenant idle at once.
    const run = t.queue.then(async () => {
      try {
        return await fn(await t.manager);
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
    return (this.#tenants.get(tenant)?.pending ?? 0) === 0;
  }

  /**
   * Tells the tenant's Manager one event and carries out its moves. A Manager whose process is
   * gone (killed, stuck) is replaced first: the new one is rebuilt from the live containers and
   * its restoring moves carried out (every loan returned), then it gets the event, unless the
   * event no longer fits the rebuilt state (an invocation-end for a container it now sees idle).
   */
  event(tenant: string, event: ManagerEvent): Promise<BatchResult> {
    return this.serialize(tenant, async (m) => {
      let moves: readonly Move[];
      let standing: ContainerStanding | undefined;
      try {
        if (m.applyWithStanding !== undefined && 'id' in event) ({ moves, standing } = await m.applyWithStanding(event));
        else moves = await m.apply(event);
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
      const result = await this.execute(tenant, m, moves);
      return standing !== undefined && result.done.length === 0 && result.refused.length === 0 ? { ...result, standing } : result;
    });
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
      const entry: Tenant = { manager, queue: Promise.resolve(), pending: 0 };
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
