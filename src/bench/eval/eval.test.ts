import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import { EphemeraError } from '../../core/errors.js';
import { CgroupSandbox } from './cgroup-sandbox.js';
import { EXPERIMENTS, MEMORY } from './experiments.js';
import { ioShare } from './intensity.js';
import { openSandbox, parseEvalArgs } from './main.js';
import type { FunctionSandbox, Mode, RunOutcome } from './sandbox.js';
import { MODES, parseRunOutput } from './sandbox.js';
import { invocation, WORKLOAD_NAMES } from './workloads.js';

test('parseEvalArgs: defaults, composites, and usage errors that name the bad value', () => {
  const o = parseEvalArgs(['fig12']);
  assert.deepEqual(o.experiments, ['fig12']);
  assert.equal(o.size, 'full');
  assert.equal(o.repeats, 3);
  assert.deepEqual(o.modes, MODES);
  const q = parseEvalArgs(['quick', '--modes', 'tmpfs,overlay']);
  assert.equal(q.size, 'small');
  assert.deepEqual(q.modes, ['overlay', 'tmpfs']);
  assert.ok(q.experiments.length > 1);
  assert.deepEqual(parseEvalArgs(['fig13', '--workloads', 'factorial,video']).workloads, ['factorial', 'video']);
  assert.ok(o.nativeDir.endsWith('/build'), o.nativeDir);
  assert.equal(parseEvalArgs(['fig13', '--native', '/opt/eph/build']).nativeDir, '/opt/eph/build');
  for (const bad of [[], ['fig99'], ['fig10', '--size', 'huge'], ['fig10', '--repeats', '0'], ['fig10', '--modes', 'ramfs'], ['fig10', '--cpuset', 'x'], ['fig10', '--bogus'], ['fig13', '--workloads', 'sql']]) {
    assert.throws(() => parseEvalArgs(bad), (e: unknown) => e instanceof EphemeraError && e.code === 'EPH_CLI_USAGE', JSON.stringify(bad));
  }
});

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

describe('every workload writes the same output in every available mode (tiny inputs, real sandboxes)', () => {
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
        digests[mode] = o.workload?.digest ?? '';
      }
      const distinct = new Set(Object.values(digests));
      assert.ok(Object.keys(digests).length >= 2, 'at least overlay and tmpfs ran');
      assert.equal(distinct.size, 1, `digests differ between modes: ${JSON.stringify(digests)}`);
    });
  }

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
