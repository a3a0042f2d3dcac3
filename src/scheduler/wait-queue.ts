/**
 * Where an invocation waits when no node has room for it: bounded in length and in time, and never
 * dropped silently (pure: the platform drives it with `now` and tells each caller the outcome).
 *
 * - `enqueue` throws `EPH_SCHED_QUEUE_FULL` at capacity (the platform answers 503 at once).
 * - `drain` is called whenever memory may have come free (a release, an agent's report): it tries
 *   the waiting items in arrival order and places every one that fits. A smaller item may pass a
 *   larger one that does not fit yet, but not one that has waited `agingMs` or more: from then on
 *   the old item is served first, so a large task cannot be starved by a stream of small ones.
 * - An item that waits `maxWaitMs` comes back from `drain`/`expire` in `expired`; the platform
 *   answers it with `waitTimeoutError` (503).
 */
import { EphemeraError } from '../core/errors.js';

export interface WaitQueueOptions {
  readonly capacity: number;
  readonly maxWaitMs: number;
  /** After waiting this long an item is no longer passed by later ones. Default: half of maxWaitMs. */
  readonly agingMs?: number;
}

export interface DrainResult<T, P> {
  readonly placed: readonly { readonly item: T; readonly placement: P; readonly waitedMs: number }[];
  readonly expired: readonly T[];
}

interface Entry<T> {
  readonly item: T;
  readonly since: number;
}

export class WaitQueue<T> {
  readonly capacity: number;
  readonly maxWaitMs: number;
  readonly agingMs: number;
  private entries: Entry<T>[] = [];

  constructor(options: WaitQueueOptions) {
    const { capacity, maxWaitMs } = options;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new EphemeraError('EPH_SCHED_BAD_INPUT', `wait queue capacity must be a whole number ≥ 1, got ${capacity}`);
    }
    if (!Number.isFinite(maxWaitMs) || maxWaitMs <= 0) {
      throw new EphemeraError('EPH_SCHED_BAD_INPUT', `wait queue maxWaitMs must be a positive number of milliseconds, got ${maxWaitMs}`);
    }
    this.capacity = capacity;
    this.maxWaitMs = maxWaitMs;
    this.agingMs = options.agingMs ?? maxWaitMs / 2;
  }

  get length(): number {
    return this.entries.length;
  }

  /** Whether the oldest waiting item has waited `agingMs` or more (then nothing may pass it). */
  hasAged(now: number): boolean {
    const head = this.entries[0];
    return head !== undefined && now - head.since >= this.agingMs;
  }

  /** When the oldest item times out (for the platform's timer), or undefined when empty. */
  nextDeadline(): number | undefined {
    const head = this.entries[0];
    return head === undefined ? undefined : head.since + this.maxWaitMs;
  }

  /**
   * Adds an item that found no node.
   * @throws {EphemeraError} `EPH_SCHED_QUEUE_FULL` when `capacity` items already wait
   */
  enqueue(item: T, now: number): void {
    if (this.entries.length >= this.capacity) {
      throw new EphemeraError(
        'EPH_SCHED_QUEUE_FULL',
        `no node has room for this invocation and ${this.entries.length} invocations already wait for one (the queue holds ${this.capacity}); retry later or add nodes`,
        { detail: { capacity: this.capacity } },
      );
    }
    this.entries.push({ item, since: now });
  }

  /** Takes out and returns the items that have waited `maxWaitMs` or longer. */
  expire(now: number): T[] {
    const expired: T[] = [];
    const kept: Entry<T>[] = [];
    for (const e of this.entries) {
      if (now - e.since >= this.maxWaitMs) expired.push(e.item);
      else kept.push(e);
    }
    this.entries = kept;
    return expired;
  }

  /** Expires, then places what fits now (see the module comment for the order). */
  drain<P>(place: (item: T) => P | null, now: number): DrainResult<T, P> {
    const expired = this.expire(now);
    const placed: { item: T; placement: P; waitedMs: number }[] = [];
    const kept: Entry<T>[] = [];
    let blocked = false;
    for (const e of this.entries) {
      if (blocked) {
        kept.push(e);
        continue;
      }
      const placement = place(e.item);
      if (placement !== null) placed.push({ item: e.item, placement, waitedMs: now - e.since });
      else {
        kept.push(e);
        if (now - e.since >= this.agingMs) blocked = true;
      }
    }
    this.entries = kept;
    return { placed, expired };
  }
}

/** The error a caller gets when its invocation timed out in the queue (HTTP 503). */
export function waitTimeoutError(waitedMs: number): EphemeraError {
  return new EphemeraError(
    'EPH_SCHED_WAIT_TIMEOUT',
    `no node had room for this invocation within ${waitedMs} ms of waiting; retry later or add nodes`,
    { detail: { waitedMs } },
  );
}
