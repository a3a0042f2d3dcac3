// `ephemera tenant add` and `ephemera up`'s flag checks, as real processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import openwhisk from 'openwhisk';

import { startAnnounced, stopChild } from '../platform/child.js';
import { readProps } from '../platform/harness.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const FAKE_CONTROLLER = fileURLToPath(new URL('../platform/fake-controller.js', import.meta.url));

function cli(home: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, EPHEMERA_HOME: home }, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('tenant add writes NAME.wskprops (0600) once and keeps the key on a second add', { timeout: 30_000 }, () => {
  const dir = mkdtempSync('/tmp/platform-tenant-');
  try {
    const home = join(dir, 'home');
    const state = join(dir, 'state');
    const r = cli(home, 'tenant', 'add', 'team-a', '--state-dir', state, '--apihost', 'http://127.0.0.1:4000');
    assert.equal(r.status, 0, r.stderr);
    const path = join(home, 'team-a.wskprops');
    assert.match(r.stdout, /^tenant added: team-a\n/);
    assert.ok(r.stdout.includes(path));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^APIHOST=http:\/\/127\.0\.0\.1:4000\nAUTH=[0-9a-f-]{36}:[A-Za-z0-9_-]{64}\nNAMESPACE=team-a\n$/);
    const again = cli(home, 'tenant', 'add', 'team-a', '--state-dir', state, '--apihost', 'http://127.0.0.1:4000');
    assert.equal(again.status, 0);
    assert.match(again.stdout, /^tenant exists: team-a/);
    assert.equal(readFileSync(path, 'utf8'), text, 'the key is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad tenant names and bad up flags exit 2 with the code and what to do', { timeout: 30_000 }, () => {
  const dir = mkdtempSync('/tmp/platform-tenant-');
  try {
    const home = join(dir, 'home');
    const state = join(dir, 'state');
    const cases: [string[], RegExp][] = [
      [['tenant', 'add', 'admin', '--state-dir', state], /EPH_TENANT_NAME: .*reserved/],
      [['tenant', 'add', 'bad name', '--state-dir', state], /EPH_TENANT_NAME: .*not valid/],
      [['tenant', 'add', '-x'], /EPH_CLI_USAGE/],
      [['tenant', 'remove', 'x'], /EPH_CLI_USAGE: .*ephemera tenant add NAME/],
      [['up', '--scheduler', 'random'], /EPH_CLI_USAGE: .*--scheduler must be one of ephemera, most-free/],
      [['up', '--nodes', '2'], /EPH_CLI_USAGE: .*needs --node-memory/],
      [['up', '--nodes', '0'], /EPH_CLI_USAGE: .*positive integer/],
      [['up', '--activations-keep', '-1'], /EPH_CLI_USAGE: .*--activations-keep must be a whole number \(0 or more\), got "-1"/],
      [['up', '--activations-max-age-ms', '1d'], /EPH_CLI_USAGE: .*--activations-max-age-ms must be a whole number/],
      [['up', '--port', 'http'], /EPH_CLI_USAGE: .*--port must be a TCP port/],
      [['up', '--node-memory', 'lots'], /EPH_CLI_BAD_SIZE/],
      [['up', '--tenant', '_'], /EPH_TENANT_NAME/],
      [['up', '--container-cpus', '0'], /EPH_CLI_USAGE: .*--container-cpus must be a number of CPUs from 0.01 to \d+ \(this machine's cores\), got "0"/],
      [['up', '--container-cpus', '1e3'], /EPH_CLI_USAGE: .*--container-cpus must be a number of CPUs.*got "1e3"/],
      [['up', '--container-cpus', '4096'], /EPH_CLI_USAGE: .*--container-cpus must be a number of CPUs.*got "4096"/],
      [['up', '--container-cpus', 'half'], /EPH_CLI_USAGE: .*--container-cpus must be a number of CPUs.*got "half"/],
      [['up', '--sharing', 'cluster'], /EPH_CLI_USAGE: .*--sharing must be one of none, function, workflow, tenant/],
    ];
    for (const [args, re] of cases) {
      const r = cli(home, ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stdout, '');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tenant added while the controller runs is accepted at once, at the address it serves on', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync('/tmp/platform-tenant-');
  const state = join(dir, 'state');
  const { child, match } = await startAnnounced([process.execPath, FAKE_CONTROLLER, state, join(dir, 'ctl-home')], /^\{"url":"([^"]+)"\}$/, 20_000);
  try {
    const home = join(dir, 'home');
    const r = cli(home, 'tenant', 'add', 'late', '--state-dir', state);
    assert.equal(r.status, 0, r.stderr);
    const props = readProps(join(home, 'late.wskprops'));
    assert.equal(props.APIHOST, match[1]);
    const ow = openwhisk({ apihost: props.APIHOST ?? '', api_key: props.AUTH ?? '' });
    assert.deepEqual(await ow.actions.list(), []);
  } finally {
    await stopChild(child, 'SIGTERM', 10_000);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up on a port that is taken fails at once with EPH_PLATFORM_START, before Docker or a node starts', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync('/tmp/platform-port-');
  const busy = createServer();
  await new Promise<void>((resolve) => { busy.listen({ host: '127.0.0.1', port: 0 }, resolve); });
  try {
    const port = String((busy.address() as AddressInfo).port);
    const r = cli(join(dir, 'home'), 'up', '--port', port, '--state-dir', join(dir, 'state'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`EPH_PLATFORM_START: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
    assert.doesNotMatch(r.stderr, /starting Docker/);
  } finally {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
