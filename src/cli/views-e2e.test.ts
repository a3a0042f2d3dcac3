/**
 * The operator's views on the real platform: `ephemera up` as a process (a real node agent, Docker
 * containers, ephemerad, the Manager), one tenant's CPU-bound and I/O-heavy actions deployed and
 * invoked through the OpenWhisk API, and a third action whose own memory outgrows what its daemon
 * keeps free (one shortfall, no OOM kill), then
 * - the dashboard in headless Chromium: the Manager's loan appears, the activation list follows
 *   without a reload, another tenant's key shows none of it (and a screenshot of the operator's page);
 * - `/metrics` scraped by a real Prometheus with the operator key: its values are what happened
 *   (the activation records, the agent's own journal and container list), `promtool` finds no problem;
 * - `ephemera status` as a process against it;
 * - the controller's and the agent's JSON log lines carry the activations' ids.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { Page } from 'puppeteer-core';

import { basicAuthFor } from '../dashboard/auth.js';
import { attrs, inPage, signIn as signInAt } from '../dashboard/chromium.js';
import { PrometheusServer, promtoolCheck, waitFor } from '../dashboard/prometheus-harness.js';
import { CPU_ACTION, IO_ACTION } from '../bench/platform-demo.js';
import { NodeClient } from '../node/client.js';
import { UpUnderTest } from './views-harness.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const NAME = `views-e2e-${String(process.pid)}`;
const NODE = `${NAME}-node-1`;
const MiB = 1024 * 1024;
const STEP_MS = 30_000;
/** What the dashboard test runs: cpu twice, io once, grow once. */
const ACTIVATIONS = 4;

/**
 * An action that runs short of memory on purpose, and deterministically: its heap grows in 1 MiB
 * steps until the container's own (non-file) memory, read from its cgroup as its daemon reads it
 * (usage less the page cache), is within `leave_mb` of the limit it started with, then holds it.
 * The daemon reports a shortfall once own memory plus its headroom (limit/16, at least 8 MiB)
 * passes the limit: with a 256 MiB limit (16 MiB headroom) and `leave_mb` 8, that is ~8 MiB short,
 * while the heap stays 8 MiB under the limit, so nothing is OOM-killed whether or not the Manager
 * finds a donor (here none runs: the CPU action is idle, and idle containers do not lend).
 */
const GROW_ACTION = `
import os
import time
def _cgroup():
    for d, usage, limit, files in (
            ("/sys/fs/cgroup/memory", "memory.usage_in_bytes", "memory.limit_in_bytes", ("total_inactive_file", "total_active_file")),
            ("/sys/fs/cgroup", "memory.current", "memory.max", ("inactive_file", "active_file"))):
        if os.path.exists(os.path.join(d, usage)):
            return d, usage, limit, files
    raise RuntimeError("no memory cgroup under /sys/fs/cgroup")
def _read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read()
def _own(cg):
    d, usage, _, files = cg
    stat = dict(line.split() for line in _read(d, "memory.stat").splitlines())
    return int(_read(d, usage)) - sum(int(stat.get(k, 0)) for k in files)
def main(args):
    cg = _cgroup()
    limit = int(_read(cg[0], cg[2]))
    target = limit - int(args.get("leave_mb", 8)) * (1 << 20)
    heap = []
    deadline = time.time() + 60
    while _own(cg) < target and time.time() < deadline:
        heap.append(bytes([len(heap) % 251 + 1]) * (1 << 20))
        time.sleep(0.01)
    own = _own(cg)
    time.sleep(float(args.get("hold", 1.5)))
    return {"limit": limit, "target": target, "own": own, "heap_mib": len(heap)}
`;

interface ActivationRecord {
  activationId: string;
  name: string;
  duration: number;
  response: { status: string; success: boolean; result?: unknown };
}

async function signIn(page: Page, base: string, key: string): Promise<void> {
  await signInAt(page, base, key, STEP_MS);
  // Set once: a reload would lose it.
  await inPage(page, 'window.__noReload = "still here"');
}

