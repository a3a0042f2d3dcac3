/**
 * The OOM guard watchdog's I/O shell: it samples a cgroup every `pollMs`, asks
 * {@link decide} (watchdog-core.ts) and carries out the answer on the cgroup's files.
 *
 * It runs outside the watched cgroup, in the process that created it (`ephemera run --memory`),
 * or in a node agent that watches many: one {@link GuardWatchdog} per instance, each with the
 * {@link GuardKnobs} of its cgroup (or a fake in tests).
 */
import { isEphemeraError } from '../core/errors.js';
import { CgroupV1Limiter } from '../limiter/cgroup-v1.js';
import { CgroupV2Limiter } from '../limiter/cgroup-v2.js';
import { readBytes, readControl, readCount, readKey, writeControl } from '../limiter/cgroupfs.js';
import { INITIAL_STATE, decide, type GuardSample, type WatchdogAction, type WatchdogState } from './watchdog-core.js';

/** What the watchdog reads and writes: one cgroup's guard. */
export interface GuardKnobs {
  /** 1: a stall is a freeze and gets a grace first; 2: a throttle, lifted at once. */
  readonly version: 1 | 2;
  /** Where, for messages. */
  readonly target: string;
  read(): Promise<GuardSample>;
  /** Set the hard limit (a grace, or putting it back). */
  setLimit(bytes: number): Promise<void>;
  /** Lift the guard: v1 `oom_kill_disable=0`, v2 `memory.high=max`. */
  lift(): Promise<void>;
}

/** The knobs of a real cgroup directory. */
export function cgroupGuardKnobs(dir: string, version: 1 | 2): GuardKnobs {
  if (version === 1) {
    // The limiter keeps memory.memsw.limit_in_bytes in step (the kernel wants limit <= memsw).
    const limiter = new CgroupV1Limiter(dir);
    return {
      version,
      target: dir,
      async read() {
        const [disabled, under, usage, limit] = await Promise.all([
          readKey(dir, 'memory.oom_control', 'oom_kill_disable'),
          readKey(dir, 'memory.oom_control', 'under_oom'),
          readCount(dir, 'memory.usage_in_bytes'),
          readBytes(dir, 'memory.limit_in_bytes'),
        ]);
        return { armed: disabled === 1, stalled: under === 1, usage, limit };
      },
      setLimit: (bytes) => limiter.setLimit(bytes),
      lift: () => writeControl(dir, 'memory.oom_control', '0'),
    };
  }
  const limiter = new CgroupV2Limiter(dir);
  return {
    version,
    target: dir,
    async read() {
      const [high, limit, usage] = await Promise.all([readBytes(dir, 'memory.high'), readBytes(dir, 'memory.max'), readCount(dir, 'memory.current')]);
      const armed = high !== null && (limit === null || high < limit);
      return { armed, stalled: armed && usage > high, usage, limit };
    },
    setLimit: (bytes) => limiter.setLimit(bytes),
    lift: () => writeControl(dir, 'memory.high', 'max'),
  };
}

/** One intervention, as reported to the host (which logs it). */
export interface WatchdogEvent {
  /** What was done, or 'error' for a sample or an action that failed (retried at the next one). */
  readonly action: Exclude<WatchdogAction['kind'], 'none'> | 'error';
  readonly target: string;
  readonly message: string;
}

export interface WatchdogOptions {
  /** Sampling period. @default 50 */
  readonly pollMs?: number;
  /** How long a stall may last before the watchdog acts. @default 1000 */
  readonly stallMs?: number;
  readonly onEvent?: (e: WatchdogEvent) => void;
  /** For tests: the clock, in ms. @default performance.now */
  readonly now?: () => number;
}

export interface WatchdogCounts {
  graces: number;
  lifts: number;
  restores: number;
  /** Samples or actions that failed (logged through onEvent as 'error'). */
  errors: number;
}

const MiB = 1024 * 1024;

