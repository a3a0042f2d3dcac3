// Calls relative to a directory fd (openat, unlinkat... with dirfd): the shim must know the
// directory's path to tell whether the name is managed, and asked /proc/self/fd each time, a
// readlink of 10-15 µs (an fstat costs under 1.5): `tar x -C` made ~2 per file, 2800 for this
// repository.  shim/dircache.c keeps the names of directory fds, used while no directory changed
// through a shim (dir_gen), for at most 1 s, and while fstat finds the same directory behind the fd.
// test/fs/c/dirfd_names.c reuses fd numbers, renames, dup2s over and removes directories under
// their fds: the same files land in the same places as on tmpfs.  Its loop counts the readlinks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, compileProgram, describe, ephemeraRun, sameOnTmpfsAndShim, scratch } from './lib/harness.mjs';

const SOURCE = readFileSync(join(REPO, 'test/fs/c/dirfd_names.c'), 'utf8');
const FLAGS = { flags: ['-O1', '-Wall', '-Wextra', '-Werror'] };

test('calls relative to directory fds whose numbers and names change under them land as on tmpfs', { timeout: 60_000 }, async (t) => {
  const sc = scratch('dirfd-prog');
  const prog = await compileProgram(sc, 'dirfd_names', SOURCE, FLAGS);
  const { out } = await sameOnTmpfsAndShim(t, 'dirfd', '', { cmd: prog, argv: (dir) => [dir] });
  // the scenarios did what they set out to (on tmpfs too: the outputs are equal)
  assert.match(out, /^same number 1$/m, 'the closed fd number was not given to the next directory');
  assert.match(out, /^c: three=3 two=2$/m);
  assert.match(out, /^e: four=4$/m);
  sc.done();
});

test('creates relative to one directory fd name it once, not once per call', { timeout: 60_000 }, async () => {
  const sc = scratch('dirfd-count');
  const prog = await compileProgram(sc, 'dirfd_names', SOURCE, FLAGS);
  const root = sc.sub('root');
  const trace = join(sc.dir, 'trace.txt');
  const r = await ephemeraRun({ root, cmd: 'strace', args: ['-f', '-c', '-e', 'trace=readlink', '-o', trace, prog, root, 'loop', '500'], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  assert.match(r.stdout.toString(), /loop done/);
  const total = readFileSync(trace, 'utf8').split('\n').find((l) => /\stotal$/.test(l));
  const calls = total === undefined ? 0 : Number(total.trim().split(/\s+/)[3]);
  // 1000 calls relative to the fd (500 openat, 500 unlinkat); the shim's start-up reads a few links
  assert.ok(calls < 50, `${calls} readlink calls for 1000 calls relative to one directory fd`);
  sc.done();
});
