/*
 * A disk directory's st_nlink under the shim is the kernel's count plus its
 * subdirectories that live only in memory (shim/nsdir.c, nsd_disk_dir).  When
 * the daemon gives such a subdirectory its disk twin (daemon/dirtwin.c), it
 * makes the directory on disk first and drops the in-memory one after: a stat
 * of the parent in between counted the subdirectory twice, once as the
 * kernel's link and once in memory (difftest mdirs-multi-evicting-symroot,
 * seed 514619208: `stat a` nlink 8 where tmpfs said 7, 1 run in 12 under load).
 * Now the daemon keeps the region's twin_seq odd meanwhile, and a stat of a
 * disk directory waits for it to be even and reads again if it moved.
 *
 * The daemon's fault build stops inside the twin (twin-made), after its mkdir
 * and before the drop; one process asks for the twin (chdir), another stats
 * the parent while the daemon is stopped there; then the daemon goes on.  The
 * stat must give the count tmpfs would, the subdirectory once.
 */
#include <errno.h>
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

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX], d[PATH_MAX];
    snprintf(d, sizeof d, "%s/d", root);
    pid_t daemon = shimmed_daemon(root, run);
    if (daemon <= 0)
        return 1;
    CHECK(mkdir(d, 0755) == 0, "mkdir %s: %s", d, strerror(errno));
    struct stat st;
    CHECK(stat(root, &st) == 0, "stat %s: %s", root, strerror(errno));
    nlink_t want = st.st_nlink;
    CHECK(ephd_stat(run, "dir_twins") == 0, "d has a twin already (%lld twins)", ephd_stat(run, "dir_twins"));

    /* chdir gives d its disk twin; the daemon stops between its mkdir and the drop. */
    pid_t asker = fork();
    if (asker == 0)
        _exit(chdir(d) == 0 ? 0 : 1);
    int stopped = stopped_within(daemon);
    CHECK(stopped, "the daemon did not stop inside the twin (state %c)", proc_state(daemon));
    if (!stopped) {
        kill(asker, SIGKILL);
        waitpid(asker, NULL, 0);
        return 1;
    }
    struct stat on_disk;
    CHECK(lstat(d, &on_disk) == 0 && S_ISDIR(on_disk.st_mode), "d is not on disk yet while the daemon is stopped");

    int p[2];
    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    pid_t statter = fork();
    if (statter == 0) {
        struct stat s;
        unsigned long n = stat(root, &s) == 0 ? (unsigned long)s.st_nlink : 0;
        _exit(write(p[1], &n, sizeof n) == (ssize_t)sizeof n ? 0 : 1);
    }
    close(p[1]);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kill(daemon, SIGCONT);
    double took;
    CHECK(wait_bounded_s(asker, BOUND_S, &took) == 0, "chdir into d failed");
    CHECK(wait_bounded_s(statter, BOUND_S, &took) == 0, "the stat of the parent failed");
    unsigned long seen = 0;
    CHECK(read(p[0], &seen, sizeof seen) == (ssize_t)sizeof seen, "no answer from the stat");
    close(p[0]);
    CHECK(seen == (unsigned long)want, "stat of the parent during d's twin: nlink %lu, tmpfs says %lu", seen,
          (unsigned long)want);
    CHECK(stat(root, &st) == 0 && st.st_nlink == want, "stat of the parent after d's twin: nlink %lu, want %lu",
          (unsigned long)st.st_nlink, (unsigned long)want);
    CHECK(ephd_stat(run, "dir_twins") == 1, "d's twin was not made (%lld twins)", ephd_stat(run, "dir_twins"));
    printf("twinlinks_test: the parent's nlink during the twin %lu, after %lu (tmpfs %lu)\n", seen,
           (unsigned long)st.st_nlink, (unsigned long)want);
    printf("twinlinks_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main_faulty(argc, argv, "twinlinks", child, "twin-made", 0);
}