function describe(a: WatchdogAction, target: string): string {
  switch (a.kind) {
    case 'grace':
      return `${target}: stalled at its memory limit for ${String(Math.round(a.stalledMs))} ms with the OOM guard set; raising the limit to ${String(Math.round(a.limit / MiB))} MiB for a moment so that ephemerad can evict`;
    case 'lift':
      return `${target}: stalled at its memory limit for ${String(Math.round(a.stalledMs))} ms; lifting the OOM guard, the kernel's OOM handling applies`;
    case 'restore':
      return `${target}: the stall is over; memory limit back to ${String(Math.round(a.limit / MiB))} MiB`;
    case 'none':
      return '';
  }
}

export class GuardWatchdog {
  readonly counts: WatchdogCounts = { graces: 0, lifts: 0, restores: 0, errors: 0 };
  readonly #knobs: GuardKnobs;
  readonly #pollMs: number;
  readonly #stallMs: number;
  readonly #onEvent: (e: WatchdogEvent) => void;
  readonly #now: () => number;
  #state: WatchdogState = INITIAL_STATE;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #ended: () => void = () => undefined;
  /** Resolves when the watch has ended: stop(), or the cgroup went away. */
  readonly ended: Promise<void> = new Promise((resolve) => {
    this.#ended = resolve;
  });

  constructor(knobs: GuardKnobs, options: WatchdogOptions = {}) {
    this.#knobs = knobs;
    this.#pollMs = options.pollMs ?? 50;
    this.#stallMs = options.stallMs ?? 1000;
    this.#onEvent = options.onEvent ?? (() => undefined);
    this.#now = options.now ?? (() => performance.now());
  }

  /** Start sampling. The timer does not keep the process alive. */
  start(): void {
    this.#schedule();
  }

  /** Stop; resolves once a sample in progress has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
    this.#ended();
  }

  #schedule(): void {
    if (this.#stopped) {
      this.#ended();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#running = this.tick().finally(() => {
        this.#running = undefined;
        this.#schedule();
      });
    }, this.#pollMs);
    this.#timer.unref();
  }

  /** One sample and its action (exported for tests that drive the clock). */
  async tick(): Promise<void> {
    let sample: GuardSample;
    try {
      sample = await this.#knobs.read();
    } catch (err) {
      // The cgroup went away with its instance: nothing left to watch.
      if (isEphemeraError(err, 'EPH_CGROUP_IO') && /ENOENT|ENODEV/.test(err.message)) {
        this.#stopped = true;
        return;
      }
      this.#error(err);
      return;
    }
    const { state, action } = decide(this.#state, sample, this.#now(), { stallMs: this.#stallMs, grace: this.#knobs.version === 1 });
    try {
      if (action.kind === 'grace' || action.kind === 'restore') await this.#knobs.setLimit(action.limit);
      else if (action.kind === 'lift') await this.#knobs.lift();
    } catch (err) {
      // The old state stands: asked again at the next sample.
      if (!(action.kind === 'restore' && isEphemeraError(err, 'EPH_LIMIT_BELOW_USAGE'))) this.#error(err);
      return;
    }
    this.#state = state;
    if (action.kind === 'none') return;
    if (action.kind === 'grace') this.counts.graces++;
    else if (action.kind === 'lift') this.counts.lifts++;
    else this.counts.restores++;
    this.#onEvent({ action: action.kind, target: this.#knobs.target, message: describe(action, this.#knobs.target) });
  }

  #error(err: unknown): void {
    this.counts.errors++;
    const message = err instanceof Error ? err.message : String(err);
    this.#onEvent({ action: 'error', target: this.#knobs.target, message: `${this.#knobs.target}: watchdog: ${message}` });
  }
}

/** The version of the cgroup at dir, from the files it holds. */
export async function cgroupVersionOf(dir: string): Promise<1 | 2> {
  try {
    await readControl(dir, 'memory.oom_control');
    return 1;
  } catch {
    await readControl(dir, 'memory.max');
    return 2;
  }
}
