/*
 * shim/fp_settle.h - files that left memory (fp_settle.c): waiting out a
 * move, swapping the application's fd to the disk file, kernel I/O on it,
 * and the identity map that keeps the in-memory st_dev/st_ino visible.
 */
#ifndef SHIM_FP_SETTLE_H
#define SHIM_FP_SETTLE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ephemera/shm.h"

struct stat;
struct statx;

/* For swapping: make sure fd is usable for kernel I/O (evicted files).
 * 0 back in memory, 1 fd now refers to the disk file, or -errno. */
int fp_settle(int fd);
/* Wait while the daemon moves the file to disk (until it is over, the slot was reused, or the
 * daemon died and no new one took over: the file is then still MOVING). */
void fp_wait_moving(struct eph_inode *ino, uint32_t gen);
/* An fd of our own on inode ino's file as it is at generation gen in state (EPH_MEM: its memfd;
 * EPH_DISK: its disk file), for a call by path that has no fd on it (O_PATH, or O_RDWR when it came
 * over the socket); -1 when the slot has moved on (another state, freed, reused) or the file cannot
 * be reached from here. */
int fp_hold(struct eph_inode *ino, uint32_t gen, uint32_t state);
/* Before a stat of a disk path: swap any of our fds whose file has moved, so its identity is known. */
void fp_settle_moved(void);
/* Read or write (pos < 0: at the description's offset) on an fd swapped to the disk file. */
ssize_t fp_disk_io(int fd, const struct iovec *iov, int cnt, off_t pos, int is_write);

/* Keep reporting the in-memory identity of files this process had open when they moved. */
void fp_idmap_translate(struct stat *st);
void fp_idmap_translate_x(struct statx *stx);
/* The inode number to show for a directory entry (ddev: the directory's device). */
uint64_t fp_idmap_ino(uint64_t ddev, uint64_t dino);
void fp_idmap_forget(uint32_t inode);
void fp_idmap_remember(uint64_t ddev, uint64_t dino, uint64_t mdev, uint64_t mino);

#endif
