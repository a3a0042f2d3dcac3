// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DaemonClient, MAX_LINE_BYTES, type DaemonEvent } from './client.js';
import { isEphemeraError } from '../core/errors.js';

const STATS = {
  limit: null,
  usage: 1,
  file_bytes_memory: 2,
  file_bytes_disk: 3,
  files_in_memory: 4,
  budget: 5,
  headroom: 6,
  evictions: 7,
  bytes_evicted: 8,
  fast_reads: 9,
  fast_writes: 10,
  files_in_memory_peak: 11,
  bytes_in_memory_peak: 12,
  cgroup: null,
  cgroup_version: null,
  extra_counter: 13,
  files_created: 14,
  files_on_disk: 15,
  files_on_disk_predicted: 16,
  materialisations: 17,
  slow_ops: 18,
  bytes_read: 19,
  bytes_written: 20,
  fast_seeks: 21,
  fast_stats: 22,
  pid: 23,
};

type Handler = (req: Record<string, unknown>, sock: Socket) => void;

/** A stand-in for ephemerad's control socket: line-framed JSON, driven by `handler`. */
async function fakeDaemon(handler: Handler): Promise<{ path: string; server: Server; dispose: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'eph-client-test-'));
  const path = join(dir, 'control.sock');
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        handler(JSON.parse(line) as Record<string, unknown>, sock);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    server,
    dispose: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client connected (with opts) to a fakeDaemon driven by handler, given to use; both closed after. */
async function withFakeDaemon(handler: Handler, use: (c: DaemonClient) => Promise<void>, opts?: { requestTimeoutMs: number }): Promise<void> {
  const d = await fakeDaemon(handler);
  try {
    const c = await DaemonClient.connect(d.path, opts);
    try {
      await use(c);
    } finally {
      c.close();
    }
  } finally {
    d.dispose();
  }
}

const reply = (sock: Socket, msg: unknown): void => {
  sock.write(JSON.stringify(msg) + '\n');
};

test('requests carry v, id and op; responses are matched by id even out of order', async () => {
  const seen: Record<string, unknown>[] = [];
  let held: Record<string, unknown> | undefined;
  await withFakeDaemon((req, sock) => {
    seen.push(req);
    if (req['op'] === 'slow') {
      held = req;
      return;
    }
    reply(sock, { v: 1, id: req['id'], ok: true, result: { op: req['op'], bytes: req['bytes'] ?? null } });
    if (held !== undefined) {
      reply(sock, { v: 1, id: held['id'], ok: true, result: { op: 'slow' } });
      held = undefined;
    }
  }, async (c) => {
    const slow = c.request('slow');
    const fast = c.request('grow', { bytes: 42 });
    assert.deepEqual(await fast, { op: 'grow', bytes: 42 });
    assert.deepEqual(await slow, { op: 'slow' });
    assert.deepEqual(seen[0], { v: 1, id: 1, op: 'slow' });
    assert.deepEqual(seen[1], { v: 1, id: 2, op: 'grow', bytes: 42 });
  });
});

test('stats are validated and extra fields kept; a chunked response is reassembled', async () => {
  await withFakeDaemon((req, sock) => {
    const line = JSON.stringify({ v: 1, id: req['id'], ok: true, result: STATS }) + '\n';
    sock.write(line.slice(0, 10));
    setTimeout(() => sock.write(line.slice(10)), 5);
  }, async (c) => {
    const s = await c.stats();
    assert.equal(s.fast_reads, 9);
    assert.equal(s['extra_counter'], 13);
  });
});

test('usage and limit may be null (a daemon without a cgroup)', async () => {
  await withFakeDaemon((req, sock) => {
    reply(sock, { v: 1, id: req['id'], ok: true, result: { ...STATS, usage: null, limit: null } });
  }, async (c) => {
    assert.equal((await c.stats()).usage, null);
  });
});

