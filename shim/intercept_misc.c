/*
 * shim/intercept_misc.c - fd lifetime (close, dup, fcntl), size and sync
 * calls, ioctl, and the calls through which the kernel itself reads or writes
 * a managed file (mmap, sendfile, copy_file_range, splice).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "intercept_misc.h"
#include "compiler.h"
#include "sys.h"
#include "creds.h"
#include "init.h"
#include "paths.h"
#include "fdtable.h"
#include "nsdirfd.h"
#include "diskbytes.h"
#include "fp_desc.h"
#include "fp_settle.h"
#include "fp_size.h"
#include "intercept_io.h"
#include "intercept_stdio.h"
#include "inotify.h"

SH_EXPORT int close(int fd)
{
    if (likely(!ft_touched(fd)))
        return REAL(close)(fd);
    if (!ft_fds[fd].desc1) {
        ndf_forget_if(fd);
        db_forget(fd);
        ft_priv_lost(fd);
        return sys.close(fd);
    }
    fp_trim_on_close(fd);
    sh_flush_counters();
    /* Forget before the kernel frees the number, so a racing open cannot get a stale entry. */
    ft_change_begin();
    ft_forget(fd);
    int r = sys.close(fd);
    ft_change_end();
    return r;
}

static void forget_range(unsigned first, unsigned last)
{
    if (!ft_fds)
        return;
    for (unsigned fd = first; fd < ft_nfds && fd <= last; fd++) {
        if (ft_fds[fd].desc1)
            ft_forget((int)fd);
        else if (ft_fds[fd].flags & FT_PRIV)
            ft_priv_lost((int)fd);
        else if (ft_fds[fd].flags & (FT_SIZED | FT_ROOTFD)) {
            ndf_forget_if((int)fd);
            db_forget((int)fd);
        }
    }
}

SH_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    if (!REAL(close_range)) {
        errno = ENOSYS;
        return -1;
    }
    if (sh_vfork_child())
        return sys.close_range(first, last, flags); /* the table is the parent's (vforkchild.h) */
    if (flags & CLOSE_RANGE_CLOEXEC) /* the program's flag of fds on the daemon's description (fdtable.h) */
        for (unsigned fd = first, hwm = ft_fds ? atomic_load(&ft_hwm) : 0; fd < hwm && fd <= last; fd++)
            ft_ddesc_set_cloexec((int)fd, 1);
    ft_change_begin();
    int r = sys.close_range(first, last, flags);
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        forget_range(first, last);
    ft_change_end();
    return r;
}

SH_EXPORT void closefrom(int lowfd)
{
    if (lowfd < 0)
        lowfd = 0;
    int ours = !sh_vfork_child(); /* a vfork child's table is its parent's (vforkchild.h) */
    if (ours) {
        ft_change_begin();
        forget_range((unsigned)lowfd, ~0u);
    }
    if (!REAL(close_range) || sys.close_range((unsigned)lowfd, ~0u, 0) != 0)
        for (int fd = lowfd; fd < 65536; fd++)
            sys.close(fd);
    if (ours)
        ft_change_end();
}

/* newfd now names oldfd's description (if managed). */
static int after_dup(int oldfd, int newfd)
{
    if (newfd < 0)
        return newfd;
    if (ft_managed(newfd))
        ft_forget(newfd);
    else if (ft_touched(newfd)) {
        ndf_forget_if(newfd);
        db_forget(newfd);
        ft_priv_lost(newfd);
    }
    db_dup(oldfd, newfd);
    if (unlikely(ft_mdirfd(oldfd)))
        ndf_dup(oldfd, newfd);
    if (ft_managed(oldfd)) {
        int e = ft_install_dup(newfd, oldfd);
        if (e < 0) {
            sys.close(newfd);
            errno = -e;
            return -1;
        }
        ft_ddesc_dup(oldfd, newfd); /* oldfd stayed on the daemon's description (fdtable.h) */
        if (newfd <= 2)
            stdio_std_managed(newfd);
    }
    return newfd;
}

/* A dup that involves a managed fd (or may land on one): the kernel's and the table's steps as one change. */
static inline int dup_changes(int oldfd, int newfd)
{
    return ft_touched(oldfd) || (newfd >= 0 && ft_touched(newfd));
}

SH_EXPORT int dup(int fd)
{
    if (sh_vfork_child())
        return REAL(dup)(fd);
    ft_ddesc_own_unlocked(fd); /* the copy shares a description of its own, not the daemon's */
    if (!dup_changes(fd, -1))
        return after_dup(fd, REAL(dup)(fd));
    ft_change_begin();
    int r = after_dup(fd, REAL(dup)(fd));
    ft_change_end();
    return r;
}

SH_EXPORT int dup2(int oldfd, int newfd)
{
    if (oldfd == newfd || !ft_fds || sh_vfork_child())
        return REAL(dup2)(oldfd, newfd);
    ft_ddesc_own_unlocked(oldfd);
    int ch = dup_changes(oldfd, newfd);
    if (ch)
        ft_change_begin();
    int r = sys.dup2(oldfd, newfd);
    if (r >= 0)
        r = after_dup(oldfd, r);
    if (ch)
        ft_change_end();
    return r;
}

