/*
 * shim/fp_io.c - the fast path's core: read, write and seek on in-memory
 * files by memcpy through the shared mapping, without a syscall.
 *
 * Locking (see also ARCHITECTURE.md, "The fast path"):
 *   - desc->lock serialises the offset of one open file description;
 *   - ino->lock serialises size/capacity changes and writes (the kernel also
 *     holds the inode lock for writes), and keeps the daemon from starting an
 *     eviction while it is held;
 *   - readers take no inode lock: they bump ino->inflight and re-check state
 *     (Dekker with the daemon, which sets MOVING and then waits for inflight
 *     to drain), and name the inode in their thread's read word of the
 *     ledger meanwhile, so that the daemon drops the count of a reader that
 *     is killed inside its copy (fdtable.h, ft_read_mark).
 * Order: desc->lock before ino->lock.  Nobody waits for anything while
 * holding an inflight count, so the drains in truncate and eviction finish.
 *
 * Invariant: bytes in [size, capacity) of a memfd may be stale (O_TRUNC
 * keeps the pages), so whatever raises the size without writing first zeroes
 * the gap (fp_zero_gap), and the kernel only ever sees the file trimmed to its
 * size (fp_sync_kernel).  See ARCHITECTURE.md, "The stale tail".
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
#if defined(__x86_64__)
#include <immintrin.h>
#include <sys/platform/x86.h>
#endif

#include "ephemera/lock.h"
#include "ephemera/shm.h"

#include "fp_io.h"
#include "paths.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "fdtable.h"
#include "fp_desc.h"
#include "fp_times.h"
#include "fp_settle.h"
#include "fp_size.h"
#include "inotify.h"

/*
 * glibc's memcpy moves 2 KiB and more with rep movsb, and on this machine
 * (AMD Zen 3, FSRM) rep movsb runs 4-5x slower when the destination lies 1-31
 * bytes past the source modulo 4 KiB: 8 KiB in ~5.5 us instead of ~1.1 (the
 * kernel's copy_to_user has the same cliff, so tmpfs pays it too).  That is
 * exactly where a malloc'd buffer of 128 KiB or more lands when a program
 * reads a page-aligned range into it: glibc hands out such buffers 16 bytes
 * into a page.  A loop of 32-byte loads and stores has no cliff, and in the
 * other cases measured within a few percent of memcpy either way, so it is
 * used for those distances only.  Correct for any size and alignment: whole
 * 128-byte blocks by the loop, the rest by memcpy.
 */
#if defined(__x86_64__)
SH_STARTDATA static int fp_have_avx2;

/*
 * From what ld.so found at start (glibc's <sys/platform/x86.h>): no cpuid of our own.
 * __builtin_cpu_supports linked libgcc's __cpu_indicator_init, a constructor that
 * runs cpuid a dozen times in every process the shim is loaded into, each a VM
 * exit under a hypervisor: a quarter of the shim's start-up cost (BENCHMARKS.md,
 * "The shim's start-up cost").
 */
__attribute__((constructor)) static void fp_copy_init(void)
{
    fp_have_avx2 = CPU_FEATURE_ACTIVE(AVX2);
}

static __attribute__((noinline, target("avx2"))) void copy_avx2(char *dst, const char *src, size_t n)
{
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
        _mm256_storeu_si256((__m256i *)(dst + i), a);
        _mm256_storeu_si256((__m256i *)(dst + i + 32), b);
        _mm256_storeu_si256((__m256i *)(dst + i + 64), c);
        _mm256_storeu_si256((__m256i *)(dst + i + 96), d);
    }
    memcpy(dst + i, src + i, n - i);
}
#endif

static inline __attribute__((always_inline)) void fp_copy(void *dst, const void *src, size_t n)
{
#if defined(__x86_64__)
    if (unlikely(n >= 2048 && ((((uintptr_t)dst - (uintptr_t)src) & 4095) - 1) < 31 && fp_have_avx2)) {
        copy_avx2(dst, src, n);
        return;
    }
#endif
    memcpy(dst, src, n);
}

/* ---- reads -------------------------------------------------------------- */

