/**
 * The OOM guard's progress guarantee (issue 9 item 1), on a real cgroup with a real ephemerad
 * under `ephemera run --memory`, which also runs the watchdog (src/guard/) outside the cgroup.
 *
 * - Files plus heap exceed the limit while the heap alone fits: the function must finish, exit 0,
 *   every file intact, no OOM kill; also with an allocation injected into every eviction
 *   (EPHEMERAD_TEST_EVICT_ALLOC), which a resident working set absorbs (daemon/reserve.c) and,
 *   where it cannot (the ASan build), the watchdog's grace gets the daemon going again.
 * - The heap alone outgrows the limit: the kernel kills the function (the guard lifted, by the
 *   daemon once no file is left to evict, or by the watchdog), it is never left frozen, and the
 *   files written before are intact on disk.
 *
 * The first case also checks the sizing peaks in the stats (own_memory_peak, file_bytes_peak).
 *
 * GUARD_SOAK_RUNS=N runs the first case N times (`make soak`: 50, with the ASan daemon through
 * GUARD_SOAK_ASAN=1 and EPHEMERA_EPHEMERAD).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { BUILD, EPHEMERA, MiB, PYTHON, REPO, cgroupSkipReason, run } from './harness.js';

const FN = join(REPO, 'test/memory/guard_fn.py');
const ASAN = process.env['GUARD_SOAK_ASAN'] === '1';
const RUNS = Number(process.env['GUARD_SOAK_RUNS'] ?? '3');
// The ASan daemon is some 30 MiB larger: a larger limit, and more files so that they still do not
// fit beside the heap.
const LIMIT_MIB = ASAN ? 192 : 128;
const FILES_MIB = ASAN ? 96 : 48;
const HEAP_MIB = 64;
const INJECT = '512K';

function pattern(i: number): number {
  return (i * 37 + 11) & 0xff;
}

interface Outcome {
  readonly code: number | null;
  readonly stats: Record<string, unknown>;
  readonly ms: number;
  readonly out: string;
}

async function runFn(mode: 'fits' | 'outgrows', sizeMib: number, env: NodeJS.ProcessEnv): Promise<Outcome> {
  const work = await mkdtemp('/var/tmp/eph-guard-');
  try {
    const root = join(work, 'root');
    await mkdir(root);
    const statsFile = join(work, 'stats.json');
    const t0 = performance.now();
    const r = await run([EPHEMERA, 'run', '--memory', `${String(LIMIT_MIB)}M`, '--root', root, '--stats', statsFile, '--', PYTHON, FN, root, mode, String(FILES_MIB), String(sizeMib)], { ...process.env, ...env });
    const ms = performance.now() - t0;
    const out = `stdout ${r.stdout} stderr ${r.stderr}`;
    const stats = JSON.parse(await readFile(statsFile, 'utf8')) as Record<string, unknown>;
    // Written back at the end: every byte of every file, on disk.
    for (let i = 0; i < FILES_MIB / 8; i++) {
      const data = await readFile(join(root, `f${String(i)}`));
      assert.equal(data.length, 8 * MiB, `f${String(i)}: ${String(data.length)} bytes; ${out}`);
      assert.ok(data.every((b) => b === pattern(i)), `f${String(i)}: bytes differ on disk; ${out}`);
    }
    return { code: r.code, stats, ms, out };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const skip = await cgroupSkipReason();
const daemonEnv: NodeJS.ProcessEnv = ASAN ? { EPHEMERA_EPHEMERAD: join(BUILD, 'asan/ephemerad') } : {};

for (let n = 0; n < RUNS; n++) {
  const inject = n % 2 === 1 || ASAN;
  test(`files + heap over the limit, heap alone under it: finishes, files intact, no kill${inject ? ', with an allocation in every eviction' : ''} (run ${String(n + 1)})`, { skip, timeout: 120_000 }, async (t) => {
    const env = { ...daemonEnv, ...(inject ? { EPHEMERAD_TEST_EVICT_ALLOC: INJECT } : {}) };
    const o = await runFn('fits', HEAP_MIB, env);
    t.diagnostic(JSON.stringify({ ms: Math.round(o.ms), evictions: o.stats['evictions'], oom_kills: o.stats['oom_kills'], watchdog_graces: o.stats['watchdog_graces'], watchdog_lifts: o.stats['watchdog_lifts'], peak: o.stats['cgroup_peak'] }));
    assert.equal(o.code, 0, `the function must finish; ${o.out}`);
    assert.equal(o.stats['oom_kills'], 0, `no OOM kill; ${o.out}`);
    assert.equal(o.stats['watchdog_lifts'], 0, `the guard must not need lifting when the heap fits; ${o.out}`);
    assert.ok(Number(o.stats['evictions']) >= 1, `files had to leave memory for the heap: ${JSON.stringify(o.stats)}`);
    // The sizing peaks (docs/PROTOCOL.md): the heap is the function's own, the files are not.
    const own = Number(o.stats['own_memory_peak']);
    const files = Number(o.stats['file_bytes_peak']);
    t.diagnostic(JSON.stringify({ own_memory_peak: own, file_bytes_peak: files }));
    assert.ok(own >= HEAP_MIB * MiB && own < (HEAP_MIB + FILES_MIB) * MiB, `own_memory_peak ${String(own)}: the ${String(HEAP_MIB)} MiB heap, not the ${String(FILES_MIB)} MiB of files`);
    assert.ok(files >= FILES_MIB * MiB && files < 2 * FILES_MIB * MiB, `file_bytes_peak ${String(files)}: the ${String(FILES_MIB)} MiB of files`);
  });
}

test('a heap that alone outgrows the limit is killed by the kernel, not frozen; the files survive', { skip, timeout: 120_000 }, async (t) => {
  const o = await runFn('outgrows', 16, { ...daemonEnv, EPHEMERAD_TEST_EVICT_ALLOC: INJECT });
  t.diagnostic(JSON.stringify({ ms: Math.round(o.ms), code: o.code, oom_kills: o.stats['oom_kills'], watchdog_graces: o.stats['watchdog_graces'], watchdog_lifts: o.stats['watchdog_lifts'] }));
  assert.equal(o.code, 128 + 9, `killed (SIGKILL, status 137); ${o.out}`);
  assert.ok(Number(o.stats['oom_kills']) >= 1, `by the OOM killer; ${o.out}`);
});
