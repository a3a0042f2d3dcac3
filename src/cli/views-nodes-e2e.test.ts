/**
 * The operator's views across two nodes: `ephemera up --nodes 2 --node-memory 1024M` as a process
 * (two real node agents, each in its own parent cgroup, Docker containers), the most-free scheduler
 * (so a tenant's second action lands on the other node), two tenants' actions invoked through the
 * OpenWhisk API, then
 * - `/metrics` scraped by a real Prometheus has each node's series, labelled with its node, and each
 *   container's series under the node whose agent runs it;
 * - the dashboard in headless Chromium shows the operator both nodes with all their containers, and
 *   a tenant only its own containers (and only the nodes where it has some);
 * - `ephemera status` lists both nodes, each with its containers;
 * - after the controller restarts on the same state directory, the dashboard's activation list and
 *   `/metrics`' activation counters agree with the stored activation records: the list shows them
 *   again, the counters count those written since `process_start_time_seconds` (docs/ARCHITECTURE.md,
 *   "After a controller restart", says why they are not seeded from the store).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { Page } from 'puppeteer-core';

import { basicAuthFor } from '../dashboard/auth.js';
import { attrs, signIn } from '../dashboard/chromium.js';
import { PrometheusServer, promtoolCheck, waitFor } from '../dashboard/prometheus-harness.js';
import { NodeClient } from '../node/client.js';
import { UpUnderTest } from './views-harness.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const NAME = `views-nodes-${String(process.pid)}`;
const NODES = [`${NAME}-node-1`, `${NAME}-node-2`] as const;
const MiB = 1024 * 1024;
const STEP_MS = 30_000;
/** A quick action: the test is about where containers are, not what they do. */
const QUICK_ACTION = 'def main(a):\n    return {"hello": a.get("name", "world")}\n';

interface ActivationRecord {
  activationId: string;
  namespace: string;
  name: string;
  duration: number;
  response: { status: string };
  annotations: { key: string; value: unknown }[];
}

