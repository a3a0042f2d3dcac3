/**
 * The Manager's event channel: JSON lines on a second unix socket beside its HTTP one, for the
 * two requests on every invocation's path (`event` and `pair`, the bodies of `POST /v1/events` and
 * `POST /v1/events/pair`). Measured on this machine (2 busy cores), one event's round trip through
 * fastify and node:http was 180–450 µs at p50 against about 40 µs for a line on a socket: most of
 * a memory move's 1 ms budget. Everything else (hello, snapshot, recover) stays on HTTP.
 *
 * A request is `{"id":N,"op":"event"|"pair","body":BODY}` on one line; its answer
 * `{"id":N,"ok":REPLY}` or `{"id":N,"error":{"code":CODE,"message":TEXT}}`, in request order
 * (docs/PROTOCOL.md, "The event channel"). The same JSON schemas as the HTTP routes validate every
 * body (ajv 8, fastify's compiler, with fastify's options as server.ts sets them).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

import { Ajv, type ValidateFunction } from 'ajv';

import { ERROR_CODES, EphemeraError, isEphemeraError, type ErrorCode } from '../core/errors.js';
import { EVENT_BODY, PAIR_BODY } from './schema.js';

/** The event channel's socket, beside `manager.sock` in the Manager's socket directory. */
export const EVENTS_SOCKET_NAME = 'events.sock';

export type LineOp = 'event' | 'pair';

/** What the Manager does with a request whose body passed its schema. */
export type LineHandler = (op: LineOp, body: unknown) => unknown;

/** A line longer than this is refused (a pair of the largest events is far smaller). */
const MAX_LINE = 1024 * 1024;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The schema checks of the channel's two bodies. */
function validators(): Record<LineOp, ValidateFunction> {
  const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, discriminator: true, allErrors: false, useDefaults: true, strict: false });
  return { event: ajv.compile(EVENT_BODY), pair: ajv.compile(PAIR_BODY) };
}

