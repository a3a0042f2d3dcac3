/*
 * shim/fp_stat.c - stat and statx answers for in-memory inodes.
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
#include "ephemera/shm.h"

#include "fp_stat.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "fdtable.h"
#include "fp_desc.h"
#include "fp_times.h"
#include "fp_settle.h"
#include "fp_size.h"

/*
 * 512-byte blocks the memfd has allocated, as the kernel counts them (written
 * and fallocated pages; SEEK_DATA would miss the latter).  Pages past size
 * (growth slack, a stale tail) cannot count, hence the cap.  fd >= 0 is the
 * caller's kernel fd on the memfd (a managed fd: one call, and answered for a
 * user who may not open the daemon's fds); else it is asked through the
 * daemon's fd number, which names the file's memfd only while the slot is that
 * file's: after a free the number may answer for the next file on that memfd,
 * so a caller without an fd looks at the slot's generation after the fill and
 * starts again when it moved (nsv_stat, statx; test/c/attrgc_test.c).
 */
static __attribute__((noinline)) uint64_t allocated_blocks(struct eph_inode *ino, int fd, uint64_t size)
{
    char p[64];
    struct stat st;
    uint64_t cap = fp_round_up(size, FP_PAGE) / 512;
    /* (the low 32 bits of ino are the memfd's own number: a reused memfd counts its reuses above) */
    if (fd >= 0 && sys.fstat(fd, &st) == 0 && (uint32_t)st.st_ino == (uint32_t)ino->ino)
        return (uint64_t)st.st_blocks > cap ? cap : (uint64_t)st.st_blocks;
    snprintf(p, sizeof p, "/proc/%d/fd/%d", sh_daemon_pid(), ino->mem_fd);
    eph_lock_stall("blocks-stat"); /* fault builds: the daemon's fd number read, not yet asked (test/c/attrgc_test.c) */
    if (sys.stat(p, &st) < 0 || (uint64_t)st.st_blocks > cap)
        return cap;
    return (uint64_t)st.st_blocks;
}

void fp_fill_stat(struct eph_inode *ino, int fd, struct stat *st)
{
    fp_times_observed(ino);
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
    st->st_blocks = (blkcnt_t)(fp_round_up(size, FP_PAGE) / 512);
    if (unlikely(atomic_load_explicit(&ino->holes, memory_order_relaxed)))
        st->st_blocks = (blkcnt_t)allocated_blocks(ino, fd, size);
    int64_t a = atomic_load(&ino->atime_ns), mt = atomic_load(&ino->mtime_ns),
            c = atomic_load(&ino->ctime_ns);
    st->st_atim.tv_sec = a / 1000000000;
    st->st_atim.tv_nsec = a % 1000000000;
    st->st_mtim.tv_sec = mt / 1000000000;
    st->st_mtim.tv_nsec = mt % 1000000000;
    st->st_ctim.tv_sec = c / 1000000000;
    st->st_ctim.tv_nsec = c % 1000000000;
}

int fp_fill_statx(struct eph_inode *ino, int fd, unsigned mask, struct statx *stx)
{
    (void)mask; /* everything is at hand: fill all basic fields and btime */
    fp_times_observed(ino);
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
    stx->stx_blocks = fp_round_up(size, FP_PAGE) / 512;
    if (unlikely(atomic_load_explicit(&ino->holes, memory_order_relaxed)))
        stx->stx_blocks = allocated_blocks(ino, fd, size);
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
    fp_fill_stat(fp_inode_of(fp_desc(fd)), fd, st);
    sh_tc.stats++;
    sh_count_tick();
    return 0;
}
