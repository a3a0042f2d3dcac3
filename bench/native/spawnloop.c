/*
 * spawnloop.c - the cost of starting a program as gcc's driver does (libiberty's pex-unix):
 * vfork (or fork), the child execs, the parent reads a close-on-exec pipe until it closes.
 *
 *   spawnloop N vfork|fork [MiB [FILE]]    (default 8 MiB touched in the parent first)
 *
 * FILE: written and closed first, so that a run under the shim with FILE in a root has attached
 * (and holds no fd of the shim's) when it spawns.
 *
 * Prints the min, first quartile, median and max of the N spawns in ms, each timed from just
 * before vfork until the pipe's EOF (the child's exec done), the wait for the exit not included.
 * Run it with and without LD_PRELOAD=build/libephemera.so (docs/BENCHMARKS.md, "vfork served as
 * vfork").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawnloop N vfork|fork [MiB [FILE]]\n");
        return 2;
    }
    int n = atoi(argv[1]), use_vfork = strcmp(argv[2], "vfork") == 0;
    size_t mib = argc > 3 ? (size_t)atoi(argv[3]) : 8;
    if (n <= 0 || (!use_vfork && strcmp(argv[2], "fork") != 0)) {
        fprintf(stderr, "spawnloop: N > 0, and vfork or fork\n");
        return 2;
    }
    char *mem = malloc(mib << 20);
    if (mib && !mem)
        return 1;
    memset(mem, 1, mib << 20); /* the pages a fork copies the table of and faults on after */
    if (argc > 4) {
        int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0) {
            perror(argv[4]);
            return 1;
        }
    }
    double *t = calloc((size_t)n, sizeof *t);
    if (!t)
        return 1;
    for (int i = 0; i < n; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return 1;
        double t0 = now_ms();
        pid_t pid = use_vfork ? vfork() : fork();
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (pid < 0) {
            perror("spawnloop: vfork");
            return 1;
        }
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        t[i] = now_ms() - t0;
        close(p[0]);
        int st;
        waitpid(pid, &st, 0);
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("%s n=%d min %.3f q1 %.3f median %.3f max %.3f ms\n", argv[2], n, t[0], t[n / 4], t[n / 2], t[n - 1]);
    free(mem);
    free(t);
    return 0;
}
