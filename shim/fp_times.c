/*
 * shim/fp_times.c - file times and the LRU stamp: the out-of-line parts (the
 * fine clock, atime updates, size-change stamps).  The per-operation stamps
 * and the reasoning behind the clocks are in fp_times.h.
 */
#include <stdatomic.h>

#include "ephemera/shm.h"

#include "fp_times.h"
#include "compiler.h"
#include "init.h"

SH_TLS struct coarse_now fp_tl_coarse;

int64_t fp_fine_stamp(void)
{
    int64_t now = sh_now_ns();
    eph_atomic_max(&sh.hdr->time_floor, (uint64_t)now);
    return now;
}

__attribute__((noinline)) void fp_atime_update(struct eph_inode *ino, int64_t a)
{
    int64_t now = sh_now_ns();
    if (a != now)
        atomic_store_explicit(&ino->atime_ns, now, memory_order_relaxed);
}

void fp_touch_mtime(struct eph_inode *ino)
{
    int64_t now = fp_fine_stamp();
    atomic_store_explicit(&ino->mtime_ns, now, memory_order_relaxed);
    atomic_store_explicit(&ino->ctime_ns, now, memory_order_relaxed);
    if (atomic_load_explicit(&ino->times_seen, memory_order_relaxed))
        atomic_store_explicit(&ino->times_seen, 0, memory_order_relaxed);
    fp_stamp_lru(ino, fp_coarse_by_real().mono);
}
