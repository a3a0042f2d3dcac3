/**
 * What the node agent uses to run and talk to one tenant's Manager process: {@link spawnManager}
 * starts `main.js` as a child and waits for its ready line; {@link ManagerClient} speaks the HTTP API
 * of docs/PROTOCOL.md ("Tenant Manager process") over the unix socket, one keep-alive connection,
 * every request bounded by a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ERROR_CODES, EphemeraError, type ErrorCode } from '../core/errors.js';
import { EVENTS_SOCKET_NAME, LineClient } from './lines.js';
import { MANAGER_API_VERSION } from './server.js';
import type { ContainerStanding, LiveContainer, ManagerConfig, ManagerEvent, ManagerSnapshot, Move } from './types.js';

/** The compiled entry the child runs. */
export const MANAGER_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface ManagerClientOptions {
  /** Fail a request that got no complete reply after this long. @default 5000 */
  readonly requestTimeoutMs?: number;
}

export interface Hello {
  readonly version: number;
  readonly pid: number;
  readonly tenant: string;
  readonly sharing: string;
  readonly lendWhileIdle: boolean;
}

/** The reply to an event: the moves in the order to carry them out, and the core's own time. */
export interface ApplyReply {
  readonly moves: readonly Move[];
  /** How long `apply` took inside the Manager process, in nanoseconds. */
  readonly decisionNs: number;
  /** The event's container's standing after the event (events that name one by `id`, while it is held). */
  readonly standing?: ContainerStanding;
  /** The tenant is quiet after the event: no container needs memory, no failed move to repair. */
  readonly quiet?: boolean;
}

/** The reply to a pair of events: the second is absent when the first decided moves. */
export interface PairReply {
  readonly first: ApplyReply;
  readonly second?: ApplyReply;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A client for one Manager process's socket. Requests may overlap; the Manager handles them in order. */
export class ManagerClient {
  readonly socketPath: string;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  /** Events and pairs go by the event channel beside the socket (lines.ts): a fraction of HTTP's cost. */
  readonly #lines: LineClient;
  #closed = false;

  constructor(socketPath: string, options: ManagerClientOptions = {}) {
    this.socketPath = socketPath;
    this.#timeoutMs = options.requestTimeoutMs ?? 5000;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.#lines = new LineClient(join(dirname(socketPath), EVENTS_SOCKET_NAME), this.#timeoutMs);
  }

  /** Checks that a Manager of this API version answers. @throws EphemeraError `EPH_MANAGER_PROTOCOL` on a version mismatch */
  async hello(): Promise<Hello> {
    const body = await this.#call('GET', '/hello', undefined);
    if (!isRecord(body) || body['version'] !== MANAGER_API_VERSION || typeof body['tenant'] !== 'string') {
      throw new EphemeraError('EPH_MANAGER_PROTOCOL', `${this.socketPath} answered hello with ${JSON.stringify(body)}, not a version-${String(MANAGER_API_VERSION)} Manager; rebuild both sides with make`);
    }
    return body as unknown as Hello;
  }

  /** Sends one event; resolves with the moves to carry out, in order. */
  async apply(event: ManagerEvent, now: number = Date.now()): Promise<ApplyReply> {
    const body = await this.#lines.call('event', { event, now });
    if (!isRecord(body) || !Array.isArray(body['moves']) || typeof body['decisionNs'] !== 'number') {
      throw new EphemeraError('EPH_MANAGER_PROTOCOL', `malformed reply to an event: ${JSON.stringify(body).slice(0, 200)}`);
    }
    return body as unknown as ApplyReply;
  }

  /**
   * Sends two events in one round trip (an invocation's start and its end); the Manager applies the
   * second only if the first decided no move, so the order of events and batches is as if sent apart.
   */
  async applyPair(first: ManagerEvent, firstNow: number, second: ManagerEvent, secondNow: number = Date.now()): Promise<PairReply> {
    const body = await this.#lines.call('pair', { first: { event: first, now: firstNow }, second: { event: second, now: secondNow } });
    const ok = (r: unknown): boolean => isRecord(r) && Array.isArray(r['moves']) && typeof r['decisionNs'] === 'number';
    if (!isRecord(body) || !ok(body['first']) || (body['second'] !== undefined && !ok(body['second']))) {
      throw new EphemeraError('EPH_MANAGER_PROTOCOL', `malformed reply to a pair of events: ${JSON.stringify(body).slice(0, 200)}`);
    }
    return body as unknown as PairReply;
  }

  async snapshot(): Promise<ManagerSnapshot> {
    const body = await this.#call('GET', '/snapshot', undefined);
    if (!isRecord(body) || !Array.isArray(body['containers'])) {
      throw new EphemeraError('EPH_MANAGER_PROTOCOL', `malformed snapshot: ${JSON.stringify(body).slice(0, 200)}`);
    }
    return body as unknown as ManagerSnapshot;
  }

  /** Rebuilds the Manager from the live containers; resolves with the moves that restore every quota. */
  async recover(live: readonly LiveContainer[]): Promise<readonly Move[]> {
    const body = await this.#call('POST', '/recover', { live });
    if (!isRecord(body) || !Array.isArray(body['moves'])) {
      throw new EphemeraError('EPH_MANAGER_PROTOCOL', `malformed reply to recover: ${JSON.stringify(body).slice(0, 200)}`);
    }
    return body['moves'] as Move[];
  }

