// A killed daemon loses nothing (issue 9 item 2; docs/ARCHITECTURE.md, "A namespace that survives
// the daemon").  `ephemera run` (the native launcher) keeps a copy of every fd that ephemerad must
// not lose; when ephemerad dies by a signal it starts a new one that takes the region over, and
// when none can start it writes every in-memory file to its path itself.  Either way every byte
// reaches the disk at the end and the run exits with the command's status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';

import { DAEMON, EPHEMERA, PYTHON, REPO, SHIM, TEST_BIN, cleanEnv, describe, requireBuilt, run, scratch } from './lib/harness.mjs';

const WORKLOAD = join(REPO, 'test/fs/py/killed_daemon.py');

function sha(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

/** Every expectation file the workload wrote, merged: { name: sha256 }. */
function expected(out) {
  const all = {};
  for (const f of readdirSync(out).filter((n) => n.endsWith('.json'))) Object.assign(all, JSON.parse(readFileSync(join(out, f), 'utf8')));
  return all;
}

/** The root holds exactly the expected names, each with the expected bytes. */
function assertDiskMatches(root, want, what) {
  const have = readdirSync(root).sort();
  assert.deepEqual(have, Object.keys(want).sort(), `${what}: the names in the root differ from the workload's`);
  const wrong = have.filter((n) => sha(readFileSync(join(root, n))) !== want[n]);
  assert.deepEqual(wrong, [], `${what}: files whose bytes differ from what the workload wrote`);
}

/** The environment of an inline workload: its `from keeperproc import daemons` (test/fs/py). */
function workloadEnv(extra = {}) {
  return { ...cleanEnv(), PYTHONPATH: join(REPO, 'test/fs/py'), ...extra };
}

/** A daemon wrapper whose every start after the first waits a second: the restart is slow. */
function slowRestart(sc) {
  const slow = join(sc.dir, 'ephemerad-slow');
  writeFileSync(slow, `#!/bin/sh\nif [ -e "${sc.dir}/started" ]; then sleep 1; fi\n: > "${sc.dir}/started"\nexec "${DAEMON}" "$@"\n`);
  chmodSync(slow, 0o755);
  return slow;
}

/** A daemon wrapper that starts once: the second start (the takeover) fails before it is ready. */
function onceOnly(sc) {
  const wrapper = join(sc.dir, 'ephemerad-once');
  writeFileSync(wrapper, `#!/bin/sh\nif [ -e "${sc.dir}/started" ]; then echo "ephemerad-once: not again" >&2; exit 2; fi\n: > "${sc.dir}/started"\nexec "${DAEMON}" "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

/**
 * `ephemera run` of the command `cmd(root, out, log)` gives, in the scratch's root and with the
 * daemon's log in the scratch; `out` is where the workload writes what the disk must hold.
 * Returns { r, root, out, log } (log: the log's text).
 */
async function runInRoot(sc, cmd, { limit = ['--budget', '64M'], env = workloadEnv(), timeoutMs = 50_000 } = {}) {
  const root = sc.sub('root');
  const out = sc.sub('out');
  const log = join(sc.dir, 'ephemerad.log');
  const r = await run(EPHEMERA, ['run', '--root', root, ...limit, '--log', log, '--', ...cmd(root, out, log)], { env, cwd: sc.dir, timeoutMs });
  return { r, root, out, log: readFileSync(log, 'utf8') };
}

async function runWorkload(sc, { kills, writers, rounds, interval, budget = '1M', limit = ['--budget', budget], env = {} }) {
  const cmd = (root, out) => [PYTHON, WORKLOAD, root, out, String(kills), String(writers), String(rounds), String(interval)];
  return runInRoot(sc, cmd, { limit, env: { ...cleanEnv(), ...env }, timeoutMs: 100_000 });
}

test('ephemerad killed three times during a write-heavy workload of four processes: every byte reaches the disk', { timeout: 120_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-kills');
  const { r, root, out, log } = await runWorkload(sc, { kills: 3, writers: 4, rounds: 40, interval: 0.3 });
  const err = r.stderr.toString();
  assert.equal(r.status, 7, `the run must exit with the command's status (7): ${describe(r)}`);
  const died = err.match(/ephemera run: ephemerad died \(SIGKILL\); restarting it and taking over \d+ files \(\d+ in memory\)/g) ?? [];
  assert.equal(died.length, 3, `one diagnostic per kill on stderr: ${err}`);
  assert.equal((log.match(/ephemera-run\[\d+\] warn: ephemerad died \(SIGKILL\)/g) ?? []).length, 3, 'and in the log');
  assert.equal((log.match(/takeover of the region of pid \d+: .* 0 lost/g) ?? []).length, 3, `three takeovers, nothing lost:\n${log.slice(-3000)}`);
  assert.equal((log.match(/ns_check after the takeover: consistent/g) ?? []).length, 3, 'the namespace is consistent after each takeover');
  assert.match(log, /evicted inode/, 'the budget evicted files (some of the workload lives on disk)');
  assert.match(log, /shutdown: wrote \d+ in-memory files back to disk, 0 could not be written/);
  assertDiskMatches(root, expected(out), 'after three kills');
  sc.done();
});

// `--memory` makes a cgroup, which Node's CLI does (with the OOM guard's watchdog) before it hands
// the run to the native launcher: the daemon and the command are moved into the cgroup, the
// launcher (the keeper) stays outside it and restarts a killed daemon there (issue 9 item 2).
test('ephemerad killed twice during a --memory run: restarted inside the cgroup, every byte on disk, the status kept', { timeout: 120_000 }, async (t) => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  if (process.getuid() !== 0) {
    t.skip('needs root to create a memory cgroup');
    return;
  }
  const sc = scratch('keeper-memory');
  const stats = join(sc.dir, 'stats.json');
  const { r, root, out, log } = await runWorkload(sc, { kills: 2, writers: 3, rounds: 30, interval: 0.3, limit: ['--memory', '256M', '--stats', stats] });
  const err = r.stderr.toString();
  if (r.status === 1 && /EPH_CGROUP_UNAVAILABLE/.test(err)) {
    t.skip(`no memory cgroup controller here: ${err.trim()}`);
    return;
  }
  assert.equal(r.status, 7, `the run must exit with the command's status (7): ${describe(r)}`);
  const died = err.match(/ephemera run: ephemerad died \(SIGKILL\); restarting it and taking over \d+ files \(\d+ in memory\)/g) ?? [];
  assert.equal(died.length, 2, `one diagnostic per kill on stderr: ${err}`);
  assert.equal((log.match(/takeover of the region of pid \d+: .* 0 lost/g) ?? []).length, 2, `two takeovers, nothing lost:\n${log.slice(-3000)}`);
  assert.match(log, /shutdown: wrote \d+ in-memory files back to disk, 0 could not be written/);
  assertDiskMatches(root, expected(out), 'after two kills in a --memory run');
  // The stats are the last daemon's: it was started in the cgroup, which followed the limit and
  // is gone now.
  const s = JSON.parse(readFileSync(stats, 'utf8'));
  assert.equal(s.cgroup_limit, 256 * 1024 * 1024);
  assert.equal(s.limit, 256 * 1024 * 1024, 'the restarted daemon follows the cgroup\'s limit');
  assert.ok(typeof s.cgroup === 'string' && typeof s.cgroup_path === 'string' && s.cgroup_path.endsWith(s.cgroup), `daemon's cgroup ${s.cgroup} against ${s.cgroup_path}`);
  assert.equal(s.oom_kills, 0);
  assert.ok(!existsSync(s.cgroup_path), 'the cgroup was removed');
  sc.done();
});

