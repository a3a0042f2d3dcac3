// inotify on in-memory files (issue 9 item 6; docs/ARCHITECTURE.md, Shim, "inotify").  A watcher
// process and a writer process, both under the shim: the events the watcher reads (mask, name,
// cookies paired) must be those tmpfs gives for the same operations, for a directory watch and a
// file watch, read by a Python ctypes watcher (the way watchdog and inotify_simple call libc) and by
// Debian's inotifywait.  And `tail -f` of an in-memory file follows another process's appends with
// inotify, not by polling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';

import { PYTHON, cleanEnv, describe, ephemeraRun, run, scratch, tmpfsScratch } from './lib/harness.mjs';

// The watcher: `label=path` arguments, one watch each, IN_ALL_EVENTS but IN_ACCESS (reads are not
// reported for in-memory files; the writer below reads nothing).  Prints `ready`, then one line per
// event: label, mask names, the cookie as the order of its first appearance, the name.  Ends at the
// directory watch's IN_CREATE of zz-end, or after 20 s.
const WATCHER = String.raw`
import ctypes, os, select, struct, sys, time
# libc's own handle, as watchdog's fallback and inotify_simple load it (find_library('c') itself
# runs the static ldconfig, and exec of a static program moves every in-memory file to disk first).
libc = ctypes.CDLL('libc.so.6', use_errno=True)
NAMES = [(0x1,'ACCESS'),(0x2,'MODIFY'),(0x4,'ATTRIB'),(0x8,'CLOSE_WRITE'),(0x10,'CLOSE_NOWRITE'),(0x20,'OPEN'),
         (0x40,'MOVED_FROM'),(0x80,'MOVED_TO'),(0x100,'CREATE'),(0x200,'DELETE'),(0x400,'DELETE_SELF'),
         (0x800,'MOVE_SELF'),(0x8000,'IGNORED'),(0x40000000,'ISDIR')]
fd = libc.inotify_init1(os.O_NONBLOCK)
labels = {}
for arg in sys.argv[1:]:
    label, path = arg.split('=', 1)
    wd = libc.inotify_add_watch(fd, path.encode(), 0xfff & ~0x1)
    if wd < 0:
        print('add_watch', path, os.strerror(ctypes.get_errno()), flush=True)
        sys.exit(1)
    labels[wd] = label
print('ready', flush=True)
cookies = {}
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    r, _, _ = select.select([fd], [], [], 1)
    if not r:
        continue
    buf = os.read(fd, 65536)
    off = 0
    while off < len(buf):
        wd, mask, cookie, ln = struct.unpack_from('iIII', buf, off)
        name = buf[off + 16:off + 16 + ln].rstrip(b'\0').decode()
        off += 16 + ln
        if cookie:
            cookies.setdefault(cookie, 'c%d' % (len(cookies) + 1))
        ms = ','.join(n for b, n in NAMES if mask & b)
        print(labels.get(wd, '?'), ms, cookies.get(cookie, '-'), name or '.', flush=True)
        if labels.get(wd) == 'dir' and mask & 0x100 and name == 'zz-end':
            sys.exit(0)
print('timeout', flush=True)
sys.exit(2)
`;

// The writer: what programs do to files, in another process.  Nothing is read (IN_ACCESS).
// Wherever tmpfs sends an event to a directory watch and to a file watch, both are compared.
const WRITER = String.raw`
import os, subprocess, sys
os.chdir(sys.argv[1])
fd = os.open('f1', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'a' * 10)
os.write(fd, b'b' * 5000)
os.close(fd)
with open('f1', 'ab') as f:
    f.write(b'line\n')
os.close(os.open('f1', os.O_RDONLY))
os.truncate('f1', 3)
os.chmod('f1', 0o600)
os.utime('f1', (1, 2))
os.utime('f1')
fd = os.open('f1', os.O_WRONLY | os.O_TRUNC)
os.ftruncate(fd, 100)
os.close(fd)
os.rename('f1', 'f2')
with open('f3', 'w') as f:
    f.write('three')
os.rename('f3', 'f2')
os.mkdir('sub')
os.rename('f2', 'sub/f4')
with open('sub/f5', 'w') as f:
    f.write('five')
os.rename('sub/f5', 'back')
with open('watched', 'a') as f:
    f.write('more\n')
os.chown('watched', os.getuid(), os.getgid())
os.rename('watched', 'watched2')
with open('watched2', 'a') as f:
    f.write('again\n')
os.mkdir('far')
os.rename('watched2', 'far/w3')
with open('far/w3', 'a') as f:
    f.write('far away\n')
os.unlink('far/w3')
os.rmdir('far')
os.mkdir('o2')
with open('o2/x', 'w') as f:
    f.write('from a directory nobody watches')
os.rename('o2/x', 'x2')
os.unlink('x2')
os.rmdir('o2')
os.unlink('sub/f4')
os.rmdir('sub')
subprocess.run(['sh', '-c', 'echo one > g; echo two >> g; mv g h; rm h'], check=True)
os.unlink('back')
os.mkdir('empty')  # made and removed in memory (shim/nsdir.c): no disk twin
os.rmdir('empty')
with open('wd/inner', 'w') as f:  # wd was made in memory and then watched
    f.write('in a watched directory that was made in memory')
os.unlink('wd/inner')
os.close(os.open('zz-end', os.O_CREAT | os.O_WRONLY, 0o644))
`;

