// Issue 15, branch gitcost3: a listing of a directory (opendir, shim/intercept_dir.c's snapshot)
// read every slot of the region up to the high-water mark, two cache lines of each, to find the
// names in memory directly inside it. Slots are 1,208 bytes apart, so a new process paid a page
// fault per few slots (13-17 µs each on this VM) before its first listing of any directory in a
// root, and the misses on every later one: git add lists the 10 worktree directories of bench
// tools' git row, git commit and its maintenance child 4 more, each in a region of 600-1,500 slots.
// The region now keeps each slot's directory hash in an array of 4 bytes a slot, and a listing
// reads a slot only where that hash is its directory's.
//
// Counted, not timed: the page faults (getrusage's ru_minflt, in the listing process itself) of
// one os.listdir of a small directory, in a new process, with few files in memory and then with
// thousands more in another directory. The difference is what the other directory's slots cost
// the listing. The names listed must be the same as the kernel's in both runs.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, ephemeraRun, requireBuilt, scratch, PYTHON } from './lib/harness.mjs';

const sc = scratch('listfaults');
after(() => sc.done());

/** Files in memory in the other directory. 3,000 slots are ~880 pages of the region. */
const BULK = 3000;
/** Page faults the listing may take from the BULK slots: their directory hashes are 3 pages. */
const MAX_EXTRA_FAULTS = 12;

test('listing a small directory does not read the slots of files in other directories', { timeout: 120_000 }, async (t) => {
  requireBuilt();
  const root = join(sc.dir, 'root');
  mkdirSync(root, { recursive: true });
  const lister = join(sc.dir, 'list.py');
  // Warm the listing's own code and python's first: list a directory outside the roots, then the
  // measured one (sorted names on stdout, the faults of that one listing on stderr's last line).
  writeFileSync(lister, `import os, resource, sys
os.listdir(sys.argv[2])
a = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
names = os.listdir(sys.argv[1])
b = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(' '.join(sorted(names)))
print('faults', b - a)
`);
  const script = join(sc.dir, 'work.sh');
  // small/ is made in memory with three files; bulk/ gets BULK files. The lister runs (a new
  // process each time) twice before bulk/ is filled and twice after.
  writeFileSync(script, `set -eu
cd "$1"
mkdir small bulk
echo a > small/a; echo b > small/b; mkdir small/c
${PYTHON} "$2" "$1/small" "$3"
${PYTHON} "$2" "$1/small" "$3"
${PYTHON} -c 'import sys
for i in range(int(sys.argv[1])):
    open("bulk/f%d" % i, "w").close()' ${BULK}
${PYTHON} "$2" "$1/small" "$3"
${PYTHON} "$2" "$1/small" "$3"
ls bulk | wc -l
`);
  const r = await ephemeraRun({ root, budget: 1 << 28, cmd: 'bash', args: [script, root, lister, sc.dir], statsDir: sc.dir, timeoutMs: 90_000 });
  assert.equal(r.status, 0, describe(r));
  const out = r.stdout.toString().trim().split('\n');
  assert.equal(out.length, 9, describe(r));
  const runs = [0, 2, 4, 6].map((k) => ({ names: out[k], faults: Number(/^faults (\d+)$/.exec(out[k + 1])?.[1]) }));
  for (const x of runs) assert.equal(x.names, 'a b c', `the listing of small/\n${describe(r)}`);
  assert.equal(out[8].trim(), String(BULK), `bulk/ lists ${out[8]} names\n${describe(r)}`);
  assert.ok(r.stats.files_in_memory_peak >= BULK + 2, `the files were not in memory: ${JSON.stringify(r.stats)}`);
  for (const x of runs) assert.ok(Number.isFinite(x.faults), describe(r));
  const before = Math.min(runs[0].faults, runs[1].faults);
  const withBulk = Math.min(runs[2].faults, runs[3].faults);
  t.diagnostic(`page faults of one listing of small/: ${before} with 4 names in memory, ${withBulk} with ${BULK} more elsewhere`);
  // Before the directory hashes: about 55 more (the BULK slots' pages, 16 to a fault with the
  // kernel's fault-around), and two cache lines read per slot.
  assert.ok(withBulk - before <= MAX_EXTRA_FAULTS,
    `a listing of a 3-name directory took ${withBulk - before} more page faults with ${BULK} files in memory elsewhere: it reads every slot\n${describe(r)}`);
});
