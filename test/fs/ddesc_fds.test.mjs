// Opening the daemon's memfd by pidfd_getfd (issue 15, branch zipcost): an open of an in-memory
// file (a create from the pool, or a file another process made) takes the daemon's own fd in one
// call that walks nothing, where the /proc/<daemon>/fd/N open cost 5.8 us a first open.  The fd
// shares the daemon's open file description and is close-on-exec whatever the program asked, so
// the fd table keeps the program's flag and gives the fd a description of its own where that
// shows: a lock, a fork, an exec that keeps it, a dup (shim/fdtable.h, docs/ARCHITECTURE.md).
//
// test/fs/c/ddesc_fds.c prints what the program sees, on tmpfs and under the shim, and the two
// must be equal: F_GETFD, F_SETFD, FIOCLEX/FIONCLEX, close_range(CLOEXEC), an exec that reads an
// inherited fd, flock and OFD locks between two opens, a fork child's lock on the shared
// description, another process's lock that goes when it exits, dup, F_DUPFD_CLOEXEC and dup2.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { REPO, compileProgram, describe, ephemeraRun, sameOnTmpfsAndShim, scratch } from './lib/harness.mjs';

const sc = scratch('ddesc-fds');
after(() => sc.done());
let prog;
const program = async () =>
  (prog ??= await compileProgram(sc, 'ddesc_fds', readFileSync(join(REPO, 'test/fs/c/ddesc_fds.c'), 'utf8'), { flags: ['-O1', '-Wall', '-Wextra', '-Werror'] }));

test('fds on the daemon\'s description show the program\'s close-on-exec flag and locks as on tmpfs', { timeout: 60_000 }, async (t) => {
  const p = await program();
  const { out } = await sameOnTmpfsAndShim(t, 'ddesc-fds', '', { cmd: p, argv: (dir) => [dir] });
  assert.match(out, /^another process locks and exits holding it: 0\nlock a after it exited: 0$/m, 'the scenarios did not run as written');
  assert.match(out, /^exec reads a: made by a child$/m);
  assert.match(out, /^lock n2 \(another\): Resource temporarily unavailable$/m);
});

test('an open of an in-memory file and a create take the daemon\'s memfd by pidfd_getfd, not through /proc', { timeout: 60_000 }, async () => {
  const p = await program();
  const root = sc.sub('count');
  mkdirSync(root, { recursive: true });
  const trace = join(sc.dir, 'trace.txt');
  const r = await ephemeraRun({ root, cmd: 'strace', args: ['-f', '-e', 'trace=openat,pidfd_getfd', '-o', trace, p, root], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  const lines = readFileSync(trace, 'utf8').split('\n');
  const getfd = lines.filter((l) => /pidfd_getfd\(\d+, \d+, 0\)\s+= \d+/.test(l)).length;
  // nsf_open_daemon_fd's form: "N" under the kept /proc/<daemon>/fd directory (an exec'd image's
  // own reopen of an fd it inherited, ft_install_inherited, is another path and stays).
  const procOpens = lines.filter((l) => /openat\(\d+, "\d+", O_RDWR(\|O_CLOEXEC)?\)/.test(l)).length;
  // The parent's four opens of f, its create of n and the reopen of n, and the children's opens.
  assert.ok(getfd >= 6, `pidfd_getfd calls: ${getfd}\n${describe(r)}`);
  assert.equal(procOpens, 0, `opens of the daemon's memfds through /proc/<daemon>/fd: ${procOpens}`);
});

// ddesc_fds DIR ofd: the daemon's description and branch ofdlock's FT_OWNDESC together.  An OFD lock
// on a fresh open taken by pidfd_getfd must leave the daemon's description first (another process's
// open of the file shares it), then a fork child's lock shares the parent's, and a dup made after a
// POSIX lock (still on the daemon's description) moves with the fd it copies.
test('OFD locks on fds taken from the daemon, their forks and their dups conflict as on tmpfs', { timeout: 60_000 }, async (t) => {
  const p = await program();
  const { out } = await sameOnTmpfsAndShim(t, 'ddesc-ofd', '', { cmd: p, argv: (dir) => [dir, 'ofd'] });
  assert.match(out, /^another process's open locks o \(1: busy\): 1$/m, 'the scenarios did not run as written');
  assert.match(out, /^a fork child locks d, then its own process opens q \(1: was not busy\): 0$/m);
  assert.match(out, /^OFD lock r \(another open\): Resource temporarily unavailable$/m);
  assert.match(out, /^POSIX lock on p still held \(1\): 1$/m);
});
