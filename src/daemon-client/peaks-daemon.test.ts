/**
 * `peaks` through this client against a real ephemerad, with a real shimmed process writing the
 * files: one window per "invocation", a scratch file written and deleted inside it still counts,
 * and a reset opens the next window at what is left.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DaemonClient } from './client.js';
import { startDaemon } from './start.js';

/** This file runs from build/js/daemon-client/: the checkout is three levels up. */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DAEMON = join(REPO, 'build', 'ephemerad');
const SHIM = join(REPO, 'build', 'libephemera.so');
const PYTHON = '/usr/bin/python3';
const MiB = 1 << 20;
const skip = [DAEMON, SHIM, PYTHON].every((f) => existsSync(f)) ? false : 'needs build/ephemerad, build/libephemera.so and python3';

test('peaks: a window per invocation, exact for in-memory files, reset to what is left', { skip, timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peakop-peaks-'));
  const run = join(dir, 'run');
  const root = join(dir, 'root');
  mkdirSync(run);
  mkdirSync(root);
  let daemon: ChildProcess | undefined;
  let c: DaemonClient | undefined;
  try {
    daemon = await startDaemon({ argv: [DAEMON, '--rundir', run, '--root', root, '--cgroup', 'none', '--budget', '256M'], stdout: 'ignore', stderr: 'ignore', timeoutMs: 10_000 });
    c = await DaemonClient.connect(join(run, 'control.sock'), { requestTimeoutMs: 10_000 });
    // An invocation of the function, as the node agent would run it: the shim serves its files.
    const invoke = (code: string): void => {
      const r = spawnSync(PYTHON, ['-c', code], {
        env: { ...process.env, LD_PRELOAD: SHIM, EPHEMERA_SOCK: join(run, 'shim.sock'), EPHEMERA_ROOTS: root, EPHEMERA_LIB: SHIM, ROOT: root },
        timeout: 20_000,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
    };
    const opened = await c.peaks({ reset: true });
    assert.equal(opened.reset, true);
    assert.equal(opened.own_memory_peak, null, 'no cgroup: no own memory');
    // 8 MiB of scratch written and deleted, 2 MiB kept.
    invoke(`import os
r = os.environ["ROOT"]
with open(r + "/scratch", "wb") as f:
    for _ in range(8): f.write(b"s" * ${MiB})
with open(r + "/kept", "wb") as f:
    f.write(b"k" * ${2 * MiB})
os.unlink(r + "/scratch")`);
    const first = await c.peaks({ reset: true });
    assert.ok(first.file_bytes_memory_peak >= 10 * MiB, `the scratch file and the kept one were in memory together: ${JSON.stringify(first)}`);
    assert.ok(first.file_bytes_peak >= first.file_bytes_memory_peak);
    assert.ok(first.file_bytes_memory >= 2 * MiB && first.file_bytes_memory < 8 * MiB, JSON.stringify(first));
    assert.ok(first.window_ms !== null && first.window_ms >= 0);
    // The next invocation writes 1 MiB more: its window starts at the 2 MiB left, not at 10.
    invoke(`import os
with open(os.environ["ROOT"] + "/second", "wb") as f:
    f.write(b"2" * ${MiB})`);
    const second = await c.peaks();
    assert.equal(second.reset, false);
    assert.ok(second.file_bytes_memory_peak >= first.file_bytes_memory + MiB && second.file_bytes_memory_peak < 8 * MiB, `the second window: ${JSON.stringify(second)} after ${JSON.stringify(first)}`);
    // Reading without a reset leaves the window open; the lifetime peak stays in stats.
    const again = await c.peaks();
    assert.equal(again.file_bytes_memory_peak, second.file_bytes_memory_peak);
    assert.ok((await c.stats()).bytes_in_memory_peak >= first.file_bytes_memory_peak);
  } finally {
    c?.close();
    daemon?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
