/*
 * shim/fp_size.c - size and capacity of in-memory files: the budget, growth,
 * the stale tail, truncate, fallocate, and handing the file to the kernel
 * (trim, pin).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"
#include "ephemera/diskbytes.h"

#include "fp_size.h"
#include "sys.h"
#include "init.h"
#include "fdtable.h"
#include "diskbytes.h"
#include "rpc.h"
#include "fp_desc.h"
#include "fp_times.h"
#include "fp_settle.h"

#define FP_DEFAULT_STEP_MAX (64ull << 20)

static int fp_budget_take(uint64_t delta)
{
    struct eph_shm_header *h = sh.hdr;
    uint64_t budget = atomic_load_explicit(&h->budget, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&h->c.bytes_in_memory, memory_order_relaxed);
    do {
        if (cur + delta > budget || cur + delta < cur)
            return 0;
    } while (!atomic_compare_exchange_weak(&h->c.bytes_in_memory, &cur, cur + delta));
    eph_atomic_max(&h->c.bytes_in_memory_peak, cur + delta);
    eph_db_memory_grew(h, cur + delta);
    return 1;
}

static void fp_budget_give(uint64_t delta)
{
    if (delta)
        atomic_fetch_sub(&sh.hdr->c.bytes_in_memory, delta);
}

/*
 * Make capacity >= need.  Called with ino->lock held.  Returns 0, -errno, or
 * -EAGAIN when the daemon must be asked (the caller drops its locks and calls
 * fp_reserve_slow, then retries).
 */
int fp_grow_locked(struct eph_inode *ino, int kfd, uint64_t need)
{
    uint64_t cap = atomic_load(&ino->capacity);
    if (need <= cap)
        return 0;
    uint64_t step_max = atomic_load(&sh.hdr->grow_step_max);
    if (!step_max)
        step_max = FP_DEFAULT_STEP_MAX;
    /* Double (bounded by step_max) so appends cost O(log n) ftruncates, but
     * start from the page: capacity is what the budget is charged for. */
    uint64_t step = cap < step_max ? cap : step_max;
    uint64_t want = fp_round_up(need > cap + step ? need : cap + step, FP_PAGE);
    uint64_t minimal = fp_round_up(need, FP_PAGE);
    uint64_t newcap;
    if (fp_budget_take(want - cap))
        newcap = want;
    else if (minimal < want && fp_budget_take(minimal - cap))
        newcap = minimal;
    else
        return -EAGAIN;
    /* Charged and not yet counted in a capacity: a SIGKILL inside the ftruncate
     * left the budget charged for nothing (file_bytes_memory 4-32 KiB with no
     * file left), so the charge waits in flight meanwhile (fdtable.c). */
    int flying = ft_inflight_charge(newcap - cap);
    int t;
    while ((t = sys.ftruncate(kfd, (off_t)newcap)) < 0 && errno == EINTR)
        ;
    if (flying)
        ft_inflight_clear(); /* next to the store or the give-back below */
    if (t < 0) {
        int e = errno;
        fp_budget_give(newcap - cap);
        return -e;
    }
    atomic_store(&ino->capacity, newcap);
    return 0;
}

/*
 * Make capacity == need for a write through the kernel fd (pwrite) that ends at
 * need (fp_io.c's do_write: within the first page, or a file with a capacity): the write itself
 * extends the memfd to need, so the kernel size equals
 * the capacity again without an ftruncate (issue 15: no system call that tmpfs
 * would not make).  The budget is charged the exact bytes.  Called with
 * ino->lock held; 0, or -EAGAIN as fp_grow_locked.
 */
int fp_grow_by_write(struct eph_inode *ino, uint64_t need)
{
    uint64_t cap = atomic_load(&ino->capacity);
    if (need <= cap)
        return 0;
    if (!fp_budget_take(need - cap))
        return -EAGAIN;
    atomic_store(&ino->capacity, need);
    return 0;
}

/* The write after fp_grow_by_write failed or stopped short at written_end: the
 * memfd is as long as the larger of the old capacity and that; give the rest back. */
