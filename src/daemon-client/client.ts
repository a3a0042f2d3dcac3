/**
 * A typed client for ephemerad's JSON control protocol (docs/PROTOCOL.md, version 1).
 *
 * One client owns one unix stream connection to `control.sock`. Requests carry increasing ids and
 * are matched to responses by id; lines with an `event` field and no `id` go to subscribers.
 */
import { connect as netConnect, type Socket } from 'node:net';

import { EphemeraError } from '../core/errors.js';
import { parsePeaks, type DaemonPeaks } from './peaks.js';
import { parseStats, type DaemonStats } from './stats.js';

export { parseStats, type DaemonStats } from './stats.js';
export { parsePeaks, type DaemonPeaks } from './peaks.js';

export const PROTOCOL_VERSION = 1;
/** The protocol's limit on one line, in bytes, newline included. */
export const MAX_LINE_BYTES = 64 * 1024;

/** An unsolicited message from a subscription, e.g. `shortfall`. */
export interface DaemonEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

export type ShutdownMode = 'writeback' | 'discard';

export interface ConnectOptions {
  /** Give up connecting after this long. @default 5000 */
  readonly timeoutMs?: number;
  /** Fail a request that has no answer after this long; 0 waits forever. @default 0 */
  readonly requestTimeoutMs?: number;
}

interface Pending {
  readonly op: string;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (err: EphemeraError) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A connection to one daemon's control socket. */
export class DaemonClient {
  readonly #socket: Socket;
  readonly #path: string;
  readonly #requestTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(event: DaemonEvent) => void>();
  #nextId = 1;
  #buffer = '';
  #closedError: EphemeraError | undefined;

