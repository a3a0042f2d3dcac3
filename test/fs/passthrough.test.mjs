// Paths outside the roots pass straight through: the shim must not add system calls to them.  A
// bug in root parsing (544f223: a root of length 0, so every absolute path counted as managed) kept
// every result right but sent each unmanaged open and stat through the namespace miss path, which
// asks the kernel to resolve the parent (3.5x the system calls, +246% on open+fstat+close).  strace
// counts the calls of the same loop with and without the shim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, cleanEnv, describe, ephemeraRun, run, scratch } from './lib/harness.mjs';

const LOOP = `
import os, sys
p = sys.argv[1]
for i in range(2000):
    os.stat(p)
    os.close(os.open(p, os.O_RDONLY))
    os.path.exists(p + '.missing')
`;

function countCalls(file) {
  // strace -c's table: "% time seconds usecs/call calls errors syscall"; the total line has no name.
  const total = readFileSync(file, 'utf8').split('\n').find((l) => /\stotal$/.test(l));
  assert.ok(total, `no total line in ${file}`);
  return Number(total.trim().split(/\s+/)[3]);
}

/**
 * The calls `strace -c -e trace=CALLS` counts in `python3 -c script arg ...more`, run without the shim and
 * under `ephemera run` with a root in sc: { plain, shim }.
 */
async function countBoth(sc, calls, script, arg, more = []) {
  const trace = ['-f', '-c', '-e', `trace=${calls}`];
  const plainOut = join(sc.dir, 'plain.txt');
  const plain = await run('strace', [...trace, '-o', plainOut, PYTHON, '-c', script, arg, ...more], { env: cleanEnv() });
  assert.equal(plain.status, 0, describe(plain));
  const shimOut = join(sc.dir, 'shim.txt');
  const shim = await ephemeraRun({ root: sc.sub('root'), cmd: 'strace', args: [...trace, '-o', shimOut, PYTHON, '-c', script, arg, ...more], statsDir: sc.dir });
  assert.equal(shim.status, 0, describe(shim));
  return { plain: countCalls(plainOut), shim: countCalls(shimOut), stats: shim.stats };
}

test('an unmanaged path costs no extra system call under the shim', async () => {
  const sc = scratch('passthrough');
  const target = join(sc.sub('outside'), 'file');
  await run('sh', ['-c', `echo data > "${target}"`]);
  const { plain: a, shim: b } = await countBoth(sc, 'openat,newfstatat,statx,readlink,getcwd', LOOP, target);
  // 6000 operations; the shim's own start-up (library lookups, the daemon handshake) is a few dozen.
  assert.ok(b - a < 200, `under the shim ${b} path system calls, without it ${a}: unmanaged paths are being resolved by the shim`);
  sc.done();
});

// realpath(3) of a name glibc cannot find is asked again by the shim (an in-memory file is a name
// the kernel has never heard of), but only when the prefix glibc could not find lies under a root:
// cpp canonicalises every include directory of its search path, most of which do not exist, and the
// second walk of each cost gcc ~200 readlink calls per compile.
const REALPATH_LOOP = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.realpath.restype = ctypes.c_void_p
buf = ctypes.create_string_buffer(4096)
for i in range(500):
    assert libc.realpath(sys.argv[1].encode(), buf) is None
`;

test('realpath of a missing name outside the roots walks it once', async () => {
  const sc = scratch('passthrough-realpath');
  const missing = join(sc.sub('outside'), 'a', 'b', 'missing');
  const { plain: a, shim: b } = await countBoth(sc, 'readlink', REALPATH_LOOP, missing);
  // glibc's walk: a readlink per component up to the missing one, 500 times; the shim's start-up
  // reads a few /proc/self/fd links.  A second walk would add ~2500.
  assert.ok(b - a < 100, `under the shim ${b} readlink calls, without it ${a}: realpath walks a missing name outside the roots twice`);
  sc.done();
});

// A record lock on an in-memory file is the kernel's one fcntl, as on any other file: SQLite locks
// and unlocks on every transaction.  2000 rounds of lock, unlock and a query (lockf and F_GETLK by
// SEEK_SET, what SQLite calls) in a root, counted against the same loop without the shim.
const LOCK_LOOP = `
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'x' * 100)
q = struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0)
for i in range(2000):
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    fcntl.fcntl(fd, fcntl.F_GETLK, q)
os.unlink(sys.argv[1])
`;

/**
 * Count `calls` in a loop of `n` lock calls on an in-memory file (`loop`, given its path), under the
 * shim and without it: the shim's own start-up makes a few dozen of these (python's imports are the
 * rest of both counts), a lock call that makes more than the kernel's one adds thousands.
 */
async function assertLockLoopCost(name, calls, loop, n, what) {
  const sc = scratch(name);
  const target = join(sc.sub('root'), 'locked');
  const { plain: a, shim: b, stats } = await countBoth(sc, calls, loop, target);
  assert.ok(stats && stats.fast_writes >= 1, `the file was not in memory: ${JSON.stringify(stats)}`);
  assert.ok(a >= n, `without the shim only ${a} calls counted: the loop did not run`);
  assert.ok(b - a < 500, `under the shim ${b} calls for ${n} lock calls, without it ${a}: ${what} makes more than the kernel's one`);
  sc.done();
}

