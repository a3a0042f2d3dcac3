/*
 * standin.h - helpers of the tests of stand-in fds (shim/nsdirfd.c: fds of directories in memory):
 * standintwin_test, standinrename_test, standincall_test.
 */
#ifndef EPH_TEST_STANDIN_H
#define EPH_TEST_STANDIN_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

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

#endif
