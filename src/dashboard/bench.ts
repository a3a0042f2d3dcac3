/**
 * `ephemera bench dashboard`: the views' two targets, measured side by side in one run.
 *
 * - `GET /metrics` with 1000 containers ≤ 50 ms. Two cores cannot run 1000 function containers,
 *   so the containers are in-memory models (a {@link MemoryClusterSource}) fed to the real
 *   collectors, served by the real route over loopback HTTP and timed from the client.
 * - The dashboard's first render with 100 containers and 1000 activations ≤ 1 s: headless
 *   Chromium loads /dashboard (signed in), and the time is the page's own mark from navigation
 *   start to the first drawing of the view, the charts and the activation list.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import Fastify from 'fastify';

import { basicAuthFor } from './auth.js';
import { closeChromium, launchChromium } from './chromium.js';
import { dashboardRoutes, SESSION_COOKIE } from './dashboard-routes.js';
import { MemoryClusterSource } from './memory-source.js';
import { metricsRoutes } from './metrics-routes.js';
import { activation, container, KEYS, MiB, node, scenarioAuthorizer } from './scenario.js';
import type { ContainerSnapshot, Pool } from './source.js';

const METRICS_TARGET_MS = 50;
const RENDER_TARGET_MS = 1000;
const POOLS: readonly Pool[] = ['harvest', 'allocation', 'self-sufficient'];

/** `n` containers over ceil(n/100) nodes and n/20 tenants of 4 actions; every other one lends 16 MiB to its neighbour. */
export function modelCluster(n: number, source: MemoryClusterSource): void {
  const containers: ContainerSnapshot[] = [];
  for (let i = 0; i < n; i++) {
    const lends = i % 2 === 0 && i + 1 < n;
    const borrows = i % 2 === 1;
    containers.push(
      container(`c${i}`, `tenant-${Math.floor(i / 20)}`, `action-${i % 4}`, POOLS[i % 3] ?? 'harvest', 256 * MiB, {
        node: `node-${Math.floor(i / 100)}`,
        granted: 256 * MiB + (borrows ? 16 * MiB : 0) - (lends ? 16 * MiB : 0),
        lent: lends ? [{ partner: `c${i + 1}`, bytes: 16 * MiB }] : [],
        borrowed: borrows ? [{ partner: `c${i - 1}`, bytes: 16 * MiB }] : [],
        evictions: i,
        fastReads: 1000 * i,
        fastWrites: 500 * i,
        slowOps: 10 * i,
      }),
    );
  }
  const nodes = [...new Set(containers.map((c) => c.node))].map((name) => node(name, containers));
  source.setState(nodes, containers);
}

function activations(n: number, tenants: number, source: MemoryClusterSource): void {
  const start = Date.now() - n * 100;
  for (let i = 0; i < n; i++) {
    const status = i % 17 === 0 ? 'application error' : 'success';
    source.emit({ type: 'activation', activation: activation(`act-${i}`, `tenant-${i % tenants}`, `action-${i % 4}`, 20 + (i % 50) * 3, status, start + i * 100) });
  }
}

function summary(values: number[]): { median: number; p90: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))] ?? NaN;
  return { median: at(0.5), p90: at(0.9) };
}

export interface DashboardBenchOptions {
  readonly metricsContainers: number;
  readonly scrapes: number;
  readonly pageContainers: number;
  readonly pageActivations: number;
  readonly renders: number;
  readonly progress?: (line: string) => void;
}

export interface DashboardBenchRow {
  readonly what: string;
  readonly targetMs: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly runs: number;
}