SH_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    if (oldfd == newfd || !ft_fds || sh_vfork_child())
        return REAL(dup3)(oldfd, newfd, flags);
    ft_ddesc_own_unlocked(oldfd);
    int ch = dup_changes(oldfd, newfd);
    if (ch)
        ft_change_begin();
    int r = sys.dup3(oldfd, newfd, flags);
    if (r >= 0)
        r = after_dup(oldfd, r);
    if (ch)
        ft_change_end();
    return r;
}

#define SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)
#define KERNEL_O_LARGEFILE 0100000

/*
 * Record locks (F_SETLK and OFD locks) live on the kernel inode under the fd:
 * the memfd while the file is in memory, the disk file after a move.  The
 * daemon does not move a file anyone holds such a lock on (it probes with
 * F_OFD_GETLK after its seq_cst store of MOVING and the drain), so a lock
 * taken here is rechecked: after a full fence, is the file still in memory
 * and unmoved since we looked?  Either the daemon's probe sees our lock or we
 * see its MOVING (lock_stayed).  If not, the lock we got is on the memfd left
 * behind, and it is taken again on the file's new home.  A file not in memory
 * is settled first, so the lock and its queries land on the disk file every
 * other process uses.
 */
static inline int lock_stayed(struct eph_inode *ino, uint32_t epoch)
{
    /* Dekker with the daemon's MOVING: our lock, in the kernel's list, is visible before our
     * load of the state (one locked instruction on our own stack, not two on the shared line). */
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_load(&ino->state) == EPH_MEM && atomic_load(&ino->epoch) == epoch;
}

int misc_lock_on_home(int fd, int (*call)(int, int, unsigned long), int cmd, unsigned long arg, int recheck)
{
    for (;;) {
        if (ft_fds[fd].flags & FT_DISK)
            return call(fd, cmd, arg);
        struct eph_inode *ino = fp_inode_of(fp_desc(fd));
        uint32_t epoch = atomic_load(&ino->epoch);
        if (atomic_load(&ino->state) != EPH_MEM) {
            int r = fp_settle(fd);
            if (r < 0) {
                errno = -r;
                return -1;
            }
            continue;
        }
        int r = call(fd, cmd, arg);
        if (r < 0 || !recheck || lock_stayed(ino, epoch))
            return r;
    }
}

static int fcntl_call(int fd, int cmd, unsigned long arg) { return sys.fcntl(fd, cmd, arg); }

/*
 * The kernel places a SEEK_CUR or SEEK_END lock by the kernel fd's offset and
 * size, which are not the file's while it is in memory (the offset lives in
 * the description, the memfd is as long as its capacity; a swapped fd's
 * kernel offset is not kept either): such a request is made absolute here,
 * as the kernel would (EOVERFLOW past OFF_MAX; a negative start gets its
 * EINVAL).  0, or 1 with *abs to be used instead, or -errno.
 */
static int lock_absolute(int fd, const struct flock *fl, struct flock *abs)
{
    if (path_bad_ptr(fl) || (fl->l_whence != SEEK_CUR && fl->l_whence != SEEK_END))
        return 0; /* a bad pointer: the kernel's EFAULT */
    struct eph_desc *d = fp_desc(fd);
    int64_t base;
    if (fl->l_whence == SEEK_CUR)
        base = (int64_t)atomic_load(&d->offset);
    else if (ft_fds[fd].flags & FT_DISK)
        return 0; /* the disk file's size is the file's */
    else
        base = (int64_t)atomic_load_explicit(&fp_inode_of(d)->size, memory_order_acquire);
    if (fl->l_start > INT64_MAX - base)
        return -EOVERFLOW;
    *abs = *fl;
    abs->l_whence = SEEK_SET;
    abs->l_start = base + fl->l_start;
    return 1;
}

static int record_lock(int fd, int cmd, unsigned long arg)
{
    if ((cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW) && !(ft_fds[fd].flags & FT_DISK))
        io_own_description(fd);
    struct flock *user = (struct flock *)arg, abs;
    int a = lock_absolute(fd, user, &abs);
    if (a < 0) {
        errno = -a;
        return -1;
    }
    int query = cmd == F_GETLK || cmd == F_OFD_GETLK;
    /* An unlock is rechecked too (harmless: unlocking again on the disk file
     * is a no-op). */
    int r = misc_lock_on_home(fd, fcntl_call, cmd, a ? (unsigned long)&abs : arg, !query);
    if (a && r == 0 && query) {
        /* The kernel's answer: the conflicting lock (SEEK_SET), or only F_UNLCK in the caller's request. */
        if (abs.l_type == F_UNLCK) {
            abs.l_whence = user->l_whence;
            abs.l_start = user->l_start;
        }
        *user = abs;
    }
    return r;
}

/* The fcntl system call, made as libc's wrapper makes it for every command it
 * passes through unchanged (all but F_GETOWN and the waiting locks, which are
 * cancellation points): -errno on failure.  Inline, so that after the kernel
 * returns there is one return to the program, as from libc's own fcntl: each
 * further return after a system call costs about 6 ns here (the kernel refills
 * the return stack on the way out), 2.5% of an uncontended lock. */
static inline long fcntl_syscall(int fd, int cmd, unsigned long arg)
{
#if defined(__x86_64__)
    /* fd and cmd as the kernel reads them (unsigned int: the upper halves are not looked at) */
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"((long)SYS_fcntl), "D"((unsigned)fd), "S"((unsigned)cmd), "d"(arg)
                     : "rcx", "r11", "memory");
    return r;
