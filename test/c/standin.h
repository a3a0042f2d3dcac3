/*
 * standin.h - helpers and set-up of the tests of stand-in fds (shim/nsdirfd.c: fds of directories
 * in memory): standintwin_test, standinrename_test, standincall_test.
 */
#ifndef EPH_TEST_STANDIN_H
#define EPH_TEST_STANDIN_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

/* fd is a stand-in (the removed directory it is opened on), not a disk directory. */
static inline int is_standin(int fd)
{
    char l[64], t[PATH_MAX];
    snprintf(l, sizeof l, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(l, t, sizeof t - 1);
    if (n < 0)
        return 0;
    t[n] = '\0';
    return strstr(t, ".ephemera-standin-") != NULL;
}

/* Another process (its shim's twin hooks are its own) gives the directories on dir their twins:
 * a symlink is made on disk, so the directories on its path get their twins first.  0 or -1. */
static inline int twin_elsewhere(const char *dir)
{
    pid_t p = fork();
    if (p == 0) {
        char l[PATH_MAX + 32];
        snprintf(l, sizeof l, "%s/l", dir);
        _exit(symlink("x", l) == 0 && unlink(l) == 0 ? 0 : 1);
    }
    int st = 0;
    return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* An fd of the directory dir (in memory): a stand-in, or -1 (a failed check). */
static inline int open_standin(const char *dir, const char *name)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0, "open %s: %s", name, strerror(errno));
    CHECK(fd < 0 || is_standin(fd), "%s was not in memory: its fd is no stand-in, the test shows nothing", name);
    return fd;
}

/* A create of f (O_CREAT | flags) through the stand-in fd, which must make the file at want, as
 * tmpfs does; what names the case in the failures.  fd is closed. */
static inline void create_through(int fd, const char *f, int flags, const char *want, const char *what)
{
    int nf = openat(fd, f, O_CREAT | flags, 0600);
    CHECK(nf >= 0, "%s: creat %s through the stand-in: %s (tmpfs: made)", what, f, strerror(errno));
    if (nf >= 0)
        close(nf);
    struct stat st;
    CHECK(stat(want, &st) == 0 && S_ISREG(st.st_mode), "%s: %s is not there: %s", what, want, strerror(errno));
    close(fd);
}

/* main() of standintwin_test and standinrename_test: child(root, disk) runs shimmed, beside a
 * daemon of `--budget 0`, which only keeps its evictions out of the way (the twins are the
 * tests' own). */
static inline int standin_main(int argc, char **argv, const char *name, int (*child)(const char *, const char *))
{
    const char *const args[] = {"--budget", "0", NULL};
    return shimmed_main_args(argc, argv, name, child, args);
}

#endif
