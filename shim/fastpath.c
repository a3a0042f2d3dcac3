/*
 * shim/fastpath.c - data operations on in-memory files without a syscall.
 *
 * Locking (see also ARCHITECTURE.md, "The fast path"):
 *   - desc->lock serialises the offset of one open file description;
 *   - ino->lock serialises size/capacity changes and writes (the kernel also
 *     holds the inode lock for writes), and keeps the daemon from starting an
 *     eviction while it is held;
 *   - readers take no inode lock: they bump ino->inflight and re-check state
 *     (Dekker with the daemon, which sets MOVING and then waits for inflight
 *     to drain).
 * Order: desc->lock before ino->lock.  Nobody waits for anything while
 * holding an inflight count, so the drains in truncate and eviction finish.
 *
 * Invariant: bytes in [size, capacity) of a memfd may be stale (O_TRUNC
 * keeps the pages), so whatever raises the size without writing first zeroes
 * the gap (zero_gap), and the kernel only ever sees the file trimmed to its
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
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "shim.h"

#define DEFAULT_STEP_MAX (64ull << 20)
#define PAGE 4096ull
#define DAY_NS (86400ll * 1000000000ll)
#define FUTURE_NS 1000000000ll

static inline uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* ---- descriptions ------------------------------------------------------- */

int fp_desc_alloc(uint32_t inode, uint32_t gen, int flags, uint32_t *out)
{
    struct eph_shm_header *h = sh.hdr;
    uint32_t n = h->ndescs;
    uint32_t start = atomic_load_explicit(&h->desc_hint, memory_order_relaxed) % n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = (start + i) % n;
        struct eph_desc *d = &sh.descs[idx];
        uint32_t zero = 0;
        if (atomic_load_explicit(&d->refs, memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong(&d->refs, &zero, 1))
            continue;
        d->inode = inode;
        d->inode_gen = gen;
        atomic_store(&d->flags, (uint32_t)flags);
        atomic_store(&d->lock.word, 0);
        atomic_store(&d->offset, 0);
        atomic_store_explicit(&h->desc_hint, idx + 1, memory_order_relaxed);
        *out = idx;
        return 0;
    }
    return -ENFILE;
}

void fp_desc_ref(uint32_t desc) { atomic_fetch_add(&sh.descs[desc].refs, 1); }

void fp_inode_release(uint32_t inode, uint32_t gen)
{
    struct eph_inode *ino = &sh.inodes[inode];
    /* A reference taken on a slot that was reused meanwhile is still ours to give back. */
    if (atomic_fetch_sub(&ino->open_count, 1) != 1 || atomic_load(&ino->gen) != gen)
        return;
    /* Last open description: an unlinked file (or an evicted one) can now be freed. */
    if (atomic_load(&ino->nlink) == 0 || atomic_load(&ino->state) != EPH_MEM)
        rpc_inode_call(EPH_OP_RELEASE, inode, gen);
}

void fp_desc_unref(uint32_t desc)
{
    struct eph_desc *d = &sh.descs[desc];
    uint32_t inode = d->inode, gen = d->inode_gen;
    if (atomic_fetch_sub(&d->refs, 1) == 1)
        fp_inode_release(inode, gen);
}

/* ---- times -------------------------------------------------------------- */

/*
 * Every read and write stamps the inode (atime, mtime, LRU), so the clocks
 * are on the fast path.  The fine CLOCK_REALTIME costs ~40 ns in a VM, a
 * coarse clock ~7 ns, against ~700 ns for the 8 KiB copy itself.  So: one
 * coarse clock per operation, and the fine clock only where tmpfs's
 * multigrain timestamps need it (see stamp_write).
 *
 * CLOCK_REALTIME_COARSE and CLOCK_MONOTONIC_COARSE advance together (one
 * timekeeping update moves both), so each thread reads one of them and reuses
 * its last reading of the other while the first has not moved.
 */
struct coarse_now {
    int64_t real;                       /* CLOCK_REALTIME_COARSE ns */
    uint64_t mono;                      /* CLOCK_MONOTONIC_COARSE ns: the daemon's LRU clock */
};
static SH_TLS struct coarse_now tl_coarse;

static inline int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline struct coarse_now coarse_by_mono(void)
{
    uint64_t mono = (uint64_t)clock_ns(CLOCK_MONOTONIC_COARSE);
    if (unlikely(mono != tl_coarse.mono)) {
        tl_coarse.mono = mono;
        tl_coarse.real = clock_ns(CLOCK_REALTIME_COARSE);
    }
    return tl_coarse;
}

static inline struct coarse_now coarse_by_real(void)
{
    int64_t real = clock_ns(CLOCK_REALTIME_COARSE);
    if (unlikely(real != tl_coarse.real)) {
        tl_coarse.real = real;
        tl_coarse.mono = (uint64_t)clock_ns(CLOCK_MONOTONIC_COARSE);
    }
    return tl_coarse;
}

/* The inode's cache line is shared by every process using the file: store only on a change. */
static inline void stamp_lru(struct eph_inode *ino, uint64_t mono)
{
    if (atomic_load_explicit(&ino->last_use, memory_order_relaxed) != mono)
        atomic_store_explicit(&ino->last_use, mono, memory_order_relaxed);
}

/* A fine-grained stamp: later coarse stamps of any file must not fall below it. */
static int64_t fine_stamp(void)
{
    int64_t now = sh_now_ns();
    eph_atomic_max(&sh.hdr->time_floor, (uint64_t)now);
    return now;
}

static __attribute__((noinline)) void atime_update(struct eph_inode *ino, int64_t a)
{
    int64_t now = sh_now_ns();
    if (a != now)
        atomic_store_explicit(&ino->atime_ns, now, memory_order_relaxed);
}

