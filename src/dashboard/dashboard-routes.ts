/**
 * `/dashboard`: the live page, its assets, its session and its server-sent event stream.
 *
 * Routes (docs/PROTOCOL.md has the wire format):
 * - `GET /dashboard`: the page; `GET /dashboard/assets/*`: its script, style and Chart.js, read
 *   from the build and from node_modules (the page loads nothing from elsewhere);
 * - `POST /dashboard/session` (Basic auth) sets the session cookie; `GET` says who it is;
 *   `DELETE` ends it;
 * - `GET /dashboard/api/view`: the picture once, as JSON (for `ephemera status`);
 * - `GET /dashboard/events`: the picture live, as `text/event-stream`.
 * Every route but the page and its assets needs a key (Basic auth) or the session cookie.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerResponse } from 'node:http';

import fastifyCookie from '@fastify/cookie';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

import { keyFromBasicAuth, type Authorizer } from './auth.js';
import { authenticate, sendAuthFailure, type AuthResult } from './http-auth.js';
import { DashboardHub } from './hub.js';
import { DASHBOARD_CSS, DASHBOARD_HTML } from './page-html.js';
import { SessionStore, type SessionOptions } from './sessions.js';
import type { ClusterSource } from './source.js';
import { dashboardView, visibleActivations } from './view.js';

export interface DashboardRoutesOptions {
  readonly source: ClusterSource;
  readonly authorizer: Authorizer;
  /** How often a live page's state is re-read. @default 2000 */
  readonly refreshMs?: number;
  /** Activations a page starts with. @default 1000 */
  readonly activationLimit?: number;
  readonly sessions?: SessionOptions;
  /** At most this many live pages at once; more get 503. @default 200 */
  readonly maxStreams?: number;
}