test('after a restart, new files go to memory again and the files made before it read and write', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-after');
  // The workload's main process checks, through the new daemon: a write through an fd opened
  // before the kill, the bytes of a file made before it, and st_ino of a new file (in memory).
  const { r, root, out } = await runWorkload(sc, { kills: 1, writers: 1, rounds: 8, interval: 0.2, budget: '64M' });
  assert.equal(r.status, 7, `the workload's checks after the restart: ${describe(r)}`);
  assertDiskMatches(root, expected(out), 'after one kill');
  sc.done();
});

// Files made (in memory and evicted), one kept open; the daemon is killed and no new one can
// start; the open fd is written through afterwards; the command exits 5.
const NO_RESTART = `
import hashlib, os, signal, sys, time
root, out = sys.argv[1], sys.argv[2]
want = {}
for i in range(12):
    body = hashlib.sha256(b'%d' % i).digest() * (2000 + i * 97)
    with open(os.path.join(root, 'f%d' % i), 'wb') as f:
        f.write(body)
    want['f%d' % i] = body
held = os.open(os.path.join(root, 'f11'), os.O_RDWR)
from keeperproc import daemons, expect  # test/fs/py, on PYTHONPATH
kids = daemons()
os.kill(int(kids[0]), signal.SIGKILL)
time.sleep(1.5)
os.pwrite(held, b'AFTER THE KILL', 100)
b = bytearray(want['f11']); b[100:114] = b'AFTER THE KILL'; want['f11'] = bytes(b)
expect(out, want)
sys.exit(5)
`;

