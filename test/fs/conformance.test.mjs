// Conformance gaps of issue 9, item 4, each against tmpfs as the oracle: the same program runs in a
// tmpfs directory and in a managed root, and must print the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, sameOnTmpfsAndShim } from './lib/harness.mjs';

const py = (script) => ({ cmd: PYTHON, argv: (dir) => ['-c', script, dir] });

// The scripts' test directory d, made reachable and writable by the other users, as on tmpfs: its
// parent gets o+x only when it lacks it (never loosen /dev/shm's 1777), then the script works in d.
const OPEN_TO_USERS = String.raw`p = os.path.dirname(d); m = os.stat(p).st_mode
if not m & 0o001: os.chmod(p, (m & 0o7777) | 0o011)
os.chmod(d, 0o777)
os.chdir(d)`;

// A Python function the scripts below share: fn() run in a child as uid (and gid uid, no groups);
// 'ok' or the errno's name (with show, what fn returned).
const AS_USER = String.raw`def as_user(uid, fn, show=False):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
        try:
            got = fn(); out = got if show else 'ok'
        except OSError as e:
            out = errno.errorcode[e.errno]
        os.write(w, out.encode()); os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    out = os.read(r, 1000).decode(); os.close(r)
    return out`;

// statvfs/fstatvfs on an in-memory file answer (tmpfs answers for its mount; the shim for the
// file system of the file's directory, where it goes when memory is short): the figures are a
// file system's, and the errors of a bad path are the kernel's.
const STATVFS = String.raw`
import errno, os, sys
d = sys.argv[1]
p = os.path.join(d, 'f')
with open(p, 'wb') as f:
    f.write(b'x' * 10000)
with open(p, 'rb') as f:
    print('read', len(f.read()))
def sane(v):
    return (v.f_bsize > 0 and v.f_frsize > 0 and v.f_blocks > 0 and 0 <= v.f_bavail <= v.f_bfree <= v.f_blocks
            and v.f_ffree <= v.f_files and v.f_namemax == 255)
print('statvfs', sane(os.statvfs(p)))
fd = os.open(p, os.O_RDONLY)
print('fstatvfs', sane(os.fstatvfs(fd)))
os.close(fd)
for q in (p + '/', os.path.join(d, 'missing'), p + '/x'):
    try:
        os.statvfs(q)
        print(q[len(d):], 'ok')
    except OSError as e:
        print(q[len(d):], errno.errorcode[e.errno])
`;

test('statvfs and fstatvfs of an in-memory file answer as on tmpfs', { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'statvfs', '', py(STATVFS));
});

// readdir's d_ino is the st_ino that stat shows, also for a file this process has open while it
// moves to disk (stat keeps showing its in-memory identity then).  Under a 64 KiB budget, a file
// left idle for more than the daemon's busy window (1 s) is evicted to make room for another.
const DINO = String.raw`
import os, sys, time
d = sys.argv[1]
f = open(os.path.join(d, 'a'), 'wb'); f.write(b'x' * 40000); f.flush()
time.sleep(1.5)
g = open(os.path.join(d, 'b'), 'wb'); g.write(b'y' * 40000); g.flush()
os.mkdir(os.path.join(d, 'sub'))
with open(os.path.join(d, 'b'), 'rb') as r:
    print('read', len(r.read()))
for e in sorted(os.scandir(d), key=lambda e: e.name):
    print(e.name, e.inode() == os.stat(e.path, follow_symlinks=False).st_ino)
print('fd', os.fstat(f.fileno()).st_ino == os.stat(os.path.join(d, 'a')).st_ino)
`;

test("readdir's d_ino equals st_ino, also for an open file that moved to disk", { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'dino', '', { ...py(DINO), budget: 65536 });
});

