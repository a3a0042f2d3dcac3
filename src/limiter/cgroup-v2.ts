/**
 * {@link MemoryLimiter} for a cgroup v2 directory with the memory controller enabled.
 *
 * `memory.max` is the RAM limit; `memory.swap.max = 0` keeps the instance out of swap. A v2
 * limit below usage makes the kernel reclaim and then OOM-kill, never refuse, which is why
 * resizing must go through the daemon first (resize.ts).
 */
import { EphemeraError } from '../core/errors.js';
import { checkLimit, hasControl, readBytes, readCount, readKey, writeControl } from './cgroupfs.js';
import type { MemoryLimiter } from './limiter.js';

export interface CgroupV2Options {
  /** Allow swap (leave memory.swap.max alone). @default false */
  readonly swap?: boolean;
}

export class CgroupV2Limiter implements MemoryLimiter {
  readonly kind = 'cgroup-v2' as const;
  readonly target: string;
  readonly #swap: boolean;

  /** @param dir absolute path of the cgroup, e.g. /sys/fs/cgroup/ephemera/fn1 */
  constructor(dir: string, options: CgroupV2Options = {}) {
    this.target = dir;
    this.#swap = options.swap ?? false;
  }

  getLimit(): Promise<number | null> {
    return readBytes(this.target, 'memory.max');
  }

  async setLimit(bytes: number | null): Promise<void> {
    checkLimit(bytes, this.target);
    // memory.swap.max only exists when the kernel has swap accounting.
    if (!this.#swap && (await hasControl(this.target, 'memory.swap.max'))) {
      await writeControl(this.target, 'memory.swap.max', '0');
    }
    await writeControl(this.target, 'memory.max', bytes === null ? 'max' : String(bytes));
  }

  getUsage(): Promise<number> {
    return readCount(this.target, 'memory.current');
  }

  async getPeak(): Promise<number | null> {
    // memory.peak arrived in Linux 5.19.
    if (!(await hasControl(this.target, 'memory.peak'))) return null;
    return readCount(this.target, 'memory.peak');
  }

  async oomKills(): Promise<number> {
    const n = await readKey(this.target, 'memory.events', 'oom_kill');
    if (n === undefined) {
      throw new EphemeraError('EPH_CGROUP_IO', `${this.target}/memory.events has no oom_kill line; is the memory controller enabled for this cgroup?`, {
        detail: { path: this.target },
      });
    }
    return n;
  }
}
