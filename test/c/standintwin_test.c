/*
 * A directory fd opened on a directory that lives in memory is a stand-in (shim/nsdirfd.c): it
 * knows its directory by slot, and by the last path it saw once the daemon gives the directory
 * its disk twin and drops the slot.  Both ways of losing track of it were seen in the difftest
 * mdirs-multi-evicting-symroot, seed 744887610 (`creat h3:f2` ENOENT under the shim, tmpfs made
 * it; 6 runs in 30 on a busy machine):
 *
 *   moved:    the daemon gave the directory its twin for another process (there: the eviction of
 *             a file in it) and then this process renamed an ancestor; the stand-in's last path
 *             named the old place, where nothing was, and the fd took its directory for removed;
 *   renamed:  the same the other way round: an ancestor on disk renamed by the daemon, which moves
 *             the directories in memory below it in the region (there: renameat2 RENAME_EXCHANGE
 *             of a/c), then the twin before the fd's next use, which looked for it at its path
 *             before the rename;
 *   mid-call: the twin came between the open's look at the stand-in and the kernel's open through
 *             it (there: an eviction; here: the create's own request, which gives the directories
 *             on its path their twins before it answers "on disk"), and the kernel's open went to
 *             the removed stand-in (ENOENT).
 *
 * Each must create the file in the directory the fd was opened on, as tmpfs does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "standin.h"

static void moved(const char *root, const char *run)
{
    char a[PATH_MAX], c[PATH_MAX + 8], f3[PATH_MAX + 16], b[PATH_MAX], made[PATH_MAX + 32];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(c, sizeof c, "%s/c", a);
    snprintf(f3, sizeof f3, "%s/f3", c);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(made, sizeof made, "%s/c/f3/f2", b);
    CHECK(mkdir(a, 0755) == 0 && mkdir(c, 0755) == 0 && mkdir(f3, 0755) == 0, "mkdir a/c/f3: %s", strerror(errno));
    long long twins = ephd_stat(run, "dir_twins");
    int fd = open_standin(f3, "a/c/f3");
    if (fd < 0)
        return;
    CHECK(twin_elsewhere(f3) == 0, "another process's symlink in a/c/f3 failed");
    CHECK(ephd_stat(run, "dir_twins") >= twins + 3, "a, a/c and a/c/f3 did not get their twins (%lld twins, %lld before)",
          ephd_stat(run, "dir_twins"), twins);
    CHECK(rename(a, b) == 0, "rename a b: %s", strerror(errno));
    create_through(fd, "f2", O_WRONLY, made, "moved (a/c/f3 twinned by another process, then a renamed)");
}

static void renamed(const char *root, const char *run)
{
    char a[PATH_MAX], f3[PATH_MAX + 8], b[PATH_MAX], bf3[PATH_MAX + 8], made[PATH_MAX + 32];
    snprintf(a, sizeof a, "%s/ra", root);
    snprintf(f3, sizeof f3, "%s/f3", a);
    snprintf(b, sizeof b, "%s/rb", root);
    snprintf(bf3, sizeof bf3, "%s/f3", b);
    snprintf(made, sizeof made, "%s/f2", bf3);
    /* ra on disk (its twin), ra/f3 in memory below it */
    CHECK(mkdir(a, 0755) == 0, "mkdir ra: %s", strerror(errno));
    CHECK(twin_elsewhere(a) == 0, "another process's symlink in ra failed");
    CHECK(mkdir(f3, 0755) == 0, "mkdir ra/f3: %s", strerror(errno));
    long long twins = ephd_stat(run, "dir_twins");
    int fd = open_standin(f3, "ra/f3");
    if (fd < 0)
        return;
    CHECK(rename(a, b) == 0, "rename ra rb: %s", strerror(errno));
    CHECK(ephd_stat(run, "dir_twins") == twins, "the rename of ra gave ra/f3 its twin: it did not move in memory");
    CHECK(twin_elsewhere(bf3) == 0, "another process's symlink in rb/f3 failed");
    CHECK(ephd_stat(run, "dir_twins") == twins + 1, "rb/f3 did not get its twin (%lld twins, %lld before)",
          ephd_stat(run, "dir_twins"), twins);
    create_through(fd, "f2", O_WRONLY, made, "renamed (ra renamed, then rb/f3 twinned by another process)");
}

static void mid_call(const char *root, const char *run)
{
    char d[PATH_MAX], made[PATH_MAX + 8];
    snprintf(d, sizeof d, "%s/m", root);
    snprintf(made, sizeof made, "%s/f", d);
    CHECK(mkdir(d, 0755) == 0, "mkdir m: %s", strerror(errno));
    long long twins = ephd_stat(run, "dir_twins");
    int fd = open_standin(d, "m");
    if (fd < 0)
        return;
    /* The budget is 0: the create asks the daemon, which gives m its twin and answers "on disk". */
    create_through(fd, "f", O_EXCL | O_RDWR, made, "mid-call (m twinned by the create's own request)");
    CHECK(ephd_stat(run, "dir_twins") == twins + 1, "m did not get its twin in the call (%lld twins, %lld before)",
          ephd_stat(run, "dir_twins"), twins);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX];
    shimmed_run_dir(root, run);
    moved(root, run);
    renamed(root, run);
    mid_call(root, run);
    printf("standintwin_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return standin_main(argc, argv, "standintwin", child);
}