// Start the watchers, wait for them to be ready, run the writer, collect what they saw.  The setup,
// a JSON argument: files to write ('first\n') and directories to make in d before watching (under
// the shim, in memory), the watches ({label: path in d, '' for d itself}), and whether inotifywait
// watches d too.
const DRIVER = String.raw`
import json, os, subprocess, sys, time
d, watcher, writer, setup = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
for name in setup['files']:
    with open(d + '/' + name, 'w') as f:
        f.write('first\n')
for name in setup['dirs']:
    os.mkdir(d + '/' + name)
py = subprocess.Popen([sys.executable, '-c', watcher] + ['%s=%s' % (label, os.path.join(d, rel) if rel else d) for label, rel in setup['watch'].items()],
                      stdout=subprocess.PIPE, text=True)
iw = setup['inotifywait'] and subprocess.Popen(
    ['inotifywait', '-m', '-e', 'modify,close_write,close_nowrite,open,moved_from,moved_to,create,delete',
     '--format', '%e %f', d], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    first = py.stdout.readline().strip()
    if first != 'ready':
        raise SystemExit('python watcher: ' + first)
    deadline = time.monotonic() + 10
    while iw and 'Watches established' not in iw.stderr.readline():
        if time.monotonic() > deadline or iw.poll() is not None:
            raise SystemExit('inotifywait did not start')
    subprocess.run([sys.executable, '-c', writer, d], check=True, timeout=20)
    out, _ = py.communicate(timeout=25)
    lines = []
    deadline = time.monotonic() + 10
    while iw and time.monotonic() < deadline:
        line = iw.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.strip() == 'CREATE zz-end':
            break
    print(json.dumps({'python': out.splitlines(), 'status': py.returncode, 'inotifywait': lines}))
finally:
    for p in (py, iw):
        if p and p.poll() is None:
            p.kill()
            p.wait()
`;

// The kernel merges an event with the one before it in the queue when they are identical and the
// first has not been read yet, so how many of a run of identical events a reader sees depends on
// when it reads: compare the runs, not their lengths.
const runs = (lines) => lines.filter((l, i) => i === 0 || l !== lines[i - 1]);

function parse(r, what) {
  assert.equal(r.status, 0, `${what}: ${describe(r)}`);
  const out = JSON.parse(r.stdout.toString().trim().split('\n').at(-1));
  return { ...out, python: runs(out.python), inotifywait: runs(out.inotifywait) };
}

/**
 * The driver with `writer` and `setup` on tmpfs, then under the shim, each in a fresh directory
 * with the disk directories `diskDirs` made first.  The reference must have every event in `musts`
 * (else the comparison would prove little).  Returns both runs' events and the shim run's stats.
 * (The working directory is elsewhere: Python lists its own at start-up, and the open of the
 * watched directory itself is not reported for in-memory directories' shadows.)
 */
