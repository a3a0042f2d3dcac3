import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';

import { REPO_DIR } from '../../container/repo.js';
import { notServedFromMemory, parseStats } from '../../daemon-client/stats.js';
import { CgroupSandbox } from './cgroup-sandbox.js';
import { EXPERIMENTS, MEMORY } from './experiments.js';
import { ioShare } from './intensity.js';
import { openSandbox } from './main.js';
import type { FunctionSandbox, Mode, RunOutcome } from './sandbox.js';
import { MODES, parseRunOutput } from './sandbox.js';
import { invocation, WORKLOAD_NAMES, WORKLOADS, type WorkloadName } from './workloads.js';

test('every experiment makes cells with unique ids, and groups share one workload invocation', () => {
  for (const exp of Object.values(EXPERIMENTS)) {
    const cells = exp.cells('tiny', MODES);
    assert.equal(new Set(cells.map((c) => c.id)).size, cells.length, exp.name);
    for (const c of cells) assert.ok(c.memory > 0);
  }
});

test('parseRunOutput finds the workload line and the launcher line among other output', () => {
  const out = ['noise', '{"digest": "ab", "params": {}, "timings": {"total_s": 1}, "setup_s": 0, "workload": "x"}', '{"launch": {"exit": 0, "utime_s": 1, "stime_s": 2}}', ''].join('\n');
  const r = parseRunOutput(out);
  assert.equal(r.workload?.digest, 'ab');
  assert.equal(r.launch?.stime_s, 2);
});

/**
 * Why the daemon's final stats of an ephemera-mode run do not show its files served from memory
 * (undefined when they do). A workload without file I/O (factorial) only needs valid stats.
 */
function ephemeraProblem(w: WorkloadName, o: RunOutcome): string | undefined {
  const stats = parseStats(o.launch?.daemon, `${w} in ephemera mode: the launcher's daemon stats`);
  return WORKLOADS[w].fileIo ? notServedFromMemory(stats) : undefined;
}