#else
    long r = syscall(SYS_fcntl, fd, cmd, arg);
    return r < 0 ? -errno : r;
#endif
}

/* Everything on a managed fd but the common lock calls of sh_fcntl. */
static __attribute__((noinline)) int fcntl_managed(int fd, int cmd, unsigned long arg)
{
    struct eph_desc *d = fp_desc(fd);
    int view = ft_ddesc_cloexec(fd); /* an fd on the daemon's description: the program's FD_CLOEXEC */
    if (unlikely(view >= 0)) {
        if (cmd == F_GETFD)
            return view ? FD_CLOEXEC : 0;
        if (cmd == F_SETFD) {
            ft_ddesc_set_cloexec(fd, (arg & FD_CLOEXEC) != 0);
            return 0;
        }
        if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
            ft_ddesc_own_unlocked(fd); /* the copy shares a description of its own */
    }
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        ft_change_begin();
        int r = after_dup(fd, sys.fcntl(fd, cmd, arg));
        ft_change_end();
        return r;
    }
    case F_GETFL:
        /* The kernel fd is O_RDWR; report what the application asked for. */
        return (int)(atomic_load(&d->flags) | KERNEL_O_LARGEFILE);
    case F_SETFL: {
        uint32_t old = atomic_load(&d->flags), nw;
        do
            nw = (old & ~(uint32_t)SETFL_MASK) | ((uint32_t)arg & SETFL_MASK);
        while (!atomic_compare_exchange_weak(&d->flags, &old, nw));
        return 0;
    }
    case F_SETLK:
    case F_SETLKW:
    case F_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
    case F_OFD_GETLK:
        return record_lock(fd, cmd, arg);
    default:
        return sys.fcntl(fd, cmd, arg);
    }
}

/* Every fcntl but sh_fcntl's fast path: a call on an fd the shim does not
 * manage (or made by a vfork child) is a tail jump into libc's fcntl; the
 * rest goes to fcntl_managed. */
