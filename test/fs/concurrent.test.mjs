// Real programs with several processes at once, under a budget small enough that files are evicted
// while they are open, locked and being written.  Each script runs on a real tmpfs directory (the
// reference) and under `ephemera run --budget` with a managed root in its place; outputs must be
// identical, final contents are checked byte for byte, and every test asserts that evictions
// happened (otherwise nothing was tested).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, assertServedFromMemory, describe, runCmdOnTmpfsAndShim, runOnTmpfsAndShim, sameOnTmpfsAndShim } from './lib/harness.mjs';

/**
 * runOnTmpfsAndShim for a script that must be a file (multiprocessing's spawn and forkserver
 * children import the main module by path): it is written into the directory under test first.
 */
function runFileOnTmpfsAndShim(name, script, opts) {
  const boot = "import os, runpy, sys\np = os.path.join(sys.argv[1], 'main.py')\nopen(p, 'w').write(sys.argv[2])\nsys.argv = [p, sys.argv[1]]\nrunpy.run_path(p, run_name='__main__')";
  return runCmdOnTmpfsAndShim(name, PYTHON, (dir) => ['-c', boot, dir, script], opts);
}

function assertEvicted(t, stats, what) {
  assert.ok(stats.evictions > 0, `${what}: stats.evictions is ${stats.evictions}: no memory pressure, nothing tested`);
  t.diagnostic(`${what}: fast_reads=${stats.fast_reads} fast_writes=${stats.fast_writes} evictions=${stats.evictions} files_in_memory_peak=${stats.files_in_memory_peak}`);
}

// Workers of multiprocessing (fork, forkserver and spawn) append records to one shared file under
// flock, lockf or an OFD lock, bump a counter file inside the lock (a lost update shows as a count
// below the total), write their own files and churn scratch files; a reader re-reads everything
// while they run.  Before the fix, flock and OFD locks did not exclude forked workers at all: each
// worker's open was a dup of the parent's cached memfd fd, one open file description for all.
const LOCKS = String.raw`
import fcntl, hashlib, multiprocessing as mp, os, struct, sys
os.chdir(sys.argv[1])
N, K = 4, 60
KINDS = ('flock', 'lockf', 'ofd')
def rec(w, k):
    return ('%d:%04d:' % (w, k)).encode() + hashlib.sha256(b'%d/%d' % (w, k)).hexdigest().encode() * (1 + (w * 7 + k) % 20) + b'\n'
def lock(f, kind, on):
    if kind == 'flock':
        fcntl.flock(f, fcntl.LOCK_EX if on else fcntl.LOCK_UN)
    elif kind == 'lockf':
        fcntl.lockf(f, fcntl.LOCK_EX if on else fcntl.LOCK_UN)
    else:
        fcntl.fcntl(f, fcntl.F_OFD_SETLKW, struct.pack('hhqqi4x', fcntl.F_WRLCK if on else fcntl.F_UNLCK, 0, 0, 0, 0))
def worker(method, kind, w):
    own = open('own-%s-%s-%d' % (method, kind, w), 'wb')
    for k in range(K):
        r = rec(w, k)
        with open('shared-%s-%s' % (method, kind), 'ab') as f:
            lock(f, kind, True)
            try:
                inside = os.open('inside-%s-%s' % (method, kind), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(inside)
            except FileExistsError:
                print('overlap', method, kind, w, k, flush=True)
                os._exit(3)
            with open('counter-%s-%s' % (method, kind), 'r+b') as c:
                n = int(c.read() or b'0')
                c.seek(0)
                c.write(b'%08d' % (n + 1))
            f.write(r)
            f.flush()
            os.unlink('inside-%s-%s' % (method, kind))
            lock(f, kind, False)
        own.write(r * 3)
        own.flush()
        if k % 10 == 0:
            with open('scratch-%s-%s-%d' % (method, kind, w), 'wb') as s:
                s.write(os.urandom(40000))
    own.close()
def reader(method, stop, q):
    bad = 0
    while not stop.is_set():
        for kind in KINDS:
            with open('shared-%s-%s' % (method, kind), 'rb') as f:
                data = f.read()
            for line in data.split(b'\n')[:-1]:
                w, k, _ = line.split(b':', 2)
                bad += line + b'\n' != rec(int(w), int(k))
    q.put(bad)
if __name__ == '__main__':
    for method in ('fork', 'forkserver', 'spawn'):
        ctx = mp.get_context(method)
        for kind in KINDS:
            open('shared-%s-%s' % (method, kind), 'wb').close()
            open('counter-%s-%s' % (method, kind), 'wb').close()
        stop, q = ctx.Event(), ctx.Queue()
        r = ctx.Process(target=reader, args=(method, stop, q))
        r.start()
        ps = [ctx.Process(target=worker, args=(method, kind, w)) for kind in KINDS for w in range(N)]
        for p in ps: p.start()
        for p in ps: p.join()
        stop.set()
        print(method, 'torn lines seen by the reader', q.get())
        r.join()
        print(method, 'exit codes', [p.exitcode for p in ps], r.exitcode)
        for kind in KINDS:
            lines = open('shared-%s-%s' % (method, kind), 'rb').read().split(b'\n')[:-1]
            print(method, kind, len(lines), open('counter-%s-%s' % (method, kind), 'rb').read(),
                  sorted(l + b'\n' for l in lines) == sorted(rec(w, k) for w in range(N) for k in range(K)),
                  all([l for l in lines if l.startswith(b'%d:' % w)] == [rec(w, k)[:-1] for k in range(K)] for w in range(N)),
                  all(open('own-%s-%s-%d' % (method, kind, w), 'rb').read() == b''.join(rec(w, k) * 3 for k in range(K)) for w in range(N)))
`;