test('a lock on an in-memory file costs the kernel its one fcntl and nothing else', { timeout: 60_000 }, async () => {
  // What a lock path could add: another fcntl, a kcmp (an fd's own description), a look at the file.
  await assertLockLoopCost('passthrough-lock', 'fcntl,kcmp,lseek,fstat,newfstatat,getpid', LOCK_LOOP, 6000, 'a lock call');
});

// An OFD lock or a flock on an in-memory file is the kernel's one call too, once the fd's description
// is known to be its own: the first lock gives it one (a kcmp against each other fd of the file and a
// move of whatever shares it), the rest are the kernel's call alone.  Before, every OFD lock and flock
// made a getpid and a kcmp per other fd of the file (4 per round here).  The file is opened twice (a
// reopen is a dup of the shim's private fd, so the second open shares its first description) and is
// large enough to be mapped.
const OFD_LOOP = `
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'x' * 100000)
other = os.open(sys.argv[1], os.O_RDWR)
lk = struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0)
un = struct.pack('hhqqi4x', fcntl.F_UNLCK, 0, 0, 0, 0)
for i in range(2000):
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lk)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, un)
    fcntl.fcntl(other, fcntl.F_OFD_GETLK, lk)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(fd, fcntl.LOCK_UN)
os.unlink(sys.argv[1])
`;

test('an OFD lock or flock on an in-memory file costs the kernel its one call after the first', { timeout: 60_000 }, async () => {
  await assertLockLoopCost('passthrough-ofdlock', 'fcntl,flock,kcmp,getpid,openat,dup3,close,lseek,fstat,newfstatat', OFD_LOOP, 10000, 'an OFD lock or flock');
});

// A remove or move outside the roots may name a directory under one through a symlink outside them
// (paths.c, path_alias): while anything is in memory the shim asks the kernel where the name's
// directory is.  With nothing in memory it must not: a process that has not attached asks for its
// first few only, then attaches once and reads the region's counters.  2000 renames and 1000 rmdirs
// outside the roots; a look per call would add 6000 openat2 and close calls.
const MOVE_LOOP = `
import os, sys
p = sys.argv[1]
for i in range(1000):
    os.mkdir(p + '/d')
    os.rename(p + '/d', p + '/e')
    os.rename(p + '/e', p + '/f')
    os.rmdir(p + '/f')
`;

test('a rename or rmdir outside the roots costs no extra system call while nothing is in memory', { timeout: 60_000 }, async () => {
  const sc = scratch('passthrough-moves');
  const { plain: a, shim: b } = await countBoth(sc, 'openat2,openat,readlink,close,rename,renameat,renameat2,rmdir,unlinkat', MOVE_LOOP, sc.sub('outside'));
  assert.ok(a >= 3000, `without the shim only ${a} calls counted: the loop did not run`);
  assert.ok(b - a < 300, `under the shim ${b} calls, without it ${a}: removes and moves outside the roots are being resolved by the shim`);
  sc.done();
});

// The lookups and creates outside the roots ask too (paths.c, path_alias: a root reached through a
// symlink outside every root): a lookup after the kernel's ENOENT, a create or mkdir before its
// call, a listing after its opendir.  With nothing in memory none of them may ask: 1000 rounds of
// a stat, an access and an open of a missing name, a create, a mkdir and a listing outside the
// roots.  With a file in memory (written in the root first; in the run without the shim, beside
// the others) each directory is asked about once and then kept (dircache.c): one openat2 and a
// close for the loop's directory (again after each second), one readlink for the listing of each new
// directory (1000); a look per call would add 12000 openat2 and close calls.
const LOOKUP_LOOP = `
import os, sys
p = sys.argv[1] + '/' + str(os.getpid())
os.mkdir(p)
root = os.environ.get('EPHEMERA_ROOTS', p)
if 'mem' in sys.argv[2:]:
    with open(root + '/inmem', 'w') as f:
        f.write('in memory')
for i in range(1000):
    os.path.exists(p + '/missing')
    os.access(p + '/missing', os.F_OK)
    try:
        os.close(os.open(p + '/missing', os.O_RDONLY))
    except FileNotFoundError:
        pass
    os.close(os.open(p + '/f', os.O_CREAT | os.O_WRONLY, 0o644))
    os.mkdir(p + '/d%d' % i)
    os.listdir(p + '/d%d' % i)
`;

for (const mem of [false, true]) {
  test(`lookups, creates, mkdirs and listings outside the roots ${mem ? 'ask once per directory with a file in memory' : 'ask nothing while nothing is in memory'}`, { timeout: 60_000 }, async () => {
    const sc = scratch(mem ? 'passthrough-lookups-mem' : 'passthrough-lookups');
    const calls = 'openat2,openat,readlink,close,newfstatat,statx,access,faccessat,faccessat2,mkdir,mkdirat,getdents64';
    const { plain: a, shim: b, stats } = await countBoth(sc, calls, LOOKUP_LOOP, sc.sub('outside'), mem ? ['mem'] : []);
    assert.ok(a >= 6000, `without the shim only ${a} calls counted: the loop did not run`);
    if (mem) assert.ok(stats && stats.files_created >= 1, `the file was not in memory: ${JSON.stringify(stats)}`);
    assert.ok(b - a < (mem ? 1400 : 300), `under the shim ${b} calls, without it ${a}: lookups and creates outside the roots are being resolved by the shim`);
    sc.done();
  });
}
