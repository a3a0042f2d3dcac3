/*
 * shim/fp_desc.c - open file descriptions in the shared region: allocation and
 * references, and the inode's open count they hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "fp_desc.h"
#include "init.h"
#include "rpc.h"

int fp_desc_alloc(uint32_t inode, uint32_t gen, int flags, uint32_t *out)
{
    struct eph_shm_header *h = sh.hdr;
    uint32_t n = h->ndescs;
    uint32_t start = atomic_load_explicit(&h->desc_hint, memory_order_relaxed) % n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = (start + i) % n;
        struct eph_desc *d = &sh.descs[idx];
        uint32_t zero = 0;
        if (atomic_load_explicit(&d->refs, memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong(&d->refs, &zero, 1))
            continue;
        d->inode = inode;
        d->inode_gen = gen;
        atomic_store(&d->flags, (uint32_t)flags);
        atomic_store(&d->lock.word, 0);
        atomic_store(&d->offset, 0);
        atomic_store_explicit(&h->desc_hint, idx + 1, memory_order_relaxed);
        *out = idx;
        return 0;
    }
    return -ENFILE;
}

void fp_desc_ref(uint32_t desc) { atomic_fetch_add(&sh.descs[desc].refs, 1); }

void fp_inode_release(uint32_t inode, uint32_t gen)
{
    struct eph_inode *ino = &sh.inodes[inode];
    /* A reference taken on a slot that was reused meanwhile is still ours to give back: the new
     * file's count holds it (eph_inode_fresh adds). */
    if (atomic_fetch_sub(&ino->open_count, 1) != 1)
        return;
    if (atomic_load(&ino->gen) != gen) {
        /* Ours was the last: the new file's last close came first and left its release to us. */
        uint32_t now = atomic_load(&ino->gen), st = atomic_load(&ino->state);
        if ((st == EPH_MEM || st == EPH_DISK) && atomic_load(&ino->nlink) == 0)
            rpc_inode_call(EPH_OP_RELEASE, inode, now);
        return;
    }
    /* Last open description: an unlinked file (or an evicted one) can now be freed. */
    if (atomic_load(&ino->nlink) == 0 || atomic_load(&ino->state) != EPH_MEM)
        rpc_inode_call(EPH_OP_RELEASE, inode, gen);
}

void fp_call_ref(uint32_t inode, uint32_t gen)
{
    atomic_fetch_add(&sh.inodes[inode].open_count, 1);
    ft_inflight_inode(inode, gen);
}

void fp_call_unref(uint32_t inode, uint32_t gen)
{
    ft_inflight_clear(); /* just before the count drops: a death in between leaks, never drops twice */
    fp_inode_release(inode, gen);
}

void fp_desc_unref(uint32_t desc)
{
    struct eph_desc *d = &sh.descs[desc];
    uint32_t inode = d->inode, gen = d->inode_gen;
    if (atomic_fetch_sub(&d->refs, 1) == 1)
        fp_inode_release(inode, gen);
}
