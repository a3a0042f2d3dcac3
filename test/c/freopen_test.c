/*
 * freopen_test.c - freopen onto an in-memory file keeps it in memory.
 *
 *   freopen_test         (runs itself under the shim: see shimmed.h)
 *
 * A glibc stream (here from fopen of an unmanaged path) and the standard
 * streams are pointed at files under the managed root with every mode; the
 * bytes must be right through the stream, through a later fopen, and the file
 * must not appear on the disk (glibc's own stat, which the shim cannot
 * answer, must say ENOENT).  Before the fix freopen moved the file to disk.
 * The standard streams are the exception: see below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

static int (*disk_stat)(const char *, struct stat *);

static void slurp(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "fopen %s: %s", path, strerror(errno));
    if (!f)
        return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
}

static void in_memory(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0, "%s: stat through the shim: %s", path, strerror(errno));
    CHECK(disk_stat(path, &st) < 0 && errno == ENOENT, "%s is on the disk: freopen moved it out of memory", path);
}

static int child_main(const char *root, const char *disk)
{
    (void)disk;
    disk_stat = (int (*)(const char *, struct stat *))libc_sym("stat");
    char a[4096], b[4096], c[4096], buf[4096];
    snprintf(a, sizeof a, "%s/a.txt", root);
    snprintf(b, sizeof b, "%s/b.txt", root);
    snprintf(c, sizeof c, "%s/c.txt", root);

    /* a glibc stream on an unmanaged file, reopened for writing an in-memory one */
    FILE *f = fopen("/dev/null", "r");
    CHECK(f != NULL, "fopen /dev/null");
    FILE *g = freopen(a, "w", f);
    CHECK(g == f, "freopen must return the same stream (%p vs %p)", (void *)g, (void *)f);
    fprintf(f, "hello %d\n", 42);
    fputs("second line\n", f);
    CHECK(fflush(f) == 0, "fflush");
    CHECK(ftell(f) == 21, "ftell %ld", ftell(f));
    CHECK(fileno(f) >= 0, "fileno");
    CHECK(fclose(f) == 0, "fclose");
    slurp(a, buf, sizeof buf);
    CHECK(strcmp(buf, "hello 42\nsecond line\n") == 0, "a.txt holds [%s]", buf);
    in_memory(a);

    /* append, read-write, read: each on a fresh glibc stream */
    f = fopen("/dev/null", "r");
    CHECK(freopen(a, "a", f) == f, "freopen a");
    fputs("appended\n", f);
    fclose(f);
    f = fopen("/dev/null", "r");
    CHECK(freopen(a, "r+", f) == f, "freopen r+");
    CHECK(fgets(buf, sizeof buf, f) && strcmp(buf, "hello 42\n") == 0, "r+ reads [%s]", buf);
    fseek(f, 0, SEEK_SET);
    fputs("HELLO", f);
    fclose(f);
    slurp(a, buf, sizeof buf);
    CHECK(strcmp(buf, "HELLO 42\nsecond line\nappended\n") == 0, "after a and r+: [%s]", buf);
    in_memory(a);

    /* a stream already on an in-memory file, reopened onto another one, keeps its fd number */
    f = fopen(a, "r");
    CHECK(f != NULL, "fopen a");
    int fd = fileno(f);
    CHECK(freopen(b, "w+", f) == f, "freopen w+ of a cookie stream");
    CHECK(fileno(f) == fd, "fd number kept: %d -> %d", fd, fileno(f));
    fputs("bee", f);
    rewind(f);
    CHECK(fgets(buf, sizeof buf, f) && strcmp(buf, "bee") == 0, "w+ reads back [%s]", buf);
    fclose(f);
    in_memory(b);

    /* a failed freopen: NULL, errno, the stream closed */
    f = fopen("/dev/null", "r");
    errno = 0;
    snprintf(buf, sizeof buf, "%s/missing/x", root);
    CHECK(freopen(buf, "r", f) == NULL && errno == ENOENT, "freopen of a missing path: errno %d", errno);
    f = fopen("/dev/null", "r");
    errno = 0;
    CHECK(freopen(a, "wx", f) == NULL && errno == EEXIST, "wx on an existing file: errno %d", errno);

    /* The standard streams stay glibc's static objects (a pointer saved before,
     * C++'s std::cout, write through them): their files move to disk, where
     * the kernel's writes count (test/fs/stdio_std.test.mjs compares with tmpfs). */
    fflush(stdout);
    int saved_out = dup(1), saved_in = dup(0);
    FILE *out = stdout;
    CHECK(freopen(c, "w", stdout) == out, "freopen stdout: %s", strerror(errno));
    printf("to stdout %s\n", "via printf");
    fprintf(out, "and the saved pointer\n");
    fflush(stdout);
    CHECK(freopen(a, "r", stdin) != NULL, "freopen stdin: %s", strerror(errno));
    CHECK(fgets(buf, sizeof buf, stdin) && strcmp(buf, "HELLO 42\n") == 0, "stdin reads [%s]", buf);
    dup2(saved_out, 1);
    dup2(saved_in, 0);
    slurp(c, buf, sizeof buf);
    CHECK(strcmp(buf, "to stdout via printf\nand the saved pointer\n") == 0, "c.txt holds [%s]", buf);
    struct stat st;
    CHECK(disk_stat(c, &st) == 0 && st.st_size == 43, "c.txt on disk: %s", strerror(errno));

    fprintf(stderr, "freopen_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "freopen_test", child_main);
}
