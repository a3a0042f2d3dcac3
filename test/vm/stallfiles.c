/*
 * stallfiles DIR GO N - the cgroup v2 guest's second writer (test/vm/cgroup-v2-init.sh): a process
 * that is attached to the daemon before a stall and asks it during the stall.  Test support.
 *
 * It creates DIR/first (under the shim: the process attaches, connects and takes its first pool
 * batch), prints "attached", waits until the path GO exists (at most 60 s), then writes N files of
 * 64 KiB, each as DIR/t<k> renamed to DIR/f<k> (more files than one pool batch holds: the shim
 * asks the daemon for more), reads each back and checks it, and prints "ok N".  Byte i of file k
 * is (k * 131 + i * 7) & 255, so a run without the shim writes the reference bytes.  Exit 0, or 1
 * with the failing call on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SF_SIZE 65536

static int sf_fail(const char *what, const char *path)
{
    fprintf(stderr, "stallfiles: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

static void sf_fill(unsigned char *buf, int k)
{
    for (int i = 0; i < SF_SIZE; i++)
        buf[i] = (unsigned char)((k * 131 + i * 7) & 255);
}

int main(int argc, char **argv)
{
    static unsigned char buf[SF_SIZE], back[SF_SIZE];
    char p[4096], q[4096];
    if (argc != 4 || atoi(argv[3]) <= 0) {
        fprintf(stderr, "usage: stallfiles DIR GO N\n");
        return 2;
    }
    const char *dir = argv[1], *go = argv[2];
    int n = atoi(argv[3]);
    snprintf(p, sizeof p, "%s/first", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "first\n", 6) != 6 || close(fd) < 0)
        return sf_fail("create", p);
    printf("attached\n");
    fflush(stdout);
    struct stat st;
    struct timespec nap = {0, 10 * 1000 * 1000};
    for (int i = 0; stat(go, &st) < 0; i++) {
        if (i == 6000) {
            errno = ETIMEDOUT;
            return sf_fail("wait for", go);
        }
        nanosleep(&nap, NULL);
    }
    for (int k = 0; k < n; k++) {
        snprintf(p, sizeof p, "%s/t%d", dir, k);
        snprintf(q, sizeof q, "%s/f%d", dir, k);
        sf_fill(buf, k);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            return sf_fail("create", p);
        if (write(fd, buf, SF_SIZE) != SF_SIZE || close(fd) < 0)
            return sf_fail("write", p);
        if (rename(p, q) < 0)
            return sf_fail("rename", p);
    }
    for (int k = 0; k < n; k++) {
        snprintf(q, sizeof q, "%s/f%d", dir, k);
        sf_fill(buf, k);
        fd = open(q, O_RDONLY);
        if (fd < 0)
            return sf_fail("open", q);
        ssize_t got = read(fd, back, SF_SIZE);
        close(fd);
        if (got != SF_SIZE || memcmp(buf, back, SF_SIZE) != 0) {
            errno = EIO;
            return sf_fail("read back", q);
        }
    }
    printf("ok %d\n", n);
    return 0;
}