static __attribute__((noinline)) int fcntl_slow(int fd, int cmd, unsigned long arg)
{
    if (likely(!ft_managed(fd))) {
        if (unlikely(ft_sized(fd) || ft_mdirfd(fd)) && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
            return after_dup(fd, sys.fcntl(fd, cmd, arg));
        if (unlikely(ft_mdirfd(fd)) && cmd != F_GETFD && cmd != F_SETFD && cmd != F_GETFL && cmd != F_SETFL)
            ndf_settle(fd); /* locks, leases, notify...: on the twin */
        return REAL(fcntl)(fd, cmd, arg);
    }
    if ((cmd == F_SETLK || cmd == F_SETLKW) && !atomic_load_explicit(&ft_posix_locks, memory_order_relaxed))
        atomic_store_explicit(&ft_posix_locks, 1, memory_order_relaxed); /* fdtable.h: no reopen from now on */
    return fcntl_managed(fd, cmd, arg);
}

/* The kernel's -errno as libc returns it (a call of its own: sh_fcntl makes none). */
static __attribute__((noinline, cold)) int fcntl_failed(long r)
{
    errno = (int)-r;
    return -1;
}

/*
 * F_SETLK and F_GETLK by SEEK_SET on an fd of an in-memory file (SQLite's
 * every lock), and their OFD twins where the fd's description is known to be
 * its own (FT_OWNDESC: io_own_description has nothing to do): the kernel's
 * one call on the memfd and, after a lock (before an unlock or a query), the
 * check that the file is in memory, nothing else; everything else goes to fcntl_slow.  An F_SETLK takes this path only once
 * ft_posix_locks is set (fcntl_slow sets it at the process's first).
 *
 * On a machine with PTI and no PCID every system call leaves the user TLB
 * empty, so each page the wrapper touches costs a page walk, before the call
 * and again after it.  So this path is a leaf (every other case a tail jump)
 * that reads the fd's word in ft_hot (fdtable.h: its file in memory, its inode,
 * FT_OWNDESC; one page of the shim's own with ft_inodes, instead of the entry
 * in the fd table's mapping and the desc in the region), the inode, and nothing
 * else of ours.  Measured here, the pages outside the shim's image are what cost
 * (the fd table's and the region's, about 2% of a lock + unlock pair each), not
 * the instructions (ARCHITECTURE.md, "The lock path: what a page costs").  In particular it does not read the thread's vfork
 * mark (a load through the GOT, then the TLS page): in a vfork child it
 * makes the very call libc's fcntl would (these commands pass through glibc's
 * unchanged, on the child's own kernel fd) and changes nothing of the shim's;
 * whatever it would do besides (the first F_SETLK's mark, a file not in
 * memory, a file moved meanwhile) is fcntl_slow's, which steps aside in a
 * vfork child.
 */
/* sh_fcntl's path for one command, inlined into each (the tests on cmd, want and lock fold
 * away): want, FW_OWNDESC for an OFD lock (its description known to be its own), else 0; lock, a
 * lock to check against a move after the call (a query is not). */
static inline __attribute__((always_inline)) int lock_fast(int fd, int cmd, unsigned long arg, uint32_t want,
                                                           int lock)
{
    const struct flock *fl = (const struct flock *)arg;
    /* The fd's word, not its entry (fdtable.h): 0 for an fd not ours, or not in memory, or before
     * ft_init; an fd past the words goes by the slow path. */
    if (unlikely((unsigned)fd >= FT_HOT_FDS))
        goto slow;
    uint32_t w = atomic_load_explicit(&ft_hot.fdw[fd], memory_order_acquire);
    if ((w & (FW_MEM | want)) != (FW_MEM | want) || path_bad_ptr(fl) || fl->l_whence != SEEK_SET)
        goto slow;
    struct eph_inode *ino = &ft_inodes[w >> FW_INODE_SHIFT];
    if (!lock || fl->l_type == F_UNLCK) {
        /* A query changes nothing, and neither does an unlock whose file moved meanwhile: a lock
         * of ours on the memfd stopped any move but a forced one, and a forced move leaves the
         * disk file without it (ARCHITECTURE.md, "The lock path: what a page costs"). */
        if (unlikely(atomic_load(&ino->state) != EPH_MEM))
            goto slow;
        long r = fcntl_syscall(fd, cmd, arg);
        return unlikely(r < 0) ? fcntl_failed(r) : (int)r;
    }
    /* A lock is made first and checked after: the region's page is then read once a pair (the
     * unlock's look before its call follows this one with no system call between), not before
     * and after the lock's call.  The state alone says it (ARCHITECTURE.md, "The lock path
     * without the fd table's page"): the file leaves memory for good (EPH_DISK, while our desc
     * holds the slot) or comes back from MOVING into the same memfd (a move abandoned), so MEM
     * seen after the fence means our lock is on the file's home and any move from now on sees it
     * (Dekker with the daemon's MOVING, as lock_stayed).  A lock that failed on a memfd left
     * behind (a conflict with a holder that has not moved yet) goes to the file's home too. */
    long r = fcntl_syscall(fd, cmd, arg);
    atomic_thread_fence(memory_order_seq_cst);
    if (likely(atomic_load(&ino->state) == EPH_MEM))
        return unlikely(r < 0) ? fcntl_failed(r) : (int)r;
    /* not in memory, or moving: fcntl_managed settles it and takes the lock on the file's home */
slow:
    return fcntl_slow(fd, cmd, arg);
}

static int sh_fcntl(int fd, int cmd, unsigned long arg)
{
    if (cmd == F_SETLK) {
        if (likely(atomic_load_explicit(&ft_posix_locks, memory_order_relaxed)))
            return lock_fast(fd, F_SETLK, arg, 0, 1);
    } else if (cmd == F_OFD_SETLK) {
        return lock_fast(fd, F_OFD_SETLK, arg, FW_OWNDESC, 1);
    } else if (cmd == F_GETLK || cmd == F_OFD_GETLK) {
        return lock_fast(fd, cmd, arg, 0, 0);
    }
    return fcntl_slow(fd, cmd, arg);
}

#if defined(__x86_64__) || defined(__aarch64__)
/* fcntl is variadic, but on these ABIs a variadic call leaves its third
 * argument where sh_fcntl reads it, so sh_fcntl is the entry point itself:
 * no va_start frame, and a pass-through is a tail jump (a frame of our own
 * around libc's call is one more return after the system call). */
SH_EXPORT extern __typeof__(sh_fcntl) sh_fcntl_entry __asm__("fcntl") __attribute__((alias("sh_fcntl")));
SH_EXPORT extern __typeof__(sh_fcntl) sh_fcntl64_entry __asm__("fcntl64") __attribute__((alias("sh_fcntl")));
#else
SH_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return sh_fcntl(fd, cmd, arg);
}

SH_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return sh_fcntl(fd, cmd, arg);
}
#endif

/* glibc's lockf calls its fcntl inside libc, where we cannot see it, and
 * locks by SEEK_CUR, which the kernel would place by the memfd's offset: on
 * a managed fd it is made here, as glibc makes it, through ours. */
SH_EXPORT int lockf(int fd, int cmd, off_t len)
{
    if (likely(!ft_managed(fd)))
        return REAL(lockf)(fd, cmd, len);
    struct flock fl = {.l_whence = SEEK_CUR, .l_start = 0, .l_len = len};
    switch (cmd) {
    case F_TEST:
        fl.l_type = F_RDLCK;
        if (sh_fcntl(fd, F_GETLK, (unsigned long)&fl) < 0)
            return -1;
        if (fl.l_type == F_UNLCK || fl.l_pid == getpid())
            return 0;
        errno = EACCES;
        return -1;
    case F_ULOCK:
        fl.l_type = F_UNLCK;
        return sh_fcntl(fd, F_SETLK, (unsigned long)&fl);
    case F_LOCK:
        fl.l_type = F_WRLCK;
        return sh_fcntl(fd, F_SETLKW, (unsigned long)&fl);
    case F_TLOCK:
        fl.l_type = F_WRLCK;
        return sh_fcntl(fd, F_SETLK, (unsigned long)&fl);
    default:
        errno = EINVAL;
        return -1;
    }
}

SH_EXPORT int lockf64(int fd, int cmd, off_t len) { return lockf(fd, cmd, len); }

