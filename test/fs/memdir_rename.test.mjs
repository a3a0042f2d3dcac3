// Renames of directories that live only in memory (issue 15/9, branch dirtwin): the directory and
// everything below it are renamed in the region (shim/nsdir.c, nsd_rename_dir; one journalled
// record, EPH_JOP_MOVETREE) instead of the directory getting a disk twin first (a daemon round
// trip, a disk mkdir per directory on the way, and the kernel's rename).
//
// test/fs/c/memdir_rename.c runs the renames on tmpfs and under the shim and the two outputs must
// be equal: a tree moved with its files, counts (st_nlink, st_size) of the directories on both
// sides, an fd of a file and a directory fd open across the rename, a sibling whose name starts
// with the moved one's, a rename into another directory in memory and back, the kernel's errors
// (EINVAL into its own subtree, ENOTEMPTY onto an ancestor or a full directory, ENOTDIR onto a
// file, EISDIR for a file onto it, EEXIST with RENAME_NOREPLACE, ENOENT), a rename over an empty
// directory, hard links into and out of the tree, and another process reading the new names.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, compileProgram, describe, ephemeraRun, sameOnTmpfsAndShim, scratch } from './lib/harness.mjs';

const SOURCE = readFileSync(join(REPO, 'test/fs/c/memdir_rename.c'), 'utf8');
const FLAGS = { flags: ['-O1', '-Wall', '-Wextra', '-Werror'] };

const sc = scratch('memdir-rename');
after(() => sc.done());
let prog;
const program = async () => (prog ??= await compileProgram(sc, 'memdir_rename', SOURCE, FLAGS));

test('renames of directories in memory answer as on tmpfs', { timeout: 60_000 }, async (t) => {
  const p = await program();
  const { out, stats } = await sameOnTmpfsAndShim(t, 'memdir-rename', '', { cmd: p, argv: (dir) => [dir] });
  assert.match(out, /^rename d e: ok$/m, 'the scenarios did not run as written');
  assert.match(out, /^cat e\/sub\/deep\/f3: three$/m);
  assert.match(out, /^rename e into its own subtree: Invalid argument$/m);
  assert.ok(stats.dirs_made_in_memory >= 9, `the directories were not made in memory (dirs_made_in_memory ${stats.dirs_made_in_memory})`);
});

test('RENAME_EXCHANGE of directories in memory against each other, a file and a missing name answers as on tmpfs', { timeout: 60_000 }, async (t) => {
  const p = await program();
  const { out } = await sameOnTmpfsAndShim(t, 'memdir-exchange', '', { cmd: p, argv: (dir) => [dir, 'exchange'] });
  assert.match(out, /^exchange x y: ok$/m, 'the scenario did not run as written');
});

test('RENAME_EXCHANGE of two directory trees in memory answers as on tmpfs', { timeout: 60_000 }, async (t) => {
  // Listings, bytes, counts of the two and of their parents, st_ino following the trees, both
  // ctimes and the parents' mtimes moved, stand-in fds below either name, a directory against a
  // file (with a second name) in one parent and in two, the errors (branch exchange: made in
  // memory, before by the twins, whose ext4 st_size tmpfs would not show).
  const p = await program();
  const { out } = await sameOnTmpfsAndShim(t, 'memdir-xtrees', '', { cmd: p, argv: (dir) => [dir, 'xtrees'] });
  assert.match(out, /^exchange x y: ok$/m, 'the scenario did not run as written');
  assert.match(out, /^x holds y's inode: yes, y holds x's: yes$/m);
  assert.match(out, /^exchange x x\/in: Invalid argument$/m);
});

test('renames of directories in memory, and of trees of files in them, make no disk twin', { timeout: 60_000 }, async () => {
  // Before (main 5312959): each rename gave the directory its twin, and a tree's files made twins
  // of the directories above their own: the scenarios made 5 twins, the tree 4.  The exchanges of
  // two directories in memory, or of one and a file in memory (8 made), gave the directories
  // their twins before branch exchange.
  const p = await program();
  for (const [args, renames] of [[[], 10], [['tree', '400'], 20], [['xtrees'], 8]]) {
    const root = sc.sub(`count-${args.join('-') || 'scenarios'}`);
    mkdirSync(root, { recursive: true });
    const r = await ephemeraRun({ root, cmd: p, args: [root, ...args], statsDir: sc.dir });
    assert.equal(r.status, 0, describe(r));
    if (args[0] === 'tree') assert.match(String(r.stdout), /^tree of 400 files renamed 20 times: 0 wrong, t0 gone$/m, describe(r));
    assert.equal(r.stats.dir_twins, 0, `${args.join(' ') || 'scenarios'}: directories given a disk twin: ${r.stats.dir_twins}`);
    assert.equal(r.stats.dirs_renamed_in_memory, renames, `${args.join(' ') || 'scenarios'}: dirs_renamed_in_memory ${r.stats.dirs_renamed_in_memory}`);
  }
});

test('renames of a directory in memory racing creates, unlinks and mkdirs below it lose nothing, as on tmpfs', { timeout: 90_000 }, async (t) => {
  // Two processes rename a <-> b (plain and RENAME_NOREPLACE) 300 times each while three make 300
  // files each below it (and remove every third): one name at the end, holding exactly the files.
  const p = await program();
  const { out, stats } = await sameOnTmpfsAndShim(t, 'memdir-race', '', { cmd: p, argv: (dir) => [dir, 'race', '300'] });
  assert.match(out, /^race: 0 processes failed, one name: yes, files expected found, listed same, wrong 0$/m, out);
  // Most renames are made in memory; a create that raced one (its parent moved under it) may go to
  // the daemon, whose CREATE gives the directories on its path their twins, after which the
  // renames are the kernel's.
  assert.ok(stats.dirs_renamed_in_memory >= 1, `dirs_renamed_in_memory ${stats.dirs_renamed_in_memory}`);
  t.diagnostic(`dirs_renamed_in_memory=${stats.dirs_renamed_in_memory} dir_twins=${stats.dir_twins}`);
});

test('exchanges of two directories in memory racing creates and unlinks below one lose nothing, as on tmpfs', { timeout: 90_000 }, async (t) => {
  // Two processes exchange a <-> b 300 times each while three make 200 files each below tree A's
  // sub/ (and remove every third) through whichever name holds it: tree A at one name with exactly
  // the workers' files, tree B's 20 at the other (branch exchange).
  const p = await program();
  const { out, stats } = await sameOnTmpfsAndShim(t, 'memdir-xrace', '', { cmd: p, argv: (dir) => [dir, 'xrace', '200'] });
  assert.match(out, /^xrace: 0 processes failed, files expected found, listed same, wrong 0, tree B kept 20 of 20, w0 in B: no$/m, out);
  assert.ok(stats.dirs_renamed_in_memory >= 1, `dirs_renamed_in_memory ${stats.dirs_renamed_in_memory}`);
  t.diagnostic(`dirs_renamed_in_memory=${stats.dirs_renamed_in_memory} dir_twins=${stats.dir_twins}`);
});