  /** Closes the connection; later requests fail with `EPH_MANAGER_UNAVAILABLE`. */
  close(): void {
    this.#closed = true;
    this.#agent.destroy();
    this.#lines.close();
  }

  #call(method: 'GET' | 'POST', path: string, payload: unknown): Promise<unknown> {
    const route = `/v${String(MANAGER_API_VERSION)}${path}`;
    if (this.#closed) return Promise.reject(new EphemeraError('EPH_MANAGER_UNAVAILABLE', `${method} ${route}: this client of ${this.socketPath} is closed`));
    const data = payload === undefined ? undefined : JSON.stringify(payload);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: EphemeraError | undefined, value?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err === undefined) resolve(value);
        else reject(err);
      };
      const req = request(
        {
          socketPath: this.socketPath,
          agent: this.#agent,
          method,
          path: route,
          headers: data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => {
            finish(new EphemeraError('EPH_MANAGER_UNAVAILABLE', `${method} ${route} on ${this.socketPath}: the reply broke off: ${err.message}`, { cause: err }));
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              finish(new EphemeraError('EPH_MANAGER_PROTOCOL', `${method} ${route}: the reply is not JSON (status ${String(res.statusCode)}): ${JSON.stringify(text.slice(0, 200))}`));
              return;
            }
            if (res.statusCode === 200) {
              finish(undefined, body);
              return;
            }
            const code = isRecord(body) && typeof body['code'] === 'string' && body['code'] in ERROR_CODES ? (body['code'] as ErrorCode) : 'EPH_MANAGER_PROTOCOL';
            const message = isRecord(body) && typeof body['message'] === 'string' ? body['message'] : text.slice(0, 200);
            finish(new EphemeraError(code, message, { detail: { status: res.statusCode, route } }));
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        finish(new EphemeraError('EPH_MANAGER_TIMEOUT', `${method} ${route} on ${this.socketPath} got no reply within ${String(this.#timeoutMs)} ms; the Manager is stuck or gone: restart it and recover`));
      }, this.#timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        finish(
          new EphemeraError('EPH_MANAGER_UNAVAILABLE', `${method} ${route}: cannot reach the Manager at ${this.socketPath}: ${err.code ?? err.message}; is its process running?`, { cause: err }),
        );
      });
      req.end(data);
    });
  }
}

export interface SpawnManagerOptions {
  readonly config: ManagerConfig;
  /** The Manager's own socket directory (created 0700). */
  readonly socketDir: string;
  /** Give up if the ready line has not come after this long. @default 10000 */
  readonly startTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** The child's extra environment (e.g. EPH_MANAGER_LOG=info). */
  readonly env?: NodeJS.ProcessEnv;
}

/** A running Manager process and a client connected to it. */
export interface ManagerProcess {
  readonly pid: number;
  readonly socketPath: string;
  readonly client: ManagerClient;
  /** Resolves with the exit code (or the signal's name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<number | string>;
  /** SIGKILL at once (what a crash looks like); resolves once it is gone. */
  kill(): Promise<number | string>;
}

/**
 * Starts one tenant's Manager as a child process and waits until it answers.
 * @throws EphemeraError `EPH_MANAGER_START` when it exits or stays silent past the timeout (its
 *   stderr is in the message)
 */
export async function spawnManager(opts: SpawnManagerOptions): Promise<ManagerProcess> {
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  const child = spawn(process.execPath, [MANAGER_MAIN, opts.socketDir, JSON.stringify(opts.config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => {
    if (stderr.length < 16_384) stderr += c;
  });
  // 'close', not 'exit': it comes once stderr is drained too, so a start failure carries its reason.
  const exited = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const ready = await waitReady(child, timeoutMs, exited, () => stderr).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw err;
  });
  const client = new ManagerClient(ready.socket, opts.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: opts.requestTimeoutMs });
  const pid = child.pid ?? ready.pid;
  const stop = async (graceMs = 5000): Promise<number | string> => {
    client.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const how = await exited;
      clearTimeout(timer);
      return how;
    }
    return exited;
  };
  const kill = async (): Promise<number | string> => {
    client.close();
    child.kill('SIGKILL');
    return exited;
  };
  return { pid, socketPath: ready.socket, client, exited, stop, kill };
}

function waitReady(child: ChildProcess, timeoutMs: number, exited: Promise<number | string>, stderr: () => string): Promise<{ socket: string; pid: number }> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new EphemeraError('EPH_MANAGER_START', `the Manager process printed no ready line within ${String(timeoutMs)} ms; stderr: ${stderr().trim() || '(empty)'}`));
    }, timeoutMs);
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new EphemeraError('EPH_MANAGER_START', `the Manager process exited (${String(how)}) before it was ready: ${stderr().trim() || '(no stderr)'}`));
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (c: string) => {
      out += c;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      let line: unknown;
      try {
        line = JSON.parse(out.slice(0, nl));
      } catch {
        line = undefined;
      }
      if (isRecord(line) && line['ready'] === true && typeof line['socket'] === 'string' && typeof line['pid'] === 'number') {
        resolve({ socket: line['socket'], pid: line['pid'] });
      } else {
        reject(new EphemeraError('EPH_MANAGER_START', `the Manager process's first line is not its ready line: ${JSON.stringify(out.slice(0, 200))}`));
      }
    });
  });
}
