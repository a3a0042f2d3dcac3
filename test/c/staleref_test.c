/*
 * A reference taken on a slot just as the daemon frees it (a late reference:
 * truncate by path, an attribute call by path, a cached reopen) is given back
 * by its taker once it sees the slot's generation moved on (fp_inode_release).
 * The slot's next file used to be made with open_count *stored* as 1, which
 * erased the late reference; its give-back then took one from the new file.
 * That file looked unopened while a process still had it open: once unlinked,
 * the shim or the daemon freed it under that process, whose reads then showed
 * the next file's bytes.  Now a fresh slot's count is added to
 * (eph_inode_fresh), so the late reference is still in it when given back.
 *
 * The stall points make the moment exact (fault builds of the shim and the
 * daemon): the truncating process stops after its lookup (truncate-ref) and
 * again with its reference taken, before its check (truncate-reffed); the
 * daemon stops between its look and the free (gc-chosen).  While the truncate
 * holds its late reference, the slot is freed and a new file made in it; the
 * truncate then gives the reference back.  Each new file is then opened,
 * unlinked while open and other files made: every open fd must still read
 * its own file's bytes.
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

#include "ephemera/proto.h"

#include "check.h"
#include "shimmed.h"

#define BOUND_S 20.0
/* A batch of free slots is used from its end: the slot freed last, lent first, is the last one used. */
#define NEW_FILES EPH_POOL_FIRST
#define N 8192

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX], f[PATH_MAX], g[NEW_FILES][PATH_MAX], h[NEW_FILES][PATH_MAX];
    for (int i = 0; i < NEW_FILES; i++) {
        snprintf(g[i], sizeof g[i], "%s/g%d", root, i);
        snprintf(h[i], sizeof h[i], "%s/h%d", root, i);
    }
    /* f is unlinked by us while a truncating process stopped after its lookup of it; the daemon
     * looks, finds nobody has it open, and stops before the free. */
    pid_t daemon, trunc = late_truncate_started(root, run, &daemon, f, BOUND_S);
    if (trunc < 0)
        return 1;
    /* The late reference: taken after the daemon's look, held across the free. */
    kill(trunc, SIGCONT);
    CHECK(wait_stopped(trunc), "the truncating process did not stop with its reference taken");
    /* From now on the daemon stops at every collection: a process of ours keeps it going, at most BOUND_S. */
    pid_t keeper = keep_continuing(daemon, BOUND_S);
    CHECK(ephd_stat_becomes(run, "files_in_memory", 1), "f's slot was not freed (%lld files in memory)",
          ephd_stat(run, "files_in_memory"));
    /* New files, one of them in f's old slot; then the truncate gives its late reference back. */
    int made = 1;
    for (int i = 0; i < NEW_FILES; i++)
        made &= file_put(g[i], 'G', N);
    CHECK(made, "making the new files: %s", strerror(errno));
    int tr = continue_until_exit_s(trunc, BOUND_S);
    CHECK(tr == 10, "truncate of a name unlinked meanwhile: status %d (10: ENOENT, as on tmpfs)", tr);

    /* Each new file open, then unlinked while open; other files made after. */
    int fds[NEW_FILES];
    for (int i = 0; i < NEW_FILES; i++) {
        fds[i] = open(g[i], O_RDONLY);
        CHECK(fds[i] >= 0, "open %s: %s", g[i], strerror(errno));
        CHECK(unlink(g[i]) == 0, "unlink %s: %s", g[i], strerror(errno));
    }
    made = 1;
    for (int i = 0; i < NEW_FILES; i++)
        made &= file_put(h[i], 'H', N);
    CHECK(made, "making the later files: %s", strerror(errno));
    int whole = 0;
    for (int i = 0; i < NEW_FILES; i++) {
        int ok = fds[i] >= 0 && fd_holds(fds[i], 'G', N);
        CHECK(ok, "g%d, unlinked while open, no longer reads its own bytes through its fd", i);
        whole += ok;
        if (fds[i] >= 0)
            close(fds[i]);
    }
    printf("staleref_test: %d of %d files unlinked while open read their own bytes\n", whole, NEW_FILES);
    for (int i = 0; i < NEW_FILES; i++)
        CHECK(file_holds(h[i], 'H', N), "%s lost its bytes", h[i]);
    /* Every count back: nothing held, so every file but w and the h files is freed. */
    CHECK(ephd_stat_becomes(run, "files_in_memory", 1 + NEW_FILES), "files in memory after the closes: %lld, want %d",
          ephd_stat(run, "files_in_memory"), 1 + NEW_FILES);
    kill(keeper, SIGKILL);
    waitpid(keeper, NULL, 0);
    /* The daemon still stops at each collection (its shutdown's too): keep it going as before. */
    keep_continuing(daemon, BOUND_S);
    printf("staleref_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* The daemon's stall points are in its fault build, the shim's in its own. */
    return shimmed_main_faulty(argc, argv, "staleref", child, "gc-chosen,truncate-ref,truncate-reffed", 1);
}