/* Inlined into every read (a call would cost more than the check: it saves five registers). */
static inline __attribute__((always_inline)) void touch_atime(struct eph_inode *ino)
{
    /* relatime, as tmpfs is mounted by default: most reads leave atime alone, so
     * the fine clock is read only when it changes (the day test needs no precision) */
    struct coarse_now t = coarse_by_mono();
    int64_t a = atomic_load_explicit(&ino->atime_ns, memory_order_relaxed);
    if (unlikely(a <= atomic_load_explicit(&ino->mtime_ns, memory_order_relaxed) ||
                 a <= atomic_load_explicit(&ino->ctime_ns, memory_order_relaxed) || t.real - a >= DAY_NS))
        atime_update(ino, a);
    stamp_lru(ino, t.mono);
}

/* Size changes, O_TRUNC, fallocate: a fine stamp, as before multigrain mattered. */
static void touch_mtime(struct eph_inode *ino)
{
    int64_t now = fine_stamp();
    atomic_store_explicit(&ino->mtime_ns, now, memory_order_relaxed);
    atomic_store_explicit(&ino->ctime_ns, now, memory_order_relaxed);
    if (atomic_load_explicit(&ino->times_seen, memory_order_relaxed))
        atomic_store_explicit(&ino->times_seen, 0, memory_order_relaxed);
    stamp_lru(ino, coarse_by_real().mono);
}

/*
 * A write's mtime/ctime, the way tmpfs's multigrain timestamps work (Linux
 * 6.13+): the coarse clock, raised to the floor of fine stamps handed out,
 * unless that would not be a visible change to someone who already looked
 * (stat set times_seen) - then the fine clock.  So a stream of writes
 * nobody stats costs one coarse clock read and no stores, and a stat after
 * any write still sees a new mtime.  Called under ino->lock.
 */
static void stamp_write(struct eph_inode *ino)
{
    struct coarse_now t = coarse_by_real();
    int64_t c = t.real, floor = (int64_t)atomic_load_explicit(&sh.hdr->time_floor, memory_order_relaxed);
    if (c < floor)
        c = floor;
    int64_t m = atomic_load_explicit(&ino->mtime_ns, memory_order_relaxed);
    int64_t ct = atomic_load_explicit(&ino->ctime_ns, memory_order_relaxed);
    int64_t hi = m > ct ? m : ct, v;
    uint32_t seen = atomic_load_explicit(&ino->times_seen, memory_order_seq_cst);
    /* (The coarse clock can lag fine stamps by more than its tick, so only
     * what lies well ahead of it counts as a time set into the future.) */
    if (c > hi || hi - t.real >= FUTURE_NS)
        v = c;                          /* a new tick (or a time set into the future): coarse is a change */
    else if (!seen)
        v = hi;                         /* same tick, nobody looked: nothing visible to change */
    else if ((v = fine_stamp()) <= hi)
        v = hi + 1;
    if (m != v)
        atomic_store_explicit(&ino->mtime_ns, v, memory_order_relaxed);
    if (ct != v)
        atomic_store_explicit(&ino->ctime_ns, v, memory_order_relaxed);
    if (seen)
        atomic_store_explicit(&ino->times_seen, 0, memory_order_relaxed);
    stamp_lru(ino, t.mono);
}

/* A stat is about to read the times: the next change must be visible to it. */
static inline void times_observed(struct eph_inode *ino)
{
    if (!atomic_load_explicit(&ino->times_seen, memory_order_relaxed))
        atomic_store_explicit(&ino->times_seen, 1, memory_order_seq_cst);
}

/* ---- leaving the memory state ------------------------------------------ */

/*
 * Identity across eviction.  A file that moves to disk gets the disk file's
 * inode number, but programs compare the st_ino of an open fd with a later
 * stat of its path (SQLite refuses to write a database that "moved").  So
 * each process remembers, for the files it had open when they moved, the
 * disk identity and keeps reporting the in-memory one, on its fds and on
 * stats of the path, while it has them open.
 */
#define IDMAP_MAX 64
static struct idmap {
    uint64_t ddev, dino;   /* the disk file */
    uint64_t mdev, mino;   /* what we reported while it was in memory */
    uint32_t inode;        /* slot, to forget the entry at the last local close */
    int used;
} idmap[IDMAP_MAX];
static pthread_mutex_t idmap_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int idmap_n;

static void idmap_add(int fd, struct eph_inode *ino)
{
    struct stat st;
    if (sys.fstat(fd, &st) < 0)
        return;
    pthread_mutex_lock(&idmap_mu);
    int slot = -1;
    for (int i = 0; i < IDMAP_MAX; i++) {
        if (idmap[i].used && idmap[i].ddev == (uint64_t)st.st_dev && idmap[i].dino == (uint64_t)st.st_ino) {
            slot = -2;
            break;
        }
        if (!idmap[i].used && slot == -1)
            slot = i;
    }
    if (slot >= 0) {
        idmap[slot] = (struct idmap){(uint64_t)st.st_dev, (uint64_t)st.st_ino, ino->dev, ino->ino,
                                     (uint32_t)(ino - sh.inodes), 1};
        atomic_fetch_add(&idmap_n, 1);
    }
    pthread_mutex_unlock(&idmap_mu);
}

void fp_idmap_forget(uint32_t inode)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return;
    pthread_mutex_lock(&idmap_mu);
    for (int i = 0; i < IDMAP_MAX; i++)
        if (idmap[i].used && idmap[i].inode == inode) {
            idmap[i].used = 0;
            atomic_fetch_sub(&idmap_n, 1);
        }
    pthread_mutex_unlock(&idmap_mu);
}

