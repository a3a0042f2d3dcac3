# The workload of test/fs/hardlinks.test.mjs, run under `ephemera run`: hard links of in-memory
# files (shim/nslink.c).  MODE is one of
#   names   several names of one file: st_nlink, st_ino (also readdir's d_ino), ctime on link,
#           writes through one name read through another, unlink and rename of names
#   evict   a linked file pushed to disk by the budget: all names stay names of one file
#   takeover  a linked file across a SIGKILL of ephemerad (the keeper starts a new one)
#   renames  renames over the own name of a file with further names (in the shim, and a disk
#           file's over it in the daemon), and links whose new name has a "..": every file keeps
#           its st_ino (it stays in memory), as on tmpfs; the root holds `ondisk` at the start
#   linkrace  links while another process makes and removes a directory in a loop (each
#           removal bumps the region's dirs_gone, which a link in memory checks under the lock);
#           the test checks that no link moved its file to disk (the stats' evictions)
# Exit 7 when every check held; a failed check raises (exit 1) with what differed.
import ctypes, os, signal, sys, time

from keeperproc import daemons

mode, root = sys.argv[1], sys.argv[2]
IN_MEMORY = 1 << 44  # st_ino of an in-memory file (EPH_INO_TAG)


def p(name):
    return os.path.join(root, name)


def read(name):
    with open(p(name), 'rb') as f:
        return f.read()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def same_file(names, nlink):
    sts = [os.stat(p(n)) for n in names]
    for n, st in zip(names, sts):
        check(st.st_nlink == nlink, '%s: st_nlink %d, want %d' % (n, st.st_nlink, nlink))
        check(st.st_ino == sts[0].st_ino and st.st_dev == sts[0].st_dev, '%s: st_ino %d, %s has %d' % (n, st.st_ino, names[0], sts[0].st_ino))
    return sts[0]


def names():
    with open(p('a'), 'wb') as f:
        f.write(b'first')
    before = os.stat(p('a'))
    check(before.st_ino & IN_MEMORY, 'a is not in memory (st_ino %d)' % before.st_ino)
    os.link(p('a'), p('b'))
    os.link(p('b'), p('c'))  # through a further name
    st = same_file(['a', 'b', 'c'], 3)
    check(st.st_ino == before.st_ino, 'the link changed the inode (%d -> %d): it left memory' % (before.st_ino, st.st_ino))
    check(st.st_ctime_ns > before.st_ctime_ns, 'ctime did not move on link (%d, %d)' % (before.st_ctime_ns, st.st_ctime_ns))
    check(st.st_mtime_ns == before.st_mtime_ns, 'mtime moved on link')
    # readdir's d_ino is st_ino for every name
    for e in os.scandir(root):
        if e.name in ('a', 'b', 'c'):
            check(e.inode() == st.st_ino, 'readdir d_ino of %s is %d, st_ino %d' % (e.name, e.inode(), st.st_ino))
    # a link onto an existing name fails, in memory or on disk
    for tgt in ('b', 'disk'):
        if tgt == 'disk':
            os.mkdir(p('d'))
            tgt = 'd'
        try:
            os.link(p('a'), p(tgt))
            check(False, 'link onto existing %s succeeded' % tgt)
        except FileExistsError:
            pass
    # writes through one name, reads through the others, through fds open before and after
    fa = os.open(p('a'), os.O_RDWR)
    with open(p('b'), 'ab') as f:
        f.write(b'+b')
    os.pwrite(fa, b'F', 0)
    for n in ('a', 'b', 'c'):
        check(read(n) == b'First+b', '%s reads %r' % (n, read(n)))
    check(os.fstat(fa).st_size == 7 and os.fstat(fa).st_nlink == 3, 'fstat through a: %r' % (os.fstat(fa),))
    os.truncate(p('c'), 3)
    check(read('a') == b'Fir', 'truncate through c not seen through a')
    os.chmod(p('b'), 0o600)
    check(os.stat(p('a')).st_mode & 0o777 == 0o600, 'chmod through b not seen through a')
    # unlink of the first name: the others keep the bytes
    os.unlink(p('a'))
    check(not os.path.exists(p('a')), 'a still exists')
    same_file(['b', 'c'], 2)
    check(read('b') == b'Fir' and read('c') == b'Fir', 'after unlink of a')
    check(os.fstat(fa).st_nlink == 2, 'fstat of the fd of a: st_nlink %d' % os.fstat(fa).st_nlink)
    os.write(fa, b'!')  # the fd still writes the file
    check(read('c') == b'!ir', 'a write through the fd of the unlinked name: %r' % read('c'))
    os.close(fa)
    # rename a further name, rename onto another name of the same file (does nothing), over a file
    os.rename(p('c'), p('e'))
    same_file(['b', 'e'], 2)
    os.rename(p('e'), p('b'))
    check(os.path.exists(p('e')) and os.path.exists(p('b')), 'rename onto a name of the same file removed one')
    with open(p('other'), 'wb') as f:
        f.write(b'other')
    os.link(p('other'), p('other2'))
    os.rename(p('e'), p('other2'))  # replaces a further name of another file
    same_file(['other'], 1)
    same_file(['b', 'other2'], 2)
    check(read('other2') == b'!ir' and read('other') == b'other', 'after the rename over other2')
    os.unlink(p('b'))
    same_file(['other2'], 1)
    check(read('other2') == b'!ir', 'the last name lost the bytes')
    os.unlink(p('other2'))
    check(sorted(os.listdir(root)) == ['d', 'other'], 'left over: %r' % sorted(os.listdir(root)))
    check(os.stat(p('other')).st_ino & IN_MEMORY, 'other left memory')
    # RENAME_EXCHANGE (the daemon's) with names of a file that has several: the names trade places
    libc = ctypes.CDLL(None, use_errno=True)

    def exchange(a, b):
        if libc.renameat2(-100, p(a).encode(), -100, p(b).encode(), 2) != 0:
            raise OSError(ctypes.get_errno(), 'renameat2(%s, %s, RENAME_EXCHANGE)' % (a, b))
    with open(p('xa'), 'wb') as f:
        f.write(b'A')
    with open(p('xb'), 'wb') as f:
        f.write(b'B')
    os.link(p('xa'), p('xa2'))
    os.link(p('xa'), p('xa3'))
    ino = os.stat(p('xa')).st_ino
    exchange('xa2', 'xb')  # a further name with another file
    exchange('xa', 'xa3')  # two names of one file: nothing happens
    exchange('xb', 'xa')  # the file's own name with one of its further names
    check(read('xa2') == b'B' and os.stat(p('xa2')).st_nlink == 1, 'xa2 after the exchanges')
    st = same_file(['xa', 'xa3', 'xb'], 3)
    check(st.st_ino == ino and read('xb') == b'A', 'an exchange moved the file to disk or lost it')
    for n in ('xa', 'xa2', 'xa3', 'xb'):
        os.unlink(p(n))
    # a directory renamed with names of one file inside (the daemon moves every name below it)
    os.mkdir(p('dd'))
    with open(p('dd/x'), 'wb') as f:
        f.write(b'dir')
    os.link(p('dd/x'), p('dd/y'))
    os.link(p('dd/x'), p('outside'))
    os.rename(p('dd'), p('ee'))
    st = same_file(['ee/x', 'ee/y', 'outside'], 3)
    check(st.st_ino & IN_MEMORY, 'the directory rename moved the file to disk')
    os.unlink(p('ee/x'))
    same_file(['ee/y', 'outside'], 2)
    os.unlink(p('ee/y'))
    os.unlink(p('outside'))
    os.rmdir(p('ee'))
    # what the run writes back: two names of one file
    with open(p('kept'), 'wb') as f:
        f.write(b'kept')
    os.link(p('kept'), p('d/kept2'))


