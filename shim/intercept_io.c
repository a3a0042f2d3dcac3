/*
 * shim/intercept_io.c - data calls.  An unmanaged fd costs one table load
 * and a branch before the real call.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "intercept_io.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "fdtable.h"
#include "nsdirfd.h"
#include "fp_io.h"
#include "diskbytes.h"
#include "intercept_misc.h"

extern void __chk_fail(void) __attribute__((noreturn));

SH_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    if (likely(!ft_managed(fd)))
        return REAL(read)(fd, buf, n);
    return fp_read(fd, buf, n);
}

SH_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return read(fd, buf, n);
}

SH_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    if (likely(!ft_managed(fd))) {
        if (unlikely(ft_sized(fd)))
            return db_wrote(fd, REAL(write)(fd, buf, n));
        return REAL(write)(fd, buf, n);
    }
    return fp_write(fd, buf, n);
}

SH_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (likely(!ft_managed(fd)))
        return REAL(pread)(fd, buf, n, off);
    return fp_pread(fd, buf, n, off);
}

SH_EXPORT ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));

SH_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
    if (n > buflen)
        __chk_fail();
    return pread(fd, buf, n, off);
}

SH_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
    __attribute__((alias("__pread_chk")));

SH_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (likely(!ft_managed(fd))) {
        if (unlikely(ft_sized(fd)))
            return db_wrote_at(fd, off, REAL(pwrite)(fd, buf, n, off));
        return REAL(pwrite)(fd, buf, n, off);
    }
    return fp_pwrite(fd, buf, n, off);
}

SH_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

SH_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    if (likely(!ft_managed(fd)))
        return REAL(readv)(fd, iov, cnt);
    return fp_readv(fd, iov, cnt, 0, 0);
}

SH_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (likely(!ft_managed(fd))) {
        if (unlikely(ft_sized(fd)))
            return db_wrote(fd, REAL(writev)(fd, iov, cnt));
        return REAL(writev)(fd, iov, cnt);
    }
    return fp_writev(fd, iov, cnt, 0, 0);
}

SH_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
    if (likely(!ft_managed(fd)))
        return REAL(preadv)(fd, iov, cnt, off);
    return fp_readv(fd, iov, cnt, off, 1);
}

SH_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("preadv")));

SH_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    if (likely(!ft_managed(fd))) {
        if (unlikely(ft_sized(fd)))
            return db_wrote_at(fd, off, REAL(pwritev)(fd, iov, cnt, off));
        return REAL(pwritev)(fd, iov, cnt, off);
    }
    return fp_writev(fd, iov, cnt, off, 1);
}

SH_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("pwritev")));

/* offset -1 means "the current offset", like the kernel; RWF_* hints are accepted and ignored. */
SH_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    if (likely(!ft_managed(fd))) {
        if (!REAL(preadv2)) {
            errno = ENOSYS;
            return -1;
        }
        return sys.preadv2(fd, iov, cnt, off, flags);
    }
    return fp_readv(fd, iov, cnt, off, off != -1);
}

SH_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
    __attribute__((alias("preadv2")));

SH_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    if (likely(!ft_managed(fd))) {
        if (!REAL(pwritev2)) {
            errno = ENOSYS;
            return -1;
        }
        if (unlikely(ft_sized(fd)))
            return db_wrote(fd, sys.pwritev2(fd, iov, cnt, off, flags));
        return sys.pwritev2(fd, iov, cnt, off, flags);
    }
    return fp_writev(fd, iov, cnt, off, off != -1);
}

SH_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
    __attribute__((alias("pwritev2")));

SH_EXPORT off_t lseek(int fd, off_t off, int whence)
{
    if (likely(!ft_managed(fd)))
        return REAL(lseek)(fd, off, whence);
    return fp_lseek(fd, off, whence);
}

SH_EXPORT off_t lseek64(int fd, off_t off, int whence) __attribute__((alias("lseek")));

/* ---- flock -------------------------------------------------------------- */

/* 0: a and b share one open file description; 1: they do not; -1: kcmp is not allowed here. */
static int same_description(int a, int b)
{
    pid_t me = getpid();
    long r = sys.syscall(SYS_kcmp, me, me, KCMP_FILE, a, b);
    return r < 0 ? -1 : r != 0;
}

