/**
 * The guard lease on real FIFOs and real processes: made once and reused, linked into run
 * directories, refused over another kind of file; and what a daemon's non-blocking read sees (the
 * read daemon/guardlease.c makes): EAGAIN while the agent or its sentinel holds a write end, end of
 * file once both are gone, however they went.
 */
import assert from 'node:assert/strict';
import { closeSync, constants, lstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { isEphemeraError } from '../core/errors.js';
import { LEASE_NAME, openGuardLease } from './lease.js';
import { spawnGuardSentinel } from './sentinel.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eph-guardpair-lease-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The daemon's look at its read end: 'held' (EAGAIN) or 'lost' (end of file). */
function look(fd: number): 'held' | 'lost' {
  try {
    return readSync(fd, Buffer.alloc(64)) === 0 ? 'lost' : 'held';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 'held';
    throw err;
  }
}

test('made once, reused by the next agent, linked into run directories, refused over a plain file', { timeout: 20_000 }, async () => {
  const state = join(dir, 'state');
  await mkdir(state);
  const a = await openGuardLease(state);
  assert.ok(lstatSync(a.path).isFIFO());
  const run = join(state, 'c1');
  await mkdir(run);
  await a.linkInto(run);
  await a.linkInto(run); // again: the same inode is left alone
  assert.equal(lstatSync(join(run, LEASE_NAME)).ino, lstatSync(a.path).ino);
  a.close();
  // The next agent keeps the FIFO: a daemon that opened it before reads the same pipe.
  const b = await openGuardLease(state);
  assert.equal(lstatSync(b.path).ino, lstatSync(join(run, LEASE_NAME)).ino);
  // Something else at a run directory's name is replaced by the lease.
  const run2 = join(state, 'c2');
  await mkdir(run2);
  writeFileSync(join(run2, LEASE_NAME), 'stale');
  await b.linkInto(run2);
  assert.equal(lstatSync(join(run2, LEASE_NAME)).ino, lstatSync(b.path).ino);
  b.close();

  const other = join(dir, 'other');
  await mkdir(other);
  writeFileSync(join(other, LEASE_NAME), 'not a fifo');
  await assert.rejects(openGuardLease(other), (err: unknown) => isEphemeraError(err, 'EPH_GUARD_LEASE') && /is not a FIFO/.test(err.message));
});

test('a reader sees the lease held while the agent or its sentinel lives, and lost once both are gone', { timeout: 30_000 }, async () => {
  const state = join(dir, 'pair');
  await mkdir(state);
  const lease = await openGuardLease(state);
  const reader = openSync(lease.path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    assert.equal(look(reader), 'held', 'the agent holds it');
    const sentinel = await spawnGuardSentinel({ leaseFd: lease.fd });
    lease.close(); // the agent gone: its sentinel still holds the lease (it inherited fd 3)
    assert.equal(look(reader), 'held', 'the sentinel holds it');
    const pid = sentinel.pid();
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL'); // the sentinel gone too, by SIGKILL: nobody holds it
    const deadline = Date.now() + 10_000;
    while (look(reader) === 'held' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(look(reader), 'lost');
    await sentinel.close();
  } finally {
    closeSync(reader);
  }
});
