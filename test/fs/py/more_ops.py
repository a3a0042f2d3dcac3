# mmap writes read back through the file API, flock/lockf between processes and between two opens
# in one process, os.sendfile, shutil archives, tarfile with xz, os.replace onto open files, hard
# links.  Prints one line per check; test/fs/programs_more.test.mjs runs it on tmpfs and
# under the shim and compares the output.
import fcntl, hashlib, io, mmap, os, shutil, socket, subprocess, sys, tarfile, zipfile

os.chdir(sys.argv[1])
out = []


def h(p):
    with open(p, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


# mmap: writes through the mapping, a resize, then the file API sees them
with open('m.bin', 'wb') as f:
    f.write(b'\0' * 100000)
with open('m.bin', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 0)
    m[0:5] = b'hello'
    m[99990:100000] = b'0123456789'
    m.flush()
    f.seek(0)
    out.append(('mmap read back', f.read(5)))
    m.resize(200000)
    m[150000:150003] = b'abc'
    m.flush()
    m.close()
with open('m.bin', 'rb') as f:
    f.seek(150000)
    out.append(('mmap resize', os.stat('m.bin').st_size, h('m.bin'), f.read(3)))
with open('m2.bin', 'wb') as f:
    f.write(b'x' * 5000)
with open('m2.bin', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 5000, access=mmap.ACCESS_WRITE)
    f.seek(0, 2)
    f.write(b'tail')
    f.flush()
    m[0:1] = b'Y'
    m.close()
with open('m2.bin', 'rb') as f:
    c = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    c[0:1] = b'Z'
    c.close()
out.append(('mmap + append, ACCESS_COPY', h('m2.bin'), os.path.getsize('m2.bin')))

# locks: other processes, two opens in this process, dup, fork, exec, flock(1)
CHILD = '''
import fcntl, sys
f = open(sys.argv[1], 'r+')
try:
    (fcntl.flock if sys.argv[2] == 'flock' else fcntl.lockf)(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('got')
except OSError as e:
    print('busy', e.errno)
'''


def child(path, kind):
    return subprocess.run([sys.executable, '-c', CHILD, path, kind], capture_output=True, text=True).stdout.strip()


def nb(f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 'got'
    except OSError as e:
        return f'busy {e.errno}'


with open('lock', 'w') as f:
    f.write('x')
a = open('lock', 'r+')
fcntl.flock(a, fcntl.LOCK_EX)
out.append(('flock held: other process', child('lock', 'flock')))
fcntl.flock(a, fcntl.LOCK_UN)
out.append(('flock released: other process', child('lock', 'flock')))
fcntl.lockf(a, fcntl.LOCK_EX)
out.append(('lockf held: other process', child('lock', 'lockf')))
fcntl.lockf(a, fcntl.LOCK_UN)
out.append(('lockf released: other process', child('lock', 'lockf')))
b = open('lock', 'r+')
out.append(('flock: first open', nb(a)))
out.append(('flock: second open, same process', nb(b)))
d = os.fdopen(os.dup(a.fileno()))
out.append(('flock: dup of the first', nb(d)))
pid = os.fork()
if pid == 0:
    os.write(1, f"('flock: forked child, inherited fd / own open', '{nb(a)}', '{nb(open('lock'))}')\n".encode())
    os._exit(0)
os.waitpid(pid, 0)
fd = a.fileno()
os.set_inheritable(fd, True)
r = subprocess.run([sys.executable, '-c', f'import fcntl; fcntl.flock({fd}, fcntl.LOCK_EX | fcntl.LOCK_NB); print("got")'],
                   pass_fds=(fd,), capture_output=True, text=True)
out.append(('flock: exec child on the inherited fd', r.stdout.strip(), r.returncode))
out.append(('flock(1) while held', subprocess.run(['flock', '-n', 'lock', 'true']).returncode))
fcntl.flock(a, fcntl.LOCK_UN)
out.append(('flock(1) after release', subprocess.run(['flock', '-n', 'lock', 'true']).returncode))
fcntl.flock(a, fcntl.LOCK_SH)
fcntl.flock(b, fcntl.LOCK_SH | fcntl.LOCK_NB)
out.append(('shared + shared, then exclusive', nb(open('lock'))))
with open('lock', 'a') as w:
    w.write('yz')
out.append(('data through locked opens', a.read(), b.read(), os.path.getsize('lock')))
os.rename('lock', 'lock2')
out.append(('flock follows a rename', child('lock2', 'flock')))
for f in (a, b, d):
    f.close()

# sendfile: file to file (offset and current position), file to socket
with open('src.bin', 'wb') as f:
    f.write(bytes(range(256)) * 1000)
fi = os.open('src.bin', os.O_RDONLY)
fo = os.open('dst.bin', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n1 = os.sendfile(fo, fi, 1000, 100000)
n2 = os.sendfile(fo, fi, None, 5000)
out.append(('sendfile', n1, n2, os.lseek(fi, 0, os.SEEK_CUR), os.lseek(fo, 0, os.SEEK_CUR)))
os.close(fo)
s1, s2 = socket.socketpair()
n = os.sendfile(s1.fileno(), fi, 7, 3000)
s1.close()
data = b''
while True:
    chunk = s2.recv(65536)
    if not chunk:
        break
    data += chunk
os.close(fi)
out.append(('sendfile to a socket', h('dst.bin'), os.path.getsize('dst.bin'), n, hashlib.sha256(data).hexdigest()[:16]))

# shutil archives round trip; tarfile with xz, streamed
os.makedirs('tree/a/b')
for i in range(20):
    with open(f'tree/a/f{i}', 'wb') as f:
        f.write(bytes([i]) * (i * 1000))
with open('tree/a/b/z', 'w') as f:
    f.write('zz')


def listing(top):
    return sorted((os.path.relpath(r, top), sorted(ds), sorted((x, h(os.path.join(r, x))) for x in fs)) for r, ds, fs in os.walk(top))


want = listing('tree')
for fmt in ('zip', 'tar', 'gztar', 'bztar', 'xztar'):
    p = shutil.make_archive(f'arch-{fmt}', fmt, 'tree')
    shutil.unpack_archive(p, f'un-{fmt}')
    out.append(('shutil archive', fmt, listing(f'un-{fmt}') == want))
with tarfile.open('s.tar.xz', 'w:xz') as t:
    t.add('tree', arcname='tree')
    info = tarfile.TarInfo('mem.txt')
    blob = b'inline' * 1000
    info.size = len(blob)
    t.addfile(info, io.BytesIO(blob))
with tarfile.open('s.tar.xz', 'r:xz') as t:
    t.extractall('xz-out')
with tarfile.open('s.tar.xz', 'r|xz') as t:
    names = sorted(m.name for m in t)
out.append(('tarfile xz', len(names), names[:3], h('xz-out/mem.txt'), listing('xz-out/tree') == want))
with zipfile.ZipFile('z.zip', 'w') as z:
    z.writestr('a', 'A' * 1000)
with zipfile.ZipFile('z.zip', 'a') as z:
    z.writestr('b', 'B')
with zipfile.ZipFile('z.zip') as z:
    out.append(('zipfile append', z.namelist(), z.testzip()))

# os.replace onto files that are open and mapped
with open('tgt', 'w') as f:
    f.write('old contents')
r = open('tgt')
w = open('tgt', 'a')
with open('new', 'w') as f:
    f.write('new')
os.replace('new', 'tgt')
w.write('!')
w.close()
out.append(('replace onto open files', r.read(), open('tgt').read(), os.path.exists('new')))
r.close()
with open('mm', 'wb') as f:
    f.write(b'm' * 4096)
fm = open('mm', 'r+b')
mm = mmap.mmap(fm.fileno(), 0)
with open('mm.new', 'wb') as f:
    f.write(b'n' * 10)
os.replace('mm.new', 'mm')
out.append(('replace onto a mapped file', mm[:3], open('mm', 'rb').read()))
mm.close()
fm.close()
fd = os.open('gone', os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b'abc')
os.unlink('gone')
st = os.fstat(fd)
out.append(('fstat after unlink', st.st_nlink, st.st_size))
os.close(fd)

# hard links: shared data, link count, same inode, EEXIST; a fifo; copies
with open('l1', 'w') as f:
    f.write('one')
os.link('l1', 'l2')
with open('l2', 'a') as f:
    f.write('two')
out.append(('hard link', open('l1').read(), os.stat('l1').st_nlink, os.stat('l1').st_ino == os.stat('l2').st_ino))
try:
    os.link('l1', 'l2')
except OSError as e:
    out.append(('link onto an existing name', e.errno))
os.unlink('l1')
out.append(('after unlinking one name', os.stat('l2').st_nlink, open('l2').read()))
os.mkfifo('fifo')
out.append(('mkfifo', oct(os.stat('fifo').st_mode)))
with open('big', 'wb') as f:
    f.write(b'q' * 3_000_000)
shutil.copyfile('big', 'big2')
shutil.copy2('big', 'big3')
out.append(('copyfile/copy2', h('big2'), h('big3'), os.stat('big').st_mtime_ns == os.stat('big3').st_mtime_ns))
for x in out:
    print(x)