/*
 * flock() and OFD locks belong to the open file description.  A reopen of an
 * in-memory file is a dup of the process's private fd on its memfd (a
 * create's fd may be a dup of a pooled fd), so every open of it in one process
 * shares one kernel description: two opens would never conflict, and a lock
 * would outlive the file's last close in the private fd (or in our mapping,
 * which holds the description it was made through).  Before such a lock,
 * fd's description is made its desc's alone in this process, by kcmp: fd's
 * fds move to a new description, as open(2) would have given them one.  But
 * a description that another process may hold by right (FT_INHERITED: open
 * at a fork, or inherited through exec; or a desc with references elsewhere)
 * stays, with the locks taken through it there, and the rest moves instead:
 * our private fd with the mappings made through it, other private fds of
 * the file, and the fds of any other desc.  Where kcmp is refused (a
 * container's seccomp profile), everything of the file counts as sharing.
 * The answer is kept in the entry (FT_OWNDESC), so the next lock on fd is the
 * kernel's call alone (sh_fcntl); whatever could make another fd share the
 * description drops the mark (fdtable.h).  Each move closes an fd on the file,
 * which drops the process's POSIX locks on it, as the old reopen did: a
 * process that mixes them with flock or OFD locks on one file loses them at
 * its first such lock (not here on tmpfs).
 */
void io_own_description(int fd)
{
    if (ft_own_description(fd)) /* never on the daemon's description (ft_ddesc_own) */
        return;
    /* An fd taken by pidfd_getfd shares the daemon's description with every process that took the
     * file: it (with its dups) moves to a description of its own first, and only then is it told
     * apart from the rest of this process's.  Where that reopen fails the lock is the daemon's
     * description's, and fd gets no FT_OWNDESC: the next lock tries again. */
    if (ft_ddesc_own(fd) < 0)
        return;
    uint32_t desc1 = ft_fds[fd].desc1;
    uint32_t inode = sh.descs[desc1 - 1].inode;
    ft_lock();
    uint32_t hwm = atomic_load(&ft_hwm), local = 0;
    for (uint32_t g = 0; g < hwm; g++)
        local += ft_fds[g].desc1 == desc1;
    int stay = (ft_fds[fd].flags & FT_INHERITED) || atomic_load(&sh.descs[desc1 - 1].refs) > local;
    struct ft_map *m = ft_map_of(inode);
    int kfd = (int)m->kfd1 - 1, move_fd = 0, failed = 0;
    if (kfd >= 0 && kfd != fd && same_description(fd, kfd) != 1) {
        if (!stay)
            move_fd = 1;
        else if (ft_repoint_kfd(m) < 0)
            failed = 1;
    } else if (stay && kfd < 0 && atomic_load(&m->base)) {
        failed = 1; /* a mapping through fd's description, and no private fd to make it again */
    }
    for (uint32_t g = 0; g < hwm && !move_fd; g++) {
        struct ft_entry e = ft_fds[g];
        int ours = !e.desc1 && (e.flags & FT_PRIV) && (e.flags >> FT_PRIV_SHIFT) == inode && (int)g != kfd;
        int theirs = e.desc1 && e.desc1 != desc1 && !(e.flags & FT_DISK) && sh.descs[e.desc1 - 1].inode == inode;
        if ((!ours && !theirs) || same_description(fd, (int)g) == 1)
            continue;
        if (!stay)
            move_fd = 1;
        else if (ft_repoint((int)g, 0) < 0)
            failed = 1;
    }
    if (move_fd)
        failed = ft_repoint(fd, 1) < 0;
    else if (!failed)
        ft_set_flags(fd, ft_fds[fd].flags | FT_OWNDESC);
    ft_unlock();
}

/*
 * A lock lives on the memfd's kernel inode and would not follow the file to
 * disk.  The daemon leaves a file in memory while someone holds a flock on
 * it (it reads /proc/locks after the drain), so the file goes back to
 * being evictable once unlocked; a lock taken while the file was moving
 * is taken again on the disk file, as record_lock does for fcntl locks.
 */
static int flock_call(int fd, int op, unsigned long unused)
{
    (void)unused;
    return REAL(flock)(fd, op);
}

SH_EXPORT int flock(int fd, int op)
{
    ndf_settle_if(fd);
    if (likely(!ft_managed(fd)) || (ft_fds[fd].flags & FT_DISK) || (op & ~LOCK_NB) == LOCK_UN)
        return REAL(flock)(fd, op);
    io_own_description(fd);
    return misc_lock_on_home(fd, flock_call, op, 0, 1);
}
