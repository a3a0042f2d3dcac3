/*
 * shim/intercept_io.c - data calls.  An unmanaged fd costs one table load
 * and a branch before the real call.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "shim.h"

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
    if (likely(!ft_managed(fd)))
        return REAL(write)(fd, buf, n);
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
    if (likely(!ft_managed(fd)))
        return REAL(pwrite)(fd, buf, n, off);
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
    if (likely(!ft_managed(fd)))
        return REAL(writev)(fd, iov, cnt);
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
    if (likely(!ft_managed(fd)))
        return REAL(pwritev)(fd, iov, cnt, off);
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
