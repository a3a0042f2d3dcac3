/**
 * The seam between the control plane and whatever enforces an instance's memory limit.
 *
 * The Tenant Manager, `ephemera run --memory` and the benchmarks only ever talk to a
 * {@link MemoryLimiter}; the cgroup v1, cgroup v2 and Docker Engine implementations live beside
 * this file. One limiter governs exactly one function instance.
 */

/** Which mechanism enforces the limit. */
export type LimiterKind = 'cgroup-v1' | 'cgroup-v2' | 'docker';

export interface MemoryLimiter {
  readonly kind: LimiterKind;
  /** What the limiter acts on: a cgroup directory or a container id. */
  readonly target: string;

  /**
   * The enforced memory limit in bytes, or `null` when the instance is unlimited.
   * @throws {EphemeraError} `EPH_CGROUP_IO` or `EPH_DOCKER_API` when it cannot be read.
   */
  getLimit(): Promise<number | null>;

  /**
   * Sets the memory limit and keeps swap at zero, so the limit is a limit on RAM.
   * `null` removes the limit where the mechanism allows it.
   *
   * This is the raw operation. To resize an instance that runs an ephemerad, use
   * `resizeInstance` (resize.ts), which orders it against the daemon.
   * @throws {EphemeraError} `EPH_LIMIT_INVALID` for a value that is not a positive integer,
   *   `EPH_LIMIT_BELOW_USAGE` when the kernel refuses a limit below what is in use (cgroup v1).
   */
  setLimit(bytes: number | null): Promise<void>;

  /** Memory charged to the instance now, in bytes (anonymous, page cache, shmem and memfds). */
  getUsage(): Promise<number>;

  /** The highest usage seen, in bytes, or `null` when the mechanism does not record it. */
  getPeak(): Promise<number | null>;

  /** How many processes of the instance the kernel's OOM killer has killed so far. */
  oomKills(): Promise<number>;
}

/** Limits at or above this are the kernel's "unlimited" (v1 reports PAGE_COUNTER_MAX pages). */
export const UNLIMITED_THRESHOLD = 2 ** 62;
