// Issue 15, "no syscall that the kernel would not make": the system calls of bench io's two
// namespace loops, counted by strace, under ephemera and on tmpfs.  test/fs/c/ns_count.c makes plain
// libc calls between two marker calls (access() of "/nonexistent-ns-count/begin" and ".../end"), so
// the calls in the window are the kernel's own answers plus whatever the shim adds; a warm-up round
// before the first marker keeps the shim's start-up out of it.  Both sides use a directory of the
// same depth on /dev/shm (the shim's path walks cost calls per component, so a deeper root would
// cost more), with a budget far above what the loops write (nothing is evicted).
//
// Two tests read the same four traces: today's ceiling (the total per cycle), and the target,
// call by call: nothing the kernel would not make for the same calls on tmpfs, with one exception
// that the design cannot remove while directories and disk names live on disk (NEW_NAME_LOOK).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, cleanEnv, compileProgram, describe, ephemeraRun, requireBuilt, run, scratch, tmpfsScratch } from './lib/harness.mjs';

const N = 1000;
const WORKLOADS = {
  create: 'open(O_CREAT|O_TRUNC) + write 4 KiB + close + unlink, per cycle',
  rename: 'create (O_CREAT|O_EXCL, close), rename, stat, unlink, per file of a set',
  git: "git add's loose objects: an open that says ENOENT + mkdir of the fan-out directory when new, create (O_EXCL), write, close, link, unlink, stat, per object",
  gitdisk: "the same as a real git add meets it: the objects directory on disk (git init's symlink probe gave it its twin), and access(F_OK) of each object's name first",
};
/**
 * Today's calls per cycle under ephemera, measured as root (the shim skips its permission checks
 * for root: another user makes more calls) with a root at /dev/shm/<dir>: on branch sysc 4.09 and
 * 4.09 (tmpfs: 4 and 5; on main dd05ed5 they were 28 and 52); on branch createfast the create
 * cycle 4.00, its slot and memfd kept by the shim from one cycle to the next (no pool refill).
 * The ceiling is that, rounded up, plus one call.
 */
const TODAY = { create: 4, rename: 5, git: 5, gitdisk: 5 }; // git: 4.24 since branch dirfiles' second session (6.04 before); gitdisk 4.10 since branch gitcost (4.60 before)
const SLACK = 1;
/**
 * The target allows amortised work: a call made once per batch of files (the design's pool of 32
 * memfds costs 1/16 of a sendmsg + recvmsg per file) adds under 0.1 per cycle.
 */
const AMORTISED = 0.1;
/**
 * Calls that may stand for the program's own: a duplicate of a pooled memfd, or the daemon's memfd
 * taken by pidfd_getfd, for the kernel's openat (the design in docs/ARCHITECTURE.md), pwrite/pread
 * on the memfd for write/read (the shim keeps the offset; today's 4 KiB write is already a
 * pwrite64), and faccessat2 for access (the shim passes a name that memory does not hold to the
 * kernel with the syscall that takes its flags).
 */
const STANDS_FOR = { 'fcntl:F_DUPFD': 'openat', 'fcntl:F_DUPFD_CLOEXEC': 'openat', pidfd_getfd: 'openat', pwrite64: 'write', pread64: 'read', faccessat2: 'access' };
/**
 * The one call above tmpfs's that is left, per new name: an lstat that finds the name free on
 * disk.  Names on disk are made by the kernel (the program's own disk files, evictions, programs
 * without the shim), and the region records only in-memory files, so a create, and a rename onto a
 * name not in memory, must ask the kernel whether something is there before it inserts the name
 * in memory (the rename asks under the namespace lock, docs/ARCHITECTURE.md).  A create cycle
 * makes one new name, a rename set two (the created name and the rename's target) where tmpfs's
 * own stat makes one newfstatat: one newfstatat per cycle above tmpfs in both, which the kernel's
 * unlink (and rename) that the shim does not make outweigh in the total.  The full design's
 * EPH_DT_DISK dentries (names found on disk entered in the region) would remove it.
 */
const NEW_NAME_LOOK = { newfstatat: 1 };
/**
 * Pool refills (one sendmsg each, the only round trip of the loop) of the rename set's 1000 files,
 * all alive at once: a batch of free slots grows for a process that uses it up (32, 64, then 128:
 * EPH_POOL_FIRST to EPH_POOL_MAX, branch poolbatch), so 1000 files cost 9 refills, where batches of
 * 32 always made 31.
 */
