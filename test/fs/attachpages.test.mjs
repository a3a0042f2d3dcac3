// What a shimmed process pays for the shim's code and for its fd table, in pages (counts, not times).
//
// Code: the distinct 4 KiB pages of libephemera.so's code a process executes, from callgrind's
// instruction addresses (--dump-instr=yes; the same on a loaded machine).  On this VM a page is paid
// for where it is first touched (a fault per 64 KiB window, a shadow-page fill per page), so code
// spread over the library costs more than the same code in one place.  Until branch attachcost the
// code a process ran lay across all of the shim's .text; the Makefile now links the code real runs
// execute, in shim/hot.ld's order, at the head of .text (ARCHITECTURE.md, "The attached paths' code
// in one place").  The program below: 51 pages attached and 21 not with main's shim, 31 and 11 here.
// (Counting the windows with a page in the page table instead depends on the page cache's folio
// sizes, which map more than fault-around's 64 KiB: not a count a test can rely on.)
//
// The fd table (the ledger the daemon reads when a process dies, proto.h) kept a thread's two
// in-flight words 4 KiB apart, all slots' reference words before all read words: a process that
// made a file and read one had 4 pages of the table's memfd in its page table (fds 0-511, the
// shim's fds from 512, the two words' pages); each slot's words now lie side by side: 3.  A memfd
// of its own, written by this process only: /proc/self/pagemap counts exactly what it touched.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { compileProgram, describe, ephemeraRun, scratch } from './lib/harness.mjs';

const VALGRIND = '/usr/bin/valgrind';

/** Distinct 4 KiB pages of code of the object matching `object` in a callgrind --dump-instr=yes output. */
function codePages(text, object) {
  const names = new Map();
  let ob = '';
  let last = 0;
  const pages = new Set();
  for (const line of text.split('\n')) {
    const m = /^(c?ob)=(?:\((\d+)\))? ?(.*)$/.exec(line);
    if (m) {
      if (m[2] !== undefined && m[3]) names.set(m[2], m[3]);
      if (m[1] === 'ob') ob = m[2] !== undefined ? names.get(m[2]) ?? '' : m[3];
      continue;
    }
    // a cost line: its first field is an instruction address, absolute (0x...), relative (+n, -n) or the same (*)
    const f = /^(0x[0-9a-f]+|[+-]\d+|\*)\s/.exec(line);
    if (!f) continue;
    const tok = f[1];
    last = tok.startsWith('0x') ? parseInt(tok, 16) : tok === '*' ? last : last + Number(tok);
    if (object.test(ob)) pages.add(Math.floor(last / 4096));
  }
  return pages.size;
}

// argv[1]: a directory.  A compile's kind of work there (a temporary made, written, looked at, read
// and removed; an output written with stdio), then the number of pages of its fd table's memfd in
// this process's page table (-1: it has none, it never attached).
const PROGRAM = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char tmp[PATH_MAX], obj[PATH_MAX], real[PATH_MAX], buf[64], line[512];
    struct stat st;
    if (argc < 2) return 2;
    snprintf(tmp, sizeof tmp, "%s/ccXXXXXX.s", argv[1]);
    int fd = mkstemps(tmp, 2);
    if (fd < 0 || write(fd, "\\t.text\\n", 7) != 7 || close(fd) != 0) { perror("temporary"); return 1; }
    if (stat(tmp, &st) != 0 || access(tmp, R_OK) != 0 || !realpath(tmp, real)) { perror("look"); return 1; }
    fd = open(tmp, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf) != 7 || fstat(fd, &st) != 0 || close(fd) != 0) { perror("read"); return 1; }
    snprintf(obj, sizeof obj, "%s/a.o", argv[1]);
    FILE *f = fopen(obj, "w");
    if (!f || fwrite(buf, 1, 7, f) != 7 || fclose(f) != 0) { perror("output"); return 1; }
    if (unlink(tmp) != 0 || unlink(obj) != 0) { perror("unlink"); return 1; }
    FILE *m = fopen("/proc/self/maps", "r");
    unsigned long lo = 0, hi = 0;
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, "memfd:ephemera-fdtable")) sscanf(line, "%lx-%lx", &lo, &hi);
    int pm = open("/proc/self/pagemap", O_RDONLY), pages = 0;
    for (unsigned long p = lo; p < hi; p += 4096) {
        uint64_t e;
        if (pread(pm, &e, 8, (off_t)(p / 4096 * 8)) != 8) { perror("pagemap"); return 1; }
        pages += (int)(e >> 63);
    }
    printf("%d\\n", lo ? pages : -1);
    return 0;
}
`;

// Main's shim: 51 and 21; here 31 and 11.  The bounds leave room for a few functions more on a path
// (a new check, a longer name) without letting the code spread over the library again.
for (const [where, inRoot, limit] of [
  ['attached to a root (a file made in it)', true, 40],
  ['never attached (files outside the roots)', false, 16],
]) {
  test(`a shimmed process ${where} executes at most ${limit} pages of the shim's code`, { timeout: 120_000 }, async (t) => {
    if (!existsSync(VALGRIND)) {
      t.skip('valgrind is not installed');
      return;
    }
    const sc = scratch('codepages');
    const bin = await compileProgram(sc, 'codewin', PROGRAM, { flags: ['-O2', '-Wall'] });
    const root = sc.sub('root');
    const out = join(sc.dir, 'callgrind.out');
    const r = await ephemeraRun({
      root,
      cmd: VALGRIND,
      args: ['-q', '--tool=callgrind', '--dump-instr=yes', `--callgrind-out-file=${out}`, bin, inRoot ? root : sc.sub('outside')],
      statsDir: sc.dir,
    });
    assert.equal(r.status, 0, describe(r));
    if (inRoot) assert.ok(r.stats && r.stats.fast_writes >= 1, `nothing was written in memory: ${JSON.stringify(r.stats)}`);
    const pages = codePages(readFileSync(out, 'utf8'), /\/libephemera[^/]*\.so$/);
    t.diagnostic(`${pages} pages of the shim's code executed`);
    assert.ok(pages >= 5, `${pages} pages of the shim's code: the profile did not see the shim`);
    assert.ok(pages <= limit, `the process executed ${pages} pages of the shim's code; at most ${limit} expected`);
    sc.done();
  });
}

test("a process that makes an in-memory file and reads one has at most 3 pages of its fd table's memfd in its page table", { timeout: 60_000 }, async (t) => {
  const sc = scratch('tablepages');
  const bin = await compileProgram(sc, 'codewin', PROGRAM, { flags: ['-O2', '-Wall'] });
  const root = sc.sub('root');
  const r = await ephemeraRun({ root, cmd: bin, args: [root], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  const tablePages = Number(r.stdout.toString().trim());
  t.diagnostic(`${tablePages} pages of the fd table`);
  assert.ok(r.stats && r.stats.fast_reads >= 1 && r.stats.fast_writes >= 1, `no read and write in memory: ${JSON.stringify(r.stats)}`);
  assert.ok(tablePages >= 1, `the process registered no fd table (${tablePages}): it did not attach`);
  assert.ok(tablePages <= 3, `${tablePages} pages of the fd table in the page table; at most 3 expected (fds 0-511, 512-1023, the in-flight words)`);
  sc.done();
});
