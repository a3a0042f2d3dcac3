/*
 * The daemon makes the region pages of the slots its next pool batches will
 * lend resident ahead, off the create path (daemon/namespace.c,
 * ns_populate_ahead; docs/ARCHITECTURE.md, "tar's time"), so that lending a
 * slot on a fresh page costs no page fault in the daemon.
 *
 *   1. After this process made a file (its first pool batch), the daemon's own
 *      page tables map the slot table's pages past the high-water mark: read
 *      from /proc/<daemon>/pagemap (the present bit; no PFN needed), polled
 *      with a bound, since the daemon does it after its reply.
 *   2. Those slots behave as fresh ones: a forked child (a shim with a pool of
 *      its own, taken from the populated slots) makes files there, and this
 *      process reads every byte and size back, renames and unlinks them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#define NFILES 300
#define BOUND_S 20.0

static pid_t daemon_pid;

/* Where the process whose maps file this is maps the region (its mapping at offset 0), or 0. */
static unsigned long region_in(const char *maps)
{
    FILE *f = fopen(maps, "r");
    char line[PATH_MAX + 128];
    unsigned long lo = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b, off;
        if (strstr(line, "memfd:ephemera-region") && sscanf(line, "%lx-%lx %*s %lx", &a, &b, &off) == 3 && off == 0) {
            lo = a;
            break;
        }
    }
    if (f)
        fclose(f);
    return lo;
}

/* How many of the pages [addr, addr + n pages) the daemon's page tables map (pagemap bit 63). */
static long daemon_present(unsigned long addr, long n, long page)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", (int)daemon_pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long present = 0;
    for (long i = 0; i < n; i++) {
        uint64_t e = 0;
        if (pread(fd, &e, sizeof e, (off_t)((addr / (unsigned long)page + (unsigned long)i) * sizeof e)) != sizeof e) {
            present = -1;
            break;
        }
        present += (long)(e >> 63);
    }
    close(fd);
    return present;
}

static void ahead_resident(const char *root)
{
    char f[PATH_MAX + 16];
    snprintf(f, sizeof f, "%s/first", root);
    CHECK(file_put(f, 'a', 100), "the first file: %s", strerror(errno));
    char maps[64];
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int)daemon_pid);
    struct eph_shm_header *h = (struct eph_shm_header *)region_in("/proc/self/maps"); /* the shim's */
    unsigned long d = region_in(maps);
    CHECK(h && d, "the region's mapping: ours %p, the daemon's %#lx", (void *)h, d);
    if (!h || !d)
        return;
    long page = sysconf(_SC_PAGESIZE);
    /* Whole pages of the slots from hwm + 1 to hwm + 64 (half a grown batch: the daemon's
     * bound is one, from the hwm it saw after its reply). */
    double t0 = now_s();
    long n = 0, got = -1;
    uint32_t hwm = 0;
    do {
        if (got >= 0)
            pause_ms(20);
        hwm = atomic_load(&h->inode_hwm);
        uint64_t from = h->inodes_off + (uint64_t)(hwm + 1) * sizeof(struct eph_inode);
        uint64_t to = h->inodes_off + (uint64_t)(hwm + 64) * sizeof(struct eph_inode);
        if (hwm + 64 > h->ninodes)
            break;
        unsigned long first = (unsigned long)((from + (uint64_t)page - 1) / (uint64_t)page);
        n = (long)(to / (uint64_t)page) - (long)first;
        got = daemon_present(d + first * (unsigned long)page, n, page);
    } while (got >= 0 && got < n && now_s() - t0 < BOUND_S);
    CHECK(n > 0 && got == n, "the daemon maps %ld of the %ld slot pages past the high-water mark %u (within %.0f s)",
          got, n, hwm, BOUND_S);
    printf("slotahead_test: %ld of %ld slot pages past hwm %u resident in the daemon\n", got, n, hwm);
    unlink(f);
}

static void fill(char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)((i * 131 + seed * 7) & 0xff);
}

static void fresh_after_fork(const char *root)
{
    static char b[6000], got[6001];
    pid_t c = fork();
    if (c == 0) {
        for (unsigned i = 0; i < NFILES; i++) {
            char p[PATH_MAX + 32];
            snprintf(p, sizeof p, "%s/f%u", root, i);
            size_t n = 1 + (i * 37) % sizeof b;
            fill(b, n, i);
            int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
            if (fd < 0 || write(fd, b, n) != (ssize_t)n || close(fd) != 0)
                _exit(10);
        }
        _exit(0);
    }
    double took;
    int st = c > 0 ? wait_bounded_s(c, BOUND_S, &took) : -1;
    CHECK(st == 0, "the child's %d creates: status %d", NFILES, st);
    int bad = 0;
    for (unsigned i = 0; i < NFILES && st == 0; i++) {
        char p[PATH_MAX + 32], q[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/f%u", root, i);
        snprintf(q, sizeof q, "%s/g%u", root, i);
        size_t n = 1 + (i * 37) % sizeof b;
        fill(b, n, i);
        struct stat sb;
        int fd = open(p, O_RDONLY);
        ssize_t r = fd >= 0 ? pread(fd, got, sizeof got, 0) : -1;
        if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size != (off_t)n || r != (ssize_t)n || memcmp(got, b, n) != 0 ||
            sb.st_nlink != 1)
            bad++;
        if (fd >= 0)
            close(fd);
        if (rename(p, q) != 0 || unlink(q) != 0)
            bad++;
    }
    CHECK(bad == 0, "%d of %d files made in populated slots after a fork read back wrong", bad, NFILES);
    printf("slotahead_test: %d files made by a forked child in fresh slots: %s\n", NFILES, bad ? "WRONG" : "as written");
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX];
    daemon_pid = shimmed_daemon(root, run);
    if (daemon_pid <= 0)
        return 1;
    ahead_resident(root);
    fresh_after_fork(root);
    printf("slotahead_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "slotahead", child);
}