/*
 * link() moved an in-memory file to disk to give it a second name: this
 * process saw the in-memory identity a moment ago (git's local clone lstat()s
 * the source, links, and checks the new name has the same st_ino), so both
 * names keep it here.  No fd pins these entries (inode UINT32_MAX never
 * matches fp_idmap_forget); when the table is full the oldest of them goes.
 */
void fp_idmap_remember(uint64_t ddev, uint64_t dino, uint64_t mdev, uint64_t mino)
{
    static int next;
    pthread_mutex_lock(&idmap_mu);
    int slot = -1;
    for (int i = 0; i < IDMAP_MAX && slot < 0; i++)
        if (!idmap[i].used || (idmap[i].ddev == ddev && idmap[i].dino == dino))
            slot = i;
    for (int k = 0; k < IDMAP_MAX && slot < 0; k++) {
        int i = (next + k) % IDMAP_MAX;
        if (idmap[i].inode == UINT32_MAX) {
            slot = i;
            next = i + 1;
        }
    }
    if (slot >= 0) {
        if (!idmap[slot].used)
            atomic_fetch_add(&idmap_n, 1);
        idmap[slot] = (struct idmap){ddev, dino, mdev, mino, UINT32_MAX, 1};
    }
    pthread_mutex_unlock(&idmap_mu);
}

void fp_idmap_translate(struct stat *st)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return;
    pthread_mutex_lock(&idmap_mu);
    for (int i = 0; i < IDMAP_MAX; i++)
        if (idmap[i].used && idmap[i].ddev == (uint64_t)st->st_dev && idmap[i].dino == (uint64_t)st->st_ino) {
            st->st_dev = (dev_t)idmap[i].mdev;
            st->st_ino = (ino_t)idmap[i].mino;
            break;
        }
    pthread_mutex_unlock(&idmap_mu);
}

void fp_idmap_translate_x(struct statx *stx)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return;
    struct stat st;
    st.st_dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
    st.st_ino = (ino_t)stx->stx_ino;
    fp_idmap_translate(&st);
    stx->stx_dev_major = major(st.st_dev);
    stx->stx_dev_minor = minor(st.st_dev);
    stx->stx_ino = st.st_ino;
}

/* Before a stat of a disk path: swap any of our fds whose file has moved, so its identity is known. */
void fp_settle_moved(void)
{
    if (!ft_fds)
        return;
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        struct ft_entry e = ft_fds[fd];
        if (e.desc1 && !(e.flags & FT_DISK) &&
            atomic_load_explicit(&sh.inodes[sh.descs[e.desc1 - 1].inode].state, memory_order_relaxed) != EPH_MEM)
            fp_settle((int)fd);
    }
}

/* The daemon moved the file to disk: put its disk fd under our fd number. */
static int swap_to_disk(int fd, struct eph_inode *ino)
{
    if (ft_fds[fd].flags & FT_DISK)
        return 1;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", sh.daemon_pid, ino->disk_fd);
    int nfd = sys.open(p, O_RDWR | O_CLOEXEC);
    if (nfd < 0) {
        sh_log("cannot open evicted file %s: %s", p, strerror(errno));
        return -EIO;
    }
    sh_log("fd %d: inode %u moved to disk; now on %s", fd, (unsigned)(ino - sh.inodes), p);
    ft_lock();
    int r = 1;
    if (!(ft_fds[fd].flags & FT_DISK) && ft_dup_over(nfd, fd) < 0)
        r = -errno;
    ft_unlock();
    sys.close(nfd);
    if (r == 1) {
        ft_mark_disk(fd);
        idmap_add(fd, ino);
    }
    return r;
}

/*
 * Called without locks when the inode is not in MEM: wait out a move, then
 * swap.  Returns 0 if the file is back in MEM (not expected, but harmless),
 * 1 if fd now refers to the disk file, or -errno.
 */
int fp_settle(int fd)
{
    struct eph_desc *d = fp_desc(fd);
    struct eph_inode *ino = fp_inode_of(d);
    if (ft_fds[fd].flags & FT_DISK)
        return 1;
    for (;;) {
        uint32_t e = atomic_load_explicit(&ino->epoch, memory_order_acquire);
        uint32_t st = atomic_load_explicit(&ino->state, memory_order_acquire);
        if (st == EPH_MEM)
            return 0;
        if (st == EPH_DISK)
            return swap_to_disk(fd, ino);
        if (st != EPH_MOVING)
            return -EIO;
        eph_wait_change(&ino->epoch, e, 20 * 1000 * 1000);
    }
}

/* ---- kernel I/O on an evicted file ------------------------------------- */