test('multiprocessing workers append under flock, lockf and OFD locks while files are evicted', async (t) => {
  const { tmpfs, shim, sc } = await runFileOnTmpfsAndShim('mp-locks', LOCKS, { budget: '300K' });
  const want = tmpfs.stdout.toString();
  for (const m of ['fork', 'forkserver', 'spawn']) {
    assert.match(want, new RegExp(`${m} exit codes \\[${Array(12).fill('0').join(', ')}\\] 0`));
    for (const k of ['flock', 'lockf', 'ofd']) assert.match(want, new RegExp(`${m} ${k} 240 b'00000240' True True True`));
  }
  assert.equal(shim.stdout.toString(), want, describe(shim));
  assertServedFromMemory(shim.stats, 'mp-locks');
  assertEvicted(t, shim.stats, 'mp-locks');
  sc.done();
});

// Programs a function runs side by side on its scratch directory.  `sort` bigger than its -S
// buffer puts its temporary files (mkstemp) in the root; split + `xargs -P2 gzip`; tar extracting
// many files while another process reads them back; `tar c` of a directory whose files are evicted
// while it reads them; `python3 -m compileall -j 2`.  Before the fix, `tar c` exited 1 with "src:
// file changed as we read it": the eviction's link of a file into src moved the directory's ctime.
const PROGRAMS = String.raw`
set -u
cd "$R"
python3 -c "
import random
r = random.Random(7)
with open('in.txt', 'w') as f:
    for i in range(60000): f.write('%08d %s\n' % (r.randrange(10**8), 'x' * r.randrange(40)))
"
mkdir -p tmp
sort -S 64K -T "$R/tmp" --parallel=2 in.txt > sorted.txt &
sort -S 64K -T "$R/tmp" -r -k2 in.txt > rsorted.txt &
wait
sort -c sorted.txt && echo sorted ok; md5sum sorted.txt rsorted.txt; ls tmp | wc -l
split -b 100000 -d -a 3 in.txt part.
ls part.* | xargs -P2 -n3 gzip -9
ls part.* | head -3; zcat $(ls part.*.gz | sort) | cmp - in.txt && echo split gzip ok
ls part.*.gz | xargs -P2 -n2 gunzip
cat $(ls part.* | sort) | md5sum
mkdir src && for i in $(seq 1 120); do head -c $((i * 997)) in.txt > src/f$i; done
stat -c '%y %z' src > times.before
mkdir other && for i in $(seq 1 8); do head -c 100000 in.txt > other/p$i; done
stat -c '%y %z' src | cmp - times.before && echo directory times kept
tar cf t.tar src; echo "tar c exit $?"
touch src/new && stat -c '%y %z' src | cmp -s - times.before || echo a real change shows
rm -rf src
( tar xf t.tar ) &
python3 - <<'PY' &
import os, time
whole = open('in.txt', 'rb').read()
seen = set()
deadline = time.time() + 30
while time.time() < deadline and len(seen) < 120:
    for i in range(1, 121):
        try:
            with open('src/f%d' % i, 'rb') as f:
                b = f.read()
        except FileNotFoundError:
            continue
        assert whole[:len(b)] == b, i
        if len(b) == i * 997:
            seen.add(i)
print('reader saw', len(seen))
PY
wait
for i in $(seq 1 120); do head -c $((i * 997)) in.txt | cmp - src/f$i || echo BAD $i; done; echo tar x done
mkdir -p pkg/sub && for i in $(seq 1 30); do printf 'X = %d\ndef f():\n    return X * 2\n' $i > pkg/m$i.py; done
printf 'from . import m1\n' > pkg/__init__.py; cp pkg/m1.py pkg/sub/__init__.py
python3 -m compileall -q -j 2 pkg && ls pkg/__pycache__ | wc -l
python3 -c "import sys; sys.path.insert(0, '.'); import pkg.m7, pkg.sub; print(pkg.m7.f(), pkg.sub.X, pkg.m7.__cached__.split('/')[-1])"
`;