async function onTmpfsAndShim(name, writer, setup, { musts, diskDirs = [] }) {
  const args = (d) => ['-c', DRIVER, d, WATCHER, writer, JSON.stringify(setup)];
  const ref = tmpfsScratch(name);
  let tmpfs;
  try {
    for (const dir of diskDirs) mkdirSync(`${ref.dir}/${dir}`);
    tmpfs = parse(await run(PYTHON, args(ref.dir), { env: cleanEnv(), cwd: '/', timeoutMs: 60_000 }), 'on tmpfs');
  } finally {
    ref.done();
  }
  assert.equal(tmpfs.status, 0, `the reference watcher on tmpfs: ${tmpfs.python.join('\n')}`);
  for (const ev of musts) assert.ok(tmpfs.python.includes(ev), `tmpfs gave no "${ev}": ${tmpfs.python.join('\n')}`);

  const sc = scratch(name);
  const root = sc.sub('root');
  for (const dir of diskDirs) mkdirSync(`${root}/${dir}`);
  const r = await ephemeraRun({ root, cmd: PYTHON, args: args(root), cwd: '/', statsDir: sc.dir, timeoutMs: 60_000 });
  const shim = parse(r, 'under the shim');
  assert.deepEqual(shim.python, tmpfs.python, 'the ctypes watcher read other events under the shim than on tmpfs');
  return { tmpfs, shim, stats: r.stats, done: () => sc.done() };
}

test('a directory watch and a file watch see what tmpfs gives, for changes by another process', { timeout: 90_000 }, async () => {
  // wd: under the shim a directory made in memory, which its watch must see
  const setup = { files: ['watched'], dirs: ['wd'], watch: { dir: '', file: 'watched', wd: 'wd' }, inotifywait: true };
  const musts = ['dir CREATE,ISDIR - empty', 'dir DELETE,ISDIR - empty', 'wd CREATE - inner', 'wd DELETE - inner', 'dir MOVED_FROM c6 watched2', 'dir MOVED_TO c7 x2', 'dir CREATE - f1', 'dir MODIFY - f1', 'dir CLOSE_WRITE - f1', 'dir ATTRIB - f1', 'dir DELETE - back', 'file MODIFY - .', 'file ATTRIB - .', 'file MOVE_SELF - .', 'file DELETE_SELF - .'];
  const { tmpfs, shim, stats, done } = await onTmpfsAndShim('inotify', WRITER, setup, { musts });
  assert.ok(tmpfs.python.includes('dir MOVED_FROM c1 f1') && tmpfs.python.includes('dir MOVED_TO c1 f2'), tmpfs.python.join('\n'));
  assert.deepEqual(shim.inotifywait, tmpfs.inotifywait, 'inotifywait printed other events under the shim than on tmpfs');
  // ...and the files were in memory, where the kernel sees no names: the events came from the shim.
  assert.ok(stats.files_created >= 6, `files not created in memory: ${JSON.stringify(stats)}`);
  // ...and so were directories (wd, empty, and those that got a twin later), without the daemon.
  assert.ok(stats.dirs_made_in_memory >= 2, `directories not made in memory: ${JSON.stringify(stats)}`);
  done();
});

test('tail -f of an in-memory file follows appends by another process with inotify', { timeout: 60_000 }, async () => {
  const sc = scratch('inotify_tail');
  const root = sc.sub('root');
  const script = String.raw`
import subprocess, sys, time
log = sys.argv[1] + '/app.log'
with open(log, 'w') as f:
    f.write('one\n')
tail = subprocess.Popen(['tail', '-n', '+1', '-f', log], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
try:
    assert tail.stdout.readline() == 'one\n'
    # (a line tail does not print keeps readline waiting: ephemeraRun's bound stops the run)
    for line in ('two', 'three'):
        subprocess.run(['sh', '-c', 'echo %s >> %s' % (line, log)], check=True)
        got = tail.stdout.readline()
        assert got == line + '\n', (line, got)
finally:
    tail.kill()
    _, err = tail.communicate(timeout=10)
print('stderr:' + err.replace('\n', '|'))
`;
  const r = await ephemeraRun({ root, cmd: PYTHON, args: ['-c', script, root], statsDir: sc.dir, timeoutMs: 40_000 });
  assert.equal(r.status, 0, describe(r));
  const err = r.stdout.toString();
  // Where inotify_add_watch fails, tail says so and polls once a second instead.
  assert.doesNotMatch(err, /inotify cannot be used|reverting to polling/, err);
  assert.ok(r.stats.files_created >= 1, JSON.stringify(r.stats));
  sc.done();
});

