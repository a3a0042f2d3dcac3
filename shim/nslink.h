/*
 * shim/nslink.h - hard links of in-memory files, made in the calling process
 * (nslink.c): a further name is an EPH_NAME slot that points at the file's
 * slot, which keeps the memfd and counts the names in nlink (shm.h).
 */
#ifndef SHIM_NSLINK_H
#define SHIM_NSLINK_H

#include <stdint.h>

#include "ephemera/shm.h"

/* Link in-memory file idx of gen (found by the caller by its source name) at
 * dst (absolute, canonical, managed, not in memory).  0, -1 with errno (EEXIST:
 * dst exists on disk; EIO: the lock stayed held 5 s), or -2: not a case done
 * here (another user's file, another file system, an in-memory parent, a file
 * being moved to disk, no pool slot...): the caller moves it to disk and lets
 * the kernel link it, as before. */
int nsl_link(uint32_t idx, uint32_t gen, const char *dst);

/* Under ns_lock: does chain slot n name file t (its own slot, or one of its EPH_NAME slots)? */
int nsl_names(struct eph_shm_header *h, int n, uint32_t t);

/*
 * Under ns_lock, in a record being built: take away name slot n of file t
 * (nsl_names(n, t)).  Its last name: t leaves the chain (nlink 0).  A further
 * name: its slot leaves the chain and t's list, nlink one less.  t's own slot
 * while it has further names: t takes its first further name, which needs
 * journal.path (path_free 0: the record uses it, and -2 is returned with
 * nothing added).  Returns 1 when an EPH_NAME slot left (the daemon frees it:
 * the caller sets reclaim_pending after the commit), 0, or -2.
 */
int nsl_j_drop_name(struct eph_shm_header *h, uint32_t n, uint32_t t, int path_free);

#endif