const RENAME_REFILLS = 9;
/**
 * The looks at the disk of a fan-out directory that is not there yet, below an objects directory
 * on disk (gitdisk): one stat in the access's refinement of its ENOENT (an in-memory file above
 * would make it ENOTDIR), one for the create's parent, and the mkdir's own lstat of the new name:
 * 3 per new directory, 256 directories for 1000 objects, 0.77 per object, where tmpfs's kernel
 * makes the access, the failed open and the mkdir. Before branch gitcost the failed create stat'ed
 * its missing parent three times (nsf_dir_writable, nsf_create, the ENOENT's walk): 1.29 per object.
 */
const GITDISK_STATS = 0.77;
/**
 * A wait, not an operation: a `futex` call is the namespace lock met held (by the daemon's 20 ms
 * reclaim tick, or another process), where the kernel waits for the directory's lock inside its own
 * call. How often the cycle meets it depends on the timing, not on the code path: 0.00-0.02 per
 * cycle in loaded runs, which alone tipped the total over tmpfs + AMORTISED. Allowed up to
 * CONTENDED per cycle, counted apart from the total; more than that is a lock held too long.
 */
const CONTENDED = { futex: 0.05 };

const sc = scratch('nscount');
after(() => sc.done());
let measured;

/**
 * Calls between the markers of an `strace -f -o` file, by name; fcntl is split by command
 * (`fcntl:F_DUPFD_CLOEXEC`), since a duplicate of a pooled fd may stand for an openat.
 */
function window(file) {
  const counts = {};
  let inside = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.includes('"/nonexistent-ns-count/begin"')) {
      inside = true;
      continue;
    }
    if (line.includes('"/nonexistent-ns-count/end"')) return counts;
    if (!inside) continue;
    // "PID name(args) = result", "PID name(args <unfinished ...>", "PID <... name resumed> ...",
    // "PID --- SIGNAL ...", "PID +++ exited ...": a call is counted once, at its start.
    const m = /^\d+\s+([a-z0-9_]+)\((.*)$/.exec(line);
    if (!m) continue;
    let name = m[1];
    if (name === 'fcntl') name = `fcntl:${m[2].split(',')[1]?.trim() ?? '?'}`;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  throw new Error(`${file}: no end marker (the program failed?)`);
}

function perCycle(counts) {
  const out = {};
  for (const [k, v] of Object.entries(counts)) out[k] = v / N;
  return out;
}

const total = (c) => Object.values(c).reduce((a, b) => a + b, 0);

function table(ws) {
  const rows = [];
  for (const w of Object.keys(WORKLOADS)) {
    const { tmpfs, shim } = ws[w];
    const names = [...new Set([...Object.keys(tmpfs), ...Object.keys(shim)])].sort();
    rows.push(`${w} (${WORKLOADS[w]}): ephemera ${total(shim).toFixed(2)}, tmpfs ${total(tmpfs).toFixed(2)}`);
    for (const n of names) rows.push(`  ${n.padEnd(24)} ephemera ${(shim[n] ?? 0).toFixed(2).padStart(6)}   tmpfs ${(tmpfs[n] ?? 0).toFixed(2).padStart(6)}`);
  }
  return rows.join('\n');
}