test('with nothing watched no shadow directory is made', { timeout: 30_000 }, async () => {
  const sc = scratch('inotify_none');
  const root = sc.sub('root');
  const r = await ephemeraRun({
    root,
    cmd: 'sh',
    args: ['-c', `echo x > ${root}/a && rm ${root}/a && ls "$(dirname "$EPHEMERA_SOCK")"`],
    statsDir: sc.dir,
  });
  assert.equal(r.status, 0, describe(r));
  assert.doesNotMatch(r.stdout.toString(), /inotify/, 'a shadow tree exists though nothing was watched');
  sc.done();
});

test('a shadow stays while watched and goes once its watcher has left; a new watch works after', { timeout: 60_000 }, async () => {
  const sc = scratch('inotify_gc');
  const root = sc.sub('root');
  // The daemon looks every 2 s and drops a shadow found unwatched twice in a row.
  const script = String.raw`
import glob, os, subprocess, sys, time
d = sys.argv[1]
shadows = lambda: glob.glob(os.path.dirname(os.environ['EPHEMERA_SOCK']) + '/inotify/' + '[0-9a-f]' * 16)
with open(d + '/f', 'w') as f:
    f.write('x')
def watch():
    w = subprocess.Popen(['inotifywait', '-m', '-e', 'modify', '--format', '%e %f', d],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while 'Watches established' not in w.stderr.readline():
        pass
    return w
def modified(w):
    subprocess.run(['sh', '-c', 'echo y >> ' + d + '/f'], check=True)
    return w.stdout.readline().strip()
w = watch()
time.sleep(5)
print('watched for 5 s:', len(shadows()), modified(w))
w.kill(); w.wait()
deadline = time.monotonic() + 15
while shadows() and time.monotonic() < deadline:
    time.sleep(0.2)
print('after the watcher left:', len(shadows()))
w = watch()
print('watched again:', len(shadows()), modified(w))
w.kill(); w.wait()
`;
  const r = await ephemeraRun({ root, cmd: PYTHON, args: ['-c', script, root], statsDir: sc.dir, timeoutMs: 45_000 });
  assert.equal(r.status, 0, describe(r));
  assert.equal(r.stdout.toString(), 'watched for 5 s: 1 MODIFY f\nafter the watcher left: 0\nwatched again: 1 MODIFY f\n', describe(r));
  sc.done();
});

// Names made by link in memory (shim/nslink.c): the new name's IN_CREATE, writes through every name
// (IN_MODIFY on its directory's watch and on the file's), the count of links the file's watch sees
// change (IN_ATTRIB), and the unlink of each further name, as tmpfs gives them. `other` is a disk
// directory made before (a link into a directory made in memory moves the file to disk).
const LINK_WRITER = String.raw`
import os, sys
os.chdir(sys.argv[1])
os.link('orig', 'l1')
os.link('orig', 'other/l2')
os.link('orig', 'unwatched/l4')
with open('l1', 'a') as f:
    f.write('through l1\n')
with open('other/l2', 'a') as f:
    f.write('through l2\n')
with open('orig', 'a') as f:
    f.write('through orig\n')
fd = os.open('unwatched/l4', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'through l4\n')
os.close(fd)
os.truncate('l1', 4)
os.unlink('l1')
os.unlink('other/l2')
os.unlink('unwatched/l4')
os.link('orig', 'l3')
os.unlink('orig')
with open('l3', 'a') as f:
    f.write('through l3\n')
os.rename('l3', 'other/l5')
os.unlink('other/l5')
os.close(os.open('zz-end', os.O_CREAT | os.O_WRONLY, 0o644))
`;

test('names made by in-memory hard links: IN_CREATE, IN_MODIFY through every name, IN_ATTRIB and IN_DELETE as on tmpfs', { timeout: 90_000 }, async () => {
  const setup = { files: ['orig'], dirs: [], watch: { dir: '', file: 'orig', other: 'other' }, inotifywait: false };
  const musts = ['dir CREATE - l1', 'other CREATE - l2', 'file ATTRIB - .', 'dir MODIFY - l1', 'other MODIFY - l2', 'file MODIFY - .', 'dir DELETE - l1', 'other DELETE - l2', 'dir MODIFY - l3'];
  const { stats, done } = await onTmpfsAndShim('inotify_links', LINK_WRITER, setup, { musts, diskDirs: ['other', 'unwatched'] });
  // ...and the names were made in memory: no link moved the file to disk.
  assert.equal(stats.evictions, 0, `a link moved the file to disk: ${JSON.stringify(stats)}`);
  done();
});
