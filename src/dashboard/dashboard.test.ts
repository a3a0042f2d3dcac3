/**
 * The live dashboard in headless Chromium (Debian's `chromium`, driven by puppeteer-core): the
 * page signs in with a key, draws the scripted cluster, follows it without reloading, and shows a
 * tenant nothing of another tenant; then the same over a real node agent with real containers.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, Page } from 'puppeteer-core';

import { basicAuthFor } from './auth.js';
import { attrs, closeChromium, inPage, launchChromium, signIn as signInAt } from './chromium.js';
import { dashboardRoutes } from './dashboard-routes.js';
import { inProcessManagers, managerDefaults } from '../node/managers.js';
import { dockerReady, startTestNode, type TestNode } from '../node/testkit.js';
import { MemoryClusterSource } from './memory-source.js';
import { NodeAgentsSource } from './node-source.js';
import { activation, KEYS, MiB, node, playScenario, scenarioAuthorizer, scenarioContainers } from './scenario.js';

const STEP_MS = 15_000;

const signIn = (page: Page, base: string, key: string): Promise<void> => signInAt(page, base, key, STEP_MS);
const all = (selector: string): string => `[...document.querySelectorAll(${JSON.stringify(selector)})]`;
async function texts(page: Page, selector: string): Promise<string[]> {
  return (await inPage(page, `${all(selector)}.map((e) => e.textContent)`)) as string[];
}
async function count(page: Page, selector: string): Promise<number> {
  return (await inPage(page, `${all(selector)}.length`)) as number;
}

describe('the dashboard in headless Chromium', { timeout: 120_000 }, () => {
  const source = new MemoryClusterSource();
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let profile: string;

  before(async () => {
    app = Fastify();
    await app.register(dashboardRoutes, { source, authorizer: scenarioAuthorizer, refreshMs: 200 });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    playScenario(source);
    profile = await mkdtemp(join(tmpdir(), 'ephemera-dashboard-chromium-'));
    browser = await launchChromium(profile);
  });
  after(async () => {
    await closeChromium(browser);
    await app.close();
    await rm(profile, { recursive: true, force: true });
  });

  test("a tenant's key shows its containers, pools and the loan between them", { timeout: 40_000 }, async () => {
    // Each test signs in from a fresh browser context: no cookie carries over.
    const context = await browser.createBrowserContext();
    try {
      const page = await context.newPage();
      await signIn(page, base, KEYS.alpha);
      assert.deepEqual(await attrs(page, '[data-container]', 'data-container'), ['alpha-gzip-0', 'alpha-resize-0']);
      assert.deepEqual(await attrs(page, '[data-container]', 'data-pool'), ['allocation', 'harvest']);
      assert.deepEqual(await attrs(page, '[data-loan]', 'data-from'), ['alpha-resize-0']);
      assert.deepEqual(await attrs(page, '[data-loan]', 'data-to'), ['alpha-gzip-0']);
      assert.deepEqual(await attrs(page, '[data-loan]', 'data-bytes'), [String(64 * MiB)]);
      assert.match((await texts(page, '[data-loan]'))[0] ?? '', /alpha-resize-0 ══ 64\.0 MiB ══▶ alpha-gzip-0/);
      // Each tenant's containers are drawn as Chart.js bars (a canvas), not hand-drawn SVG.
      assert.equal(await count(page, '[data-tenant="alpha"] canvas'), 1);
      assert.deepEqual(await texts(page, '#viewer'), ['tenant alpha']);
      assert.deepEqual(await attrs(page, '#activations tbody tr', 'data-activation'), ['act-3', 'act-2', 'act-1']);
      const firstRow = await texts(page, '#activations tbody tr:first-child td');
      assert.deepEqual(firstRow.slice(1, 5), ['gzip', 'act-3', 'application error', '40 ms']);
      assert.match(firstRow[5] ?? '', /node=node-1 fastOps=120 fileBytes=4194304/);
    } finally {
      await context.close();
    }
  });

  test('the page follows new activations and moves without reloading', { timeout: 40_000 }, async () => {
    const context = await browser.createBrowserContext();
    try {
      const page = await context.newPage();
      await signIn(page, base, KEYS.alpha);
      await inPage(page, 'window.stayed = true');
      source.emit({ type: 'activation', activation: activation('act-4', 'alpha', 'resize', 95) });
      source.emit({ type: 'activation', activation: activation('beta-act-1', 'beta', 'infer', 30) });
      await page.waitForSelector('#activations tbody tr[data-activation="act-4"]', { timeout: STEP_MS });
      assert.equal((await attrs(page, '#activations tbody tr', 'data-activation'))[0], 'act-4');
      // The gzip container gives the 64 MiB back: the loan disappears from the live page.
      const back = scenarioContainers(false);
      source.setState([node('node-1', back)], back);
      source.emit({ type: 'move', node: 'node-1', tenant: 'alpha', seq: 2, from: 'alpha-gzip-0', to: 'alpha-resize-0', bytes: 64 * MiB, reason: 'return', durationSeconds: 0.003, at: Date.now() });
      await page.waitForSelector('[data-move="2"]', { timeout: STEP_MS });
      await page.waitForFunction("document.querySelectorAll('[data-loan]').length === 0", { timeout: STEP_MS });
      assert.equal(await inPage(page, 'window.stayed'), true, 'the page was not reloaded');
      assert.equal(await inPage(page, "performance.getEntriesByType('navigation').length"), 1);
      assert.equal(await page.$('[data-activation="beta-act-1"]'), null, "beta's activation is not shown to alpha");
      const loan = scenarioContainers(true);
      source.setState([node('node-1', loan)], loan);
    } finally {
      await context.close();
    }
  });

  test("another tenant's key does not show these containers; the operator's shows all", { timeout: 40_000 }, async () => {
    const context = await browser.createBrowserContext();
    try {
      const page = await context.newPage();
      await signIn(page, base, KEYS.beta);
      assert.deepEqual(await attrs(page, '[data-container]', 'data-container'), ['beta-ml-0']);
      assert.equal(await count(page, '[data-loan]'), 0);
      const html = await page.content();
      for (const id of ['alpha-resize-0', 'alpha-gzip-0', 'alpha/', 'tenant alpha']) assert.ok(!html.includes(id), `${id} is not on beta's page`);
      assert.deepEqual(await attrs(page, '#activations tbody tr', 'data-activation'), ['beta-act-1']);
    } finally {
      await context.close();
    }
    const adminContext = await browser.createBrowserContext();
    try {
      const admin = await adminContext.newPage();
      await admin.setViewport({ width: 1280, height: 900 });
      await signIn(admin, base, KEYS.admin);
      await admin.waitForSelector('[data-loan]', { timeout: STEP_MS });
      assert.deepEqual(await attrs(admin, '[data-container]', 'data-container'), ['alpha-gzip-0', 'alpha-resize-0', 'beta-ml-0']);
      assert.deepEqual(await texts(admin, '#viewer'), ['operator (all tenants)']);
      const shot = process.env['EPHEMERA_DASHBOARD_SCREENSHOT'] ?? join('build', 'test', 'dashboard.png');
      await mkdir(dirname(shot), { recursive: true });
      await admin.screenshot({ path: shot, fullPage: true });
    } finally {
      await adminContext.close();
    }
  });

  test('the stream and the view need a key or a session; a bad key is refused on sign-in', { timeout: 10_000 }, async () => {
    for (const path of ['/dashboard/events', '/dashboard/api/view', '/dashboard/session']) {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 401, path);
      assert.equal(((await res.json()) as { code: string }).code, 'EPH_VIEW_UNAUTHENTICATED');
    }
    const bad = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: { authorization: basicAuthFor('nobody:wrong') }, signal: AbortSignal.timeout(5000) });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get('set-cookie'), null);
    const ok = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: { authorization: basicAuthFor(KEYS.beta) }, signal: AbortSignal.timeout(5000) });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('set-cookie') ?? '', /^ephemera_session=[\w-]{43}; Max-Age=\d+; Path=\/dashboard; HttpOnly; SameSite=Strict$/);
    const page = await fetch(`${base}/dashboard`, { signal: AbortSignal.timeout(5000) });
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  });
});

describe('the dashboard over a real node agent (Docker), in headless Chromium', { timeout: 300_000 }, () => {
  let skip: string | null = null;
  let agent: TestNode | undefined;
  before(async () => {
    skip = await dockerReady();
    if (skip === null) agent = await startTestNode(inProcessManagers(managerDefaults('tenant')), { node: `dashui${String(process.pid)}` });
  });
  after(async () => {
    await agent?.close();
  });

  test("real containers: the agent's loan and a real activation on the tenant's page, nothing of it on another's", { timeout: 240_000 }, async (t) => {
    if (skip !== null || agent === undefined) return t.skip(skip ?? 'no node');
    const client = agent.client;
    const donor = await client.createContainer({ tenant: 'alpha', function: 'factorial', memoryBytes: 256 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 0 } });
    const recipient = await client.createContainer({ tenant: 'alpha', function: 'io', memoryBytes: 80 * MiB, profile: { ownPeakBytes: 24 * MiB, filePeakBytes: 64 * MiB } });
    // The donor runs once (a real activation); the recipient's profile (64 MiB of files in an
    // 80 MiB quota) makes the Manager lend to it once both are running, below.
    const code = 'def main(args):\n    with open("/tmp/x", "wb") as f:\n        f.write(b"e" * 1048576)\n    return {"ok": True}\n';
    assert.equal((await client.init(donor.id, { value: { code } })).statusCode, 200);

    // What the controller does with every run: the daemon counters and the activation to the views.
    const source = new NodeAgentsSource([client]);
    const start = Date.now();
    const run = await client.run(donor.id, { value: {}, activation_id: 'real-act-1', timeoutMs: 60_000 });
    assert.equal(run.statusCode, 200, JSON.stringify(run.body));
    source.recordRun(donor.id, run.ephemera.stats);
    source.emit({
      type: 'activation',
      activation: { activationId: 'real-act-1', tenant: 'alpha', action: 'factorial', status: 'success', start, durationMs: run.durationMs, ephemera: { node: run.ephemera.node, pool: run.ephemera.pool, fastWrites: run.ephemera.stats.fast_writes } },
    });

    const app = Fastify();
    await app.register(dashboardRoutes, { source, authorizer: scenarioAuthorizer, refreshMs: 200 });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const profile = await mkdtemp(join(tmpdir(), 'ephemera-dashboard-chromium-'));
    const browser = await launchChromium(profile);
    // Both run now: the Manager lends the donor's spare memory to the recipient.
    await client.invocationStart(donor.id);
    await client.invocationStart(recipient.id);
    try {
      const alpha = await browser.createBrowserContext();
      const page = await alpha.newPage();
      await signIn(page, base, KEYS.alpha);
      assert.deepEqual((await attrs(page, '[data-container]', 'data-container')).sort(), [donor.id, recipient.id].sort());
      assert.equal(await inPage(page, `document.querySelector('[data-container="${donor.id}"]').getAttribute('data-pool')`), 'harvest');
      assert.deepEqual(await attrs(page, '[data-loan]', 'data-from'), [donor.id]);
      assert.deepEqual(await attrs(page, '[data-loan]', 'data-to'), [recipient.id]);
      assert.ok(Number((await attrs(page, '[data-loan]', 'data-bytes'))[0]) > 0);
      assert.deepEqual(await attrs(page, '#activations tbody tr', 'data-activation'), ['real-act-1']);
      assert.match((await texts(page, '#activations tbody tr td'))[5] ?? '', /pool=harvest fastWrites=\d+/);
      await alpha.close();

      const beta = await browser.createBrowserContext();
      const other = await beta.newPage();
      await signIn(other, base, KEYS.beta);
      assert.equal(await count(other, '[data-container]'), 0);
      assert.equal(await count(other, '[data-loan]'), 0);
      assert.ok(!(await other.content()).includes(donor.id));
      await beta.close();

      const operator = await browser.createBrowserContext();
      const admin = await operator.newPage();
      await admin.setViewport({ width: 1280, height: 900 });
      await signIn(admin, base, KEYS.admin);
      await admin.waitForSelector('[data-loan]', { timeout: STEP_MS });
      const shot = process.env['EPHEMERA_DASHBOARD_AGENT_SCREENSHOT'] ?? join('build', 'test', 'dashboard-agent.png');
      await mkdir(dirname(shot), { recursive: true });
      await admin.screenshot({ path: shot, fullPage: true });
      await operator.close();
    } finally {
      await client.invocationEnd(recipient.id).catch(() => undefined);
      await client.invocationEnd(donor.id).catch(() => undefined);
      await closeChromium(browser);
      await app.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});