void fp_grow_by_write_short(struct eph_inode *ino, uint64_t oldcap, uint64_t written_end)
{
    uint64_t cap = atomic_load(&ino->capacity), keep = written_end > oldcap ? written_end : oldcap;
    if (cap > keep) {
        atomic_store(&ino->capacity, keep);
        fp_budget_give(cap - keep);
    }
}

/*
 * Stale-tail invariant: bytes in [size, capacity) may hold old data (an
 * O_TRUNC open keeps the pages, so rewriting a file is a memcpy rather than
 * a page fault and zero-fill per 4 KiB).  Whatever extends the size without
 * writing - truncate up, a write past the end - first makes the gap read as
 * zeros with this: whole pages are punched (a hole, as tmpfs would have),
 * partial ones overwritten.  Only the kernel fd is used, so callers without
 * a mapping (truncate by path) can call it.  [from, to) lies below capacity.
 */
int fp_zero_gap(int kfd, uint64_t from, uint64_t to)
{
    static const char zeros[FP_PAGE];
    if (from >= to)
        return 0;
    /* One punch zeroes partial pages in place and frees whole ones, and never
     * allocates a page that was a hole (tmpfs keeps those holes too). */
    if (sys.fallocate(kfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(to - from)) == 0)
        return 0;
    /* No punching here (a second try over whole pages would fail the same way): write zeros. */
    while (from < to) {
        size_t k = to - from < FP_PAGE ? (size_t)(to - from) : FP_PAGE;
        if (sys.pwrite(kfd, zeros, k, (off_t)from) != (ssize_t)k)
            return -EIO;
        from += k;
    }
    return 0;
}

/* The local hint of how far this process knows the memfd's pages to be populated may only drop. */
static void fp_filled_lower(uint32_t inode, uint64_t to)
{
    struct ft_map *m = ft_map_of(inode);
    if (atomic_load_explicit(&m->filled, memory_order_relaxed) > to)
        atomic_store_explicit(&m->filled, to, memory_order_relaxed);
    if (atomic_load_explicit(&m->touched, memory_order_relaxed) > to) /* the kernel unmapped the rest */
        atomic_store_explicit(&m->touched, to, memory_order_relaxed);
}

/* No budget left: ask the daemon to make room or to move this file to disk. */
int fp_reserve_slow(int fd, struct eph_inode *ino, uint32_t inode, uint64_t need)
{
    (void)fd;
    struct eph_req req;
    struct eph_resp resp;
    int rfd;
    rpc_req_init(&req, EPH_OP_RESERVE);
    req.inode = inode;
    req.gen = atomic_load(&ino->gen);
    req.arg = fp_round_up(need, FP_PAGE);
    int rc = rpc_call(&req, &resp, &rfd);
    if (rfd >= 0)
        sys.close(rfd);
    if (rc < 0)
        return -ENOSPC;
    if (resp.status < 0)
        return resp.status;
    /* MEM: the daemon made room and grew the memfd itself; DISK: it moved the
     * file.  Either way the caller's retry sees the new state. */
    return 0;
}

#define SZ_KEEP_PAGES 2 /* set_size flag: shrinking keeps the memfd's pages (O_TRUNC at open) */

/*
 * How long a cut of the memfd waits for the fast-path reads in flight to end.
 * A read is a memcpy of at most one call's buffer, so a count still raised
 * after this belongs to a reader that is stopped (SIGSTOP, a frozen cgroup),
 * starved, or dead.  A dead one's count the daemon drops as soon as the
 * kernel reports the death (ledger.c, a read word in its ledger), which ends
 * the wait long before this in the common case.  Under the daemon's 1 s
 * before it takes an inode lock over from a holder it thinks dead: the
 * waiter holds this one.
 */
#define FP_DRAIN_BOUND_NS (500ull * 1000 * 1000)

static uint64_t fp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Wait, with ino->lock held, until no fast-path read of the inode is in
 * flight (ino->inflight, Dekker with the size the caller just published):
 * 0 once drained, -1 when the count stayed raised for FP_DRAIN_BOUND_NS.
 * The caller then must not cut the memfd below a live reader's copy (it
 * would fault with SIGBUS), and keeps its pages instead (fp_cut_memfd).
 */
