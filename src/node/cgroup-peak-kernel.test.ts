/**
 * The kept descriptors of cgroup-peak.ts on the real kernel (cgroup v1, root): a window's reset is
 * a pwrite through the descriptor opened at the first window, its read a pread at 0 that sees the
 * kernel's current value, window after window, and the OOM count reads the same way. A process in a
 * cgroup of its own allocates what the test asks. Skipped without root or a v1 memory hierarchy.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { CgroupPeakWindow, OomKillCounter } from './cgroup-peak.js';

const MiB = 1024 * 1024;
const ROOT = '/sys/fs/cgroup/memory';

/** Reads lines "alloc N" (hold N MiB, touched) and "free"; answers "ok" to each. */
const HOLDER = `
import sys
held = None
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "alloc":
        held = bytearray(int(cmd[1]) << 20)
        for i in range(0, len(held), 4096):
            held[i] = 1
    elif cmd[0] == "free":
        held = None
    print("ok", flush=True)
`;

/** Sends one command and waits for its whole answer line (python -u may write "ok" and "\n" apart). */
function ask(child: ChildProcessWithoutNullStreams, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += chunk.toString();
      if (!got.includes('\n')) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve();
    };
    const timer = setTimeout(() => {
      child.stdout.off('data', onData);
      reject(new Error(`the holder did not answer ${line} within 10 s`));
    }, 10_000);
    child.stdout.on('data', onData);
    child.stdin.write(`${line}\n`);
  });
}

/** How many of this process's descriptors point at `path`. */
function openCount(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(join('/proc/self/fd', fd)) === path;
    } catch {
      return false;
    }
  }).length;
}

test('v1 on the kernel: one kept descriptor resets and reads the peak of each window; the OOM count through another', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0 || !existsSync(join(ROOT, 'memory.max_usage_in_bytes'))) return t.skip('needs root and a cgroup v1 memory hierarchy');
  const dir = join(ROOT, `eph-peak-kernel-${String(process.pid)}`);
  mkdirSync(dir);
  const window = new CgroupPeakWindow(1, dir);
  const oom = new OomKillCounter(1, dir);
  let child: ChildProcessWithoutNullStreams | undefined;
  try {
    child = spawn('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec python3 -u -c '${HOLDER}'`], { stdio: 'pipe' });
    await ask(child, 'free');
    const peakFile = join(dir, 'memory.max_usage_in_bytes');
    for (const mb of [48, 16, 32]) {
      window.open();
      await ask(child, `alloc ${String(mb)}`);
      await ask(child, 'free');
      const peak = window.read();
      assert.ok(peak !== null);
      assert.ok(peak >= mb * MiB, `window of ${String(mb)} MiB: peak ${String(peak)}`);
      // The reset took: the 48 MiB of the first window do not show in the later, smaller ones.
      assert.ok(peak < (mb + 24) * MiB, `window of ${String(mb)} MiB: peak ${String(peak)} is its own`);
      assert.equal(oom.read(), 0);
    }
    assert.equal(openCount(peakFile), 1, 'one descriptor for every window');
    assert.equal(openCount(join(dir, 'memory.oom_control')), 1, 'one descriptor for every OOM read');
  } finally {
    child?.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 100));
    window.close();
    oom.close();
    for (let n = 0; n < 50 && existsSync(dir); n++) {
      try {
        rmdirSync(dir);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
  assert.equal(openCount(join(dir, 'memory.max_usage_in_bytes')), 0);
});
