/**
 * Changing the memory limit of an instance that runs an ephemerad, in the only safe order.
 *
 * Lowering: the daemon must first move enough in-memory files to disk, because the kernel cannot
 * reclaim them (memfd pages are shmem, and there is no swap). Lowering the cgroup first gets
 * EBUSY on cgroup v1 and an OOM kill on cgroup v2. So: `shrink` to the target minus a margin,
 * wait for the acknowledgement (sent once the pages are really freed), lower the cgroup, then
 * `grow` to the target so the daemon may use the margin again.
 *
 * Raising: the cgroup first, then `grow`; the other order would let the daemon fill memory the
 * kernel does not yet allow.
 */
import { EphemeraError, isEphemeraError } from '../core/errors.js';
import type { MemoryLimiter } from './limiter.js';

/** The two control-protocol requests resizing needs (DaemonClient satisfies this). */
export interface ResizeDaemon {
  /** Resolves once usage fits the new limit minus the daemon's headroom. */
  shrink(bytes: number): Promise<unknown>;
  grow(bytes: number): Promise<unknown>;
}

export interface ResizeOptions {
  /**
   * Slack between what the daemon shrinks to and the new cgroup limit, for the function's own
   * growth in between. Doubled on each retry after the kernel refused (cgroup v1 EBUSY).
   * @default max(1 MiB, target / 64)
   */
  readonly margin?: number;
  /** How many shrink-and-lower rounds to try. @default 3 */
  readonly attempts?: number;
}

export interface ResizeResult {
  readonly from: number | null;
  readonly to: number;
  readonly direction: 'lower' | 'raise' | 'same';
  /** Shrink-and-lower rounds used (0 when raising). */
  readonly attempts: number;
}

const MiB = 1024 * 1024;

/**
 * Sets the instance's limit to `target` bytes, ordering the cgroup write against the daemon.
 * @throws {EphemeraError} `EPH_LIMIT_INVALID` for a bad target; `EPH_RESIZE_FAILED` when the
 *   daemon cannot free enough or the kernel keeps refusing (the daemon is then told the old limit
 *   again, and `detail.limit` is where the cgroup limit stands).
 */
export async function resizeInstance(
  limiter: MemoryLimiter,
  daemon: ResizeDaemon,
  target: number,
  options: ResizeOptions = {},
): Promise<ResizeResult> {
  if (!Number.isSafeInteger(target) || target <= 0) {
    throw new EphemeraError('EPH_LIMIT_INVALID', `new memory limit for ${limiter.target} must be a positive integer number of bytes, got ${String(target)}`, {
      detail: { target },
    });
  }
  const from = await limiter.getLimit();
  if (from === target) {
    await daemon.grow(target);
    return { from, to: target, direction: 'same', attempts: 0 };
  }
  if (from !== null && target > from) {
    await limiter.setLimit(target);
    try {
      await daemon.grow(target);
    } catch (err) {
      throw new EphemeraError('EPH_RESIZE_FAILED', `raised ${limiter.target} to ${target} bytes, but the daemon did not take the new limit (${(err as Error).message}); it keeps using the old one, which is safe`, {
        cause: err,
        detail: { limit: target, from },
      });
    }
    return { from, to: target, direction: 'raise', attempts: 0 };
  }
  return lower(limiter, daemon, from, target, options);
}

async function lower(limiter: MemoryLimiter, daemon: ResizeDaemon, from: number | null, target: number, options: ResizeOptions): Promise<ResizeResult> {
  const attempts = options.attempts ?? 3;
  let margin = options.margin ?? Math.max(MiB, Math.floor(target / 64));
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    // The margin never takes more than half of a small target.
    const shrinkTo = target - Math.min(margin, Math.floor(target / 2));
    try {
      await daemon.shrink(shrinkTo);
    } catch (err) {
      await restore(daemon, from);
      throw new EphemeraError('EPH_RESIZE_FAILED', `cannot lower ${limiter.target} to ${target} bytes: the daemon could not shrink to ${shrinkTo} (${(err as Error).message}); the limit stays at ${String(from ?? 'unlimited')}`, {
        cause: err,
        detail: { limit: from, target, shrinkTo, ...(isEphemeraError(err) ? { daemon: err.detail } : {}) },
      });
    }
    try {
      await limiter.setLimit(target);
    } catch (err) {
      if (!isEphemeraError(err, 'EPH_LIMIT_BELOW_USAGE')) {
        await restore(daemon, from);
        throw err;
      }
      // The function grew between the acknowledgement and the write: free more and retry.
      lastError = err;
      margin *= 2;
      continue;
    }
    await daemon.grow(target);
    return { from, to: target, direction: 'lower', attempts: attempt };
  }
  await restore(daemon, from);
  throw new EphemeraError('EPH_RESIZE_FAILED', `cannot lower ${limiter.target} to ${target} bytes: the kernel kept refusing after ${attempts} shrink rounds (the function itself uses too much); the limit stays at ${String(from ?? 'unlimited')}`, {
    cause: lastError,
    detail: { limit: from, target },
  });
}

/** Gives the daemon its old limit back after a failed lowering; best effort. */
async function restore(daemon: ResizeDaemon, from: number | null): Promise<void> {
  if (from === null) return;
  try {
    await daemon.grow(from);
  } catch {
    // The daemon keeps the lower limit, which is safe, only less fast.
  }
}
