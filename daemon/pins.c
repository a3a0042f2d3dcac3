/*
 * pins.c - pins nobody needs any more (pins.h).
 *
 * An app's mmap pins its file (the kernel serves that mapping from the
 * memfd's pages), and nothing tells us when the mapping ends: munmap, a process's exit or exec, a fork child's copy.  So
 * when eviction has work to do, at most once per PINS_SCAN_NS, files that
 * are pinned and no longer open anywhere are looked for in /proc/<pid>/smaps
 * of every process (not only the ledger's: a child forked after the fd was
 * closed inherits the mapping and never registers).  The shim marks its own
 * fast-path mappings MADV_DONTDUMP, so a mapping of the memfd without 'dd'
 * in its VmFlags is the program's.  /proc/<pid>/maps comes first: it costs
 * no page walk, and smaps is read only for a process that maps a candidate.
 *
 * The shim bumps pinned (a count, never 0) under the inode lock before each
 * mapping, with the fd open: so a mapping made or about to be made since we
 * saw open_count == 0 changes pinned, and we compare it under the lock
 * before clearing.  A shim process we cannot read could map it: then
 * nothing is unpinned.  Not covered: an app that marks its own mapping
 * MADV_DONTDUMP, and a mapping carried by a fork child whose pid /proc
 * listed before the child existed while its parent unmapped behind us.
 */
#include "pins.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon.h"
#include "ephemera/lock.h"
#include "ledger.h"
#include "log.h"
#include "namespace.h"

#define PINS_SCAN_NS 1000000000ull

/* The memfd's kernel identity, as /proc/locks and /proc/<pid>/maps print it.  0 if known. */
int pins_memfd_id(int memfd, unsigned *maj, unsigned *min, unsigned long long *ino)
{
    struct stat st;
    if (fstat(memfd, &st) < 0)
        return -1;
    *maj = major(st.st_dev);
    *min = minor(st.st_dev);
    *ino = (unsigned long long)st.st_ino;
    return 0;
}


struct unpin_cand {
    uint32_t idx, gen, pinned;
    int mapped;
    unsigned maj, min;
    unsigned long long ino;
};

/* 1: the line is a mapping header naming candidate *k's memfd. */
static int pins_map_line(const char *line, const struct unpin_cand *c, size_t n, size_t *k)
{
    unsigned maj, min;
    unsigned long long ino;
    if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu", &maj, &min, &ino) != 3)
        return -1; /* not a header (an smaps field) */
    for (size_t i = 0; i < n; i++)
        if (c[i].ino == ino && c[i].maj == maj && c[i].min == min) {
            *k = i;
            return 1;
        }
    return 0;
}

/* Marks the candidates process pid maps itself; -1 if it cannot be read. */
static int pins_scan_pid(const char *pid, struct unpin_cand *c, size_t n, char **buf, size_t *cap)
{
    char p[300]; /* a d_name is at most 255 bytes */
    snprintf(p, sizeof p, "/proc/%s/maps", pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return errno == ENOENT || errno == ESRCH ? 0 : -1;
    int any = 0;
    size_t k;
    while (!any && getline(buf, cap, f) > 0)
        any = pins_map_line(*buf, c, n, &k) == 1 && !c[k].mapped;
    fclose(f);
    if (!any)
        return 0;
    snprintf(p, sizeof p, "/proc/%s/smaps", pid);
    if (!(f = fopen(p, "re")))
        return errno == ENOENT || errno == ESRCH ? 0 : -1;
    int cur = -1;
    while (getline(buf, cap, f) > 0) {
        int h = pins_map_line(*buf, c, n, &k);
        if (h >= 0) {
            cur = h ? (int)k : -1;
        } else if (cur >= 0 && strncmp(*buf, "VmFlags:", 8) == 0) {
            const char *dd = strstr(*buf, " dd");
            if (!dd || (dd[3] != ' ' && dd[3] != '\n' && dd[3] != '\0'))
                c[cur].mapped = 1;
            cur = -1;
        }
    }
    fclose(f);
    return 0;
}

void pins_release_unmapped(void)
{
    static uint64_t next_at;
    uint64_t now = ephd_mono_ns();
    if (now < next_at)
        return;
    next_at = now + PINS_SCAN_NS;
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    struct unpin_cand *c = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    DIR *d = NULL;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (atomic_load(&in->state) != EPH_MEM || !atomic_load(&in->pinned) ||
            atomic_load(&in->open_count) != 0)
            continue;
        unsigned maj, min;
        unsigned long long ino;
        if (pins_memfd_id(in->mem_fd, &maj, &min, &ino) < 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct unpin_cand *g = realloc(c, nc * sizeof *c);
            if (!g)
                goto out;
            c = g;
            cap = nc;
        }
        /* pinned before open_count (both seq_cst): see above. */
        c[n] = (struct unpin_cand){ .idx = i, .gen = atomic_load(&in->gen),
                                    .pinned = atomic_load(&in->pinned), .maj = maj, .min = min, .ino = ino };
        if (c[n].pinned && atomic_load(&in->open_count) == 0)
            n++;
    }
    if (n == 0)
        goto out;
    uint64_t t0 = ephd_mono_ns();
    if (!(d = opendir("/proc")))
        goto out;
    char self[16];
    snprintf(self, sizeof self, "%d", (int)getpid());
    size_t lcap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9' || strcmp(de->d_name, self) == 0)
            continue;
        /* Only a process the shim runs in could have mapped a memfd (a fork
         * child has its parent's credentials): others we may not read (a
         * container's init) are skipped. */
        if (pins_scan_pid(de->d_name, c, n, &line, &lcap) < 0 &&
            (errno != EACCES || ledger_registered(atoi(de->d_name)))) {
            log_msg(LOG_INFO, "cannot read /proc/%s/maps (%s): keeping mmap pins", de->d_name,
                    strerror(errno));
            goto out;
        }
    }
    int freed = 0;
    for (size_t i = 0; i < n; i++) {
        struct eph_inode *in = &D.inodes[c[i].idx];
        if (c[i].mapped)
            continue;
        /* Taken over from a stuck holder: whatever it was doing, leave the pin. */
        int ok = !ns_lock(c[i].idx) && atomic_load(&in->state) == EPH_MEM &&
                 atomic_load(&in->gen) == c[i].gen && atomic_load(&in->pinned) == c[i].pinned &&
                 atomic_load(&in->open_count) == 0;
        if (ok)
            atomic_store(&in->pinned, 0);
        eph_unlock(&in->lock);
        freed += ok;
    }
    log_msg(freed ? LOG_INFO : LOG_DEBUG,
            "mmap pins: %d of %zu closed pinned files no longer mapped, unpinned (scan %llu us)", freed,
            n, (unsigned long long)((ephd_mono_ns() - t0) / 1000));
out:
    if (d)
        closedir(d);
    free(line);
    free(c);
}
