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
 * - The same, with the daemon's fault build making the third eviction's link, and the first try at
 *   putting its punched bytes back into memory, fail with ENOMEM (as both do at a v1 limit with the
 *   guard set): every byte still reaches the disk (the CI failure "f2: bytes differ on disk").
 *
 * A file that differs on disk is reported with its first differing offset, the byte found and the
 * byte wanted, how many differ, and the daemon's stats and log.
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

/** Where a file of one repeated byte differs from it: the first offset, what is there, and how far the difference runs. */
function differences(data: Buffer, want: number): string | undefined {
  const first = data.findIndex((b) => b !== want);
  if (first < 0) return undefined;
  let end = first;
  let count = 0;
  for (let k = first; k < data.length; k++) {
    if (data[k] !== want) {
      count++;
      end = k + 1;
    }
  }
  const hex = (b: number | undefined): string => `0x${(b ?? 0).toString(16).padStart(2, '0')}`;
  return `first at offset ${String(first)} (MiB ${String(Math.floor(first / MiB))}): found ${hex(data[first])}, want ${hex(want)}; ` +
    `${String(count)} bytes differ, the last at ${String(end - 1)}`;
}

/** The end of the daemon's log (`ephemera run --log`), for a failure message. */
async function logTail(file: string): Promise<string> {
  try {
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    return lines.slice(-60).join('\n');
  } catch (err) {
    return `(no daemon log: ${(err as Error).message})`;
  }
}

interface Outcome {
  readonly code: number | null;
  readonly stats: Record<string, unknown>;
  readonly ms: number;
  readonly out: string;
  /** The daemon's log (`ephemera run --log`). */
  readonly log: string;
}

async function runFn(mode: 'fits' | 'outgrows', sizeMib: number, env: NodeJS.ProcessEnv): Promise<Outcome> {
  const work = await mkdtemp('/var/tmp/eph-guard-');
  try {
    const root = join(work, 'root');
    await mkdir(root);
    const statsFile = join(work, 'stats.json');
    const logFile = join(work, 'ephemerad.log');
    const t0 = performance.now();
    const r = await run([EPHEMERA, 'run', '--memory', `${String(LIMIT_MIB)}M`, '--root', root, '--stats', statsFile, '--log', logFile, '--', PYTHON, FN, root, mode, String(FILES_MIB), String(sizeMib)], { ...process.env, ...env });
    const ms = performance.now() - t0;
    const out = `stdout ${r.stdout} stderr ${r.stderr}`;
    const statsText = await readFile(statsFile, 'utf8');
    const stats = JSON.parse(statsText) as Record<string, unknown>;
    // Written back at the end: every byte of every file, on disk.  A failure says which bytes,
    // with the daemon's stats and log.
    for (let i = 0; i < FILES_MIB / 8; i++) {
      const data = await readFile(join(root, `f${String(i)}`));
      assert.equal(data.length, 8 * MiB, `f${String(i)}: ${String(data.length)} bytes; ${out}`);
      const diff = differences(data, pattern(i));
      assert.equal(diff, undefined, `f${String(i)}: bytes differ on disk: ${String(diff)}; ${out}\nstats ${statsText}\ndaemon log (end):\n${await logTail(logFile)}`);
    }
    return { code: r.code, stats, ms, out, log: await readFile(logFile, 'utf8') };
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

// The CI failure of the test below ("f2: bytes differ on disk", 8 MiB of the wrong bytes), made
// deterministic: the eviction's write-through copy punches the memfd as it goes, then the link of
// the complete disk file fails for want of memory (a dentry is charged to the cgroup at its
// limit) and so does the first try at putting the punched bytes back into the memfd.  The daemon
// put the file back to memory with holes, and wrote zeros for them.  The fault build of the
// daemon injects both ENOMEMs into the third eviction; the cgroup, the guard and the heap are real.
const FAULTY_DAEMON = join(BUILD, ASAN ? 'asan/ephemerad-faults' : 'test/ephemerad-faults');
test('an eviction whose link and restore fail for want of memory after the punch loses no byte (the heap outgrows the limit)', { skip, timeout: 120_000 }, async (t) => {
  const env = {
    EPHEMERA_EPHEMERAD: FAULTY_DAEMON,
    EPHEMERAD_FAULTS: 'linkat:ENOMEM:after=2:times=1,pwrite:ENOMEM:on=mem:times=1,sendfile:ENOMEM:on=mem:times=1',
    EPHEMERAD_TEST_EVICT_ALLOC: INJECT,
  };
  const o = await runFn('outgrows', 16, env);
  t.diagnostic(JSON.stringify({ ms: Math.round(o.ms), code: o.code, evictions: o.stats['evictions'], eviction_failures: o.stats['eviction_failures'], oom_kills: o.stats['oom_kills'] }));
  assert.equal(o.code, 128 + 9, `killed (SIGKILL, status 137); ${o.out}`);
  assert.equal(o.stats['writeback_failed'], 0, `every file written back; ${o.out}`);
  assert.match(o.log, /no byte lost|restored to memory/, `the injected ENOMEMs must have met an eviction after its punch; daemon log:\n${o.log}`);
});

test('a heap that alone outgrows the limit is killed by the kernel, not frozen; the files survive', { skip, timeout: 120_000 }, async (t) => {
  const o = await runFn('outgrows', 16, { ...daemonEnv, EPHEMERAD_TEST_EVICT_ALLOC: INJECT });
  t.diagnostic(JSON.stringify({ ms: Math.round(o.ms), code: o.code, oom_kills: o.stats['oom_kills'], watchdog_graces: o.stats['watchdog_graces'], watchdog_lifts: o.stats['watchdog_lifts'] }));
  assert.equal(o.code, 128 + 9, `killed (SIGKILL, status 137); ${o.out}`);
  assert.ok(Number(o.stats['oom_kills']) >= 1, `by the OOM killer; ${o.out}`);
});