test('sort -T, split + xargs -P2 gzip, tar c/x with a concurrent reader, compileall -j 2, under a 300K budget', async (t) => {
  const { out, stats } = await sameOnTmpfsAndShim(t, 'programs', '', { argv: (dir) => ['-c', PROGRAMS, 'bash', dir], budget: '300K' });
  for (const line of ['sorted ok', 'split gzip ok', 'directory times kept', 'tar c exit 0', 'a real change shows', 'reader saw 120', 'tar x done', '14 1 m7.cpython-311.pyc'])
    assert.ok(out.includes(line), `the runs lack "${line}": ${out}`);
  assertEvicted(t, stats, 'programs');
});

// Three Python sqlite3 processes and the sqlite3 CLI insert into one database in the root at once
// (BEGIN IMMEDIATE, busy_timeout), in rollback-journal and in WAL mode, while each writer churns
// its own files; the database outgrows the budget.  Then a writer is SIGKILLed inside a large
// transaction while other files push the budget: the next connection must roll the hot journal
// back (or ignore the uncommitted WAL frames) and find the database intact.
const SQLITE = String.raw`
import os, signal, sqlite3, subprocess, sys
os.chdir(sys.argv[1])
W = '''
import os, sqlite3, sys
w, db = int(sys.argv[1]), sys.argv[2]
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute('PRAGMA busy_timeout=60000')
for k in range(40):
    c.execute('BEGIN IMMEDIATE')
    for j in range(5):
        c.execute('insert into t values (?,?,?,?)', (w, k * 5 + j, w * 1000 + k * 5 + j, bytes([w]) * 1500))
    c.execute('COMMIT')
    with open('own-%s-%d-%d' % (db, w, k % 4), 'wb') as f:
        f.write(os.urandom(60000))
'''
for mode in ('delete', 'wal'):
    db = 'db-' + mode
    c = sqlite3.connect(db)
    c.execute('PRAGMA journal_mode=%s' % mode)
    c.execute('create table t(w int, i int, v int, pad blob)')
    c.commit()
    c.close()
    procs = [subprocess.Popen([sys.executable, '-c', W, str(w), db]) for w in range(3)]
    sql = 'PRAGMA busy_timeout=60000;\n' + ''.join('BEGIN IMMEDIATE;\n' + ''.join(
        'insert into t values (9,%d,%d,zeroblob(1500));\n' % (k * 5 + j, 9000 + k * 5 + j) for j in range(5)) + 'COMMIT;\n' for k in range(40))
    cli = subprocess.run(['sqlite3', db], input=sql, text=True, capture_output=True)
    print(mode, 'exit codes', [p.wait() for p in procs], cli.returncode, cli.stderr)
    c = sqlite3.connect(db)
    print(mode, c.execute('PRAGMA integrity_check').fetchall(), c.execute('select count(*), sum(v), count(distinct w) from t').fetchall(),
          c.execute('select w, count(*), min(i), max(i), sum(i) from t group by w order by w').fetchall())
    c.close()
VICTIM = '''
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
c.execute('BEGIN IMMEDIATE')
c.execute('update t set v = v + 1000000, pad = randomblob(2500)')
c.execute('insert into t select w + 100, i, v, pad from t')
print('inside', flush=True)
sys.stdin.readline()
'''
for mode in ('delete', 'wal'):
    db = 'db-' + mode
    p = subprocess.Popen([sys.executable, '-c', VICTIM, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'inside'
    keep = []
    for i in range(6):
        f = open('push-%s-%d' % (mode, i), 'wb')
        f.write(os.urandom(150000))
        f.flush()
        keep.append(f)
    p.send_signal(signal.SIGKILL)
    p.wait()
    print(mode, 'killed', p.returncode, sorted(x for x in os.listdir('.') if x.startswith(db)))
    c = sqlite3.connect(db, timeout=60, isolation_level=None)
    print(mode, 'after kill', c.execute('PRAGMA integrity_check').fetchall(), c.execute('select count(*), sum(v) from t').fetchall())
    c.execute('insert into t values (-1, -1, -1, x\'00\')')
    print(mode, 'writable', c.execute('select count(*), sum(v) from t').fetchall())
    c.close()
    print(mode, sorted(x for x in os.listdir('.') if x.startswith(db)))
`;