def evict():
    data = os.urandom(200_000)
    with open(p('x'), 'wb') as f:
        f.write(data)
    os.link(p('x'), p('y'))
    os.link(p('y'), p('z'))
    check(os.stat(p('x')).st_ino & IN_MEMORY, 'x did not start in memory')
    # push it out (least recently used, and closed): the budget (1M) holds a few of these
    os.utime(p('z'))  # a change through one name: ctime, not a use
    for k in range(12):
        with open(p('fill%d' % k), 'wb') as f:
            f.write(os.urandom(300_000))
    st = same_file(['x', 'y', 'z'], 3)
    check(not st.st_ino & IN_MEMORY, 'x is still in memory after the fill (st_ino %d)' % st.st_ino)
    for n in 'xyz':
        check(read(n) == data, '%s lost its bytes in the eviction' % n)
    fd = os.open(p('y'), os.O_RDWR)
    os.pwrite(fd, b'EVICTED', 0)
    os.close(fd)
    for n in 'xyz':
        check(read(n)[:7] == b'EVICTED', '%s does not see the write through y' % n)
    os.unlink(p('x'))
    same_file(['y', 'z'], 2)
    os.link(p('z'), p('w'))
    same_file(['y', 'z', 'w'], 3)


def takeover():
    with open(p('t1'), 'wb') as f:
        f.write(b'across the kill')
    os.link(p('t1'), p('t2'))
    os.link(p('t1'), p('t3'))
    ino = same_file(['t1', 't2', 't3'], 3).st_ino
    old = daemons()
    check(len(old) == 1, 'daemons: %r' % old)
    os.kill(old[0], signal.SIGKILL)
    deadline = time.time() + 20
    while time.time() < deadline:
        now = daemons()
        if now and now != old:
            break
        time.sleep(0.05)
    else:
        raise AssertionError('no new ephemerad within 20 s')
    st = same_file(['t1', 't2', 't3'], 3)
    check(st.st_ino == ino, 'the inode changed across the takeover (%d -> %d)' % (ino, st.st_ino))
    check(read('t2') == b'across the kill', 't2 reads %r' % read('t2'))
    os.unlink(p('t1'))  # through the new daemon's region: the first name goes, t2 takes over
    os.link(p('t3'), p('t4'))
    same_file(['t2', 't3', 't4'], 3)
    with open(p('t4'), 'ab') as f:
        f.write(b'!')
    check(read('t2') == b'across the kill!', 'after the takeover, t2 reads %r' % read('t2'))
    with open(p('after'), 'wb') as f:
        f.write(b'new')
    check(os.stat(p('after')).st_ino & IN_MEMORY, 'a new file after the takeover is not in memory')


