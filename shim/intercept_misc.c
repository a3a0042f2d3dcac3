/*
 * shim/intercept_misc.c - fd lifetime (close, dup, fcntl), size and sync
 * calls, ioctl, and the calls through which the kernel itself reads or writes
 * a managed file (mmap, sendfile, copy_file_range, splice).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

SH_EXPORT int close(int fd)
{
    if (likely(!ft_touched(fd)))
        return REAL(close)(fd);
    if (!ft_fds[fd].desc1) {
        ft_priv_lost(fd);
        return sys.close(fd);
    }
    fp_trim_on_close(fd);
    /* Forget before the kernel frees the number, so a racing open cannot get a stale entry. */
    ft_forget(fd);
    return sys.close(fd);
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
    }
}

SH_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    if (!REAL(close_range)) {
        errno = ENOSYS;
        return -1;
    }
    int r = sys.close_range(first, last, flags);
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        forget_range(first, last);
    return r;
}

SH_EXPORT void closefrom(int lowfd)
{
    if (lowfd < 0)
        lowfd = 0;
    forget_range((unsigned)lowfd, ~0u);
    if (REAL(close_range) && sys.close_range((unsigned)lowfd, ~0u, 0) == 0)
        return;
    for (int fd = lowfd; fd < 65536; fd++)
        sys.close(fd);
}

/* newfd now names oldfd's description (if managed). */
static int after_dup(int oldfd, int newfd)
{
    if (newfd < 0)
        return newfd;
    if (ft_managed(newfd))
        ft_forget(newfd);
    else if (ft_touched(newfd))
        ft_priv_lost(newfd);
    if (ft_managed(oldfd)) {
        int e = ft_install_dup(newfd, oldfd);
        if (e < 0) {
            sys.close(newfd);
            errno = -e;
            return -1;
        }
        if (newfd <= 2)
            stdio_std_managed(newfd);
    }
    return newfd;
}

SH_EXPORT int dup(int fd)
{
    return after_dup(fd, REAL(dup)(fd));
}

SH_EXPORT int dup2(int oldfd, int newfd)
{
    if (oldfd == newfd || !ft_fds)
        return REAL(dup2)(oldfd, newfd);
    int r = sys.dup2(oldfd, newfd);
    if (r < 0)
        return r;
    return after_dup(oldfd, r);
}

SH_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    if (oldfd == newfd || !ft_fds)
        return REAL(dup3)(oldfd, newfd, flags);
    int r = sys.dup3(oldfd, newfd, flags);
    if (r < 0)
        return r;
    return after_dup(oldfd, r);
}

#define SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)
#define KERNEL_O_LARGEFILE 0100000

static int fcntl_impl(int fd, int cmd, unsigned long arg)
{
    if (likely(!ft_managed(fd)))
        return REAL(fcntl)(fd, cmd, arg);
    struct eph_desc *d = fp_desc(fd);
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        return after_dup(fd, sys.fcntl(fd, cmd, arg));
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
    default:
        return sys.fcntl(fd, cmd, arg);
    }
}

SH_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return fcntl_impl(fd, cmd, arg);
}

SH_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return fcntl_impl(fd, cmd, arg);
}

SH_EXPORT int ftruncate(int fd, off_t len)
{
    if (likely(!ft_managed(fd)))
        return REAL(ftruncate)(fd, len);
    return fp_ftruncate(fd, len);
}

SH_EXPORT int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

/* Managed roots are scratch space: an fsync of an in-memory file has nothing to make durable. */
SH_EXPORT int fsync(int fd)
{
    if (likely(!ft_managed(fd)) || (ft_fds[fd].flags & FT_DISK))
        return REAL(fsync)(fd);
    return 0;
}

SH_EXPORT int fdatasync(int fd)
{
    if (likely(!ft_managed(fd)) || (ft_fds[fd].flags & FT_DISK))
        return REAL(fdatasync)(fd);
    return 0;
}

