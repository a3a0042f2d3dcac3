/**
 * A typed client of the node agent's API (docs/PROTOCOL.md, "Node agent API", version 1), for the
 * platform, the profiler and the benchmarks. One HTTP request per call over the agent's unix
 * socket (connections are reused); an error answer becomes an {@link EphemeraError} with the agent's own code.
 */
import { Agent, request } from 'node:http';

import { ERROR_CODES, EphemeraError, type ErrorCode } from '../core/errors.js';
import type { Usage } from '../manager/types.js';
import {
  API_PREFIX,
  type ActionReply,
  type ContainerCreated,
  type ContainerView,
  type CreateContainerRequest,
  type ErrorBody,
  type EventReply,
  type InitRequest,
  type NodeEventsReply,
  type NodeInfo,
  type RegisterRequest,
  type RunReply,
  type RunRequest,
} from './api.js';

export interface NodeClientOptions {
  /** Timeout of a call other than run and create, in ms. @default 30000 */
  readonly timeoutMs?: number;
}

export class NodeClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;
  /**
   * Connections kept open between calls (the platform runs every activation through here, and a
   * connect per call was a measurable part of a warm invoke). Idle ones do not keep the process
   * alive, and they are let go before the agent's server would close them (its Keep-Alive hint).
   */
  readonly #agent = new Agent({ keepAlive: true });

  /** @param socketPath `<state-dir>/node.sock` of a running `ephemera node` */
  constructor(socketPath: string, options: NodeClientOptions = {}) {
    this.socketPath = socketPath;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  node(): Promise<NodeInfo> {
    return this.#call('GET', '/node');
  }

  /** Creates and starts a function container; resolves once its runtime answers. */
  createContainer(req: CreateContainerRequest): Promise<ContainerCreated> {
    return this.#call('POST', '/containers', req, 120_000);
  }

  /** Journal entries numbered after `after` (moves, shortfalls, OOM kills), oldest first. */
  events(after: number, limit = 500): Promise<NodeEventsReply> {
    return this.#call('GET', `/events?after=${String(after)}&limit=${String(limit)}`);
  }

  listContainers(tenant?: string): Promise<ContainerView[]> {
    return this.#call('GET', `/containers${tenant === undefined ? '' : `?tenant=${encodeURIComponent(tenant)}`}`);
  }

  /** OpenWhisk's /init; the runtime's answer comes back as it was (a 403 or 502 is not thrown). */
  init(id: string, req: InitRequest): Promise<ActionReply> {
    return this.#call('POST', `/containers/${encodeURIComponent(id)}/init`, req, 5 * 60_000 + 5000);
  }

  /** OpenWhisk's /run, wrapped in the Manager's invocation events; waits up to `timeoutMs` plus a margin. */
  run(id: string, req: RunRequest): Promise<RunReply> {
    return this.#call('POST', `/containers/${encodeURIComponent(id)}/run`, req, (req.timeoutMs ?? 60_000) + 30_000);
  }

  async removeContainer(id: string): Promise<void> {
    await this.#call('DELETE', `/containers/${encodeURIComponent(id)}`, undefined, 60_000);
  }

  register(id: string, req: RegisterRequest): Promise<ContainerView> {
    return this.#call('POST', `/containers/${encodeURIComponent(id)}/register`, req);
  }

  async forget(id: string): Promise<void> {
    await this.#call('POST', `/containers/${encodeURIComponent(id)}/forget`);
  }

  invocationStart(id: string): Promise<EventReply> {
    return this.#call('POST', `/containers/${encodeURIComponent(id)}/invocations/start`);
  }

  invocationEnd(id: string, used?: Usage): Promise<EventReply> {
    return this.#call('POST', `/containers/${encodeURIComponent(id)}/invocations/end`, used === undefined ? {} : { used });
  }

  #call<T>(method: string, path: string, body?: unknown, timeoutMs = this.#timeoutMs): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(payload.length) };
    const where = `${method} ${API_PREFIX}${path.split('?')[0] ?? path}`;
    return new Promise<T>((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path: `${API_PREFIX}${path}`, method, headers, agent: this.#agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(unreachable(`${where}: the answer broke off (${e.message})`, e)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            reject(unreachable(`${where} answered ${status} with a body that is not JSON: ${text.slice(0, 200)}`));
            return;
          }
          if (status >= 200 && status < 300) resolve(parsed as T);
          else reject(fromErrorBody(where, status, parsed));
        });
      });
      req.on('timeout', () => req.destroy(unreachable(`${where} got no answer from ${this.socketPath} within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        reject(e instanceof EphemeraError ? e : unreachable(`cannot reach the node agent on ${this.socketPath} (${e.code ?? e.message}); is \`ephemera node\` running with that --state-dir?`, e));
      });
      req.end(payload);
    });
  }
}

function unreachable(message: string, cause?: unknown): EphemeraError {
  return new EphemeraError('EPH_NODE_UNREACHABLE', message, cause === undefined ? {} : { cause });
}

function fromErrorBody(where: string, status: number, body: unknown): EphemeraError {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  if (e === undefined || typeof e.code !== 'string' || typeof e.message !== 'string') {
    return unreachable(`${where} answered ${status} without an error body: ${JSON.stringify(body ?? null).slice(0, 200)}`);
  }
  const code: ErrorCode = Object.hasOwn(ERROR_CODES, e.code) ? (e.code as ErrorCode) : 'EPH_NODE_UNREACHABLE';
  return new EphemeraError(code, e.message, { detail: { ...e.detail, status, ...(code !== e.code ? { agentCode: e.code } : {}) } });
}
