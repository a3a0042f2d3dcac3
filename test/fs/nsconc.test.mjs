// Issue 15's namespace tests: several processes and threads create, write, rename (plain,
// RENAME_NOREPLACE, RENAME_EXCHANGE), link, unlink, stat and list one directory at once, on tmpfs and
// under the shim with a budget that evicts files in between; and writers SIGKILLed at random moments
// of the same workload leave a namespace that survivors, a fresh process and the daemon's stats all
// find consistent.  The workload is test/fs/c/ns_stress.c (its header says what it checks), built
// here.  Interleavings differ between runs, so the checks are invariants that hold on both file
// systems, not traces.
//
// Seeds are fixed, so `make test` runs the same workloads every time; NSCONC_SEED=<n> runs seed n,
// NSCONC_SEED=random a fresh one (for soak runs: `while NSCONC_SEED=random node --test
// test/fs/nsconc.test.mjs; do :; done`).  A failure names its seed and the commands to reproduce it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, assertServedFromMemory, cleanEnv, compileProgram, describe, ephemeraRun, requireBuilt, run, scratch, startDaemon, tmpfsScratch } from './lib/harness.mjs';

const SOURCE = join(REPO, 'test/fs/c/ns_stress.c');
/** Small enough that files move to disk all the time while the workers run. */
const BUDGET = '384K';
/** The workloads `make test` runs: processes x threads, and the seed unless NSCONC_SEED is set. */
const RUN_CASES = [
  { seed: 20261206, procs: 3, threads: 3, ops: 1500 },
  { seed: 15015, procs: 4, threads: 2, ops: 1500 },
  { seed: 4242, procs: 2, threads: 4, ops: 1500 },
];
const KILL_CASES = [
  { seed: 9150, procs: 3, threads: 2, killMs: 2500 },
  { seed: 777, procs: 4, threads: 1, killMs: 2500 },
];

function withSeeds(cases) {
  const env = process.env.NSCONC_SEED;
  if (env === undefined || env === '') return cases;
  if (env !== 'random' && !/^\d+$/.test(env)) throw new Error(`NSCONC_SEED is ${JSON.stringify(env)}: give a non-negative integer or "random"`);
  return cases.map((c) => ({ ...c, seed: env === 'random' ? Math.floor(Math.random() * 1e9) : Number(env) }));
}