def renames():
    def make(name, data):
        with open(p(name), 'wb') as f:
            f.write(data)
        return os.stat(p(name))

    def kept(name, st, nlink, data):
        now = os.stat(p(name))
        check(now.st_ino == st.st_ino, '%s: st_ino %d, was %d: the file left memory' % (name, now.st_ino, st.st_ino))
        check(now.st_ino & IN_MEMORY, '%s is not in memory' % name)
        check(now.st_nlink == nlink, '%s: st_nlink %d, want %d' % (name, now.st_nlink, nlink))
        check(read(name) == data, '%s reads %r, want %r' % (name, read(name), data))
        return now

    # an in-memory file over the own name of one with further names (the shim's record with two
    # paths): the source keeps its inode under the new name, the target's other names keep theirs
    t = make('t', b'target')
    os.link(p('t'), p('t2'))
    os.link(p('t'), p('t3'))
    s_ = make('s', b'source')
    time.sleep(0.01)
    os.rename(p('s'), p('t'))
    check(not os.path.exists(p('s')), 's still exists')
    kept('t', s_, 1, b'source')
    after = kept('t2', t, 2, b'target')
    kept('t3', t, 2, b'target')
    check(after.st_ctime_ns > t.st_ctime_ns, 'the target lost a name but its ctime did not move')
    for e in os.scandir(root):
        if e.name in ('t', 't2', 't3'):
            check(e.inode() == os.stat(p(e.name)).st_ino, 'readdir d_ino of %s differs from st_ino' % e.name)
    # again over the name that took over (t2 now holds the file's own name), with a further name
    # of another linked file as the source
    u = make('u', b'u')
    os.link(p('u'), p('u2'))
    os.rename(p('u2'), p('t2'))
    kept('t2', u, 2, b'u')
    kept('u', u, 2, b'u')
    kept('t3', t, 1, b'target')
    # a disk file over the own name of a file with further names: the daemon's rename
    d = make('d', b'linked')
    os.link(p('d'), p('d2'))
    disk = os.stat(p('ondisk'))
    check(not disk.st_ino & IN_MEMORY, 'ondisk is in memory: the test needs a disk file')
    os.rename(p('ondisk'), p('d'))
    now = os.stat(p('d'))
    check(now.st_ino == disk.st_ino and read('d') == b'from disk', 'd is not the disk file after the rename')
    kept('d2', d, 1, b'linked')
    # links through "..": refused by the walk (an in-memory file before "..", a missing
    # directory), the file stays in memory; allowed, the new name is made in memory
    os.mkdir(p('sub'))
    for target, err in (('t3/../x', 'ENOTDIR'), ('nope/../x', 'ENOENT'), ('sub/../t2/../y', 'ENOTDIR')):
        try:
            os.link(p('t3'), p(target))
            check(False, 'link to %s succeeded' % target)
        except OSError as e:
            check(e.errno == getattr(__import__('errno'), err), 'link to %s: %s, want %s' % (target, e, err))
        kept('t3', t, 1, b'target')
    os.link(p('t3'), p('sub/../t4'))
    kept('t4', t, 2, b'target')
    kept('t3', t, 2, b'target')


def linkrace():
    churn = os.fork()
    if churn == 0:
        code = 0
        try:
            for _ in range(3000):
                os.mkdir(p('churn'))
                os.rmdir(p('churn'))
        except BaseException:
            code = 1
        os._exit(code)
    try:
        for i in range(1500):
            with open(p('a'), 'wb') as f:
                f.write(b'link %d' % i)
            os.link(p('a'), p('b'))
            st = same_file(['a', 'b'], 2)
            check(st.st_ino & IN_MEMORY, 'round %d: the linked file is not in memory (st_ino %x)' % (i, st.st_ino))
            os.unlink(p('a'))
            os.unlink(p('b'))
    finally:
        _, status = os.waitpid(churn, 0)
    check(status == 0, 'the mkdir/rmdir loop failed: status %d' % status)


{'names': names, 'evict': evict, 'takeover': takeover, 'renames': renames, 'linkrace': linkrace}[mode]()
sys.exit(7)
