/*
 * test/fs/c/cold_read.c - what reading a file costs a process that never touched its pages:
 *
 *   cold_read DIR
 *
 * A child writes DIR/cold (4 MiB, 64 KiB appends) and exits; this process then reads it twice,
 * start to end, 8 KiB a read() into a buffer it touched beforehand, and checks every byte.  For
 * each pass it prints its minor page faults (getrusage) and read system calls (syscr in
 * /proc/self/io, less the reads of that file itself):
 *
 *   pass 1 faults F calls C
 *   pass 2 faults F calls C
 *
 * cold_read.test.mjs runs it on tmpfs and under the shim and compares (ARCHITECTURE.md, "Reads of
 * pages not yet mapped").  A bad byte prints "FAIL ..." and exits 1; the last line is "ok".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (4u << 20)
#define CHUNK 8192u

static long minflt(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : -1;
}

/* syscr of /proc/self/io, read into a static buffer (no allocation between the looks). */
static long syscr(void)
{
    static char b[2048];
    int fd = open("/proc/self/io", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    b[n] = '\0';
    char *p = strstr(b, "syscr:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static unsigned char want(size_t off) { return (unsigned char)(off >> 16) ^ (unsigned char)(off >> 3); }

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cold_read DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/cold", argv[1]);
    static unsigned char buf[SIZE];
    for (size_t off = 0; off < SIZE; off++)
        buf[off] = want(off);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        for (size_t off = 0; fd >= 0 && off < SIZE; off += 65536)
            if (write(fd, buf + off, 65536) != 65536)
                _exit(1);
        _exit(fd >= 0 && close(fd) == 0 ? 0 : 1);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("FAIL the writer\n");
        return 1;
    }
    memset(buf, 0xee, sizeof buf); /* the program's own pages are all touched before the passes */
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("FAIL open %s\n", path);
        return 1;
    }
    for (int pass = 1; pass <= 2; pass++) {
        long c0 = syscr(), f0 = minflt();
        for (size_t off = 0; off < SIZE; off += CHUNK)
            if (read(fd, buf + off, CHUNK) != (ssize_t)CHUNK) {
                printf("FAIL short read at %zu\n", off);
                return 1;
            }
        long f1 = minflt(), c1 = syscr();
        for (size_t off = 0; off < SIZE; off++)
            if (buf[off] != want(off)) {
                printf("FAIL pass %d: byte %zu is %d, want %d\n", pass, off, buf[off], want(off));
                return 1;
            }
        memset(buf, 0xee, sizeof buf);
        lseek(fd, 0, SEEK_SET);
        printf("pass %d faults %ld calls %ld\n", pass, f1 - f0, c1 - c0 - 1); /* less syscr's own read */
    }
    close(fd);
    printf("ok\n");
    return 0;
}
