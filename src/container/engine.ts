/**
 * A small client of the Docker Engine API on its unix socket, for what Ephemera does with
 * containers: import a locally built image, run a function instance under a memory limit and a
 * CPU set, change the limit while it runs, wait for it, read its output and whether the kernel
 * OOM-killed it, and remove it. The evaluation harness and the Tenant Manager both use it.
 *
 * Plain `node:http` over the socket; no SDK. Paths carry no API version, so the engine answers
 * with its own (Debian's docker.io 20.10 speaks 1.41).
 */
import { request, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';

import { EphemeraError } from '../core/errors.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** A mount of the container, in the Engine API's own terms. */
export type MountSpec =
  | { readonly type: 'bind'; readonly source: string; readonly target: string; readonly readOnly?: boolean }
  | { readonly type: 'tmpfs'; readonly target: string; readonly sizeBytes?: number; readonly mode?: number };

export interface ContainerSpec {
  readonly image: string;
  readonly cmd: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Memory limit in bytes. */
  readonly memory?: number;
  /** Memory plus swap in bytes; equal to `memory` means no swap. @default memory (no swap) */
  readonly memorySwap?: number;
  /** CPUs the container may run on, cpuset syntax ("1", "0-1"). */
  readonly cpuset?: string;
  readonly mounts?: readonly MountSpec[];
  readonly workingDir?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** Let the container use ptrace (strace) on its own processes. @default false */
  readonly allowPtrace?: boolean;
  /**
   * Let the container lock memory beyond its memlock ulimit (CAP_IPC_LOCK): ephemerad locks its
   * working set before its OOM guard is set. Locked pages are charged to the container's own
   * cgroup, so this takes nothing from anyone else. @default false
   */
  readonly allowMemoryLock?: boolean;
  /**
   * Run the engine's minimal init (tini, `docker run --init`) as the container's pid 1, above the
   * command: a process that is pid 1 of its pid namespace ignores a SIGKILL sent from inside it,
   * and ephemerad may have to kill the function itself (daemon/guardlease.h). @default false
   */
  readonly init?: boolean;
  readonly name?: string;
  /** The cgroup under which the engine puts the container's own (`--cgroup-parent`). */
  readonly cgroupParent?: string;
  /** CPU time the container may use, in CPUs (`--cpus`, may be fractional). */
  readonly cpus?: number;
}

/** A container as `GET /containers/json` lists it. */
export interface ContainerSummary {
  readonly id: string;
  readonly name: string;
  readonly running: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ContainerState {
  readonly id: string;
  readonly running: boolean;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  /** The container's init process on the host, 0 when not running. */
  readonly pid: number;
  readonly memory: number;
  readonly memorySwap: number;
  readonly cpuset: string;
}

export interface ContainerLogs {
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunResult extends ContainerLogs {
  readonly id: string;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  /** Wall-clock time from start request to exit, in milliseconds (includes container start). */
  readonly wallMs: number;
  /** True when the container was killed because it ran past `timeoutMs`. */
  readonly timedOut: boolean;
}

/** The seam the harness and the Tenant Manager depend on; {@link DockerEngine} implements it. */
export interface EngineInfo {
  readonly serverVersion: string;
  readonly storageDriver: string;
  readonly cgroupVersion: string;
  readonly kernelVersion: string;
}

export interface ContainerEngine {
  ping(): Promise<{ apiVersion: string }>;
  info(): Promise<EngineInfo>;
  hasImage(ref: string): Promise<boolean>;
  importImage(rootfsTar: Readable, repo: string, tag: string): Promise<void>;
  removeImage(ref: string): Promise<void>;
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  update(id: string, limits: { memory: number; memorySwap?: number }): Promise<void>;
  wait(id: string, timeoutMs?: number): Promise<{ exitCode: number; timedOut: boolean }>;
  kill(id: string, signal?: string): Promise<void>;
  logs(id: string): Promise<ContainerLogs>;
  inspect(id: string): Promise<ContainerState>;
  remove(id: string): Promise<void>;
  /** Containers (running or not) that carry every one of `labels` (`key=value`). */
  list(labels: readonly string[]): Promise<ContainerSummary[]>;
  /**
   * The container's output from now on, as it is written: `onChunk` gets each piece with its
   * stream. Resolves once the engine streams; the returned function stops following.
   */
  followLogs(id: string, onChunk: (stream: 'stdout' | 'stderr', text: string) => void): Promise<() => void>;
  /** create + start + wait + logs + inspect + remove, with the container always removed. */
  run(spec: ContainerSpec, options?: { timeoutMs?: number }): Promise<RunResult>;
}

interface RawInspect {
  Id?: string;
  State?: { Running?: boolean; ExitCode?: number; OOMKilled?: boolean; Pid?: number };
  HostConfig?: { Memory?: number; MemorySwap?: number; CpusetCpus?: string };
}

interface Reply {
  status: number;
  body: Buffer;
}

export interface DockerEngineOptions {
  /** @default '/var/run/docker.sock' */
  readonly socketPath?: string;
  /** Timeout of one ordinary API call, in ms (not of `wait`). @default 30000 */
  readonly timeoutMs?: number;
}

export class DockerEngine implements ContainerEngine {
  readonly socketPath: string;
  readonly #timeoutMs: number;

  constructor(options: DockerEngineOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_DOCKER_SOCKET;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** @throws {EphemeraError} `EPH_DOCKER_API` when no engine answers on the socket. */
  async ping(): Promise<{ apiVersion: string }> {
    const r = await this.#call('GET', '/version');
    const v = JSON.parse(r.body.toString('utf8')) as { ApiVersion?: string };
    return { apiVersion: v.ApiVersion ?? 'unknown' };
  }

  async info(): Promise<EngineInfo> {
    const r = await this.#call('GET', '/info');
    const v = JSON.parse(r.body.toString('utf8')) as { ServerVersion?: string; Driver?: string; CgroupVersion?: string; KernelVersion?: string };
    return { serverVersion: v.ServerVersion ?? '?', storageDriver: v.Driver ?? '?', cgroupVersion: v.CgroupVersion ?? '?', kernelVersion: v.KernelVersion ?? '?' };
  }

  async hasImage(ref: string): Promise<boolean> {
    const r = await this.#call('GET', `/images/${encodeURIComponent(ref)}/json`, undefined, [200, 404]);
    return r.status === 200;
  }

  /**
   * Imports a root file system tar as image `repo:tag` (`docker import`).
   * @throws {EphemeraError} `EPH_DOCKER_API` when the engine rejects the stream.
   */
  async importImage(rootfsTar: Readable, repo: string, tag: string): Promise<void> {
    const path = `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}`;
    const r = await this.#send('POST', path, { 'content-type': 'application/x-tar' }, rootfsTar, 0);
    // The answer is a stream of JSON progress objects; a failure arrives as one with "error".
    for (const line of r.body.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      const msg = JSON.parse(line) as { error?: string };
      if (msg.error !== undefined) throw apiError(`importing image ${repo}:${tag} failed: ${msg.error}`, r.status);
    }
    if (!(await this.hasImage(`${repo}:${tag}`))) throw apiError(`image ${repo}:${tag} is missing right after its import`, r.status);
  }

  async removeImage(ref: string): Promise<void> {
    await this.#call('DELETE', `/images/${encodeURIComponent(ref)}?force=true`, undefined, [200, 404]);
  }

  /** @returns the new container's id */
  async create(spec: ContainerSpec): Promise<string> {
    const mounts = (spec.mounts ?? []).map((m) =>
      m.type === 'bind'
        ? { Type: 'bind', Source: m.source, Target: m.target, ReadOnly: m.readOnly ?? false }
        : { Type: 'tmpfs', Target: m.target, TmpfsOptions: { ...(m.sizeBytes !== undefined ? { SizeBytes: m.sizeBytes } : {}), Mode: m.mode ?? 0o1777 } },
    );
    const hostConfig: Record<string, unknown> = {
      NetworkMode: 'none',
      Mounts: mounts,
      ...(spec.memory !== undefined ? { Memory: spec.memory, MemorySwap: spec.memorySwap ?? spec.memory } : {}),
      ...(spec.cpuset !== undefined ? { CpusetCpus: spec.cpuset } : {}),
      ...(spec.allowPtrace === true || spec.allowMemoryLock === true
        ? { CapAdd: [...(spec.allowPtrace === true ? ['SYS_PTRACE'] : []), ...(spec.allowMemoryLock === true ? ['IPC_LOCK'] : [])] }
        : {}),
      ...(spec.cgroupParent !== undefined ? { CgroupParent: spec.cgroupParent } : {}),
      ...(spec.init === true ? { Init: true } : {}),
      ...(spec.cpus !== undefined ? { NanoCpus: Math.round(spec.cpus * 1e9) } : {}),
    };
    const body = {
      Image: spec.image,
      Cmd: spec.cmd,
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      WorkingDir: spec.workingDir ?? '/',
      Labels: spec.labels ?? {},
      NetworkDisabled: true,
      AttachStdout: false,
      AttachStderr: false,
      HostConfig: hostConfig,
    };
    const name = spec.name !== undefined ? `?name=${encodeURIComponent(spec.name)}` : '';
    const r = await this.#call('POST', `/containers/create${name}`, body, [201]);
    return (JSON.parse(r.body.toString('utf8')) as { Id: string }).Id;
  }

  async start(id: string): Promise<void> {
    await this.#call('POST', `/containers/${id}/start`, undefined, [204, 304]);
  }

  /**
   * Changes the memory limit of a running container. Memory and swap always travel together so
   * the engine orders the two kernel writes itself; `memorySwap` defaults to `memory` (no swap).
   * @throws {EphemeraError} `EPH_DOCKER_API` when the engine or the kernel refuses the new limit.
   */
  async update(id: string, limits: { memory: number; memorySwap?: number }): Promise<void> {
    await this.#call('POST', `/containers/${id}/update`, { Memory: limits.memory, MemorySwap: limits.memorySwap ?? limits.memory });
  }

  async wait(id: string, timeoutMs?: number): Promise<{ exitCode: number; timedOut: boolean }> {
    const waiting = this.#send('POST', `/containers/${id}/wait`, {}, undefined, 0).then((r) => {
      if (r.status !== 200) throw apiError(`waiting for container ${id} failed: ${r.body.toString('utf8').trim()}`, r.status);
      return (JSON.parse(r.body.toString('utf8')) as { StatusCode: number }).StatusCode;
    });
    if (timeoutMs === undefined) return { exitCode: await waiting, timedOut: false };
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const first = await Promise.race([waiting, expired]);
      if (first !== 'timeout') return { exitCode: first, timedOut: false };
      await this.kill(id);
      return { exitCode: await waiting, timedOut: true };
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(id: string, signal = 'KILL'): Promise<void> {
    // 409: the container is not running any more, which is what we wanted.
    await this.#call('POST', `/containers/${id}/kill?signal=${encodeURIComponent(signal)}`, undefined, [204, 409]);
  }

  async logs(id: string): Promise<ContainerLogs> {
    const r = await this.#call('GET', `/containers/${id}/logs?stdout=true&stderr=true`);
    return demuxLogs(r.body);
  }

  async inspect(id: string): Promise<ContainerState> {
    const r = await this.#call('GET', `/containers/${id}/json`);
    const raw = JSON.parse(r.body.toString('utf8')) as RawInspect;
    return {
      id: raw.Id ?? id,
      running: raw.State?.Running ?? false,
      exitCode: raw.State?.ExitCode ?? -1,
      oomKilled: raw.State?.OOMKilled ?? false,
      pid: raw.State?.Pid ?? 0,
      memory: raw.HostConfig?.Memory ?? 0,
      memorySwap: raw.HostConfig?.MemorySwap ?? 0,
      cpuset: raw.HostConfig?.CpusetCpus ?? '',
    };
  }

  async remove(id: string): Promise<void> {
    await this.#call('DELETE', `/containers/${id}?force=true&v=true`, undefined, [204, 404]);
  }

  async list(labels: readonly string[]): Promise<ContainerSummary[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: labels }));
    const r = await this.#call('GET', `/containers/json?all=true&filters=${filters}`);
    const raw = JSON.parse(r.body.toString('utf8')) as { Id: string; Names?: string[]; State?: string; Labels?: Record<string, string> }[];
    return raw.map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? '').replace(/^\//, ''), running: c.State === 'running', labels: c.Labels ?? {} }));
  }

  followLogs(id: string, onChunk: (stream: 'stdout' | 'stderr', text: string) => void): Promise<() => void> {
    const since = Math.floor(Date.now() / 1000) - 1;
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, path: `/containers/${id}/logs?follow=true&stdout=true&stderr=true&since=${since}`, method: 'GET', agent: false },
        (res: IncomingMessage) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(apiError(`following the logs of container ${id} answered ${String(res.statusCode)}`, res.statusCode ?? 0));
            return;
          }
          const demux = new LogDemuxer(onChunk);
          res.on('data', (c: Buffer) => {
            demux.push(c);
          });
          res.on('error', () => undefined);
          resolve(() => req.destroy());
        },
      );
      req.on('error', (e) => {
        reject(apiError(`cannot follow the logs of container ${id}: ${e.message}`, 0));
      });
      req.end();
    });
  }

  async run(spec: ContainerSpec, options: { timeoutMs?: number } = {}): Promise<RunResult> {
    const id = await this.create(spec);
    try {
      const t0 = performance.now();
      await this.start(id);
      const { exitCode, timedOut } = await this.wait(id, options.timeoutMs);
      const wallMs = performance.now() - t0;
      const [logs, state] = await Promise.all([this.logs(id), this.inspect(id)]);
      return { id, exitCode, oomKilled: state.oomKilled, wallMs, timedOut, ...logs };
    } finally {
      await this.remove(id);
    }
  }

  #call(method: string, path: string, body?: unknown, ok: readonly number[] = [200, 201, 204]): Promise<Reply> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(payload.length) };
    return this.#send(method, path, headers, payload, this.#timeoutMs).then((r) => {
      if (!ok.includes(r.status)) {
        let message = r.body.toString('utf8').trim();
        try {
          message = (JSON.parse(message) as { message?: string }).message ?? message;
        } catch {
          // not JSON: keep the raw text
        }
        throw apiError(`${method} ${path.split('?')[0] ?? path} answered ${r.status}: ${message}`, r.status);
      }
      return r;
    });
  }

  #send(method: string, path: string, headers: Record<string, string>, body: Buffer | Readable | undefined, timeoutMs: number): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      // agent: false: Node's global agent keeps sockets alive with a 5 s idle timeout, which would
      // cut off long requests (an image import, a wait) that legitimately stay silent.
      const req = request({ socketPath: this.socketPath, path, method, headers, agent: false, ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}) }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      if (timeoutMs > 0) req.on('timeout', () => req.destroy(apiError(`${method} ${path} got no answer within ${timeoutMs} ms`, 0)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof EphemeraError) reject(e);
        else
          reject(
            new EphemeraError('EPH_DOCKER_API', `the Docker engine on ${this.socketPath} could not be reached (${e.code ?? e.message}); start it with scripts/docker.sh ensure`, {
              cause: e,
              detail: { socketPath: this.socketPath },
            }),
          );
      });
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (e) => req.destroy(e));
        body.pipe(req);
      }
    });
  }
}

