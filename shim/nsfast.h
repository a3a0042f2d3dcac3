/*
 * shim/nsfast.h - namespace changes made in the calling process (nsfast.c):
 * create, unlink and rename of in-memory files under the region's ns_lock,
 * with memfds and slots from a pool the daemon lends in batches.
 */
#ifndef SHIM_NSFAST_H
#define SHIM_NSFAST_H

#include <sys/types.h>

#include "compiler.h"

/*
 * Create abs (absolute, canonical, managed, not in memory) as a new in-memory
 * file for open(2) with flags and mode (umask applied by the caller); absent:
 * the caller's lstat of abs just found nothing there.
 * Returns the program's fd (holding one open_count reference on *inode of
 * generation *gen, which the caller attaches a description to; *priv is
 * our pool fd of the memfd, for the caller's fd table to keep or close), -1 with errno (EIO: the lock stayed held 5 s), or
 * -2: not a case done here (the name exists on disk, the parent is not a
 * plain writable directory, placement wants the daemon, no pool entry...):
 * ask the daemon as before.
 */
#include <stdint.h>

int nsf_create(const char *abs, int flags, mode_t mode, int absent, uint32_t *inode, uint32_t *gen, int *priv);

/* Unlink in-memory file abs (found by the caller as inode idx of gen).
 * 0, -1 with errno, or -2: ask the daemon. */
int nsf_unlink(const char *abs, uint32_t idx, uint32_t gen);

/* Rename in-memory file a to b (free, or another in-memory file), flags 0
 * or RENAME_NOREPLACE; the caller made the kernel's checks of both paths.
 * 0, -1 with errno, or -2: ask the daemon. */
int nsf_rename(const char *a, const char *b, unsigned flags);

/* A pool entry for a directory (nsdir.c): its slot, the daemon's fd number of its
 * memfd and ours.  -1: none.  Given back with back=1 if unused, else our fd is closed. */
int nsf_take_slot(uint32_t *inode, int32_t *daemon_fd, int *fd);
void nsf_give_slot(uint32_t inode, int32_t daemon_fd, int fd, int back);

/* In a fork child: the parent's pool entries are not ours. */
int nsf_hold(void);
extern SH_TLS int nsf_held; /* between nsf_hold and nsf_unhold: nobody may ask the daemon */

void nsf_unhold(void);

void nsf_after_fork(void);

#endif
