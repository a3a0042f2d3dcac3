/**
 * Carrying out one Manager move between two containers of a tenant, in the only safe order:
 *   1. the giver's daemon shrinks and acknowledges (its files are on disk, its pages freed);
 *   2. the giver's cgroup limit goes down;
 *   3. the receiver's cgroup limit goes up;
 *   4. the receiver's daemon grows.
 * At no instant does the sum of the tenant's limits exceed what it was before the move, and no
 * limit is ever below what its container uses (resize.ts orders each side against its daemon).
 *
 * Before anything is touched the move is checked against the agent's own records: both
 * containers must exist and belong to the Manager's tenant. A buggy or hostile Manager can
 * therefore never take one tenant's memory and give it to another's.
 */
import { EphemeraError, isEphemeraError } from '../core/errors.js';
import type { MemoryLimiter } from '../limiter/limiter.js';
import { resizeInstance, type ResizeDaemon } from '../limiter/resize.js';
import type { Move } from '../manager/types.js';

/** One container as the move executor needs it. */
export interface MoveParty {
  readonly id: string;
  readonly tenant: string;
  /** The container's cgroup (the limit the kernel enforces). */
  readonly limiter: MemoryLimiter;
  readonly daemon: ResizeDaemon;
  /** The container has exited: its side of a move counts as done (its memory is free already). */
  readonly gone?: boolean;
}

export type StepKind = 'shrink' | 'lower' | 'raise' | 'grow';

/** One step of a move as it happened: a daemon request acknowledged or a cgroup limit written. */
export interface MoveStep {
  readonly kind: StepKind;
  readonly id: string;
  readonly bytes: number;
}

export interface MoveContext {
  party(id: string): MoveParty | undefined;
  /** Before a container's limit is written (the engine-record sync's hold). */
  hold(id: string): Promise<void>;
  /** After, with the limit in force. */
  release(id: string, bytes: number): void;
  /** Told after each step, in order (tests check the invariant here). */
  onStep?(step: MoveStep): void;
}

/** The smallest limit Docker accepts for a container. */
export const ENGINE_MINIMUM_BYTES = 6 * 1024 * 1024;

export interface MoveOutcome {
  readonly from: string | null;
  readonly to: string | null;
  readonly bytes: number;
  readonly reason: Move['reason'];
  readonly durationUs: number;
  /** Limits in force afterwards, by container id. */
  readonly limits: Readonly<Record<string, number>>;
}

/**
 * Checks that `move` stays inside `tenant` and names known containers; touches nothing.
 * @throws {EphemeraError} `EPH_NODE_CROSS_TENANT` for a container of another tenant,
 *   `EPH_NODE_MOVE_FAILED` for an unknown container or a malformed move
 */
export function checkMove(tenant: string, move: Move, party: (id: string) => MoveParty | undefined): void {
  const detail = { move, tenant };
  if (!Number.isSafeInteger(move.bytes) || move.bytes <= 0) {
    throw new EphemeraError('EPH_NODE_MOVE_FAILED', `the Manager of tenant ${tenant} asked to move ${String(move.bytes)} bytes; a move carries a positive integer`, { detail });
  }
  if (move.from === null && move.to === null) {
    throw new EphemeraError('EPH_NODE_MOVE_FAILED', `the Manager of tenant ${tenant} sent a move with neither giver nor receiver`, { detail });
  }
  if (move.from !== null && move.from === move.to) {
    throw new EphemeraError('EPH_NODE_MOVE_FAILED', `the Manager of tenant ${tenant} asked to move memory from container ${move.from} to itself`, { detail });
  }
  for (const id of [move.from, move.to]) {
    if (id === null) continue;
    const p = party(id);
    if (p === undefined) {
      throw new EphemeraError('EPH_NODE_MOVE_FAILED', `the Manager of tenant ${tenant} named container ${id}, which this node does not hold`, { detail });
    }
    if (p.tenant !== tenant) {
      throw new EphemeraError(
        'EPH_NODE_CROSS_TENANT',
        `refused a ${move.reason} move of ${move.bytes} bytes from ${String(move.from)} to ${String(move.to)}: container ${id} belongs to tenant ${p.tenant}, not to ${tenant}, whose Manager asked; memory never crosses tenants`,
        { detail: { ...detail, owner: p.tenant } },
      );
    }
  }
}

/**
 * Carries out one move in the safe order.
 * @throws {EphemeraError} `EPH_NODE_CROSS_TENANT` (nothing touched); `EPH_NODE_MOVE_FAILED` when a
 *   step failed: the limits are then back where they were before the move.
 */