test('sqlite3: four writers at once (Python and the CLI), journal and WAL, then a writer SIGKILLed mid-transaction, under a 300K budget', async (t) => {
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('sqlite', SQLITE, { budget: '300K' });
  const want = tmpfs.stdout.toString();
  for (const m of ['delete', 'wal']) {
    assert.match(want, new RegExp(`${m} exit codes \\[0, 0, 0\\] 0 \n`));
    assert.match(want, new RegExp(`${m} \\[\\('ok',\\)\\] \\[\\(800, 2479600, 4\\)\\]`));
    assert.match(want, new RegExp(`${m} after kill \\[\\('ok',\\)\\] \\[\\(800, 2479600\\)\\]`));
  }
  assert.equal(shim.stdout.toString(), want, describe(shim));
  assertServedFromMemory(shim.stats, 'sqlite');
  assertEvicted(t, shim.stats, 'sqlite');
  sc.done();
});

// A flock()ed file stays in memory while the lock is held (it lives on the memfd) and goes back to
// being evictable once unlocked.  Before, flock() pinned the file for the rest of its life, so a
// lock file or a dbm database that was ever flock()ed could never give its memory back.
const FLOCK_RELEASE = String.raw`
import fcntl, os, subprocess, sys, time
os.chdir(sys.argv[1])
PROBE = 'import fcntl,sys\ntry:\n fcntl.flock(open(sys.argv[1],"rb"), fcntl.LOCK_EX|fcntl.LOCK_NB); print("got")\nexcept OSError as e: print("busy", e.errno)'
def probe(n):
    return subprocess.run([sys.executable, '-c', PROBE, n], capture_output=True, text=True).stdout.strip()
def pressure(first, n):
    for i in range(first, first + n):
        with open('big%d' % i, 'wb') as f:
            f.write(os.urandom(150000))
out = []
with open('L', 'wb') as f:
    f.write(b'l' * 300000)
g = open('L', 'rb')
fcntl.flock(g, fcntl.LOCK_EX)
time.sleep(1.2)  # L is the least recently used file from here on
pressure(0, 8)
out.append(('held through pressure', probe('L'), g.read(3)))
fcntl.flock(g, fcntl.LOCK_UN)
g.close()
time.sleep(1.2)
pressure(8, 8)
out.append(('released', probe('L'), open('L', 'rb').read() == b'l' * 300000))
print(out)
# In-memory files report an inode number tagged with bit 44 (EPH_INO_TAG); tmpfs's never have it.
print('L still in memory after the lock was released and other files pushed', os.stat('L').st_ino >= 1 << 44)
`;

