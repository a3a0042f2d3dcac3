import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Fastify, { type FastifyInstance } from 'fastify';

import { basicAuthFor } from './auth.js';
import { MemoryClusterSource } from './memory-source.js';
import { metricsRoutes } from './metrics-routes.js';
import { PrometheusServer, promtoolCheck, waitFor } from './prometheus-harness.js';
import { KEYS, MiB, node, playScenario, scenarioAuthorizer, scenarioContainers } from './scenario.js';
import type { ClusterSource } from './source.js';

async function serve(source: ClusterSource): Promise<{ app: FastifyInstance; base: string }> {
  const app = Fastify();
  await app.register(metricsRoutes, { source, authorizer: scenarioAuthorizer });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base };
}

/** Scrapes with `key` (null: no Authorization header). */
async function scrape(base: string, key: string | null = KEYS.admin): Promise<Response> {
  return fetch(`${base}/metrics`, { headers: key === null ? {} : { authorization: basicAuthFor(key) }, signal: AbortSignal.timeout(5000) });
}

/**
 * For a suite: hooks that serve /metrics over a source the scenario has played into, and close it
 * after; the returned function gives its URL once the suite runs.
 */
function servedScenario(): () => string {
  const source = new MemoryClusterSource();
  let app: FastifyInstance | undefined;
  let base = '';
  before(async () => {
    ({ app, base } = await serve(source));
    playScenario(source);
  });
  after(() => app?.close());
  return () => base;
}

describe('GET /metrics after one loan, one shortfall and three activations', { timeout: 60_000 }, () => {
  const served = servedScenario();

  test('a real Prometheus scrapes it with the operator key and reads the values the scenario made', { timeout: 45_000 }, async () => {
    const prom = await PrometheusServer.start(new URL(served()).host, KEYS.admin);
    try {
      await waitFor('a successful scrape', 30_000, async () => ((await prom.value('up{job="ephemera"}')) === 1 && (await prom.value('ephemera_activations_total{action="resize"}')) !== undefined ? true : undefined));
      // Each series' value (undefined: no such series).
      const want: [string, number | undefined][] = [
        // The node: N_lim, N_alloc (448 + 320 + 1024 MiB granted), N_req (512 + 256 + 1024 MiB asked).
        ['ephemera_node_memory_limit_bytes{node="node-1"}', 8192 * MiB],
        ['ephemera_node_memory_allocated_bytes{node="node-1"}', 1792 * MiB],
        ['ephemera_node_memory_requested_bytes{node="node-1"}', 1792 * MiB],
        ['ephemera_tenant_memory_allocated_bytes{node="node-1",tenant="alpha"}', 768 * MiB],
        // The loan: 64 MiB from alpha's resize container to its gzip container.
        ['ephemera_container_lent_bytes{container="alpha-resize-0",tenant="alpha",action="resize"}', 64 * MiB],
        ['ephemera_container_borrowed_bytes{container="alpha-gzip-0"}', 64 * MiB],
        ['ephemera_container_borrowed_bytes{container="alpha-resize-0"}', 0],
        ['ephemera_container_initial_quota_bytes{container="alpha-gzip-0"}', 256 * MiB],
        ['ephemera_container_limit_bytes{container="alpha-gzip-0"}', 320 * MiB],
        ['ephemera_container_limit_bytes{container="alpha-resize-0"}', 448 * MiB],
        ['ephemera_container_memory_usage_bytes{container="alpha-gzip-0"}', 200 * MiB],
        ['ephemera_container_file_memory_bytes{container="alpha-resize-0"}', 128 * MiB],
        ['ephemera_container_files_in_memory{container="alpha-resize-0"}', 3],
        ['ephemera_container_evictions_total{container="alpha-resize-0"}', 2],
        ['ephemera_container_fast_reads_total{container="alpha-resize-0"}', 4200],
        ['ephemera_container_fast_writes_total{container="alpha-resize-0"}', 1800],
        ['ephemera_container_slow_ops_total{container="alpha-resize-0"}', 300],
        ['ephemera_container_pool_info{container="alpha-resize-0",pool="harvest"}', 1],
        ['ephemera_container_pool_info{container="beta-ml-0",pool="self-sufficient",tenant="beta"}', 1],
        // The Manager: one lend of 64 MiB in 12 ms, one shortfall, no safeguard reclaim.
        ['ephemera_manager_moves_total{node="node-1",tenant="alpha",reason="lend"}', 1],
        ['ephemera_manager_moved_bytes_total{reason="lend"}', 64 * MiB],
        ['ephemera_manager_move_duration_seconds_count{reason="lend"}', 1],
        ['ephemera_manager_move_duration_seconds_sum{reason="lend"}', 0.012],
        ['ephemera_manager_move_duration_seconds_bucket{reason="lend",le="0.01"}', 0],
        ['ephemera_manager_move_duration_seconds_bucket{reason="lend",le="0.025"}', 1],
        ['ephemera_manager_shortfalls_total{tenant="alpha"}', 1],
        ['ephemera_manager_shortfall_bytes_total{tenant="alpha"}', 32 * MiB],
        ['ephemera_manager_safeguard_reclaims_total', undefined],
        // Three activations: resize ok (120 ms), gzip ok (80 ms), gzip application error (40 ms).
        ['sum(ephemera_activations_total)', 3],
        ['ephemera_activations_total{tenant="alpha",action="resize",status="success"}', 1],
        ['ephemera_activations_total{action="gzip",status="success"}', 1],
        ['ephemera_activations_total{action="gzip",status="application error"}', 1],
        ['ephemera_activation_duration_seconds_count{action="gzip"}', 2],
        ['ephemera_activation_duration_seconds_bucket{action="gzip",le="0.05"}', 1],
        ['ephemera_activation_duration_seconds_bucket{action="gzip",le="0.1"}', 2],
        ['ephemera_activation_duration_seconds_bucket{action="resize",le="0.1"}', 0],
      ];
      for (const [q, value] of want) assert.equal(await prom.value(q), value, q);
      // 120 + 80 + 40 ms, summed in floating point by Prometheus
      const durations = (await prom.value('sum(ephemera_activation_duration_seconds_sum)')) ?? NaN;
      assert.ok(Math.abs(durations - 0.24) < 1e-9, `sum of the activation durations ${String(durations)}, expected 0.24`);
      // No activation id ever becomes a label.
      const series = await prom.query('{job="ephemera",__name__=~"ephemera_.*"}');
      assert.ok(series.length > 0);
      for (const s of series) assert.ok(!Object.values(s.metric).some((l) => l.startsWith('act-')), JSON.stringify(s.metric));
    } finally {
      await prom.stop();
    }
  });

  test('promtool check metrics finds the exposition valid and without lint problems', { timeout: 15_000 }, async () => {
    const res = await scrape(served());
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const check = await promtoolCheck(await res.text());
    assert.equal(check.output.trim(), '');
    assert.equal(check.status, 0);
  });
});

