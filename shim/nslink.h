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
 * here (another file system, an in-memory parent, a file being moved to disk,
 * no pool slot...; the caller made the kernel's permission checks): the caller moves it to disk and lets
 * the kernel link it, as before.  The parent is looked at under ns_lock, so a
 * directory removed or renamed elsewhere meanwhile never sends the file to disk. */
int nsl_link(uint32_t idx, uint32_t gen, const char *dst);

#endif