  private constructor(socket: Socket, path: string, requestTimeoutMs: number) {
    this.#socket = socket;
    this.#path = path;
    this.#requestTimeoutMs = requestTimeoutMs;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#onData(chunk);
    });
    socket.on('error', (err) => {
      this.#fail(new EphemeraError('EPH_DAEMON_CLOSED', `control connection to ${path} failed: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => {
      this.#fail(
        new EphemeraError('EPH_DAEMON_CLOSED', `control connection to ${path} closed by the daemon; read its log for the reason`),
      );
    });
  }

  /**
   * Connect to `control.sock`.
   *
   * @throws {EphemeraError} `EPH_DAEMON_CONNECT` when the socket cannot be reached in time
   */
  static connect(path: string, options: ConnectOptions = {}): Promise<DaemonClient> {
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ path });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new EphemeraError('EPH_DAEMON_CONNECT', `no answer from control socket ${path} within ${timeoutMs} ms; is the daemon running?`));
      }, timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new EphemeraError(
            'EPH_DAEMON_CONNECT',
            `cannot connect to control socket ${path}: ${err.code ?? err.message}; check the path (it is DIR/control.sock for ephemerad --rundir DIR) and that the daemon runs`,
            { cause: err },
          ),
        );
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new DaemonClient(socket, path, options.requestTimeoutMs ?? 0));
      });
    });
  }

  /** The socket path this client is connected to. */
  get path(): string {
    return this.#path;
  }

  /**
   * Send one request and wait for its response.
   *
   * @param op the operation, e.g. `stats`
   * @param fields the request's other fields (`v`, `id` and `op` are filled in)
   * @returns the `result` object of a successful response
   * @throws {EphemeraError} `EPH_DAEMON_REPLY` with `detail.daemonCode` when the daemon answers with an error;
   *   `EPH_DAEMON_CLOSED`, `EPH_DAEMON_TIMEOUT` or `EPH_DAEMON_PROTOCOL` otherwise
   */
  request(op: string, fields: Readonly<Record<string, unknown>> = {}): Promise<Record<string, unknown>> {
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    const line = JSON.stringify({ ...fields, v: PROTOCOL_VERSION, id, op }) + '\n';
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
      return Promise.reject(
        new EphemeraError('EPH_DAEMON_PROTOCOL', `request '${op}' is ${Buffer.byteLength(line)} bytes, over the ${MAX_LINE_BYTES}-byte line limit`),
      );
    }
    return new Promise((resolve, reject) => {
      const timer =
        this.#requestTimeoutMs > 0
          ? setTimeout(() => {
              this.#pending.delete(id);
              reject(new EphemeraError('EPH_DAEMON_TIMEOUT', `request '${op}' (id ${id}) got no answer from ${this.#path} within ${this.#requestTimeoutMs} ms`));
            }, this.#requestTimeoutMs)
          : undefined;
      this.#pending.set(id, { op, resolve, reject, timer });
      this.#socket.write(line);
    });
  }

  /** @returns the daemon's counters; see {@link DaemonStats} */
  async stats(): Promise<DaemonStats> {
    return parseStats(await this.request('stats'), `${this.#path}: the reply to 'stats'`);
  }

  /**
   * The peaks since the previous reset (or the daemon's start); with `reset`, a new window opens
   * right after they are read, at the bytes there now. The node agent opens one per invocation.
   */
  async peaks(options: { readonly reset?: boolean } = {}): Promise<DaemonPeaks> {
    return parsePeaks(await this.request('peaks', { reset: options.reset === true }), `${this.#path}: the reply to 'peaks'`);
  }

  /**
   * The counters and the window's peaks in one round trip (`stats-peaks`): the counters are read
   * first, then the window's peaks (and, with `reset`, the next window opens). A daemon without
   * the op refuses it with `EPH_DAEMON_REPLY`, `detail.daemonCode` `EPH_UNKNOWN_OP`.
   */
  async statsPeaks(options: { readonly reset?: boolean } = {}): Promise<{ stats: DaemonStats; peaks: DaemonPeaks }> {
    const where = `${this.#path}: the reply to 'stats-peaks'`;
    const r = await this.request('stats-peaks', { reset: options.reset === true });
    const stats = r['stats'];
    const peaks = r['peaks'];
    if (!isRecord(stats) || !isRecord(peaks)) {
      throw new EphemeraError('EPH_DAEMON_PROTOCOL', `${where} must hold the objects "stats" and "peaks", got ${JSON.stringify(r).slice(0, 200)}`);
    }
    return { stats: parseStats(stats, where), peaks: parsePeaks(peaks, where) };
  }

  /** Ask the daemon to fit under `bytes`; resolves once the memory is really freed. */
  async shrink(bytes: number): Promise<DaemonStats> {
    return parseStats(await this.request('shrink', { bytes }), `${this.#path}: the reply to 'shrink'`);
  }

  /** Tell the daemon its limit was raised to `bytes` (raise the cgroup first). */
  async grow(bytes: number): Promise<DaemonStats> {
    return parseStats(await this.request('grow', { bytes }), `${this.#path}: the reply to 'grow'`);
  }

  /** End the instance; resolves with the final stats, after which the daemon exits. */
  async shutdown(mode: ShutdownMode = 'writeback'): Promise<DaemonStats> {
    const stats = parseStats(await this.request('shutdown', { mode }), `${this.#path}: the reply to 'shutdown'`);
    // The daemon closes its side next; that is not a failure of this client.
    this.#closedError ??= new EphemeraError('EPH_DAEMON_CLOSED', `the daemon at ${this.#path} was shut down`);
    return stats;
  }

  /**
   * Subscribe this connection to events; `onEvent` gets each one until {@link close}.
   * Events that arrive for other subscriptions on this connection also reach `onEvent`.
   */
  async subscribe(events: readonly string[], onEvent: (event: DaemonEvent) => void): Promise<void> {
    this.#listeners.add(onEvent);
    try {
      await this.request('subscribe', { events });
    } catch (err) {
      this.#listeners.delete(onEvent);
      throw err;
    }
  }

  /** Close the connection; waiting requests fail with `EPH_DAEMON_CLOSED`. */
  close(): void {
    this.#fail(new EphemeraError('EPH_DAEMON_CLOSED', `control connection to ${this.#path} was closed by this client`));
    this.#socket.destroy();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl);
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line.length > 0) this.#onLine(line);
    }
    if (Buffer.byteLength(this.#buffer) > MAX_LINE_BYTES) {
      this.#protocolError(`a line from the daemon exceeds ${MAX_LINE_BYTES} bytes without a newline`);
    }
  }

  #onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.#protocolError(`the daemon sent a line that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
      return;
    }
    if (!isRecord(msg) || msg['v'] !== PROTOCOL_VERSION) {
      this.#protocolError(`the daemon sent a message that is not a version-${PROTOCOL_VERSION} object: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof msg['event'] === 'string' && !('id' in msg)) {
      const event = msg as DaemonEvent;
      for (const listener of this.#listeners) listener(event);
      return;
    }
    const id = msg['id'];
    if (typeof id !== 'number') {
      // id null: the daemon could not parse one of our requests; that is a bug on one side.
      const err = isRecord(msg['error']) ? String(msg['error']['message']) : line.slice(0, 200);
      this.#protocolError(`the daemon rejected a request it could not attribute: ${err}`);
      return;
    }
    const pending = this.#pending.get(id);
    if (pending === undefined) {
      this.#protocolError(`the daemon answered id ${id}, which no request is waiting for`);
      return;
    }
    this.#pending.delete(id);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    const e = isRecord(msg['error']) ? msg['error'] : undefined;
    const daemonCode = e?.['code'];
    if (msg['ok'] === true && isRecord(msg['result'])) {
      pending.resolve(msg['result']);
    } else if (msg['ok'] === false && e !== undefined && typeof daemonCode === 'string') {
      // An error without a code is malformed (docs/PROTOCOL.md) and falls to the branch below.
      const message = typeof e['message'] === 'string' ? e['message'] : JSON.stringify(e);
      pending.reject(
        new EphemeraError('EPH_DAEMON_REPLY', `daemon refused '${pending.op}': ${daemonCode}: ${message}`, {
          detail: { daemonCode, daemonMessage: message, ...(isRecord(e['detail']) ? { daemonDetail: e['detail'] } : {}) },
        }),
      );
    } else {
      pending.reject(new EphemeraError('EPH_DAEMON_PROTOCOL', `malformed response to '${pending.op}': ${line.slice(0, 200)}`));
    }
  }

  #protocolError(message: string): void {
    this.#fail(new EphemeraError('EPH_DAEMON_PROTOCOL', message));
    this.#socket.destroy();
  }

  #fail(err: EphemeraError): void {
    this.#closedError ??= err;
    for (const [id, p] of this.#pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(err);
    }
    this.#listeners.clear();
  }
}