export async function carryOut(tenant: string, move: Move, ctx: MoveContext): Promise<MoveOutcome> {
  const t0 = performance.now();
  checkMove(tenant, move, (id) => ctx.party(id));
  const giver = move.from === null ? undefined : ctx.party(move.from);
  const receiver = move.to === null ? undefined : ctx.party(move.to);
  const limits: Record<string, number> = {};
  const held = [giver, receiver].filter((p): p is MoveParty => p !== undefined && p.gone !== true);
  for (const p of held) await ctx.hold(p.id);
  const before = new Map<string, number>();
  const deferred: Promise<unknown>[] = [];
  try {
    for (const p of held) {
      const limit = await p.limiter.getLimit();
      if (limit === null) {
        throw new EphemeraError('EPH_NODE_MOVE_FAILED', `container ${p.id} has no memory limit; the agent only moves memory between limited containers`, { detail: { move } });
      }
      before.set(p.id, limit);
    }
    if (giver !== undefined && giver.gone !== true) {
      const from = before.get(giver.id) ?? 0;
      const target = from - move.bytes;
      if (target < ENGINE_MINIMUM_BYTES) {
        throw new EphemeraError('EPH_NODE_MOVE_FAILED', `cannot take ${move.bytes} bytes from container ${giver.id}: its limit of ${from} bytes would fall below the engine's minimum of ${ENGINE_MINIMUM_BYTES}`, {
          detail: { move, limit: from },
        });
      }
      await resizeSide(giver, from, target, ctx, move, deferred);
      limits[giver.id] = target;
    }
    if (receiver !== undefined && receiver.gone !== true) {
      const target = (before.get(receiver.id) ?? 0) + move.bytes;
      try {
        await resizeSide(receiver, before.get(receiver.id) ?? 0, target, ctx, move);
      } catch (err) {
        // Step 3 or 4 failed: the bytes go back to the giver, raised in the same safe way.
        if (giver !== undefined && giver.gone !== true) {
          const back = before.get(giver.id) ?? 0;
          try {
            await resizeSide(giver, null, back, ctx, move);
            limits[giver.id] = back;
          } catch {
            // Still lowered: the release below reads where the limit stands.
            Reflect.deleteProperty(limits, giver.id);
          }
        }
        throw err;
      }
      limits[receiver.id] = target;
    }
  } finally {
    await Promise.all(deferred);
    for (const p of held) ctx.release(p.id, limits[p.id] ?? (await p.limiter.getLimit().catch(() => null)) ?? before.get(p.id) ?? 0);
  }
  return { from: move.from, to: move.to, bytes: move.bytes, reason: move.reason, durationUs: Math.round((performance.now() - t0) * 1000), limits };
}

/**
 * Resizes one side (resize.ts orders it against its daemon), from the limit `known` that the move
 * read a moment ago under its hold (null: read it again). A giver's closing `grow` (which only
 * lets its daemon use the margin below its already lowered limit again) is not waited for: it goes
 * out with the receiver's raise, and the move awaits it at the end. Should it fail, the daemon
 * keeps the lower limit, which is safe.
 */
async function resizeSide(p: MoveParty, known: number | null, target: number, ctx: MoveContext, move: Move, deferred?: Promise<unknown>[]): Promise<void> {
  const step = (kind: StepKind, bytes: number): void => ctx.onStep?.({ kind, id: p.id, bytes });
  let lowered = false;
  const daemon: ResizeDaemon = {
    shrink: async (bytes) => {
      const r = await p.daemon.shrink(bytes);
      step('shrink', bytes);
      return r;
    },
    grow: async (bytes) => {
      const growing = p.daemon.grow(bytes).then((r) => {
        step('grow', bytes);
        return r;
      });
      if (lowered && deferred !== undefined) {
        deferred.push(growing.catch(() => undefined));
        return undefined;
      }
      return growing;
    },
  };
  let current: number | null = null;
  // The first read is the one the move made (the hold keeps other writers of this agent away).
  let fresh = known;
  const limiter: MemoryLimiter = {
    kind: p.limiter.kind,
    target: p.limiter.target,
    getLimit: async () => {
      current = fresh ?? (await p.limiter.getLimit());
      fresh = null;
      return current;
    },
    setLimit: async (bytes) => {
      await p.limiter.setLimit(bytes);
      lowered = current !== null && bytes !== null && bytes < current;
      step(lowered ? 'lower' : 'raise', bytes ?? 0);
      current = bytes;
    },
    getUsage: () => p.limiter.getUsage(),
    getPeak: () => p.limiter.getPeak(),
    oomKills: () => p.limiter.oomKills(),
  };
  try {
    await resizeInstance(limiter, daemon, target);
  } catch (err) {
    if (isEphemeraError(err, 'EPH_NODE_MOVE_FAILED')) throw err;
    throw new EphemeraError('EPH_NODE_MOVE_FAILED', `a ${move.reason} move of ${move.bytes} bytes from ${String(move.from)} to ${String(move.to)} failed at container ${p.id}: ${(err as Error).message}`, {
      cause: err,
      detail: { move, container: p.id, target },
    });
  }
}
