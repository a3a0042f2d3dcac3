// Issue 15, bench tools' gcc row (branch gccgap): a vfork child's first file without a pool round
// trip, counted by strace, never timed.
//
// A compile is gcc's driver, then cc1, then as, each exec'd after a vfork; the driver makes the
// .s (its first create takes a pool batch from the daemon: a sendmsg and a recvmsg it waits for)
// and as makes the .o.  Before, as waited for a batch of its own as well.  Now the driver's vfork
// hands a few of its unused slots to the child's new image (EPHEMERA_POOL), which claims them at
// its first create: no recvmsg.  test/fs/c/vfork_pool.c does the same in miniature: the parent
// makes a file, then two rounds of a child that makes nothing (cc1: its handed slots come back to
// the parent once it is gone) and a child that makes one file; every file is read back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, compileProgram, describe, ephemeraRun, scratch } from './lib/harness.mjs';

test('a vfork child makes its first file in memory with no pool round trip of its own', { timeout: 120_000 }, async () => {
  const sc = scratch('vforkpool');
  const prog = await compileProgram(sc, 'vfork_pool', readFileSync(join(REPO, 'test/fs/c/vfork_pool.c'), 'utf8'), { flags: ['-O1', '-Wall', '-Wextra', '-Werror'] });
  const root = sc.sub('root');
  const out = join(sc.dir, 'trace.txt');
  const r = await ephemeraRun({ root, cmd: 'strace', args: ['-f', '-v', '-s', '1000', '-e', 'trace=execve,recvmsg', '-o', out, prog, root], statsDir: sc.dir, discard: true });
  assert.equal(r.status, 0, describe(r));
  assert.match(String(r.stdout), /^ok$/m, describe(r));
  // Per pid: the arguments of its execve, and its recvmsg calls (a waited-for answer of the daemon).
  const argsOf = new Map();
  const waits = new Map();
  for (const l of readFileSync(out, 'utf8').split('\n')) {
    const m = /^(\d+)\s+(execve|recvmsg)\((.*)$/.exec(l);
    if (!m) continue;
    if (m[2] === 'execve' && !/= -1 /.test(l)) argsOf.set(m[1], m[3]);
    if (m[2] === 'recvmsg') waits.set(m[1], (waits.get(m[1]) ?? 0) + 1);
  }
  const makers = [...argsOf].filter(([, a]) => /"make"/.test(a)).map(([pid]) => pid);
  assert.equal(makers.length, 2, `two children that make a file, found ${String(makers.length)} in ${readFileSync(out, 'utf8')}`);
  const parent = [...argsOf].find(([, a]) => !/"make"|"idle"/.test(a))?.[0];
  assert.ok(parent !== undefined && (waits.get(parent) ?? 0) >= 1, `the parent took a pool batch (a recvmsg): the test tests nothing\n${readFileSync(out, 'utf8')}`);
  // Before: 1 each (the child's own batch, EPH_OP_POOL).
  for (const pid of makers) assert.equal(waits.get(pid) ?? 0, 0, `child ${pid} waited for the daemon ${String(waits.get(pid))} times\n${readFileSync(out, 'utf8')}`);
  // The slots an idle child never claimed go back to the parent once it is gone: the next child is
  // handed the same ones (the parent does not keep losing slots to children that make nothing).
  const slotsOf = (a) => (/EPHEMERA_POOL=\d+:\d+((?:,\d+\.\d+\.[0-9a-f]+)+)/.exec(a)?.[1] ?? '').split(',').filter(Boolean).sort().join(',');
  const order = [...argsOf.values()].filter((a) => /"make"|"idle"/.test(a));
  assert.equal(order.length, 4, `four children, found ${String(order.length)}`);
  for (const i of [0, 2]) {
    assert.notEqual(slotsOf(order[i]), '', `the idle child was handed no slots\n${order[i]}`);
    assert.equal(slotsOf(order[i + 1]), slotsOf(order[i]), 'the idle child\'s unclaimed slots went to the next child');
  }
  sc.done();
});
