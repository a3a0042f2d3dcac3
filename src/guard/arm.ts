/**
 * Setting the daemon's OOM guard from outside the cgroup.
 *
 * ephemerad sets the guard itself where it may write its cgroup's files (`ephemera run`). Docker
 * mounts a container's cgroup read-only, so inside a function container the daemon can only read
 * the knob (daemon/guard.c, "follow mode"): whoever writes the container's limits from the host
 * (the node agent) sets the guard, and its {@link GuardWatchdog} bounds every stall.
 *
 * - v1: `oom_kill_disable=1`, for the container's life; the watchdog lifts it when a stall lasts.
 * - v2: `memory.high` a little below `memory.max` ({@link guardHigh}), kept in step with every
 *   change of the limit; the watchdog sets it back to `max` when a throttle lasts.
 */
import { readBytes, writeControl } from '../limiter/cgroupfs.js';

const MiB = 1024 * 1024;

/**
 * The gap between the hard limit and the guard's `memory.high` on cgroup v2: half the daemon's
 * default headroom (16 MiB), the value the daemon writes itself when it may (guard.c).
 */
export const GUARD_HIGH_GAP = 8 * MiB;

/** The v2 `memory.high` that guards a hard limit: `null` (write "max") for no limit. */
export function guardHigh(limit: number | null): number | null {
  if (limit === null) return null;
  const high = limit - GUARD_HIGH_GAP;
  // A limit too small for a gap keeps its guard just under it, whole pages.
  return high > 0 ? high : Math.max(4096, limit - (limit % 4096) - 4096);
}

/** The host's side of one cgroup's guard. */
export interface GuardArm {
  readonly version: 1 | 2;
  /**
   * Sets the guard for the hard limit `limit` (v2; v1 ignores it): v1 `oom_kill_disable=1`, v2
   * `memory.high` from {@link guardHigh}.
   */
  arm(limit: number | null): Promise<void>;
  /** The hard limit in force now (v1 `memory.limit_in_bytes`, v2 `memory.max`). */
  limit(): Promise<number | null>;
  /** Lifts the guard: v1 `oom_kill_disable=0`, v2 `memory.high=max`. */
  disarm(): Promise<void>;
}

/** The guard of a real cgroup directory. */
export function cgroupGuardArm(dir: string, version: 1 | 2): GuardArm {
  if (version === 1) {
    return {
      version,
      arm: () => writeControl(dir, 'memory.oom_control', '1'),
      limit: () => readBytes(dir, 'memory.limit_in_bytes'),
      disarm: () => writeControl(dir, 'memory.oom_control', '0'),
    };
  }
  return {
    version,
    arm: (limit) => {
      const high = guardHigh(limit);
      return writeControl(dir, 'memory.high', high === null ? 'max' : String(high));
    },
    limit: () => readBytes(dir, 'memory.max'),
    disarm: () => writeControl(dir, 'memory.high', 'max'),
  };
}