test('when no new daemon can start, the keeper writes every in-memory file to disk and keeps the command\'s status', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-fallback');
  const { r, root, out, log: logText } = await runInRoot(sc, (root, out) => [PYTHON, '-c', NO_RESTART, root, out], {
    limit: ['--budget', '256K'], env: workloadEnv({ EPHEMERA_EPHEMERAD: onceOnly(sc) }),
  });
  const err = r.stderr.toString();
  assert.equal(r.status, 5, `the run must exit with the command's status (5): ${describe(r)}`);
  assert.match(err, /ephemerad died \(SIGKILL\); restarting it and taking over \d+ files \(\d+ in memory\)/);
  assert.match(err, /the new ephemerad did not start: ephemerad exited before it was ready \(status 2\)/);
  assert.match(err, /the keeper holds the \d+ files in memory and writes them to disk when the command ends/);
  assert.match(err, /the keeper wrote all \d+ in-memory files to disk/);
  assert.match(logText, /evicted inode/, 'some files were on disk already (evicted under the budget)');
  assert.match(logText, /ephemera-run\[\d+\] info: the keeper wrote all \d+ in-memory files to disk/);
  assertDiskMatches(root, expected(out), 'written back by the keeper');
  sc.done();
});

// A process started while the new daemon is still starting (a wrapper makes the restart take 1 s)
// waits for it instead of running without the shim: its new file is in memory.
const LATE_START = `
import os, signal, subprocess, sys, time
root = sys.argv[1]
with open(os.path.join(root, 'before'), 'w') as f:
    f.write('before')
from keeperproc import daemons  # test/fs/py, on PYTHONPATH
kids = daemons()
os.kill(int(kids[0]), signal.SIGKILL)
time.sleep(0.3)
child = 'import os; f = open(os.path.join(%r, "late"), "w"); f.write("late"); f.close(); print(os.stat(os.path.join(%r, "late")).st_ino >= 1 << 44, open(os.path.join(%r, "before")).read())' % (root, root, root)
out = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout
print(out.strip())
sys.exit(0 if out.strip() == 'True before' else 3)
`;

test('a process started while the new daemon starts waits for it and is served from memory', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-late');
  const root = sc.sub('root');
  const slow = slowRestart(sc);
  const r = await run(EPHEMERA, ['run', '--root', root, '--', PYTHON, '-c', LATE_START, root], {
    env: workloadEnv({ EPHEMERA_EPHEMERAD: slow }), cwd: sc.dir, timeoutMs: 50_000,
  });
  assert.equal(r.status, 0, `the late process must see the old file and make its new one in memory: ${describe(r)}`);
  assert.equal(readFileSync(join(root, 'late'), 'utf8'), 'late');
  assert.equal(readFileSync(join(root, 'before'), 'utf8'), 'before');
  sc.done();
});

