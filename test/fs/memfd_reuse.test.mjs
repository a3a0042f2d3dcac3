// A freed file's memfd serves a later file twice over: the daemon gives it to a later file
// (daemon/namespace.c, ns_stock_recycle; docs/ARCHITECTURE.md, "Closer to tmpfs's time"), and a
// process that unlinks a file it made keeps the slot and memfd, with a small file's pages, for its
// own next create, when it unlinks the file or renames another over it (shim/nsfast.c, homes; "A
// create without the /proc open").  Nothing of the old
// file may show through: not its bytes (also not in a hole the new file makes by growing, by a
// write past the end or through a mapping), not its size, not an extended attribute, and not its
// inode number (tmpfs gives every file a new one; git and find compare them).
// The workload makes files with contents and xattrs, deletes them, lets the daemon's 20 ms reclaim
// tick run, then makes more files in rounds of 40 (more than the shim keeps as homes, so that the
// daemon's reused memfds come too), fills each with a secret of its own before deleting it, and
// checks every new file against what tmpfs would show.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, describe, ephemeraRun, scratch } from './lib/harness.mjs';

const WORKLOAD = `
import json, mmap, os, sys, time
root = sys.argv[1]
old = {}
for i in range(200):
    p = os.path.join(root, 'old%d' % i)
    with open(p, 'wb') as f:
        f.write(b'secret-%d-' % i * 100)
    if i % 2 == 0:
        os.setxattr(p, 'user.tag', b'old')
    old[os.stat(p).st_ino] = i
for i in range(200):
    os.unlink(os.path.join(root, 'old%d' % i))
time.sleep(0.3)   # the daemon's reclaim tick (20 ms) frees the files and keeps their memfds
bad, reused, homed, inos = [], 0, 0, set()
gone = {}   # low 32 bits of st_ino (the memfd) -> st_ino of every deleted new file that had it
for r in range(10):
    names = []
    for i in range(r * 40, r * 40 + 40):
        p = os.path.join(root, 'new%d' % i)
        names.append(p)
        fd = os.open(p, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if i % 2 else os.O_EXCL), 0o644)
        st = os.fstat(fd)
        if st.st_size != 0: bad.append('%s: size %d at birth' % (p, st.st_size))
        if os.read(fd, 100) != b'': bad.append('%s: read data at birth' % p)
        if os.listxattr(p): bad.append('%s: xattrs %r at birth' % (p, os.listxattr(p)))
        if st.st_ino in old: bad.append('%s: st_ino %d of deleted old%d' % (p, st.st_ino, old[st.st_ino]))
        if st.st_ino in inos: bad.append('%s: st_ino %d given twice' % (p, st.st_ino))
        inos.add(st.st_ino)
        if any((st.st_ino & 0xffffffff) == (o & 0xffffffff) for o in old): reused += 1
        if (st.st_ino & 0xffffffff) in gone: homed += 1
        if i % 3 == 0:
            os.write(fd, b'x' * 10)
            os.ftruncate(fd, 4096)   # a hole after the 10 bytes must read as zeros
            got = os.pread(fd, 8192, 0)
            want = b'x' * 10 + bytes(4086)
        elif i % 3 == 1:
            os.pwrite(fd, b'y' * 10, 100)   # a write past the end: the 100 bytes before it are zeros
            got = os.pread(fd, 8192, 0)
            want = bytes(100) + b'y' * 10
        else:
            os.ftruncate(fd, 3000)   # grown, then seen through a mapping: zeros to the page's end
            m = mmap.mmap(fd, 3000)
            got = m[:3000]
            m.close()
            want = bytes(3000)
        if got != want: bad.append('%s: read %r... where tmpfs has %r...' % (p, got[:40], want[:40]))
        os.pwrite(fd, (b'secret-new-%d-' % i) * 300, 0)   # what the next file on this memfd must not see
        if i % 5 == 0:
            os.setxattr(p, 'user.tag', b'new')
        os.close(fd)
    for k, p in enumerate(names):
        if k % 4 == 0:   # replaced by a rename over it: its slot and memfd are freed (or kept) too
            q = p + '.new'
            with open(q, 'wb') as f:
                f.write(b'replacement-%d-' % k * 200)
            gone[os.stat(p).st_ino & 0xffffffff] = True
            os.rename(q, p)
        gone[os.stat(p).st_ino & 0xffffffff] = True
        os.unlink(p)
print(json.dumps({'bad': bad[:10], 'nbad': len(bad), 'reused': reused, 'homed': homed}), flush=True)
`;

test('a file made on a reused memfd shows nothing of the deleted file that had it', { timeout: 60_000 }, async () => {
  const s = scratch('memfd_reuse');
  const root = s.sub('root');
  const r = await ephemeraRun({ root, budget: '256M', cmd: PYTHON, args: ['-c', WORKLOAD, root], timeoutMs: 50_000 });
  assert.equal(r.status, 0, describe(r));
  const out = JSON.parse(r.stdout.toString());
  assert.ok(r.stats.files_created >= 600 && r.stats.files_on_disk === 0, `the files were made in memory: ${JSON.stringify(r.stats)}`);
  // The memfd's own number is the low 32 bits of st_ino: a new file there is proof that the
  // daemon reused a deleted file's memfd, so that the checks above said something.
  assert.ok(out.reused > 0, `no new file got a deleted file's memfd (nothing was reused): ${r.stdout}`);
  // And a memfd a deleted new file had, kept by the shim as a home (or reused by the daemon).
  assert.ok(out.homed > 0, `no new file got a memfd an earlier new file had: ${r.stdout}`);
  assert.deepEqual(out.bad, [], `${out.nbad} checks failed`);
  s.done();
});
