/**
 * The extender's HTTP shell: a fastify plugin the controller mounts with
 * `app.register(extenderRoutes, { source })`, serving `POST /extender/filter` and
 * `POST /extender/prioritize` (docs/PROTOCOL.md, "Kubernetes scheduler extender").
 *
 * The plugin is encapsulated (not wrapped in fastify-plugin) so that its error handler only answers
 * its own routes: anything fastify itself refuses (bad JSON, wrong content type, a body over the
 * limit) comes back in the extender's shape, `{"Error": "..."}`, with fastify's 4xx status.
 */
import type { FastifyError, FastifyPluginAsync } from 'fastify';

import { extenderFilter, extenderPrioritize, type NodeStateSource } from './extender.js';

export interface ExtenderRoutesOptions {
  readonly source: NodeStateSource;
  /**
   * Largest request body. Without `nodeCacheCapable`, kube-scheduler sends every candidate v1.Node
   * in full (several KiB each), so fastify's 1 MiB default is too small for a few hundred nodes.
   * @default 64 MiB
   */
  readonly bodyLimit?: number;
}

export const EXTENDER_DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

export const extenderRoutes: FastifyPluginAsync<ExtenderRoutesOptions> = (app, opts) => {
  const bodyLimit = opts.bodyLimit ?? EXTENDER_DEFAULT_BODY_LIMIT;
  // Our own JSON parser, so that bad JSON is a 400 in the extender's shape whatever parser the
  // application that mounts the plugin installed (the controller's answers in its own shape).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(typeof body === 'string' ? body : body.toString('utf8')));
    } catch (e) {
      const err = new Error(`the body is not valid JSON (${e instanceof Error ? e.message : String(e)}); send ExtenderArgs as kube-scheduler does`) as FastifyError;
      err.statusCode = 400;
      done(err, undefined);
    }
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ err }, 'extender request failed');
    const hint = status === 415 ? ` (${JSON.stringify(request.headers['content-type'] ?? '')}); send Content-Type: application/json as kube-scheduler does` : '';
    return reply.code(status).send({ Error: `${request.url}: ${err.message}${hint}` });
  });
  app.post('/extender/filter', { bodyLimit }, (request, reply) => {
    const r = extenderFilter(request.body, opts.source);
    return reply.code(r.status).send(r.body);
  });
  app.post('/extender/prioritize', { bodyLimit }, (request, reply) => {
    const r = extenderPrioritize(request.body, opts.source);
    return reply.code(r.status).send(r.body);
  });
  return Promise.resolve();
};
