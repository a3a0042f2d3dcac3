/*
 * shim/fp_desc.h - open file descriptions of in-memory files (fp_desc.c):
 * the shared-region slot behind a managed fd, and the references to it.
 */
#ifndef SHIM_FP_DESC_H
#define SHIM_FP_DESC_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/single_threaded.h>

#include "ephemera/shm.h"
#include "fdtable.h"
#include "init.h"

static inline struct eph_desc *fp_desc(int fd) { return &sh.descs[ft_fds[fd].desc1 - 1]; }
static inline struct eph_inode *fp_inode_of(struct eph_desc *d) { return &sh.inodes[d->inode]; }
int fp_desc_alloc(uint32_t inode, uint32_t gen, int flags, uint32_t *out);
void fp_desc_ref(uint32_t desc);
void fp_desc_unref(uint32_t desc);      /* drops the open_count on the inode at 0 */
void fp_inode_release(uint32_t inode, uint32_t gen);
/*
 * An open reference for a call that has no fd on the file (truncate, chmod, the
 * xattr calls by path), listed in this thread's ledger while held: taken after
 * ft_inflight_slot(), which must be called holding no region lock (so before
 * the inode lock), and it may be taken under that lock.  The daemon frees a
 * slot with no name that it saw nobody open (ns_maybe_gc), so the reference
 * keeps the file only once the caller, after taking it, sees the same gen, in
 * memory, with a name (the unlink lowers nlink before the daemon reads
 * open_count; this raises open_count before the caller reads nlink: the Dekker
 * pair of fp_inode_release).  Given back with fp_call_unref (an RPC when it was
 * the last reference of a file unlinked or moved meanwhile).
 */
void fp_call_ref(uint32_t inode, uint32_t gen);
void fp_call_unref(uint32_t inode, uint32_t gen);

/*
 * The offset lock of a description serialises read/write/lseek of everyone
 * sharing it.  A single-threaded process holding the only reference (no dup,
 * no fork, no thread) shares it with nobody, and nothing can add a sharer
 * while it is inside this call, so the two atomic operations are skipped:
 * the kernel's f_pos_lock makes the same exception.
 */
static inline int fp_desc_shared(struct eph_desc *d)
{
    return !__libc_single_threaded || atomic_load_explicit(&d->refs, memory_order_relaxed) != 1;
}

#endif
