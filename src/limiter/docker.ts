/**
 * {@link MemoryLimiter} for a Docker container, through the container component's Engine client.
 *
 * Limits are set with `POST /containers/{id}/update` carrying `Memory` and `MemorySwap` together
 * and equal: Docker then orders the two kernel writes itself, and the container gets no swap.
 * Usage, peak and OOM kills come from the container's own memory cgroup, found through its init
 * pid: the Tenant Manager runs on the same node, and the cgroup is exact where Docker's stats
 * are sampled. When the container is not running, only Docker's OOM flag is left.
 */
import { EphemeraError, isEphemeraError } from '../core/errors.js';
import type { ContainerEngine } from '../container/engine.js';
import { CgroupV1Limiter } from './cgroup-v1.js';
import { CgroupV2Limiter } from './cgroup-v2.js';
import { checkLimit } from './cgroupfs.js';
import { findMemoryCgroup, type FindOptions } from './detect.js';
import type { MemoryLimiter } from './limiter.js';

export interface DockerLimiterOptions {
  /** Where proc is mounted, to find the container's cgroup. @default '/proc' */
  readonly procRoot?: string;
}

export class DockerLimiter implements MemoryLimiter {
  readonly kind = 'docker' as const;
  readonly target: string;
  readonly #engine: ContainerEngine;
  readonly #find: FindOptions;

  /** @param container id or name of the container */
  constructor(engine: ContainerEngine, container: string, options: DockerLimiterOptions = {}) {
    this.#engine = engine;
    this.target = container;
    this.#find = options.procRoot === undefined ? {} : { procRoot: options.procRoot };
  }

  async getLimit(): Promise<number | null> {
    const { memory } = await this.#engine.inspect(this.target);
    return memory > 0 ? memory : null;
  }

  async setLimit(bytes: number | null): Promise<void> {
    checkLimit(bytes, `container ${this.target}`);
    if (bytes === null) {
      throw new EphemeraError('EPH_LIMIT_INVALID', `Docker cannot remove the memory limit of running container ${this.target}; set a large limit instead`, {
        detail: { target: this.target },
      });
    }
    try {
      await this.#engine.update(this.target, { memory: bytes, memorySwap: bytes });
    } catch (err) {
      // runc relays the kernel's EBUSY (cgroup v1) as text; resizeInstance retries on this code.
      if (isEphemeraError(err, 'EPH_DOCKER_API') && /unable to set memory limit|device or resource busy/i.test(err.message)) {
        throw new EphemeraError('EPH_LIMIT_BELOW_USAGE', `Docker could not lower container ${this.target} to ${bytes} bytes: more memory is in use than that and cannot be reclaimed; evict first (ephemera ctl SOCKET shrink) or choose a higher limit (${err.message.trim()})`, {
          cause: err,
          detail: { container: this.target, bytes },
        });
      }
      throw err;
    }
  }

  async getUsage(): Promise<number> {
    return (await this.#cgroup('usage')).getUsage();
  }

  async getPeak(): Promise<number | null> {
    return (await this.#cgroup('peak')).getPeak();
  }

  async oomKills(): Promise<number> {
    const state = await this.#engine.inspect(this.target);
    const cg = state.pid > 0 ? await this.#locate(state.pid) : null;
    if (cg !== null) return cg.oomKills();
    // A stopped container has no cgroup any more; Docker only kept a flag.
    return state.oomKilled ? 1 : 0;
  }

  async #locate(pid: number): Promise<MemoryLimiter | null> {
    try {
      const loc = await findMemoryCgroup({ ...this.#find, pid });
      return loc.version === 1 ? new CgroupV1Limiter(loc.dir) : new CgroupV2Limiter(loc.dir);
    } catch {
      return null;
    }
  }

  async #cgroup(what: string): Promise<MemoryLimiter> {
    const state = await this.#engine.inspect(this.target);
    const cg = state.pid > 0 ? await this.#locate(state.pid) : null;
    if (cg === null) {
      throw new EphemeraError('EPH_DOCKER_API', `cannot read the memory ${what} of container ${this.target}: ${state.running ? `its memory cgroup (init pid ${state.pid}) is not visible from this process; run on the container's node with /proc and /sys/fs/cgroup of the host` : 'it is not running'}`, {
        detail: { container: this.target, pid: state.pid, running: state.running },
      });
    }
    return cg;
  }
}
