/*
 * test/fs/c/vfork_pool.c - a parent that makes a file, then vfork children that exec this program
 * again (test/fs/vforkpool.test.mjs): "idle" makes nothing, "make NAME" makes NAME with its own
 * name as content.  As gcc's driver runs cc1 (which makes no new file) and then as (which makes the
 * .o).  Usage: vfork_pool DIR.  The parent reads every file back and prints "ok".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int make(const char *path)
{
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, path, strlen(path));
    return close(fd) == 0 && n == (ssize_t)strlen(path) ? 0 : -1;
}

static int same(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == (ssize_t)strlen(path) && memcmp(buf, path, (size_t)n) == 0;
}

static int child(const char *self, const char *what, const char *path)
{
    char *argv[] = {(char *)self, (char *)what, (char *)path, NULL};
    pid_t p = vfork();
    if (p == 0) {
        execv(self, argv);
        _exit(127);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "idle") == 0)
        return 0;
    if (argc == 3 && strcmp(argv[1], "make") == 0)
        return make(argv[2]) == 0 ? 0 : 1;
    if (argc != 2) {
        fprintf(stderr, "usage: vfork_pool DIR\n");
        return 2;
    }
    char self[4096], p0[4096], p1[4096], p2[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 2;
    self[n] = 0;
    snprintf(p0, sizeof p0, "%s/parent.txt", argv[1]);
    snprintf(p1, sizeof p1, "%s/child1.txt", argv[1]);
    snprintf(p2, sizeof p2, "%s/child2.txt", argv[1]);
    if (make(p0) < 0 || child(self, "idle", p1) < 0 || child(self, "make", p1) < 0 || child(self, "idle", p2) < 0 ||
        child(self, "make", p2) < 0) {
        fprintf(stderr, "vfork_pool: %s\n", strerror(errno));
        return 1;
    }
    if (!same(p0) || !same(p1) || !same(p2)) {
        fprintf(stderr, "vfork_pool: a file does not read back\n");
        return 1;
    }
    puts("ok");
    return 0;
}
