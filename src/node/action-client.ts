/**
 * Talks OpenWhisk's action protocol (`POST /init`, `POST /run`) to the runtime inside a function
 * container, over the unix socket the container's bind-mounted run directory holds: the function
 * containers have no network, so the socket is the one way in.
 */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { EphemeraError } from '../core/errors.js';
import type { ActionReply } from './api.js';

/** Why a request produced no reply: the runtime took too long, or the connection failed. */
export type ActionFailure = 'timeout' | 'connection';

export class ActionRequestError extends EphemeraError {
  readonly failure: ActionFailure;

  constructor(failure: ActionFailure, message: string, cause?: unknown) {
    super('EPH_NODE_RUNTIME', message, { cause, detail: { failure } });
    this.failure = failure;
  }
}

/**
 * One request to the runtime; the body is parsed as JSON when it is JSON, and kept as text
 * otherwise (OpenWhisk calls a non-JSON answer a developer error; the caller decides).
 * @throws {ActionRequestError} on timeout or a broken connection
 */
export function actionRequest(socketPath: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<ActionReply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = request(
      {
        socketPath,
        path,
        method,
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(payload.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          settled = true;
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Not JSON: the caller sees the text.
          }
          resolve({ statusCode: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', (e) => {
          if (!settled) reject(new ActionRequestError('connection', `the action runtime on ${socketPath} broke off its answer to ${path}: ${e.message}`, e));
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      if (!settled) reject(new ActionRequestError('timeout', `the action runtime on ${socketPath} did not answer ${method} ${path} within ${timeoutMs} ms`));
      settled = true;
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!settled) reject(new ActionRequestError('connection', `cannot reach the action runtime on ${socketPath} (${e.code ?? e.message}); did the container exit? read its logs`, e));
      settled = true;
    });
    req.end(payload);
  });
}

/**
 * Waits until the runtime answers `GET /health` (it starts its daemon first), polling.
 * @throws {EphemeraError} `EPH_NODE_RUNTIME` when it does not within `timeoutMs`
 */
export async function waitForRuntime(socketPath: string, timeoutMs: number, alive: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const r = await actionRequest(socketPath, 'GET', '/health', undefined, Math.max(100, deadline - Date.now()));
      if (r.statusCode === 200) return;
      last = `GET /health answered ${r.statusCode}`;
    } catch (err) {
      last = (err as Error).message;
      if (!(await alive())) break;
    }
    await sleep(20);
  }
  throw new EphemeraError('EPH_NODE_RUNTIME', `the action runtime of the new container did not come up within ${timeoutMs} ms (${last}); read the container's logs`, {
    detail: { socketPath },
  });
}
