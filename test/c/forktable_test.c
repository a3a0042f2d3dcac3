/*
 * forktable_test.c - a fork child's fd table holds what the parent held at the
 * fork, not what the parent opened after it.
 *
 *   forktable_test       (runs itself under the shim: see shimmed.h)
 *
 * Once a process has held an in-memory file, its fd table is a shared memfd
 * (its ledger).  A child forked while it holds none gets no copy from the
 * parent and made its own private table by copying that shared mapping after
 * fork had returned to both, so an in-memory file the parent opened at once
 * landed in the child's table too, under an fd number that in the child is
 * another file (or none).  The child then served that fd from the parent's
 * description and, when it closed it or exec'd, dropped a reference it never
 * took: the parent's file lost its last reference while still open, and was
 * evicted from under its reader.  That is how `sort --compress-program=gzip`
 * with its temp files under a small budget fed `gzip -d` a punched file
 * ("gzip: stdin: not in gzip format").  Nearly every child saw the parent's
 * file before the fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

enum { ROUNDS = 300, SLOT = 100 };

static int child_main(const char *root, const char *disk)
{
    (void)disk;
    char path[4096];
    snprintf(path, sizeof path, "%s/f", root);
    /* the first in-memory file: the table becomes the shared ledger */
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5, "create %s: %s", path, strerror(errno));
    close(fd);
    struct stat null_st;
    CHECK(stat("/dev/null", &null_st) == 0, "stat /dev/null: %s", strerror(errno));
    int wrong = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int z = open("/dev/null", O_RDONLY);
        CHECK(z >= 0 && dup2(z, SLOT) == SLOT, "/dev/null on fd %d: %s", SLOT, strerror(errno));
        close(z);
        pid_t pid = fork();
        if (pid == 0) {
            struct stat st;
            int same = fstat(SLOT, &st) == 0 && st.st_rdev == null_st.st_rdev && st.st_ino == null_st.st_ino;
            _exit(same ? 0 : 1);
        }
        CHECK(pid > 0, "fork: %s", strerror(errno));
        /* at once, while the child is starting: the slot becomes the in-memory file */
        int m = open(path, O_RDONLY);
        CHECK(m >= 0 && dup2(m, SLOT) == SLOT, "%s on fd %d: %s", path, SLOT, strerror(errno));
        close(m);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            wrong++;
        close(SLOT);
    }
    CHECK(wrong == 0, "%d of %d children took the file the parent opened after fork for their fd %d",
          wrong, ROUNDS, SLOT);
    /* the parent's file is intact and still in memory */
    char buf[8] = {0};
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "f holds [%s]", buf);
    close(fd);
    fprintf(stderr, "forktable_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "forktable_test", child_main);
}