// Which times each call changes, on the file and on its directory: truncate and ftruncate (to a new
// size and to the same size), link, rename (within a directory and across), as tmpfs does.
const TIMES = String.raw`
import os, sys, time
d = sys.argv[1]
os.mkdir(os.path.join(d, 'sub'))
def put(n, data=b'abc'):
    with open(os.path.join(d, n), 'wb') as f:
        f.write(data)
def times(p):
    s = os.stat(p, follow_symlinks=False)
    return (s.st_mtime_ns, s.st_ctime_ns)
def step(what, fn, paths):
    # 'a>b': the file was a before the call and is b after it
    src = lambda p: p.split('>')[0]
    dst = lambda p: p.split('>')[-1]
    before = {p: times(os.path.join(d, src(p))) for p in paths}
    time.sleep(0.02)
    fn()
    after = {}
    for p in paths:
        q = os.path.join(d, dst(p))
        after[p] = times(q) if os.path.lexists(q) else None
    for p in paths:
        b, a = before[p], after[p]
        if a is None:
            print(what, p, 'gone')
        else:
            print(what, p, 'mtime', 'changed' if a[0] != b[0] else 'same', 'ctime', 'changed' if a[1] != b[1] else 'same')
put('t'); step('truncate-grow', lambda: os.truncate(os.path.join(d, 't'), 100), ['t', '.'])
step('truncate-same', lambda: os.truncate(os.path.join(d, 't'), 100), ['t', '.'])
fd = os.open(os.path.join(d, 't'), os.O_RDWR)
step('ftruncate-shrink', lambda: os.ftruncate(fd, 10), ['t', '.'])
step('ftruncate-same', lambda: os.ftruncate(fd, 10), ['t', '.'])
os.close(fd)
put('l'); step('link', lambda: os.link(os.path.join(d, 'l'), os.path.join(d, 'l2')), ['l', '.'])
print('link-nlink', os.stat(os.path.join(d, 'l')).st_nlink, os.stat(os.path.join(d, 'l')).st_ino == os.stat(os.path.join(d, 'l2')).st_ino)
put('r'); step('rename', lambda: os.rename(os.path.join(d, 'r'), os.path.join(d, 'r2')), ['r>r2', '.'])
print('rename-target', 'exists' if os.path.exists(os.path.join(d, 'r2')) else 'missing')
put('m'); step('rename-across', lambda: os.rename(os.path.join(d, 'm'), os.path.join(d, 'sub', 'm')), ['m>sub/m', '.', 'sub'])
put('o1', b'one'); put('o2', b'two')
step('rename-over', lambda: os.rename(os.path.join(d, 'o1'), os.path.join(d, 'o2')), ['o1>o2', '.'])
with open(os.path.join(d, 'o2'), 'rb') as f:
    print('read', f.read())
`;

test('truncate, ftruncate, link and rename change the times that tmpfs changes', { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'times', '', py(TIMES));
});

// Set-id bits: a write, truncate, ftruncate or O_TRUNC open by a user other than root (no
// CAP_FSETID) clears S_ISUID, and S_ISGID when group-executable; root's writes keep them; a
// set-group-ID file that is not group-executable keeps S_ISGID for a writer in its group.
const SETID = String.raw`
import os, sys
d = sys.argv[1]
# (the shim's scratch parent is 0700: the shim used to let other users through it, the kernel never)
${OPEN_TO_USERS}
cases = [('w', 0o6777, 'write'), ('t', 0o6777, 'truncate'), ('f', 0o6777, 'ftruncate'), ('o', 0o6777, 'otrunc'),
         ('g', 0o2766, 'write'), ('r', 0o6777, 'root-write')]
for name, mode, _ in cases:
    with open(name, 'wb') as f:
        f.write(b'data')
    os.chown(name, 0, 1000)
    os.chmod(name, mode)
def act(name, how):
    if how in ('write', 'root-write'):
        fd = os.open(name, os.O_WRONLY); os.write(fd, b'x'); os.close(fd)
    elif how == 'truncate':
        os.truncate(name, 1)
    elif how == 'ftruncate':
        fd = os.open(name, os.O_WRONLY); os.ftruncate(fd, 2); os.close(fd)
    elif how == 'otrunc':
        fd = os.open(name, os.O_WRONLY | os.O_TRUNC); os.close(fd)
pid = os.fork()
if pid == 0:
    os.setgroups([])
    os.setgid(1000)
    os.setuid(1000)
    for name, _, how in cases:
        if how != 'root-write':
            act(name, how)
    os._exit(0)
os.waitpid(pid, 0)
act('r', 'root-write')
for name, mode, how in cases:
    with open(name, 'rb') as f:
        f.read()
    print(name, how, oct(os.stat(name).st_mode & 0o7777))
`;

test('a write or truncate by another user clears the set-id bits as on tmpfs', { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'setid', '', py(SETID));
});