describe('every workload writes the same output in every available mode, ephemera from memory (tiny inputs, real sandboxes)', () => {
  let sandbox: FunctionSandbox | undefined;
  let avail: Record<Mode, string | null> | undefined;
  before(async () => {
    sandbox = await openSandbox('auto', (line) => process.stderr.write(`# ${line}\n`));
    avail = await sandbox.availability();
  });

  for (const w of WORKLOAD_NAMES) {
    test(w, async (t) => {
      if (sandbox === undefined || avail === undefined) throw new Error('sandbox not opened');
      const digests: Partial<Record<Mode, string>> = {};
      for (const mode of MODES) {
        const why = avail[mode];
        if (why !== null) {
          t.diagnostic(`mode ${mode} not available: ${why}`);
          continue;
        }
        const o: RunOutcome = await sandbox.run({ invocation: invocation(w), size: 'tiny', mode, memory: MEMORY[w], cpuset: '0', timeoutMs: 300_000 });
        assert.ok(o.ok, `${w} in ${mode}: ${o.error ?? ''}\n${o.stderrTail}`);
        assert.equal(o.launch?.exit, 0);
        if (mode === 'ephemera') {
          const why = ephemeraProblem(w, o);
          assert.equal(why, undefined, `${w} in ephemera mode was not served from memory: ${why ?? ''}`);
        }
        digests[mode] = o.workload?.digest ?? '';
      }
      const distinct = new Set(Object.values(digests));
      assert.ok(Object.keys(digests).length >= 2, 'at least overlay and tmpfs ran');
      assert.equal(distinct.size, 1, `digests differ between modes: ${JSON.stringify(digests)}`);
    });
  }

  test('the memory check fails a run under a pass-through shim, whose outputs still match', async (t) => {
    if (sandbox === undefined || avail === undefined) throw new Error('sandbox not opened');
    if (avail.ephemera !== null) return t.skip(`ephemera mode not available: ${avail.ephemera}`);
    // The real daemon beside a preload library that intercepts nothing: every file goes to the
    // scratch directory's own file system, as if Ephemera were not there.
    const dir = mkdtempSync(join(tmpdir(), 'eph-eval-passthrough-'));
    try {
      copyFileSync(join(REPO_DIR, 'build', 'ephemerad'), join(dir, 'ephemerad'));
      writeFileSync(join(dir, 'empty.c'), 'int ephemera_pass_through_shim;\n');
      execFileSync('gcc', ['-shared', '-fPIC', '-o', join(dir, 'libephemera.so'), join(dir, 'empty.c')]);
      const passThrough = await openSandbox(sandbox.kind, (line) => process.stderr.write(`# ${line}\n`), dir);
      const o = await passThrough.run({ invocation: invocation('diskio-seq'), size: 'tiny', mode: 'ephemera', memory: MEMORY['diskio-seq'], cpuset: '0', timeoutMs: 300_000 });
      assert.ok(o.ok, `${o.error ?? ''}\n${o.stderrTail}`);
      assert.match(ephemeraProblem('diskio-seq', o) ?? '', /fast_reads is 0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('strace inside the sandbox gives the I/O syscall table of a run', async () => {
    if (sandbox === undefined) throw new Error('sandbox not opened');
    const o = await sandbox.run({ invocation: invocation('diskio-rand'), size: 'tiny', mode: 'overlay', memory: MEMORY['diskio-rand'], cpuset: '0', timeoutMs: 300_000, strace: true });
    assert.ok(o.ok, `${o.error ?? ''}\n${o.stderrTail}`);
    const rows = o.launch?.strace ?? {};
    assert.ok((rows['write']?.calls ?? 0) >= 2000, `strace saw the 2000 writes: ${JSON.stringify(rows['write'])}`);
    assert.ok(ioShare(rows).byCalls > 0.5);
  });
});

describe('the cgroup fallback (no Docker): same outputs, and a tmpfs past the limit is an OOM kill', () => {
  const MiB = 1024 * 1024;
  let sandbox: FunctionSandbox | undefined;
  let skip: string | null = null;
  before(async () => {
    if (process.getuid?.() !== 0) {
      skip = 'needs root';
      return;
    }
    sandbox = await CgroupSandbox.open((line) => process.stderr.write(`# ${line}\n`));
  });

  test('overlay and tmpfs agree on the digest', async (t) => {
    if (skip !== null || sandbox === undefined) return t.skip(skip ?? 'no sandbox');
    const digests = [];
    for (const mode of ['overlay', 'tmpfs'] as const) {
      const o: RunOutcome = await sandbox.run({ invocation: invocation('gzip'), size: 'tiny', mode, memory: MEMORY.gzip, cpuset: '0', timeoutMs: 120_000 });
      assert.ok(o.ok, `${mode}: ${o.error ?? ''}\n${o.stderrTail}`);
      digests.push(o.workload?.digest);
    }
    assert.equal(digests[0], digests[1]);
  });

  test('a 64 MiB file under a 48 MiB limit: overlay finishes, tmpfs is OOM-killed and reported so', async (t) => {
    if (skip !== null || sandbox === undefined) return t.skip(skip ?? 'no sandbox');
    const inv = invocation('diskio-seq', ['--file-mb', '64', '--ops', '8192']);
    const overlay = await sandbox.run({ invocation: inv, size: 'tiny', mode: 'overlay', memory: 48 * MiB, cpuset: '0', timeoutMs: 120_000 });
    assert.ok(overlay.ok, `${overlay.error ?? ''}\n${overlay.stderrTail}`);
    const tmpfs = await sandbox.run({ invocation: inv, size: 'tiny', mode: 'tmpfs', memory: 48 * MiB, cpuset: '0', timeoutMs: 120_000 });
    assert.equal(tmpfs.ok, false);
    assert.equal(tmpfs.oomKilled, true);
    assert.equal(tmpfs.error, 'OOM-killed');
  });
});
