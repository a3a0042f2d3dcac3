// Issue 15, bench tools' tar row (branch tarcut): two costs that tmpfs does not have, counted by
// strace, never timed.
//
// 1. `tar x` writes each file in appends (a record of the archive at a time).  A pwrite past the end
//    extends a memfd by itself, so after a file's first growth its appends grow it with no
//    ftruncate: at most one per file (a first write past the first page still reserves its pages
//    through ftruncate, whose failure shim_faults_test grow-enospc checks).  Before: the first
//    growth, a doubling each time an append passed the capacity, and a trim at close: 3 per file of
//    40,000 bytes.
// 2. A process's pool batch (32 free slots, each with a memfd the daemon made) comes back to the
//    daemon when the process asks afresh (a new image after exec) or is gone; 31 of 32 are unused
//    when it made one file.  Their memfds go back into the daemon's stock instead of being closed
//    and made again: the daemon's memfd_create per such process drops from 32 to ~1.
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

const STEPS = 10;

test("a batch's unused memfds go back into the daemon's stock, not closed and made again", { timeout: 120_000 }, async () => {
  const sc = scratch('tarcount-pool');
  const root = sc.sub('root');
  const out = join(sc.dir, 'daemon.txt');
  // Each step is a new image in the same process (exec): it makes one file, which takes a batch,
  // and its successor's first create asks afresh, which gives the 31 unused slots back at once.
  const step = join(sc.dir, 'step.sh');
  writeFileSync(step, 'echo x > "$R/f$1"\nif [ "$1" -lt $((STEPS - 1)) ]; then exec bash "$0" $(($1 + 1)); fi\n');
  const inner = [
    'set -e',
    'd=$(pgrep -P $PPID -x ephemerad)',
    // A file first, untraced: the daemon's first batch and its first stock of 128 are made here.
    'echo x > "$R/warm"',
    'strace -f -c -e trace=memfd_create,close,ftruncate -o "$O" -p "$d" 2>/dev/null & sp=$!',
    // Attached before the first step (bounded: 20 s).
    'for i in $(seq 400); do grep -Eq "^TracerPid:[[:space:]]*[1-9]" /proc/$d/status && break; sleep 0.05; done',
    'grep -Eq "^TracerPid:[[:space:]]*[1-9]" /proc/$d/status',
    'bash "$S" 0',
    'for i in $(seq 0 $((STEPS - 1))); do test -s "$R/f$i"; done',
    'kill -INT $sp; wait $sp || true',
  ].join('\n');
  const r = await ephemeraRun({ root, cmd: 'bash', args: ['-c', inner], env: { R: root, O: out, S: step, STEPS: String(STEPS) }, statsDir: sc.dir, discard: true });
  assert.equal(r.status, 0, describe(r));
  const c = callsOf(out);
  const made = c.memfd_create ?? 0;
  // The first step's batch is restocked (32); each later step gets 31 back and restocks 1 (41 in
  // all).  Before: 32 per step (320), the 31 given back closed.
  assert.ok(made <= 32 + 3 * STEPS, `the daemon made ${made} memfds for ${STEPS} processes of one file each, want at most ${32 + 3 * STEPS}`);
  sc.done();
});

const CHILDREN = 10;

// 3. tar -z's child (it creates the archive, then execs the compressor) and a shell's `cmd > file`
//    are fork children that make one file.  A fork child forgets its parent's pool, so its first
//    create asks for a batch; a batch of 32 made the daemon make 32 memfds again right after its
//    reply (the stock refilled), 31 of them for slots the child never used.  A fork child now asks
//    for 4 first (doubling as it uses them up).  The children here stay alive (sleep) while the
//    daemon is counted, so no slot comes back to its stock meanwhile, whatever the machine's load.
test("a fork child that makes one file takes a small batch: the daemon makes a few memfds for it, not 32", { timeout: 120_000 }, async () => {
  const sc = scratch('tarcount-fork');
  const root = sc.sub('root');
  const out = join(sc.dir, 'daemon.txt');
  const inner = [
    'set -e',
    'd=$(pgrep -P $PPID -x ephemerad)',
    // A file first, untraced, from this shell itself (a builtin's redirection: no fork): the
    // daemon's first batch and its first stock of 128 are made here.
    'echo x > "$R/warm"',
    'strace -f -c -e trace=memfd_create -o "$O" -p "$d" 2>/dev/null & sp=$!',
    // Attached before the first child (bounded: 20 s).
    'for i in $(seq 400); do grep -Eq "^TracerPid:[[:space:]]*[1-9]" /proc/$d/status && break; sleep 0.05; done',
    'grep -Eq "^TracerPid:[[:space:]]*[1-9]" /proc/$d/status',
    // Each child creates its file (the redirection, in the fork child) and execs sleep.
    'kids=""',
    'for i in $(seq 0 $((N - 1))); do sleep 60 > "$R/f$i" & kids="$kids $!"; done',
    // Every file made (bounded: 20 s), then a moment for the last reply's restock.
    'for i in $(seq 0 $((N - 1))); do for t in $(seq 400); do test -e "$R/f$i" && break; sleep 0.05; done; done',
    'sleep 0.5',
    'kill -INT $sp; wait $sp || true',
    'kill $kids; wait $kids 2>/dev/null || true',
    'for i in $(seq 0 $((N - 1))); do test -e "$R/f$i"; done',
    // A fork child that keeps making files grows its batches: 100 files, each read back.
    '( for i in $(seq 100); do echo "line $i" > "$R/g$i"; done )',
    'for i in $(seq 100); do [ "$(cat "$R/g$i")" = "line $i" ]; done',
  ].join('\n');
  const r = await ephemeraRun({ root, cmd: 'bash', args: ['-c', inner], env: { R: root, O: out, N: String(CHILDREN) }, statsDir: sc.dir, discard: true });
  assert.equal(r.status, 0, describe(r));
  const c = callsOf(out);
  const made = c.memfd_create ?? 0;
  // 4 a child here (40).  Before: 32 a child (320), each batch restocked.
  assert.ok(made <= 8 * CHILDREN + 8, `the daemon made ${made} memfds for ${CHILDREN} fork children of one file each, want at most ${8 * CHILDREN + 8}`);
  sc.done();
});
