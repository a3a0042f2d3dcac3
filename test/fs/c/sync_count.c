/*
 * test/fs/c/sync_count.c - the sync calls of a managed root and of a directory outside it, between
 * marker calls that sync.test.mjs finds in an strace of this program:
 *
 *   sync_count MANAGED_DIR OUTSIDE_DIR
 *
 * Window "managed" (access() of /nonexistent-sync/managed-begin ... -end): fsync, fdatasync,
 * syncfs and sync_file_range of the managed directory, of a small file in it and of a file big
 * enough to leave memory under the test's budget.  Window "outside": the same calls on the other
 * directory and a file in it, and an fsync of an fd that was a managed directory's before
 * fdopendir + closedir closed it inside libc and a libc fopen took its number again.  The checks
 * of results print "FAIL ..." and exit 1; on success the last line is "ok".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failed;

static void check(int cond, const char *what)
{
    if (!cond) {
        printf("FAIL %s (errno %d: %s)\n", what, errno, strerror(errno));
        failed = 1;
    }
}

static void marker(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "/nonexistent-sync/%s", name);
    (void)access(p, F_OK);
}

/* Every sync call of fd, each expected to succeed. */
static void sync_all(int fd, const char *what)
{
    char w[160];
    snprintf(w, sizeof w, "fsync of %s", what);
    check(fsync(fd) == 0, w);
    snprintf(w, sizeof w, "fdatasync of %s", what);
    check(fdatasync(fd) == 0, w);
    snprintf(w, sizeof w, "syncfs of %s", what);
    check(syncfs(fd) == 0, w);
    snprintf(w, sizeof w, "sync_file_range of %s", what);
    check(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) == 0, w);
}

static int make_file(const char *dir, const char *name, size_t bytes)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_TRUNC | O_RDWR, 0644);
    check(fd >= 0, p);
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (size_t done = 0; fd >= 0 && done < bytes;) {
        size_t n = bytes - done < sizeof chunk ? bytes - done : sizeof chunk;
        ssize_t w = write(fd, chunk, n);
        check(w == (ssize_t)n, "write");
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    return fd;
}

/* A directory or a new file of `bytes`, opened and then synced every way: its fd. */
static int synced(const char *dir, const char *name, size_t bytes, const char *what)
{
    int fd = name ? make_file(dir, name, bytes) : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    check(fd >= 0, what);
    sync_all(fd, what);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sync_count MANAGED_DIR OUTSIDE_DIR\n");
        return 2;
    }
    const char *in = argv[1], *out = argv[2];
    setvbuf(stdout, NULL, _IONBF, 0);

    /* warm-up: the shim's start-up and first contact with the daemon stay out of the windows */
    close(make_file(in, "warm", 10));

    marker("managed-begin");
    int d = synced(in, NULL, 0, "the managed directory");
    int small = synced(in, "small", 4096, "a small managed file");
    int big = synced(in, "big", 4u << 20, "a managed file that left memory"); /* 4× the budget */
    /* the kernel's own name of the fd (raw: the shim's readlink does not see this call), which is
     * a memfd's while the file is in memory: the test checks that it was not */
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", big);
    long tl = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
    target[tl > 0 ? tl : 0] = '\0';
    printf("big on disk %d\n", tl > 0 && strncmp(target, "/memfd:", 7) != 0);
    int dup_d = dup(d);
    check(dup_d >= 0 && fsync(dup_d) == 0, "fsync of a dup of the managed directory's fd");
    close(dup_d);
    close(big);
    close(small);
    close(d);
    marker("managed-end");

    marker("outside-begin");
    int o = synced(out, NULL, 0, "the outside directory");
    int of = synced(out, "file", 4096, "an outside file");
    close(of);
    close(o);
    /* A managed directory's fd handed to libc, closed there, its number taken by a libc open
     * outside the roots: the outside file's fsync must reach the kernel. */
    int m = open(in, O_RDONLY | O_DIRECTORY);
    DIR *dir = m >= 0 ? fdopendir(m) : NULL;
    check(dir != NULL, "fdopendir of the managed directory");
    if (dir)
        closedir(dir);
    char p[4096];
    snprintf(p, sizeof p, "%s/reused", out);
    FILE *f = fopen(p, "w");
    check(f != NULL, "fopen outside");
    if (f) {
        printf("reused %d\n", fileno(f) == m);
        check(fputs("data\n", f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0, "fsync of the reused fd");
        fclose(f);
    }
    marker("outside-end");

    /* The kernel's errors stay: a closed fd, and bad arguments on a managed fd. */
    errno = 0;
    check(fsync(d) == -1 && errno == EBADF, "fsync of the closed managed directory fd gives EBADF");
    errno = 0;
    check(fdatasync(d) == -1 && errno == EBADF, "fdatasync of the closed managed directory fd gives EBADF");
    int s2 = open(in, O_RDONLY | O_DIRECTORY);
    errno = 0;
    check(sync_file_range(s2, 0, 0, 0x80) == -1 && errno == EINVAL, "sync_file_range with unknown flags gives EINVAL");
    errno = 0;
    check(sync_file_range(s2, -1, 0, SYNC_FILE_RANGE_WRITE) == -1 && errno == EINVAL, "sync_file_range at a negative offset gives EINVAL");
    errno = 0;
    check(sync_file_range(s2, 1, 0x7fffffffffffffffLL, SYNC_FILE_RANGE_WRITE) == -1 && errno == EINVAL,
          "sync_file_range past the largest offset gives EINVAL");
    close(s2);
    int pth = open(in, O_PATH | O_DIRECTORY);
    errno = 0;
    check(pth >= 0 && fsync(pth) == -1 && errno == EBADF, "fsync of an O_PATH fd gives EBADF");
    close(pth);

    if (failed)
        return 1;
    printf("ok\n");
    return 0;
}
