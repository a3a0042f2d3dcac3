/**
 * The Manager's process shell: one tenant's pure core behind HTTP on a unix socket, in a directory
 * only its owner can enter (mode 0700). Requests are handled one at a time in arrival order by the
 * single JS thread, which is exactly the serialization the core's contract asks for.
 *
 * Why HTTP: fastify validates every body against the schemas in schema.ts and maps errors to one
 * reply shape. But an event's round trip through fastify and node:http measured 180–450 µs at
 * p50 on this 2-core machine, most of a memory move's 1 ms budget, so the two requests on every
 * invocation's path (an event, a pair) are also served as JSON lines on `events.sock` beside
 * (lines.ts), validated against the same schemas; the rest stays on HTTP.
 */
import { lstat, mkdir, chmod, unlink } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { join } from 'node:path';

import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';

import { EphemeraError, isEphemeraError } from '../core/errors.js';
import { createManager } from './core.js';
import { EVENTS_SOCKET_NAME, serveLines, type LineHandler } from './lines.js';
import { EVENT_BODY, PAIR_BODY, RECOVER_BODY } from './schema.js';
import type { ContainerStanding, LiveContainer, Manager, ManagerConfig, ManagerEvent, Move } from './types.js';

/** The Manager process API version; the path prefix is `/v${MANAGER_API_VERSION}`. */
export const MANAGER_API_VERSION = 1;
/** The socket's name inside the socket directory. */
export const MANAGER_SOCKET_NAME = 'manager.sock';

export interface ManagerServerOptions {
  readonly config: ManagerConfig;
  /** Created if missing (mode 0700); must belong to this user. */
  readonly socketDir: string;
  /** pino level for the fastify logger on stderr. @default 'warn' */
  readonly logLevel?: string;
}

export interface ManagerServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/** The answer to one event (`POST /v1/events`, and each half of `/v1/events/pair`). */
export interface ApplyAnswer {
  readonly moves: readonly Move[];
  /** How long `apply` took inside the Manager process, in nanoseconds. */
  readonly decisionNs: number;
  /** The event's container's standing after the event (events that name one by `id`, while it is held). */
  readonly standing?: ContainerStanding;
  /** The tenant is quiet after the event (the core's `quiet()`). */
  readonly quiet: boolean;
}

/** Reply body of every failed request. */
export interface ErrorReply {
  readonly code: string;
  readonly message: string;
}

/**
 * Prepares the socket directory: creates it 0700, refuses one that is a symlink, not a directory, or
 * another user's, and tightens its mode to 0700.
 * @throws EphemeraError `EPH_MANAGER_START`
 */
export async function prepareSocketDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new EphemeraError(
      'EPH_MANAGER_START',
      `socket directory ${dir} is ${st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? `owned by uid ${String(st.uid)}` : 'not a directory'}; give a directory of this user (uid ${String(uid)}) that only it can enter`,
      { detail: { socketDir: dir } },
    );
  }
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}

/** Removes a socket file left by a killed Manager; refuses if a live one still answers on it. */
async function clearStaleSocket(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
  });
  if (alive) {
    throw new EphemeraError('EPH_MANAGER_START', `another process already serves ${path}; stop it, or give this Manager its own socket directory`, { detail: { socketPath: path } });
  }
  await unlink(path).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

/** The value a schema error points at (`/event/neededBytes` in the body), or the unknown field's name. */
function offending(err: FastifyError, body: unknown): string {
  const first = err.validation?.[0];
  if (first === undefined) return '';
  const extra = first.params['additionalProperty'];
  if (typeof extra === 'string') return ` (unknown field ${JSON.stringify(extra)})`;
  let v: unknown = body;
  for (const key of first.instancePath.split('/').slice(1)) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return v === undefined ? '' : ` (got ${JSON.stringify(v).slice(0, 200)})`;
}

function errorReply(err: unknown, body: unknown): { status: number; body: ErrorReply } {
  if (isEphemeraError(err)) {
    return { status: err.code === 'EPH_MANAGER_EVENT' ? 409 : 500, body: { code: err.code, message: err.message } };
  }
  const fe = err as FastifyError;
  if (fe.validation !== undefined || fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || fe.statusCode === 400 || fe.statusCode === 413 || fe.statusCode === 415) {
    return {
      status: fe.statusCode ?? 400,
      body: { code: 'EPH_MANAGER_PROTOCOL', message: `request rejected: ${fe.message}${offending(fe, body)}; see docs/PROTOCOL.md, "Tenant Manager process"` },
    };
  }
  return { status: 500, body: { code: 'EPH_MANAGER_PROTOCOL', message: `internal error: ${err instanceof Error ? err.message : String(err)}` } };
}

/** Builds the fastify app around one Manager (no listening; tests may `inject`). */
export function buildManagerApp(config: ManagerConfig, logLevel = 'warn'): FastifyInstance {
  return buildManager(config, logLevel).app;
}

type Timed = { event: ManagerEvent; now?: number };

