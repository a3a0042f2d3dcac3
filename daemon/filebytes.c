/*
 * filebytes.c - the function's file bytes and their peak (filebytes.h).
 *
 * Bytes in memory are exact (the shared counters).  Bytes on disk are
 * measured by walking the managed roots, bounded by FBYTES_WALK_MAX entries
 * and reused for a while, because a walk costs the function's CPU.  A file
 * moved to disk between two walks is in neither figure for a moment, so a
 * sample may miss bytes but never counts one twice.
 */
#include "filebytes.h"

#include <ftw.h>
#include <sys/stat.h>

#include "daemon.h"

#define FBYTES_WALK_MAX 100000 /* entries visited per walk */

static uint64_t fbytes_walk_sum;
static long fbytes_walk_entries;
static uint64_t fbytes_max;

/* A walk's result and when it was taken (mono ns, 0: never). */
struct fbytes_walk {
    uint64_t bytes, at;
};

static int fbytes_walk_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path;
    (void)f;
    if (type == FTW_F && S_ISREG(st->st_mode))
        fbytes_walk_sum += (uint64_t)st->st_size;
    return ++fbytes_walk_entries >= FBYTES_WALK_MAX;
}

static uint64_t fbytes_disk(struct fbytes_walk *w, uint64_t max_age_ns)
{
    uint64_t now = ephd_mono_ns();
    if (w->at && now - w->at < max_age_ns)
        return w->bytes;
    fbytes_walk_sum = 0;
    fbytes_walk_entries = 0;
    for (int i = 0; i < D.nroots && fbytes_walk_entries < FBYTES_WALK_MAX; i++)
        nftw(D.roots[i], fbytes_walk_one, 16, FTW_PHYS | FTW_MOUNT);
    w->bytes = fbytes_walk_sum;
    w->at = now;
    return w->bytes;
}

static void fbytes_note(uint64_t disk)
{
    uint64_t total = atomic_load(&D.h->c.bytes_in_memory) + disk;
    if (total > fbytes_max)
        fbytes_max = total;
}

uint64_t fbytes_disk_for_stats(void)
{
    static struct fbytes_walk w;
    uint64_t disk = fbytes_disk(&w, 1000000000ull);
    fbytes_note(disk);
    return disk;
}

void fbytes_sample(void)
{
    static struct fbytes_walk w;
    fbytes_note(fbytes_disk(&w, 5000000000ull));
}

uint64_t fbytes_peak(void)
{
    uint64_t mem = atomic_load(&D.h->c.bytes_in_memory_peak);
    return fbytes_max > mem ? fbytes_max : mem;
}
