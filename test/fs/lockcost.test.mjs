// What the shim's fcntl costs a lock call on an in-memory file, counted in instructions (callgrind:
// the same on a loaded machine as on a quiet one).  passthrough.test.mjs pins that such a call is the
// kernel's one fcntl; this pins the shim's own work around it, against glibc's fcntl on a plain file
// in the same process.  The lock path of e48bada..42bb839 ran 60 (F_SETLK) and 63.5 (F_OFD_SETLK)
// instructions a call to glibc's 35, 25 and 28.5 more; branch locksys's, one inlined path per command,
// 42 and 46; branch locks2's (the fd's word in the shim's own page, a lock checked after its call
// only) 31.5 and 35.5, so the bounds are now 3 and 5 over glibc.  Instructions are not what
// decides bench io's lock rows on this VM (the pages the path touches are: ARCHITECTURE.md, "The
// lock path: what a page costs"), but a path that grows back shows here first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { compileProgram, describe, ephemeraRun, run, scratch } from './lib/harness.mjs';

const VALGRIND = '/usr/bin/valgrind';
const ANNOTATE = '/usr/bin/callgrind_annotate';
const PAIRS = 2000;

// argv[1]: a file in the root (fcntl by name: the shim's), argv[2]: one outside (libc's own fcntl,
// looked up in libc.so.6, which no preloaded library sees).  F_SETLK, or F_OFD_SETLK with argv[3].
const PROGRAM = `
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
static int pairs(int (*f)(int, int, ...), int fd, int cmd) {
    for (int i = 0; i < ${PAIRS}; i++) {
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (f(fd, cmd, &l) < 0) return -1;
        l.l_type = F_UNLCK;
        if (f(fd, cmd, &l) < 0) return -1;
    }
    return 0;
}
int main(int argc, char **argv) {
    int cmd = argc > 3 ? F_OFD_SETLK : F_SETLK;
    int (*libc_fcntl)(int, int, ...) = dlsym(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "fcntl");
    int a = open(argv[1], O_RDWR | O_CREAT, 0644), b = open(argv[2], O_RDWR | O_CREAT, 0644);
    if (a < 0 || b < 0 || !libc_fcntl || write(a, "x", 1) != 1) { perror("setup"); return 1; }
    if (pairs(fcntl, a, cmd) < 0 || pairs(libc_fcntl, b, cmd) < 0) { perror("fcntl"); return 1; }
    return 0;
}
`;

/** Instructions in `fcntl` (inclusive) of the object whose path matches `object`, from callgrind_annotate. */
function fcntlCost(annotated, object) {
  const line = annotated.split('\n').find((l) => /:fcntl \[/.test(l) && object.test(l));
  assert.ok(line, `no fcntl of ${object} in callgrind's profile:\n${annotated.slice(0, 2000)}`);
  return Number(line.trim().split(/\s+/)[0].replace(/,/g, ''));
}

for (const [name, extra, limit] of [
  ['F_SETLK', [], 3],
  ['F_OFD_SETLK', ['ofd'], 5],
]) {
  test(`a ${name} lock or unlock on an in-memory file runs at most ${limit} instructions more than glibc's fcntl`, { timeout: 120_000 }, async (t) => {
    if (!existsSync(VALGRIND) || !existsSync(ANNOTATE)) {
      t.skip('valgrind is not installed');
      return;
    }
    const sc = scratch(`lockcost-${name}`);
    const bin = await compileProgram(sc, 'lockpairs', PROGRAM, { flags: ['-O2', '-Wall'] });
    const out = join(sc.dir, 'callgrind.out');
    const r = await ephemeraRun({
      root: sc.sub('root'),
      cmd: VALGRIND,
      args: ['--tool=callgrind', `--callgrind-out-file=${out}`, bin, join(sc.sub('root'), 'locked'), join(sc.sub('outside'), 'plain'), ...extra],
      statsDir: sc.dir,
    });
    assert.equal(r.status, 0, describe(r));
    assert.ok(r.stats && r.stats.fast_writes >= 1, `the file was not in memory: ${JSON.stringify(r.stats)}`);
    const a = await run(ANNOTATE, ['--inclusive=yes', out]);
    assert.equal(a.status, 0, describe(a));
    const text = a.stdout.toString();
    const calls = 2 * PAIRS;
    const shim = fcntlCost(text, /libephemera\.so/) / calls;
    const libc = fcntlCost(text, /libc\.so/) / calls;
    // The shim's first call on the fd takes its slow path (a few hundred instructions over 4000 calls).
    t.diagnostic(`shim ${shim.toFixed(1)}, glibc ${libc.toFixed(1)} instructions a call`);
    assert.ok(shim - libc <= limit, `the shim's fcntl runs ${shim.toFixed(1)} instructions a ${name} call, glibc's ${libc.toFixed(1)}: more than ${limit} over`);
    sc.done();
  });
}
