/*
 * shim/fp_stat.h - stat and statx answers for in-memory inodes (fp_stat.c).
 */
#ifndef SHIM_FP_STAT_H
#define SHIM_FP_STAT_H

#include "ephemera/shm.h"

struct stat;
struct statx;

void fp_fill_stat(struct eph_inode *ino, struct stat *st);
int fp_fill_statx(struct eph_inode *ino, unsigned mask, struct statx *stx);
int fp_fstat(int fd, struct stat *st);

#endif