// The pool lends its memfds without fds (EPH_POOL_NOFDS, issue 15): a process's file is an open of
// /proc/<daemon>/fd/N, and the slots it was lent name the daemon's fd numbers.  Files made that way
// before a kill must read back after it, and the slots lent by the dead daemon must still make
// files in memory through the new one: the open of /proc/<dead>/fd/N fails with ENOENT, and the
// shim waits for the daemon that took the region over and opens its fd N (the keeper's copy).  A
// shim that gave up on the /proc way would ask for batches with fds, which land at fd 640 and above.
const NOFDS = `
import os, signal, subprocess, sys, time
from keeperproc import Files, daemons, restarted  # test/fs/py, on PYTHONPATH
root, out = sys.argv[1], sys.argv[2]
files = Files(root, 300, 40)  # 10-20 KiB: no private fd
def pooled_fds():
    # Listed by a program without the shim: the shim hides its own fds from this process's view.
    ls = subprocess.run(['env', '-u', 'LD_PRELOAD', 'ls', '-l', '/proc/%d/fd' % os.getpid()],
                        capture_output=True, text=True, timeout=10).stdout
    return sum(1 for line in ls.splitlines()
               if line.endswith('/memfd:ephemera (deleted)') and int(line.split(' -> ')[0].split()[-1]) >= 640)
for i in range(3):
    files.make('before-%d' % i)
if pooled_fds():
    files.bad.append('before the kill: %d pool fds at 640 and above: the pool did not lend without fds' % pooled_fds())
old = daemons()[0]
os.kill(old, signal.SIGKILL)
time.sleep(0.2)              # dead, and the new daemon not up yet (its start takes 1 s here)
files.make('racing-0')
files.check('before-0')
restarted(old)
for i in range(1, 3):
    files.make('racing-%d' % i)
for i in range(3):
    files.check('before-%d' % i)
    files.check('racing-%d' % i)
if pooled_fds():
    files.bad.append('after the kill: %d pool fds at 640 and above: the shim gave the /proc way up' % pooled_fds())
files.finish(out)
`;

test('files made from a pool lent without fds survive a kill, and its slots make files through the new daemon', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-nofds');
  // The new daemon starts 1 s late, so the first create after the kill meets the dead daemon's fds.
  const { r, root, out, log: logText } = await runInRoot(sc, (root, out) => [PYTHON, '-c', NOFDS, root, out], {
    env: workloadEnv({ EPHEMERA_EPHEMERAD: slowRestart(sc) }),
  });
  assert.equal(r.status, 6, `every file in memory and readable across the kill, the pool still without fds: ${describe(r)}`);
  assert.match(logText, /takeover of the region of pid \d+: .* 0 lost/, `a takeover, nothing lost:\n${logText.slice(-3000)}`);
  assertDiskMatches(root, expected(out), 'after the kill');
  sc.done();
});

// A process registers its fd table (its ledger) without waiting for the daemon's answer (branch
// gccstart): the daemon gives back what the table lists when the process dies.  A daemon killed
// with that registration still unread in its socket loses it, and the keeper never got it, so the
// daemon that takes over would not know the process: killed later, it would leave its references
// held and its unlinked file in memory.  The shim sends its table again before its next reference
// under the new daemon.  Here the victim opens a file while the daemon is stopped (the registration
// queued), the daemon is killed, the victim opens it again through the new one and is SIGKILLed:
// the new daemon must give both references back (the log says so, and names no file still held).
const REREGISTER = `
import os, signal, subprocess, sys, time
from keeperproc import daemons, restarted  # test/fs/py, on PYTHONPATH
root = sys.argv[1]
p = os.path.join(root, 'held')
with open(p, 'wb') as f:
    f.write(b'q' * 5000)
old = daemons()[0]
os.kill(old, signal.SIGSTOP)
victim = ('import os, sys\\n'
          'fd = os.open(%r, os.O_RDONLY)\\n'
          'print("open", os.pread(fd, 1, 0).decode(), flush=True)\\n'
          'sys.stdin.readline()\\n'
          'fd2 = os.open(%r, os.O_RDONLY)\\n'
          'print("again", os.pread(fd2, 1, 0).decode(), flush=True)\\n'
          'sys.stdin.readline()\\n') % (p, p)
v = subprocess.Popen([sys.executable, '-c', victim], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
first = v.stdout.readline().strip()    # its first reference, with the daemon stopped
os.kill(old, signal.SIGKILL)           # the registration dies unread with it
restarted(old)
v.stdin.write('go\\n'); v.stdin.flush()
second = v.stdout.readline().strip()   # a reference under the new daemon
v.kill(); v.wait()
os.unlink(p)
print(first, '|', second, '| victim', v.pid)
sys.exit(0 if (first, second) == ('open q', 'again q') else 3)
`;

