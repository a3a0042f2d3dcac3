/**
 * {@link MemoryLimiter} for a cgroup v1 memory controller directory.
 *
 * v1 keeps two limits: `memory.limit_in_bytes` (RAM) and `memory.memsw.limit_in_bytes` (RAM plus
 * swap). The kernel insists that limit ≤ memsw at every moment, so the order of the two writes
 * depends on the direction of the change. Setting both to the same value forbids swap.
 */
import { EphemeraError } from '../core/errors.js';
import { checkLimit, hasControl, readBytes, readCount, readKey, writeControl } from './cgroupfs.js';
import type { MemoryLimiter } from './limiter.js';

export interface CgroupV1Options {
  /** Allow swap (leave memsw alone). @default false */
  readonly swap?: boolean;
}

export class CgroupV1Limiter implements MemoryLimiter {
  readonly kind = 'cgroup-v1' as const;
  readonly target: string;
  readonly #swap: boolean;
  /** Whether the kernel keeps a memsw limit (swap accounting is on): fixed at boot, asked once. */
  #memsw: boolean | undefined;

  /** @param dir absolute path of the cgroup, e.g. /sys/fs/cgroup/memory/ephemera/fn1 */
  constructor(dir: string, options: CgroupV1Options = {}) {
    this.target = dir;
    this.#swap = options.swap ?? false;
  }

  getLimit(): Promise<number | null> {
    return readBytes(this.target, 'memory.limit_in_bytes');
  }

  async setLimit(bytes: number | null): Promise<void> {
    checkLimit(bytes, this.target);
    const value = bytes === null ? '-1' : String(bytes);
    // Without swap accounting (swapaccount=0) there is no memsw file, and nothing more to do.
    this.#memsw ??= await hasControl(this.target, 'memory.memsw.limit_in_bytes');
    if (this.#swap || !this.#memsw) {
      await writeControl(this.target, 'memory.limit_in_bytes', value);
      return;
    }
    const memsw = await readBytes(this.target, 'memory.memsw.limit_in_bytes');
    const growsPastMemsw = memsw !== null && (bytes === null || bytes > memsw);
    if (growsPastMemsw) {
      await writeControl(this.target, 'memory.memsw.limit_in_bytes', value);
      await writeControl(this.target, 'memory.limit_in_bytes', value);
    } else {
      // A refused (EBUSY) lower limit leaves both files as they were.
      await writeControl(this.target, 'memory.limit_in_bytes', value);
      await writeControl(this.target, 'memory.memsw.limit_in_bytes', value);
    }
  }

  getUsage(): Promise<number> {
    return readCount(this.target, 'memory.usage_in_bytes');
  }

  async getPeak(): Promise<number | null> {
    return readCount(this.target, 'memory.max_usage_in_bytes');
  }

  async oomKills(): Promise<number> {
    const n = await readKey(this.target, 'memory.oom_control', 'oom_kill');
    if (n === undefined) {
      throw new EphemeraError('EPH_CGROUP_IO', `${this.target}/memory.oom_control has no oom_kill line; this kernel (older than 4.13) does not count OOM kills per cgroup`, {
        detail: { path: this.target },
      });
    }
    return n;
  }
}