async function benchMetrics(o: DashboardBenchOptions): Promise<{ row: DashboardBenchRow; series: number; bytes: number; cpuMs: number }> {
  const source = new MemoryClusterSource();
  modelCluster(o.metricsContainers, source);
  const app = Fastify();
  await app.register(metricsRoutes, { source, authorizer: scenarioAuthorizer });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    // Histograms and counters with data in them: 1000 activations over 100 actions, 200 moves.
    for (let i = 0; i < 1000; i++) source.emit({ type: 'activation', activation: activation(`a${i}`, `tenant-${i % 25}`, `action-${i % 4}`, 10 + (i % 90)) });
    for (let i = 0; i < 200; i++) {
      source.emit({ type: 'move', node: `node-${i % 10}`, tenant: `tenant-${i % 50}`, seq: i, from: `c${i}`, to: `c${i + 1}`, bytes: 16 * MiB, reason: i % 7 === 0 ? 'safeguard' : 'lend', durationSeconds: 0.001 * (i % 20), at: Date.now() });
    }
    const scrape = async (): Promise<string> => {
      const res = await fetch(`${base}/metrics`, { headers: { authorization: basicAuthFor(KEYS.admin) }, signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
      return res.text();
    };
    let text = '';
    for (let i = 0; i < 5; i++) text = await scrape();
    const times: number[] = [];
    // Server and client share this process: its CPU time per scrape is what one scrape costs
    // on a machine with a core to spare (the wall time also holds waiting for a busy machine).
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < o.scrapes; i++) {
      const t0 = performance.now();
      await scrape();
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    const s = summary(times);
    const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    return {
      row: { what: `GET /metrics, ${o.metricsContainers} containers`, targetMs: METRICS_TARGET_MS, medianMs: s.median, p90Ms: s.p90, runs: o.scrapes },
      series,
      bytes: Buffer.byteLength(text),
      cpuMs: (cpu.user + cpu.system) / 1000 / o.scrapes,
    };
  } finally {
    await app.close();
  }
}

async function benchRender(o: DashboardBenchOptions): Promise<DashboardBenchRow> {
  const source = new MemoryClusterSource();
  modelCluster(o.pageContainers, source);
  activations(o.pageActivations, Math.ceil(o.pageContainers / 20), source);
  const app = Fastify();
  await app.register(dashboardRoutes, { source, authorizer: scenarioAuthorizer, activationLimit: o.pageActivations });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const profile = await mkdtemp(join(tmpdir(), 'ephemera-dashboard-bench-'));
  const browser = await launchChromium(profile);
  try {
    const times: number[] = [];
    for (let i = 0; i < o.renders + 1; i++) {
      const session = await fetch(`${base}/dashboard/session`, { method: 'POST', headers: { authorization: basicAuthFor(KEYS.admin) }, signal: AbortSignal.timeout(10_000) });
      const token = /ephemera_session=([^;]+)/.exec(session.headers.get('set-cookie') ?? '')?.[1];
      if (token === undefined) throw new Error(`POST /dashboard/session gave no cookie (${session.status})`);
      const context = await browser.createBrowserContext();
      try {
        await context.setCookie({ name: SESSION_COOKIE, value: token, domain: '127.0.0.1', path: '/dashboard' });
        const page = await context.newPage();
        await page.setViewport({ width: 1280, height: 900 });
        await page.goto(`${base}/dashboard`, { waitUntil: 'domcontentloaded', timeout: 30_000 });
        await page.waitForSelector('body[data-rendered="1"]', { timeout: 30_000 });
        const ms = (await page.evaluate("performance.getEntriesByName('ephemera-first-render')[0].startTime")) as number;
        const rows = (await page.evaluate('document.querySelectorAll("[data-container]").length')) as number;
        if (rows !== o.pageContainers) throw new Error(`the page drew ${rows} containers, expected ${o.pageContainers}`);
        // The first load warms Chromium's caches; it is not counted.
        if (i > 0) times.push(ms);
        o.progress?.(`dashboard: first render ${i}/${o.renders}: ${ms.toFixed(0)} ms`);
      } finally {
        await context.close();
      }
    }
    const s = summary(times);
    return { what: `first render, ${o.pageContainers} containers + ${o.pageActivations} activations`, targetMs: RENDER_TARGET_MS, medianMs: s.median, p90Ms: s.p90, runs: o.renders };
  } finally {
    await closeChromium(browser);
    await app.close();
    await rm(profile, { recursive: true, force: true });
  }
}

export async function runDashboardBench(o: DashboardBenchOptions): Promise<{ table: string; rows: DashboardBenchRow[] }> {
  o.progress?.('dashboard: GET /metrics');
  const load = loadavg()[0] ?? 0;
  const metrics = await benchMetrics(o);
  const render = await benchRender(o);
  const rows = [metrics.row, render];
  const header = ['what', 'target', 'median', 'p90', 'runs', 'target/median'];
  const body = rows.map((r) => [r.what, `${r.targetMs} ms`, `${r.medianMs.toFixed(1)} ms`, `${r.p90Ms.toFixed(1)} ms`, String(r.runs), `${(r.targetMs / r.medianMs).toFixed(1)}x`]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const table = [
    'ephemera bench dashboard: the containers are in-memory models fed to the real collectors and routes (loopback HTTP, headless Chromium)',
    line(header),
    ...body.map(line),
    `/metrics: ${metrics.series} samples, ${(metrics.bytes / 1024).toFixed(0)} KiB, ${metrics.cpuMs.toFixed(1)} ms of CPU per scrape (server and client together)`,
    `load average at the start: ${load.toFixed(1)} on ${String(availableParallelism())} cores; a ratio above 1.0x meets the target`,
  ].join('\n');
  return { table, rows };
}
