// OFD locks (fcntl F_OFD_SETLK/F_OFD_GETLK) belong to the open file description, as flock's do: dups
// share them, another open conflicts, they survive the close of a dup and end at the last close.  A
// reopen of an in-memory file is a dup of the shim's private fd on its memfd, so before such a lock
// the shim gives the fd's description to its own desc alone (io_own_description), and remembers that
// in the fd's entry (FT_OWNDESC) so that the next lock is the kernel's one call.  Every way another fd
// can come to share the description, or an fd number to name another one, must forget it or keep it
// true: dup, dup2, dup3, F_DUPFD(_CLOEXEC), a dup2 of another description over the number, reuse of a
// number after a close (by the same file or another), a fork child locking on the inherited fd, an fd
// received through SCM_RIGHTS, and a locked small file that grows (the shim's mapping and private fd
// come after the lock).  The script runs on tmpfs and under the shim, with files small enough to have
// no private fd (4 KiB) and large enough to be mapped through one (100 KB); the outputs must match.
// Before FT_INHERITED, a fork child's lock on the inherited fd of a mapped file was taken on a
// description of the child's own, gone with the child: the parent's other open then got the lock.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, sameOnTmpfsAndShim } from './lib/harness.mjs';

const SHARING = String.raw`
import fcntl, os, socket, struct, sys
os.chdir(sys.argv[1])
FL = 'hhqqi4x'
def lk(fd, t=fcntl.F_WRLCK):
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(FL, t, 0, 0, 0, 0))
        return 'got'
    except OSError as e:
        return 'busy %d' % e.errno
def un(fd):
    return 'un ' + lk(fd, fcntl.F_UNLCK)
def query(fd):
    return struct.unpack(FL, fcntl.fcntl(fd, fcntl.F_OFD_GETLK, struct.pack(FL, fcntl.F_WRLCK, 0, 0, 0, 0)))[0]
def other(name):
    fd = os.open(name, os.O_RDWR)
    r = lk(fd)
    os.close(fd)
    return r
def mk(name, n=int(sys.argv[2])):
    with open(name, 'wb') as f:
        f.write(b'x' * n)
def say(*a):
    sys.stdout.write(' '.join(str(x) for x in a) + '\n')
    sys.stdout.flush()

# dup, then a lock on the dup (and on the original, and through the other ways to dup)
mk('A')
a = os.open('A', os.O_RDWR)
b = os.dup(a)
say('dup first: lock on the dup', lk(b), 'on the original', lk(a), 'another open', other('A'), 'query', query(a))
c = os.open('A', os.O_RDWR)
say('an open after', lk(c), 'query through it', query(c) == fcntl.F_WRLCK)
os.close(b)
say('one dup closed: another open', other('A'), 'the original', lk(a))
for how in ('dup2', 'dup3', 'F_DUPFD', 'F_DUPFD_CLOEXEC'):
    n = {'dup2': lambda: os.dup2(a, 40), 'dup3': lambda: os.dup2(a, 41, inheritable=False),
         'F_DUPFD': lambda: fcntl.fcntl(a, fcntl.F_DUPFD, 50),
         'F_DUPFD_CLOEXEC': lambda: fcntl.fcntl(a, fcntl.F_DUPFD_CLOEXEC, 60)}[how]()
    say(how, 'lock on it', lk(n), 'unlock on it', un(n), 'another open', other('A'), 'lock again', lk(n), 'another open', other('A'))
    os.close(n)
    say(how, 'closed: the original', lk(a), 'another open', other('A'))
os.close(a)
say('all closed: the open after', lk(c), 'unlock', un(c))
os.close(c)
say('released', other('A'))

# lock, then dup: the dup holds the lock after the original is closed
mk('B')
a = os.open('B', os.O_RDWR)
say('lock first', lk(a))
b = os.dup(a)
os.close(a)
say('original closed: another open', other('B'), 'the dup', lk(b), 'query', query(b))
os.close(b)
say('last closed', other('B'))

# a dup2 of another description over a locked fd's number
mk('C')
a = os.open('C', os.O_RDWR)
x = os.open('C', os.O_RDWR)
say('locked', lk(a))
n = os.dup2(x, a)
say('replaced by dup2: the number', lk(n), 'x', lk(x))
os.close(x)
say('x closed: the number', lk(n), 'another open', other('C'))
os.close(n)
say('closed', other('C'))

# fd number reuse after close
mk('R')
a = os.open('R', os.O_RDWR)
say('reuse: locked', lk(a))
os.close(a)
c = os.open('R', os.O_RDWR)
x = os.open('R', os.O_RDWR)
say('reused number', c == a, 'lock through x', lk(x), 'through the reused number', lk(c))
os.close(x)
say('x closed: the reused number', lk(c))
os.close(c)
say('released at its close', other('R'))
mk('R2')
a = os.open('R', os.O_RDWR)
say('reuse by another file: R locked', lk(a))
os.close(a)
c = os.open('R2', os.O_RDWR)
say('number reused by R2', c == a, 'lock', lk(c), 'R', other('R'), 'R2', other('R2'))
os.close(c)
say('R2 released', other('R2'))

# a fork child locking on the inherited fd
def child(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
mk('F')
a = os.open('F', os.O_RDWR)
child(lambda: say('child: inherited fd', lk(a), 'its own open', other('F')))
say('parent after the child: another open', other('F'), 'query', query(a), 'inherited fd', lk(a))
os.close(a)
say('parent closed: released', other('F'))
a = os.open('F', os.O_RDWR)
say('parent locks first', lk(a))
child(lambda: say('child: inherited fd', lk(a), 'unlock', un(a), 'its own open', other('F'), 'lock again', lk(a)))
say('parent: another open', other('F'))
os.close(a)
say('parent closed: released', other('F'))
# the child keeps the fd open while the parent closes
a = os.open('F', os.O_RDWR)
r, w = os.pipe()
r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r); os.close(w2)
    say('child holds', lk(a))
    os.write(w, b'1')
    os.read(r2, 1)
    os.close(a)
    os._exit(0)
os.close(w); os.close(r2)
os.read(r, 1)
os.close(a)
say('parent closed, child still holds: another open', other('F'))
os.write(w2, b'1')
os.waitpid(pid, 0)
say('child closed too', other('F'))
os.close(r); os.close(w2)

# SCM_RIGHTS to ourselves: the received fd shares the description
mk('S')
a = os.open('S', os.O_RDWR)
say('scm: locked', lk(a))
s1, s2 = socket.socketpair()
socket.send_fds(s1, [b'x'], [a])
_, fds, _, _ = socket.recv_fds(s2, 1, 1)
rcv = fds[0]
say('received: lock', lk(rcv), 'another open', other('S'))
os.close(a)
say('original closed: received', lk(rcv), 'another open', other('S'))
os.close(rcv)
say('received closed', other('S'))

# a locked small file grows (its mapping and a private fd come after the lock)
mk('G', 100)
a = os.open('G', os.O_RDWR)
say('grow: locked', lk(a))
for i in range(40):
    os.write(a, os.urandom(8192))
os.pread(a, 100, 0)
say('grown: another open', other('G'))
os.close(a)
say('grown and closed: released', other('G'))
g = os.open('G', os.O_RDWR)
say('an open after it', lk(g), 'another open', other('G'))
os.close(g)
`;

for (const size of [4096, 100_000]) {
  test(`OFD locks on in-memory files of ${size} bytes are the open file description's in every way of sharing it, as on tmpfs`, { timeout: 60_000 }, async (t) => {
    const { out } = await sameOnTmpfsAndShim(t, `ofd-sharing-${size}`, '', { cmd: PYTHON, argv: (dir) => ['-c', SHARING, dir, String(size)] });
    assert.match(out, /^dup first: lock on the dup got on the original got another open busy 11 query 2$/m);
    assert.match(out, /^parent after the child: another open busy 11 query 2 inherited fd got$/m);
    assert.match(out, /^parent closed, child still holds: another open busy 11$/m);
    assert.match(out, /^reused number True lock through x got through the reused number busy 11$/m);
    assert.match(out, /^grown and closed: released got$/m);
  });
}