// Sticky directories: in a 1777 directory, a user may unlink or rename away only entries it owns
// (or in a directory it owns); others get EPERM, as the kernel's may_delete says.
const STICKY = String.raw`
import errno, os, sys
d = sys.argv[1]
${OPEN_TO_USERS}
os.mkdir('s'); os.chmod('s', 0o1777)
os.mkdir('u'); os.chown('u', 1001, 1001); os.chmod('u', 0o1777)
${AS_USER}
def mk(path, uid):
    def make():
        with open(path, 'wb') as f:
            f.write(b'data')
    print('create', path, uid, as_user(uid, make) if uid else (make() or 'ok'))
for n in ('a', 'b', 'c', 'e'):
    mk('s/' + n, 1000)
mk('s/r', 0)
mk('u/x', 1000)
mk('u/y', 1000)
print('1001 unlink s/a', as_user(1001, lambda: os.unlink('s/a')))
print('1001 rename s/b', as_user(1001, lambda: os.rename('s/b', 's/b2')))
print('1001 rename onto s/c', as_user(1001, lambda: (open('s/mine', 'wb').close(), os.rename('s/mine', 's/c'))))
print('1000 unlink s/a', as_user(1000, lambda: os.unlink('s/a')))
print('1000 rename s/b', as_user(1000, lambda: os.rename('s/b', 's/b2')))
print('1000 unlink s/r', as_user(1000, lambda: os.unlink('s/r')))
print('1001 unlink u/x (owns the dir)', as_user(1001, lambda: os.unlink('u/x')))
print('1001 rename u/y (owns the dir)', as_user(1001, lambda: os.rename('u/y', 'u/y2')))
print('root unlink s/e', as_user(0, lambda: os.unlink('s/e')))
for p in sorted(os.listdir('s')) + ['/'] + sorted(os.listdir('u')):
    q = os.path.join('s', p) if p != '/' and os.path.exists(os.path.join('s', p)) else os.path.join('u', p)
    if p != '/':
        with open(q, 'rb') as f:
            print(q, f.read())
`;

// Other users reach the daemon: `ephemera run` makes its run directory 0711 (src/cli/run.ts) and
// shim.sock is 0777, so a process that switched user asks the daemon, which checks the sticky rule
// with the caller's SO_PEERCRED identity, rather than falling back to the disk (ENOENT for EPERM).
test('sticky directories: unlink and rename fail and succeed for the users the kernel says', { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'sticky', '', py(STICKY));
});

// S_ISGID inheritance from a set-group-ID directory, and chmod by a non-owner (EPERM) and by an
// owner outside the file's group (S_ISGID silently dropped), as the kernel does.
const SGID = String.raw`import errno, os, sys
d = sys.argv[1]
${OPEN_TO_USERS}
os.mkdir('g'); os.chown('g', 0, 1000); os.chmod('g', 0o2777)
with open('g/f', 'wb') as f: f.write(b'x')
st = os.stat('g/f'); print('inherit gid', st.st_gid, oct(st.st_mode & 0o7777))
os.mkdir('g/sub'); st = os.stat('g/sub'); print('subdir gid', st.st_gid, oct(st.st_mode & 0o7777))
with open('mine', 'wb') as f: f.write(b'y')
os.chown('mine', 1000, 1000)
def as_user(uid, gid, fn):
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(gid); os.setuid(uid)
        try:
            fn(); print('ok', flush=True)
        except OSError as e:
            print(errno.errorcode[e.errno], flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
print('1001 chmod mine:', end=' ', flush=True); as_user(1001, 1001, lambda: os.chmod('mine', 0o600))
print('1000 chmod mine 2755 (in group):', end=' ', flush=True); as_user(1000, 1000, lambda: os.chmod('mine', 0o2755))
os.chown('mine', 1000, 0)
print('1000 chmod mine 2755 (not in group):', end=' ', flush=True); as_user(1000, 1000, lambda: os.chmod('mine', 0o2755))
with open('mine', 'rb') as f: f.read()
print('mine', oct(os.stat('mine').st_mode & 0o7777))
`;

test('set-group-ID directories pass their group on, and chmod by other users follows the kernel', { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'sgid', '', py(SGID));
});