static ssize_t disk_io(int fd, const struct iovec *iov, int cnt, off_t pos, int is_write)
{
    struct eph_desc *d = fp_desc(fd);
    ssize_t r;
    sh_tc.slow++;
    if (pos >= 0 && !is_write)
        return sys.preadv(fd, iov, cnt, pos);
    eph_lock(&d->lock);
    if (is_write && (atomic_load(&d->flags) & O_APPEND)) {
        /* Appenders in other descriptions race with us: let the kernel append
         * atomically (the disk fd carries O_APPEND), then read back where it put us. */
        int kfl = sys.fcntl(fd, F_GETFL);
        if (kfl >= 0 && !(kfl & O_APPEND))
            sys.fcntl(fd, F_SETFL, kfl | O_APPEND);
        r = sys.writev(fd, iov, cnt);
        /* An empty write appends nothing and leaves the offset alone (the
         * kernel fd's own position is stale: it is not the shared offset). */
        if (r > 0) {
            off_t end = sys.lseek(fd, 0, SEEK_CUR);
            if (end >= 0 && pos < 0)
                atomic_store(&d->offset, (uint64_t)end);
        }
        eph_unlock(&d->lock);
        return r;
    }
    if (is_write) {
        /* pwrite on an O_APPEND kernel fd appends: drop a flag left by an earlier append */
        int kfl = sys.fcntl(fd, F_GETFL);
        if (kfl >= 0 && (kfl & O_APPEND))
            sys.fcntl(fd, F_SETFL, kfl & ~O_APPEND);
    }
    uint64_t off = pos >= 0 ? (uint64_t)pos : atomic_load(&d->offset);
    r = is_write ? sys.pwritev(fd, iov, cnt, (off_t)off) : sys.preadv(fd, iov, cnt, (off_t)off);
    if (r > 0 && pos < 0)
        atomic_store(&d->offset, off + (uint64_t)r);
    eph_unlock(&d->lock);
    return r;
}

/* ---- budget and capacity ----------------------------------------------- */

static int budget_take(uint64_t delta)
{
    struct eph_shm_header *h = sh.hdr;
    uint64_t budget = atomic_load_explicit(&h->budget, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&h->c.bytes_in_memory, memory_order_relaxed);
    do {
        if (cur + delta > budget || cur + delta < cur)
            return 0;
    } while (!atomic_compare_exchange_weak(&h->c.bytes_in_memory, &cur, cur + delta));
    eph_atomic_max(&h->c.bytes_in_memory_peak, cur + delta);
    return 1;
}

static void budget_give(uint64_t delta)
{
    if (delta)
        atomic_fetch_sub(&sh.hdr->c.bytes_in_memory, delta);
}

/*
 * Make capacity >= need.  Called with ino->lock held.  Returns 0, -errno, or
 * -EAGAIN when the daemon must be asked (the caller drops its locks and calls
 * reserve_slow, then retries).
 */
