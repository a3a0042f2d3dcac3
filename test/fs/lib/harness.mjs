// Shared helpers for the file-system suites: scratch directories, running a command under
// `ephemera run` (or under a daemon started by hand, e.g. the ASan build), and the checks every
// suite makes (data really served from memory).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

// The control plane's own checks, compiled by `make` (test-fs builds everything first).
import { startDaemon as startDaemonReady } from '../../../build/js/daemon-client/start.js';
import { notServedFromMemory, parseStats, readStatsFile } from '../../../build/js/daemon-client/stats.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BUILD = join(REPO, 'build');
export const EPHEMERA = join(BUILD, 'ephemera');
export const SHIM = join(BUILD, 'libephemera.so');
export const DAEMON = join(BUILD, 'ephemerad');
export const TEST_BIN = join(BUILD, 'test');
/** Debian's interpreter, not whatever `python3` a developer has first in PATH. */
export const PYTHON = '/usr/bin/python3';

const SCRATCH = join(BUILD, 'test', 'scratch');

/**
 * A fresh directory for one test, under build/test/scratch (never the real /tmp, which a default
 * shim configuration would manage).  Removed by `done()` when the test passed; left for
 * inspection otherwise.
 */
export function scratch(name) {
  mkdirSync(SCRATCH, { recursive: true });
  const dir = mkdtempSync(join(SCRATCH, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  return {
    dir,
    /** A subdirectory, created. */
    sub(rel) {
      const p = join(dir, rel);
      mkdirSync(p, { recursive: true });
      return p;
    },
    done() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A directory on a real tmpfs, the reference the shim is compared with. */
export function tmpfsScratch(name) {
  const base = '/dev/shm';
  const mounts = readFileSync('/proc/mounts', 'utf8');
  if (!mounts.split('\n').some((l) => l.split(' ')[1] === base && l.split(' ')[2] === 'tmpfs')) {
    throw new Error(`${base} is not a tmpfs mount; the differential tests need a real tmpfs to compare with`);
  }
  const dir = mkdtempSync(join(base, `ephemera-test-${name}-`));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

export function requireBuilt(...paths) {
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`${p} is missing: run \`make\` (and \`make test-build\`) first`);
  }
}

/**
 * Run a command; never throws on a non-zero status.  Returns { status, signal, stdout, stderr }
 * with stdout/stderr as Buffers.
 */
export function run(cmd, args, { env = process.env, cwd = REPO, input, timeoutMs = 120_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      const r = { status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut: killed };
      if (killed) r.stderr = Buffer.concat([r.stderr, Buffer.from(`\n[harness: killed after ${timeoutMs} ms]\n`)]);
      resolvePromise(r);
    });
    child.stdin.on('error', () => {});
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/**
 * Run `ephemera run --root ROOT... --stats FILE [--budget B] -- CMD ARGS` and return the result
 * plus the parsed stats.  `roots` defaults to [root].
 */
export async function ephemeraRun({ root, roots, budget, cmd, args = [], env = {}, cwd, input, timeoutMs, statsDir, discard }) {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const rs = roots ?? [root];
  const statsFile = join(statsDir ?? dirname(rs[0]), `stats-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const flags = [];
  for (const r of rs) flags.push('--root', r);
  if (budget !== undefined) flags.push('--budget', String(budget));
  if (discard) flags.push('--discard');
  flags.push('--stats', statsFile);
  const fullEnv = { ...cleanEnv(), ...env };
  const r = await run(EPHEMERA, ['run', ...flags, '--', cmd, ...args], { env: fullEnv, cwd: cwd ?? rs[0], input, timeoutMs });
  let stats = null;
  try {
    stats = readStatsFile(statsFile);
    rmSync(statsFile, { force: true });
  } catch (err) {
    // No file: the run did not get to the end (the caller checks its status). Bad counters throw.
    if (err?.code !== 'EPH_STATS_FILE') throw err;
  }
  return { ...r, stats, statsFile };
}

/** The environment for a child: ours minus anything that would change what is under test. */
export function cleanEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('EPHEMERA_')) delete env[k];
  delete env.LD_PRELOAD;
  env.LC_ALL = 'C';
  // Python from pyenv shims, node_modules/.bin... must not shadow Debian's programs.
  env.PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

/** Text of a run for assertion messages. */
export function describe(r) {
  const tail = (b) => {
    const s = b.toString('utf8');
    return s.length > 4000 ? `...${s.slice(-4000)}` : s;
  };
  return `exit status ${r.status}${r.signal ? ` (signal ${r.signal})` : ''}\n--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`;
}

export function assertExit0(r, what) {
  assert.equal(r.status, 0, `${what} failed: ${describe(r)}`);
}

/**
 * The point of the suites: the data was served from memory.  A pass-through shim (or one that
 * silently gave up on the root) leaves the fast counters at zero; one that sends most operations
 * to the kernel shows in `slow_ops`.  The rule is the control plane's notServedFromMemory
 * (src/daemon-client/stats.ts); `{ evicting: true }` for a budget that pushes files to disk.
 */
export function assertServedFromMemory(stats, what, options = {}) {
  assert.ok(stats, `${what}: ephemera run wrote no --stats JSON`);
  const why = notServedFromMemory(parseStats(stats, `${what}: --stats`), options);
  assert.equal(why, undefined, `${what}: not served from memory: ${why}`);
}

/**
 * The pattern of the tmpfs-referenced suites: run a command with a fresh tmpfs directory as its
 * working directory (the reference), then under `ephemera run` with a managed root in its place.
 * `argv(dir, side)` gives the arguments, `side` being 'tmpfs' or 'shim'; `env(dir)` extra
 * environment.  Both must exit 0.  Returns both results, both directories (`tmpfsDir` is gone by
 * then) and the shim side's scratch (the caller calls `sc.done()` once its own checks passed, so a
 * failure leaves the files for inspection).
 */
export async function runCmdOnTmpfsAndShim(name, cmd, argv, { env = () => ({}), budget } = {}) {
  const ref = tmpfsScratch(name);
  let tmpfs;
  try {
    tmpfs = await run(cmd, argv(ref.dir, 'tmpfs'), { env: { ...cleanEnv(), ...env(ref.dir) }, cwd: ref.dir });
  } finally {
    ref.done();
  }
  assert.equal(tmpfs.status, 0, `reference run on tmpfs: ${describe(tmpfs)}`);
  const sc = scratch(name);
  const root = sc.sub('root');
  const shim = await ephemeraRun({ root, budget, cmd, args: argv(root, 'shim'), env: env(root), statsDir: sc.dir });
  assert.equal(shim.status, 0, `under the shim: ${describe(shim)}\n(scratch kept in ${sc.dir})`);
  return { tmpfs, shim, sc, tmpfsDir: ref.dir, root };
}

/** runCmdOnTmpfsAndShim for `python3 -c SCRIPT DIR ARGS...`; `args(side)` gives ARGS. */
export async function runOnTmpfsAndShim(name, script, { args = () => [], budget } = {}) {
  return runCmdOnTmpfsAndShim(name, PYTHON, (dir, side) => ['-c', script, dir, ...args(side)], { budget });
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

/** Deterministic pseudo-random bytes (SHA-256 in counter mode), so expected digests are computed here. */
export function prandBytes(n, seed = 1) {
  const b = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    createHash('sha256').update(`${seed}:${i}`).digest().copy(b, off, 0, Math.min(32, n - off));
  }
  return b;
}

/** Text lines with a deterministic pseudo-random order, for sort tests. */
export function prandLines(n, seed = 1) {
  const lines = [];
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    lines.push(`line ${(x % 100000).toString().padStart(5, '0')} ${i} ${'xyz'.repeat(x % 7)}`);
  }
  return lines;
}

/** Every regular file under dir, relative path -> sha256, sorted. */
export function treeDigest(dir) {
  const out = {};
  const walk = (rel) => {
    const abs = join(dir, rel);
    for (const name of readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(join(dir, r), { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(r);
      else if (st.isFile()) out[r] = sha256(readFileSync(join(dir, r)));
    }
  };
  walk('');
  return out;
}

/**
 * Start a daemon by hand (e.g. build/asan/ephemerad) and return the environment that makes a
 * process use it, plus `stop()` which shuts it down and returns the final stats.
 */
export async function startDaemon({ daemon = DAEMON, root, budget, logFile, extraArgs = [] }) {
  requireBuilt(daemon, SHIM);
  const rundir = mkdtempSync(join(dirname(root), 'rundir-'));
  const args = ['--rundir', rundir, '--root', root, '--log', logFile ?? join(rundir, 'ephemerad.log'), ...extraArgs];
  if (budget !== undefined) args.push('--budget', String(budget));
  const errChunks = [];
  let exited;
  const child = await startDaemonReady({
    argv: [daemon, ...args],
    env: { ...cleanEnv(), ASAN_OPTIONS: asanOptions() },
    stdout: 'pipe',
    stderr: 'pipe',
    timeoutMs: 15_000,
    onSpawn: (c) => {
      c.stderr.on('data', (b) => errChunks.push(b));
      c.stdout.on('data', (b) => errChunks.push(b));
      exited = new Promise((res) => c.on('exit', (code, signal) => res({ code, signal })));
    },
    hint: () => `${daemon}: ${Buffer.concat(errChunks)}`,
  });
  const env = {
    ...cleanEnv(),
    LD_PRELOAD: SHIM,
    EPHEMERA_SOCK: join(rundir, 'shim.sock'),
    EPHEMERA_ROOTS: root,
    EPHEMERA_LIB: SHIM,
    EPHEMERA_LOG: join(rundir, 'shim.log'),
  };
  return {
    env,
    rundir,
    pid: child.pid,
    stderr: () => Buffer.concat(errChunks).toString(),
    async control(req) {
      return controlRequest(join(rundir, 'control.sock'), req);
    },
    async stop() {
      let stats = null;
      try {
        const resp = await controlRequest(join(rundir, 'control.sock'), { op: 'shutdown', mode: 'writeback' });
        stats = resp.result ?? null;
      } catch {
        child.kill('SIGTERM');
      }
      let timer;
      const st = await Promise.race([exited, new Promise((res) => (timer = setTimeout(() => res(null), 20_000)))]);
      clearTimeout(timer);
      if (st === null) child.kill('SIGKILL');
      return { stats, exit: st, stderr: Buffer.concat(errChunks).toString() };
    },
  };
}

/** One JSON request on a control socket (docs/PROTOCOL.md). */
export function controlRequest(sock, req) {
  return new Promise((res, rej) => {
    const c = createConnection(sock);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      rej(new Error(`no reply from ${sock} within 30 s`));
    }, 30_000);
    c.on('connect', () => c.write(`${JSON.stringify({ v: 1, id: 1, ...req })}\n`));
    c.on('data', (b) => {
      buf += b.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        c.end();
        try {
          res(JSON.parse(buf.slice(0, nl)));
        } catch (e) {
          rej(e);
        }
      }
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
  });
}

/** ASan settings for sanitised binaries: fail loudly, and tolerate a preloaded shim. */
export function asanOptions() {
  return 'abort_on_error=0:halt_on_error=1:exitcode=86:detect_leaks=1:verify_asan_link_order=0';
}

/**
 * Spawn a long-lived child whose output the test watches while it runs: returns the child, a
 * promise of its { code, signal } at exit, and its stdout and stderr so far.
 */
export function spawnWatched(cmd, args, { env = process.env, stdin = 'ignore' } = {}) {
  const child = spawn(cmd, args, { env, stdio: [stdin, 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => (out += b.toString()));
  child.stderr.on('data', (b) => (err += b.toString()));
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, exited, stdout: () => out, stderr: () => err };
}

/**
 * Compile a test program from its source text into the scratch `sc`: C with gcc by default, C++
 * with `{ cxx: true }` (g++).  Returns the binary's path; a compiler error fails the test.
 */
export async function compileProgram(sc, name, source, { cxx = false, flags = ['-O1', '-Wall'] } = {}) {
  const bin = join(sc.dir, name);
  const src = `${bin}.${cxx ? 'cpp' : 'c'}`;
  writeFileSync(src, source);
  const cc = cxx ? 'g++' : 'gcc';
  const r = await run(cc, [...flags, '-o', bin, src]);
  assert.equal(r.status, 0, `${cc}: ${describe(r)}`);
  return bin;
}

/**
 * A bash script (or `argv(dir)` for `cmd`) run on tmpfs and under the shim with R (and HOME) set to
 * the directory: both runs' stdout+stderr, with the directory spelled $R, must be equal, and the
 * shim's run must have been served from memory.  Returns the output and the shim's stats.
 */
export async function sameOnTmpfsAndShim(t, name, script, { budget, cmd = '/bin/bash', argv } = {}) {
  const args = argv ?? ((dir) => ['-c', `set -u\ncd "$R"\n${script}`, 'bash', dir]);
  const { tmpfs, shim, sc, tmpfsDir, root } = await runCmdOnTmpfsAndShim(name, cmd, args, { env: (dir) => ({ R: dir, HOME: dir }), budget });
  const norm = (r, dir) => `${r.stdout}\n--- stderr ---\n${r.stderr}`.split(dir).join('$R');
  const refOut = norm(tmpfs, tmpfsDir);
  const shimOut = norm(shim, root);
  assert.equal(shimOut, refOut, `${name}: output under the shim differs from tmpfs\n${describe(shim)}\n(scratch kept in ${sc.dir})`);
  assertServedFromMemory(shim.stats, name);
  t.diagnostic(`fast_reads=${shim.stats.fast_reads} fast_writes=${shim.stats.fast_writes} files_in_memory_peak=${shim.stats.files_in_memory_peak} evictions=${shim.stats.evictions}`);
  sc.done();
  return { out: shimOut, stats: shim.stats };
}