/** The HTTP app and the event channel's handler around one Manager core. */
function buildManager(config: ManagerConfig, logLevel: string): { app: FastifyInstance; lines: LineHandler } {
  const manager = createManager(config);
  const { applyOne, applyPair } = answers(manager);
  const app = Fastify({
    logger: { level: logLevel },
    bodyLimit: 64 * 1024 * 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, discriminator: true, allErrors: false } },
  });
  const prefix = `/v${String(MANAGER_API_VERSION)}`;

  app.setErrorHandler((err, req, reply) => {
    const { status, body } = errorReply(err, req.body);
    if (status >= 500) app.log.error({ err }, 'manager request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: 'EPH_MANAGER_PROTOCOL', message: `no route ${req.method} ${req.url}; this Manager speaks ${prefix} (docs/PROTOCOL.md)` } satisfies ErrorReply),
  );

  app.get(`${prefix}/hello`, () => ({
    version: MANAGER_API_VERSION,
    pid: process.pid,
    tenant: config.tenant,
    sharing: config.sharing,
    lendWhileIdle: config.lendWhileIdle,
  }));

  app.post<{ Body: Timed }>(`${prefix}/events`, { schema: { body: EVENT_BODY } }, (req) => applyOne(req.body));
  app.post<{ Body: { first: Timed; second: Timed } }>(`${prefix}/events/pair`, { schema: { body: PAIR_BODY } }, (req) => applyPair(req.body));

  app.get(`${prefix}/snapshot`, () => manager.snapshot());

  app.post<{ Body: { live: LiveContainer[] } }>(`${prefix}/recover`, { schema: { body: RECOVER_BODY } }, (req) => ({ moves: manager.recover(req.body.live) }));

  // The event channel's bodies are the same as the two routes' (lines.ts validates them first).
  const lines: LineHandler = (op, body) => (op === 'event' ? applyOne(body as Timed) : applyPair(body as { first: Timed; second: Timed }));
  return { app, lines };
}

/** The answers to one event and to a pair, shared by the HTTP routes and the event channel. */
function answers(manager: Manager): { applyOne: (body: Timed) => ApplyAnswer; applyPair: (body: { first: Timed; second: Timed }) => { first: ApplyAnswer; second?: ApplyAnswer } } {
  const applyOne = (body: Timed): ApplyAnswer => {
    const now = body.now ?? Date.now();
    const t0 = process.hrtime.bigint();
    const event = body.event;
    const moves = manager.apply(event, now);
    const decisionNs = Number(process.hrtime.bigint() - t0);
    // The event's own container's standing after it, so that the agent needs no snapshot after an
    // event whose batch is empty, and whether the tenant is quiet (docs/PROTOCOL.md, Manager process).
    const standing = 'id' in event ? manager.standing(event.id) : undefined;
    return { moves, decisionNs, ...(standing !== undefined ? { standing } : {}), quiet: manager.quiet() };
  };
  // Two events in one round trip: the second only once the first's batch is known to be empty, as
  // the agent would have sent it after carrying out (nothing of) the first.
  const applyPair = (body: { first: Timed; second: Timed }): { first: ApplyAnswer; second?: ApplyAnswer } => {
    const first = applyOne(body.first);
    return first.moves.length > 0 ? { first } : { first, second: applyOne(body.second) };
  };
  return { applyOne, applyPair };
}

/**
 * Starts one tenant's Manager listening on `socketDir/manager.sock`.
 * @throws EphemeraError `EPH_MANAGER_CONFIG` for a bad config, `EPH_MANAGER_START` for a bad
 *   socket directory or a socket another process serves
 */
export async function startManagerServer(opts: ManagerServerOptions): Promise<ManagerServer> {
  const { app, lines } = buildManager(opts.config, opts.logLevel ?? 'warn');
  await prepareSocketDir(opts.socketDir);
  const socketPath = join(opts.socketDir, MANAGER_SOCKET_NAME);
  // sockaddr_un holds 108 bytes with the terminating NUL.
  if (Buffer.byteLength(socketPath) > 107) {
    throw new EphemeraError('EPH_MANAGER_START', `socket path ${socketPath} is ${String(Buffer.byteLength(socketPath))} bytes, over the 107 a unix socket allows; give a shorter socket directory`);
  }
  await clearStaleSocket(socketPath);
  await app.listen({ path: socketPath });
  // The event channel beside it (lines.ts): a stale socket went with the check above.
  const eventsPath = join(opts.socketDir, EVENTS_SOCKET_NAME);
  await unlink(eventsPath).catch(() => undefined);
  const events: Server = serveLines(lines);
  try {
    await new Promise<void>((resolve, reject) => {
      events.once('error', reject);
      events.listen(eventsPath, () => {
        events.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await app.close();
    throw new EphemeraError('EPH_MANAGER_START', `cannot listen on ${eventsPath}: ${(err as Error).message}`, { cause: err });
  }
  return {
    socketPath,
    close: async () => {
      await new Promise<void>((resolve) => events.close(() => resolve()));
      await app.close();
    },
  };
}
