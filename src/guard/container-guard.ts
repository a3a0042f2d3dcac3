/**
 * The OOM guard of one container, held from the host: the guard set for the container's life
 * ({@link GuardArm}), the {@link GuardWatchdog} that ends a stall within its bound, and the guard
 * set again a while after the watchdog lifted it (the container lived on: its next burst of
 * allocation must wait for the daemon again, not meet the OOM killer).
 *
 * On cgroup v2 the guard is a `memory.high` tied to the hard limit, so the limit may only change
 * through {@link ContainerGuard.limiter}, which moves both in an order that never leaves
 * `memory.high` above a lowered `memory.max`.
 */
import type { MemoryLimiter } from '../limiter/limiter.js';
import type { GuardArm } from './arm.js';
import { GuardWatchdog, type GuardKnobs, type WatchdogEvent, type WatchdogOptions } from './watchdog.js';

/** Events of the guard itself beside the watchdog's: the guard set (at start, or again after a lift). */
export type ContainerGuardEvent = WatchdogEvent | { readonly action: 'arm'; readonly target: string; readonly message: string };

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
  #armed = false;
  #stopped = false;
  #rearm: NodeJS.Timeout | undefined;

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
    return this.#armed;
  }

  /** Sets the guard and starts watching. */
  async start(): Promise<void> {
    await this.#set('set');
    this.watchdog.start();
  }

  /** Stops watching; with `disarm`, lifts the guard too (nobody would end a stall any more). */
  async stop(options: { disarm: boolean }): Promise<void> {
    this.#stopped = true;
    if (this.#rearm !== undefined) clearTimeout(this.#rearm);
    await this.watchdog.stop();
    if (options.disarm && this.#armed) {
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
      setLimit: async (bytes) => {
        const before = await limiter.getLimit();
        const lowering = bytes !== null && (before === null || bytes < before);
        if (lowering && this.#armed) await this.#arm.arm(bytes);
        await limiter.setLimit(bytes);
        if (!lowering && this.#armed) await this.#arm.arm(bytes);
      },
    };
  }

  #lifted(): void {
    this.#armed = false;
    if (this.#stopped) return;
    if (this.#rearm !== undefined) clearTimeout(this.#rearm);
    this.#rearm = setTimeout(() => {
      this.#rearm = undefined;
      if (this.#stopped) return;
      this.#set('set again').catch((err: unknown) => {
        // The container went away, or its cgroup did: nothing to guard.
        this.#onEvent({ action: 'error', target: this.#target, message: `${this.#target}: setting the OOM guard again: ${(err as Error).message}` });
      });
    }, this.#rearmMs);
    this.#rearm.unref();
  }

  async #set(how: string): Promise<void> {
    await this.#arm.arm(await this.#arm.limit());
    this.#armed = true;
    this.#onEvent({ action: 'arm', target: this.#target, message: `${this.#target}: OOM guard ${how} from the host (the container's cgroup is read-only inside it)` });
  }
}
