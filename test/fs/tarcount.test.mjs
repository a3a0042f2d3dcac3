// Issue 15, bench tools' tar row (branch tarcut): a cost that tmpfs does not have, counted by
// strace, never timed.
//
// `tar x` writes each file in appends (a record of the archive at a time).  A pwrite past the end
// extends a memfd by itself, so after a file's first growth its appends grow it with no
// ftruncate: at most one per file (a first write past the first page still reserves its pages
// through ftruncate, whose failure shim_faults_test grow-enospc checks).  Before: the first
// growth, a doubling each time an append passed the capacity, and a trim at close: 3 per file of
// 40,000 bytes.
//
// (The branch's second change, a pool batch's unused memfds kept in the daemon's stock, and its
// test were taken out: docs/ARCHITECTURE.md, "A pool slot given back unused keeps its memfd in the
// stock".)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { cleanEnv, describe, ephemeraRun, prandBytes, run, scratch } from './lib/harness.mjs';

/** strace -c's table as { syscall: calls }. */
function callsOf(file) {
  const out = {};
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length >= 5 && /^[0-9.]+$/.test(f[0]) && f[f.length - 1] !== 'total') out[f[f.length - 1]] = Number(f[3]);
  }
  return out;
}

const FILES = 20;
const SIZE = 40_000;

test('tar x grows each file by its writes: at most one ftruncate per file', { timeout: 120_000 }, async () => {
  const sc = scratch('tarcount-x');
  const src = sc.sub('src');
  for (let i = 0; i < FILES; i++) writeFileSync(join(src, `f${i}`), prandBytes(SIZE, i + 1));
  const archive = join(sc.dir, 'in.tar');
  const mk = await run('tar', ['-cf', archive, '-C', src, '.'], { env: cleanEnv() });
  assert.equal(mk.status, 0, describe(mk));
  const root = sc.sub('root');
  const out = join(sc.dir, 'x.txt');
  // tar -d compares what was extracted (read back through the shim) with the archive, byte for byte.
  const inner = 'set -e; mkdir "$R/x"; strace -f -c -e trace=ftruncate,pwrite64,write -o "$O" tar -xf "$A" -C "$R/x"; tar -df "$A" -C "$R/x"';
  const r = await ephemeraRun({ root, cmd: 'bash', args: ['-c', inner], env: { R: root, O: out, A: archive }, statsDir: sc.dir, discard: true });
  assert.equal(r.status, 0, describe(r));
  const c = callsOf(out);
  const writes = (c.pwrite64 ?? 0) + (c.write ?? 0);
  assert.ok(writes >= 2 * FILES, `tar made ${writes} writes for ${FILES} files of ${SIZE} bytes: not appends, the test tests nothing`);
  // Plus the shim's own one, not a file's: the copy of its fd table it hands the ledger
  // (fdtable.c, ledger_copy) at its first in-memory file.  Before:
  // 4 per file (12288, 24576, 49152, and the trim to 40960 at close).
  const ft = c.ftruncate ?? 0;
  assert.ok(ft <= FILES + 2, `tar x of ${FILES} files of ${SIZE} bytes made ${ft} ftruncate under the shim (tmpfs: 0), want at most one per file`);
  sc.done();
});
