/**
 * The OOM guard watchdog's decisions, without I/O.
 *
 * ephemerad's OOM guard tells the kernel to make a function wait at its cgroup limit instead of
 * killing it, while the daemon moves files to disk (cgroup v1 `oom_kill_disable=1`; v2 a
 * `memory.high` just below `memory.max`). That only works while the daemon itself can run: on v1
 * a page fault of the daemon during the stall puts the daemon to sleep too, and nobody frees
 * memory any more. The daemon keeps its working set resident to avoid that (daemon/reserve.c), but
 * the guarantee has to come from outside the cgroup: this watchdog, run by whoever created the
 * cgroup (`ephemera run --memory`, the node agent), watches the stall and ends it within a bound.
 *
 * - A stall is v1 `under_oom 1`, or v2 `memory.current` above the guard's `memory.high`, while the
 *   guard is set. Stalls shorter than `stallMs` are the guard working: the daemon evicts and the
 *   function goes on.
 * - v1, first: a grace. The hard limit is raised by {@link graceBytes} (raising it wakes every
 *   waiting task), so a daemon blocked on a page of its own gets it and evicts. Once the stall is
 *   over and usage fits the original limit again, the limit is put back.
 * - A daemon that faults again during its eviction (the ASan build, which cannot lock its working
 *   set, allocates as it goes) while the function has taken the room meets a new stall: up to
 *   {@link MAX_GRACES} graces in a row, each another {@link graceBytes}.
 * - Then, if the stall still lasts `stallMs` (the function itself outgrows its limit, with nothing
 *   left to evict): the guard is lifted (v1 `oom_kill_disable=0`, v2 `memory.high=max`), and the
 *   kernel's OOM handling applies, as it would without Ephemera: a prompt kill, never a freeze.
 * - v2 has no freeze (memory.high throttles, it does not stop), so there is no grace: a throttle
 *   that lasts `stallMs` lifts the guard at once.
 *
 * The watchdog never arms the guard and never lowers a limit below the one it found. A limit that
 * someone else changes during a grace (the Tenant Manager resizing the instance) wins: the
 * watchdog forgets its grace.
 */

/** One reading of the cgroup. */
export interface GuardSample {
  /** The guard is set: v1 `oom_kill_disable 1`, v2 `memory.high` below `memory.max`. */
  readonly armed: boolean;
  /** Tasks wait at the limit: v1 `under_oom 1`, v2 `memory.current` above `memory.high`. */
  readonly stalled: boolean;
  /** Bytes charged to the cgroup. */
  readonly usage: number;
  /** The hard limit (v1 `memory.limit_in_bytes`, v2 `memory.max`), `null` when unlimited. */
  readonly limit: number | null;
}

export interface WatchdogConfig {
  /** How long a stall may last before the watchdog acts, in ms. */
  readonly stallMs: number;
  /** Grant a grace before lifting the guard (cgroup v1, where a stall is a freeze). */
  readonly grace: boolean;
}

export type WatchdogState =
  | { readonly phase: 'watching'; readonly stallSince: number | null }
  | {
      readonly phase: 'grace';
      /** The limit found before the grace, to be put back. */
      readonly original: number;
      /** The limit the grace wrote. */
      readonly granted: number;
      /** Graces granted in this stall episode. */
      readonly graces: number;
      readonly stallSince: number | null;
    };

export type WatchdogAction =
  | { readonly kind: 'none' }
  /** Raise the hard limit to `limit` for a while. */
  | { readonly kind: 'grace'; readonly limit: number; readonly stalledMs: number }
  /** Lift the guard: the kernel's OOM handling applies. */
  | { readonly kind: 'lift'; readonly stalledMs: number }
  /** Put the hard limit back to `limit`. */
  | { readonly kind: 'restore'; readonly limit: number };

export const INITIAL_STATE: WatchdogState = { phase: 'watching', stallSince: null };

const MiB = 1024 * 1024;

/** Graces in a row before the guard is lifted: the overrun is at most this many graceBytes. */
export const MAX_GRACES = 4;

/**
 * Room granted for a grace: enough for a daemon's few pages and the start of an eviction, small
 * next to the limit: limit/16, at least 16 MiB, at most 64 MiB, whole pages.
 */
export function graceBytes(limit: number): number {
  const g = Math.min(64 * MiB, Math.max(16 * MiB, Math.floor(limit / 16)));
  return g - (g % 4096);
}

const NONE: WatchdogAction = { kind: 'none' };

/** Where a stall began, given the one known so far: `null` when there is none now. */
function stallStart(s: GuardSample, since: number | null, now: number): number | null {
  if (!s.stalled || !s.armed) return null;
  return since ?? now;
}

/**
 * The next state and what to do, from the last state, a fresh sample and the time (ms, any
 * monotonic clock). The caller performs the action; if it fails, it keeps the old state and asks
 * again at the next sample.
 */
export function decide(state: WatchdogState, s: GuardSample, now: number, cfg: WatchdogConfig): { state: WatchdogState; action: WatchdogAction } {
  if (state.phase === 'grace' && s.limit !== state.granted) {
    // Someone else set the limit (or it was put back behind us): theirs stands.
    return decide(INITIAL_STATE, s, now, cfg);
  }
  const since = stallStart(s, state.stallSince, now);
  const stalledMs = since === null ? 0 : now - since;
  if (state.phase === 'watching') {
    if (since === null || stalledMs < cfg.stallMs) return { state: { phase: 'watching', stallSince: since }, action: NONE };
    if (cfg.grace && s.limit !== null) {
      const granted = s.limit + graceBytes(s.limit);
      return { state: { phase: 'grace', original: s.limit, granted, graces: 1, stallSince: null }, action: { kind: 'grace', limit: granted, stalledMs } };
    }
    return { state: { phase: 'watching', stallSince: null }, action: { kind: 'lift', stalledMs } };
  }
  if (since !== null) {
    if (stalledMs < cfg.stallMs) return { state: { ...state, stallSince: since }, action: NONE };
    if (state.graces < MAX_GRACES) {
      const granted = state.granted + graceBytes(state.original);
      return { state: { ...state, granted, graces: state.graces + 1, stallSince: null }, action: { kind: 'grace', limit: granted, stalledMs } };
    }
    return { state: { ...state, stallSince: null }, action: { kind: 'lift', stalledMs } };
  }
  if (!s.stalled && s.usage <= state.original) return { state: INITIAL_STATE, action: { kind: 'restore', limit: state.original } };
  return { state: { ...state, stallSince: null }, action: NONE };
}