static int grow_locked(struct eph_inode *ino, int kfd, uint64_t need)
{
    uint64_t cap = atomic_load(&ino->capacity);
    if (need <= cap)
        return 0;
    uint64_t step_max = atomic_load(&sh.hdr->grow_step_max);
    if (!step_max)
        step_max = DEFAULT_STEP_MAX;
    /* Double (bounded by step_max) so appends cost O(log n) ftruncates, but
     * start from the page: capacity is what the budget is charged for. */
    uint64_t step = cap < step_max ? cap : step_max;
    uint64_t want = round_up(need > cap + step ? need : cap + step, PAGE);
    uint64_t minimal = round_up(need, PAGE);
    uint64_t newcap;
    if (budget_take(want - cap))
        newcap = want;
    else if (minimal < want && budget_take(minimal - cap))
        newcap = minimal;
    else
        return -EAGAIN;
    if (sys.ftruncate(kfd, (off_t)newcap) < 0) {
        int e = errno;
        budget_give(newcap - cap);
        return -e;
    }
    atomic_store(&ino->capacity, newcap);
    return 0;
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
static int zero_gap(int kfd, uint64_t from, uint64_t to)
{
    static const char zeros[PAGE];
    if (from >= to)
        return 0;
    /* One punch zeroes partial pages in place and frees whole ones, and never
     * allocates a page that was a hole (tmpfs keeps those holes too). */
    if (sys.fallocate(kfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(to - from)) == 0)
        return 0;
    /* No punching here (a second try over whole pages would fail the same way): write zeros. */
    while (from < to) {
        size_t k = to - from < PAGE ? (size_t)(to - from) : PAGE;
        if (sys.pwrite(kfd, zeros, k, (off_t)from) != (ssize_t)k)
            return -EIO;
        from += k;
    }
    return 0;
}

/* The local hint of how far this process knows the memfd's pages to be populated may only drop. */
static void filled_lower(uint32_t inode, uint64_t to)
{
    struct ft_map *m = ft_map_of(inode);
    if (atomic_load_explicit(&m->filled, memory_order_relaxed) > to)
        atomic_store_explicit(&m->filled, to, memory_order_relaxed);
}

/* No budget left: ask the daemon to make room or to move this file to disk. */
static int reserve_slow(int fd, struct eph_inode *ino, uint32_t inode, uint64_t need)
{
    (void)fd;
    struct eph_req req;
    struct eph_resp resp;
    int rfd;
    rpc_req_init(&req, EPH_OP_RESERVE);
    req.inode = inode;
    req.gen = atomic_load(&ino->gen);
    req.arg = round_up(need, PAGE);
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

/*
 * The offset lock of a description serialises read/write/lseek of everyone
 * sharing it.  A single-threaded process holding the only reference (no dup,
 * no fork, no thread) shares it with nobody, and nothing can add a sharer
 * while it is inside this call, so the two atomic operations are skipped:
 * the kernel's f_pos_lock makes the same exception.
 */
static inline int desc_shared(struct eph_desc *d)
{
    return !__libc_single_threaded || atomic_load_explicit(&d->refs, memory_order_relaxed) != 1;
}

/* ---- copying ------------------------------------------------------------ */

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
static int fp_have_avx2;

__attribute__((constructor)) static void fp_copy_init(void)
{
    __builtin_cpu_init();
    fp_have_avx2 = __builtin_cpu_supports("avx2");
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
    if (cnt < 0 || cnt > IOV_MAX) {
        *err = EINVAL;
        return 0;
    }
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - t) {
            *err = EINVAL;
            return 0;
        }
        t += iov[i].iov_len;
    }
    *err = 0;
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
                                                   uint64_t off, size_t got)
{
    size_t done = 0;
    for (int i = 0; i < cnt && done < got; i++) {
        size_t k = iov[i].iov_len < got - done ? iov[i].iov_len : got - done;
        ssize_t r = sys.pread(fd, iov[i].iov_base, k, (off_t)(off + done));
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
        return disk_io(fd, iov, cnt, pos, 0);
    struct eph_inode *ino = fp_inode_of(d);
    struct ft_map *m = ft_map_of(d->inode);
    const int dl = pos < 0 && desc_shared(d);
    if (dl)
        eph_lock(&d->lock);
    for (;;) {
        atomic_fetch_add_explicit(&ino->inflight, 1, memory_order_seq_cst);
        if (likely(atomic_load_explicit(&ino->state, memory_order_seq_cst) == EPH_MEM))
            break;
        atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
        if (dl)
            eph_unlock(&d->lock);
        int r = fp_settle(fd);
        if (r < 0) {
            errno = -r;
            return -1;
        }
        if (r == 1)
            return disk_io(fd, iov, cnt, pos, 0);
        if (dl)
            eph_lock(&d->lock);
    }
    const uint32_t epoch = atomic_load_explicit(&ino->epoch, memory_order_relaxed);
    uint64_t off = pos < 0 ? atomic_load_explicit(&d->offset, memory_order_relaxed) : (uint64_t)pos;
    uint64_t size = atomic_load_explicit(&ino->size, memory_order_acquire);
    size_t got = 0;
    if (off < size && n) {
        got = size - off < n ? (size_t)(size - off) : n;
        char *base = ft_map_covering(m, fd, off + got);
        if (unlikely(!base)) {
            atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
            if (dl)
                eph_unlock(&d->lock);
            errno = ENOMEM;
            return -1;
        }
        if (unlikely(atomic_load_explicit(&ino->holes, memory_order_relaxed)) && range_has_hole(fd, ino, off, off + got))
            got = read_holes(fd, iov, cnt, base, off, got);
        else if (cnt == 1)
            fp_copy(iov[0].iov_base, base + off, got);
        else
            copy_out(iov, cnt, base + off, got);
        if (unlikely(copy_overtaken(ino, epoch))) {
            atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
            if (dl)
                eph_unlock(&d->lock);
            return io_again(fd, iov, cnt, pos, off, got, 0);
        }
        if (pos < 0)
            atomic_store_explicit(&d->offset, off + got, memory_order_relaxed);
    }
    atomic_fetch_sub_explicit(&ino->inflight, 1, memory_order_release);
    if (dl)
        eph_unlock(&d->lock);
    if (n)
        touch_atime(ino);
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
        return disk_io(fd, iov, cnt, pos, 1);
    if (n == 0)
        return 0;
    struct eph_inode *ino = fp_inode_of(d);
    uint32_t inode = d->inode;
    struct ft_map *m = ft_map_of(inode);
    const int dl = pos < 0 && desc_shared(d);
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
            return disk_io(fd, iov, cnt, pos, 1);
        goto retry;
    }
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
    if (end > oldcap) {
        int r = grow_locked(ino, fd, end);
        if (r < 0) {
            eph_unlock(&ino->lock);
            if (dl)
                eph_unlock(&d->lock);
            if (r == -EAGAIN) {
                r = reserve_slow(fd, ino, inode, end);
                if (r == 0)
                    goto retry;
            }
            errno = -r;
            return -1;
        }
    }
    if (unlikely(off > size)) {
        if (round_up(size, PAGE) < (off & ~(PAGE - 1)))
            atomic_store_explicit(&ino->holes, 1, memory_order_relaxed);
        /* beyond the old capacity the pages are fresh from ftruncate: zero already */
        int r = zero_gap(fd, size, off < oldcap ? off : oldcap);
        if (r < 0) {
            eph_unlock(&ino->lock);
            if (dl)
                eph_unlock(&d->lock);
            errno = -r;
            return -1;
        }
    }
    uint64_t filled = atomic_load_explicit(&m->filled, memory_order_relaxed);
    if (end > (filled > size ? filled : size)) {
        /* Pages this process does not know to be populated: the kernel's shmem
         * write allocates them without the fault + zero-fill per 4 KiB that a
         * memcpy through the mapping costs (measured 1.5-2x faster creation). */
        ssize_t w = cnt == 1 ? sys.pwrite(fd, iov[0].iov_base, n, (off_t)off)
                             : sys.pwritev(fd, iov, cnt, (off_t)off);
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
    }
    if (unlikely(copy_overtaken(ino, epoch))) {
        /* the size it would publish is stale too: leave it (and the lock) */
        if (dl)
            eph_unlock(&d->lock);
        return io_again(fd, iov, cnt, pos, off, n, 1);
    }
    if (end > size)
        atomic_store_explicit(&ino->size, end, memory_order_release);
    stamp_write(ino);
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

ssize_t fp_write(int fd, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};
    return do_write(fd, &v, 1, -1);
}

ssize_t fp_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    struct iovec v = {(void *)buf, n};
    return do_write(fd, &v, 1, off);
}