// Another user may not reach an in-memory file through a directory it cannot search (b is 0750,
// owned by user 1000; user 1001 asks): open, stat, rename, rmdir and create there fail with the
// kernel's EACCES, and the permission checks of rename come before its checks of types.
const SEARCH = String.raw`
import os, sys, errno
d = sys.argv[1]; os.chdir(d)
p = os.path.dirname(d); m = os.stat(p).st_mode
if not m & 0o001: os.chmod(p, (m & 0o7777) | 0o011)  # never loosen /dev/shm (1777) itself
os.chmod(d, 0o755)
os.mkdir('b'); os.mkdir('b/c'); open('b/c/x','w').write('x'); open('b/y','w').write('y')
open('b/k','w').write('k'); os.chown('b', 1000, 1000); os.chmod('b', 0o750)
os.mkdir('a'); open('a/f1', 'w').write('f')
${AS_USER}
for name, fn in [('creat b/c/f0', lambda: os.open('b/c/f0', os.O_WRONLY|os.O_CREAT, 0o640)),
                 ('open b/c/x', lambda: os.open('b/c/x', os.O_RDONLY)),
                 ('open b/y', lambda: os.open('b/y', os.O_RDONLY)),
                 ('stat b/y', lambda: os.stat('b/y')),
                 ('stat b/c/x', lambda: os.stat('b/c/x')),
                 ('rename b/y a/f1', lambda: os.rename('b/y', 'a/f1')),
                 ('rename a/f1 b/z', lambda: os.rename('a/f1', 'b/z')),
                 ('unlink b/y', lambda: os.unlink('b/y')),
                 ('rmdir b/c/c', lambda: os.rmdir('b/c/c')),
                 ('mkdir b/q', lambda: os.mkdir('b/q')),
                 ('truncate b/y', lambda: os.truncate('b/y', 0)),
                 ('chmod b/y', lambda: os.chmod('b/y', 0o600)),
                 ('access b/y', lambda: os.access('b/y', os.R_OK) or (_ for _ in ()).throw(OSError(errno.EACCES, 'x'))),
                 ('creat b/k/f0', lambda: os.open('b/k/f0', os.O_WRONLY|os.O_CREAT, 0o640)),
                 ('creat /b/k/f0', lambda: os.open(os.path.join(d, 'b/k/f0'), os.O_RDWR|os.O_CREAT, 0o666)),
                 ('rename b/k/x a/f1', lambda: os.rename('b/k/x', 'a/f1')),
                 ('rmdir b/k/c', lambda: os.rmdir('b/k/c')),
                 ('stat b/k/c', lambda: os.stat('b/k/c')),
                 ('unlink b/k/c', lambda: os.unlink('b/k/c')),
                 ('mkdir b/k/c', lambda: os.mkdir('b/k/c')),
                 ]:
    print(name, as_user(1001, fn))
print('owner reads b/y', as_user(1000, lambda: open('b/y').read()))
`;

test('a directory another user cannot search hides its in-memory files from that user, as on tmpfs', { timeout: 60_000 }, async (t) => {
  await sameOnTmpfsAndShim(t, 'search', '', py(SEARCH));
});

// An in-memory file renamed over a name on disk (made by a program without the shim: a regular
// file, a symlink, a directory, a file in a sticky directory owned by another user): the shim
// unlinks the disk name itself under the namespace lock, as the caller, so the kernel's own checks
// decide (the sticky bit's EPERM), and a directory is still refused as the kernel refuses it.
const RENAME_OVER_DISK = String.raw`
import errno, os, subprocess, sys
d = sys.argv[1]
p = os.path.dirname(d); m = os.stat(p).st_mode
if not m & 0o001: os.chmod(p, (m & 0o7777) | 0o011)  # user 1002 must reach d, as in the set-id test
os.chmod(d, 0o777)
env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
def disk(cmd):  # a shell without the shim: its files go straight to the disk
    subprocess.run(['/bin/sh', '-c', cmd, 'sh', d], env=env, check=True)
disk('cd "$1" && echo old > t1 && echo keep > keep && ln -s keep t2 && mkdir t3 && '
     'mkdir -m 1777 sticky && echo theirs > sticky/t4 && chown 1001 sticky/t4')
def new(name, text):
    p = os.path.join(d, name)
    with open(p, 'w') as f:
        f.write(text)
    return p
for name in ('t1', 't2', 't3', 'sticky/t4'):
    src = new(name.replace('/', '_') + '.new', 'new ' + name)
    tgt = os.path.join(d, name)
    if name == 'sticky/t4':  # another user may not replace 1001's file in a sticky directory
        pid = os.fork()
        if pid == 0:
            os.chmod(src, 0o666)
            os.setuid(1002)
            try:
                os.rename(src, tgt); print(name, 'renamed by 1002')
            except OSError as e:
                print(name, 'by 1002:', errno.errorcode[e.errno])
            os._exit(0)
        os.waitpid(pid, 0)
    try:
        os.rename(src, tgt)
        print(name, 'renamed:', open(tgt).read(), os.path.islink(tgt), os.path.exists(src))
    except OSError as e:
        print(name, errno.errorcode[e.errno], os.path.exists(src))
print('keep', open(os.path.join(d, 'keep')).read().strip())
print(sorted(os.listdir(d)), sorted(os.listdir(os.path.join(d, 'sticky'))))
`;

