/**
 * `peaks` through this client against a real ephemerad, with a real shimmed process writing the
 * files: one window per "invocation", a scratch file written and deleted inside it still counts,
 * and a reset opens the next window at what is left. Files on disk are counted at every size
 * change: one moved there and one placed there straight, both deleted long before the daemon's
 * next walk, count in full, and each way a size changes (writes, truncates by path and by
 * descriptor, a copy, a rename over, stdio, unlink, a child across exec and across fork) leaves
 * the count where the kernel's sizes are.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** Python: `r`, the root, and `counted()`, what the daemon's stats say the shims count on disk now. */
const COUNTED = `import os, socket, json
r = os.environ["ROOT"]
def counted():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["CONTROL"])
    s.sendall(b'{"v": 1, "id": 1, "op": "stats"}\\n')
    line = b""
    while not line.endswith(b"\\n"): line += s.recv(65536)
    s.close()
    return json.loads(line)["result"]["file_bytes_disk_counted"]`;

/** A daemon on a fresh root with `budget`, and an invocation of a shimmed python on it. */
async function withDaemon(budget: string, body: (c: DaemonClient, invoke: (code: string) => void, root: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'peakop-peaks-'));
  const run = join(dir, 'run');
  const root = join(dir, 'root');
  mkdirSync(run);
  mkdirSync(root);
  let daemon: ChildProcess | undefined;
  let c: DaemonClient | undefined;
  try {
    daemon = await startDaemon({ argv: [DAEMON, '--rundir', run, '--root', root, '--cgroup', 'none', '--budget', budget], stdout: 'ignore', stderr: 'ignore', timeoutMs: 10_000 });
    c = await DaemonClient.connect(join(run, 'control.sock'), { requestTimeoutMs: 10_000 });
    const invoke = (code: string): void => {
      const r = spawnSync(PYTHON, ['-c', code], {
        env: { ...process.env, LD_PRELOAD: SHIM, EPHEMERA_SOCK: join(run, 'shim.sock'), EPHEMERA_ROOTS: root, EPHEMERA_LIB: SHIM, ROOT: root, CONTROL: join(run, 'control.sock') },
        timeout: 20_000,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
    };
    await body(c, invoke, root);
  } finally {
    c?.close();
    daemon?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

test('peaks: files on disk counted at every size change, a file written straight to disk and deleted before any walk included', { skip, timeout: 30_000 }, async () => {
  await withDaemon('4M', async (c, invoke, root) => {
    await c.peaks({ reset: true });
    // 4 MiB of budget: "a" outgrows it and moves to disk, "b" then goes straight to disk (the
    // placement saw "a" go there), then "c" in its place. All are deleted within the run, long
    // before the daemon's periodic walk (every 5 s): only the count sees them.
    // The program asks the daemon's stats what is counted on disk as it goes (the stats walk no
    // count: what they say is the shims' own bookkeeping).
    invoke(`${COUNTED}
with open(r + "/a", "wb") as f:
    for _ in range(8): f.write(b"a" * ${MiB})
with open(r + "/b", "wb") as f:
    for _ in range(16): f.write(b"b" * ${MiB})
assert counted() == ${24 * MiB}, counted()
os.unlink(r + "/b")
assert counted() == ${8 * MiB}, counted()
with open(r + "/c", "wb") as f:
    for _ in range(16): f.write(b"c" * ${MiB})
os.unlink(r + "/c")
os.unlink(r + "/a")
assert counted() == 0, counted()`);
    const st = await c.stats();
    assert.ok(st.evictions >= 1 && st.files_on_disk >= 1, `one file moved to disk, one placed there: ${JSON.stringify(st)}`);
    const run = await c.peaks({ reset: true });
    assert.ok(run.file_bytes_counted_peak !== undefined, 'this daemon counts its disk files');
    assert.ok(run.file_bytes_counted_peak >= 24 * MiB && run.file_bytes_counted_peak <= 28 * MiB, `"a" and "b" (or "c") on disk together, never all three: ${JSON.stringify(run)}`);
    assert.ok(run.file_bytes_peak >= run.file_bytes_counted_peak, JSON.stringify(run));
    assert.equal(run.file_bytes_disk_counted, 0, `both gone: ${JSON.stringify(run)}`);
    assert.equal(run.file_bytes_disk, 0);

    // Every way a size changes: a 6 MiB file left on disk is counted at its size, then truncated by
    // path, by descriptor, copied (sendfile/copy_file_range), replaced by a rename, grown by pwrite.
    invoke(`import os, shutil
r = os.environ["ROOT"]
with open(r + "/kept", "wb") as f:
    f.write(b"k" * ${6 * MiB})`);
    const kept = await c.peaks({ reset: true });
    assert.equal(kept.file_bytes_disk_counted, 6 * MiB, JSON.stringify(kept));
    assert.equal(kept.file_bytes_disk, 6 * MiB);
    invoke(`${COUNTED}
import shutil
os.truncate(r + "/kept", ${5 * MiB})
assert counted() == ${5 * MiB}, counted()
fd = os.open(r + "/kept", os.O_RDWR)
os.ftruncate(fd, ${MiB})
os.pwrite(fd, b"x", ${7 * MiB} - 1)
os.ftruncate(fd, ${5 * MiB})
os.close(fd)
shutil.copyfile(r + "/kept", r + "/copy")
assert counted() == ${10 * MiB}, counted()
os.rename(r + "/copy", r + "/kept")
assert counted() == ${5 * MiB}, counted()
shutil.copyfile(r + "/kept", r + "/copy")
os.rename(r + "/copy", r + "/kept")`);
    const changed = await c.peaks({ reset: true });
    assert.equal(changed.file_bytes_disk_counted, 5 * MiB, `"kept" is 5 MiB, the copy replaced it: ${JSON.stringify(changed)}`);
    assert.equal(changed.file_bytes_disk, 5 * MiB, JSON.stringify(changed));
    // At its largest: the 5 MiB file and its 5 MiB copy (the copy may start in memory, under 4 MiB);
    // each file a rename replaced left the count.
    assert.ok(changed.file_bytes_counted_peak !== undefined && changed.file_bytes_counted_peak >= 10 * MiB && changed.file_bytes_counted_peak <= 14 * MiB, JSON.stringify(changed));
    // Through stdio (fopen, fwrite: glibc's own writes pass no shim, so a counted file's stream
    // writes through ours).
    invoke(`${COUNTED}
import ctypes
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fwrite.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
f = libc.fopen((r + "/stdio").encode(), b"w")
assert f
data = b"s" * ${6 * MiB}
assert libc.fwrite(data, 1, len(data), f) == len(data)
assert libc.fclose(f) == 0
assert counted() == ${11 * MiB}, counted()
os.unlink(r + "/stdio")`);
    // Through a descriptor the new image inherits across exec (EPHEMERA_FDMAP hands the mark on).
    invoke(`${COUNTED}
import subprocess, sys
with open(r + "/inherited", "wb") as f:
    f.write(b"i" * ${6 * MiB})
assert counted() == ${11 * MiB}, counted()
fd = os.open(r + "/inherited", os.O_WRONLY | os.O_APPEND)
child = "import os, sys; os.write(int(sys.argv[1]), b'j' * ${3 * MiB})"
subprocess.run([sys.executable, "-c", child, str(fd)], pass_fds=[fd], check=True)
assert os.path.getsize(r + "/inherited") == ${9 * MiB}
assert counted() == ${14 * MiB}, counted()
os.close(fd)
os.unlink(r + "/inherited")`);
    // A file the shim did not write (made by this test process) is the walks' alone; its
    // deletion by the shim leaves the count alone.
    writeFileSync(join(root, 'foreign'), Buffer.alloc(MiB));
    invoke(`import os
os.unlink(os.environ["ROOT"] + "/foreign")
os.unlink(os.environ["ROOT"] + "/kept")`);
    const end = await c.peaks({ reset: true });
    assert.equal(end.file_bytes_disk_counted, 0, JSON.stringify(end));
  });
});

test('peaks: a fork child of a process that held in-memory files writes through a counted descriptor, and is counted', { skip, timeout: 30_000 }, async () => {
  await withDaemon('4M', async (c, invoke) => {
    // An in-memory file first: from then on this process's fd table is its ledger, which a fork
    // child with no in-memory file to inherit does not share (its table starts empty).
    invoke(`${COUNTED}
with open(r + "/small", "wb") as f:
    f.write(b"s")
with open(r + "/big", "wb") as f:
    f.write(b"b" * ${6 * MiB})
assert counted() == ${6 * MiB}, counted()
fd = os.open(r + "/big", os.O_WRONLY | os.O_APPEND)
pid = os.fork()
if pid == 0:
    os.write(fd, b"k" * ${2 * MiB})
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
assert os.path.getsize(r + "/big") == ${8 * MiB}
assert counted() == ${8 * MiB}, counted()`);
    const st = await c.stats();
    assert.ok(st.file_bytes_memory > 0, `"small" stayed in memory: ${JSON.stringify(st)}`);
  });
});

test('peaks: a window per invocation, exact for in-memory files, reset to what is left', { skip, timeout: 30_000 }, async () => {
  await withDaemon('256M', async (c, invoke) => {
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
  });
});

test('stats-peaks: the counters and the window in one answer, the reset opening the next window as peaks does', { skip, timeout: 30_000 }, async () => {
  await withDaemon('64M', async (c, invoke) => {
    await c.peaks({ reset: true });
    invoke(`import os
r = os.environ["ROOT"]
with open(r + "/scratch", "wb") as f:
    f.write(b"s" * ${3 * MiB})
os.unlink(r + "/scratch")`);
    const both = await c.statsPeaks({ reset: true });
    assert.ok(both.peaks.file_bytes_memory_peak >= 3 * MiB, `the scratch file counts in the window: ${JSON.stringify(both.peaks)}`);
    assert.equal(both.peaks.file_bytes_memory, 0);
    assert.ok(both.stats.fast_writes >= 1 && both.stats.bytes_in_memory_peak >= 3 * MiB, JSON.stringify(both.stats));
    const next = await c.statsPeaks();
    assert.equal(next.peaks.file_bytes_memory_peak, 0, `a new window opened at the reset: ${JSON.stringify(next.peaks)}`);
    assert.ok(next.stats.bytes_in_memory_peak >= 3 * MiB, 'the lifetime peak stays in stats');
    await assert.rejects(c.request('stats-peaks', { reset: 'yes' }), (err: Error & { detail?: Record<string, unknown> }) => err.detail?.['daemonCode'] === 'EPH_BAD_REQUEST');
  });
});