function apiError(message: string, status: number): EphemeraError {
  return new EphemeraError('EPH_DOCKER_API', message, { detail: { status } });
}

/**
 * Splits a multiplexed log stream that arrives in pieces (a frame may span several chunks); the
 * framing is the one {@link demuxLogs} reads.
 */
export class LogDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  readonly #onChunk: (stream: 'stdout' | 'stderr', text: string) => void;

  constructor(onChunk: (stream: 'stdout' | 'stderr', text: string) => void) {
    this.#onChunk = onChunk;
  }

  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let off = 0;
    while (off + 8 <= this.#pending.length) {
      const len = this.#pending.readUInt32BE(off + 4);
      if (off + 8 + len > this.#pending.length) break;
      const stream = this.#pending[off] === 2 ? 'stderr' : 'stdout';
      this.#onChunk(stream, this.#pending.subarray(off + 8, off + 8 + len).toString('utf8'));
      off += 8 + len;
    }
    this.#pending = this.#pending.subarray(off);
  }
}

/**
 * Splits the multiplexed log stream of a container without a TTY: frames of an 8-byte header
 * (stream 1 = stdout, 2 = stderr; big-endian length at offset 4) and the payload.
 */
export function demuxLogs(buf: Buffer): ContainerLogs {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const stream = buf[off];
    const len = buf.readUInt32BE(off + 4);
    const frame = buf.subarray(off + 8, off + 8 + len);
    (stream === 2 ? err : out).push(frame);
    off += 8 + len;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
