/*
 * shim/fp_times.h - file times and the LRU stamp of in-memory inodes.
 *
 * Every read and write stamps the inode (atime, mtime, LRU), so the clocks
 * are on the fast path.  The fine CLOCK_REALTIME costs ~40 ns in a VM, a
 * coarse clock ~7 ns, against ~700 ns for the 8 KiB copy itself.  So: one
 * coarse clock per operation, and the fine clock only where tmpfs's
 * multigrain timestamps need it (see fp_stamp_write).
 *
 * CLOCK_REALTIME_COARSE and CLOCK_MONOTONIC_COARSE advance together (one
 * timekeeping update moves both), so each thread reads one of them and reuses
 * its last reading of the other while the first has not moved.
 *
 * The per-operation stamps are inline here, so that the read and write paths
 * in fp_io.c compile as they did when all of this was one file.
 */
#ifndef SHIM_FP_TIMES_H
#define SHIM_FP_TIMES_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "compiler.h"
#include "ephemera/shm.h"
#include "init.h"

#define FP_DAY_NS (86400ll * 1000000000ll)
#define FP_FUTURE_NS 1000000000ll

struct coarse_now {
    int64_t real;                       /* CLOCK_REALTIME_COARSE ns */
    uint64_t mono;                      /* CLOCK_MONOTONIC_COARSE ns: the daemon's LRU clock */
};
extern SH_TLS struct coarse_now fp_tl_coarse;

/* A fine-grained stamp: later coarse stamps of any file must not fall below it. */
int64_t fp_fine_stamp(void);
/* relatime found atime due: the fine clock (out of line: a read rarely needs it). */
void fp_atime_update(struct eph_inode *ino, int64_t a);
/* Size changes, O_TRUNC, fallocate: a fine stamp of mtime and ctime. */
void fp_touch_mtime(struct eph_inode *ino);
/* A write or size change, under ino->lock: clear set-id bits as the kernel would for this writer. */
void fp_drop_setid(struct eph_inode *ino);
static inline void fp_write_setid(struct eph_inode *ino)
{
    if (unlikely(ino->mode & (S_ISUID | S_ISGID)))
        fp_drop_setid(ino);
}
int fp_in_group(gid_t g);               /* g is the effective or a supplementary group */

static inline int64_t fp_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline struct coarse_now fp_coarse_by_mono(void)
{
    uint64_t mono = (uint64_t)fp_clock_ns(CLOCK_MONOTONIC_COARSE);
    if (unlikely(mono != fp_tl_coarse.mono)) {
        fp_tl_coarse.mono = mono;
        fp_tl_coarse.real = fp_clock_ns(CLOCK_REALTIME_COARSE);
    }
    return fp_tl_coarse;
}

static inline struct coarse_now fp_coarse_by_real(void)
{
    int64_t real = fp_clock_ns(CLOCK_REALTIME_COARSE);
    if (unlikely(real != fp_tl_coarse.real)) {
        fp_tl_coarse.real = real;
        fp_tl_coarse.mono = (uint64_t)fp_clock_ns(CLOCK_MONOTONIC_COARSE);
    }
    return fp_tl_coarse;
}

/* The inode's cache line is shared by every process using the file: store only on a change. */
static inline void fp_stamp_lru(struct eph_inode *ino, uint64_t mono)
{
    if (atomic_load_explicit(&ino->last_use, memory_order_relaxed) != mono)
        atomic_store_explicit(&ino->last_use, mono, memory_order_relaxed);
}

/* Inlined into every read (a call would cost more than the check: it saves five registers). */
static inline __attribute__((always_inline)) void fp_touch_atime(struct eph_inode *ino)
{
    /* relatime, as tmpfs is mounted by default: most reads leave atime alone, so
     * the fine clock is read only when it changes (the day test needs no precision) */
    struct coarse_now t = fp_coarse_by_mono();
    int64_t a = atomic_load_explicit(&ino->atime_ns, memory_order_relaxed);
    if (unlikely(a <= atomic_load_explicit(&ino->mtime_ns, memory_order_relaxed) ||
                 a <= atomic_load_explicit(&ino->ctime_ns, memory_order_relaxed) || t.real - a >= FP_DAY_NS))
        fp_atime_update(ino, a);
    fp_stamp_lru(ino, t.mono);
}

/*
 * A write's mtime/ctime, the way tmpfs's multigrain timestamps work (Linux
 * 6.13+): the coarse clock, raised to the floor of fine stamps handed out,
 * unless that would not be a visible change to someone who already looked
 * (stat set times_seen) - then the fine clock.  So a stream of writes
 * nobody stats costs one coarse clock read and no stores, and a stat after
 * any write still sees a new mtime.  Called under ino->lock.
 */
static inline void fp_stamp_write(struct eph_inode *ino)
{
    struct coarse_now t = fp_coarse_by_real();
    int64_t c = t.real, floor = (int64_t)atomic_load_explicit(&sh.hdr->time_floor, memory_order_relaxed);
    if (c < floor)
        c = floor;
    int64_t m = atomic_load_explicit(&ino->mtime_ns, memory_order_relaxed);
    int64_t ct = atomic_load_explicit(&ino->ctime_ns, memory_order_relaxed);
    int64_t hi = m > ct ? m : ct, v;
    uint32_t seen = atomic_load_explicit(&ino->times_seen, memory_order_seq_cst);
    /* (The coarse clock can lag fine stamps by more than its tick, so only
     * what lies well ahead of it counts as a time set into the future.) */
    if (c > hi || hi - t.real >= FP_FUTURE_NS)
        v = c;                          /* a new tick (or a time set into the future): coarse is a change */
    else if (!seen)
        v = hi;                         /* same tick, nobody looked: nothing visible to change */
    else if ((v = fp_fine_stamp()) <= hi)
        v = hi + 1;
    if (m != v)
        atomic_store_explicit(&ino->mtime_ns, v, memory_order_relaxed);
    if (ct != v)
        atomic_store_explicit(&ino->ctime_ns, v, memory_order_relaxed);
    if (seen)
        atomic_store_explicit(&ino->times_seen, 0, memory_order_relaxed);
    fp_stamp_lru(ino, t.mono);
}

/* A stat is about to read the times: the next change must be visible to it. */
static inline void fp_times_observed(struct eph_inode *ino)
{
    if (!atomic_load_explicit(&ino->times_seen, memory_order_relaxed))
        atomic_store_explicit(&ino->times_seen, 1, memory_order_seq_cst);
}

#endif