/** The four traces, taken once for both tests. */
function measure() {
  measured ??= (async () => {
    requireBuilt();
    const prog = await compileProgram(sc, 'ns_count', readFileSync(join(REPO, 'test/fs/c/ns_count.c'), 'utf8'), { flags: ['-O2', '-Wall', '-Wextra', '-Werror'] });
    const out = {};
    for (const w of Object.keys(WORKLOADS)) {
      const ref = tmpfsScratch(`nscount-${w}`);
      const tmpfsTrace = join(sc.dir, `tmpfs-${w}.txt`);
      try {
        const r = await run('strace', ['-f', '-o', tmpfsTrace, prog, ref.dir, w, String(N)], { env: cleanEnv(), timeoutMs: 120_000 });
        assert.equal(r.status, 0, `on tmpfs: ${describe(r)}`);
      } finally {
        ref.done();
      }
      // The root: the same depth as the tmpfs directory (/dev/shm/<dir>), on the same file system.
      const rootDir = tmpfsScratch(`nscount-root-${w}`);
      const shimTrace = join(sc.dir, `shim-${w}.txt`);
      try {
        mkdirSync(rootDir.dir, { recursive: true });
        // Files inside directories in memory (on by default, shim/nsdir.c), said for git's pattern.
        const env = w === 'git' || w === 'gitdisk' ? { EPHEMERA_MEMDIR_FILES: '1' } : {};
        const s = await ephemeraRun({ root: rootDir.dir, budget: 1 << 30, env, cmd: 'strace', args: ['-f', '-o', shimTrace, prog, rootDir.dir, w, String(N)], statsDir: sc.dir, timeoutMs: 120_000 });
        assert.equal(s.status, 0, `under ephemera: ${describe(s)}`);
        // A pass-through shim would match tmpfs's counts trivially: the files must have been in memory.
        assert.ok(s.stats.files_in_memory_peak >= (w === 'create' ? 1 : N) && s.stats.files_on_disk === 0 && s.stats.evictions === 0,
          `${w}: the files were not kept in memory (files_in_memory_peak ${s.stats.files_in_memory_peak}, files_on_disk ${s.stats.files_on_disk}, evictions ${s.stats.evictions}), so the counts say nothing`);
        // git's fan-out directories are made in memory and filled there: no disk twin (issue 15); the
        // objects directory above them gets its twin once.
        if (w === 'gitdisk')
          assert.ok(s.stats.dirs_made_in_memory >= 256, `gitdisk: the fan-out directories were not made in memory (dirs_made_in_memory ${s.stats.dirs_made_in_memory})`);
        if (w === 'git')
          assert.ok(s.stats.dirs_made_in_memory >= 256 && s.stats.dir_twins <= 2, // the objects directory of each round, once
            `git: the object directories were not kept in memory (dirs_made_in_memory ${s.stats.dirs_made_in_memory}, dir_twins ${s.stats.dir_twins})`);
      } finally {
        rootDir.done();
      }
      out[w] = { tmpfs: perCycle(window(tmpfsTrace)), shim: perCycle(window(shimTrace)) };
    }
    return out;
  })();
  return measured;
}

test('namespace calls under ephemera stay at or below today\'s count (create+write+close+unlink, rename sets)', { timeout: 240_000 }, async (t) => {
  const ws = await measure();
  t.diagnostic(`system calls per cycle, ${N} cycles, strace -f:\n${table(ws)}`);
  // The method: on tmpfs each libc call is exactly its one system call.
  assert.deepEqual(ws.create.tmpfs, { openat: 1, write: 1, close: 1, unlink: 1 }, 'tmpfs create cycle');
  assert.deepEqual(ws.rename.tmpfs, { openat: 1, close: 1, rename: 1, newfstatat: 1, unlink: 1 }, 'tmpfs rename set');
  const refills = Math.round((ws.rename.shim.sendmsg ?? 0) * N);
  assert.ok(refills <= RENAME_REFILLS, `rename set: ${refills} daemon round trips for ${N} files, more than ${RENAME_REFILLS}: the pool's batch no longer grows\n${table(ws)}`);
  if (process.geteuid() !== 0) {
    t.skip('the ceiling was measured as root; the shim makes more calls for other users (its permission checks)');
    return;
  }
  // git's pattern: no daemon round trip and no disk mkdir per fan-out directory (branch dirfiles;
  // before it, each directory's first object asked the daemon for its disk twin: 0.26 per object).
  assert.ok((ws.git.shim.sendmsg ?? 0) <= AMORTISED && !ws.git.shim.mkdir, `git: daemon round trips or mkdirs per object\n${table(ws)}`);
  // Below an objects directory on disk, a fan-out directory that is not there yet is looked at once
  // per call that meets it (branch gitcost), and still made in memory.
  assert.ok((ws.gitdisk.shim.newfstatat ?? 0) <= GITDISK_STATS + AMORTISED && (ws.gitdisk.shim.sendmsg ?? 0) <= AMORTISED && !ws.gitdisk.shim.mkdir,
    `gitdisk: ${(ws.gitdisk.shim.newfstatat ?? 0).toFixed(2)} stats per object, more than ${GITDISK_STATS} (+${AMORTISED}): a missing parent is stat'ed more than once per call again\n${table(ws)}`);
  for (const w of Object.keys(WORKLOADS)) {
    const got = total(ws[w].shim);
    assert.ok(got <= TODAY[w] + SLACK, `${w}: ${got.toFixed(2)} system calls per cycle under ephemera, more than today's ${TODAY[w]} (+${SLACK}): a change added calls to the namespace path\n${table(ws)}`);
  }
});

