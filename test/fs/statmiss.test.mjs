// A stat of a name that is not there (SQLite probes for its journal and WAL files before every
// transaction, cpp for precompiled headers and outputs) is one system call on tmpfs.  The shim
// made three: path_canon's lstat (names on disk are not in the region), the kernel's stat, and the
// lstat of the ENOENT fix-up that tells ENOENT from ENOTDIR (an in-memory file above the name).
// When the first lstat found nothing at the very name, the other two say nothing new: the shim
// answers from it.  The errors must stay the kernel's, checked against tmpfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, describe, ephemeraRun, sameOnTmpfsAndShim, scratch } from './lib/harness.mjs';

const ERRORS = `
import errno, os, sys
d = sys.argv[1]
os.mkdir(os.path.join(d, "sub"))
with open(os.path.join(d, "memfile"), "w") as f: f.write("x")
with open(os.path.join(d, "memfile")) as f: print("memfile holds", f.read())
with open(os.path.join(d, "sub", "file"), "w") as f: f.write("x")
os.symlink("sub", os.path.join(d, "link"))
os.symlink("nowhere", os.path.join(d, "dangling"))
os.symlink("memfile", os.path.join(d, "tomem"))
for p in ["missing", "sub/missing", "missing/x", "memfile/x", "memfile/x/y", "sub/file/x", "link/missing",
          "link/file", "dangling", "dangling/x", "tomem/x", "missing/", "sub/missing/", "memfile/", "sub/../missing",
          "sub/../memfile/x"]:
    for name, call in (("stat", os.stat), ("lstat", lambda q: os.stat(q, follow_symlinks=False))):
        try:
            call(os.path.join(d, p))
            print(name, p, "ok")
        except OSError as e:
            print(name, p, errno.errorcode[e.errno])
`;

const LOOP = `
import os, sys
p = os.path.join(sys.argv[1], "journal")
os.path.exists(p)  # the shim's start-up (its first managed call) stays out of the window
os.access("/nonexistent-statmiss/begin", os.F_OK)
for i in range(1000):
    try:
        os.stat(p)
    except FileNotFoundError:
        pass
os.access("/nonexistent-statmiss/end", os.F_OK)
`;

test("stat of missing names gives the kernel's errors", { timeout: 60_000 }, async (t) => {
  const { out } = await sameOnTmpfsAndShim(t, 'statmiss', '', { cmd: PYTHON, argv: (dir) => ['-c', ERRORS, dir] });
  assert.match(out, /^stat memfile\/x ENOTDIR$/m);
  assert.match(out, /^stat missing ENOENT$/m);
});

test('a stat of a missing name in a root is one system call', { timeout: 60_000 }, async () => {
  const sc = scratch('statmiss-count');
  const root = sc.sub('root');
  const trace = join(sc.dir, 'trace.txt');
  const r = await ephemeraRun({ root, cmd: 'strace', args: ['-f', '-o', trace, PYTHON, '-c', LOOP, root], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  let inside = false;
  let calls = 0;
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    if (line.includes('/nonexistent-statmiss/begin')) inside = true;
    else if (line.includes('/nonexistent-statmiss/end')) inside = false;
    else if (inside && /^\d+\s+[a-z0-9_]+\(/.test(line)) calls++;
  }
  // tmpfs: 1000 newfstatat; the parent's canonical check is kept in the dircache (a few in 1 s)
  assert.ok(calls <= 1010, `${calls} system calls for 1000 stats of a missing name`);
  sc.done();
});

const LOOP_MEMDIR = `
import os, sys
d = os.path.join(sys.argv[1], "out")
os.mkdir(d)  # a directory in memory: nothing below it is on disk
p = os.path.join(d, "f.txt")
os.path.exists(p)
os.access("/nonexistent-statmiss/begin", os.F_OK)
for i in range(1000):  # unzip's look before each file it writes: stat and lstat
    for call in (os.stat, os.lstat):
        try:
            call(p)
        except FileNotFoundError:
            pass
os.access("/nonexistent-statmiss/end", os.F_OK)
`;

test('a stat of a name missing in a directory in memory makes no system call (branch zipcost)', { timeout: 60_000 }, async () => {
  // main 5312959: the kernel's stat (ENOENT at the directory, which is not on disk) for each, and
  // ENOENT_FIX's walk after it: 2000 newfstatat for these 2000 calls, as many as on tmpfs.
  const sc = scratch('statmiss-memdir');
  const root = sc.sub('root');
  const trace = join(sc.dir, 'trace.txt');
  const r = await ephemeraRun({ root, cmd: 'strace', args: ['-f', '-o', trace, PYTHON, '-c', LOOP_MEMDIR, root], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  assert.ok(r.stats.dirs_made_in_memory >= 1, `out was not made in memory (dirs_made_in_memory ${r.stats.dirs_made_in_memory})`);
  let inside = false;
  let calls = 0;
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    if (line.includes('/nonexistent-statmiss/begin')) inside = true;
    else if (line.includes('/nonexistent-statmiss/end')) inside = false;
    else if (inside && /^\d+\s+[a-z0-9_]+\(/.test(line)) calls++;
  }
  assert.ok(calls <= 10, `${calls} system calls for 1000 stats and 1000 lstats of a name missing in a directory in memory`);
  sc.done();
});
