// The shim's fcntl lock path reads no byte of the fd table (ARCHITECTURE.md, "The lock path without
// the fd table's page").  The table is a memfd mapping of its own (the daemon's ledger of this
// process's references, "memfd:ephemera-fdtable" in /proc/self/maps); on a machine where every system
// call empties the TLB each page a wrapper touches is a page walk, and that page cost about 2% of a
// lock + unlock pair.  The program makes the table PROT_NONE around 1000 rounds of F_SETLK and
// F_OFD_SETLK lock + unlock and their queries on an in-memory file, and counts the faults on it (a
// fault opens it again and the call goes on): main's path read the fd's entry there at every call.
// A count, not a time: the same on a loaded machine.  Then a forked child (whose lock path's words
// are recomputed from its own table) must see the parent's lock through its own fcntl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { compileProgram, describe, ephemeraRun, scratch } from './lib/harness.mjs';

const PROGRAM = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static char *lo, *hi;
static volatile sig_atomic_t faults;
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char *a = si->si_addr;
    if (a < lo || a >= hi) { signal(sig, SIG_DFL); return; } /* not ours: fault again, and die */
    faults++;
    syscall(SYS_mprotect, lo, (size_t)(hi - lo), PROT_READ | PROT_WRITE);
}
static int lk(int fd, int cmd, short type) {
    struct flock l = {.l_type = type, .l_whence = SEEK_SET};
    return fcntl(fd, cmd, &l);
}
int main(int argc, char **argv) {
    (void)argc;
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1) { perror("setup"); return 1; }
    /* the first of each takes the slow path once (the first F_SETLK's mark, the description's own) */
    if (lk(fd, F_SETLK, F_WRLCK) || lk(fd, F_SETLK, F_UNLCK) || lk(fd, F_OFD_SETLK, F_WRLCK) ||
        lk(fd, F_OFD_SETLK, F_UNLCK)) { perror("first locks"); return 1; }
    char line[512];
    FILE *m = fopen("/proc/self/maps", "r");
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, "ephemera-fdtable")) {
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) == 2) lo = (char *)a, hi = (char *)b;
        }
    if (m) fclose(m);
    if (!lo) { fprintf(stderr, "no fd table mapping\\n"); return 1; }
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO};
    sigaction(SIGSEGV, &sa, NULL);
    int errors = 0;
    if (syscall(SYS_mprotect, lo, (size_t)(hi - lo), PROT_NONE)) { perror("mprotect"); return 1; }
    for (int i = 0; i < 1000; i++) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET}, oq = q;
        errors += lk(fd, F_SETLK, F_WRLCK) < 0;
        errors += fcntl(fd, F_GETLK, &q) < 0 || q.l_type != F_UNLCK; /* our own lock: no conflict */
        errors += lk(fd, F_SETLK, F_UNLCK) < 0;
        errors += lk(fd, F_OFD_SETLK, F_WRLCK) < 0;
        errors += fcntl(fd, F_OFD_GETLK, &oq) < 0 || oq.l_type != F_UNLCK;
        errors += lk(fd, F_OFD_SETLK, F_UNLCK) < 0;
    }
    int seen = faults;
    syscall(SYS_mprotect, lo, (size_t)(hi - lo), PROT_READ | PROT_WRITE);
    signal(SIGSEGV, SIG_DFL);
    /* the lock is the kernel's, on the file every process of the instance opens */
    if (lk(fd, F_SETLK, F_WRLCK)) { perror("lock"); return 1; }
    pid_t pid = fork();
    if (pid == 0) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        _exit(fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK && q.l_pid == getppid() ? 0 : 3);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) { perror("fork"); return 1; }
    printf("faults %d errors %d child %d\\n", seen, errors, WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
    return 0;
}
`;

test('fcntl lock and unlock calls on an in-memory file read no page of the fd table', { timeout: 60_000 }, async () => {
  const sc = scratch('locktable');
  const bin = await compileProgram(sc, 'locktable', PROGRAM, { flags: ['-O2', '-Wall'] });
  const r = await ephemeraRun({ root: sc.sub('root'), cmd: bin, args: [join(sc.sub('root'), 'locked')], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  assert.ok(r.stats && r.stats.fast_writes >= 1, `the file was not in memory: ${JSON.stringify(r.stats)}`);
  const out = r.stdout.toString().trim();
  const m = /^faults (\d+) errors (\d+) child (\d+)$/.exec(out);
  assert.ok(m, `unexpected output: ${out}\n${describe(r)}`);
  assert.equal(Number(m[2]), 0, `lock calls failed with the table closed: ${out}`);
  assert.equal(Number(m[3]), 0, `a forked child did not see the parent's lock: ${out}`);
  assert.equal(Number(m[1]), 0, `the lock path read the fd table (faults on its mapping): ${out}`);
  sc.done();
});