static int fp_drain_reads(struct eph_inode *ino, uint32_t inode, const char *why)
{
    if (likely(atomic_load_explicit(&ino->inflight, memory_order_seq_cst) <= 0))
        return 0;
    uint64_t start = fp_mono_ns();
    for (unsigned i = 0; atomic_load_explicit(&ino->inflight, memory_order_seq_cst) > 0; i++) {
        if (i < 64) {
            sched_yield(); /* a reader mid-copy: microseconds */
            continue;
        }
        if (fp_mono_ns() - start > FP_DRAIN_BOUND_NS) {
            sh_log("inode %u: %d read(s) still in flight after %llu ms (a reader stopped or starved inside its "
                   "copy); %s keeps the memfd's pages beyond the new size rather than cut them under it",
                   inode, (int)atomic_load(&ino->inflight), FP_DRAIN_BOUND_NS / 1000000, why);
            return -1;
        }
        struct timespec ts = {0, i < 256 ? 50 * 1000 : 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/*
 * Set the logical size of an in-memory inode through kernel fd kfd.
 * Returns 0, -errno, or 1 if the inode left memory (caller retries on disk).
 */
static int set_size(struct eph_inode *ino, uint32_t inode, int kfd, uint64_t len, int always_touch)
{
retry:
    eph_lock(&ino->lock);
    if (atomic_load(&ino->state) != EPH_MEM) {
        eph_unlock(&ino->lock);
        return 1;
    }
    uint64_t size = atomic_load(&ino->size);
    if (len > size) {
        uint64_t oldcap = atomic_load(&ino->capacity);
        /* up to the page end: tmpfs leaves even the last partial page a hole */
        uint64_t to = fp_round_up(len, FP_PAGE);
        if (fp_round_up(size, FP_PAGE) < to)
            atomic_store_explicit(&ino->holes, 1, memory_order_relaxed);
        int r = fp_zero_gap(kfd, size, to < oldcap ? to : oldcap);
        if (r == 0)
            r = fp_grow_locked(ino, kfd, len);
        if (r == -EAGAIN) {
            eph_unlock(&ino->lock);
            r = fp_reserve_slow(kfd, ino, inode, len);
            if (r == 0)
                goto retry;
            return r;
        }
        if (r < 0) {
            eph_unlock(&ino->lock);
            return r;
        }
        atomic_store_explicit(&ino->size, len, memory_order_release);
    } else if (len < size && (always_touch & SZ_KEEP_PAGES) && !atomic_load(&ino->pinned)) {
        /* O_TRUNC: keep the pages for the rewrite that usually follows (stale tail, see fp_zero_gap) */
        atomic_store_explicit(&ino->size, len, memory_order_release);
    } else if (len < size) {
        atomic_store_explicit(&ino->size, len, memory_order_seq_cst);
        /* Readers that saw the old size may still be copying from the tail.  One
         * that does not end in time keeps the tail: the stale-tail invariant
         * (fp_zero_gap) covers it, and the memfd is cut at a later change. */
        if (fp_drain_reads(ino, inode, "the truncation") < 0) {
            if (atomic_load(&ino->pinned)) /* the application's mapping must not show the old bytes */
                fp_zero_gap(kfd, len, atomic_load(&ino->capacity));
            goto stamp;
        }
        /* Truncating the memfd zeroes the partial page and frees the rest,
         * which keeps the "zeros beyond size" invariant. */
        uint64_t cap = atomic_load(&ino->capacity);
        if (sys.ftruncate(kfd, (off_t)len) < 0) {
            int e = errno;
            eph_unlock(&ino->lock);
            return -e;
        }
        eph_lock_stall("shrink"); /* the memfd is short, capacity not yet */
        atomic_store(&ino->capacity, len);
        fp_budget_give(cap - len);
        fp_filled_lower(inode, len);
    }
stamp:
    if (len == 0)
        atomic_store_explicit(&ino->holes, 0, memory_order_relaxed); /* nothing below size */
    /* truncate, ftruncate and O_TRUNC stamp the times even when the size stays (tmpfs). */
    if (len != size || always_touch) {
        fp_touch_mtime(ino);
        fp_write_setid(ino);
    }
    eph_unlock(&ino->lock);
    return 0;
}

int fp_ftruncate(int fd, off_t len)
{
    struct eph_desc *d = fp_desc(fd);
    if (len < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((atomic_load(&d->flags) & O_ACCMODE) == O_RDONLY) {
        errno = EINVAL; /* the kernel says EINVAL for a read-only fd */
        return -1;
    }
    for (;;) {
        if (ft_fds[fd].flags & FT_DISK) {
            sh_tc.slow++;
            int r = sys.ftruncate(fd, len);
            if (r == 0)
                db_changed(fd, 1);
            return r;
        }
        int r = set_size(fp_inode_of(d), d->inode, fd, (uint64_t)len, 1);
        if (r == 0)
            return 0;
        if (r < 0) {
            errno = -r;
            return -1;
        }
        r = fp_settle(fd);
        if (r < 0) {
            errno = -r;
            return -1;
        }
    }
}

/*
 * O_TRUNC at open.  The daemon already set size 0 but keeps the capacity and
 * the old bytes.  They stay (stale tail, see fp_zero_gap): a file rewritten in
 * place - the common case - then costs a memcpy per page instead of a fault,
 * and the last close trims what the new contents do not use.  A file the
 * application has mapped is the exception: its mapping must not show old
 * bytes, so those are freed.  Skipped if someone wrote in between.
 */
void fp_open_trunc(int fd)
{
    struct eph_desc *d = fp_desc(fd);
    struct eph_inode *ino = fp_inode_of(d);
    eph_lock(&ino->lock);
    uint64_t cap = atomic_load(&ino->capacity);
    if (atomic_load(&ino->state) == EPH_MEM && cap > 0 && atomic_load(&ino->size) == 0 &&
        atomic_load(&ino->pinned)) {
        if (fp_drain_reads(ino, d->inode, "O_TRUNC") < 0)
            fp_zero_gap(fd, 0, cap); /* the pages stay, as zeros, under the stopped reader */
        else if (sys.ftruncate(fd, 0) == 0) {
            atomic_store(&ino->capacity, 0);
            fp_budget_give(cap);
            fp_filled_lower(d->inode, 0);
        }
    }
    if (atomic_load(&ino->state) == EPH_MEM) {
        fp_touch_mtime(ino); /* O_TRUNC stamps the times even on an empty file */
        fp_write_setid(ino);
    }
    eph_unlock(&ino->lock);
}

int fp_set_size_fd(int fd, uint64_t len)
{
    struct eph_desc *d = fp_desc(fd);
    for (;;) {
        if (ft_fds[fd].flags & FT_DISK) {
            if (sys.ftruncate(fd, (off_t)len) < 0)
                return -errno;
            db_changed(fd, 1);
            return 0;
        }
        int r = set_size(fp_inode_of(d), d->inode, fd, len, 1 | SZ_KEEP_PAGES);
        if (r <= 0)
            return r;
        r = fp_settle(fd);
        if (r < 0)
            return r;
    }
}

/* truncate(path) on an in-memory inode: borrow a kernel fd on the memfd. */
int fp_truncate_inode(uint32_t inode, uint32_t gen, off_t len)
{
    struct eph_inode *ino = &sh.inodes[inode];
    eph_lock_stall("truncate-ref"); /* fault builds: after the lookup, before the reference (test/c/truncgc_test.c) */
    /* Hold an open reference meanwhile, so the daemon cannot free the inode under us. */
    ft_inflight_slot();
    fp_call_ref(inode, gen);
    eph_lock_stall("truncate-reffed"); /* fault builds: the reference taken, not yet checked (test/c/staleref_test.c) */
    fp_wait_moving(ino, gen);
    /* The name may have gone since the lookup, and the daemon may have freed the slot before our
     * reference (fp_call_ref): without this look, a slot freed and given to a new file meanwhile
     * had that file truncated. */
    if (atomic_load(&ino->gen) != gen || atomic_load(&ino->state) != EPH_MEM || atomic_load(&ino->nlink) == 0) {
        fp_call_unref(inode, gen);
        return -EAGAIN;
    }
    int kfd = rpc_open_daemon_fd(ino->mem_fd, O_RDWR | O_CLOEXEC);
    if (kfd < 0 && (errno == EACCES || errno == EPERM)) {
        /* another user than the daemon's may not open its fds: the caller goes through an fd of its own */
        fp_call_unref(inode, gen);
        return -EPERM;
    }
    eph_lock_stall("truncate-checked");
    int r = kfd < 0 ? -EAGAIN : set_size(ino, inode, kfd, (uint64_t)len, 1);
    if (kfd >= 0)
        sys.close(kfd);
    if (r == 1)
        fp_wait_moving(ino, gen);
    fp_call_unref(inode, gen);
    return r == 1 ? -EAGAIN : r;
}

/* fallocate on a file with holes allocates the pages below size, as tmpfs would (st_blocks, SEEK_DATA). */
static void fill_holes(struct eph_inode *ino, int fd, uint64_t off, uint64_t end)
{
    uint64_t size = atomic_load(&ino->size);
    if (!atomic_load(&ino->holes) || atomic_load(&ino->state) != EPH_MEM || off >= size)
        return;
    if (end > size)
        end = size;
    sys.fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)(end - off));
}

/*
 * fallocate on the memfd.  Returns 0, -errno, or 1 when the inode left memory:
 * its size and pages are then the disk file's, and the caller retries there.
 * Every branch checks the state under ino->lock (which MEM->MOVING takes), so
 * none can act on the memfd or the in-memory size of a file evicted since its
 * fd last looked (a posix_fallocate that grows a file another description had
 * truncated on disk would otherwise compare with the stale in-memory size and
 * grow nothing).
 */
static int falloc_mem(int fd, struct eph_desc *d, int mode, off_t off, off_t len)
{
    struct eph_inode *ino = fp_inode_of(d);
    uint64_t end = (uint64_t)off + (uint64_t)len;
    if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
        /* tmpfs stamps the times even when nothing grows */
        eph_lock(&ino->lock);
        if (atomic_load(&ino->state) != EPH_MEM) {
            eph_unlock(&ino->lock);
            return 1;
        }
        if (mode == FALLOC_FL_KEEP_SIZE || end <= atomic_load(&ino->size)) {
            fp_touch_mtime(ino);
            fp_write_setid(ino);
            fill_holes(ino, fd, (uint64_t)off, end);
            eph_unlock(&ino->lock);
            return 0;
        }
        eph_unlock(&ino->lock);
        int r = set_size(ino, d->inode, fd, end, 1);
        if (r == 0) {
            eph_lock(&ino->lock);
            fill_holes(ino, fd, (uint64_t)off, end);
            eph_unlock(&ino->lock);
        }
        return r;
    }
    eph_lock(&ino->lock);
    if (atomic_load(&ino->state) != EPH_MEM) {
        eph_unlock(&ino->lock);
        return 1;
    }
    int r = 0;
    if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        uint64_t cap = atomic_load(&ino->capacity);
        if ((uint64_t)off < cap)
            r = sys.fallocate(fd, mode, off, (off_t)(end > cap ? cap - (uint64_t)off : (uint64_t)len)) < 0 ? -errno : 0;
        if (r == 0 && fp_round_up((uint64_t)off, FP_PAGE) < (end & ~(FP_PAGE - 1)) &&
            fp_round_up((uint64_t)off, FP_PAGE) < atomic_load(&ino->size))
            atomic_store(&ino->holes, 1);
        if (r == 0) {
            fp_touch_mtime(ino);
            fp_write_setid(ino);
        }
    } else {
        /* Other modes: the memfd is shmem like tmpfs, so it gives tmpfs's answer. */
        r = sys.fallocate(fd, mode, off, len) < 0 ? -errno : 0;
    }
    eph_unlock(&ino->lock);
    return r;
}