describe('the operator views across two nodes (`ephemera up --nodes 2`, real agents, Docker, Chromium, Prometheus)', { timeout: 600_000 }, () => {
  const h = new UpUnderTest(
    'views-nodes-e2e',
    ['--name', NAME, '--nodes', '2', '--node-memory', '1024M', '--scheduler', 'most-free', '--keep-alive-ms', '300000', '--tenant', 'alpha', '--tenant', 'beta'],
    NODES,
  );
  const agent = (node: string): NodeClient => new NodeClient(join(h.dir, 'state', 'nodes', node, 'node.sock'), { timeoutMs: 10_000 });
  const records: ActivationRecord[] = [];
  /** Container id → the node whose agent runs it, after the invocations. */
  const placed = new Map<string, { node: string; tenant: string; action: string }>();

  const metricsText = async (): Promise<string> =>
    (await fetch(`${h.url}/metrics`, { headers: { authorization: basicAuthFor(h.key('admin')) }, signal: AbortSignal.timeout(10_000) })).text();
  const page = async (tenant: string): Promise<{ page: Page; close: () => Promise<void> }> => {
    if (h.browser === undefined) throw new Error('no browser');
    const ctx = await h.browser.createBrowserContext();
    const p = await ctx.newPage();
    await signIn(p, h.url, h.key(tenant), STEP_MS);
    return { page: p, close: () => ctx.close() };
  };

  before(() => h.begin());
  after(() => h.end());

  test('the most-free scheduler puts a tenant\'s two actions on the two nodes', { timeout: 300_000 }, async (t) => {
    if (h.skip !== null) return t.skip(h.skip);
    for (const [tenant, action] of [['alpha', 'one'], ['alpha', 'two'], ['beta', 'three']] as const) {
      const put = await h.api(tenant, 'PUT', `actions/${action}`, { exec: { kind: 'python:3', code: QUICK_ACTION }, limits: { memory: 256 } });
      assert.equal(put.status, 200, JSON.stringify(put.json));
      // One after the other: each placement sees the containers placed before it.
      const r = await h.api(tenant, 'POST', `actions/${action}?blocking=true`, { name: action });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      records.push(r.json as ActivationRecord);
    }
    for (const node of NODES) {
      for (const c of await agent(node).listContainers()) placed.set(c.id, { node, tenant: c.tenant, action: c.function });
    }
    t.diagnostic(`placed: ${JSON.stringify([...placed.values()])}`);
    assert.equal(placed.size, 3);
    const alphaNodes = [...placed.values()].filter((c) => c.tenant === 'alpha').map((c) => c.node).sort();
    assert.deepEqual(alphaNodes, [...NODES], "alpha's second action goes to the node with more free memory");
    // Each record's `ephemera` annotation names the node its container is on.
    for (const rec of records) {
      const eph = rec.annotations.find((a) => a.key === 'ephemera')?.value as { node?: string } | undefined;
      const where = [...placed.values()].find((c) => c.action === `${rec.namespace}/${rec.name}`);
      assert.equal(eph?.node, where?.node, JSON.stringify(rec.annotations));
    }
  });

  test("/metrics has each node's series under its node label, and each container under its node", { timeout: 120_000 }, async (t) => {
    if (h.skip !== null || placed.size !== 3) return t.skip(h.skip ?? 'the placement test did not place three containers');
    const lint = await promtoolCheck(await metricsText());
    assert.equal(lint.status, 0, lint.output);
    const prom = await PrometheusServer.start(new URL(h.url).host, h.key('admin'));
    try {
      const v = (q: string): Promise<number | undefined> => prom.value(q);
      await waitFor('a scrape after the invocations', 30_000, async () => ((await v('sum(ephemera_activations_total)')) === 3 ? true : undefined));
      assert.equal(await v('count(ephemera_node_memory_limit_bytes)'), 2);
      for (const node of NODES) {
        const info = await agent(node).node();
        assert.equal(info.memory.limit, 1024 * MiB);
        assert.equal(await v(`ephemera_node_memory_limit_bytes{node="${node}"}`), info.memory.limit);
        assert.equal(await v(`ephemera_node_memory_allocated_bytes{node="${node}"}`), info.memory.allocated);
        assert.equal(await v(`ephemera_node_memory_requested_bytes{node="${node}"}`), info.memory.requested);
        for (const [tenant, figures] of Object.entries(info.tenants)) {
          assert.equal(await v(`ephemera_tenant_memory_allocated_bytes{node="${node}",tenant="${tenant}"}`), figures.allocated);
        }
      }
      assert.equal(await v('count(ephemera_container_limit_bytes)'), 3);
      for (const [id, c] of placed) {
        assert.equal(await v(`ephemera_container_limit_bytes{node="${c.node}",tenant="${c.tenant}",action="${c.action}",container="${id}"}`), 256 * MiB);
        assert.equal(await v(`count(ephemera_container_limit_bytes{container="${id}"})`), 1, `${id} is under one node only`);
      }
      for (const rec of records) {
        assert.equal(await v(`ephemera_activations_total{tenant="${rec.namespace}",action="${rec.namespace}/${rec.name}",status="success"}`), 1);
      }
      assert.equal(await v('sum(ephemera_scheduler_decisions_total{policy="most-free",outcome="placed"})'), 3);
    } finally {
      await prom.stop();
    }
  });

  test("the dashboard: the operator sees both nodes' containers, a tenant only its own", { timeout: 120_000 }, async (t) => {
    if (h.skip !== null || placed.size !== 3) return t.skip(h.skip ?? 'the placement test did not place three containers');
    const idsOn = (node: string, tenant?: string): string[] =>
      [...placed].filter(([, c]) => c.node === node && (tenant === undefined || c.tenant === tenant)).map(([id]) => id).sort();
    const operator = await page('admin');
    try {
      for (const id of placed.keys()) await operator.page.waitForSelector(`[data-container="${id}"]`, { timeout: STEP_MS });
      assert.deepEqual((await attrs(operator.page, '[data-node]', 'data-node')).sort(), [...NODES]);
      for (const node of NODES) {
        assert.deepEqual((await attrs(operator.page, `[data-node="${node}"] [data-container]`, 'data-container')).sort(), idsOn(node));
      }
      for (const rec of records) await operator.page.waitForSelector(`#activations tbody tr[data-activation="${rec.activationId}"]`, { timeout: STEP_MS });
    } finally {
      await operator.close();
    }
    for (const tenant of ['alpha', 'beta']) {
      const own = [...placed].filter(([, c]) => c.tenant === tenant);
      const mine = await page(tenant);
      try {
        for (const [id] of own) await mine.page.waitForSelector(`[data-container="${id}"]`, { timeout: STEP_MS });
        assert.deepEqual((await attrs(mine.page, '[data-container]', 'data-container')).sort(), own.map(([id]) => id).sort());
        // Only the nodes where it has containers, each with just its own.
        assert.deepEqual((await attrs(mine.page, '[data-node]', 'data-node')).sort(), [...new Set(own.map(([, c]) => c.node))].sort());
        for (const node of NODES) {
          assert.deepEqual((await attrs(mine.page, `[data-node="${node}"] [data-container]`, 'data-container')).sort(), idsOn(node, tenant));
        }
        const html = await mine.page.content();
        for (const [id, c] of placed) if (c.tenant !== tenant) assert.ok(!html.includes(id), `${tenant}'s page shows ${id}`);
        for (const rec of records) if (rec.namespace !== tenant) assert.ok(!html.includes(rec.activationId), `${tenant}'s page shows ${rec.activationId}`);
      } finally {
        await mine.close();
      }
    }
  });

  test('`ephemera status` lists both nodes, each with its containers', { timeout: 60_000 }, (t) => {
    if (h.skip !== null || placed.size !== 3) return t.skip(h.skip ?? 'the placement test did not place three containers');
    const r = spawnSync(process.execPath, [MAIN, 'status', '--props', join(h.dir, 'home', 'admin.wskprops')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    // One section per node, from its NODE line to the next (the last one to the pools' legend).
    const sections = new Map<string, string>();
    for (const part of r.stdout.slice(0, r.stdout.indexOf('\nPOOLS')).split('\nNODE ').slice(1)) sections.set(part.slice(0, part.indexOf(' ')), part);
    assert.deepEqual([...sections.keys()].sort(), [...NODES], r.stdout);
    for (const c of placed.values()) assert.match(sections.get(c.node) ?? '', new RegExp(`TENANT ${c.tenant}[^]*${c.action}`), r.stdout);
    for (const node of NODES) {
      for (const c of placed.values()) if (c.node !== node) assert.ok(!(sections.get(node) ?? '').includes(c.action), `${c.action} is listed under ${node}:\n${r.stdout}`);
    }
  });

  test("after the controller restarts, the dashboard's activation list and /metrics' activation counters agree with the stored records", { timeout: 240_000 }, async (t) => {
    if (h.skip !== null || records.length !== 3) return t.skip(h.skip ?? 'the placement test did not run its three activations');
    const restartedAt = Date.now();
    await h.stop();
    await h.start();
    const stored = async (tenant: string): Promise<ActivationRecord[]> => {
      const r = await h.api(tenant, 'GET', 'activations?limit=200&docs=true');
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json as ActivationRecord[];
    };
    const before = [...(await stored('alpha')), ...(await stored('beta'))];
    assert.deepEqual(before.map((r) => r.activationId).sort(), records.map((r) => r.activationId).sort());

    // /metrics counts what this controller finished: nothing yet, and it says since when.
    let text = await metricsText();
    assert.doesNotMatch(text, /^ephemera_activations_total\{/m);
    const started = Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1]) * 1000;
    assert.ok(started >= restartedAt - 1000 && started <= Date.now(), text);

    // The dashboard shows the stored records again: the operator all, each tenant its own.
    const rows = (p: Page): Promise<(string | null)[]> => attrs(p, '#activations tbody tr[data-activation]', 'data-activation');
    const operator = await page('admin');
    try {
      assert.deepEqual((await rows(operator.page)).sort(), before.map((r) => r.activationId).sort());
      for (const tenant of ['alpha', 'beta']) {
        const mine = await page(tenant);
        try {
          assert.deepEqual((await rows(mine.page)).sort(), before.filter((r) => r.namespace === tenant).map((r) => r.activationId).sort());
        } finally {
          await mine.close();
        }
      }
      // A new activation: it joins the open page, and it is the one the counters count.
      const r = await h.api('alpha', 'POST', 'actions/one?blocking=true', { name: 'again' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const again = r.json as ActivationRecord;
      await operator.page.waitForSelector(`#activations tbody tr[data-activation="${again.activationId}"]`, { timeout: STEP_MS });
      assert.equal((await rows(operator.page))[0], again.activationId);
      const now = [...(await stored('alpha')), ...(await stored('beta'))];
      assert.equal(now.length, 4);
      const sinceStart = now.filter((rec) => (rec as ActivationRecord & { end: number }).end >= restartedAt);
      assert.deepEqual(sinceStart.map((rec) => rec.activationId), [again.activationId]);
      text = await metricsText();
      const counted = [...text.matchAll(/^ephemera_activations_total\{tenant="([^"]+)",action="([^"]+)",status="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1], m[2], m[3], Number(m[4])]);
      assert.deepEqual(counted, [['alpha', 'alpha/one', 'success', 1]], text);
    } finally {
      await operator.close();
    }
  });
});
