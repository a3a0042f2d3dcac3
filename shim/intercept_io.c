/*
 * shim/intercept_io.c - data calls.  An unmanaged fd costs one table load
 * and a branch before the real call.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Where kcmp is refused (a container's seccomp profile): fds this process already gave their own description. */
static uint32_t *own_desc1;

/*
 * flock() locks belong to the open file description.  A reopen of an
 * in-memory file is a dup of the process's cached fd on its memfd, so every
 * open of it in one process shares one kernel description: two opens would
 * never conflict.  Before a lock, give fd (and its own dups here) a
 * description of its own, as open(2) would have.  An fd inherited through
 * fork or exec keeps sharing it, as the kernel's would.
 */
void io_own_description(int fd)
{
    ft_ddesc_own(fd); /* the daemon's description (pidfd_getfd), shared with every process that took it */
    uint32_t desc1 = ft_fds[fd].desc1;
    uint32_t inode = sh.descs[desc1 - 1].inode;
    ft_lock();
    if (!own_desc1)
        own_desc1 = calloc(ft_nfds, sizeof *own_desc1);
    uint32_t hwm = atomic_load(&ft_hwm);
    int shared = 0, nokcmp = 0;
    /* The cached fd sits above the high-water mark, and after a fork it is
     * the only other holder here of a description the siblings share.  An
     * exec'd image's cached fd is a description of its own (a reopen,
     * ft_install_inherited), apart from the inherited one.  Where that reopen
     * failed it is a dup of the inherited fd, which shares its description
     * with the parent by right; the only hint left then is that the desc is
     * referenced by more fds than this process has (while the parent holds
     * one). */
    uint32_t local = 0;
    for (uint32_t g = 0; g < hwm; g++)
        local += ft_fds[g].desc1 == desc1;
    int kfd = (int)ft_map_of(inode)->kfd1 - 1;
    if (kfd >= 0 && kfd != fd && atomic_load(&sh.descs[desc1 - 1].refs) <= local) {
        int s = same_description(fd, kfd);
        nokcmp = s < 0;
        shared = s == 0 || (s < 0 && !(own_desc1 && own_desc1[fd] == desc1));
    }
    for (uint32_t g = 0; g < hwm && !shared; g++) {
        struct ft_entry e = ft_fds[g];
        int other = (e.desc1 && e.desc1 != desc1 && !(e.flags & FT_DISK) && sh.descs[e.desc1 - 1].inode == inode) ||
                    (!e.desc1 && (e.flags & FT_PRIV) && (e.flags >> FT_PRIV_SHIFT) == inode);
        if (!other)
            continue;
        int s = same_description(fd, (int)g);
        if (s < 0)
            nokcmp = 1;
        shared = s == 0 || (s < 0 && !(own_desc1 && own_desc1[fd] == desc1));
    }
    char p[64];
    int nfd = -1;
    if (shared) {
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        int kfl = sys.fcntl(fd, F_GETFL);
        nfd = sys.open(p, (kfl >= 0 ? kfl & (O_ACCMODE | O_APPEND | O_NONBLOCK) : O_RDWR) | O_CLOEXEC);
    }
    for (uint32_t g = 0; nfd >= 0 && g < hwm; g++) {
        if (ft_fds[g].desc1 != desc1)
            continue;
        if (ft_dup_over(nfd, (int)g) >= 0 && nokcmp && own_desc1)
            own_desc1[g] = desc1;
    }
    ft_unlock();
    if (nfd >= 0)
        sys.close(nfd);
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