test('a table registered with a daemon killed before it read it is registered again with the new one', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-reregister');
  const { r, log: logText } = await runInRoot(sc, (root) => [PYTHON, '-c', REREGISTER, root]);
  assert.equal(r.status, 0, `the victim opened the file with the daemon stopped and again after the restart: ${describe(r)}`);
  const victim = /\| victim (\d+)/.exec(r.stdout.toString())?.[1];
  assert.ok(victim, `the workload names its victim: ${describe(r)}`);
  assert.match(logText, /takeover of the region of pid \d+: .* 0 lost/, `a takeover, nothing lost:\n${logText.slice(-3000)}`);
  assert.match(logText, new RegExp(`ephemera\\[${victim}\\]: ephemerad \\d+ took over: registering our fd table with it`),
    `the victim registered its table again with the new daemon:\n${logText.slice(-3000)}`);
  assert.match(logText, new RegExp(`pid ${victim} ended holding 2 open file references; dropped them`),
    `the new daemon gave the killed victim's two references back:\n${logText.slice(-3000)}`);
  assert.doesNotMatch(logText, /at shutdown: unlinked inode \d+ .* still has open_count/, 'no unlinked file is still held at the end');
  sc.done();
});

// A tree made and filled in memory (issue 15: files inside directories that live only in the
// region, no disk twin until something needs one): nested directories, files at each depth, a hard
// link inside, some files evicted by a small budget (their directories get their twins then), the
// rest still in memory under directories that are not on disk.  The daemon is killed; with restart
// (the new daemon takes the region over, then the exit write-back) or without (the keeper writes
// the files back, making the in-memory directories first), every file lands at its path.
const TREE = `
import hashlib, os, signal, sys, time
from keeperproc import daemons, expect  # test/fs/py, on PYTHONPATH
root, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
want = {}
def put(rel, n):
    body = hashlib.sha256(rel.encode()).digest() * n
    os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
    with open(os.path.join(root, rel), 'wb') as f:
        f.write(body)
    want[rel] = body
for i in range(6):
    put('t/a%d/b/c/deep%d' % (i % 3, i), 1500 + i * 700)
    put('t/a%d/top%d' % (i % 3, i), 300)
for i in range(4):
    put('m/x/y/small%d' % i, 3)  # newest and small: still in memory, under directories only in memory
if mode == 'restart':
    os.link(os.path.join(root, 't/a0/b/c/deep0'), os.path.join(root, 't/a0/b/c/deep0.link'))
    want['t/a0/b/c/deep0.link'] = want['t/a0/b/c/deep0']
kids = daemons()
os.kill(int(kids[0]), signal.SIGKILL)
time.sleep(1.5)
if mode == 'restart':
    put('t/a1/b/c/after', 900)  # through the new daemon, in a directory made in memory before the kill
    for rel, body in want.items():
        with open(os.path.join(root, rel), 'rb') as f:
            if f.read() != body:
                sys.exit(4)
expect(out, want)
sys.exit(6)
`;