test('namespace calls under ephemera: none that the kernel would not make but the new name\'s look at the disk (issue 15 target)', {
  timeout: 240_000,
}, async (t) => {
  const ws = await measure();
  if (process.geteuid() !== 0) {
    t.skip('measured as root; the shim makes more calls for other users (its permission checks)');
    return;
  }
  const problems = [];
  // git's pattern too: its new directories cost the shim an openat2 of the objects directory (the
  // mkdir's parent, and the failed open's look at the missing one) until no symlink under a root
  // meant none was needed (0.77 per object then, 6.0 calls per object; now 4.2, tmpfs 6.5).
  for (const w of Object.keys(WORKLOADS)) {
    const { tmpfs, shim } = ws[w];
    const mapped = {};
    for (const [k, v] of Object.entries(shim)) {
      const key = STANDS_FOR[k] ?? k;
      mapped[key] = (mapped[key] ?? 0) + v;
    }
    for (const [k, v] of Object.entries(mapped)) {
      const allowed = (tmpfs[k] ?? 0) + (NEW_NAME_LOOK[k] ?? 0) + (CONTENDED[k] ?? AMORTISED);
      if (v > allowed) problems.push(`${w}: ${k} ${v.toFixed(2)} per cycle, tmpfs ${(tmpfs[k] ?? 0).toFixed(2)}${NEW_NAME_LOOK[k] ? ` (+${NEW_NAME_LOOK[k]} allowed)` : ''}`);
    }
    const waits = Object.keys(CONTENDED).reduce((n, k) => n + Math.min(mapped[k] ?? 0, CONTENDED[k]), 0);
    if (total(mapped) - waits > total(tmpfs) + AMORTISED) problems.push(`${w}: ${total(mapped).toFixed(2)} calls per cycle in all, tmpfs ${total(tmpfs).toFixed(2)}`);
  }
  t.diagnostic(`per cycle: create ${total(ws.create.shim).toFixed(2)} under ephemera, ${total(ws.create.tmpfs).toFixed(2)} on tmpfs; rename set ${total(ws.rename.shim).toFixed(2)} and ${total(ws.rename.tmpfs).toFixed(2)} (the table is in the test above)`);
  assert.deepEqual(problems, [], `system calls the kernel would not make for the same calls on tmpfs:\n${table(ws)}`);
});

/**
 * A process's start, under the same rule: a program exec'd by an attached one (a compiler driver's
 * cc1 and as, make's recipes, git's helpers) maps the region through the daemon's fd, whose pid,
 * number and inode its parent put in EPHEMERA_REGION, where it used to ask for it: a socket, a
 * connect and a HELLO round trip through a daemon that must be scheduled first, on every exec.
 * Counted per process in an strace of 20 `stat`s and 20 `cat`s of an in-memory file: a stat needs
 * no round trip at all, a cat one message and no wait (its open takes a reference, so its fd table
 * goes to the daemon first, the ledger, which the daemon reads in its turn).  A stale or forged variable costs the HELLO it replaces, never an open of
 * what the number names now: with pid 1's fd 0 (not a regular file) the child stats it and asks.
 */