test('an in-memory file renamed over a disk name (file, symlink, directory, sticky) answers as on tmpfs', { timeout: 60_000 }, async (t) => {
  if (process.geteuid() !== 0) {
    t.skip('needs root (chown and setuid of the sticky case)');
    return;
  }
  await sameOnTmpfsAndShim(t, 'rename-over-disk', '', py(RENAME_OVER_DISK));
});

// Another user's open file moves to disk (issue 9, difftest users-evicting with DIFFTEST_SEED=12345,
// seed 12352: "t181/u1001:10 read h0 350 = -1 EIO").  The shim puts the disk file under the fd by
// opening /proc/<daemon>/fd/N, which the kernel refuses a process of another uid than the daemon's
// (ptrace access); every call on the fd then failed with EIO, the mmap too.  Under a 64 KiB budget,
// uid 1001's file left idle for more than the daemon's busy window (1 s) is evicted to make room for
// root's; the calls by path come first, then those on the fd, then the file's bytes as root sees them.
const OTHER_USER_MOVED = String.raw`
import errno, mmap, os, sys, time
d = sys.argv[1]
${OPEN_TO_USERS}
with open('a', 'wb') as f:
    f.write(b'x' * 40000)
os.chown('a', 1001, 1001)
go_r, go_w = os.pipe(); ready_r, ready_w = os.pipe(); out_r, out_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(go_w); os.close(ready_r); os.close(out_r)
    os.setgroups([]); os.setgid(1001); os.setuid(1001)
    fd = os.open('a', os.O_RDWR)
    os.write(ready_w, b'1')
    os.read(go_r, 1)
    res = []
    def step(name, fn):
        try:
            res.append('%s %r' % (name, fn()))
        except OSError as e:
            res.append('%s %s' % (name, errno.errorcode[e.errno]))
    step('chmod path', lambda: os.chmod('a', 0o640))
    step('utime path', lambda: os.utime('a', (1, 2)))
    step('stat path', lambda: (oct(os.stat('a').st_mode), os.stat('a').st_size, os.stat('a').st_mtime))
    step('truncate path', lambda: os.truncate('a', 40000))
    step('read', lambda: len(os.read(fd, 1000)))
    step('pread', lambda: os.pread(fd, 5, 39998))
    step('pwrite', lambda: os.pwrite(fd, b'yy', 40000))
    step('fstat size', lambda: os.fstat(fd).st_size)
    step('ftruncate', lambda: os.ftruncate(fd, 30000))
    def mm():
        with mmap.mmap(fd, 4096) as mp:
            mp[0:2] = b'zz'
            return mp[0:4]
    step('mmap', mm)
    step('read again', lambda: os.pread(fd, 4, 0))
    step('fstat', lambda: (os.fstat(fd).st_size, os.fstat(fd).st_blocks))
    os.close(fd)
    os.write(out_w, '\n'.join(res).encode()); os._exit(0)
os.close(go_r); os.close(ready_w); os.close(out_w)
os.read(ready_r, 1)
time.sleep(1.5)
with open('b', 'wb') as g:
    g.write(b'y' * 40000)
with open('b', 'rb') as r:
    print('b', len(r.read()))
os.write(go_w, b'1')
print(os.read(out_r, 10000).decode())
os.waitpid(pid, 0)
with open('a', 'rb') as f:
    data = f.read()
print('final', len(data), data[:4], data[-4:])
`;