/** The answer to one line (without its newline). */
export function answerLine(line: string, handle: LineHandler, check: Record<LineOp, ValidateFunction>): string {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    req = undefined;
  }
  const id = isRecord(req) && Number.isSafeInteger(req['id']) ? (req['id'] as number) : null;
  const fail = (code: ErrorCode, message: string): string => JSON.stringify({ id, error: { code, message } });
  if (!isRecord(req) || id === null || (req['op'] !== 'event' && req['op'] !== 'pair')) {
    return fail('EPH_MANAGER_PROTOCOL', `request rejected: ${JSON.stringify(line.slice(0, 200))} is not {"id":N,"op":"event"|"pair","body":{...}}; see docs/PROTOCOL.md, "The event channel"`);
  }
  const op = req['op'];
  const validate = check[op];
  if (!validate(req['body'])) {
    const first = validate.errors?.[0];
    const where = first === undefined ? '' : ` at body${first.instancePath} (${first.message ?? 'invalid'}${typeof first.params['additionalProperty'] === 'string' ? `: unknown field ${JSON.stringify(first.params['additionalProperty'])}` : ''})`;
    return fail('EPH_MANAGER_PROTOCOL', `request rejected: the ${op} body ${JSON.stringify(req['body']).slice(0, 200)} does not match its schema${where}; see docs/PROTOCOL.md, "Tenant Manager process"`);
  }
  try {
    return JSON.stringify({ id, ok: handle(op, req['body']) });
  } catch (err) {
    if (isEphemeraError(err)) return fail(err.code, err.message);
    return fail('EPH_MANAGER_PROTOCOL', `internal error: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Serves the channel; each connection's lines are answered in order, one at a time. */
export function serveLines(handle: LineHandler): Server {
  const check = validators();
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.setEncoding('utf8');
    let buf = '';
    s.on('data', (chunk: string) => {
      buf += chunk;
      let out = '';
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        out += `${answerLine(buf.slice(0, nl), handle, check)}\n`;
        buf = buf.slice(nl + 1);
      }
      if (buf.length > MAX_LINE) {
        out += `${JSON.stringify({ id: null, error: { code: 'EPH_MANAGER_PROTOCOL', message: `request rejected: a line of over ${String(MAX_LINE)} bytes` } })}\n`;
        buf = '';
        s.end(out);
        return;
      }
      if (out !== '') s.write(out);
    });
  });
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void): Server => {
    for (const s of sockets) s.destroy();
    return close(cb);
  };
  return server;
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: EphemeraError) => void;
  readonly timer: NodeJS.Timeout;
  readonly what: string;
}

/**
 * The agent's side: one connection, opened at the first request and again after it broke; every
 * request bounded by `timeoutMs`.
 */
export class LineClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;
  #socket: Socket | undefined;
  #buf = '';
  #next = 1;
  #closed = false;
  readonly #pending = new Map<number, Pending>();

  constructor(socketPath: string, timeoutMs: number) {
    this.socketPath = socketPath;
    this.#timeoutMs = timeoutMs;
  }

  /** One request; resolves with its `ok` value. @throws EphemeraError with the Manager's code, or EPH_MANAGER_UNAVAILABLE / EPH_MANAGER_TIMEOUT */
  call(op: LineOp, body: unknown): Promise<unknown> {
    const what = `${op} on ${this.socketPath}`;
    if (this.#closed) return Promise.reject(new EphemeraError('EPH_MANAGER_UNAVAILABLE', `${what}: this client is closed`));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new EphemeraError('EPH_MANAGER_TIMEOUT', `${what} got no reply within ${String(this.#timeoutMs)} ms; the Manager is stuck or gone: restart it and recover`));
        // Its answer may still come and would be taken for the next: start afresh.
        this.#drop(new EphemeraError('EPH_MANAGER_TIMEOUT', `${what}: an earlier request timed out; the connection was reset`));
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, what });
      this.#connection().write(`${JSON.stringify({ id, op, body })}\n`);
    });
  }

  close(): void {
    this.#closed = true;
    this.#drop(new EphemeraError('EPH_MANAGER_UNAVAILABLE', `${this.socketPath}: the client was closed while a request waited`));
  }

  #connection(): Socket {
    if (this.#socket !== undefined) return this.#socket;
    const s = connect({ path: this.socketPath });
    this.#socket = s;
    this.#buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      this.#buf += chunk;
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        this.#answer(line);
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      this.#drop(new EphemeraError('EPH_MANAGER_UNAVAILABLE', `cannot reach the Manager's event channel at ${this.socketPath}: ${err.code ?? err.message}; is its process running?`, { cause: err }));
    });
    s.on('close', () => {
      if (this.#socket === s) this.#drop(new EphemeraError('EPH_MANAGER_UNAVAILABLE', `the Manager's event channel ${this.socketPath} closed while a request waited`));
    });
    return s;
  }

  #answer(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      msg = undefined;
    }
    const p = isRecord(msg) && typeof msg['id'] === 'number' ? this.#pending.get(msg['id']) : undefined;
    if (!isRecord(msg) || p === undefined) {
      this.#drop(new EphemeraError('EPH_MANAGER_PROTOCOL', `the Manager's event channel ${this.socketPath} answered ${JSON.stringify(line.slice(0, 200))}, which answers no request; make client and Manager the same build`));
      return;
    }
    this.#pending.delete(msg['id'] as number);
    clearTimeout(p.timer);
    const error = msg['error'];
    if (isRecord(error)) {
      const code = typeof error['code'] === 'string' && error['code'] in ERROR_CODES ? (error['code'] as ErrorCode) : 'EPH_MANAGER_PROTOCOL';
      p.reject(new EphemeraError(code, typeof error['message'] === 'string' ? error['message'] : `${p.what} failed: ${line.slice(0, 200)}`));
    } else {
      p.resolve(msg['ok']);
    }
  }

  /** Fails every request waiting and forgets the connection (the next request opens another). */
  #drop(err: EphemeraError): void {
    const s = this.#socket;
    this.#socket = undefined;
    s?.destroy();
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }
}
