// Record locks on in-memory files, under memory pressure.  A POSIX (fcntl/lockf) or OFD lock lives
// on the kernel inode under the fd: the memfd while the file is in memory.  Before the fix an
// eviction moved a locked file to disk, the holder's fd was swapped to the disk file, and another
// process got the "held" lock on the disk file (SQLite's and lockf's exclusion gone).  Now the
// daemon leaves a record-locked file in memory until it is unlocked, and a lock taken while a
// move is under way is taken again on the file's new home.  The script runs on tmpfs and under
// `ephemera run` with a budget small enough that files are evicted while the locks are held.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, runOnTmpfsAndShim, sameOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = String.raw`
import fcntl, os, struct, subprocess, sys, time
d = sys.argv[1]
os.chdir(d)
PROBE = 'import fcntl,sys\ntry:\n fcntl.lockf(open(sys.argv[1],"r+"), fcntl.LOCK_EX|fcntl.LOCK_NB, int(sys.argv[2]), int(sys.argv[3])); print("got")\nexcept OSError as e: print("busy", e.errno)'
def probe(name, length=0, start=0):
    return subprocess.run([sys.executable, '-c', PROBE, name, str(length), str(start)], capture_output=True, text=True).stdout.strip()
keep = []
def pressure(first, n):
    for i in range(first, first + n):
        f = open('big%d' % i, 'wb')
        f.write(os.urandom(200000))
        f.flush()
        keep.append(f)
out = []
h = open('G', 'wb+')
h.write(b'g')
h.flush()
fcntl.lockf(h, fcntl.LOCK_EX)
h.seek(0)
with open('K', 'w') as f:
    f.write('k' * 100000)
g = open('K', 'r+')
fcntl.lockf(g, fcntl.LOCK_EX, 1000, 0)
time.sleep(1.2)  # K is no longer 'recently used': the first file eviction would take
pressure(0, 12)
out.append(('held through pressure', probe('K', 1000, 0), probe('K', 1000, 5000)))
fcntl.lockf(g, fcntl.LOCK_UN, 1000, 0)
time.sleep(1.2)
pressure(12, 12)
fcntl.lockf(g, fcntl.LOCK_EX, 0, 0)
out.append(('taken again', probe('K'), g.read(5)))
fcntl.lockf(g, fcntl.LOCK_UN, 0, 0)
out.append(('released', probe('K')))
# OFD locks belong to the open file description: two opens in one process conflict.
a = os.open('O', os.O_RDWR | os.O_CREAT, 0o644)
os.write(a, b'o' * 5000)
b = os.open('O', os.O_RDWR)
lk = struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0)
fcntl.fcntl(a, fcntl.F_OFD_SETLK, lk)
try:
    fcntl.fcntl(b, fcntl.F_OFD_SETLK, lk)
    out.append('second OFD lock granted')
except OSError as e:
    out.append(('second OFD lock refused', e.errno))
time.sleep(1.2)
pressure(24, 6)
out.append(('OFD held through pressure', probe('O')))
os.close(a)
out.append(('OFD released by close', probe('O')))
# A locked file that outgrows the budget (opened and locked first, below): it cannot go to disk
# without its lock, so it grows in memory.
chunks = [os.urandom(100000) for _ in range(10)]
for c in chunks:
    h.write(c)
    h.flush()
h.seek(0)
out.append(('locked file grew', h.read() == b''.join(chunks), os.fstat(h.fileno()).st_size, probe('G')))
print(out)
`;

test('fcntl/lockf and OFD locks on in-memory files hold while other files are evicted', async () => {
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('locks', SCRIPT, { budget: '600K' });
  const want = tmpfs.stdout.toString();
  assert.match(want, /\('held through pressure', 'busy 11', 'got'\)/);
  assert.match(want, /\('second OFD lock refused', 11\)/);
  assert.match(want, /\('locked file grew', True, 1000000, 'busy 11'\)/);
  assert.equal(shim.stdout.toString(), want);
  assert.ok(shim.stats.evictions >= 3, `only ${shim.stats.evictions} evictions: no memory pressure, nothing tested`);
  sc.done();
});

// flock() locks belong to the open file description, which an exec'd child shares through the fd
// it inherits, also once its parent has closed its own fds: the lock the parent took is the
// child's, its flock on that fd converts it, and another open of the file conflicts.  The new
// image's shim made its private fd on the memfd a dup of the inherited fd, so the two shared one
// description; with no other holder of the desc left to show that the description came from
// outside, its first flock gave the inherited fd a description of its own (as it does for a second
// open in one process), and met EAGAIN from the lock of the description it came with.
const EXEC_FLOCK = String.raw`
import fcntl, os, subprocess, sys
os.chdir(sys.argv[1])
with open('lock', 'w') as f:
    f.write('x')