ssize_t fp_writev(int fd, const struct iovec *iov, int cnt, off_t off, int use_off)
{
    if (use_off && off < 0) {
        errno = EINVAL;
        return -1;
    }
    return do_write(fd, iov, cnt, use_off ? off : -1);
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
    const int dl = desc_shared(d);
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

/* ---- stat --------------------------------------------------------------- */

/*
 * 512-byte blocks the memfd has allocated, as the kernel counts them (written
 * and fallocated pages; SEEK_DATA would miss the latter).  Pages past size
 * (growth slack, a stale tail) cannot count, hence the cap.
 */
static __attribute__((noinline)) uint64_t allocated_blocks(struct eph_inode *ino, uint64_t size)
{
    char p[64];
    struct stat st;
    uint64_t cap = round_up(size, PAGE) / 512;
    snprintf(p, sizeof p, "/proc/%d/fd/%d", sh.daemon_pid, ino->mem_fd);
    if (sys.stat(p, &st) < 0 || (uint64_t)st.st_blocks > cap)
        return cap;
    return (uint64_t)st.st_blocks;
}

void fp_fill_stat(struct eph_inode *ino, struct stat *st)
{
    times_observed(ino);
    memset(st, 0, sizeof *st);
    uint64_t size = atomic_load(&ino->size);
    st->st_dev = (dev_t)ino->dev;
    st->st_ino = (ino_t)ino->ino;
    st->st_mode = ino->mode;
    st->st_nlink = atomic_load(&ino->nlink);
    st->st_uid = ino->uid;
    st->st_gid = ino->gid;
    st->st_size = (off_t)size;
    st->st_blksize = 4096;
    /* pages covering the size; a file with holes asks the kernel which are allocated */
    st->st_blocks = (blkcnt_t)(round_up(size, PAGE) / 512);
    if (unlikely(atomic_load_explicit(&ino->holes, memory_order_relaxed)))
        st->st_blocks = (blkcnt_t)allocated_blocks(ino, size);
    int64_t a = atomic_load(&ino->atime_ns), mt = atomic_load(&ino->mtime_ns),
            c = atomic_load(&ino->ctime_ns);
    st->st_atim.tv_sec = a / 1000000000;
    st->st_atim.tv_nsec = a % 1000000000;
    st->st_mtim.tv_sec = mt / 1000000000;
    st->st_mtim.tv_nsec = mt % 1000000000;
    st->st_ctim.tv_sec = c / 1000000000;
    st->st_ctim.tv_nsec = c % 1000000000;
}

int fp_fill_statx(struct eph_inode *ino, unsigned mask, struct statx *stx)
{
    (void)mask; /* everything is at hand: fill all basic fields and btime */
    times_observed(ino);
    memset(stx, 0, sizeof *stx);
    uint64_t size = atomic_load(&ino->size);
    stx->stx_mask = STATX_BASIC_STATS | STATX_BTIME;
    stx->stx_blksize = 4096;
    stx->stx_nlink = atomic_load(&ino->nlink);
    stx->stx_uid = ino->uid;
    stx->stx_gid = ino->gid;
    stx->stx_mode = (uint16_t)ino->mode;
    stx->stx_ino = ino->ino;
    stx->stx_size = size;
    stx->stx_blocks = round_up(size, PAGE) / 512;
    if (unlikely(atomic_load_explicit(&ino->holes, memory_order_relaxed)))
        stx->stx_blocks = allocated_blocks(ino, size);
    int64_t t[4] = {atomic_load(&ino->atime_ns), ino->btime_ns, atomic_load(&ino->ctime_ns),
                    atomic_load(&ino->mtime_ns)};
    struct statx_timestamp *ts[4] = {&stx->stx_atime, &stx->stx_btime, &stx->stx_ctime,
                                     &stx->stx_mtime};
    for (int i = 0; i < 4; i++) {
        ts[i]->tv_sec = t[i] / 1000000000;
        ts[i]->tv_nsec = (uint32_t)(t[i] % 1000000000);
    }
    stx->stx_dev_major = major((dev_t)ino->dev);
    stx->stx_dev_minor = minor((dev_t)ino->dev);
    return 0;
}

int fp_fstat(int fd, struct stat *st)
{
    if (unlikely(atomic_load_explicit(&fp_inode_of(fp_desc(fd))->state, memory_order_acquire) != EPH_MEM))
        fp_settle(fd); /* moved to disk: answer from the disk file, as the kernel will from now on */
    if (unlikely(ft_fds[fd].flags & FT_DISK)) {
        sh_tc.slow++;
        int r = sys.fstat(fd, st);
        if (r == 0)
            fp_idmap_translate(st);
        return r;
    }
    fp_fill_stat(fp_inode_of(fp_desc(fd)), st);
    sh_tc.stats++;
    sh_count_tick();
    return 0;
}

/* ---- size changes ------------------------------------------------------- */

#define SZ_KEEP_PAGES 2 /* set_size flag: shrinking keeps the memfd's pages (O_TRUNC at open) */

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
        uint64_t to = round_up(len, PAGE);
        if (round_up(size, PAGE) < to)
            atomic_store_explicit(&ino->holes, 1, memory_order_relaxed);
        int r = zero_gap(kfd, size, to < oldcap ? to : oldcap);
        if (r == 0)
            r = grow_locked(ino, kfd, len);
        if (r == -EAGAIN) {
            eph_unlock(&ino->lock);
            r = reserve_slow(kfd, ino, inode, len);
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
        /* O_TRUNC: keep the pages for the rewrite that usually follows (stale tail, see zero_gap) */
        atomic_store_explicit(&ino->size, len, memory_order_release);
    } else if (len < size) {
        atomic_store_explicit(&ino->size, len, memory_order_seq_cst);
        /* Readers that saw the old size may still be copying from the tail. */
        while (atomic_load_explicit(&ino->inflight, memory_order_seq_cst) != 0)
            sched_yield();
        /* Truncating the memfd zeroes the partial page and frees the rest,
         * which keeps the "zeros beyond size" invariant. */
        uint64_t cap = atomic_load(&ino->capacity);
        if (sys.ftruncate(kfd, (off_t)len) < 0) {
            int e = errno;
            eph_unlock(&ino->lock);
            return -e;
        }
        atomic_store(&ino->capacity, len);
        budget_give(cap - len);
        filled_lower(inode, len);
    }
    if (len == 0)
        atomic_store_explicit(&ino->holes, 0, memory_order_relaxed); /* nothing below size */
    /* truncate, ftruncate and O_TRUNC stamp the times even when the size stays (tmpfs). */
    if (len != size || always_touch)
        touch_mtime(ino);
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
            return sys.ftruncate(fd, len);
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
 * the old bytes.  They stay (stale tail, see zero_gap): a file rewritten in
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
        while (atomic_load_explicit(&ino->inflight, memory_order_seq_cst) != 0)
            sched_yield();
        if (sys.ftruncate(fd, 0) == 0) {
            atomic_store(&ino->capacity, 0);
            budget_give(cap);
            filled_lower(d->inode, 0);
        }
    }
    if (atomic_load(&ino->state) == EPH_MEM)
        touch_mtime(ino); /* O_TRUNC stamps the times even on an empty file */
    eph_unlock(&ino->lock);
}

