// What a shimmed process maps of the shim's code, counted in 64 KiB windows, and of its fd table's
// memfd, counted in pages (counts, not times).  On this VM a page is paid for where it is first touched, and a read fault on a file maps
// the 64 KiB around it (fault-around): so a process pays a fault per window of the shim's code it
// runs in, and a shadow-page fill per page.  Until branch attachcost the code a process ran lay
// across all of the shim's .text: a process attached to a root (gcc's driver, cc1 and as each are)
// touched all five or six windows of its 264 KiB, as did one that never attached.  The Makefile now
// links the code that real runs execute, in shim/hot.ld's order, at the head of .text and moves
// .fini beside .init (ARCHITECTURE.md, "The attached paths' code in one place"): 2-3 windows here.
// A window counts if any of its pages is in the process's page table (/proc/self/pagemap), which
// holds with or without fault-around.
// The fd table (the ledger the daemon reads when a process dies, proto.h) kept a thread's two
// in-flight words 4 KiB apart, all slots' reference words before all read words: a process that
// made a file and read one touched 4 pages of it (fds 0-511, the shim's fds from 512, and the two
// words' pages); each slot's words now lie side by side: 3.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { compileProgram, describe, ephemeraRun, scratch } from './lib/harness.mjs';

// argv[1]: a directory.  A compile's kind of work there (a temporary made, written, looked at, read
// and removed; an output written with stdio), then the shim's code mapping's pages in this
// process's page table and the 64 KiB windows they lie in.
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
    unsigned long lo = 0, hi = 0, tlo = 0, thi = 0;
    while (m && fgets(line, sizeof line, m)) {
        unsigned long a, b;
        char perm[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) != 3) continue;
        if (strcmp(perm, "r-xp") == 0 && strstr(line, "/libephemera")) lo = a, hi = b;
        if (strstr(line, "memfd:ephemera-fdtable")) tlo = a, thi = b;
    }
    if (!lo) { fprintf(stderr, "no code mapping of the shim\\n"); return 1; }
    int pm = open("/proc/self/pagemap", O_RDONLY), pages = 0, windows = 0, tpages = 0;
    unsigned long last = 0;
    for (unsigned long p = lo; p < hi; p += 4096) {
        uint64_t e;
        if (pread(pm, &e, 8, (off_t)(p / 4096 * 8)) != 8) { perror("pagemap"); return 1; }
        if (!(e >> 63)) continue;
        pages++;
        if (p >> 16 != last) windows++, last = p >> 16;
    }
    for (unsigned long p = tlo; p < thi; p += 4096) {
        uint64_t e;
        if (pread(pm, &e, 8, (off_t)(p / 4096 * 8)) != 8) { perror("pagemap"); return 1; }
        tpages += (int)(e >> 63);
    }
    printf("%d %lu %d %d\\n", windows, (hi - lo) / 4096, pages, tlo ? tpages : -1);
    return 0;
}
`;

// Main's shim: 5 windows of 5-6 both ways; this layout: 2-3.  The bound leaves a window of margin
// (where the library lands against 64 KiB boundaries moves a block across one more).
const MAX_WINDOWS = 4;

for (const [where, inRoot] of [
  ['attached to a root (a file made in it)', true],
  ['never attached (files outside the roots)', false],
]) {
  test(`a shimmed process ${where} runs in at most ${MAX_WINDOWS} of the 64 KiB windows of the shim's code`, { timeout: 60_000 }, async (t) => {
    const sc = scratch('codewindows');
    const bin = await compileProgram(sc, 'codewin', PROGRAM, { flags: ['-O2', '-Wall'] });
    const root = sc.sub('root');
    const dir = inRoot ? root : sc.sub('outside');
    const r = await ephemeraRun({ root, cmd: bin, args: [dir], statsDir: sc.dir });
    assert.equal(r.status, 0, describe(r));
    const [windows, mapped, pages] = r.stdout.toString().trim().split(/\s+/).map(Number);
    t.diagnostic(`${windows} windows, ${pages} of ${mapped} pages of the shim's code in the page table`);
    assert.ok(mapped >= 32, `the shim's code mapping is ${mapped} pages: not the library this test is about`);
    if (inRoot) assert.ok(r.stats && r.stats.fast_writes >= 1, `nothing was written in memory: ${JSON.stringify(r.stats)}`);
    assert.ok(windows <= MAX_WINDOWS, `the process ran in ${windows} windows of the shim's code (${pages} pages mapped of ${mapped}); at most ${MAX_WINDOWS} expected`);
    sc.done();
  });
}

test("a process that makes an in-memory file and reads one has at most 3 pages of its fd table's memfd in its page table", { timeout: 60_000 }, async (t) => {
  const sc = scratch('tablepages');
  const bin = await compileProgram(sc, 'codewin', PROGRAM, { flags: ['-O2', '-Wall'] });
  const root = sc.sub('root');
  const r = await ephemeraRun({ root, cmd: bin, args: [root], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  const tablePages = Number(r.stdout.toString().trim().split(/\s+/)[3]);
  t.diagnostic(`${tablePages} pages of the fd table`);
  assert.ok(r.stats && r.stats.fast_reads >= 1 && r.stats.fast_writes >= 1, `no read and write in memory: ${JSON.stringify(r.stats)}`);
  assert.ok(tablePages >= 1, `the process registered no fd table (${tablePages}): it did not attach`);
  assert.ok(tablePages <= 3, `${tablePages} pages of the fd table in the page table; at most 3 expected (fds 0-511, 512-1023, the in-flight words)`);
  sc.done();
});