NB = '''
def nb(f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 'got'
    except OSError as e:
        return 'busy %d' % e.errno
'''
exec(NB)
CHILD = 'import fcntl, os, sys' + NB + '''
fd = int(sys.argv[1])
sys.stdin.readline()
print('inherited fd', nb(fd), 'own open', nb(os.open('lock', os.O_RDWR)), 'dup of it', nb(os.dup(fd)))
'''
for held in ('locked', 'unlocked'):
    a = open('lock', 'r+')
    if held == 'locked':
        fcntl.flock(a, fcntl.LOCK_EX)
    fd = a.fileno()
    os.set_inheritable(fd, True)
    p = subprocess.Popen([sys.executable, '-c', CHILD, str(fd)], pass_fds=(fd,), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    a.close()
    got = p.communicate('the parent closed its fd\n', timeout=30)[0].strip()
    print(held, 'by the parent:', got, p.returncode, '/ after the child:', nb(open('lock', 'r+')))
print('contents', open('lock').read())
`;

test("an exec'd child's flock on the fd its parent locked and closed converts the parent's lock, as on tmpfs", { timeout: 60_000 }, async (t) => {
  const { out } = await sameOnTmpfsAndShim(t, 'exec-flock', '', { cmd: PYTHON, argv: (dir) => ['-c', EXEC_FLOCK, dir] });
  assert.match(out, /^locked by the parent: inherited fd got own open busy 11 dup of it got 0/m);
});

// A lock by SEEK_CUR or SEEK_END is placed by the kernel from its fd's offset and size, which for an
// in-memory file are not the file's: the offset lives in the shared description, and the memfd is as
// long as its capacity.  Before the fix a lock at offset 100 by SEEK_CUR landed at 0, so two
// processes could both hold the record at 100; and glibc's lockf (SEEK_CUR, through libc's own
// fcntl, out of the shim's sight) did the same.  Another process lists the ranges it sees locked.
const WHENCE = String.raw`
import fcntl, os, struct, subprocess, sys
os.chdir(sys.argv[1])
FL = 'hhqqi4x'
PROBE = r'''
import fcntl, os, struct, sys
FL = 'hhqqi4x'
fd = os.open('R', os.O_RDWR)
def getlk(whence, start):
    return struct.unpack(FL, fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(FL, fcntl.F_WRLCK, whence, start, 10, 0)))[:4]
held = [s for s in range(0, 400, 10) if getlk(os.SEEK_SET, s)[0] != fcntl.F_UNLCK]
os.lseek(fd, 120, os.SEEK_SET)
print('held', held, 'by SEEK_CUR -20', getlk(os.SEEK_CUR, -20), 'free by SEEK_CUR 200', getlk(os.SEEK_CUR, 200))
for off in (40, 60):
    os.lseek(fd, off, os.SEEK_SET)
    try:
        print('lockf F_TEST at', off, os.lockf(fd, os.F_TEST, 10))
    except OSError as e:
        print('lockf F_TEST at', off, 'errno', e.errno)
'''
def probe(what):
    r = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True, timeout=30)
    print(what, r.stdout.strip(), r.stderr.strip())
f = os.open('R', os.O_RDWR | os.O_CREAT, 0o644)
os.write(f, b'r' * 5000)
os.ftruncate(f, 250)
os.lseek(f, 100, os.SEEK_SET)
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0, os.SEEK_CUR)
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, -30, os.SEEK_END)
os.lseek(f, 40, os.SEEK_SET)
os.lockf(f, os.F_TLOCK, 10)
probe('three locks:')
os.lockf(f, os.F_ULOCK, 10)
probe('lockf released:')
for start in (2**63 - 1, -1000):
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, start, os.SEEK_CUR)
        print('lock at', start, 'granted')
    except OSError as e:
        print('lock at', start, 'errno', e.errno)
print('contents', os.pread(f, 300, 0) == b'r' * 250)
`;

test('locks by SEEK_CUR, SEEK_END and lockf cover the ranges they cover on tmpfs', { timeout: 60_000 }, async (t) => {
  const { out } = await sameOnTmpfsAndShim(t, 'lock-whence', '', { cmd: PYTHON, argv: (dir) => ['-c', WHENCE, dir] });
  assert.match(out, /^three locks: held \[40, 100, 220\]/m);
  assert.match(out, /^lockf released: held \[100, 220\]/m);
});
