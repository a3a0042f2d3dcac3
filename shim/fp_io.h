/*
 * shim/fp_io.h - read, write and seek on in-memory files (fp_io.c), the
 * fast path's core.  fd must be managed (ft_managed).
 */
#ifndef SHIM_FP_IO_H
#define SHIM_FP_IO_H

#include <sys/types.h>
#include <sys/uio.h>

ssize_t fp_read(int fd, void *buf, size_t n);
ssize_t fp_pread(int fd, void *buf, size_t n, off_t off);
ssize_t fp_write(int fd, const void *buf, size_t n);
ssize_t fp_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t fp_readv(int fd, const struct iovec *iov, int cnt, off_t off, int use_off);
ssize_t fp_writev(int fd, const struct iovec *iov, int cnt, off_t off, int use_off);
off_t fp_lseek(int fd, off_t off, int whence);

#endif
