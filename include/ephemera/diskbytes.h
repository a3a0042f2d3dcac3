/*
 * ephemera/diskbytes.h - the bytes of managed files on disk, counted at every
 * size change, shared by the shim (which makes the changes: shim/diskbytes.c)
 * and the daemon (which moves files to disk and reads the peak:
 * daemon/filebytes.c).
 *
 * Why: the daemon can only walk the roots to learn what is on disk, and a
 * file written straight to disk and deleted between two walks was never seen,
 * so a run's file peak was a lower bound.  The shim sees every size change it
 * makes to such a file (a write past the end, a truncate, an unlink), so it
 * keeps their sum, disk_bytes, exactly as it keeps bytes_in_memory; and
 * whoever grows either figure while disk_bytes is not 0 raises counted_peak
 * to their sum.  The in-memory paths pay one relaxed load of disk_bytes, and
 * only where they already grow a memfd (an ftruncate): nothing per write.
 *
 * One slot per file (dev, ino) holds the bytes counted for it, so a change is
 * a delta against that slot, whichever process or descriptor made it; writes
 * only raise it (concurrent writers may report their sizes out of order, and
 * a write never shrinks a file), truncates and a fresh look set it.  Invariant
 * kept by every operation: disk_bytes == the sum of the slots' sizes, each
 * moved by compare-and-swap (or exchange) with the same delta applied to
 * disk_bytes, so it never wraps below 0.  A race between an unlink and a
 * write of the same file can leave a slot counting a file that is gone; the
 * daemon checks every slot against its walk when a window opens.
 */
#ifndef EPHEMERA_DISKBYTES_H
#define EPHEMERA_DISKBYTES_H

#include <stdatomic.h>
#include <stdint.h>

#include "shm.h"

/* counted_peak, raised to the bytes of files in memory and counted on disk now. */
static inline void eph_db_note_peak(struct eph_shm_header *h, uint64_t disk)
{
    eph_atomic_max(&h->counted_peak, atomic_load_explicit(&h->c.bytes_in_memory, memory_order_relaxed) + disk);
}

/* After bytes_in_memory grew to `mem`: the in-memory side's one look at the disk side. */
static inline void eph_db_memory_grew(struct eph_shm_header *h, uint64_t mem)
{
    uint64_t disk = atomic_load_explicit(&h->disk_bytes, memory_order_relaxed);
    if (__builtin_expect(disk != 0, 0))
        eph_atomic_max(&h->counted_peak, mem + disk);
}

/* The slot of the disk file (dev, ino), or -1. */
static inline int eph_db_find(struct eph_shm_header *h, uint64_t dev, uint64_t ino)
{
    uint32_t n = atomic_load_explicit(&h->dfiles_hwm, memory_order_acquire);
    for (uint32_t i = 0; i < n && i < EPH_DFILES; i++) {
        struct eph_dfile *f = &h->dfiles[i];
        if (atomic_load_explicit(&f->state, memory_order_acquire) == EPH_DF_LIVE &&
            atomic_load_explicit(&f->ino, memory_order_relaxed) == ino &&
            atomic_load_explicit(&f->dev, memory_order_relaxed) == dev)
            return (int)i;
    }
    return -1;
}

/* Is slot i (a cached guess) still the file (dev, ino)? */
static inline int eph_db_is(struct eph_shm_header *h, int i, uint64_t dev, uint64_t ino)
{
    if (i < 0 || i >= EPH_DFILES)
        return 0;
    struct eph_dfile *f = &h->dfiles[i];
    return atomic_load_explicit(&f->state, memory_order_acquire) == EPH_DF_LIVE &&
           atomic_load_explicit(&f->ino, memory_order_relaxed) == ino &&
           atomic_load_explicit(&f->dev, memory_order_relaxed) == dev;
}

/* Count `size` bytes for slot i: raise only (a write), or set (a truncate, a fresh look). */
static inline void eph_db_resize(struct eph_shm_header *h, int i, uint64_t size, int set)
{
    struct eph_dfile *f = &h->dfiles[i];
    uint64_t cur = atomic_load(&f->size);
    do {
        if (size == cur || (size < cur && !set))
            return;
    } while (!atomic_compare_exchange_weak(&f->size, &cur, size));
    if (size > cur)
        eph_db_note_peak(h, atomic_fetch_add(&h->disk_bytes, size - cur) + (size - cur));
    else
        atomic_fetch_sub(&h->disk_bytes, cur - size);
}

/* Stop counting slot i (its file is gone): its bytes leave disk_bytes. */
static inline void eph_db_drop(struct eph_shm_header *h, int i)
{
    struct eph_dfile *f = &h->dfiles[i];
    uint32_t live = EPH_DF_LIVE;
    if (!atomic_compare_exchange_strong(&f->state, &live, EPH_DF_FILLING))
        return;
    atomic_fetch_sub(&h->disk_bytes, atomic_exchange(&f->size, 0));
    atomic_store_explicit(&f->state, EPH_DF_FREE, memory_order_release);
}

/*
 * Count the disk file (dev, ino) at `size` bytes now: its slot, or -1 when
 * every slot is taken (the file is then left to the daemon's walks).
 */
static inline int eph_db_add(struct eph_shm_header *h, uint64_t dev, uint64_t ino, uint64_t size)
{
    int i = eph_db_find(h, dev, ino);
    if (i >= 0) {
        eph_db_resize(h, i, size, 1);
        return i;
    }
    for (uint32_t j = 0; j < EPH_DFILES; j++) {
        struct eph_dfile *f = &h->dfiles[j];
        uint32_t free_ = EPH_DF_FREE;
        if (atomic_load_explicit(&f->state, memory_order_relaxed) != EPH_DF_FREE ||
            !atomic_compare_exchange_strong(&f->state, &free_, EPH_DF_FILLING))
            continue;
        /* bytes a late write left on the slot while it was free */
        atomic_fetch_sub(&h->disk_bytes, atomic_exchange(&f->size, 0));
        atomic_store_explicit(&f->dev, dev, memory_order_relaxed);
        atomic_store_explicit(&f->ino, ino, memory_order_relaxed);
        uint32_t hwm = atomic_load(&h->dfiles_hwm);
        while (hwm < j + 1 && !atomic_compare_exchange_weak(&h->dfiles_hwm, &hwm, j + 1))
            ;
        atomic_store_explicit(&f->state, EPH_DF_LIVE, memory_order_release);
        /* Another process counting the same file at the same moment: the lower slot stays. */
        int k = eph_db_find(h, dev, ino);
        if (k >= 0 && (uint32_t)k < j) {
            eph_db_drop(h, (int)j);
            j = (uint32_t)k;
        }
        eph_db_resize(h, (int)j, size, 1);
        return (int)j;
    }
    return -1;
}

#endif
