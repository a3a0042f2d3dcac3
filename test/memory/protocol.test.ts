/**
 * The control protocol (docs/PROTOCOL.md) against the real ephemerad: every operation, malformed
 * input, peers that vanish mid-request, the shortfall event from a real cgroup, and `ephemera ctl`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';

import { DaemonClient } from '../../build/js/daemon-client/client.js';
import { parseStats } from '../../build/js/daemon-client/stats.js';
import { createInstanceCgroup } from '../../build/js/limiter/cgroup.js';
import { cgroupSkipReason, EPHEMERA, MiB, PYTHON, RawConn, run, startDaemon, type Daemon } from './harness.js';

const STATS_FIELDS = [
  'limit', 'usage', 'file_bytes_memory', 'file_bytes_disk', 'files_in_memory', 'budget', 'headroom', 'evictions', 'bytes_evicted',
  'fast_reads', 'fast_writes', 'files_in_memory_peak', 'bytes_in_memory_peak', 'cgroup', 'cgroup_version',
];

function expectError(resp: Record<string, unknown>, id: unknown, code: string, mentions?: RegExp): void {
  assert.equal(resp['v'], 1, JSON.stringify(resp));
  assert.equal(resp['id'], id, JSON.stringify(resp));
  assert.equal(resp['ok'], false, JSON.stringify(resp));
  const err = resp['error'] as { code: string; message: string };
  assert.equal(err.code, code, JSON.stringify(resp));
  assert.ok(typeof err.message === 'string' && err.message.length > 0);
  if (mentions !== undefined) assert.match(err.message, mentions);
}

describe('control protocol on a daemon with a static budget', { timeout: 120_000 }, () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ budget: 64 * MiB, headroom: 4 * MiB });
  });
  after(async () => {
    await d.stop();
  });

  test('stats carries every documented field with its type', async () => {
    const c = await RawConn.open(d.control);
    try {
      const r = await c.ask('{"v":1,"id":1,"op":"stats"}');
      assert.equal(r['ok'], true);
      assert.equal(r['id'], 1);
      const result = r['result'] as Record<string, unknown>;
      for (const f of STATS_FIELDS) assert.ok(f in result, `stats lacks ${f}`);
      const s = parseStats(result);
      assert.equal(s.headroom, 4 * MiB);
      assert.equal(s.cgroup, null);
    } finally {
      c.destroy();
    }
  });

  test('shrink, its alias shrink-to, grow and set-limit answer with stats and move the limit', async () => {
    const client = await DaemonClient.connect(d.control);
    try {
      const shrunk = await client.shrink(32 * MiB);
      assert.equal(shrunk.limit, 32 * MiB);
      assert.ok(shrunk.budget <= 32 * MiB);
      const grown = await client.grow(96 * MiB);
      assert.equal(grown.limit, 96 * MiB);
      assert.ok(grown.budget > shrunk.budget);
      parseStats(await client.request('shrink-to', { bytes: 48 * MiB }));
      assert.equal((await client.stats()).limit, 48 * MiB);
      parseStats(await client.request('set-limit', { limit: 40 * MiB }));
      assert.equal((await client.stats()).limit, 40 * MiB);
      parseStats(await client.request('set-limit', { limit: 80 * MiB }));
      assert.equal((await client.stats()).limit, 80 * MiB);
    } finally {
      client.close();
    }
  });

  test('subscribe accepts shortfall and refuses unknown or missing events', async () => {
    const c = await RawConn.open(d.control);
    try {
      const ok = await c.ask('{"v":1,"id":"s1","op":"subscribe","events":["shortfall"]}');
      assert.equal(ok['ok'], true);
      assert.equal(ok['id'], 's1');
      expectError(await c.ask('{"v":1,"id":2,"op":"subscribe","events":["sunrise"]}'), 2, 'EPH_BAD_REQUEST', /sunrise/);
      expectError(await c.ask('{"v":1,"id":3,"op":"subscribe"}'), 3, 'EPH_BAD_REQUEST', /events/);
      expectError(await c.ask('{"v":1,"id":4,"op":"subscribe","events":[]}'), 4, 'EPH_BAD_REQUEST', /events/);
    } finally {
      c.destroy();
    }
  });

  test('malformed lines get structured errors and the connection stays usable', async () => {
    const c = await RawConn.open(d.control);
    try {
      const cases: Array<[string, unknown, string, RegExp?]> = [
        ['this is not json', null, 'EPH_BAD_JSON'],
        ['[1,2,3]', null, 'EPH_BAD_JSON'],
        ['"stats"', null, 'EPH_BAD_JSON'],
        ['{"v":1,"id":5,"op":"stats"', null, 'EPH_BAD_JSON'],
        ['{"id":6,"op":"stats"}', 6, 'EPH_BAD_VERSION', /'v'/],
        ['{"v":2,"id":7,"op":"stats"}', 7, 'EPH_BAD_VERSION', /2/],
        ['{"v":"1","id":8,"op":"stats"}', 8, 'EPH_BAD_VERSION'],
        ['{"v":1,"id":9}', 9, 'EPH_BAD_REQUEST', /op/],
        ['{"v":1,"id":10,"op":42}', 10, 'EPH_BAD_REQUEST', /op/],
        ['{"v":1,"id":11,"op":"explode"}', 11, 'EPH_UNKNOWN_OP', /explode/],
        ['{"v":1,"id":12,"op":"shrink","bytes":"12x"}', 12, 'EPH_BAD_REQUEST', /'bytes'.*12x/],
        ['{"v":1,"id":13,"op":"shrink","bytes":-1}', 13, 'EPH_BAD_REQUEST', /'bytes'/],
        ['{"v":1,"id":14,"op":"shrink","bytes":1.5}', 14, 'EPH_BAD_REQUEST', /'bytes'/],
        ['{"v":1,"id":15,"op":"shrink"}', 15, 'EPH_BAD_REQUEST', /'bytes'/],
        ['{"v":1,"id":16,"op":"grow","bytes":null}', 16, 'EPH_BAD_REQUEST', /'bytes'/],
        ['{"v":1,"id":17,"op":"set-limit","bytes":5}', 17, 'EPH_BAD_REQUEST', /'limit'/],
        ['{"v":1,"id":18,"op":"shutdown","mode":"later"}', 18, 'EPH_BAD_REQUEST', /mode/],
      ];
      for (const [line, id, code, re] of cases) {
        expectError(await c.ask(line), id, code, re);
        const again = await c.ask('{"v":1,"id":99,"op":"stats"}');
        assert.equal(again['ok'], true, `connection unusable after ${line}`);
      }
      // A line over the 64 KiB limit is skipped with an error; the next line is read normally.
      c.write(`{"v":1,"id":1,"op":"stats","pad":"${'x'.repeat(70 * 1024)}"}\n`);
      expectError(await c.next(), null, 'EPH_BAD_JSON', /64|65536|longer/);
      assert.equal((await c.ask('{"v":1,"id":100,"op":"stats"}'))['id'], 100);
    } finally {
      c.destroy();
    }
  });

  test('pipelined requests are answered in order, each with its own id', async () => {
    const c = await RawConn.open(d.control);
    try {
      c.write('{"v":1,"id":1,"op":"stats"}\n{"v":1,"id":"two","op":"nope"}\n{"v":1,"id":3,"op":"grow","bytes":67108864}\n');
      assert.equal((await c.next())['id'], 1);
      expectError(await c.next(), 'two', 'EPH_UNKNOWN_OP');
      const third = await c.next();
      assert.equal(third['id'], 3);
      assert.equal(third['ok'], true);
    } finally {
      c.destroy();
    }
  });

  test('peers that disconnect mid-request do not disturb the daemon', async () => {
    for (let i = 0; i < 20; i++) {
      const half = connect({ path: d.control });
      await once(half, 'connect');
      half.write(i % 2 === 0 ? '{"v":1,"id":1,"op":"sta' : '{"v":1,"id":1,"op":"shrink","bytes":33554432}\n');
      half.destroy();
    }
    const silent = connect({ path: d.control });
    await once(silent, 'connect');
    silent.destroy();
    const client = await DaemonClient.connect(d.control);
    try {
      const s = await client.stats();
      assert.ok(s.limit !== null);
      assert.equal(d.proc.exitCode, null);
    } finally {
      client.close();
    }
  });

  test('ephemera ctl against the daemon: table, --json, and clear errors', async () => {
    const table = await run([EPHEMERA, 'ctl', d.control, 'stats']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^budget\s+\S+/m);
    const json = await run([EPHEMERA, 'ctl', d.rundir, 'grow', '64M', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(parseStats(JSON.parse(json.stdout) as Record<string, unknown>).limit, 64 * MiB);
    const badSize = await run([EPHEMERA, 'ctl', d.control, 'shrink', '12x']);
    assert.equal(badSize.code, 2);
    assert.match(badSize.stderr, /EPH_CLI_BAD_SIZE.*12x/);
    const noDaemon = await run([EPHEMERA, 'ctl', '/nonexistent/control.sock', 'stats']);
    assert.equal(noDaemon.code, 1);
    assert.match(noDaemon.stderr, /EPH_DAEMON_CONNECT/);
  });
});

test('shutdown discard answers with the final stats and the daemon exits', { timeout: 30_000 }, async () => {
  const d = await startDaemon({ budget: 16 * MiB });
  try {
    const c = await RawConn.open(d.control);
    const exited = once(d.proc, 'exit');
    const r = await c.ask('{"v":1,"id":"bye","op":"shutdown","mode":"discard"}');
    assert.equal(r['ok'], true);
    assert.equal(r['id'], 'bye');
    parseStats(r['result']);
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  } finally {
    await d.stop();
  }
});

test('shutdown with the default mode (writeback) through the typed client', { timeout: 30_000 }, async () => {
  const d = await startDaemon({ budget: 16 * MiB });
  try {
    const client = await DaemonClient.connect(d.control);
    const exited = once(d.proc, 'exit');
    const s = await client.shutdown();
    assert.equal(s.files_in_memory, 0);
    client.close();
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  } finally {
    await d.stop();
  }
});

const SKIP = await cgroupSkipReason();

test('a subscriber hears shortfall when the function itself outgrows limit minus headroom', { skip: SKIP, timeout: 60_000 }, async () => {
  const cg = await createInstanceCgroup({ memoryLimit: 64 * MiB });
  let d: Daemon | undefined;
  let hog: ReturnType<typeof spawn> | undefined;
  try {
    d = await startDaemon({ cgroup: 'auto', headroom: 8 * MiB, inCgroup: cg });
    const client = await DaemonClient.connect(d.control);
    try {
      const before = await client.stats();
      assert.equal(before.limit, 64 * MiB);
      assert.equal(before.cgroup, cg.path);
      const events: Array<Record<string, unknown>> = [];
      await client.subscribe(['shortfall'], (e) => events.push(e));
      // The same event through the CLI.
      const ctl = run([EPHEMERA, 'ctl', d.control, 'subscribe', 'shortfall', '--count', '1', '--json']);
      // 60 MiB of the function's own memory: with 8 MiB headroom that cannot fit in 64 MiB.
      const [file, ...args] = cg.command([PYTHON, '-c', `import time\nb = b"x" * (${60 * MiB})\nprint("holding", flush=True)\ntime.sleep(30)`]);
      hog = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      await once(hog.stdout ?? hog, 'data');
      for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const e = events[0];
      assert.ok(e !== undefined, 'no shortfall event within 2 s');
      assert.equal(e['event'], 'shortfall');
      assert.equal(e['v'], 1);
      assert.equal(e['limit'], 64 * MiB);
      assert.ok(typeof e['bytes'] === 'number' && e['bytes'] > 0);
      // Sent once the function's own memory plus the 8 MiB headroom no longer fits in 64 MiB.
      assert.ok(typeof e['usage'] === 'number' && e['usage'] > 56 * MiB, JSON.stringify(e));
      assert.equal(typeof e['file_bytes_memory'], 'number');
      assert.equal('id' in e, false);
      const viaCtl = await ctl;
      assert.equal(viaCtl.code, 0, viaCtl.stderr);
      assert.equal((JSON.parse(viaCtl.stdout) as Record<string, unknown>)['event'], 'shortfall');
    } finally {
      client.close();
    }
  } finally {
    hog?.kill('SIGKILL');
    await d?.stop();
    await cg.destroy();
  }
});