describe('GET /metrics needs the operator key', { timeout: 20_000 }, () => {
  const served = servedScenario();

  test('401 without a key and with an unknown key, 403 with a tenant key', async () => {
    const base = served();
    const none = await scrape(base, null);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Basic /);
    assert.equal(((await none.json()) as { code: string }).code, 'EPH_VIEW_UNAUTHENTICATED');
    const unknown = await scrape(base, '99999999-9999-4999-8999-999999999999:nope');
    assert.equal(unknown.status, 401);
    const body = (await unknown.json()) as { code: string; error: string };
    assert.match(body.error, /"99999999-9999-4999-8999-999999999999" is not known/);
    assert.ok(!body.error.includes('nope'), 'the secret is not echoed');
    const tenant = await scrape(base, KEYS.alpha);
    assert.equal(tenant.status, 403);
    const forbidden = (await tenant.json()) as { code: string; error: string };
    assert.equal(forbidden.code, 'EPH_VIEW_FORBIDDEN');
    assert.match(forbidden.error, /tenant "alpha"/);
  });
});

describe('GET /metrics follows the cluster', { timeout: 20_000 }, () => {
  test("a removed container's series are gone at the next scrape", async () => {
    const source = new MemoryClusterSource();
    const { app, base } = await serve(source);
    try {
      const all = scenarioContainers(true);
      source.setState([node('node-1', all)], all);
      const before = await (await scrape(base)).text();
      assert.match(before, /container="beta-ml-0"/);
      const rest = all.filter((c) => c.id !== 'beta-ml-0');
      source.setState([node('node-1', rest)], rest);
      const afterText = await (await scrape(base)).text();
      assert.doesNotMatch(afterText, /beta-ml-0/);
      assert.match(afterText, /ephemera_container_limit_bytes\{node="node-1",tenant="alpha",action="gzip",container="alpha-gzip-0"\} 335544320/);
    } finally {
      await app.close();
    }
  });

  test('one snapshot per scrape, and a failing source answers 503 EPH_VIEW_SOURCE', async () => {
    let calls = 0;
    let fail = false;
    const memory = new MemoryClusterSource();
    playScenario(memory);
    const source: ClusterSource = {
      snapshot: () => {
        calls += 1;
        return fail ? Promise.reject(new Error('node-1 agent: connection refused')) : memory.snapshot();
      },
      recentActivations: (limit, tenant) => memory.recentActivations(limit, tenant),
      subscribe: (l) => memory.subscribe(l),
    };
    const { app, base } = await serve(source);
    try {
      assert.equal((await scrape(base)).status, 200);
      assert.equal(calls, 1);
      fail = true;
      const res = await scrape(base);
      assert.equal(res.status, 503);
      const body = (await res.json()) as { code: string; error: string };
      assert.equal(body.code, 'EPH_VIEW_SOURCE');
      assert.match(body.error, /connection refused/);
    } finally {
      await app.close();
    }
  });
});