SH_EXPORT int ftruncate(int fd, off_t len)
{
    if (likely(!ft_managed(fd))) {
        int r = REAL(ftruncate)(fd, len);
        if (unlikely(ft_sized(fd)) && r == 0)
            db_changed(fd, 1);
        return r;
    }
    int r = fp_ftruncate(fd, len);
    if (ino_on() && r == 0)
        ino_wrote(fd, 1);
    return r;
}

SH_EXPORT int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

/*
 * Managed roots promise no durability (docs/ARCHITECTURE.md, "Syncs in a managed root"):
 * a sync of an fd of one, in memory, moved to the disk or a directory, answers at once,
 * as tmpfs's does.  Every other fd gets the kernel's call, untouched.
 */
SH_EXPORT int fsync(int fd)
{
    if (likely(!ft_scratch(fd)))
        return REAL(fsync)(fd);
    return 0;
}

SH_EXPORT int fdatasync(int fd)
{
    if (likely(!ft_scratch(fd)))
        return REAL(fdatasync)(fd);
    return 0;
}

SH_EXPORT int syncfs(int fd)
{
    if (likely(!ft_scratch(fd)))
        return REAL(syncfs)(fd);
    return 0;
}

SH_EXPORT int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags)
{
    if (likely(!ft_scratch(fd)))
        return REAL(sync_file_range)(fd, off, n, flags);
    /* the kernel's argument checks (fs/sync.c), which come before any work */
    if ((flags & ~(unsigned)(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)) ||
        off < 0 || n < 0 || n > INT64_MAX - off) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

SH_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (likely(!ft_managed(fd))) {
        int k = REAL(fallocate)(fd, mode, off, len);
        if (unlikely(ft_sized(fd)) && k == 0)
            db_changed(fd, 1); /* a collapse or punch may shrink it */
        return k;
    }
    int r = fp_fallocate(fd, mode, off, len);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    if (ino_on())
        ino_wrote(fd, 0);
    return 0;
}

SH_EXPORT int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

SH_EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
    if (likely(!ft_managed(fd))) {
        int r = REAL(posix_fallocate)(fd, off, len);
        if (unlikely(ft_sized(fd)) && r == 0)
            db_changed(fd, 0);
        return r;
    }
    int r = -fp_fallocate(fd, 0, off, len);
    if (ino_on() && r == 0)
        ino_wrote(fd, 0);
    return r;
}

SH_EXPORT int posix_fallocate64(int fd, off_t off, off_t len) __attribute__((alias("posix_fallocate")));

SH_EXPORT int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
    if (likely(!ft_managed(fd)))
        return REAL(posix_fadvise)(fd, off, len, advice);
    if (advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE || len < 0)
        return EINVAL;
    return 0;
}

SH_EXPORT int posix_fadvise64(int fd, off_t off, off_t len, int advice) __attribute__((alias("posix_fadvise")));

SH_EXPORT int isatty(int fd)
{
    if (likely(!ft_managed(fd)))
        return REAL(isatty)(fd);
    errno = ENOTTY;
    return 0;
}

SH_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (likely(!ft_managed(fd))) {
        ndf_settle_if(fd);
        return REAL(ioctl)(fd, req, arg);
    }
    if (req == FIONREAD) {
        /* size minus our offset, as the kernel computes it (the kernel's own offset is stale) */
        struct eph_desc *d = fp_desc(fd);
        if (atomic_load(&fp_inode_of(d)->state) != EPH_MEM)
            fp_settle(fd);
        int64_t size = (int64_t)atomic_load(&fp_inode_of(d)->size);
        if (ft_fds[fd].flags & FT_DISK) {
            struct stat st;
            if (sys.fstat(fd, &st) < 0)
                return -1;
            size = st.st_size;
        }
        *(int *)arg = (int)(size - (int64_t)atomic_load(&d->offset));
        return 0;
    }
    if ((req == FIOCLEX || req == FIONCLEX) && ft_ddesc_cloexec(fd) >= 0) {
        ft_ddesc_set_cloexec(fd, req == FIOCLEX); /* the kernel's flag stays set (fdtable.h) */
        return 0;
    }
    if (ft_fds[fd].flags & FT_DISK)
        return sys.ioctl(fd, req, arg);
    /* The memfd lives on shmem, the same code as tmpfs: its answer is tmpfs's answer. */
    return sys.ioctl(fd, req, arg);
}

SH_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (likely(flags & MAP_ANONYMOUS) || likely(!ft_managed(fd)))
        return REAL(mmap)(addr, len, prot, flags, fd, off);
    /* The kernel fd is O_RDWR: apply the access rules of the application's mode. */
    uint32_t fl = atomic_load(&fp_desc(fd)->flags);
    if ((fl & O_ACCMODE) == O_WRONLY ||
        ((flags & MAP_TYPE) == MAP_SHARED && (prot & PROT_WRITE) &&
         (fl & O_ACCMODE) != O_RDWR)) {
        errno = EACCES;
        return MAP_FAILED;
    }
    /* The kernel will serve this mapping: give it the exact size and never evict the file. */
    int r = fp_pin(fd);
    if (r < 0 && !(ft_fds[fd].flags & FT_DISK) &&
        atomic_load(&fp_inode_of(fp_desc(fd))->state) != EPH_MEM) {
        /* It moved to disk and we cannot reach the disk file (another user's
         * process: /proc of the daemon is closed to it): mapping the memfd,
         * whose pages are gone, would end in SIGBUS at the first touch. */
        errno = -r;
        return MAP_FAILED;
    }
    return sys.mmap(addr, len, prot, flags, fd, off);
}

