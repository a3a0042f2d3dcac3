// libephemera.so exports exactly the wrapped libc names (test/shim-exports.txt) and nothing else:
// a helper leaking out of the shim would interpose on the program's own symbols.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, SHIM, requireBuilt, run } from './lib/harness.mjs';

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

async function definedDynamicSymbols(lib) {
  const r = await run('nm', ['-D', '--defined-only', lib]);
  assert.equal(r.status, 0, `nm -D --defined-only ${lib} failed: ${r.stderr}`);
  const names = new Set();
  for (const line of r.stdout.toString().split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 3) names.add(f[2].replace(/@.*/, ''));
  }
  return names;
}

test('libephemera.so exports exactly the list in test/shim-exports.txt', async () => {
  requireBuilt(SHIM);
  const expected = new Set(
    readFileSync(join(REPO, 'test', 'shim-exports.txt'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#')),
  );
  const actual = await definedDynamicSymbols(SHIM);
  const extra = [...actual].filter((n) => !expected.has(n)).sort();
  const missing = [...expected].filter((n) => !actual.has(n)).sort();
  assert.deepEqual(
    { extra, missing },
    { extra: [], missing: [] },
    `exported symbols differ from test/shim-exports.txt: exported but not listed: [${extra.join(' ')}]; listed but not exported: [${missing.join(' ')}]. ` +
      'Export only wrapped libc names (shim/exports.map); when a wrapper is added or removed on purpose, update test/shim-exports.txt.',
  );
});

test('every exported name is a libc function (nothing of the shim itself leaks)', async () => {
  requireBuilt(SHIM);
  const libc = await definedDynamicSymbols(LIBC);
  const notLibc = [...(await definedDynamicSymbols(SHIM))].filter((n) => !libc.has(n)).sort();
  assert.deepEqual(notLibc, [], `libephemera.so exports names that ${LIBC} does not define: ${notLibc.join(' ')}`);
});

test('the API families the shim must cover are all wrapped', async () => {
  requireBuilt(SHIM);
  const actual = await definedDynamicSymbols(SHIM);
  // From the project brief and the guide: both stat layers, fortified and 64-bit names, *at calls.
  const required = `open open64 openat openat64 creat creat64 __open_2 __openat_2
    read write pread pread64 pwrite pwrite64 readv writev preadv pwritev __read_chk __pread_chk lseek lseek64
    close dup dup2 dup3 fcntl
    stat stat64 lstat lstat64 fstat fstat64 fstatat fstatat64 statx __xstat __lxstat __fxstat __fxstatat
    access faccessat ftruncate truncate fsync fdatasync fallocate posix_fallocate posix_fadvise
    unlink unlinkat rename renameat renameat2 mkdir mkdirat rmdir
    opendir fdopendir readdir closedir utimensat futimens chmod fchmod
    fopen fdopen freopen mmap sendfile copy_file_range isatty ioctl
    fork vfork posix_spawn execve execv execvp`.split(/\s+/);
  const missing = required.filter((n) => !actual.has(n));
  assert.deepEqual(missing, [], `libephemera.so does not wrap: ${missing.join(' ')}`);
});
