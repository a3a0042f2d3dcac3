// Issue 15, branch gitfast: a disk directory's st_nlink counts its subdirectories that live only in
// memory (shim/nsdir.c, nsd_children_of), and each process found them by reading every slot of the
// region up to the high-water mark (1,208 bytes apart: a cache and a TLB miss each) at its first
// stat of a disk directory and after any mkdir in memory: the shim's largest symbol in `bench tools`'
// git row (git add and git commit are new processes, 600-1,500 slots each). The region now keeps the
// list (the header's mdir_list): nsd_mkdir appends its slot, a process copies the list. The daemon
// counts the walks that are left (dir_slot_walks); the st_nlink each process sees must stay the
// kernel's count plus the directories in memory, through mkdirs and rmdirs of other processes.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, ephemeraRun, requireBuilt, scratch } from './lib/harness.mjs';

const sc = scratch('mdirlist');
after(() => sc.done());

/** Processes that each stat the root (a disk directory) once. */
const PROCS = 20;

test('a new process finds the directories in memory from the region\'s list, not by reading every slot', { timeout: 120_000 }, async (t) => {
  requireBuilt();
  const root = join(sc.dir, 'root');
  mkdirSync(root, { recursive: true });
  mkdirSync(join(root, 'ondisk')); // one subdirectory the kernel counts itself
  const script = join(sc.dir, 'work.sh');
  // 300 files in memory (the high-water mark), 20 directories in memory in the root, then PROCS
  // processes each print the root's st_nlink (stat(1): statx); then directories come and go from other
  // processes and the count follows.
  writeFileSync(script, `set -eu
cd "$1"
for i in $(seq 1 300); do echo x > f$i; done
for i in $(seq 1 20); do mkdir d$i; done
for i in $(seq 1 ${PROCS}); do stat -c %h .; done
mkdir e1 e2 e3
stat -c %h .
rmdir d1 d2
python3 -c 'import os; print(os.stat(".").st_nlink)'
mkdir d1
stat -c %h .
`);
  const r = await ephemeraRun({ root, budget: 1 << 28, cmd: 'bash', args: [script, root], statsDir: sc.dir, timeoutMs: 90_000 });
  assert.equal(r.status, 0, describe(r));
  const lines = r.stdout.toString().trim().split('\n').map(Number);
  // The kernel's 2 + ondisk, plus the directories in memory (a tmpfs's count).
  const want = [...Array(PROCS).fill(3 + 20), 3 + 23, 3 + 21, 3 + 22];
  assert.deepEqual(lines, want, `st_nlink of the root seen by each process\n${describe(r)}`);
  assert.ok(r.stats.dirs_made_in_memory >= 24, `the directories were not made in memory: ${JSON.stringify(r.stats)}`);
  t.diagnostic(`dir_slot_walks ${r.stats.dir_slot_walks} for ${PROCS + 3} processes that stat'ed a disk directory`);
  // Before the region's list: one walk per process at least (23 here).
  assert.ok(typeof r.stats.dir_slot_walks === 'number' && r.stats.dir_slot_walks <= 1,
    `dir_slot_walks ${r.stats.dir_slot_walks}: processes read every slot to find the directories in memory`);
});