test('a flock()ed file stays in memory while locked and can be evicted once unlocked (600K budget)', async (t) => {
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('flock-release', FLOCK_RELEASE, { budget: '600K' });
  const want = tmpfs.stdout.toString();
  assert.match(want, /\('held through pressure', 'busy 11', b'lll'\), \('released', 'got', True\)/);
  assert.match(want, /pushed False/);
  assert.equal(shim.stdout.toString(), want, describe(shim));
  assertEvicted(t, shim.stats, 'flock-release');
  sc.done();
});

// Temporary files in the root, by the programs' own means: SQLite's (SQLITE_TMPDIR) for VACUUM,
// VACUUM INTO and the backup API; Python's TemporaryFile (O_TMPFILE) and NamedTemporaryFile in a
// process pool; `sort --compress-program=gzip` with its children inheriting the temp files.
const TEMPFILES = String.raw`
cd "$R"
export SQLITE_TMPDIR="$R" TMPDIR="$R"
python3 - <<'PY'
import sqlite3, os
c = sqlite3.connect('v.db')
c.execute('create table t(i integer primary key, pad blob)')
c.executemany('insert into t values(?, ?)', ((i, bytes([i % 251]) * 3000) for i in range(400)))
c.commit()
c.execute('delete from t where i % 3 = 0'); c.commit()
c.execute('create index ix on t(pad)')
c.execute('VACUUM'); c.execute("VACUUM INTO 'v2.db'")
b = sqlite3.connect('v3.db'); c.backup(b); b.close()
for n in ('v.db', 'v2.db', 'v3.db'):
    d = sqlite3.connect(n)
    print(n, d.execute('pragma integrity_check').fetchone(), d.execute('select count(*), sum(length(pad)), sum(i) from t').fetchone())
PY
python3 - <<'PY'
import tempfile, os, multiprocessing as mp, hashlib
def w(k):
    hs = []
    for j in range(20):
        with tempfile.TemporaryFile() as f:
            data = hashlib.sha256(b'%d-%d' % (k, j)).digest() * (2000 + j * 50)
            f.write(data); f.flush()
            with tempfile.NamedTemporaryFile(delete=True) as g:
                g.write(data[::-1]); g.flush(); g.seek(0)
                f.seek(0)
                hs.append(hashlib.sha256(f.read() + g.read()).hexdigest()[:8])
    return hs
with mp.Pool(3) as p: r = p.map(w, range(6))
print(hashlib.sha256(repr(r).encode()).hexdigest()[:16])
PY
seq 1 200000 | shuf --random-source=<(yes) > s.txt
sort -n -S 100K -T "$R" --compress-program=gzip s.txt | md5sum
ls "$R" | grep -v -e '^v' -e '^s.txt' | wc -l
`;

test('temporary files: sqlite VACUUM/backup, tempfile in a Pool, sort --compress-program, under a 300K budget', async (t) => {
  const { out, stats } = await sameOnTmpfsAndShim(t, 'tempfiles', '', { argv: (dir) => ['-c', TEMPFILES, 'bash', dir], budget: '300K' });
  assert.match(out, /v3\.db \('ok',\) \(266, 798000, 53067\)/);
  assertEvicted(t, stats, 'tempfiles');
});
