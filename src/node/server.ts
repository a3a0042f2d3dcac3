/**
 * The node agent's HTTP API (version 1) on a unix socket, with fastify: routes check their input
 * against the schemas in api.ts, call the agent, and turn its errors into `{ error: { code,
 * message, detail } }` with a status that says whose fault it was.
 */
import { chmod, rm } from 'node:fs/promises';

import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';

import { EphemeraError, isEphemeraError, type ErrorCode } from '../core/errors.js';
import type { NodeAgent } from './agent.js';
import { API_PREFIX, SCHEMAS, type CreateContainerRequest, type InitRequest, type InvocationEndRequest, type RegisterRequest, type RunRequest } from './api.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  EPH_NODE_BAD_REQUEST: 400,
  EPH_NODE_UNKNOWN_CONTAINER: 404,
  EPH_NODE_CONFLICT: 409,
  EPH_NODE_FULL: 507,
  EPH_NODE_CROSS_TENANT: 403,
  EPH_NODE_MOVE_FAILED: 500,
  EPH_NODE_RUNTIME: 502,
  EPH_DOCKER_API: 502,
  EPH_MANAGER_EVENT: 409,
};

type IdParams = { Params: { id: string } };

export function buildServer(agent: NodeAgent): FastifyInstance {
  // Strict schemas: an unknown field or a number sent as a string is refused, not silently
  // dropped or converted (fastify's defaults), so a caller's mistake never passes unnoticed.
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });

  app.setErrorHandler((err: unknown, _req, reply: FastifyReply) => {
    if (isEphemeraError(err)) {
      return reply.code(STATUS[err.code] ?? 500).send({ error: { code: err.code, message: err.message, detail: err.detail } });
    }
    const e = err as { validation?: unknown; statusCode?: number; message?: string };
    if (e.validation !== undefined || (e.statusCode !== undefined && e.statusCode < 500)) {
      return reply.code(400).send({ error: { code: 'EPH_NODE_BAD_REQUEST', message: `bad request: ${e.message ?? 'invalid'}; see docs/PROTOCOL.md (node agent API)` } });
    }
    return reply.code(500).send({ error: { code: 'EPH_INTERNAL', message: e.message ?? String(err) } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'EPH_NODE_BAD_REQUEST', message: `no route ${req.method} ${req.url}; the node agent API lives under ${API_PREFIX} (docs/PROTOCOL.md)` } }),
  );

  app.get(`${API_PREFIX}/node`, () => agent.info());
  app.get<{ Querystring: { after?: string; limit?: string } }>(`${API_PREFIX}/events`, { schema: { querystring: SCHEMAS.events } }, (req) =>
    agent.journal.since(Number(req.query.after ?? 0), Math.min(1000, Math.max(1, Number(req.query.limit ?? 500)))),
  );
  app.get<{ Querystring: { tenant?: string } }>(`${API_PREFIX}/containers`, (req) => agent.list(req.query.tenant));
  app.post<{ Body: CreateContainerRequest }>(`${API_PREFIX}/containers`, { schema: { body: SCHEMAS.create } }, async (req, reply) => {
    return reply.code(201).send(await agent.create(req.body));
  });
  app.delete<IdParams>(`${API_PREFIX}/containers/:id`, async (req, reply) => {
    await agent.remove(req.params.id);
    return reply.code(204).send();
  });
  app.post<IdParams & { Body: InitRequest }>(`${API_PREFIX}/containers/:id/init`, { schema: { body: SCHEMAS.init } }, (req) => agent.init(req.params.id, req.body));
  app.post<IdParams & { Body: RunRequest }>(`${API_PREFIX}/containers/:id/run`, { schema: { body: SCHEMAS.run } }, (req) => agent.run(req.params.id, req.body));
  app.post<IdParams & { Body: RegisterRequest }>(`${API_PREFIX}/containers/:id/register`, { schema: { body: SCHEMAS.register } }, async (req, reply) => {
    return reply.code(201).send(await agent.registerExternal(req.params.id, req.body));
  });
  app.post<IdParams>(`${API_PREFIX}/containers/:id/forget`, async (req, reply) => {
    await agent.forget(req.params.id);
    return reply.code(204).send();
  });
  app.post<IdParams>(`${API_PREFIX}/containers/:id/invocations/start`, (req) => agent.invocationStart(req.params.id));
  app.post<IdParams & { Body: InvocationEndRequest | undefined }>(`${API_PREFIX}/containers/:id/invocations/end`, { schema: { body: SCHEMAS.invocationEnd } }, (req) =>
    agent.invocationEnd(req.params.id, req.body?.used),
  );
  return app;
}

/**
 * Listens on `socketPath` (mode 0600: only the agent's user may drive it). A stale socket file is
 * removed first; the caller has made sure no other agent owns the state directory.
 * @throws {EphemeraError} `EPH_NODE_STATE_DIR` when the socket cannot be bound
 */
export async function listenOnSocket(app: FastifyInstance, socketPath: string): Promise<void> {
  await rm(socketPath, { force: true });
  try {
    await app.listen({ path: socketPath });
  } catch (err) {
    throw new EphemeraError('EPH_NODE_STATE_DIR', `cannot listen on ${socketPath}: ${(err as Error).message}; check that the state directory is writable`, { cause: err });
  }
  await chmod(socketPath, 0o600);
}