int fp_set_size_fd(int fd, uint64_t len)
{
    struct eph_desc *d = fp_desc(fd);
    for (;;) {
        if (ft_fds[fd].flags & FT_DISK)
            return sys.ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
        int r = set_size(fp_inode_of(d), d->inode, fd, len, 1 | SZ_KEEP_PAGES);
        if (r <= 0)
            return r;
        r = fp_settle(fd);
        if (r < 0)
            return r;
    }
}

/* truncate(path) on an in-memory inode: borrow a kernel fd on the memfd. */
/*
 * Wait while the daemon moves the file to disk.  Mid-move the disk file is
 * not linked at the path yet, so a caller that falls back to the kernel on the
 * path when the file left memory would get ENOENT; after it, it will not.
 */
void fp_wait_moving(struct eph_inode *ino, uint32_t gen)
{
    for (;;) {
        uint32_t e = atomic_load_explicit(&ino->epoch, memory_order_acquire);
        if (atomic_load(&ino->gen) != gen || atomic_load(&ino->state) != EPH_MOVING)
            return;
        eph_wait_change(&ino->epoch, e, 20 * 1000 * 1000);
    }
}

int fp_truncate_inode(uint32_t inode, uint32_t gen, off_t len)
{
    struct eph_inode *ino = &sh.inodes[inode];
    /* Hold an open reference meanwhile, so the daemon cannot free the inode under us. */
    atomic_fetch_add(&ino->open_count, 1);
    fp_wait_moving(ino, gen);
    if (atomic_load(&ino->gen) != gen || atomic_load(&ino->state) != EPH_MEM) {
        fp_inode_release(inode, gen);
        return -EAGAIN;
    }
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", sh.daemon_pid, ino->mem_fd);
    int kfd = sys.open(p, O_RDWR | O_CLOEXEC);
    int r = kfd < 0 ? -EAGAIN : set_size(ino, inode, kfd, (uint64_t)len, 1);
    if (kfd >= 0)
        sys.close(kfd);
    if (r == 1)
        fp_wait_moving(ino, gen);
    fp_inode_release(inode, gen);
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

int fp_fallocate(int fd, int mode, off_t off, off_t len)
{
    struct eph_desc *d = fp_desc(fd);
    if (off < 0 || len <= 0)
        return -EINVAL;
    if ((atomic_load(&d->flags) & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    if (ft_fds[fd].flags & FT_DISK)
        return sys.fallocate(fd, mode, off, len) < 0 ? -errno : 0;
    struct eph_inode *ino = fp_inode_of(d);
    uint64_t end = (uint64_t)off + (uint64_t)len;
    if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
        /* tmpfs stamps the times even when nothing grows */
        if (mode == FALLOC_FL_KEEP_SIZE || end <= atomic_load(&ino->size)) {
            eph_lock(&ino->lock);
            touch_mtime(ino);
            fill_holes(ino, fd, (uint64_t)off, end);
            eph_unlock(&ino->lock);
            return 0;
        }
        int r = set_size(ino, d->inode, fd, end, 1);
        if (r == 1)
            return fp_settle(fd) < 0 ? -EIO : (sys.fallocate(fd, mode, off, len) < 0 ? -errno : 0);
        if (r == 0) {
            eph_lock(&ino->lock);
            fill_holes(ino, fd, (uint64_t)off, end);
            eph_unlock(&ino->lock);
        }
        return r;
    }
    if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        eph_lock(&ino->lock);
        uint64_t cap = atomic_load(&ino->capacity);
        int r = 0;
        if ((uint64_t)off < cap)
            r = sys.fallocate(fd, mode, off, (off_t)(end > cap ? cap - (uint64_t)off : (uint64_t)len)) < 0 ? -errno : 0;
        if (r == 0 && round_up((uint64_t)off, PAGE) < (end & ~(PAGE - 1)) &&
            round_up((uint64_t)off, PAGE) < atomic_load(&ino->size))
            atomic_store(&ino->holes, 1);
        if (r == 0)
            touch_mtime(ino);
        eph_unlock(&ino->lock);
        return r;
    }
    /* Other modes: the memfd is shmem like tmpfs, so it gives tmpfs's answer. */
    return sys.fallocate(fd, mode, off, len) < 0 ? -errno : 0;
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
    /* No drain needed: readers never touch bytes beyond size. */
    if (atomic_load(&ino->state) == EPH_MEM && cap != size) {
        if (sys.ftruncate(fd, (off_t)size) == 0) {
            atomic_store(&ino->capacity, size);
            budget_give(cap - size);
            filled_lower(d->inode, size);
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
    uint64_t cap = atomic_load(&ino->capacity);
    if (cap == round_up(atomic_load(&ino->size), PAGE))
        return;
    eph_lock(&ino->lock);
    uint64_t want = round_up(atomic_load(&ino->size), PAGE);
    cap = atomic_load(&ino->capacity);
    if (atomic_load(&ino->state) == EPH_MEM && cap > want && sys.ftruncate(fd, (off_t)want) == 0) {
        atomic_store(&ino->capacity, want);
        budget_give(cap - want);
        filled_lower(d->inode, want);
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

/* ---- the shared namespace ---------------------------------------------- */

/*
 * A namespace reader met the daemon inside (or racing) a write section.  Spin
 * briefly, then let the daemon run: on a busy machine it can be preempted in
 * the middle of a write, and a reader that gave up after a fixed number of
 * spins reported existing files as missing (ENOENT, absent from readdir).
 * 0: try again; -EAGAIN after about 5 s (a daemon that died mid-write).
 */
int ns_backoff(unsigned tries)
{
    if (tries < 64) {
        __builtin_ia32_pause();
        return 0;
    }
    if (tries < 128) {
        sched_yield();
        return 0;
    }
    if (tries > 128 + 100000)
        return -EAGAIN;
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL);
    return 0;
}

int ns_lookup(const char *abs, uint32_t *inode, uint32_t *gen)
{
    struct eph_shm_header *h = sh.hdr;
    uint32_t hash = eph_path_hash(abs);
    for (unsigned tries = 0;; tries++) {
        uint64_t s1 = atomic_load_explicit(&h->ns_seq, memory_order_acquire);
        if (s1 & 1) {
            if (ns_backoff(tries) < 0)
                return -EAGAIN;
            continue;
        }
        int found = -1;
        uint32_t g = 0;
        uint32_t idx = atomic_load_explicit(&sh.buckets[hash & (h->nbuckets - 1)], memory_order_relaxed);
        for (uint32_t steps = 0; idx && idx <= h->ninodes && steps < h->ninodes; steps++) {
            struct eph_inode *ino = &sh.inodes[idx - 1];
            if (ino->hash == hash && strncmp(ino->path, abs, EPH_PATH_MAX) == 0) {
                found = (int)(idx - 1);
                g = atomic_load_explicit(&ino->gen, memory_order_relaxed);
                break;
            }
            idx = ino->next;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->ns_seq, memory_order_relaxed) != s1) {
            if (ns_backoff(tries) < 0)
                return -EAGAIN;
            continue;
        }
        if (found < 0)
            return -ENOENT;
        *inode = (uint32_t)found;
        *gen = g;
        return 0;
    }
}

int ns_stat(const char *abs, struct stat *st)
{
    uint32_t inode, gen;
    for (int tries = 0; tries < 100; tries++) {
        int r = ns_lookup(abs, &inode, &gen);
        if (r < 0)
            return r;
        struct eph_inode *ino = &sh.inodes[inode];
        fp_fill_stat(ino, st);
        /* The slot may have been freed and reused while we copied. */
        if (atomic_load(&ino->gen) == gen && atomic_load(&ino->state) != EPH_FREE) {
            sh_tc.stats++;
            sh_count_tick();
            return 0;
        }
    }
    return -ENOENT;
}

/*
 * What the kernel's walk to abs's parent would fail with: 0 if every proper
 * ancestor is a directory, else -ENOTDIR or -ENOENT for the first one that
 * is not (an in-memory file counts as a file, although the disk has nothing).
 */
static int walk_error(const char *abs, int depth);

int ns_walk_error(const char *abs)
{
    return walk_error(abs, 0);
}

static int walk_error(const char *abs, int depth)
{
    char buf[EPH_PATH_MAX];
    size_t n = strlen(abs);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, abs, n + 1);
    uint32_t inode, gen;
    for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        struct stat st;
        int e = 0;
        if (ns_lookup(buf, &inode, &gen) == 0) {
            e = -ENOTDIR;
        } else if (sys.stat(buf, &st) < 0) {
            e = -errno;
            /* a symlink on disk that leads to an in-memory file is a file too */
            char tgt[EPH_PATH_MAX];
            memcpy(tgt, buf, strlen(buf) + 1);
            if (e == -ENOENT && depth < 8 && path_canon(tgt, 1) > 0) {
                if (ns_lookup(tgt, &inode, &gen) == 0)
                    e = -ENOTDIR;
                else if (walk_error(tgt, depth + 1) == -ENOTDIR)
                    e = -ENOTDIR;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            e = -ENOTDIR;
        }
        *s = '/';
        if (e)
            return e;
    }
    return 0;
}

int ns_ancestor_is_file(const char *abs)
{
    return ns_walk_error(abs) == -ENOTDIR;
}

void sh_enoent(int dirfd, const char *path)
{
    char abs[EPH_PATH_MAX];
    int t;
    if (sh_busy || !path_maybe_managed(dirfd, path) || sh_attach() < 0)
        return;
    if (pn_has_dotdot(path)) {
        int e = path_physical_error(dirfd, path);
        if (e == -ENOTDIR) {
            errno = ENOTDIR;
            return;
        }
    }
    if (path_resolve(dirfd, path, abs, &t) <= 0)
        return;
    uint32_t inode, gen;
    if (ns_ancestor_is_file(abs) ||
        (path_canon(abs, 1) > 0 && (ns_ancestor_is_file(abs) || (t && ns_lookup(abs, &inode, &gen) == 0))))
        errno = ENOTDIR; /* a trailing slash through a symlink to an in-memory file, too */
    else
        errno = ENOENT;
}
