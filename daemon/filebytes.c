/*
 * filebytes.c - the function's file bytes and their peak (filebytes.h).
 *
 * Bytes in memory are exact (the shared counters).  Bytes on disk are
 * measured by walking the managed roots, bounded by FBYTES_WALK_MAX entries
 * and reused for a while, because a walk costs the function's CPU.  A file
 * moved to disk between two walks is in neither figure for a moment, so a
 * sample may miss bytes but never counts one twice.
 *
 * Windows (the control op `peaks`, one per invocation): the shim raises the
 * shared bytes_in_memory_peak at every growth of bytes_in_memory (and the
 * daemon at every RESERVE), so the in-memory peak of a window is exact if
 * the window's opening sets that counter back to the bytes in memory then.
 * The lifetime peak is kept here, folded in at each opening.
 */
#include "filebytes.h"

#include <ftw.h>
#include <sys/stat.h>

#include "daemon.h"

#define FBYTES_WALK_MAX 100000 /* entries visited per walk */

static uint64_t fbytes_walk_sum;
static long fbytes_walk_entries;
static uint64_t fbytes_max;
static uint64_t fbytes_memory_life; /* in-memory peaks of the windows before this one */
static uint64_t fbytes_win_max;     /* largest sample of memory + disk in this window */
static uint64_t fbytes_win_at;      /* mono ns the window opened; 0: at the daemon's start */
static uint64_t fbytes_win_disk_min = UINT64_MAX; /* fewest bytes on disk sampled in it */

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

/* A sample of memory + disk; `at`: when the disk part was walked.  A walk
 * older than the window counts only for the lifetime peak. */
static void fbytes_note(uint64_t disk, uint64_t at)
{
    uint64_t total = atomic_load(&D.h->c.bytes_in_memory) + disk;
    if (total > fbytes_max)
        fbytes_max = total;
    if (at < fbytes_win_at)
        return;
    if (total > fbytes_win_max)
        fbytes_win_max = total;
    if (disk < fbytes_win_disk_min)
        fbytes_win_disk_min = disk;
}

uint64_t fbytes_disk_for_stats(void)
{
    static struct fbytes_walk w;
    uint64_t disk = fbytes_disk(&w, 1000000000ull);
    fbytes_note(disk, w.at);
    return disk;
}

void fbytes_sample(void)
{
    static struct fbytes_walk w;
    fbytes_note(fbytes_disk(&w, 5000000000ull), w.at);
}

uint64_t fbytes_memory_peak(void)
{
    uint64_t win = atomic_load(&D.h->c.bytes_in_memory_peak);
    return win > fbytes_memory_life ? win : fbytes_memory_life;
}

uint64_t fbytes_peak(void)
{
    uint64_t mem = fbytes_memory_peak();
    return fbytes_max > mem ? fbytes_max : mem;
}

void fbytes_window(int reset, struct fbytes_window *w)
{
    static struct fbytes_walk walk;
    uint64_t now = ephd_mono_ns();
    walk.at = 0; /* always a fresh walk: the window's end (or opening) is exact */
    uint64_t disk = fbytes_disk(&walk, 1);
    fbytes_note(disk, walk.at);
    _Atomic uint64_t *peak = &D.h->c.bytes_in_memory_peak;
    uint64_t mem = atomic_load(&D.h->c.bytes_in_memory);
    w->memory_peak = atomic_load(peak);
    if (w->memory_peak < mem)
        w->memory_peak = mem;
    /* The memory peak came at a moment the daemon did not see: the disk
     * then held at least (about) the fewest bytes any sample found there. */
    uint64_t at_memory_peak = w->memory_peak + fbytes_win_disk_min;
    w->peak = fbytes_win_max > at_memory_peak ? fbytes_win_max : at_memory_peak;
    w->memory = mem;
    w->disk = disk;
    w->ms = fbytes_win_at ? (int64_t)((now - fbytes_win_at) / 1000000) : -1;
    if (!reset)
        return;
    /* Set the shared peak back to the bytes in memory now.  A growth between
     * our two loads raised the peak (it is raised after the counter): the
     * exchange then fails and we look again, so no growth is lost. */
    for (;;) {
        uint64_t p = atomic_load(peak);
        if (p > fbytes_memory_life)
            fbytes_memory_life = p;
        mem = atomic_load(&D.h->c.bytes_in_memory);
        if (atomic_compare_exchange_strong(peak, &p, mem))
            break;
    }
    fbytes_win_max = mem + disk;
    fbytes_win_disk_min = disk;
    fbytes_win_at = walk.at;
}
