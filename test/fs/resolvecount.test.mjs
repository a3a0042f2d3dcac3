// How often one intercepted call resolves its name, and whether a dircache look takes a lock,
// counted by callgrind in one process (calls, not time: the same on a loaded machine).  git's
// `access(F_OK)` of an object in a missing fan-out directory and its `link` of the temporary file to
// the object's name were resolved 3 times each on main 925e32a (access: mdir_of, access_lookup, the
// ENOENT's nsv_enoent; link: the source, the target's look, link_in_memory), and every dc_stat
// locked and unlocked a mutex.  Branch gitres: twice each (the target's resolution and the
// lookup's are handed down), and dc_stat takes the lock only to keep a new entry (a seqlock for
// readers, shim/dircache.c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { compileProgram, describe, ephemeraRun, scratch } from './lib/harness.mjs';

const VALGRIND = '/usr/bin/valgrind';
const N = 200;

// argv[1]: the root.  A file made in memory, then N times git's two calls for a new object.
const PROGRAM = `
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char f[4096], m[4096], l[4096];
    if (argc < 2) return 2;
    snprintf(f, sizeof f, "%s/tmp_obj", argv[1]);
    int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0444);
    if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) < 0) { perror("setup"); return 1; }
    for (int i = 0; i < ${N}; i++) {
        snprintf(m, sizeof m, "%s/d%d/obj", argv[1], i);
        if (access(m, F_OK) == 0 || errno != ENOENT) { perror("access"); return 1; }
        snprintf(l, sizeof l, "%s/o%d", argv[1], i);
        if (link(f, l) < 0) { perror("link"); return 1; }
    }
    return 0;
}
`;

/**
 * Calls between functions from a callgrind profile: calls.get(caller).get(callee) (names as
 * callgrind writes them, compressed ids resolved).
 */
function callGraph(text) {
  const names = new Map();
  const name = (spec) => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(spec);
    if (!m) return spec;
    if (m[2] !== undefined) names.set(m[1], m[2]);
    return names.get(m[1]);
  };
  const calls = new Map();
  let fn = null;
  let cfn = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=')) fn = name(line.slice(3));
    else if (line.startsWith('cfn=')) cfn = name(line.slice(4));
    else if (line.startsWith('calls=') && fn && cfn) {
      const n = Number(line.slice(6).split(' ')[0]);
      if (!calls.has(fn)) calls.set(fn, new Map());
      const m = calls.get(fn);
      m.set(cfn, (m.get(cfn) ?? 0) + n);
    }
  }
  return calls;
}

function callsTo(calls, callee) {
  let n = 0;
  for (const m of calls.values()) n += m.get(callee) ?? 0;
  return n;
}

function callsFrom(calls, caller, match) {
  let n = 0;
  for (const [k, v] of calls.get(caller) ?? []) if (match.test(k)) n += v;
  return n;
}

test('git\'s access and link resolve their names twice a call, and dircache looks take no lock', { timeout: 120_000 }, async (t) => {
  if (!existsSync(VALGRIND)) {
    t.skip('valgrind is not installed');
    return;
  }
  const sc = scratch('resolvecount');
  const bin = await compileProgram(sc, 'gitcalls', PROGRAM, { flags: ['-O2', '-Wall'] });
  const out = join(sc.dir, 'callgrind.out');
  const r = await ephemeraRun({
    root: sc.sub('root'),
    cmd: VALGRIND,
    args: ['--tool=callgrind', `--callgrind-out-file=${out}`, bin, sc.sub('root')],
    statsDir: sc.dir,
  });
  assert.equal(r.status, 0, describe(r));
  assert.ok(r.stats && r.stats.fast_writes >= 1, `the file was not in memory: ${JSON.stringify(r.stats)}`);
  const calls = callGraph(readFileSync(out, 'utf8'));
  const resolves = callsTo(calls, 'path_resolve_lex');
  const looks = callsTo(calls, 'dc_stat');
  const locks = callsFrom(calls, 'dc_stat', /^pthread_mutex_lock/) + callsFrom(calls, 'dc_write_begin', /^pthread_mutex_lock/);
  const stats = callsFrom(calls, 'dc_stat', /^(stat|stat64|__stat|__GI___stat64|fstatat64|__fstatat64|__GI___fstatat64)$/);
  t.diagnostic(`${resolves} resolves for ${N} access + link pairs; dc_stat ${looks} looks, ${locks} locks, ${stats} kernel stats`);
  assert.ok(calls.get('access_impl') || calls.get('access'), 'no access of the shim in the profile');
  // main 925e32a: 3 + 3 a pair (6.0x N and a few for the set-up); here 2 + 2.
  assert.ok(resolves <= 4.5 * N, `${resolves} resolves of a name for ${N} access + link pairs (more than 4.5 a pair)`);
  // A look takes the lock only to keep what the kernel said: at most one lock a kernel stat.
  assert.ok(looks >= N, `only ${looks} dircache looks: the walk did not use the dircache`);
  assert.ok(locks <= stats, `dc_stat took the lock ${locks} times for ${looks} looks and ${stats} kernel stats`);
  sc.done();
});