/** Every file under dir, by its path relative to dir: { rel: sha256 }. */
function treeOf(dir, pre = '') {
  const all = {};
  for (const e of readdirSync(join(dir, pre), { withFileTypes: true })) {
    const rel = pre ? `${pre}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(all, treeOf(dir, rel));
    else all[rel] = sha(readFileSync(join(dir, rel)));
  }
  return all;
}

for (const mode of ['restart', 'no-restart']) {
  test(`a tree made and filled in memory survives a killed daemon (${mode}): every file at its path, every byte`, { timeout: 60_000 }, async () => {
    requireBuilt(EPHEMERA, SHIM, DAEMON);
    const sc = scratch(`keeper-tree-${mode}`);
    const env = workloadEnv({ EPHEMERA_MEMDIR_FILES: '1' }); // files inside directories in memory (the default, said here since the test is about them)
    if (mode === 'no-restart') env.EPHEMERA_EPHEMERAD = onceOnly(sc);
    const { r, root, out, log: logText } = await runInRoot(sc, (root, out) => [PYTHON, '-c', TREE, root, out, mode], {
      limit: ['--budget', '200K'], env,
    });
    assert.equal(r.status, 6, `the run must exit with the command's status (6): ${describe(r)}`);
    assert.match(logText, /evicted inode \d+ \S+\/t\/a\d\/b\/c\/deep\d/, 'a file deep in the in-memory tree was evicted under the budget');
    if (mode === 'no-restart') assert.match(r.stderr.toString(), /the keeper wrote all \d+ in-memory files to disk/);
    const want = JSON.parse(readFileSync(join(out, 'expect.json'), 'utf8'));
    assert.deepEqual(treeOf(root), want, 'the tree on disk differs from what the program wrote');
    if (mode === 'restart') {
      const a = statSync(join(root, 't/a0/b/c/deep0')), b = statSync(join(root, 't/a0/b/c/deep0.link'));
      assert.ok(a.ino === b.ino && a.nlink === 2, 'the link is a second name of one file on disk');
    }
    sc.done();
  });
}

// A shim makes a file from a slot the daemon lent it by one record under the namespace lock, whose
// stores clear the slot's lent_to before they set its state to MEM (shim/nsfast.c).  A daemon that
// takes the region over while such a record is half applied must not take the slot for a free one
// nor close its memfd as one that nothing names: that lost the file (the takeover flake of the case
// above).  The fault build of the shim stops the create there ("last": every store of the record
// but the state's) while the daemon is killed; the new one waits out the stopped holder of the lock
// (5 s) and takes over without it; then the create goes on.
const HALF_CREATE = `
import ctypes, os, signal, sys, time
from keeperproc import Files, daemons  # test/fs/py, on PYTHONPATH
root, out, faults, log = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
files = Files(root, 500, 40)
def until(cond, what, seconds):
    end = time.time() + seconds
    while not cond():
        if time.time() > end:
            print(what, flush=True)
            sys.exit(3)
        time.sleep(0.02)
def stopped(pid):
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()[0] in 'tT'
for i in range(3):
    files.make('before-%d' % i)
old = daemons()[0]
victim_code = 'import sys; f = open(sys.argv[1], "wb"); f.write(bytes.fromhex(sys.argv[2])); f.close()'
env = dict(os.environ, LD_PRELOAD=faults, EPHEMERA_LIB=faults, EPHEMERA_NS_STALL='last')
# Our shim's execve would put its own library first in LD_PRELOAD: the raw system call does not.
# glibc's own syscall(), from libc's handle: the global one is the shim's, which sends SYS_execve
# through its execve wrapper (branch symlinkout).
argv = [sys.executable, '-c', victim_code, os.path.join(root, 'victim'), files.body('victim').hex()]
c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
c_env = (ctypes.c_char_p * (len(env) + 1))(*[('%s=%s' % kv).encode() for kv in env.items()], None)
victim_pid = os.fork()
if victim_pid == 0:
    libc = ctypes.CDLL('libc.so.6', use_errno=True)
    libc.syscall(59, argv[0].encode(), c_argv, c_env)  # SYS_execve
    os._exit(127)
until(lambda: stopped(victim_pid), 'the create did not stop inside its record', 20)
os.kill(old, signal.SIGKILL)
until(lambda: 'took the region over' in open(log).read(), 'no takeover within 30 s', 30)
os.kill(victim_pid, signal.SIGCONT)
ended = []
until(lambda: ended or ended.extend(p for p in [os.waitpid(victim_pid, os.WNOHANG)] if p[0] == victim_pid), 'the create did not end within 30 s', 30)
if ended[0][1] != 0:
    files.bad.append('the create ended with wait status %d' % ended[0][1])
files.want['victim'] = files.body('victim')
for i in range(3):
    files.make('after-%d' % i)
for name in sorted(files.want):
    files.check(name)
files.finish(out)
`;

