/**
 * Dashboard sessions: an opaque token in an HttpOnly cookie stands for a key kept on the server.
 *
 * The browser's EventSource cannot send an Authorization header, and a key in the URL ends up in
 * logs and history. So the page trades the key once (POST with Basic auth) for a random token; the
 * key itself never stays in the browser, and page scripts cannot read the cookie. The key is
 * re-checked on every request, so revoking it ends its sessions at once.
 */
import { randomBytes } from 'node:crypto';

export interface SessionOptions {
  /** A session unused for this long is forgotten. @default 12 h */
  readonly idleMs?: number;
  /** At most this many sessions; the least recently used goes first. @default 1000 */
  readonly max?: number;
  readonly now?: () => number;
}

export class SessionStore {
  readonly #idleMs: number;
  readonly #max: number;
  readonly #now: () => number;
  /** Insertion order is use order: a used session is moved to the end. */
  readonly #sessions = new Map<string, { readonly key: string; lastUsed: number }>();

  constructor(options: SessionOptions = {}) {
    this.#idleMs = options.idleMs ?? 12 * 3600_000;
    this.#max = options.max ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  /** A new token for `key`. */
  create(key: string): string {
    const token = randomBytes(32).toString('base64url');
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next();
      if (oldest.done === true) break;
      this.#sessions.delete(oldest.value);
    }
    this.#sessions.set(token, { key, lastUsed: this.#now() });
    return token;
  }

  /** The key behind a live token, or `undefined`. */
  keyFor(token: string | undefined): string | undefined {
    if (token === undefined) return undefined;
    const s = this.#sessions.get(token);
    if (s === undefined) return undefined;
    const now = this.#now();
    this.#sessions.delete(token);
    if (now - s.lastUsed > this.#idleMs) return undefined;
    s.lastUsed = now;
    this.#sessions.set(token, s);
    return s.key;
  }

  delete(token: string | undefined): void {
    if (token !== undefined) this.#sessions.delete(token);
  }
}