test("another user's open file that moved to disk: its fd reads, writes, maps and truncates as on tmpfs", { timeout: 60_000 }, async (t) => {
  if (process.geteuid() !== 0) {
    t.skip('needs root (chown and setuid to uid 1001)');
    return;
  }
  const { stats } = await sameOnTmpfsAndShim(t, 'other-user-moved', '', { ...py(OTHER_USER_MOVED), budget: 65536 });
  assert.ok(stats.evictions >= 1, `the file never moved to disk (evictions=${stats.evictions}): the test proved nothing`);
});

// fallocate through a description that has not touched its file since the file moved to disk
// (difftest seed 3001, single-evicting, op 35862: an fstat showed 0 where tmpfs showed 24044).
// The shim compared the fallocate's end with the in-memory size the file had when it left, so a
// posix_fallocate that grew the file (which another open had truncated on disk) did nothing, and a
// punched hole went to the memfd rather than the disk file.
const EVICTED_FALLOCATE = String.raw`import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]; os.chdir(d)
s = os.open('small', os.O_RDWR | os.O_CREAT, 0o600)  # the harness wants most I/O from memory
for i in range(20):
    os.pwrite(s, b'a' * 100, 0); assert os.pread(s, 100, 0) == b'a' * 100
os.close(s)
def fresh(p):
    keep = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)  # a description that only looks
    w = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(w, b'y' * 30000)                          # in memory: 30000 bytes under a 64 KiB budget
    assert os.pread(keep, 4, 0) == b'yyyy'
    os.pwrite(keep, b'x' * 300000, 30000)              # past the budget: the file moves to disk
    return keep, w                                     # w has not touched the file since
# Grow: another open truncates the disk file; a posix_fallocate through w to 24044 (below the
# 30000 the file had in memory) must grow it, as every description sees.
keep, w = fresh('grow')
t = os.open('grow', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
os.posix_fallocate(w, 1, 24043)
print('grow: fstat', os.fstat(keep).st_size, os.fstat(t).st_size, 'stat', os.stat('grow').st_size)
for fd in (keep, w, t): os.close(fd)
# Punch: a hole punched through w must show in the disk file's bytes.
keep, w = fresh('punch')
if libc.fallocate(w, 3, ctypes.c_long(0), ctypes.c_long(8192)) < 0:  # PUNCH_HOLE | KEEP_SIZE
    raise OSError(ctypes.get_errno(), 'fallocate')
b = os.pread(keep, 10000, 0)
print('punch: size', os.fstat(keep).st_size, 'zeros', b.count(0), 'y', b.count(b'y'))
for fd in (keep, w): os.close(fd)
print('evicted-size ok')
`;

test('fallocate through a description left behind by a move to disk acts on the disk file', { timeout: 60_000 }, async (t) => {
  const { stats } = await sameOnTmpfsAndShim(t, 'evicted-fallocate', '', { ...py(EVICTED_FALLOCATE), budget: 65536 });
  assert.ok(stats.evictions >= 2, `the files never moved to disk (evictions=${stats.evictions}): the test proved nothing`);
});

// Renaming a file onto another name of the same file succeeds before any permission check (the
// kernel's vfs_rename: source == target); the shim checked write permission on the directories
// first and said EACCES (soak seed 880106753, "t8/u1001:22 rename a/f3 f4").  uid 1001 may write
// the test directory but not a/, where the first name of the hard-linked file (on disk) is:
// a rename onto the other name, plain or RENAME_EXCHANGE, changes nothing and succeeds (also
// between two root-owned links in a sticky directory), RENAME_NOREPLACE says EEXIST, and one onto
// another file is refused (EACCES; EPERM in the sticky directory).
const RENAME_SAME_FILE = String.raw`
import ctypes, errno, os, sys
d = sys.argv[1]
${OPEN_TO_USERS}
os.mkdir('a', 0o755)
with open('a/f', 'wb') as f:
    f.write(b'data')
os.link('a/f', 'g')
with open('a/m', 'wb') as f:
    f.write(b'm' * 3000)
with open('own', 'wb') as f:
    f.write(b'own')
os.mkdir('s'); os.chmod('s', 0o1777)
with open('s/x', 'wb') as f:
    f.write(b'x')
os.link('s/x', 's/y')
libc = ctypes.CDLL(None, use_errno=True)
def renameat2(a, b, fl):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), fl) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
${AS_USER}
print('a/f onto its link g', as_user(1001, lambda: os.rename('a/f', 'g')))
print('g onto its link a/f', as_user(1001, lambda: os.rename('g', 'a/f')))
print('a/f onto itself', as_user(1001, lambda: os.rename('a/f', 'a/f')))
print('a/f to a/h', as_user(1001, lambda: os.rename('a/f', 'a/h')))
print('a/f onto a/m (another file)', as_user(1001, lambda: os.rename('a/f', 'a/m')))
print('own to a/own', as_user(1001, lambda: os.rename('own', 'a/own')))
print('noreplace a/f g', as_user(1001, lambda: renameat2('a/f', 'g', 1)))
print('exchange a/f g', as_user(1001, lambda: renameat2('a/f', 'g', 2)))
print('s/x onto s/y (sticky, root owns both)', as_user(1001, lambda: os.rename('s/x', 's/y')))
print('g onto s/x (other files)', as_user(1001, lambda: os.rename('g', 's/x')))
print(sorted(os.listdir('.')), sorted(os.listdir('a')), sorted(os.listdir('s')), os.stat('g').st_nlink, open('a/f', 'rb').read(), open('own', 'rb').read())
for q in ('a/m', 's/x', 's/y'):
    print(q, os.stat(q).st_nlink, len(open(q, 'rb').read()))
`;