test('a takeover while a shim\'s create is half applied keeps that file\'s slot and memfd', { timeout: 90_000 }, async () => {
  const FAULTS = join(TEST_BIN, 'libephemera-faults.so');
  requireBuilt(EPHEMERA, SHIM, DAEMON, FAULTS);
  const sc = scratch('keeper-halfcreate');
  const { r, root, out, log: logText } = await runInRoot(sc, (root, out, log) => [PYTHON, '-c', HALF_CREATE, root, out, FAULTS, log], {
    timeoutMs: 80_000,
  });
  assert.equal(r.status, 6, `the file made across the takeover, and every other, read back whole: ${describe(r)}\n${logText.slice(-3000)}`);
  assert.match(logText, /takeover of the region of pid \d+: .* 0 lost/, `a takeover, nothing lost:\n${logText.slice(-3000)}`);
  assert.doesNotMatch(logText, /reply failed/, 'every answer reached its shim');
  assert.match(logText, /shutdown: wrote \d+ in-memory files back to disk, 0 could not be written/);
  assertDiskMatches(root, expected(out), 'after the takeover');
  sc.done();
});

// Files unlinked by shims while no daemon runs are freed by the new one during its takeover (the
// collection of ns_check), and their memfds go to its stock for the next files.  The takeover must
// not then close them as copies nothing names: the next CREATE was answered with a closed fd
// (`reply failed (Bad file descriptor)`) and the file made from it lost (the takeover flake of the
// three-kill case).  A hundred small files keep the stock above its low mark, so the first files
// after the restart are made from those memfds; some are anonymous (O_TMPFILE, a CREATE in the
// daemon), the rest named (the pool).
const FREED_IN_TAKEOVER = `
import os, signal, sys, time
from keeperproc import Files, daemons, restarted  # test/fs/py, on PYTHONPATH
root, out = sys.argv[1], sys.argv[2]
files = Files(root, 100, 10, in_memory=False)
for i in range(100):
    files.make('gone-%d' % i)
files.make('kept')
old = daemons()[0]
os.kill(old, signal.SIGKILL)
time.sleep(0.2)  # dead, and the new daemon not up yet (its start takes 1 s here)
for i in range(100):
    os.unlink(os.path.join(root, 'gone-%d' % i))
    del files.want['gone-%d' % i]
restarted(old)
for i in range(40):
    try:
        fd = os.open(root, os.O_TMPFILE | os.O_RDWR, 0o600)
        b = files.body('anon-%d' % i)
        os.write(fd, b)
        if os.pread(fd, len(b) + 1, 0) != b:
            files.bad.append('anon-%d: wrong bytes' % i)
        os.close(fd)
    except OSError as e:
        files.bad.append('anon-%d: %s' % (i, e))
for i in range(60):
    try:
        files.make('after-%d' % i)
    except OSError as e:
        files.bad.append('after-%d: %s' % (i, e))
for name in sorted(files.want):
    files.check(name)
files.finish(out, shown=10)
`;

