// The differential tester's soak (issue 9, `make soak`; not part of `make test`): seeded difftest
// sequences (test/c/difftest.c) on tmpfs and under the shim until SOAK_OPS operations have been
// compared or SOAK_MINUTES have passed, whichever comes first, while busy loops keep every core
// contended. The cases cycle through one process, several processes, fork turns and three uids
// (root, 1000, 1001; needs root), each with no eviction and with a budget so small that files
// move to disk mid-sequence. Every divergence is reported with its seed and the command that
// reproduces it, and its traces are kept under build/test/soak/.
//
//   node test/fs/difftest_soak.mjs          (make soak runs it)
//   SOAK_OPS=200000 SOAK_MINUTES=5 SOAK_SEED=123 SOAK_HOGS=2 node test/fs/difftest_soak.mjs
//
// The last line is the summary (operations compared, cases, divergences, minutes); exit 1 when
// anything diverged or a side failed, 2 for bad settings.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { BUILD, TEST_BIN, ephemeraRun, requireBuilt, run, scratch, tmpfsScratch } from './lib/harness.mjs';

function intSetting(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) <= 0) {
    console.error(`difftest_soak: ${name}=${JSON.stringify(v)} is not a positive whole number; e.g. ${name}=${dflt}`);
    process.exit(2);
  }
  return Number(v);
}

const TARGET_OPS = intSetting('SOAK_OPS', 10_000_000);
const MAX_MS = intSetting('SOAK_MINUTES', 45) * 60_000;
const HOGS = process.env.SOAK_HOGS === '0' ? 0 : intSetting('SOAK_HOGS', availableParallelism());
const BASE_SEED = intSetting('SOAK_SEED', Math.floor(Math.random() * 1e9));
/** Small enough that files move to disk while a sequence runs (as the evicting cases of the suite). */
const TINY_BUDGET = 512 * 1024;
const LARGE_BUDGET = 4 * 1024 * 1024 * 1024;
/** One case's bound: a wedged side is a failure, not a hang of the soak. */
const CASE_TIMEOUT_MS = 300_000;
const DIFFTEST = join(TEST_BIN, 'difftest');
const KEEP = join(BUILD, 'test', 'soak');

const root = process.getuid?.() === 0;
const SHAPES = [
  { mode: 'single', ops: 50000 },
  { mode: 'single', ops: 50000, loose: true, budget: TINY_BUDGET },
  { mode: 'multi', procs: 3, ops: 15000 },
  { mode: 'multi', procs: 3, ops: 36000, loose: true, budget: TINY_BUDGET },
  { mode: 'fork', ops: 5000 },
  { mode: 'fork', ops: 15000, loose: true, budget: TINY_BUDGET },
  ...(root ? [{ mode: 'users', ops: 8000 }, { mode: 'users', ops: 8000, loose: true, budget: TINY_BUDGET }] : []),
];

function args(c, dir) {
  const a = ['--dir', dir, '--seed', String(c.seed), '--ops', String(c.ops), '--mode', c.mode];
  if (c.procs) a.push('--procs', String(c.procs));
  if (c.loose) a.push('--loose');
  return a;
}

function describe(c) {
  return `${c.mode}${c.procs ? `x${c.procs}` : ''}${c.budget ? ' evicting' : ''} seed ${c.seed} (${c.ops} ops)`;
}

/** Busy loops at the soak's own priority: the deliberate CPU contention. */
function startHogs(n) {
  const hogs = [];
  for (let i = 0; i < n; i++) {
    const h = spawn('/bin/sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    h.on('error', () => {});
    hogs.push(h);
  }
  return () => {
    for (const h of hogs) h.kill('SIGKILL');
  };
}

function firstDifference(a, b) {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return { line: i + 1, tmpfs: la[i] ?? '<end>', shim: lb[i] ?? '<end>' };
  }
  return null;
}

