/**
 * `GET /metrics`: the Prometheus text format, for the operator key only (it shows every tenant).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

import { keyFromBasicAuth, type Authorizer } from './auth.js';
import { authenticate, requireAdmin, sendAuthFailure } from './http-auth.js';
import { ClusterMetrics } from './metrics.js';
import type { ClusterSource } from './source.js';

export interface MetricsRoutesOptions {
  readonly source: ClusterSource;
  readonly authorizer: Authorizer;
  /** Add Ephemera's metrics to this registry (e.g. one with the controller's own); a new one by default. */
  readonly registry?: Registry;
}

export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = (app, options) => {
  const metrics = new ClusterMetrics(options.source, options.registry);
  app.addHook('onClose', (_app, done) => {
    metrics.close();
    done();
  });

  app.get('/metrics', async (request, reply) => {
    const auth = requireAdmin(await authenticate(keyFromBasicAuth(request.headers.authorization), options.authorizer, 'GET /metrics'), 'GET /metrics');
    if (!auth.ok) return sendAuthFailure(reply, auth, true);
    let text: string;
    try {
      text = await metrics.registry.metrics();
    } catch (err) {
      request.log.error({ err }, 'metrics: reading the cluster state failed');
      const why = err instanceof Error ? err.message : String(err);
      return reply.code(503).send({ code: 'EPH_VIEW_SOURCE', error: `GET /metrics could not read the cluster state: ${why}; retry, and read the controller log` });
    }
    return reply.type(metrics.registry.contentType).send(text);
  });
  return Promise.resolve();
};