describe('the operator views on `ephemera up` (real node agent, Docker, Chromium, Prometheus)', { timeout: 900_000 }, () => {
  const h = new UpUnderTest('views-e2e', ['--name', NAME, '--keep-alive-ms', '300000', '--tenant', 'alpha', '--tenant', 'beta'], [NODE]);
  const agent = (): NodeClient => new NodeClient(join(h.dir, 'state', 'nodes', NODE, 'node.sock'), { timeoutMs: 10_000 });
  const records: ActivationRecord[] = [];

  const invoke = async (action: string, params: object): Promise<ActivationRecord> => {
    const r = await h.api('alpha', 'POST', `actions/${action}?blocking=true`, params);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const rec = r.json as ActivationRecord;
    records.push(rec);
    return rec;
  };

  before(() => h.begin());
  after(() => h.end());

  test('the dashboard: the loan appears, activations arrive without a reload, another tenant sees none of it', { timeout: 400_000 }, async (t) => {
    if (h.skip !== null || h.browser === undefined) return t.skip(h.skip ?? 'no h.browser');
    // What the profiler would say: the CPU action needs little of its 256 MiB, the I/O action
    // more file space than its 128 MiB hold, so the Manager lends from one to the other.
    for (const [name, code, memory, profile] of [
      ['cpu', CPU_ACTION, 256, { ownPeakBytes: 12 * MiB, filePeakBytes: 0 }],
      ['io', IO_ACTION, 128, { ownPeakBytes: 24 * MiB, filePeakBytes: 160 * MiB }],
    ] as const) {
      const r = await h.api('alpha', 'PUT', `actions/${name}`, { exec: { kind: 'python:3', code }, limits: { memory }, annotations: [{ key: 'ephemera.profile', value: profile }] });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    // No profile: it is self-sufficient with its 256 MiB until its daemon says it is short.
    const grow = await h.api('alpha', 'PUT', 'actions/grow', { exec: { kind: 'python:3', code: GROW_ACTION }, limits: { memory: 256 } });
    assert.equal(grow.status, 200, JSON.stringify(grow.json));
    const alphaCtx = await h.browser.createBrowserContext();
    const operatorCtx = await h.browser.createBrowserContext();
    try {
      const alpha = await alphaCtx.newPage();
      await signIn(alpha, h.url, h.key('alpha'));
      const operator = await operatorCtx.newPage();
      await operator.setViewport({ width: 1280, height: 900 });
      await signIn(operator, h.url, h.key('admin'));
      assert.equal((await attrs(alpha, '#activations tbody tr[data-activation]', 'data-activation')).length, 0);

      // One activation: it arrives in the open page.
      const first = await invoke('cpu', { s: 0.1 });
      await alpha.waitForSelector(`#activations tbody tr[data-activation="${first.activationId}"]`, { timeout: STEP_MS });

      // Both actions together: the I/O action borrows what the CPU action does not use.
      const cpu = invoke('cpu', { s: 8 });
      await new Promise((r) => setTimeout(r, 1500));
      // The files are held 4 s after the last read, so the loan outlasts the feed's 250 ms journal
      // poll and the hub's refresh even on a loaded machine (alone it lasts ~250 ms).
      const io = invoke('io', { mb: 160, hold: 4 });
      await alpha.waitForSelector('[data-loan]', { timeout: STEP_MS });
      await operator.waitForSelector('[data-loan]', { timeout: STEP_MS });
      const mine = await agent().listContainers('alpha');
      const donor = mine.find((c) => c.function === 'alpha/cpu');
      const recipient = mine.find((c) => c.function === 'alpha/io');
      assert.ok(donor !== undefined && recipient !== undefined, JSON.stringify(mine));
      assert.deepEqual((await attrs(alpha, '[data-container]', 'data-container')).sort(), [donor.id, recipient.id].sort());
      assert.deepEqual(await attrs(alpha, '[data-loan]', 'data-from'), [donor.id]);
      assert.deepEqual(await attrs(alpha, '[data-loan]', 'data-to'), [recipient.id]);
      assert.ok(Number((await attrs(alpha, '[data-loan]', 'data-bytes'))[0]) > 0);
      assert.equal(await inPage(alpha, `document.querySelector('[data-container="${donor.id}"]').getAttribute('data-pool')`), 'harvest');

      const [cpuRec, ioRec] = await Promise.all([cpu, io]);
      for (const rec of [first, cpuRec, ioRec]) {
        assert.equal(rec.response.status, 'success');
        await alpha.waitForSelector(`#activations tbody tr[data-activation="${rec.activationId}"]`, { timeout: STEP_MS });
      }
      assert.equal(await inPage(alpha, 'window.__noReload'), 'still here');
      const row = (await inPage(alpha, `document.querySelector('#activations tbody tr[data-activation="${ioRec.activationId}"]').textContent`)) as string;
      assert.match(row, /pool=allocation/);
      await operator.waitForSelector(`#activations tbody tr[data-activation="${ioRec.activationId}"]`, { timeout: STEP_MS });
      const shot = process.env['EPHEMERA_DASHBOARD_UP_SCREENSHOT'] ?? join('build', 'test', 'dashboard-up.png');
      mkdirSync(dirname(shot), { recursive: true });
      await operator.screenshot({ path: shot, fullPage: true });

      // Then, alone, the action that runs short of memory: its own heap nears its limit.
      const growRec = await invoke('grow', { leave_mb: 8 });
      const grown = growRec.response.result as { limit: number; target: number; own: number };
      t.diagnostic(`grow: ${JSON.stringify(grown)}`);
      assert.equal(growRec.response.status, 'success');
      assert.equal(grown.limit, 256 * MiB, JSON.stringify(grown));
      assert.ok(grown.own >= grown.target && grown.own < grown.limit, JSON.stringify(grown));
      await alpha.waitForSelector(`#activations tbody tr[data-activation="${growRec.activationId}"]`, { timeout: STEP_MS });
      assert.equal(await inPage(alpha, 'window.__noReload'), 'still here');

      // Another tenant's key: none of alpha's containers, loans or activations.
      const betaCtx = await h.browser.createBrowserContext();
      try {
        const beta = await betaCtx.newPage();
        await signIn(beta, h.url, h.key('beta'));
        assert.equal((await attrs(beta, '[data-container]', 'data-container')).length, 0);
        assert.equal((await attrs(beta, '[data-loan]', 'data-from')).length, 0);
        assert.equal((await attrs(beta, '#activations tbody tr[data-activation]', 'data-activation')).length, 0);
        const html = await beta.content();
        for (const id of [donor.id, recipient.id, first.activationId, ioRec.activationId, growRec.activationId]) assert.ok(!html.includes(id), `beta's page shows ${id}`);
      } finally {
        await betaCtx.close();
      }
    } finally {
      await alphaCtx.close();
      await operatorCtx.close();
    }
  });

  test('/metrics, scraped by Prometheus with the operator key, says what happened', { timeout: 120_000 }, async (t) => {
    if (h.skip !== null || records.length !== ACTIVATIONS) return t.skip(h.skip ?? 'the dashboard test did not run its four activations');
    assert.equal((await fetch(`${h.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).status, 401);
    assert.equal((await fetch(`${h.url}/metrics`, { headers: { authorization: basicAuthFor(h.key('alpha')) }, signal: AbortSignal.timeout(10_000) })).status, 403);
    const text = await (await fetch(`${h.url}/metrics`, { headers: { authorization: basicAuthFor(h.key('admin')) }, signal: AbortSignal.timeout(10_000) })).text();
    const lint = await promtoolCheck(text);
    assert.equal(lint.status, 0, lint.output);

    // The ground truth: the agent's own journal and containers.
    const journal = (await agent().events(0, 1000)).events;
    const lends = journal.filter((e) => e.type === 'move' && e.reason === 'lend');
    const shortfalls = journal.filter((e) => e.type === 'shortfall');
    assert.ok(lends.length >= 1, JSON.stringify(journal));
    const grower = (await agent().listContainers('alpha')).find((c) => c.function === 'alpha/grow');
    assert.ok(grower !== undefined);
    t.diagnostic(`shortfalls: ${JSON.stringify(shortfalls)}`);
    assert.ok(shortfalls.some((e) => e.container === grower.id), `the grow action ran short of memory at least once: ${JSON.stringify(journal)}`);

    const prom = await PrometheusServer.start(new URL(h.url).host, h.key('admin'));
    try {
      const v = (q: string): Promise<number | undefined> => prom.value(q);
      await waitFor('a scrape after the scenario', 30_000, async () => ((await v('sum(ephemera_activations_total)')) === ACTIVATIONS ? true : undefined));
      assert.equal(await v('up{job="ephemera"}'), 1);
      // Four activations: two of alpha/cpu, one of alpha/io, one of alpha/grow, all successes; their durations are the records'.
      assert.equal(await v('ephemera_activations_total{tenant="alpha",action="alpha/cpu",status="success"}'), 2);
      assert.equal(await v('ephemera_activations_total{tenant="alpha",action="alpha/io",status="success"}'), 1);
      assert.equal(await v('ephemera_activations_total{tenant="alpha",action="alpha/grow",status="success"}'), 1);
      assert.equal(await v('sum(ephemera_activation_duration_seconds_count)'), ACTIVATIONS);
      const seconds = records.reduce((s, r) => s + r.duration, 0) / 1000;
      assert.ok(Math.abs(((await v('sum(ephemera_activation_duration_seconds_sum)')) ?? NaN) - seconds) < 1e-6);
      // The Manager's moves and shortfalls are the journal's.
      const bytesOf = (es: typeof journal): number => es.reduce((s, e) => s + ('bytes' in e ? e.bytes : 0), 0);
      assert.equal(await v(`ephemera_manager_moves_total{node="${NODE}",tenant="alpha",reason="lend"}`), lends.length);
      assert.equal(await v('sum(ephemera_manager_moved_bytes_total{reason="lend"})'), bytesOf(lends));
      assert.equal(await v('sum(ephemera_manager_move_duration_seconds_count{reason="lend"})'), lends.length);
      assert.equal(await v(`ephemera_manager_shortfalls_total{node="${NODE}",tenant="alpha"}`), shortfalls.length);
      assert.equal(await v('sum(ephemera_manager_shortfall_bytes_total)'), bytesOf(shortfalls));
      assert.equal(await v('sum(ephemera_oom_kills_total)'), undefined);
      // Three cold starts (cpu, io, grow; the second cpu run is warm): three placements.
      assert.equal(await v('sum(ephemera_scheduler_decisions_total{outcome="placed"})'), 3);
      // The state gauges are the agent's containers and node figures.
      const info = await agent().node();
      assert.equal(await v(`ephemera_node_memory_limit_bytes{node="${NODE}"}`), info.memory.limit);
      assert.equal(await v(`ephemera_node_memory_allocated_bytes{node="${NODE}"}`), info.memory.allocated);
      for (const c of await agent().listContainers('alpha')) {
        const sel = `{container="${c.id}",tenant="alpha",action="${c.function}"}`;
        assert.equal(await v(`ephemera_container_initial_quota_bytes${sel}`), c.initialBytes);
        assert.equal(await v(`ephemera_container_limit_bytes${sel}`), c.grantedBytes);
        assert.equal(await v(`ephemera_container_lent_bytes${sel}`), c.lentTo.reduce((s, l) => s + l.bytes, 0));
        assert.equal(await v(`ephemera_container_borrowed_bytes${sel}`), c.borrowedFrom.reduce((s, l) => s + l.bytes, 0));
      }
      // The I/O action's file operations: its one run's counters, from its record's annotation.
      const io = await h.api('alpha', 'GET', `activations/${records.find((r) => r.name === 'io')?.activationId ?? ''}`, undefined, 10_000);
      const eph = ((io.json as { annotations: { key: string; value: Record<string, number> }[] }).annotations.find((a) => a.key === 'ephemera')?.value) ?? {};
      assert.equal(await v('sum(ephemera_container_fast_writes_total{action="alpha/io"})'), eph['fast_writes']);
      assert.equal(await v('sum(ephemera_container_fast_reads_total{action="alpha/io"})'), eph['fast_reads']);
      assert.ok((eph['fast_writes'] ?? 0) > 0);
    } finally {
      await prom.stop();
    }
  });

  test("`ephemera status` against it: the operator sees alpha's containers and activations, another tenant nothing", { timeout: 60_000 }, (t) => {
    if (h.skip !== null || records.length !== ACTIVATIONS) return t.skip(h.skip ?? 'the dashboard test did not run its four activations');
    const status = (tenant: string): string => {
      const r = spawnSync(process.execPath, [MAIN, 'status', '--props', join(h.dir, 'home', `${tenant}.wskprops`)], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const admin = status('admin');
    assert.match(admin, new RegExp(`NODE ${NODE}`));
    assert.match(admin, /alpha\/cpu/);
    assert.match(admin, /alpha\/io/);
    assert.match(admin, /alpha\/grow/);
    for (const rec of records) assert.ok(admin.includes(rec.activationId), admin);
    const beta = status('beta');
    assert.ok(!beta.includes('alpha'), beta);
    for (const rec of records) assert.ok(!beta.includes(rec.activationId), beta);
  });

  test("the controller's and the agent's logs are JSON lines that carry the activations' ids", { timeout: 30_000 }, (t) => {
    if (h.skip !== null || records.length !== ACTIVATIONS) return t.skip(h.skip ?? 'the dashboard test did not run its four activations');
    const lines = (path: string): Record<string, unknown>[] => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const controller = lines(join(h.dir, 'state', 'controller.log'));
    const node = lines(join(h.dir, 'state', 'nodes', NODE, 'agent.log'));
    for (const l of [...controller, ...node]) assert.ok(typeof l['time'] === 'string' && typeof l['level'] === 'string' && typeof l['msg'] === 'string', JSON.stringify(l));
    assert.ok(controller.every((l) => l['component'] === 'controller'));
    assert.ok(node.every((l) => l['component'] === 'node-agent' && l['node'] === NODE));
    for (const rec of records) {
      assert.ok(controller.some((l) => l['activationId'] === rec.activationId && l['msg'] === 'activation finished' && l['tenant'] === 'alpha'), rec.activationId);
      assert.ok(node.some((l) => l['activationId'] === rec.activationId && l['msg'] === 'run finished'), rec.activationId);
    }
  });
});
