/**
 * {@link MemoryLimiter} for a Docker container, through the Engine API on its unix socket.
 *
 * Limits are set with `POST /containers/{id}/update`, always with `Memory` and `MemorySwap`
 * together and equal: Docker then orders the two kernel writes itself, and the container gets no
 * swap. Usage, peak and OOM kills come from the container's own memory cgroup when it is visible
 * from here (the Tenant Manager runs on the same node), which is exact; otherwise from the stats
 * and inspect endpoints.
 */
import { request } from 'node:http';

import { EphemeraError } from '../core/errors.js';
import { CgroupV1Limiter } from './cgroup-v1.js';
import { CgroupV2Limiter } from './cgroup-v2.js';
import { checkLimit } from './cgroupfs.js';
import { findMemoryCgroup } from './detect.js';
import type { MemoryLimiter } from './limiter.js';

export interface DockerLimiterOptions {
  /** The Engine API socket. @default '/var/run/docker.sock' */
  readonly socketPath?: string;
  /** Give up on one API call after this long. @default 10000 */
  readonly timeoutMs?: number;
}

interface Inspect {
  State?: { Pid?: number; Running?: boolean; OOMKilled?: boolean };
  HostConfig?: { Memory?: number; MemorySwap?: number };
}

interface Stats {
  memory_stats?: { usage?: number; max_usage?: number; limit?: number };
}

export class DockerLimiter implements MemoryLimiter {
  readonly kind = 'docker' as const;
  readonly target: string;
  readonly #socketPath: string;
  readonly #timeoutMs: number;

  /** @param container id or name of the container */
  constructor(container: string, options: DockerLimiterOptions = {}) {
    this.target = container;
    this.#socketPath = options.socketPath ?? '/var/run/docker.sock';
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async getLimit(): Promise<number | null> {
    const memory = (await this.#inspect()).HostConfig?.Memory ?? 0;
    return memory > 0 ? memory : null;
  }

  async setLimit(bytes: number | null): Promise<void> {
    checkLimit(bytes, `container ${this.target}`);
    if (bytes === null) {
      throw new EphemeraError('EPH_LIMIT_INVALID', `Docker cannot remove the memory limit of running container ${this.target}; set a large limit instead`, {
        detail: { target: this.target },
      });
    }
    await this.#call('POST', `/containers/${encodeURIComponent(this.target)}/update`, { Memory: bytes, MemorySwap: bytes });
  }

  async getUsage(): Promise<number> {
    const cg = await this.#cgroup();
    if (cg !== null) return cg.getUsage();
    const usage = (await this.#stats()).memory_stats?.usage;
    if (usage === undefined) throw this.#noStats('usage');
    return usage;
  }

  async getPeak(): Promise<number | null> {
    const cg = await this.#cgroup();
    if (cg !== null) return cg.getPeak();
    return (await this.#stats()).memory_stats?.max_usage ?? null;
  }

  async oomKills(): Promise<number> {
    const cg = await this.#cgroup();
    if (cg !== null) return cg.oomKills();
    // Docker only keeps a flag: at least one kill, or none.
    return (await this.#inspect()).State?.OOMKilled === true ? 1 : 0;
  }

  /** The container's memory cgroup as seen from this process, or null when not visible. */
  async #cgroup(): Promise<MemoryLimiter | null> {
    const pid = (await this.#inspect()).State?.Pid ?? 0;
    if (pid <= 0) return null;
    try {
      const loc = await findMemoryCgroup({ pid });
      return loc.version === 1 ? new CgroupV1Limiter(loc.dir) : new CgroupV2Limiter(loc.dir);
    } catch {
      return null;
    }
  }

  #noStats(what: string): EphemeraError {
    return new EphemeraError('EPH_DOCKER_API', `the Docker stats of container ${this.target} carry no memory ${what}; is the container running?`, {
      detail: { container: this.target },
    });
  }

  async #inspect(): Promise<Inspect> {
    return (await this.#call('GET', `/containers/${encodeURIComponent(this.target)}/json`)) as Inspect;
  }

  async #stats(): Promise<Stats> {
    return (await this.#call('GET', `/containers/${encodeURIComponent(this.target)}/stats?stream=false&one-shot=true`)) as Stats;
  }

  #call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.#socketPath,
          path,
          method,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          timeout: this.#timeoutMs,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let parsed: unknown = null;
            try {
              parsed = text === '' ? null : JSON.parse(text);
            } catch {
              // An error page that is not JSON; reported as text below.
            }
            if (status < 200 || status >= 300) {
              const message = typeof parsed === 'object' && parsed !== null && 'message' in parsed ? String(parsed.message) : text.trim();
              reject(
                new EphemeraError('EPH_DOCKER_API', `Docker ${method} ${path} answered ${status}: ${message}`, {
                  detail: { status, message, container: this.target },
                }),
              );
              return;
            }
            resolve(parsed);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (err) => {
        reject(
          new EphemeraError('EPH_DOCKER_API', `cannot reach the Docker Engine at ${this.#socketPath} for ${method} ${path}: ${err.message}; is dockerd running?`, {
            cause: err,
            detail: { socketPath: this.#socketPath, container: this.target },
          }),
        );
      });
      req.end(payload);
    });
  }
}
