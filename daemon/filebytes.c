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
 *
 * Files on disk are counted too, exactly, where the shim makes their size
 * changes (include/ephemera/diskbytes.h): the window's counted peak is the
 * most of memory + counted disk bytes at any instant, and the walks remain
 * for what the shims do not see.  Each `peaks` request checks every counted file
 * against the walk it makes anyway: the size the kernel has, or the slot
 * dropped when the file is no longer under a root (unlinked, moved away,
 * or replaced by a process the count does not see).
 */
#include "filebytes.h"

#include <ftw.h>
#include <sys/stat.h>

#include "daemon.h"
#include "ephemera/diskbytes.h"
#include "log.h"

#define FBYTES_WALK_MAX 100000 /* entries visited per walk */

static uint64_t fbytes_walk_sum;
static long fbytes_walk_entries;
static uint64_t fbytes_max;
static uint64_t fbytes_memory_life; /* in-memory peaks of the windows before this one */
static uint64_t fbytes_win_max;     /* largest sample of memory + disk in this window */
static uint64_t fbytes_win_at;      /* mono ns the window opened; 0: at the daemon's start */
static uint64_t fbytes_win_disk_min = UINT64_MAX; /* fewest bytes on disk sampled in it */
static uint64_t fbytes_counted_life; /* counted peaks of the windows before this one */

/* The counted files a window's opening checks against its walk. */
static struct fbytes_check {
    int slot, seen;
    uint64_t dev, ino, size;
} fbytes_chk[EPH_DFILES];
static int fbytes_nchk;

/* A walk's result and when it was taken (mono ns, 0: never). */
struct fbytes_walk {
    uint64_t bytes, at;
};

static int fbytes_walk_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path;
    (void)f;
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        fbytes_walk_sum += (uint64_t)st->st_size;
        for (int i = 0; i < fbytes_nchk; i++)
            if (fbytes_chk[i].ino == (uint64_t)st->st_ino && fbytes_chk[i].dev == (uint64_t)st->st_dev) {
                fbytes_chk[i].seen = 1;
                fbytes_chk[i].size = (uint64_t)st->st_size;
            }
    }
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

static uint64_t fbytes_counted_peak(void)
{
    uint64_t win = atomic_load(&D.h->counted_peak);
    return win > fbytes_counted_life ? win : fbytes_counted_life;
}

uint64_t fbytes_peak(void)
{
    uint64_t mem = fbytes_memory_peak(), counted = fbytes_counted_peak();
    if (counted > mem)
        mem = counted;
    return fbytes_max > mem ? fbytes_max : mem;
}

void fbytes_count_moved(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 0 &&
        eph_db_add(D.h, (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size) < 0)
        log_msg(LOG_DEBUG, "all %d counted disk files taken: the walks sample the rest", EPH_DFILES);
}

/* Before the walk at a window's end (or opening): the counted files to look for. */
static void fbytes_check_begin(void)
{
    struct eph_shm_header *h = D.h;
    uint32_t n = atomic_load(&h->dfiles_hwm);
    fbytes_nchk = 0;
    for (uint32_t i = 0; i < n && i < EPH_DFILES; i++) {
        struct eph_dfile *f = &h->dfiles[i];
        if (atomic_load(&f->state) != EPH_DF_LIVE)
            continue;
        fbytes_chk[fbytes_nchk++] = (struct fbytes_check){
            .slot = (int)i, .dev = atomic_load(&f->dev), .ino = atomic_load(&f->ino)};
    }
}

/* After it: each counted file at the size the walk found, or dropped when the walk (a complete
 * one) did not find it under the roots; bytes a late write left on a free slot leave too. */
static void fbytes_check_end(void)
{
    struct eph_shm_header *h = D.h;
    int complete = fbytes_walk_entries < FBYTES_WALK_MAX;
    for (int i = 0; i < fbytes_nchk; i++) {
        struct fbytes_check *c = &fbytes_chk[i];
        if (!eph_db_is(h, c->slot, c->dev, c->ino))
            continue;
        if (c->seen)
            eph_db_resize(h, c->slot, c->size, 1);
        else if (complete)
            eph_db_drop(h, c->slot);
    }
    fbytes_nchk = 0;
    uint32_t n = atomic_load(&h->dfiles_hwm);
    for (uint32_t i = 0; i < n && i < EPH_DFILES; i++) {
        struct eph_dfile *f = &h->dfiles[i];
        if (atomic_load(&f->state) == EPH_DF_FREE && atomic_load(&f->size) != 0)
            atomic_fetch_sub(&h->disk_bytes, atomic_exchange(&f->size, 0));
    }
}

void fbytes_window(int reset, struct fbytes_window *w)
{
    static struct fbytes_walk walk;
    uint64_t now = ephd_mono_ns();
    walk.at = 0; /* always a fresh walk: the window's end (or opening) is exact */
    fbytes_check_begin();
    uint64_t disk = fbytes_disk(&walk, 1);
    fbytes_check_end();
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
    /* Exact where the shims count: at any instant with counted bytes on disk, the
     * counted peak saw memory + disk; at any other, memory alone is the sum. */
    w->counted_peak = atomic_load(&D.h->counted_peak);
    if (w->counted_peak < w->memory_peak)
        w->counted_peak = w->memory_peak;
    if (w->peak < w->counted_peak)
        w->peak = w->counted_peak;
    w->disk_counted = atomic_load(&D.h->disk_bytes);
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
    /* The counted peak starts at what is there now, with each counted file checked.  A
     * growth of either side raises it after its own counter moved, so none is lost. */
    uint64_t c = atomic_exchange(&D.h->counted_peak, 0);
    if (c > fbytes_counted_life)
        fbytes_counted_life = c;
    eph_db_note_peak(D.h, atomic_load(&D.h->disk_bytes));
}