test('a program exec\'d by an attached one maps the region without asking the daemon (EPHEMERA_REGION)', { timeout: 120_000 }, async (t) => {
  requireBuilt();
  const rootDir = tmpfsScratch('nscount-start');
  const trace = join(sc.dir, 'start.txt');
  try {
    // forged: pid 1's fd 0 with the right socket's hash; other: the real region with another
    // socket's hash (a variable left from a run this one is nested in)
    const script = `echo hi > f && strace -f -o ${trace} sh -c 'for i in $(seq 20); do stat -c %s f; cat f; done; ` +
      `env EPHEMERA_REGION="1:0:1:\${EPHEMERA_REGION##*:}" stat -c forged:%s f; env EPHEMERA_REGION="\${EPHEMERA_REGION%:*}:0" stat -c other:%s f'`;
    const s = await ephemeraRun({ root: rootDir.dir, budget: 1 << 30, cmd: 'sh', args: ['-c', script], statsDir: sc.dir, timeoutMs: 60_000 });
    assert.equal(s.status, 0, describe(s));
    assert.equal(s.stdout.toString(), '3\nhi\n'.repeat(20) + 'forged:3\nother:3\n', describe(s));
    assert.ok(s.stats.files_in_memory_peak >= 1 && s.stats.files_on_disk === 0, `f was not in memory (files_in_memory_peak ${s.stats.files_in_memory_peak}, files_on_disk ${s.stats.files_on_disk})`);
  } finally {
    rootDir.done();
  }
  // Calls per process, and what each process exec'd last.
  const procs = new Map();
  // A call interrupted by another process's line is split by strace into "name(args <unfinished
  // ...>" and "<... name resumed>rest": joined here, so that an execve in a vfork child (whose
  // parent's vfork line comes between) is read whole.
  const pending = new Map();
  for (let line of readFileSync(trace, 'utf8').split('\n')) {
    const u = /^(\d+)\s+(.*) <unfinished \.\.\.>$/.exec(line);
    if (u) {
      pending.set(u[1], u[2]);
      continue;
    }
    const r = /^(\d+)\s+<\.\.\. [a-z0-9_]+ resumed>(.*)$/.exec(line);
    if (r) {
      if (!pending.has(r[1])) continue;
      line = `${r[1]} ${pending.get(r[1])}${r[2]}`;
      pending.delete(r[1]);
    }
    const m = /^(\d+)\s+([a-z0-9_]+)\((.*)$/.exec(line);
    if (!m) continue;
    const p = procs.get(m[1]) ?? { prog: '', calls: {}, args: '' };
    procs.set(m[1], p);
    if (m[2] === 'execve' && / = 0$/.test(m[3])) p.prog = /^"([^"]*)"/.exec(m[3])?.[1] ?? '';
    if (m[2] === 'execve' && / = 0$/.test(m[3])) p.args = m[3];
    p.calls[m[2]] = (p.calls[m[2]] ?? 0) + 1;
    if (/"\/proc\/1\/fd\/0"/.test(m[3])) p.calls[`${m[2]}:/proc/1/fd/0`] = (p.calls[`${m[2]}:/proc/1/fd/0`] ?? 0) + 1;
    if (/"\/proc\/\d+\/fd\/\d+"/.test(m[3])) p.calls['proc-fd'] = (p.calls['proc-fd'] ?? 0) + 1;
  }
  const of = (name, tag) => [...procs.values()].filter((p) => p.prog.endsWith(`/${name}`) && (tag ? p.args.includes(tag) : !/forged|other/.test(p.args)));
  const stats = of('stat'), cats = of('cat'), forged = of('stat', 'forged'), other = of('stat', 'other');
  assert.equal(stats.length, 20, 'the trace has the 20 stat processes');
  assert.equal(cats.length, 20, 'the trace has the 20 cat processes');
  assert.equal(forged.length, 1, 'the trace has the stat under a forged EPHEMERA_REGION');
  assert.equal(other.length, 1, "the trace has the stat under another run's EPHEMERA_REGION");
  const rt = (p) => (p.calls.sendmsg ?? 0) + (p.calls.connect ?? 0) + (p.calls.socket ?? 0);
  t.diagnostic(`per process: stat ${JSON.stringify(stats[0].calls)}\ncat ${JSON.stringify(cats[0].calls)}\nforged ${JSON.stringify(forged[0].calls)}`);
  for (const p of stats) assert.equal(rt(p), 0, `a stat of an in-memory file talked to the daemon at its start: ${JSON.stringify(p.calls)}`);
  for (const p of cats) {
    assert.equal(p.calls.sendmsg ?? 0, 1, `a cat of an in-memory file: one message (its ledger), no HELLO: ${JSON.stringify(p.calls)}`);
    // The ledger is sent, not waited for (branch gccstart): no answer to wait for the daemon's turn.
    assert.equal(p.calls.recvmsg ?? 0, 0, `a cat of an in-memory file waited for the daemon's answer: ${JSON.stringify(p.calls)}`);
  }
  const f = forged[0].calls;
  assert.ok((f.connect ?? 0) === 1 && (f.sendmsg ?? 0) >= 1, `a forged EPHEMERA_REGION must fall back to HELLO: ${JSON.stringify(f)}`);
  assert.ok(!f['openat:/proc/1/fd/0'] && !f['open:/proc/1/fd/0'], `a forged EPHEMERA_REGION naming something that is not the region was opened: ${JSON.stringify(f)}`);
  assert.ok(f['newfstatat:/proc/1/fd/0'] === 1, `the forged EPHEMERA_REGION was not looked at (stat first): ${JSON.stringify(f)}`);
  const o = other[0].calls;
  assert.ok((o.connect ?? 0) === 1 && (o.sendmsg ?? 0) >= 1 && !o['proc-fd'], `another run's EPHEMERA_REGION must not be used: ${JSON.stringify(o)}`);
});