test('rename onto another name of the same file by a user who may not write its directory answers as on tmpfs', { timeout: 60_000 }, async (t) => {
  if (process.geteuid() !== 0) {
    t.skip('needs root (setuid to uid 1001)');
    return;
  }
  await sameOnTmpfsAndShim(t, 'rename-same-file', '', py(RENAME_SAME_FILE));
});

// A link that the kernel refuses changes nothing: on tmpfs the file stays as it was; under the shim
// the in-memory file used to move to disk before the kernel's refusal, and then the open descriptor
// of a process of another user could not follow it there (EIO from its next write; seed 880106753
// of the 10 M soak, turn 150).  Refused for the target's directory (EACCES), an existing target
// (EEXIST) and fs.protected_hardlinks (EPERM, checked before the directory's write permission); a
// target with a trailing slash is the kernel's ENOENT before all of them (seed 880106865), and so
// is a missing directory (seed 880106801), as a file on the way is ENOTDIR.
const LINKREFUSED = String.raw`
import ctypes, errno, os, sys
d = sys.argv[1]
${OPEN_TO_USERS}
${AS_USER}
os.mkdir('w'); os.chmod('w', 0o777)
os.mkdir('r'); os.chmod('r', 0o755)
with open('r/taken', 'wb') as f: f.write(b't')
with open('w/theirs', 'wb') as f: f.write(b'o' * 100)
os.chmod('w/theirs', 0o644)
def mine():
    fd = os.open('w/f0', os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b'a' * 3000)
    out = []
    for t in ('r/f0', 'r/taken', 'r/../r/f1', 'nodir/f2', 'w/f0/f3', 'w/g/'):
        try: os.link('w/f0', t); out.append(t + ' ok')
        except OSError as e: out.append(t + ' ' + errno.errorcode[e.errno])
    os.write(fd, b'b' * 5000)
    os.lseek(fd, 0, 0)
    out.append('read %d' % len(os.read(fd, 100000)))
    out.append('fstat size %d nlink %d' % (os.fstat(fd).st_size, os.fstat(fd).st_nlink))
    os.close(fd)
    return ', '.join(out)
print('1001 links its open file', as_user(1001, mine, show=True))
print('1000 links w/theirs to r/x', as_user(1000, lambda: os.link('w/theirs', 'r/x')))
print('1000 links w/theirs to w/x', as_user(1000, lambda: os.link('w/theirs', 'w/x')))
print('1000 links w/theirs to w/y/', as_user(1000, lambda: os.link('w/theirs', 'w/y/')))
print('1000 links w/theirs to r/y/', as_user(1000, lambda: os.link('w/theirs', 'r/y/')))
print(sorted(os.listdir('w')), sorted(os.listdir('r')), os.stat('w/f0').st_size, os.stat('w/theirs').st_nlink)
`;

test('a link the kernel refuses leaves the file as it was, and another user keeps writing to it', { timeout: 60_000 }, async (t) => {
  const { stats } = await sameOnTmpfsAndShim(t, 'linkrefused', '', py(LINKREFUSED));
  assert.equal(stats.evictions, 0, 'a refused link moved an in-memory file to disk');
});