static inline size_t iov_total(const struct iovec *iov, int cnt, int *err)
{
    size_t t = 0;
    int bad = 0;
    if (cnt < 0 || cnt > IOV_MAX) {
        *err = EINVAL;
        return 0;
    }
    if (unlikely(cnt && path_bad_ptr(iov))) {
        *err = EFAULT; /* the kernel cannot copy the vector in */
        return 0;
    }
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - t) {
            *err = EINVAL;
            return 0;
        }
        t += iov[i].iov_len;
        bad |= iov[i].iov_len && path_bad_ptr(iov[i].iov_base);
    }
    /* A buffer outside the address space: EFAULT where the kernel's copy would fault
     * (here before any byte moves, also for a read at the end of the file). */
    *err = unlikely(bad) ? EFAULT : 0;
    return t;
}

static void copy_out(const struct iovec *iov, int cnt, const char *src, size_t n)
{
    for (int i = 0; i < cnt && n; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        fp_copy(iov[i].iov_base, src, k);
        src += k;
        n -= k;
    }
}

static void copy_in(char *dst, const struct iovec *iov, int cnt)
{
    for (int i = 0; i < cnt; i++) {
        fp_copy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
}

/* What every read and write checks first, in the kernel's order: the access
 * mode (EBADF), then the iovec (EINVAL).  *n gets the total length. */
static inline int io_check(struct eph_desc *d, uint32_t denied_mode, const struct iovec *iov, int cnt,
                           size_t *n)
{
    int err = 0;
    if ((atomic_load_explicit(&d->flags, memory_order_relaxed) & O_ACCMODE) == denied_mode)
        err = EBADF;
    else
        *n = iov_total(iov, cnt, &err);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/*
 * A file with holes is read through the kernel: a fault on a hole through our
 * shared mapping would allocate a page there, where tmpfs's read leaves the
 * hole (st_blocks, SEEK_DATA and the budget would all see the difference).
 */
static __attribute__((noinline)) size_t read_holes(int fd, const struct iovec *iov, int cnt, const char *base,
                                                   uint64_t off, size_t got, struct ft_map *cold)
{
    size_t done = 0;
    for (int i = 0; i < cnt && done < got; i++) {
        size_t k = iov[i].iov_len < got - done ? iov[i].iov_len : got - done;
        ssize_t r = sys.pread(fd, iov[i].iov_base, k, (off_t)(off + done));
        if (r < 0 && !base && cold) /* a cold read (ft_read_cold): the mapping after all */
            base = ft_map_covering(cold, fd, off + got);
        if (r < 0 && !base) /* not mapped (FT_LAZY_MAX): what was read */
            break;
        if (r < 0) { /* cannot happen on a memfd within its size; keep the bytes right anyway */
            memcpy(iov[i].iov_base, base + off + done, k);
            r = (ssize_t)k;
        }
        done += (size_t)r;
        if ((size_t)r < k)
            break;
    }
    return done;
}

/*
 * The holes flag says a hole was made once, not that one is left.  The check
 * is per range: if the first hole at or after off lies at or past the end of
 * the range, the bytes are all data and the mapping serves them (a still-sparse
 * file's written parts are read by memcpy).  A file created by ftruncate and
 * then written in full (FunctionBench's disk I/O) must also lose the flag, or
 * it pays that lseek for good: when the range runs hole-free to the end of the
 * file, every 32nd such read asks from 0 whether any hole is left at all, and
 * if none is clears the flag - under the inode lock, which whoever makes a hole
 * holds, and only by trylock: a reader holds an inflight count and must not
 * wait.  (A per-process count, so that a file whose only hole is at its start
 * pays one extra lseek per 32 reads, not per read.)  1 if the range has a hole.
 */
static __attribute__((noinline)) int range_has_hole(int fd, struct eph_inode *ino, uint64_t off, uint64_t end)
{
    static _Atomic unsigned probes;
    uint64_t size = atomic_load_explicit(&ino->size, memory_order_acquire);
    off_t h = sys.lseek(fd, (off_t)off, SEEK_HOLE);
    if (h < 0 || (uint64_t)h < end)
        return 1;
    if ((uint64_t)h < size || (off && atomic_fetch_add_explicit(&probes, 1, memory_order_relaxed) % 32))
        return 0;
    if (off && ((h = sys.lseek(fd, 0, SEEK_HOLE)) < 0 || (uint64_t)h < size))
        return 0;
    if (eph_trylock(&ino->lock)) {
        h = sys.lseek(fd, 0, SEEK_HOLE);
        if (h >= 0 && (uint64_t)h >= atomic_load(&ino->size))
            atomic_store_explicit(&ino->holes, 0, memory_order_relaxed);
        eph_unlock(&ino->lock);
    }
    return 0;
}

/*
 * A copy that a move overtook.  The daemon waits 1 s for the inode lock and
 * 500 ms for inflight, then assumes the holder died and moves the file anyway
 * (a dead holder must not hang the instance).  A holder that was only stalled
 * (SIGSTOP, a frozen or throttled cgroup) finds the state or the epoch changed
 * when its copy ends: the daemon may have copied the file before our bytes
 * went in, or punched the pages we read.  It drops its copy and does the
 * operation again, which now meets the file's new home.  The lock was taken
 * over, so it is not ours to release (the daemon changes state and epoch only
 * under it).  Both checks are loads of the inode's first cache line, already
 * read by this operation.  No fence before them: the daemon takes over only
 * after a stall of a second, which entered the kernel (a full barrier).
 */
static inline int copy_overtaken(struct eph_inode *ino, uint32_t epoch)
{
    atomic_thread_fence(memory_order_acquire); /* the copy's loads before the checks */
    return atomic_load_explicit(&ino->state, memory_order_relaxed) != EPH_MEM ||
           atomic_load_explicit(&ino->epoch, memory_order_relaxed) != epoch;
}

/* The memfd of a file now on disk is dead, but a late copy through our mapping
 * faulted pages into it again (the daemon keeps its size when a holder stalled,
 * so the copy does not SIGBUS): give them back.  Under ft_lock and only while
 * fd still is that memfd (swap_to_disk's dup3 and close's forget hold it). */
static void overtaken_pages_free(int fd, uint32_t desc1, struct eph_inode *ino, uint64_t off, uint64_t len)
{
    if (atomic_load(&ino->state) != EPH_DISK || atomic_load(&ino->pinned))
        return;
    ft_lock();
    if (ft_fds[fd].desc1 == desc1 && !(ft_fds[fd].flags & FT_DISK))
        sys.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
    ft_unlock();
}

/*
 * Do a read or write again after a move overtook its copy.  A read starts
 * again where it started (a read() does not move the shared offset until it
 * is served, so nothing else read from there meanwhile).  An append was never
 * published (size stayed): it appends again at the file's end now, which may
 * have moved past it.  Anything else goes to exactly the offset it had.
 */
static __attribute__((noinline, cold)) ssize_t io_again(int fd, const struct iovec *iov, int cnt, off_t pos,
                                                        uint64_t off, size_t len, int is_write)
{
    struct eph_desc *d = fp_desc(fd);
    sh_log("fd %d: a %s of inode %u overlapped its move to disk; doing it again", fd, is_write ? "write" : "read",
           d->inode);
    overtaken_pages_free(fd, ft_fds[fd].desc1, fp_inode_of(d), off, len);
    if (is_write && (atomic_load_explicit(&d->flags, memory_order_relaxed) & O_APPEND))
        return fp_writev(fd, iov, cnt, pos, pos >= 0);
    ssize_t r = is_write ? fp_writev(fd, iov, cnt, (off_t)off, 1) : fp_readv(fd, iov, cnt, (off_t)off, 1);
    if (r >= 0 && pos < 0)
        atomic_store_explicit(&d->offset, off + (uint64_t)r, memory_order_relaxed);
    return r;
}

/* Inlined into each entry point: read/pread (one buffer) then compile to straight-line code. */
static inline __attribute__((always_inline)) ssize_t do_read(int fd, const struct iovec *iov, int cnt, off_t pos)
{
    struct eph_desc *d = fp_desc(fd);
    size_t n;
    if (unlikely(io_check(d, O_WRONLY, iov, cnt, &n) < 0))
        return -1;
    if (unlikely(ft_fds[fd].flags & FT_DISK))
        return fp_disk_io(fd, iov, cnt, pos, 0);
    struct eph_inode *ino = fp_inode_of(d);
    struct ft_map *m = ft_map_of(d->inode);
    const int dl = pos < 0 && fp_desc_shared(d);
    if (unlikely(!ft_reading))
        ft_reading_init(); /* may ask the daemon: before any count or lock is held */
    if (dl)
        eph_lock(&d->lock);
    for (;;) {
        atomic_fetch_add_explicit(&ino->inflight, 1, memory_order_seq_cst);
        if (likely(atomic_load_explicit(&ino->state, memory_order_seq_cst) == EPH_MEM)) {
            ft_read_mark(d->inode, d->inode_gen); /* a SIGKILL from here on: the daemon drops our count */
            break;
        }
        atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
        if (dl)
            eph_unlock(&d->lock);
        int r = fp_settle(fd);
        if (r < 0) {
            errno = -r;
            return -1;
        }
        if (r == 1)
            return fp_disk_io(fd, iov, cnt, pos, 0);
        if (dl)
            eph_lock(&d->lock);
    }
    const uint32_t epoch = atomic_load_explicit(&ino->epoch, memory_order_relaxed);
    uint64_t off = pos < 0 ? atomic_load_explicit(&d->offset, memory_order_relaxed) : (uint64_t)pos;
    uint64_t size = atomic_load_explicit(&ino->size, memory_order_acquire);
    size_t got = 0;
    if (off < size && n) {
        got = size - off < n ? (size_t)(size - off) : n;
        int cold = 0, lazy = ft_lazy(m, off + got); /* a small file: pread, no mapping */
        if (!lazy)
            lazy = cold = ft_read_cold(m, off + got, size, got); /* pages not mapped here yet: pread */
        char *base = lazy ? NULL : ft_map_covering(m, fd, off + got);
        if (unlikely(!base && !lazy)) {
            ft_read_unmark();
            atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
            if (dl)
                eph_unlock(&d->lock);
            errno = ENOMEM;
            return -1;
        }
        eph_lock_stall("read"); /* fault builds: stop before the copy, inflight raised (test/c/lockkill_test.c) */
        if (lazy || (unlikely(atomic_load_explicit(&ino->holes, memory_order_relaxed)) &&
                     range_has_hole(fd, ino, off, off + got)))
            got = read_holes(fd, iov, cnt, base, off, got, cold ? m : NULL);
        else {
            if (cnt == 1)
                fp_copy(iov[0].iov_base, base + off, got);
            else
                copy_out(iov, cnt, base + off, got);
            ft_map_touched(m, off + got);
        }
        if (unlikely(copy_overtaken(ino, epoch))) {
            ft_read_unmark();
            atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
            if (dl)
                eph_unlock(&d->lock);
            return io_again(fd, iov, cnt, pos, off, got, 0);
        }
        if (pos < 0)
            atomic_store_explicit(&d->offset, off + got, memory_order_relaxed);
    }
    ft_read_unmark();
    atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
    if (dl)
        eph_unlock(&d->lock);
    if (n)
        fp_touch_atime(ino);
    sh_tc.reads++;
    sh_tc.bytes_read += got;
    sh_count_tick();
    return (ssize_t)got;
}

ssize_t fp_read(int fd, void *buf, size_t n)
{
    struct iovec v = {buf, n};
    return do_read(fd, &v, 1, -1);
}

ssize_t fp_pread(int fd, void *buf, size_t n, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    struct iovec v = {buf, n};
    return do_read(fd, &v, 1, off);
}

ssize_t fp_readv(int fd, const struct iovec *iov, int cnt, off_t off, int use_off)
{
    if (use_off && off < 0) {
        errno = EINVAL;
        return -1;
    }
    return do_read(fd, iov, cnt, use_off ? off : -1);
}

/* ---- writes ------------------------------------------------------------- */

static inline __attribute__((always_inline)) ssize_t do_write(int fd, const struct iovec *iov, int cnt, off_t pos)
{
    struct eph_desc *d = fp_desc(fd);
    size_t n;
    if (unlikely(io_check(d, O_RDONLY, iov, cnt, &n) < 0))
        return -1;
    uint32_t fl = atomic_load_explicit(&d->flags, memory_order_relaxed);
    if (unlikely(ft_fds[fd].flags & FT_DISK))
        return fp_disk_io(fd, iov, cnt, pos, 1);
    if (n == 0)
        return 0;
    struct eph_inode *ino = fp_inode_of(d);
    uint32_t inode = d->inode;
    struct ft_map *m = ft_map_of(inode);
    const int dl = pos < 0 && fp_desc_shared(d);
retry:
    if (dl)
        eph_lock(&d->lock);
    eph_lock(&ino->lock);
    if (unlikely(atomic_load_explicit(&ino->state, memory_order_acquire) != EPH_MEM)) {
        eph_unlock(&ino->lock);
        if (dl)
            eph_unlock(&d->lock);
        int r = fp_settle(fd);
        if (r < 0) {
            errno = -r;
            return -1;
        }
        if (r == 1)
            return fp_disk_io(fd, iov, cnt, pos, 1);
        goto retry;
    }
    eph_lock_stall("write");
    const uint32_t epoch = atomic_load_explicit(&ino->epoch, memory_order_relaxed);
    uint64_t size = atomic_load_explicit(&ino->size, memory_order_relaxed);
    uint64_t off = (fl & O_APPEND) ? size
                 : pos < 0 ? atomic_load_explicit(&d->offset, memory_order_relaxed) : (uint64_t)pos;
    uint64_t end = off + n;
    if (end < off || end > (uint64_t)LLONG_MAX) {
        eph_unlock(&ino->lock);
        if (dl)
            eph_unlock(&d->lock);
        errno = EFBIG;
        return -1;
    }
    uint64_t oldcap = atomic_load_explicit(&ino->capacity, memory_order_relaxed);
    uint64_t filled = atomic_load_explicit(&m->filled, memory_order_relaxed);
    /* Pages this process does not know to be populated, or a small file not worth a
     * mapping: the kernel's shmem write (below) allocates them without the fault +
     * zero-fill per 4 KiB that a memcpy through the mapping costs (measured 1.5-2x
     * faster creation).  That write also extends the memfd, with no ftruncate first: within
     * a file's first page (the common tiny file: a lock, a journal header, a 4 KiB temporary),
     * and for every growth of a file that has a capacity already (the appends of tar x, of
     * sort's temporaries).  Only a file's first growth past its first page still reserves
     * whole pages through ftruncate (shim_faults_test grow-enospc checks its failure), and a
     * write through the mapping still grows by doubling through ftruncate. */
    const int via_kernel = end > (filled > size ? filled : size) || ft_lazy(m, end);
    const int by_write = via_kernel && (end <= FP_PAGE || oldcap != 0);
    int grown_by_write = 0;
    if (end > oldcap) {
        int r = by_write ? fp_grow_by_write(ino, end) : fp_grow_locked(ino, fd, end);
        grown_by_write = by_write && r == 0;
        if (r < 0) {
            eph_unlock(&ino->lock);
            if (dl)
                eph_unlock(&d->lock);
            if (r == -EAGAIN) {
                r = fp_reserve_slow(fd, ino, inode, end);
                if (r == 0)
                    goto retry;
            }
            errno = -r;
            return -1;
        }
    }
    if (unlikely(off > size)) {
        if (fp_round_up(size, FP_PAGE) < (off & ~(FP_PAGE - 1)))
            atomic_store_explicit(&ino->holes, 1, memory_order_relaxed);
        /* beyond the old capacity the pages are fresh from ftruncate: zero already */
        int r = fp_zero_gap(fd, size, off < oldcap ? off : oldcap);
        if (r < 0) {
            eph_unlock(&ino->lock);
            if (dl)
                eph_unlock(&d->lock);
            errno = -r;
            return -1;
        }
    }
    if (via_kernel) {
        ssize_t w;
        /* A write to a regular file is not interrupted by a signal (tmpfs's is not): on our
         * memfd neither, whatever a signal did to our own call. */
        do
            w = cnt == 1 ? sys.pwrite(fd, iov[0].iov_base, n, (off_t)off) : sys.pwritev(fd, iov, cnt, (off_t)off);
        while (unlikely(w < 0 && errno == EINTR));
        if (unlikely(grown_by_write && (w <= 0 || (size_t)w < n)))
            fp_grow_by_write_short(ino, oldcap, off + (w > 0 ? (uint64_t)w : 0));
        if (unlikely(w <= 0)) {
            int e = w < 0 ? errno : EIO;
            eph_unlock(&ino->lock);
            if (dl)
                eph_unlock(&d->lock);
            errno = e;
            return -1;
        }
        n = (size_t)w;
        end = off + n;
        if (end > filled)
            atomic_store_explicit(&m->filled, end, memory_order_relaxed);
    } else {
        char *base = ft_map_covering(m, fd, end);
        if (unlikely(!base)) {
            eph_unlock(&ino->lock);
            if (dl)
                eph_unlock(&d->lock);
            errno = ENOMEM;
            return -1;
        }
        if (cnt == 1)
            fp_copy(base + off, iov[0].iov_base, n);
        else
            copy_in(base + off, iov, cnt);
        ft_map_touched(m, end);
    }
    if (unlikely(copy_overtaken(ino, epoch))) {
        /* the size it would publish is stale too: leave it (and the lock) */
        if (dl)
            eph_unlock(&d->lock);
        return io_again(fd, iov, cnt, pos, off, n, 1);
    }
    if (end > size)
        atomic_store_explicit(&ino->size, end, memory_order_release);
    fp_stamp_write(ino);
    fp_write_setid(ino);
    eph_unlock(&ino->lock);
    if (pos < 0) {
        atomic_store_explicit(&d->offset, end, memory_order_relaxed);
        if (dl)
            eph_unlock(&d->lock);
    }
    sh_tc.writes++;
    sh_tc.bytes_written += n;
    sh_count_tick();
    return (ssize_t)n;
}

/* A write that moved bytes raises IN_MODIFY on the file's placeholder, when it has one. */
static inline ssize_t wrote(int fd, ssize_t r)
{
    if (ino_on() && r > 0)
        ino_wrote(fd, 0);
    return r;
}

ssize_t fp_write(int fd, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};
    return wrote(fd, do_write(fd, &v, 1, -1));
}

ssize_t fp_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    struct iovec v = {(void *)buf, n};
    return wrote(fd, do_write(fd, &v, 1, off));
}