test('peaks sends reset as a boolean and checks the result: own peak and window may be null', async () => {
  const seen: unknown[] = [];
  await withFakeDaemon((req, sock) => {
    seen.push(req['reset']);
    const result = { own_memory_peak: req['reset'] === true ? null : 5, file_bytes_peak: 7, file_bytes_memory_peak: 6, file_bytes_memory: 1, file_bytes_disk: 1, window_ms: null, reset: req['reset'] };
    reply(sock, { v: 1, id: req['id'], ok: true, result: req['reset'] === true ? result : { ...result, window_ms: 12, file_bytes_disk: -1 } });
  }, async (c) => {
    const p = await c.peaks({ reset: true });
    assert.deepEqual(p, { own_memory_peak: null, file_bytes_peak: 7, file_bytes_memory_peak: 6, file_bytes_memory: 1, file_bytes_disk: 1, window_ms: null, reset: true });
    await assert.rejects(c.peaks(), (e: unknown) => isEphemeraError(e, 'EPH_DAEMON_PROTOCOL') && /'file_bytes_disk' is -1/.test(e.message));
    assert.deepEqual(seen, [true, false]);
  });
});

test('a stats result with a wrong field is a protocol error naming the field', async () => {
  await withFakeDaemon((req, sock) => {
    reply(sock, { v: 1, id: req['id'], ok: true, result: { ...STATS, evictions: '7' } });
  }, async (c) => {
    await assert.rejects(c.stats(), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_PROTOCOL') && err.message.includes("'evictions'"));
  });
});

test('a daemon error becomes EPH_DAEMON_REPLY with the daemon code; the connection stays usable', async () => {
  await withFakeDaemon((req, sock) => {
    if (req['op'] === 'shrink') {
      reply(sock, { v: 1, id: req['id'], ok: false, error: { code: 'EPH_CANNOT_SHRINK', message: 'pinned', detail: { pinned: 1 } } });
    } else {
      reply(sock, { v: 1, id: req['id'], ok: true, result: STATS });
    }
  }, async (c) => {
    await assert.rejects(c.shrink(1), (err: unknown) => {
      assert.ok(isEphemeraError(err, 'EPH_DAEMON_REPLY'));
      assert.equal(err.detail['daemonCode'], 'EPH_CANNOT_SHRINK');
      assert.deepEqual(err.detail['daemonDetail'], { pinned: 1 });
      assert.match(err.message, /shrink.*EPH_CANNOT_SHRINK.*pinned/);
      return true;
    });
    assert.equal((await c.stats()).usage, 1);
  });
});

test('an error response without a code is malformed, not a daemon code the client made up', async () => {
  await withFakeDaemon((req, sock) => {
    reply(sock, { v: 1, id: req['id'], ok: false, error: { message: 'something failed' } });
  }, async (c) => {
    await assert.rejects(c.stats(), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_PROTOCOL') && err.message.includes('malformed response'));
  });
});

test('subscribe delivers events without ids to the listener', async () => {
  await withFakeDaemon((req, sock) => {
    reply(sock, { v: 1, id: req['id'], ok: true, result: {} });
    if (req['op'] === 'subscribe') reply(sock, { v: 1, event: 'shortfall', bytes: 8, limit: 100, usage: 99, file_bytes_memory: 0 });
  }, async (c) => {
    const got = new Promise<DaemonEvent>((resolve) => {
      void c.subscribe(['shortfall'], resolve);
    });
    const ev = await got;
    assert.equal(ev.event, 'shortfall');
    assert.equal(ev['bytes'], 8);
  });
});

test('a daemon that closes mid-request fails the request with EPH_DAEMON_CLOSED', async () => {
  await withFakeDaemon((_req, sock) => {
    sock.destroy();
  }, async (c) => {
    await assert.rejects(c.stats(), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_CLOSED'));
    await assert.rejects(c.stats(), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_CLOSED'));
  });
});

test('garbage from the daemon is a protocol error', async () => {
  await withFakeDaemon((_req, sock) => {
    sock.write('this is not json\n');
  }, async (c) => {
    await assert.rejects(c.stats(), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_PROTOCOL') && err.message.includes('not JSON'));
  });
});

test('request timeout and oversized requests', async () => {
  await withFakeDaemon(() => undefined, async (c) => {
    await assert.rejects(c.stats(), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_TIMEOUT'));
    await assert.rejects(c.request('x', { pad: 'a'.repeat(MAX_LINE_BYTES) }), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_PROTOCOL'));
  }, { requestTimeoutMs: 50 });
});

test('connecting to a missing socket names the path', async () => {
  await assert.rejects(DaemonClient.connect('/nonexistent/control.sock'), (err: unknown) =>
    isEphemeraError(err, 'EPH_DAEMON_CONNECT') && err.message.includes('/nonexistent/control.sock') && err.message.includes('ENOENT'),
  );
});
