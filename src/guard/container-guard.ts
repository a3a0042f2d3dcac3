/**
 * The OOM guard of one container, held from the host. Docker mounts a container's cgroup
 * read-only, so its daemon cannot set the guard; it says when it wants it (the control protocol's
 * `guard` event: while it holds files it could evict) and this class sets it ({@link GuardArm})
 * and lifts it accordingly, runs the {@link GuardWatchdog} that ends a stall within its bound, and
 * after the watchdog lifted the guard leaves it lifted a while (the kernel's OOM handling decides
 * meanwhile) before following the daemon's wish again.
 *
 * On cgroup v2 the guard is a `memory.high` tied to the hard limit, so the limit may only change
 * through {@link ContainerGuard.limiter}, which moves both in an order that never leaves
 * `memory.high` above a lowered `memory.max`.
 */
import type { MemoryLimiter } from '../limiter/limiter.js';
import type { GuardArm } from './arm.js';
import { GuardWatchdog, type GuardKnobs, type WatchdogEvent, type WatchdogOptions } from './watchdog.js';

/** Events of the guard itself beside the watchdog's: the guard set or lifted at the daemon's wish. */
export type ContainerGuardEvent = WatchdogEvent | { readonly action: 'arm' | 'disarm'; readonly target: string; readonly message: string };

export interface ContainerGuardOptions {
  /** The watchdog's sampling and stall bound (its defaults otherwise). */
  readonly watchdog?: Omit<WatchdogOptions, 'onEvent'>;
  /**
   * How long the guard stays lifted after the watchdog lifted it, in ms: the kernel's OOM
   * handling decides meanwhile (the daemon waits as long: daemon/guard.c GUARD_REARM_NS).
   * @default 5000
   */
  readonly rearmMs?: number;
  readonly onEvent?: (e: ContainerGuardEvent) => void;
}

export class ContainerGuard {
  readonly watchdog: GuardWatchdog;
  readonly #arm: GuardArm;
  readonly #target: string;
  readonly #rearmMs: number;
  readonly #onEvent: (e: ContainerGuardEvent) => void;
  /**
   * Whether the guard is set; null until this host first wrote it (an agent that took over a
   * running container does not know what its predecessor left: the first wish is always written).
   */
  #armed: boolean | null = null;
  /** What the daemon last said it wants. */
  #wanted = false;
  /** After a lift by the watchdog, until this timer fires, the daemon's wish waits. */
  #cooling: NodeJS.Timeout | undefined;
  #stopped = false;
  /**
   * Serialises the guard's writes and the limit changes made through {@link limiter}: setting the
   * guard reads the limit and then writes memory.high, and a limit change in between would leave
   * memory.high computed from the old limit (above a lowered memory.max: no guard at all; far below
   * a raised one: a throttle the watchdog ends as a stall).
   */
  #queue: Promise<void> = Promise.resolve();

  constructor(arm: GuardArm, knobs: GuardKnobs, options: ContainerGuardOptions = {}) {
    this.#arm = arm;
    this.#target = knobs.target;
    this.#rearmMs = options.rearmMs ?? 5000;
    this.#onEvent = options.onEvent ?? (() => undefined);
    this.watchdog = new GuardWatchdog(knobs, {
      ...options.watchdog,
      onEvent: (e) => {
        if (e.action === 'lift') this.#lifted();
        this.#onEvent(e);
      },
    });
  }

  /** The guard is set (as far as this host knows). */
  get armed(): boolean {
    return this.#armed === true;
  }

  /** Starts watching (the guard waits for the daemon's wish). */
  start(): void {
    this.watchdog.start();
  }

  /**
   * The daemon's wish: set the guard (it holds files it could evict) or lift it (nothing to
   * evict: the kernel's OOM handling should apply at once). Resolves once it is carried out.
   */
  want(wanted: boolean): Promise<void> {
    this.#wanted = wanted;
    return this.#follow();
  }

  /** Stops watching; with `disarm`, lifts the guard too (nobody would end a stall any more). */
  async stop(options: { disarm: boolean }): Promise<void> {
    this.#stopped = true;
    if (this.#cooling !== undefined) clearTimeout(this.#cooling);
    await this.watchdog.stop();
    await this.#queue;
    if (options.disarm && this.#armed !== false) {
      this.#armed = false;
      await this.#arm.disarm();
    }
  }

  /**
   * `limiter` with its limit changes kept in step with the guard: on v2, `memory.high` goes down
   * before `memory.max` and up after it. On v1 the guard does not depend on the limit.
   */
  limiter(limiter: MemoryLimiter): MemoryLimiter {
    if (this.#arm.version === 1) return limiter;
    return {
      kind: limiter.kind,
      target: limiter.target,
      getLimit: () => limiter.getLimit(),
      getUsage: () => limiter.getUsage(),
      getPeak: () => limiter.getPeak(),
      oomKills: () => limiter.oomKills(),
      setLimit: (bytes) =>
        this.#serial(async () => {
          const before = await limiter.getLimit();
          const lowering = bytes !== null && (before === null || bytes < before);
          if (lowering && this.#armed === true) await this.#arm.arm(bytes);
          await limiter.setLimit(bytes);
          if (!lowering && this.#armed === true) await this.#arm.arm(bytes);
        }),
    };
  }

  #lifted(): void {
    this.#armed = false;
    if (this.#stopped) return;
    if (this.#cooling !== undefined) clearTimeout(this.#cooling);
    this.#cooling = setTimeout(() => {
      this.#cooling = undefined;
      this.#follow().catch(() => undefined);
    }, this.#rearmMs);
    this.#cooling.unref();
  }

  /** Brings the guard in line with the daemon's wish (unless cooling after a lift, or stopped). */
  #follow(): Promise<void> {
    const step = async (): Promise<void> => {
      if (this.#stopped || this.#cooling !== undefined || this.#wanted === this.#armed) return;
      try {
        if (this.#wanted) {
          await this.#arm.arm(await this.#arm.limit());
          this.#armed = true;
          this.#onEvent({ action: 'arm', target: this.#target, message: `${this.#target}: OOM guard set from the host at the daemon's request (it holds files it can evict)` });
        } else {
          await this.#arm.disarm();
          this.#armed = false;
          this.#onEvent({ action: 'disarm', target: this.#target, message: `${this.#target}: OOM guard lifted at the daemon's request (no file left to evict)` });
        }
      } catch (err) {
        // The container went away, or its cgroup did: nothing to guard.
        this.#onEvent({ action: 'error', target: this.#target, message: `${this.#target}: ${this.#wanted ? 'setting' : 'lifting'} the OOM guard: ${(err as Error).message}` });
      }
    };
    return this.#serial(step);
  }

  /** Runs `op` after every write queued before it; its failure is the caller's, not the queue's. */
  #serial(op: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(op);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