const bin = scratch('nsconc-bin');
after(() => bin.done());
let built;
/** ns_stress, compiled once for this file. */
function stressBin() {
  built ??= compileProgram(bin, 'ns_stress', readFileSync(SOURCE, 'utf8'), { flags: ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-pthread'] });
  return built;
}

/** The count ns_stress prints for the known bug (see the todo test below), or NaN. */
function vanished(out) {
  const m = /renames over a vanishing target that failed with ENOENT: (\d+)/.exec(out);
  return m ? Number(m[1]) : NaN;
}

function repro(seed, args) {
  return `reproduce: NSCONC_SEED=${seed} node --test test/fs/nsconc.test.mjs, or by hand: ns_stress ${args.join(' ')} (on a tmpfs directory, or under \`build/ephemera run --root DIR --budget ${BUDGET}\`)`;
}

/** Every run under the shim, for the known-bug test. */
const shimRuns = [];

for (const { seed, procs, threads, ops } of withSeeds(RUN_CASES)) {
  test(`${procs} processes x ${threads} threads change one directory at once, on tmpfs and evicting under the shim (seed ${seed})`, { timeout: 120_000 }, async (t) => {
    const prog = await stressBin();
    const workers = procs * threads;
    const args = ['--seed', String(seed), '--procs', String(procs), '--threads', String(threads), '--ops', String(ops), '--deadline-ms', '60000'];
    // tmpfs: the checker must find nothing wrong with the kernel's own answers, the known bug included.
    const ref = tmpfsScratch('nsconc');
    try {
      const r = await run(prog, ['run', ref.dir, ...args], { env: cleanEnv(), timeoutMs: 90_000 });
      assert.equal(r.status, 0, `on tmpfs (a checker bug, not a file-system bug): seed ${seed}\n${describe(r)}\n${repro(seed, ['run', 'DIR', ...args])}`);
      assert.equal(vanished(r.stdout.toString()), 0, `on tmpfs: ${r.stdout}`);
      const c = await run(prog, ['check', ref.dir, '--workers', String(workers)], { env: cleanEnv(), timeoutMs: 60_000 });
      assert.equal(c.status, 0, `a fresh process's check on tmpfs: ${describe(c)}`);
    } finally {
      ref.done();
    }
    // Under the shim: the workers, then a fresh process's check, in one instance.
    const sc = scratch('nsconc');
    const root = sc.sub('root');
    const script = 'd=$1; shift; "$0" run "$d" "$@" --tolerate-vanished-target && "$0" check "$d" --workers "$NSCONC_WORKERS"';
    const s = await ephemeraRun({ root, budget: BUDGET, cmd: '/bin/sh', args: ['-c', script, prog, root, ...args], env: { NSCONC_WORKERS: String(workers) }, statsDir: sc.dir, timeoutMs: 100_000 });
    const out = s.stdout.toString();
    shimRuns.push({ seed, out });
    assert.equal(s.status, 0, `under the shim, seed ${seed}: ${describe(s)}\n${repro(seed, ['run', 'DIR', ...args])}\n(scratch kept in ${sc.dir})`);
    assert.match(out, /^ok: a consistent directory$/m, describe(s));
    assertServedFromMemory(s.stats, `nsconc seed ${seed}`, { evicting: true });
    assert.ok(s.stats.evictions > 0, `stats.evictions is ${s.stats.evictions} under a ${BUDGET} budget: no file moved to disk while the workers ran, so nothing was tested`);
    t.diagnostic(`seed ${seed}: ${out.split('\n').find((l) => l.startsWith('calls')) ?? ''}`);
    t.diagnostic(`seed ${seed}: evictions=${s.stats.evictions} files_created=${s.stats.files_created} fast_reads=${s.stats.fast_reads} fast_writes=${s.stats.fast_writes} slow_ops=${s.stats.slow_ops}; known-bug renames ${vanished(out)}`);
    sc.done();
  });
}

// Writers SIGKILLed at random moments.  ns_stress kill runs 3 processes of 2 threads (and 4 of 1) under a
// budget that evicts, and SIGKILLs one process every 5-65 ms (forking a replacement with new worker
// numbers) for a few seconds: inside write(), rename, an RPC to the daemon, the shim's locks.  Then
// the survivors finish their operation in progress (a survivor that does not, within the deadline,
// is reported as a hang with the call it is in), check the directory themselves (their own names
// exactly as their calls left them; a killed writer's names as a prefix of one write), and exit; a
// fresh process checks it again and unlinks every name; the daemon must then hold no file in
// memory and the root on disk must be empty.
for (const { seed, procs, threads, killMs } of withSeeds(KILL_CASES)) {
  test(`writers (${procs} processes x ${threads} threads) SIGKILLed at random moments leave a consistent namespace, and nothing behind once every name is unlinked (seed ${seed})`, { timeout: 120_000 }, async (t) => {
    requireBuilt();
    const prog = await stressBin();
    const sc = scratch('nskill');
    const root = sc.sub('root');
    const d = await startDaemon({ root, budget: BUDGET });
    const args = ['--seed', String(seed), '--procs', String(procs), '--threads', String(threads), '--kill-ms', String(killMs), '--deadline-ms', '30000'];
    const where = () => `seed ${seed}; ${repro(seed, ['kill', 'DIR', ...args])}\n(scratch kept in ${sc.dir}; daemon log ${join(d.rundir, 'ephemerad.log')})`;
    let passed = false;
    try {
      const k = await run(prog, ['kill', root, ...args, '--tolerate-vanished-target'], { env: d.env, timeoutMs: 90_000 });
      const out = k.stdout.toString();
      shimRuns.push({ seed, out });
      assert.equal(k.status, 0, `the workers or the survivors' checks failed: ${describe(k)}\n${where()}`);
      const m = /^workers (\d+) kills (\d+) operations (\d+)$/m.exec(out);
      assert.ok(m, `no summary line: ${out}`);
      const [workers, kills, ops] = m.slice(1).map(Number);
      assert.ok(kills >= 10, `only ${kills} processes were killed: ${out}`);
      t.diagnostic(`seed ${seed}: ${kills} processes SIGKILLed, ${workers} workers in all, ${ops} operations`);

      const c = await run(prog, ['check', root, '--workers', String(workers), '--partial-own'], { env: d.env, timeoutMs: 60_000 });
      assert.equal(c.status, 0, `a fresh process finds the namespace inconsistent: ${describe(c)}\n${where()}`);
      const mid = (await d.control({ op: 'stats' })).result;
      assert.ok(mid.evictions > 0, `no eviction under a ${BUDGET} budget: ${JSON.stringify(mid)}`);

      const cl = await run(prog, ['clean', root], { env: d.env, timeoutMs: 60_000 });
      assert.equal(cl.status, 0, `unlinking every name: ${describe(cl)}\n${where()}`);
      // Every process that had these files open is gone: the daemon must give all of it back.
      let s;
      const start = Date.now();
      while (Date.now() - start < 10_000) {
        s = (await d.control({ op: 'stats' })).result;
        if (s.files_in_memory === 0 && s.file_bytes_memory === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      t.diagnostic(`seed ${seed}: before the clean files_in_memory=${mid.files_in_memory} evictions=${mid.evictions}; ${Date.now() - start} ms after it files_in_memory=${s.files_in_memory} file_bytes_memory=${s.file_bytes_memory}`);
      assert.equal(s.files_in_memory, 0, `${s.files_in_memory} files (${s.file_bytes_memory} bytes) still in memory 10 s after every name was unlinked and every process that opened them had exited: ${JSON.stringify(s)}\n${where()}`);
      assert.equal(s.file_bytes_memory, 0, `file_bytes_memory ${s.file_bytes_memory} with no file left: ${JSON.stringify(s)}\n${where()}`);
      assert.deepEqual(readdirSync(root), [], `the root on disk still holds names after every name was unlinked\n${where()}`);
      passed = true;
    } finally {
      const { stderr } = await d.stop();
      if (!passed && stderr) process.stderr.write(stderr);
    }
    sc.done();
  });
}

// The one bug the randomized runs find today, on its own (ns_stress vanish): a process renames a
// fresh file over a name S again and again while another unlinks S at random moments, and the budget
// keeps evicting S to disk.  The kernel replaces or creates the name, so no rename fails on tmpfs;
// under the shim ephemerad's op_rename (daemon/shimops.c, "Memory file over nothing or over a disk
// file") checks the target with lstat, then its unlink() of the disk file meets ENOENT and the
// rename fails with it.  The test also counts the cases the randomized runs above tolerated
// (--tolerate-vanished-target), so it stays red until both are gone.
test('a rename over a name that another process unlinks at the same moment never fails with ENOENT', {
  timeout: 60_000,
  todo: 'known bug on main dd05ed5: ephemerad op_rename (daemon/shimops.c:418) returns the ENOENT of its unlink() of an evicted target that another process removed after its lstat; measured 2-5 of ~750-1060 renames in 2 s of ns_stress vanish under a 300K budget (0 of 14184 on tmpfs), and ns_stress run seeds 7, 10 and 17 (--procs 3 --threads 3 --ops 600, 384K) hit it',
}, async (t) => {
  const prog = await stressBin();
  const args = ['--seed', '1', '--kill-ms', '2000'];
  const ref = tmpfsScratch('nsconc-vanish');
  try {
    const r = await run(prog, ['vanish', ref.dir, ...args], { env: cleanEnv(), timeoutMs: 30_000 });
    assert.equal(r.status, 0, describe(r));
    assert.match(r.stdout.toString(), /failed 0$/m, `tmpfs: ${r.stdout}`);
  } finally {
    ref.done();
  }
  const sc = scratch('nsconc-vanish');
  const root = sc.sub('root');
  const s = await ephemeraRun({ root, budget: '300K', cmd: prog, args: ['vanish', root, ...args], statsDir: sc.dir, timeoutMs: 40_000 });
  assert.equal(s.status, 0, describe(s));
  t.diagnostic(`under the shim: ${s.stdout.toString().trim().split('\n').pop()}; evictions=${s.stats?.evictions}`);
  sc.done();
  const inRandomized = shimRuns.filter((x) => vanished(x.out) > 0).map((x) => `seed ${x.seed}: ${vanished(x.out)}`);
  assert.deepEqual(inRandomized, [], 'renames that failed with ENOENT in the randomized runs above');
  assert.match(s.stdout.toString(), /failed 0$/m, `renames over a vanishing target failed under the shim:\n${s.stdout}`);
});
