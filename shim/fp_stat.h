/*
 * shim/fp_stat.h - stat and statx answers for in-memory inodes (fp_stat.c).
 */
#ifndef SHIM_FP_STAT_H
#define SHIM_FP_STAT_H

#include "ephemera/shm.h"

struct stat;
struct statx;

/* fd: the caller's managed fd on the file (its memfd), or -1 for a stat by path, whose caller looks at
 * the slot's generation after the fill (fp_stat.c, allocated_blocks). */
void fp_fill_stat(struct eph_inode *ino, int fd, struct stat *st);
int fp_fill_statx(struct eph_inode *ino, int fd, unsigned mask, struct statx *stx);
int fp_fstat(int fd, struct stat *st);

#endif
