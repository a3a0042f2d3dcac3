/*
 * truncate(path) of an in-memory file looks the name up, takes an open
 * reference (open_count) and checks that the slot still holds that file
 * (shim/fp_size.c, fp_truncate_inode).  The daemon frees a slot that has no
 * name and that it saw nobody open (daemon/namespace.c, ns_maybe_gc).  When
 * the name went between the lookup and the reference, and the daemon had read
 * open_count just before the reference was taken, both went on: the slot was
 * freed, given to the next file created, and the late truncate cut that new
 * file (its size set to the truncate's length).
 *
 * Three stall points make the moment exact (fault builds of the shim and the
 * daemon): the truncating process stops after its lookup (truncate-ref) and
 * again just before it changes the size (truncate-checked); the daemon stops
 * between its look under the namespace lock and the free (gc-chosen).  Fixed,
 * the truncate sees the name gone once it holds its reference and leaves the
 * slot alone (the kernel's answer for the path, ENOENT); the new files keep
 * every byte.
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
    char run[PATH_MAX], f[PATH_MAX], g[NEW_FILES][PATH_MAX];
    for (int i = 0; i < NEW_FILES; i++)
        snprintf(g[i], sizeof g[i], "%s/g%d", root, i);
    /* The truncate finds f in memory and stops before its reference; f's name goes; the daemon
     * collects the slot and stops before it frees it. */
    pid_t daemon, trunc = late_truncate_started(root, run, &daemon, f, BOUND_S);
    if (trunc < 0)
        return 1;
    /* The truncate takes its reference now, after the daemon's look: without the fix it passes its
     * checks and stops again before changing the size; with it, it gives the reference back (and
     * waits for the stopped daemon's answer). */
    kill(trunc, SIGCONT);
    int st = 0, again = 0;
    for (int i = 0; i < 50 && !again; i++) {
        pid_t w = waitpid(trunc, &st, WNOHANG | WUNTRACED);
        again = w == trunc && WIFSTOPPED(st);
        if (!again)
            pause_ms(10);
    }
    /* The slot is freed, and new files are made from this process's first batch, which starts with it. */
    kill(daemon, SIGCONT);
    int made = 1;
    for (int i = 0; i < NEW_FILES; i++)
        made &= file_put(g[i], 'G', N);
    CHECK(made, "making the new files: %s", strerror(errno));
    int tr = continue_until_exit_s(trunc, BOUND_S);
    CHECK(tr == 0 || tr == 10, "truncate of a name unlinked meanwhile: status %d (0: done before the unlink, "
          "10: ENOENT; 11: another error)", tr);
    printf("truncgc_test: the truncate %s its checks and %s\n", again ? "passed" : "did not pass",
           tr == 0 ? "succeeded" : tr == 10 ? "got ENOENT" : "failed");

    int whole = 0;
    for (int i = 0; i < NEW_FILES; i++) {
        int ok = file_holds(g[i], 'G', N);
        CHECK(ok, "%s lost its bytes to a truncate of the file freed before it", g[i]);
        whole += ok;
    }
    struct stat sb;
    CHECK(stat(f, &sb) < 0 && errno == ENOENT, "f exists again after its unlink");
    printf("truncgc_test: %d of %d new files whole after a late truncate of a freed slot\n", whole, NEW_FILES);
    /* The daemon stops at every collection from now on too (its shutdown's among them): a process
     * of ours keeps it going for the rest of the run, at most BOUND_S. */
    keep_continuing(daemon, BOUND_S);
    printf("truncgc_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* The daemon's stall points are in its fault build, the shim's in its own. */
    return shimmed_main_faulty(argc, argv, "truncgc", child, "gc-chosen,truncate-ref,truncate-checked", 1);
}