SH_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

/*
 * fstat for "are these the same file": a file that moved to disk keeps, in
 * this process, the identity it had in memory, whether the fd was open before
 * the move (swapped) or opened by path after it.  Fds whose file moved are
 * swapped first so the translation knows the disk identity.
 */
static int file_ident(int fd, struct stat *st)
{
    if (fstat(fd, st) < 0)
        return -1;
    if (!ft_managed(fd))
        fp_idmap_translate(st);
    return 0;
}

/*
 * The other half of the kernel's copy onto an overlapping range of one file
 * (tmpfs): splice takes up to 16 pipe buffers of at most a page each before it
 * writes them, and a buffer over a page that is a hole is the shared zero
 * page, not the file's page.  So bytes read from a hole stay zeros even when
 * the copy itself has written there meanwhile, while data pages show what was
 * written.  holes_fill() records, for the next such batch, which pages are
 * holes (SEEK_DATA on a private description of the file, opened per batch:
 * the file may move to disk in the middle of the copy, and the fd with it).
 */
#define SPLICE_BUFS 16
#define PG 4096
struct holes {
    int fd;             /* 0: in use; -1 when not needed */
    off_t start, end;   /* the batch [start, end), page-split like the pipe */
    unsigned char hole[SPLICE_BUFS + 1];
};

static void holes_fill(struct holes *h, int in, off_t ip, size_t left)
{
    off_t len = (off_t)SPLICE_BUFS * PG - (ip % PG);
    if ((off_t)left < len)
        len = (off_t)left;
    /* a batch ends at the size the file has when it is read */
    struct stat st;
    if (fstat(in, &st) < 0)
        st.st_size = ip + len;
    if (st.st_size > ip && st.st_size - ip < len)
        len = st.st_size - ip;
    h->start = ip;
    h->end = ip + len;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", in);
    int fd = sys.open(p, O_RDONLY | O_CLOEXEC);
    for (int i = 0; i <= SPLICE_BUFS; i++) {
        off_t pg = (ip / PG + i) * PG;
        if (pg >= h->end) {
            h->hole[i] = 0;
            continue;
        }
        off_t d = fd < 0 ? pg : sys.lseek(fd, pg < ip ? ip : pg, SEEK_DATA);
        h->hole[i] = d < 0 || d >= pg + PG;
        /* SEEK_DATA is exact: a file with holes is read with pread, which
         * (like tmpfs's read) leaves them holes.  A page the application's
         * mapping faulted in is data, on tmpfs too, even when all zeros. */
    }
    if (fd >= 0)
        sys.close(fd);
}

static void holes_zero(const struct holes *h, char *buf, off_t ip, size_t n)
{
    for (size_t k = 0; k < n;) {
        off_t at = ip + (off_t)k;
        size_t run = (size_t)(PG - at % PG);
        if (run > n - k)
            run = n - k;
        if (at >= h->start && at < h->end && h->hole[at / PG - h->start / PG])
            memset(buf + k, 0, run);
        k += run;
    }
}

/*
 * Copies that involve a managed fd run through our own read/write, so the
 * logical size and shared offsets stay right (the kernel would see only the
 * memfd's capacity and its own offset).  Like the kernel, a seekable side
 * without an explicit offset works from the position it had at the start, so
 * copying a file onto itself reads and writes the same range.
 */
static ssize_t copy_loop(int in, off_t *in_off, int out, off_t *out_off, size_t count)
{
    char buf[65536];
    size_t done = 0;
    /* a side is positioned if it is seekable (a file), not a pipe or socket */
    int in_pos = in_off || ft_managed(in) || REAL(lseek)(in, 0, SEEK_CUR) >= 0;
    int out_pos = out_off || ft_managed(out) || REAL(lseek)(out, 0, SEEK_CUR) >= 0;
    off_t ip = in_off ? *in_off : in_pos ? lseek(in, 0, SEEK_CUR) : 0;
    off_t op = out_off ? *out_off : out_pos ? lseek(out, 0, SEEK_CUR) : 0;
    if (ip < 0 || op < 0)
        return -1;
    /*
     * Copying forward onto an overlapping range of the same file: the kernel's
     * splice reads pages it is writing, which repeats the leading bytes like a
     * forward byte copy.  Chunks no longer than the distance do the same.
     */
    size_t chunk = sizeof buf;
    struct stat si, so;
    struct holes hs = {.fd = -1};
    if (in_pos && out_pos && op > ip && (size_t)(op - ip) < count && (fp_settle_moved(), 1) &&
        file_ident(in, &si) == 0 && file_ident(out, &so) == 0 && si.st_ino == so.st_ino && si.st_dev == so.st_dev && (size_t)(op - ip) < chunk) {
        chunk = (size_t)(op - ip);
        hs.fd = 0;
    }
    ssize_t err = 0;
    while (done < count) {
        size_t want = count - done < chunk ? count - done : chunk;
        if (hs.fd >= 0 && ip >= hs.end)
            holes_fill(&hs, in, ip, count - done);
        if (hs.fd >= 0 && (off_t)want > hs.end - ip)
            want = (size_t)(hs.end - ip); /* the next batch is read after this one is written */
        ssize_t r = in_pos ? pread(in, buf, want, ip) : read(in, buf, want);
        if (r <= 0) {
            err = r;
            break;
        }
        if (hs.fd >= 0)
            holes_zero(&hs, buf, ip, (size_t)r);
        size_t put = 0;
        while (put < (size_t)r) {
            ssize_t w = out_pos ? pwrite(out, buf + put, (size_t)r - put, op) : write(out, buf + put, (size_t)r - put);
            if (w <= 0) {
                err = -1;
                break;
            }
            put += (size_t)w;
            op += w;
        }
        ip += (off_t)put;
        done += put;
        /* a file may grow while we copy (a copy onto itself does): read until EOF,
         * as the kernel does; a pipe gives what it has */
        if (err || !in_pos)
            break;
    }
    if (in_off)
        *in_off = ip;
    else if (in_pos)
        lseek(in, ip, SEEK_SET);
    if (out_off)
        *out_off = op;
    else if (out_pos)
        lseek(out, op, SEEK_SET);
    if (done == 0 && err < 0)
        return -1;
    return (ssize_t)done;
}