SH_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (likely(!ft_managed(fd)))
        return REAL(fallocate)(fd, mode, off, len);
    int r = fp_fallocate(fd, mode, off, len);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    return 0;
}

SH_EXPORT int fallocate64(int fd, int mode, off_t off, off_t len) __attribute__((alias("fallocate")));

SH_EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
    if (likely(!ft_managed(fd)))
        return REAL(posix_fallocate)(fd, off, len);
    return -fp_fallocate(fd, 0, off, len);
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
    if (likely(!ft_managed(fd)) || (ft_fds[fd].flags & FT_DISK))
        return REAL(ioctl)(fd, req, arg);
    if (req == FIONREAD) {
        struct eph_desc *d = fp_desc(fd);
        uint64_t size = atomic_load(&fp_inode_of(d)->size), off = atomic_load(&d->offset);
        *(int *)arg = off < size ? (int)(size - off > 0x7fffffff ? 0x7fffffff : size - off) : 0;
        return 0;
    }
    /* The memfd lives on shmem, the same code as tmpfs: its answer is tmpfs's answer. */
    return sys.ioctl(fd, req, arg);
}

SH_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (likely(flags & MAP_ANONYMOUS) || likely(!ft_managed(fd)))
        return REAL(mmap)(addr, len, prot, flags, fd, off);
    /* The kernel will serve this mapping: give it the exact size and never evict the file. */
    fp_pin(fd);
    return sys.mmap(addr, len, prot, flags, fd, off);
}

SH_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
    __attribute__((alias("mmap")));

/*
 * Copies that involve a managed fd run through our own read/write, so the
 * logical size and shared offsets stay right.  The kernel would see only the
 * memfd's capacity and its own offset.
 */
static ssize_t copy_loop(int in, off_t *in_off, int out, off_t *out_off, size_t count)
{
    char buf[65536];
    size_t done = 0;
    while (done < count) {
        size_t want = count - done < sizeof buf ? count - done : sizeof buf;
        ssize_t r = in_off ? pread(in, buf, want, *in_off) : read(in, buf, want);
        if (r < 0) {
            if (done)
                break;
            return -1;
        }
        if (r == 0)
            break;
        size_t put = 0;
        while (put < (size_t)r) {
            ssize_t w = out_off ? pwrite(out, buf + put, (size_t)r - put, *out_off)
                                : write(out, buf + put, (size_t)r - put);
            if (w <= 0) {
                if (done + put)
                    goto partial;
                return -1;
            }
            put += (size_t)w;
            if (out_off)
                *out_off += w;
        }
        if (in_off)
            *in_off += r;
        done += put;
        if ((size_t)r < want)
            break;
    }
    return (ssize_t)done;
partial:
    return (ssize_t)done;
}

SH_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    if (likely(!ft_managed(out) && !ft_managed(in)))
        return REAL(sendfile)(out, in, off, count);
    if (ft_managed(out) && (atomic_load(&fp_desc(out)->flags) & O_APPEND)) {
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
        return sys.copy_file_range(in, in_off, out, out_off, len, flags);
    }
    if (flags) {
        errno = EINVAL;
        return -1;
    }
    if ((ft_managed(in) && (atomic_load(&fp_desc(in)->flags) & O_ACCMODE) == O_WRONLY) ||
        (ft_managed(out) && (atomic_load(&fp_desc(out)->flags) & O_ACCMODE) == O_RDONLY) ||
        (ft_managed(out) && (atomic_load(&fp_desc(out)->flags) & O_APPEND))) {
        errno = EBADF;
        return -1;
    }
    return copy_loop(in, in_off, out, out_off, len);
}

SH_EXPORT ssize_t splice(int in, off_t *in_off, int out, off_t *out_off, size_t len, unsigned flags)
{
    if (likely(!ft_managed(out) && !ft_managed(in)))
        return REAL(splice)(in, in_off, out, out_off, len, flags);
    return copy_loop(in, in_off, out, out_off, len);
}