export const SESSION_COOKIE = 'ephemera_session';
const COOKIE_PATH = '/dashboard';
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
/** A page that does not read its stream is dropped before it costs more memory than this. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

interface Asset {
  readonly file: string;
  readonly type: string;
}

function assets(): Readonly<Record<string, Asset>> {
  const here = dirname(fileURLToPath(import.meta.url));
  const chartDir = dirname(createRequire(import.meta.url).resolve('chart.js'));
  return {
    'app.js': { file: join(here, 'page', 'app.js'), type: 'text/javascript; charset=utf-8' },
    'chart.umd.min.js': { file: join(chartDir, 'chart.umd.min.js'), type: 'text/javascript; charset=utf-8' },
  };
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export const dashboardRoutes: FastifyPluginAsync<DashboardRoutesOptions> = async (app, options) => {
  await app.register(fastifyCookie);
  const sessions = new SessionStore(options.sessions);
  const hub = new DashboardHub(options.source, {
    ...(options.refreshMs === undefined ? {} : { refreshMs: options.refreshMs }),
    ...(options.activationLimit === undefined ? {} : { activationLimit: options.activationLimit }),
    onError: (err) => app.log.error({ err }, 'dashboard: reading the cluster state failed'),
  });
  const activationLimit = options.activationLimit ?? 1000;
  const maxStreams = options.maxStreams ?? 200;
  const streams = new Set<ServerResponse>();
  const files = assets();
  const cache = new Map<string, Buffer>();

  app.addHook('preClose', (done) => {
    hub.close();
    for (const s of streams) s.end();
    done();
  });

  const who = async (request: FastifyRequest, what: string): Promise<AuthResult> => {
    const key = keyFromBasicAuth(request.headers.authorization) ?? sessions.keyFor(request.cookies[SESSION_COOKIE]);
    return authenticate(key, options.authorizer, what);
  };
  const sourceFailed = (reply: FastifyReply, what: string, err: unknown): FastifyReply => {
    app.log.error({ err }, `${what}: reading the cluster state failed`);
    const why = err instanceof Error ? err.message : String(err);
    return reply.code(503).send({ code: 'EPH_VIEW_SOURCE', error: `${what} could not read the cluster state: ${why}; retry, and read the controller log` });
  };

  app.get('/dashboard', (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(DASHBOARD_HTML));
  app.get('/dashboard/assets/dashboard.css', (_request, reply) => reply.type('text/css; charset=utf-8').send(DASHBOARD_CSS));
  app.get<{ Params: { name: string } }>('/dashboard/assets/:name', async (request, reply) => {
    const asset = Object.hasOwn(files, request.params.name) ? files[request.params.name] : undefined;
    if (asset === undefined) {
      reply.callNotFound();
      return reply;
    }
    let body = cache.get(asset.file);
    if (body === undefined) {
      body = await readFile(asset.file);
      cache.set(asset.file, body);
    }
    return reply.type(asset.type).header('cache-control', 'no-cache').send(body);
  });

  app.get('/dashboard/session', async (request, reply) => {
    const auth = await who(request, 'GET /dashboard/session');
    if (!auth.ok) return sendAuthFailure(reply, auth, false);
    return { viewer: auth.principal };
  });
  app.post('/dashboard/session', async (request, reply) => {
    // Only a Basic header opens a session: a cookie alone (a cross-site form) cannot.
    const key = keyFromBasicAuth(request.headers.authorization);
    const auth = await authenticate(key, options.authorizer, 'POST /dashboard/session');
    if (!auth.ok) return sendAuthFailure(reply, auth, false);
    if (key === undefined) throw new Error('unreachable: authenticate() accepted no key');
    sessions.delete(request.cookies[SESSION_COOKIE]);
    const token = sessions.create(key);
    void reply.setCookie(SESSION_COOKIE, token, {
      path: COOKIE_PATH,
      httpOnly: true,
      sameSite: 'strict',
      secure: request.protocol === 'https',
      maxAge: Math.floor(sessions.idleMs / 1000),
    });
    return { viewer: auth.principal };
  });
  app.delete('/dashboard/session', (request, reply) => {
    sessions.delete(request.cookies[SESSION_COOKIE]);
    return reply.clearCookie(SESSION_COOKIE, { path: COOKIE_PATH }).code(204).send();
  });

  app.get('/dashboard/api/view', async (request, reply) => {
    const auth = await who(request, 'GET /dashboard/api/view');
    if (!auth.ok) return sendAuthFailure(reply, auth, false);
    const viewer = auth.principal;
    try {
      const [snapshot, recent] = await Promise.all([
        options.source.snapshot(),
        options.source.recentActivations(activationLimit, viewer.role === 'tenant' ? viewer.tenant : undefined),
      ]);
      return { view: dashboardView(snapshot, viewer), activations: visibleActivations(recent, viewer) };
    } catch (err) {
      return sourceFailed(reply, 'GET /dashboard/api/view', err);
    }
  });

  app.get('/dashboard/events', async (request, reply) => {
    const auth = await who(request, 'GET /dashboard/events');
    if (!auth.ok) return sendAuthFailure(reply, auth, false);
    if (streams.size >= maxStreams) {
      return reply.code(503).send({ code: 'EPH_VIEW_SOURCE', error: `the controller serves at most ${maxStreams} live dashboards; close one and retry` });
    }
    const raw = reply.raw;
    let leave: (() => void) | undefined;
    const keepalive = setInterval(() => {
      if (!raw.writableEnded) raw.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    keepalive.unref();
    const end = (): void => {
      leave?.();
      clearInterval(keepalive);
      streams.delete(raw);
      if (!raw.writableEnded) raw.end();
    };
    const send = (event: string, data: unknown): void => {
      if (raw.writableEnded) return;
      if (raw.writableLength > MAX_BUFFERED_BYTES) {
        end();
        return;
      }
      raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    reply.hijack();
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    raw.write('retry: 3000\n\n');
    streams.add(raw);
    request.raw.on('close', end);
    try {
      leave = await hub.join({ viewer: auth.principal, send });
    } catch (err) {
      app.log.error({ err }, 'GET /dashboard/events: reading the cluster state failed');
      const why = err instanceof Error ? err.message : String(err);
      send('problem', { code: 'EPH_VIEW_SOURCE', error: `could not read the cluster state: ${why}` });
      end();
      return;
    }
    if (raw.writableEnded) leave();
  });
};