/* The access checks the kernel makes before copying a byte. */
static int copy_access_ok(int in, int out)
{
    int fi = ft_managed(in) ? (int)atomic_load(&fp_desc(in)->flags) : sys.fcntl(in, F_GETFL);
    int fo = ft_managed(out) ? (int)atomic_load(&fp_desc(out)->flags) : sys.fcntl(out, F_GETFL);
    if (fi < 0 || fo < 0 || (fi & O_PATH) || (fo & O_PATH) || (fi & O_ACCMODE) == O_WRONLY ||
        (fo & O_ACCMODE) == O_RDONLY) {
        errno = EBADF;
        return 0;
    }
    return 1;
}

/*
 * A file that moved to disk and was opened there afterwards has plain kernel
 * fds, yet it is still one of ours: a copy onto itself must give tmpfs's bytes
 * (holes read as zeros, see holes_fill), not those of the disk's file system
 * (ext4 splices zero-filled page-cache pages, which the copy then overwrites).
 * Costs two fstats per sendfile between unmanaged fds once attached.
 */
static int managed_self_copy(int out, int in)
{
    struct stat a, b;
    if (!sh.hdr || sh.disabled || sys.fstat(in, &a) < 0 || !S_ISREG(a.st_mode) ||
        sys.fstat(out, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev)
        return 0;
    char link[64], p[EPH_PATH_MAX], abs[EPH_PATH_MAX];
    int t;
    snprintf(link, sizeof link, "/proc/self/fd/%d", in);
    ssize_t r = sys.readlink(link, p, sizeof p - 1);
    if (r <= 0 || (size_t)r >= sizeof p - 1)
        return 0;
    p[r] = '\0';
    return path_resolve(AT_FDCWD, p, abs, &t) > 0;
}

SH_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    if (likely(!ft_managed(out) && !ft_managed(in)) && likely(!managed_self_copy(out, in))) {
        if (unlikely(ft_sized(out)))
            return db_wrote(out, REAL(sendfile)(out, in, off, count));
        return REAL(sendfile)(out, in, off, count);
    }
    /* the kernel's order: source readable, offset valid, target writable, target not O_APPEND */
    int ifl = ft_managed(in) ? (int)atomic_load(&fp_desc(in)->flags) : sys.fcntl(in, F_GETFL);
    if (ifl < 0 || (ifl & O_PATH) || (ifl & O_ACCMODE) == O_WRONLY) {
        errno = EBADF;
        return -1;
    }
    if (off && *off < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!copy_access_ok(in, out))
        return -1;
    int ofl = ft_managed(out) ? (int)atomic_load(&fp_desc(out)->flags) : sys.fcntl(out, F_GETFL);
    if (ofl >= 0 && (ofl & O_APPEND)) {
        errno = EINVAL; /* the kernel refuses an O_APPEND target */
        return -1;
    }
    return copy_loop(in, off, out, NULL, count);
}

SH_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t count) __attribute__((alias("sendfile")));

SH_EXPORT ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len,
                                  unsigned flags)
{
    if (likely(!ft_managed(out) && !ft_managed(in))) {
        if (!REAL(copy_file_range)) {
            errno = ENOSYS;
            return -1;
        }
        if (unlikely(ft_sized(out)))
            return db_wrote(out, sys.copy_file_range(in, in_off, out, out_off, len, flags));
        return sys.copy_file_range(in, in_off, out, out_off, len, flags);
    }
    if (flags) {
        errno = EINVAL;
        return -1;
    }
    if (!copy_access_ok(in, out))
        return -1;
    int ofl = ft_managed(out) ? (int)atomic_load(&fp_desc(out)->flags) : sys.fcntl(out, F_GETFL);
    if (ofl >= 0 && (ofl & O_APPEND)) {
        errno = EBADF; /* copy_file_range refuses an O_APPEND target */
        return -1;
    }
    if ((in_off && *in_off < 0) || (out_off && *out_off < 0)) {
        /* generic_copy_file_checks adds the count to each position as unsigned
         * (a wrap is EOVERFLOW); rw_verify_area then refuses a negative one */
        int wrap = (in_off && *in_off < 0 && len >= (size_t)0 - (size_t)*in_off) ||
                   (out_off && *out_off < 0 && len >= (size_t)0 - (size_t)*out_off);
        errno = wrap ? EOVERFLOW : EINVAL;
        return -1;
    }
    struct stat si, so;
    fp_settle_moved();
    if (file_ident(in, &si) == 0) {
        /* the kernel clamps the count to the source's size at the start */
        off_t ip = in_off ? *in_off : lseek(in, 0, SEEK_CUR);
        off_t cnt = ip >= si.st_size ? 0 : (off_t)len < si.st_size - ip ? (off_t)len : si.st_size - ip;
        if (file_ident(out, &so) == 0 && si.st_ino == so.st_ino && si.st_dev == so.st_dev) {
            /* and refuses overlapping ranges within one file */
            off_t op = out_off ? *out_off : lseek(out, 0, SEEK_CUR);
            if (op + cnt > ip && op < ip + cnt) {
                errno = EINVAL;
                return -1;
            }
        }
        if (cnt == 0)
            return 0;
        len = (size_t)cnt;
    }
    return copy_loop(in, in_off, out, out_off, len);
}

