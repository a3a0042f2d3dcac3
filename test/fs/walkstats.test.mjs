// Issue 15, branch gitcost4: when the kernel says ENOENT for a name under a root, the shim works
// out the error its own walk would give with the files in memory counted (shim/nsview.c,
// walk_error: an in-memory file on the way is ENOTDIR), and a link made in memory asks the same
// walk of its new name first. That walk looked at every ancestor of the name, from "/", with a
// stat of each directory on disk (kept a second by the dircache, so a new process paid one system
// call per ancestor, and every later walk a lookup per ancestor). Git does it for each loose object
// (the access before the write, the failed create in a new fan-out directory, the link). Above a
// root nothing can be in memory, so the walk now stats the root and starts below it: one stat for
// the whole chain above, whose answer is the same as the stats of each of its directories.
//
// Counted, not timed: strace of one new process under a root 12 directories deep, doing git's
// calls; the stats of the root's proper ancestors (12 on main, 0 now), and every answer checked.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, ephemeraRun, requireBuilt, scratch, PYTHON } from './lib/harness.mjs';

const sc = scratch('walkstats');
after(() => sc.done());

const DEPTH = 12;

test('the walk that refines ENOENT does not stat the directories above the root', { timeout: 120_000 }, async (t) => {
  requireBuilt();
  const above = [];
  let dir = sc.dir;
  for (let i = 1; i <= DEPTH; i++) {
    dir = join(dir, `a${i}`);
    above.push(dir);
  }
  const root = join(dir, 'root');
  mkdirSync(root, { recursive: true });
  const prog = join(sc.dir, 'calls.py');
  // d/e are made in memory and f is a file in memory (the first process); the second, traced, asks
  // about names below them as git does, and prints each answer.
  writeFileSync(prog, `import errno, os, sys
r = sys.argv[1]
def err(f, *a):
    try:
        f(*a)
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
print(os.access(r + '/d/e/missing/x', os.F_OK))
print(err(os.stat, r + '/d/e/missing/x'))
print(err(os.stat, r + '/d/e/f/x'))
print(err(os.open, r + '/d/e/new/tmp_obj', os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444))
print(err(os.link, r + '/d/e/f', r + '/d/e/g'))
print(err(os.link, r + '/d/e/f', r + '/d/e/f/h'))
print(open(r + '/d/e/g').read().strip())
`);
  const script = join(sc.dir, 'work.sh');
  writeFileSync(script, `set -eu
${PYTHON} -c 'import os, sys
os.makedirs(sys.argv[1] + "/d/e")
open(sys.argv[1] + "/d/e/f", "w").write("data\\n")' "$1"
strace -f -o "$2" -e trace=newfstatat,statx,stat,lstat ${PYTHON} "$3" "$1"
`);
  const traceOut = join(sc.dir, 'trace.txt');
  const r = await ephemeraRun({ root, cmd: 'bash', args: [script, root, traceOut, prog], cwd: '/', statsDir: sc.dir, timeoutMs: 90_000 });
  assert.equal(r.status, 0, describe(r));
  assert.deepEqual(r.stdout.toString().trim().split('\n'),
    ['False', 'ENOENT', 'ENOTDIR', 'ENOENT', 'ok', 'ENOTDIR', 'data'], describe(r));
  assert.ok(r.stats.files_in_memory_peak >= 1, `the file was not in memory: ${JSON.stringify(r.stats)}`);
  const named = (line) => /^\d+\s+(?:newfstatat|statx)\(AT_FDCWD, "([^"]*)"/.exec(line)?.[1];
  const stats = readFileSync(traceOut, 'utf8').split('\n').map(named).filter(Boolean);
  const aboveRoot = stats.filter((p) => above.includes(p));
  const atOrBelow = stats.filter((p) => p === root || p.startsWith(root + '/'));
  t.diagnostic(`stats of the root's ${DEPTH} ancestors below the scratch directory: ${aboveRoot.length}; of the root and below: ${atOrBelow.length}`);
  // Before: each of them once (a new process's dircache is empty), 12.
  assert.equal(aboveRoot.length, 0, `the walk stat'ed the directories above the root: ${aboveRoot.join(' ')}\n${describe(r)}`);
});