test('files freed during a takeover give the new daemon memfds it keeps for the next files', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-freed');
  const { r, root, out, log: logText } = await runInRoot(sc, (root, out) => [PYTHON, '-c', FREED_IN_TAKEOVER, root, out], {
    env: workloadEnv({ EPHEMERA_EPHEMERAD: slowRestart(sc) }),
  });
  assert.equal(r.status, 6, `every file made after the takeover read back whole: ${describe(r)}\n${logText.slice(-3000)}`);
  assert.match(logText, /takeover of the region of pid \d+: .* 0 lost/, `a takeover, nothing lost:\n${logText.slice(-3000)}`);
  assert.doesNotMatch(logText, /reply failed/, 'every answer reached its shim');
  assertDiskMatches(root, expected(out), 'after the takeover');
  sc.done();
});

// Fds of directories in memory (shim/nsdirfd.c) are stand-ins: kernel fds of a removed directory,
// with the directory they stand for kept by slot in the process.  They hold nothing of the daemon,
// so a takeover must not change them: opened before a kill, they list, stat, create and remove
// through the new daemon, the fallback (fchmod: the twin, asked of the new daemon) works, and
// every file made through them is at its path at the end.
const DIR_FDS = `
import os, shutil, signal, stat, sys, time
root = sys.argv[1]
bad = []
d = os.path.join(root, 'd')
os.mkdir(d)
os.mkdir(os.path.join(d, 'sub'))
with open(os.path.join(d, 'before'), 'w') as f:
    f.write('before')
os.mkdir(os.path.join(root, 'tree'))
with open(os.path.join(root, 'tree', 'leaf'), 'w') as f:
    f.write('leaf')
fd = os.open(d, os.O_RDONLY)
ino = os.fstat(fd).st_ino
if ino != os.lstat(d).st_ino:
    bad.append('before the kill: fstat and lstat differ')
from keeperproc import daemons  # test/fs/py, on PYTHONPATH
old = daemons()[0]
os.kill(old, signal.SIGKILL)
end = time.time() + 20
while time.time() < end and not [p for p in daemons() if p != old]:
    time.sleep(0.01)
time.sleep(0.1)
if os.fstat(fd).st_ino != ino or os.lstat(d).st_ino != ino:
    bad.append('after the kill: the directory changed identity')
names = sorted(os.listdir(fd))
if names != ['before', 'sub']:
    bad.append('after the kill: listing %r' % names)
w = os.open('after', os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
os.write(w, b'after')
os.close(w)
os.mkdir('made', dir_fd=fd)
os.rmdir('sub', dir_fd=fd)
shutil.rmtree(os.path.join(root, 'tree'))
if os.path.exists(os.path.join(root, 'tree')):
    bad.append('rmtree left the tree')
names = sorted(os.listdir(fd))
if names != ['after', 'before', 'made']:
    bad.append('after the changes: listing %r' % names)
os.chmod(fd, 0o750)  # fchmod: the twin, from the new daemon, and the kernel's call
if stat.S_IMODE(os.stat(d).st_mode) != 0o750:
    bad.append('fchmod: mode %o' % stat.S_IMODE(os.stat(d).st_mode))
if os.fstat(fd).st_ino != ino:
    bad.append('after the twin: fstat shows another directory')
print('\\n'.join(bad))
sys.exit(3 if bad else 6)
`;

test('fds of directories in memory opened before a takeover keep working through the new daemon', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('keeper-dirfds');
  const root = sc.sub('root');
  const r = await run(EPHEMERA, ['run', '--root', root, '--', PYTHON, '-c', DIR_FDS, root], { env: workloadEnv(), cwd: sc.dir, timeoutMs: 50_000 });
  assert.equal(r.status, 6, `the stand-in fd's checks after the restart: ${describe(r)}`);
  assert.deepEqual(readdirSync(join(root, 'd')).sort(), ['after', 'before', 'made']);
  assert.equal(readFileSync(join(root, 'd', 'after'), 'utf8'), 'after');
  assert.equal(readFileSync(join(root, 'd', 'before'), 'utf8'), 'before');
  assert.equal(statSync(join(root, 'd')).mode & 0o7777, 0o750);
  assert.ok(!existsSync(join(root, 'tree')));
  sc.done();
});
