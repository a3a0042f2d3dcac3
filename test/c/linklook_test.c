/*
 * A hard link made in memory while other processes remove directories (shim/nslink.c).
 *
 * Every rmdir and every directory rename in the instance, anywhere, bumps the region's
 * dirs_gone.  The link looked at its parent before taking ns_lock and, when dirs_gone had moved
 * by the time it held the lock, gave up and tried again; after 64 tries it moved the file to
 * disk.  With another process making and removing a directory in a loop under load, that
 * happened (hardlinks.test.mjs "links while another process removes directories" failed a
 * fresh-clone make test with one eviction).  The link now looks at its parent under the lock.
 *
 * Forced with the shim's fault build: EPHEMERA_NS_STALL=link-look stops the linking process
 * (SIGSTOP) at each try, before the lock; this process removes a directory each time it stops
 * and lets it go on.  The link must end in memory (nothing at either name on disk, the file's
 * in-memory st_ino at both), after one stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "stalled.h"

#define DIRS 80                    /* more than the 64 tries the link had */

/* At the k-th stop, a directory goes while the link is between its tries and the lock (on disk or
 * in memory: the daemon's rmdir and the shim's both bump dirs_gone). */
static void remove_a_directory(int k, void *arg)
{
    char(*g)[PATH_MAX] = arg;
    if (k < DIRS)
        CHECK(rmdir(g[k]) == 0, "rmdir %s: %s", g[k], strerror(errno));
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char a[PATH_MAX], b[PATH_MAX], g[DIRS][PATH_MAX];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    for (int i = 0; i < DIRS; i++) {
        snprintf(g[i], sizeof g[i], "%s/g%d", root, i);
        CHECK(mkdir(g[i], 0755) == 0, "mkdir %s: %s", g[i], strerror(errno));
    }
    int fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "linked", 6) == 6 && close(fd) == 0, "create a: %s", strerror(errno));
    struct stat sa;
    CHECK(stat(a, &sa) == 0 && (sa.st_ino & INO_IN_MEMORY) && !disk_has(a), "a is not in memory: the test shows nothing");

    pid_t p = fork();
    if (p == 0) {
        setenv("EPHEMERA_NS_STALL", "link-look", 1);
        _exit(stall_exit_code(link(a, b)));
    }
    CHECK(p > 0, "fork: %s", strerror(errno));
    int code = -1, stops = p > 0 ? stall_run(p, remove_a_directory, g, &code) : 0;
    CHECK(stops >= 1, "the link never stopped at link-look: the test shows nothing (%s)", stall_said(code));
    CHECK(code == 0, "link: %s", stall_said(code));
    CHECK(stops == 1, "the link tried %d times: a directory removed meanwhile sent it round again", stops);
    CHECK(!disk_has(a) && !disk_has(b), "the link moved the file to disk (a %d, b %d on disk)", disk_has(a), disk_has(b));
    struct stat s1, s2;
    CHECK(stat(a, &s1) == 0 && stat(b, &s2) == 0, "stat after the link: %s", strerror(errno));
    CHECK(s1.st_ino == sa.st_ino && s2.st_ino == sa.st_ino && s1.st_nlink == 2,
          "a %llu, b %llu (nlink %lu), the file was %llu in memory", (unsigned long long)s1.st_ino,
          (unsigned long long)s2.st_ino, (unsigned long)s1.st_nlink, (unsigned long long)sa.st_ino);
    printf("linklook_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main_faulty(argc, argv, "linklook", child, NULL, 1);
}
