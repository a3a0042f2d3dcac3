/*
 * shim/fp_size.h - size and capacity of in-memory files (fp_size.c): the
 * budget, growth, the stale tail, truncate and fallocate, and handing a file
 * to the kernel (trim, pin).
 */
#ifndef SHIM_FP_SIZE_H
#define SHIM_FP_SIZE_H

#include <stdint.h>
#include <sys/types.h>

#include "ephemera/shm.h"

#define FP_PAGE 4096ull
static inline uint64_t fp_round_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/*
 * Make capacity >= need.  Called with ino->lock held.  Returns 0, -errno, or
 * -EAGAIN when the daemon must be asked (the caller drops its locks and calls
 * fp_reserve_slow, then retries).
 */
int fp_grow_by_write(struct eph_inode *ino, uint64_t need);
void fp_grow_by_write_short(struct eph_inode *ino, uint64_t oldcap, uint64_t written_end);
int fp_grow_locked(struct eph_inode *ino, int kfd, uint64_t need);
/* No budget left: ask the daemon to make room or to move this file to disk (0: retry). */
int fp_reserve_slow(int fd, struct eph_inode *ino, uint32_t inode, uint64_t need);
/* Make [from, to) of the memfd read as zeros (the stale tail, see fp_size.c). */
int fp_zero_gap(int kfd, uint64_t from, uint64_t to);

int fp_ftruncate(int fd, off_t len);
int fp_truncate_inode(uint32_t inode, uint32_t gen, off_t len);
int fp_fallocate(int fd, int mode, off_t off, off_t len);
/* Truncate through an fd regardless of its access mode (O_TRUNC at open). */
int fp_set_size_fd(int fd, uint64_t len);
void fp_open_trunc(int fd);
/* Make the kernel's view match: kernel offset and memfd size = logical size. */
int fp_sync_kernel(int fd, int trim);
int fp_pin(int fd);
void fp_trim_on_close(int fd);

#endif