SH_EXPORT ssize_t splice(int in, off_t *in_off, int out, off_t *out_off, size_t len, unsigned flags)
{
    if (likely(!ft_managed(out) && !ft_managed(in))) {
        if (unlikely(ft_sized(out)))
            return db_wrote(out, REAL(splice)(in, in_off, out, out_off, len, flags));
        return REAL(splice)(in, in_off, out, out_off, len, flags);
    }
    return copy_loop(in, in_off, out, out_off, len);
}

/*
 * Some runtimes call the kernel through syscall(3) rather than the libc
 * wrappers (libuv does for statx).  The file calls among those are routed to
 * our wrappers; everything else goes straight through.
 */
SH_EXPORT long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (likely(!sh.disabled)) {
        switch (nr) {
        case SYS_statx:
            return statx((int)a1, (const char *)a2, (int)a3, (unsigned)a4, (struct statx *)a5);
        case SYS_newfstatat:
            return fstatat((int)a1, (const char *)a2, (struct stat *)a3, (int)a4);
        case SYS_fstat:
            return fstat((int)a1, (struct stat *)a2);
        case SYS_stat:
            return stat((const char *)a1, (struct stat *)a2);
        case SYS_lstat:
            return lstat((const char *)a1, (struct stat *)a2);
        case SYS_open:
            return open((const char *)a1, (int)a2, (mode_t)a3);
        case SYS_openat:
            return openat((int)a1, (const char *)a2, (int)a3, (mode_t)a4);
        case SYS_close:
            return close((int)a1);
        case SYS_read:
            return read((int)a1, (void *)a2, (size_t)a3);
        case SYS_write:
            return write((int)a1, (const void *)a2, (size_t)a3);
        case SYS_pread64:
            return pread((int)a1, (void *)a2, (size_t)a3, (off_t)a4);
        case SYS_pwrite64:
            return pwrite((int)a1, (const void *)a2, (size_t)a3, (off_t)a4);
        case SYS_readv:
            return readv((int)a1, (const struct iovec *)a2, (int)a3);
        case SYS_writev:
            return writev((int)a1, (const struct iovec *)a2, (int)a3);
        case SYS_lseek:
            return lseek((int)a1, (off_t)a2, (int)a3);
        case SYS_ftruncate:
            return ftruncate((int)a1, (off_t)a2);
        case SYS_fsync:
            return fsync((int)a1);
        case SYS_fdatasync:
            return fdatasync((int)a1);
        case SYS_syncfs:
            return syncfs((int)a1);
        case SYS_sync_file_range:
            return sync_file_range((int)a1, (off64_t)a2, (off64_t)a3, (unsigned)a4);
        case SYS_copy_file_range:
            return copy_file_range((int)a1, (off_t *)a2, (int)a3, (off_t *)a4, (size_t)a5, (unsigned)a6);
        case SYS_unlinkat:
            return unlinkat((int)a1, (const char *)a2, (int)a3);
        case SYS_close_range:
            return close_range((unsigned)a1, (unsigned)a2, (int)a3);
        case SYS_dup:
            return dup((int)a1);
        case SYS_dup2:
            return dup2((int)a1, (int)a2);
        case SYS_dup3:
            return dup3((int)a1, (int)a2, (int)a3);
        case SYS_renameat2:
            return renameat2((int)a1, (const char *)a2, (int)a3, (const char *)a4, (unsigned)a5);
        case SYS_execve: /* a program in memory goes to disk first (intercept_proc.c) */
            return execve((const char *)a1, (char *const *)a2, (char *const *)a3);
        case SYS_execveat:
            return execveat((int)a1, (const char *)a2, (char *const *)a3, (char *const *)a4, (int)a5);
        case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid:
        case SYS_setresuid: case SYS_setresgid: case SYS_setfsuid: case SYS_setfsgid: case SYS_unshare: {
            /* The calling thread's ids may change: the cached ones (creds.c) go. */
            long r = REAL(syscall)(nr, a1, a2, a3, a4, a5, a6);
            int e = errno;
            creds_changed();
            errno = e;
            return r;
        }
        default:
            break;
        }
    }
    return REAL(syscall)(nr, a1, a2, a3, a4, a5, a6);
}
