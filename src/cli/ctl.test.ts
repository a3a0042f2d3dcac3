// test-tier: unit
/**
 * `ephemera ctl` against a stand-in daemon on a unix socket (the process seam): what it sends,
 * what it prints, and how it fails. test/memory/protocol.test.ts runs it against the real ephemerad.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

import { ctlMain, formatStats } from './ctl.js';
import { isEphemeraError } from '../core/errors.js';
import type { DaemonStats } from '../daemon-client/client.js';

const STATS: DaemonStats = {
  limit: 128 << 20,
  usage: 100 << 20,
  file_bytes_memory: 64 << 20,
  file_bytes_disk: 4096,
  files_in_memory: 2,
  budget: 20 << 20,
  headroom: 8 << 20,
  evictions: 3,
  bytes_evicted: 12 << 20,
  fast_reads: 123456,
  fast_writes: 654321,
  files_in_memory_peak: 5,
  bytes_in_memory_peak: 80 << 20,
  cgroup: '/sys/fs/cgroup/memory/x',
  cgroup_version: 1,
  files_created: 7,
  files_on_disk: 1,
  files_on_disk_predicted: 0,
  materialisations: 0,
  slow_ops: 12,
  bytes_read: 2 ** 30,
  bytes_written: 2 ** 31,
  fast_seeks: 40,
  fast_stats: 50,
  pid: 4242,
};

interface Daemon {
  dir: string;
  sock: string;
  requests: Array<Record<string, unknown>>;
  server: Server;
  close(): Promise<void>;
}

async function standIn(): Promise<Daemon> {
  const dir = await mkdtemp(join(tmpdir(), 'eph-ctl-'));
  const sock = join(dir, 'control.sock');
  const requests: Array<Record<string, unknown>> = [];
  const conns = new Set<Socket>();
  const server = createServer((s) => {
    conns.add(s);
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        requests.push(req);
        const reply = (o: Record<string, unknown>): boolean => s.write(JSON.stringify({ v: 1, id: req['id'], ...o }) + '\n');
        if (req['op'] === 'shrink' && req['bytes'] === 1) {
          reply({ ok: false, error: { code: 'EPH_CANNOT_SHRINK', message: 'pinned files need 3 MiB' } });
        } else if (req['op'] === 'subscribe') {
          reply({ ok: true, result: {} });
          s.write(JSON.stringify({ v: 1, event: 'shortfall', bytes: 8 << 20, limit: 128 << 20, usage: 130 << 20, file_bytes_memory: 0 }) + '\n');
        } else {
          reply({ ok: true, result: STATS });
        }
      }
    });
    s.on('close', () => conns.delete(s));
  });
  server.listen(sock);
  await once(server, 'listening');
  return {
    dir,
    sock,
    requests,
    server,
    close: async () => {
      for (const c of conns) c.destroy();
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function ctl(argv: string[]): Promise<{ status: number; out: string }> {
  let out = '';
  const status = await ctlMain(argv, (t) => (out += t));
  return { status, out };
}

test('stats prints a readable table; --json prints the result', async () => {
  const d = await standIn();
  try {
    const r = await ctl([d.sock, 'stats']);
    assert.equal(r.status, 0);
    assert.match(r.out, /^limit\s+128(\.0)? ?MiB$/m);
    assert.match(r.out, /^evictions\s+3 \(12(\.0)? ?MiB\)$/m);
    assert.match(r.out, /^fast reads\s+123,456$/m);
    assert.match(r.out, /^cgroup\s+\/sys\/fs\/cgroup\/memory\/x \(v1\)$/m);
    const j = await ctl([d.sock, 'stats', '--json']);
    assert.deepEqual(JSON.parse(j.out), STATS);
    assert.deepEqual(d.requests.map((q) => [q['v'], q['op']]), [[1, 'stats'], [1, 'stats']]);
  } finally {
    await d.close();
  }
});

test('shrink and grow send sizes in bytes; the run directory works as SOCKET', async () => {
  const d = await standIn();
  try {
    await ctl([d.sock, 'shrink', '96M']);
    await ctl([d.dir, 'grow', '1G', '--json']);
    await ctl([d.sock, 'shutdown', 'discard']);
    await ctl([d.sock, 'shutdown']);
    assert.deepEqual(
      d.requests.map((q) => [q['op'], q['bytes'] ?? q['mode']]),
      [
        ['shrink', 96 << 20],
        ['grow', 1 << 30],
        ['shutdown', 'discard'],
        ['shutdown', 'writeback'],
      ],
    );
  } finally {
    await d.close();
  }
});

test('subscribe prints events; --count ends it', async () => {
  const d = await standIn();
  try {
    const r = await ctl([d.sock, 'subscribe', '--count', '1', '--json']);
    assert.equal(r.status, 0);
    assert.deepEqual(JSON.parse(r.out), { v: 1, event: 'shortfall', bytes: 8 << 20, limit: 128 << 20, usage: 130 << 20, file_bytes_memory: 0 });
    assert.deepEqual(d.requests[0]?.['events'], ['shortfall']);
    const pretty = await ctl([d.sock, 'subscribe', 'shortfall', '--count', '1']);
    assert.match(pretty.out, / shortfall bytes=8(\.0)? ?MiB limit=128(\.0)? ?MiB/);
  } finally {
    await d.close();
  }
});

test('a daemon error comes back as EPH_DAEMON_REPLY with the daemon code', async () => {
  const d = await standIn();
  try {
    await assert.rejects(ctl([d.sock, 'shrink', '1']), (err) => isEphemeraError(err, 'EPH_DAEMON_REPLY') && err.detail['daemonCode'] === 'EPH_CANNOT_SHRINK' && err.message.includes('pinned'));
  } finally {
    await d.close();
  }
});

test('bad command lines fail before connecting, saying what was wrong', async () => {
  const cases: Array<[string[], string, RegExp]> = [
    [[], 'EPH_CLI_USAGE', /missing SOCKET/],
    [['/x'], 'EPH_CLI_USAGE', /missing COMMAND/],
    [['/x', 'frobnicate'], 'EPH_CLI_USAGE', /unknown command "frobnicate"/],
    [['/x', 'shrink'], 'EPH_CLI_USAGE', /shrink needs a SIZE/],
    [['/x', 'shrink', '12x'], 'EPH_CLI_BAD_SIZE', /12x/],
    [['/x', 'stats', 'extra'], 'EPH_CLI_USAGE', /takes no argument/],
    [['/x', 'shutdown', 'later'], 'EPH_CLI_USAGE', /writeback or discard/],
    [['/x', 'stats', '--count', '2'], 'EPH_CLI_USAGE', /--count only applies/],
    [['/x', 'stats', '--timeout', 'soon'], 'EPH_CLI_USAGE', /whole number/],
    [['/x', 'stats', '--bogus'], 'EPH_CLI_USAGE', /--bogus/],
  ];
  for (const [argv, code, re] of cases) {
    await assert.rejects(ctl(argv), (err) => isEphemeraError(err) && err.code === code && re.test(err.message), argv.join(' '));
  }
});

test('a socket nobody listens on is EPH_DAEMON_CONNECT', async () => {
  await assert.rejects(ctl(['/nonexistent/control.sock', 'stats']), (err) => isEphemeraError(err, 'EPH_DAEMON_CONNECT'));
});

test('formatStats says unlimited and none', () => {
  const text = formatStats({ ...STATS, limit: null, cgroup: null, cgroup_version: null });
  assert.match(text, /^limit\s+unlimited$/m);
  assert.match(text, /^cgroup\s+none$/m);
});