ssize_t fp_writev(int fd, const struct iovec *iov, int cnt, off_t off, int use_off)
{
    if (use_off && off < 0) {
        errno = EINVAL;
        return -1;
    }
    return wrote(fd, do_write(fd, iov, cnt, use_off ? off : -1));
}

/* ---- seeking ------------------------------------------------------------ */

off_t fp_lseek(int fd, off_t off, int whence)
{
    struct eph_desc *d = fp_desc(fd);
    if (unlikely(atomic_load_explicit(&fp_inode_of(d)->state, memory_order_acquire) != EPH_MEM))
        fp_settle(fd);
    if (unlikely(ft_fds[fd].flags & FT_DISK)) {
        eph_lock(&d->lock);
        off_t r = sys.lseek(fd, (off_t)atomic_load(&d->offset), SEEK_SET);
        if (r >= 0)
            r = sys.lseek(fd, off, whence);
        if (r >= 0)
            atomic_store(&d->offset, (uint64_t)r);
        eph_unlock(&d->lock);
        sh_tc.slow++;
        return r;
    }
    struct eph_inode *ino = fp_inode_of(d);
    int64_t nw;
    const int dl = fp_desc_shared(d);
    if (dl)
        eph_lock(&d->lock);
    int64_t size = (int64_t)atomic_load_explicit(&ino->size, memory_order_acquire);
    switch (whence) {
    case SEEK_SET:
        nw = off;
        break;
    case SEEK_CUR:
        if (__builtin_add_overflow((int64_t)atomic_load(&d->offset), (int64_t)off, &nw))
            nw = -1;
        break;
    case SEEK_END:
        if (__builtin_add_overflow(size, (int64_t)off, &nw))
            nw = -1;
        break;
    case SEEK_DATA:
    case SEEK_HOLE:
        if (off < 0 || off >= size) {
            if (dl)
                eph_unlock(&d->lock);
            errno = ENXIO;
            return -1;
        }
        /* The memfd knows its real holes; clamp to the logical size. */
        nw = sys.lseek(fd, off, whence);
        if (nw < 0 || nw > size) {
            if (whence == SEEK_DATA) {
                if (dl)
                    eph_unlock(&d->lock);
                errno = ENXIO;
                return -1;
            }
            nw = size;
        }
        break;
    default:
        if (dl)
            eph_unlock(&d->lock);
        errno = EINVAL;
        return -1;
    }
    if (nw < 0) {
        if (dl)
            eph_unlock(&d->lock);
        errno = EINVAL;
        return -1;
    }
    atomic_store_explicit(&d->offset, (uint64_t)nw, memory_order_relaxed); /* the unlock publishes it */
    if (dl)
        eph_unlock(&d->lock);
    sh_tc.seeks++;
    sh_count_tick();
    return (off_t)nw;
}