int fp_fallocate(int fd, int mode, off_t off, off_t len)
{
    struct eph_desc *d = fp_desc(fd);
    if (off < 0 || len <= 0)
        return -EINVAL;
    if ((atomic_load(&d->flags) & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    for (;;) {
        if (ft_fds[fd].flags & FT_DISK) {
            if (sys.fallocate(fd, mode, off, len) < 0)
                return -errno;
            db_changed(fd, 1);
            return 0;
        }
        int r = falloc_mem(fd, d, mode, off, len);
        if (r != 1)
            return r;
        r = fp_settle(fd); /* 1: fd is the disk file now; 0: back in memory (retry there) */
        if (r < 0)
            return r;
    }
}

/* ---- handing the file to the kernel ------------------------------------ */

int fp_sync_kernel(int fd, int trim)
{
    struct eph_desc *d = fp_desc(fd);
    if (ft_fds[fd].flags & FT_DISK) {
        sys.lseek(fd, (off_t)atomic_load(&d->offset), SEEK_SET);
        return 0;
    }
    struct eph_inode *ino = fp_inode_of(d);
    sys.lseek(fd, (off_t)atomic_load(&d->offset), SEEK_SET);
    if (!trim)
        return 0;
    eph_lock(&ino->lock);
    uint64_t size = atomic_load(&ino->size), cap = atomic_load(&ino->capacity);
    int r = 0;
    /* Readers copy below size only, but one may still copy the tail of a truncation whose drain
     * gave up on it (set_size): that one keeps the pages, as zeros (the kernel's view is the
     * mapping's: it must not show the old bytes). */
    if (atomic_load(&ino->state) == EPH_MEM && cap > size &&
        fp_drain_reads(ino, d->inode, "handing the file to the kernel") < 0) {
        r = fp_zero_gap(fd, size, cap);
    } else if (atomic_load(&ino->state) == EPH_MEM && cap != size) {
        if (sys.ftruncate(fd, (off_t)size) == 0) {
            atomic_store(&ino->capacity, size);
            fp_budget_give(cap - size);
            fp_filled_lower(d->inode, size);
        } else {
            r = -errno;
        }
    }
    eph_unlock(&ino->lock);
    return r;
}

/*
 * The last description of an inode is closing: give back the growth slack,
 * so a closed file is charged for its pages only.
 */
void fp_trim_on_close(int fd)
{
    struct eph_desc *d = fp_desc(fd);
    if ((ft_fds[fd].flags & FT_DISK) || atomic_load(&d->refs) != 1)
        return;
    struct eph_inode *ino = fp_inode_of(d);
    if (atomic_load(&ino->open_count) != 1 || atomic_load(&ino->pinned))
        return;
    /* Nothing past the size's last page (a file grown by its writes ends at its size). */
    uint64_t cap = atomic_load(&ino->capacity);
    if (cap <= fp_round_up(atomic_load(&ino->size), FP_PAGE))
        return;
    eph_lock(&ino->lock);
    uint64_t want = fp_round_up(atomic_load(&ino->size), FP_PAGE);
    cap = atomic_load(&ino->capacity);
    if (atomic_load(&ino->state) == EPH_MEM && cap > want && sys.ftruncate(fd, (off_t)want) == 0) {
        atomic_store(&ino->capacity, want);
        fp_budget_give(cap - want);
        fp_filled_lower(d->inode, want);
    }
    eph_unlock(&ino->lock);
}

int fp_pin(int fd)
{
    struct eph_inode *ino = fp_inode_of(fp_desc(fd));
    /*
     * Under the inode lock, which the daemon holds when it checks pinned and
     * sets MOVING: either the file stays in memory for good, or it is already
     * moving and the mapping must be of the disk file (the memfd's pages are
     * about to be punched: the app would read zeros or SIGBUS).
     */
    while (!(ft_fds[fd].flags & FT_DISK)) {
        eph_lock(&ino->lock);
        int mem = atomic_load(&ino->state) == EPH_MEM;
        if (mem) /* a count, never 0: the daemon sees a pin taken during its scan (evict.c) */
            atomic_store(&ino->pinned, atomic_load(&ino->pinned) + 1 ?: 1);
        eph_unlock(&ino->lock);
        if (mem)
            break;
        int r = fp_settle(fd);
        if (r < 0)
            return r;
    }
    return fp_sync_kernel(fd, 1);
}
