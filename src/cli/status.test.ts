/**
 * `build/ephemera status` as a user runs it: a real process reading a props file and a real
 * controller's dashboard routes on loopback (fed by the scripted cluster).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Fastify, { type FastifyInstance } from 'fastify';

import { dashboardRoutes } from '../dashboard/dashboard-routes.js';
import { MemoryClusterSource } from '../dashboard/memory-source.js';
import { KEYS, playScenario, scenarioAuthorizer } from '../dashboard/scenario.js';
import { BUILD_DIR } from './paths.js';

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs build/ephemera; `until` (given the output so far) may end it early with SIGTERM. */
function ephemera(args: readonly string[], until?: (stdout: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(BUILD_DIR, 'ephemera'), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WSK_CONFIG_FILE: '' } });
    let stdout = '';
    let stderr = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (until?.(stdout) === true) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(killer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('ephemera status', { timeout: 60_000 }, () => {
  const source = new MemoryClusterSource();
  let app: FastifyInstance;
  let dir: string;
  let base: string;
  const props = (name: string): string => join(dir, `${name}.wskprops`);

  before(async () => {
    app = Fastify();
    await app.register(dashboardRoutes, { source, authorizer: scenarioAuthorizer });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    playScenario(source);
    dir = await mkdtemp(join(tmpdir(), 'ephemera-dashboard-status-'));
    await writeFile(props('admin'), `APIHOST=${base}\nAUTH=${KEYS.admin}\nNAMESPACE=guest\n`);
    await writeFile(props('beta'), `APIHOST=${base}\nAUTH=${KEYS.beta}\n`);
    await writeFile(props('nohost'), `AUTH=${KEYS.beta}\n`);
    await writeFile(props('down'), `APIHOST=http://127.0.0.1:${await closedPort()}\nAUTH=${KEYS.beta}\n`);
    await writeFile(props('badkey'), `APIHOST=${base}\nAUTH=nobody:wrong\n`);
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the operator sees nodes, tenants, containers with pools, the loan, actions and activations', { timeout: 20_000 }, async () => {
    const run = await ephemera(['status', '--props', props('admin')]);
    assert.equal(run.stderr, '');
    assert.equal(run.status, 0);
    const out = run.stdout;
    assert.match(out, /^ephemera status · operator \(all tenants\) · state at \d\d:\d\d:\d\d UTC$/m);
    assert.match(out, /^NODE node-1 {2}sharing on {2}N_lim 8 GiB {2}N_alloc 1\.8 GiB {2}N_req 1\.8 GiB$/m);
    assert.match(out, /^ {2}TENANT alpha {2}limit 768 MiB/m);
    assert.match(out, /^ {4}alpha-gzip-0 +A +gzip +256 MiB +320 MiB +200 MiB +64 MiB \(3\) +0 +1000\/500 +100 +- +64 MiB$/m);
    assert.match(out, /^ {4}alpha-resize-0 +H +resize +512 MiB +448 MiB .* 64 MiB +-$/m);
    assert.match(out, /^ {4}beta-ml-0 +S +infer /m);
    assert.match(out, /^ {2}node-1\/alpha {2}alpha-resize-0 ── 64 MiB ──▶ alpha-gzip-0$/m);
    assert.match(out, /^ {2}alpha +gzip +1 +93\.8% \(1500 of 1600\) +2 +60 ms$/m);
    assert.match(out, /^RECENT ACTIVATIONS \(3 of 3\)$/m);
    assert.match(out, /^ {2}\d\d:\d\d:\d\d +alpha +gzip +act-3 +application error +40 ms$/m);
  });

  test("a tenant's props show that tenant only", { timeout: 20_000 }, async () => {
    const run = await ephemera(['status', '--props', props('beta')]);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /tenant beta/);
    assert.match(run.stdout, /beta-ml-0/);
    assert.doesNotMatch(run.stdout, /alpha|N_lim/);
    assert.match(run.stdout, /^LOANS\n {2}none$/m);
  });

  test('--watch redraws until interrupted', { timeout: 20_000 }, async () => {
    const frames = (s: string): number => s.split('ephemera status · ').length - 1;
    const run = await ephemera(['status', '--props', props('beta'), '--watch', '--interval', '1'], (s) => frames(s) >= 2);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(frames(run.stdout) >= 2);
  });

  test('bad props, an unreachable controller and an unknown key fail with their codes', { timeout: 20_000 }, async () => {
    const missing = await ephemera(['status', '--props', join(dir, 'nope.wskprops')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /^ephemera: EPH_STATUS_PROPS: cannot read the props file .*nope\.wskprops \(ENOENT\)/);
    const nohost = await ephemera(['status', '--props', props('nohost')]);
    assert.equal(nohost.status, 2);
    assert.match(nohost.stderr, /EPH_STATUS_PROPS: .* needs APIHOST=<url> and AUTH=<uuid:key> lines \(found AUTH\)/);
    const down = await ephemera(['status', '--props', props('down')]);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /EPH_STATUS_CONTROLLER: cannot reach the controller at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\); is `ephemera up` running\?/);
    const badkey = await ephemera(['status', '--props', props('badkey')]);
    assert.equal(badkey.status, 1);
    assert.match(badkey.stderr, /EPH_STATUS_CONTROLLER: .* answered 401 EPH_VIEW_UNAUTHENTICATED: .*"nobody" is not known/);
    const usage = await ephemera(['status', '--interval', '0']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /EPH_CLI_USAGE: ephemera status: --interval must be a positive integer, got "0"/);
  });
});
