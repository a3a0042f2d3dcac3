/*
 * The daemon picks a file to move to disk by looking at its slot without the
 * inode lock, then takes the lock and sets MOVING.  In between, the program
 * that holds the file's last name may unlink it, and its shim keeps the slot
 * as a "home" for its next create: FREE, lent to that process, with the
 * file's pages (shim/nsfast.c, nsf_keep_home), and already taken out of
 * bytes_in_memory.  A daemon that moved that slot anyway took its capacity
 * out a second time: bytes_in_memory went below zero (nsconc seed 20261206,
 * about 1 run in 12 under two CPU hogs, and one fresh-clone CI run), and the
 * `shutdown` reply then failed `ephemera run` with EPH_DAEMON_PROTOCOL.
 *
 * The fault build of the daemon stops itself (SIGSTOP) between the look and
 * the lock (EPHEMERA_LOCK_STALL=evict-chosen, daemon/evict.c), which makes
 * the moment exact: the file is unlinked while the daemon is stopped there.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

#define BOUND_S 20.0

/* Create path with n bytes of c, closed: 0, or -1 with a failed check. */
static int put(const char *path, char c, size_t n)
{
    int ok = file_put(path, c, n);
    CHECK(ok, "write %s: %s", path, strerror(errno));
    return ok ? 0 : -1;
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX], a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(c, sizeof c, "%s/c", root);
    pid_t daemon = shimmed_daemon(root, run);
    if (daemon <= 0)
        return 1;

    /* Two create cycles: the first gets this process a pool and asks for a home, the
     * second's create keeps an fd of its memfd, so that the unlink below can keep the slot. */
    for (int i = 0; i < 2; i++) {
        if (put(a, 'a', 4096) < 0)
            return 1;
        CHECK(unlink(a) == 0, "unlink %s: %s", a, strerror(errno));
    }
    enum { N = 8192 };
    if (put(b, 'b', N) < 0)
        return 1;
    CHECK(ephd_stat_becomes(run, "files_in_memory", 1), "b is not the one file in memory: %lld files",
          ephd_stat(run, "files_in_memory"));
    CHECK(ephd_stat(run, "file_bytes_memory") == N, "bytes in memory with b: %lld, want %d",
          ephd_stat(run, "file_bytes_memory"), N);

    /* The daemon chooses b to move and stops before it takes the lock. */
    pid_t asker = shrink_until_stopped(run, daemon);
    CHECK(asker > 0, "the daemon did not stop after choosing b (state %c)", proc_state(daemon));
    if (asker <= 0)
        return 1;
    /* Meanwhile b's last name goes: its slot becomes this process's home. */
    CHECK(unlink(b) == 0, "unlink %s while the daemon is stopped: %s", b, strerror(errno));
    kill(daemon, SIGCONT);
    double took;
    int st = wait_bounded_s(asker, BOUND_S, &took);
    CHECK(st == 0, "the shrink request, once the daemon went on: %d after %.1f s", st, took);

    long long bytes = ephd_stat(run, "file_bytes_memory");
    CHECK(bytes == 0, "bytes in memory after b was unlinked: %lld (a home's pages are not counted; "
          "LLONG_MAX is a count below zero)", bytes);
    CHECK(ephd_stat(run, "files_in_memory") == 0, "files in memory after b was unlinked: %lld",
          ephd_stat(run, "files_in_memory"));

    /* The next file, from the home, is whole and counted once. */
    if (put(c, 'c', N) < 0)
        return 1;
    CHECK(file_holds(c, 'c', N), "c does not read back as written");
    bytes = ephd_stat(run, "file_bytes_memory");
    CHECK(bytes == N, "bytes in memory with c: %lld, want %d", bytes, N);
    CHECK(unlink(c) == 0, "unlink %s: %s", c, strerror(errno));
    printf("evicthome_test: a file unlinked between the daemon's choice and its lock stays out of the count\n");
    printf("evicthome_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main_faulty(argc, argv, "evicthome", child, "evict-chosen", 0);
}