/** Both sides of one case side by side; null when they agree, else what differed. */
async function oneCase(c, sc) {
  const ref = tmpfsScratch('soak');
  const shimRoot = sc.sub(`root-${c.seed}`);
  if (c.mode === 'users') chmodSync(shimRoot, 0o755);
  try {
    const [t, s] = await Promise.all([
      run(DIFFTEST, args(c, ref.dir), { timeoutMs: CASE_TIMEOUT_MS, env: { ...process.env, DIFFTEST_SELFCHECK: '1' } }),
      ephemeraRun({ root: shimRoot, budget: c.budget ?? LARGE_BUDGET, cmd: DIFFTEST, args: args(c, shimRoot), statsDir: sc.dir, timeoutMs: CASE_TIMEOUT_MS }),
    ]);
    const tmpfs = t.stdout.toString();
    const shim = s.stdout.toString();
    let why = null;
    const own = t.stderr.toString().split('\n').filter((l) => l.includes('model lost track'));
    if (t.status !== 0) why = `difftest on tmpfs exited with ${t.status} (a tester problem): ${t.stderr.toString().slice(-500)}`;
    // the model decides the mtime windows: where it disagrees with tmpfs, a verdict is the tester's
    else if (own.length) why = `difftest's model disagrees with tmpfs (a tester problem): ${own.slice(0, 3).join('; ')}`;
    else if (s.status !== 0) why = `difftest under the shim exited with ${s.status}: ${s.stderr.toString().slice(-1500)}`;
    else {
      const d = firstDifference(tmpfs, shim);
      if (d) why = `traces differ at line ${d.line}:\n    tmpfs: ${d.tmpfs}\n    shim:  ${d.shim}`;
    }
    if (why) {
      const dir = join(KEEP, `${c.mode}-${c.seed}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'tmpfs.trace'), tmpfs);
      writeFileSync(join(dir, 'shim.trace'), shim);
      writeFileSync(join(dir, 'shim.stderr'), s.stderr);
      return `${why}\n    traces in ${dir}\n    reproduce: build/ephemera run --root R --budget ${c.budget ?? LARGE_BUDGET} -- ${DIFFTEST} ${args(c, 'R').join(' ')}`;
    }
    return null;
  } finally {
    ref.done();
  }
}

async function main() {
  requireBuilt(DIFFTEST);
  const sc = scratch('difftest-soak');
  chmodSync(sc.dir, 0o755); // the users cases' other uids must reach their roots
  const stopHogs = startHogs(HOGS);
  process.on('exit', stopHogs);
  const t0 = Date.now();
  let ops = 0;
  let cases = 0;
  const divergences = [];
  console.log(`# difftest soak: up to ${TARGET_OPS} operations or ${MAX_MS / 60_000} min, base seed ${BASE_SEED}, ${HOGS} busy loops${root ? '' : ' (not root: no users cases)'}`);
  try {
    while (ops < TARGET_OPS && Date.now() - t0 < MAX_MS) {
      const shape = SHAPES[cases % SHAPES.length];
      const c = { ...shape, seed: (BASE_SEED + cases) % 1e9 };
      cases++;
      const why = await oneCase(c, sc);
      ops += c.ops;
      if (why) {
        divergences.push(c);
        console.log(`DIVERGENCE ${describe(c)}: ${why}`);
      }
      if (cases % SHAPES.length === 0) console.log(`# ${ops} operations, ${cases} cases, ${divergences.length} divergences, ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
    }
  } finally {
    stopHogs();
  }
  sc.done();
  const minutes = ((Date.now() - t0) / 60_000).toFixed(1);
  const stopped = ops < TARGET_OPS ? ` (stopped by the ${MAX_MS / 60_000} min bound before ${TARGET_OPS})` : '';
  console.log(`difftest soak: ${ops} operations compared in ${cases} cases, ${divergences.length} divergences, ${minutes} min${stopped}; base seed ${BASE_SEED}`);
  for (const c of divergences) console.log(`  diverged: ${describe(c)}`);
  process.exit(divergences.length ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
