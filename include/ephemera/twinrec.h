/*
 * ephemera/twinrec.h - where the twins of directories in memory went (struct eph_twinrec, region
 * version 10), for the stand-in fds that knew them by slot (shim/nsdirfd.c), and the stand-ins'
 * holds that keep those records (struct eph_standin_hold, version 12).
 *
 * Writers hold ns_lock: the daemon records each twin it makes (daemon/dirtwin.c) before the
 * record that drops the slot, so a reader that finds the slot gone finds the record; every rename
 * of a disk directory made under ns_lock (the daemon's, daemon/shimops.c; the shim's own kernel
 * rename, shim/intercept_names.c) marks the records at or below either name moving before the
 * kernel's call and gives them their new paths after it.  Readers take no lock: a record's seq is
 * odd while it is written or moving, and a reader that opened the twin's path reads the seq again
 * (a rename between its copy and its open would have moved it).  A holder killed in between
 * leaves the seq odd: the record is then unreadable (never wrong).
 *
 * Which record a twin fills (version 12): one whose slot and generation no stand-in holds.  A
 * stand-in claims its hold, then reads its slot live: a twin after that read sees the hold when it
 * picks a record for a later twin; a stand-in that finds its slot gone already is not made.  So a
 * stand-in's record stays until its last hold is given back, however many twins come meanwhile.
 */
#ifndef EPHEMERA_TWINREC_H
#define EPHEMERA_TWINREC_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "ephemera/lock.h"
#include "ephemera/nslock.h"
#include "ephemera/shm.h"

/* Odd from any value: a record whose writer died odd stays odd while it is written again. */
static inline void eph_twinrec_open(struct eph_twinrec *r)
{
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
    atomic_store_explicit(&r->seq, (s | 1u) + 2u, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

static inline void eph_twinrec_close(struct eph_twinrec *r)
{
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
    atomic_store_explicit(&r->seq, s + 1u, memory_order_release);
}

/* Under ns_lock: the directory of slot/gen is now the disk directory path (dev, ino), in record k
 * (the daemon's pick: one no stand-in holds, daemon/dirtwin.c). */
static inline void eph_twinrec_put(struct eph_shm_header *h, unsigned k, uint32_t slot, uint32_t gen, uint64_t dev,
                                   uint64_t ino, const char *path)
{
    struct eph_twinrec *r = &h->twinrecs[k % EPH_TWINRECS];
    size_t n = strnlen(path, EPH_PATH_MAX - 1);
    eph_twinrec_open(r);
    r->slot = slot;
    r->gen = gen;
    r->dev = dev;
    r->ino = ino;
    memcpy(r->path, path, n);
    r->path[n] = '\0';
    eph_twinrec_close(r);
    if (k % EPH_TWINRECS + 1 > atomic_load(&h->twinrec_hwm))
        atomic_store(&h->twinrec_hwm, k % EPH_TWINRECS + 1); /* after the record: a reader bounded by
                                                               * it sees the record whole */
}

/* The records filled so far (readers and renames look at no more). */
static inline unsigned eph_twinrec_count(struct eph_shm_header *h)
{
    unsigned n = atomic_load_explicit(&h->twinrec_hwm, memory_order_acquire);
    return n < EPH_TWINRECS ? n : EPH_TWINRECS;
}

/* A set of records (bit k for twinrecs[k]): the ones a rename is moving. */
struct eph_twinmask {
    uint64_t w[(EPH_TWINRECS + 63) / 64];
};

/* The records at or below a (or, exchanging, b), into m (cleared first). */
static inline void eph_twinrec_under(struct eph_shm_header *h, const char *a, const char *b, int exchange,
                                     struct eph_twinmask *m)
{
    memset(m, 0, sizeof *m);
    size_t alen = strlen(a), blen = strlen(b);
    for (unsigned k = 0, n = eph_twinrec_count(h); k < n; k++) {
        struct eph_twinrec *r = &h->twinrecs[k];
        if (!atomic_load(&r->seq) || !r->path[0])
            continue;
        if (eph_path_at_or_below(r->path, a, alen) || (exchange && eph_path_at_or_below(r->path, b, blen)))
            m->w[k / 64] |= 1ull << (k % 64);
    }
}

static inline int eph_twinmask_has(const struct eph_twinmask *m, unsigned k)
{
    return (m->w[k / 64] >> (k % 64)) & 1;
}

/* Under ns_lock, before the kernel's rename of a to b: the records it may move, marked moving
 * (in m, for eph_twinrec_moved). */
static inline void eph_twinrec_moving(struct eph_shm_header *h, const char *a, const char *b, int exchange,
                                      struct eph_twinmask *m)
{
    eph_twinrec_under(h, a, b, exchange, m);
    for (unsigned k = 0; k < EPH_TWINRECS; k++)
        if (eph_twinmask_has(m, k))
            eph_twinrec_open(&h->twinrecs[k]);
}

/* Under ns_lock, after it (done: the rename was made): new paths, and readable again. */
static inline void eph_twinrec_moved(struct eph_shm_header *h, const struct eph_twinmask *m, const char *a,
                                     const char *b, int done)
{
    size_t alen = strlen(a), blen = strlen(b);
    for (unsigned k = 0; k < EPH_TWINRECS; k++) {
        if (!eph_twinmask_has(m, k))
            continue;
        struct eph_twinrec *r = &h->twinrecs[k];
        if (done) {
            int side_a = eph_path_at_or_below(r->path, a, alen);
            const char *to = side_a ? b : a;
            size_t from_len = side_a ? alen : blen, tlen = strlen(to);
            size_t rest = strnlen(r->path + from_len, EPH_PATH_MAX - from_len);
            if (tlen + rest < EPH_PATH_MAX) {
                char np[EPH_PATH_MAX];
                memcpy(np, to, tlen);
                memcpy(np + tlen, r->path + from_len, rest);
                np[tlen + rest] = '\0';
                memcpy(r->path, np, tlen + rest + 1);
            } else {
                r->path[0] = '\0'; /* too long to name: the record is dropped */
            }
        }
        eph_twinrec_close(r);
    }
}

/* Lock-free: the record of slot/gen (its path now and its disk identity): its seq, even, or 0 when
 * there is none or it could not be read still.  A reader that used the path compares the seq
 * again (eph_twinrec_seq). */
static inline uint32_t eph_twinrec_find(struct eph_shm_header *h, uint32_t slot, uint32_t gen, char out[EPH_PATH_MAX],
                                        uint64_t *dev, uint64_t *ino, unsigned *at)
{
    for (unsigned k = 0, nrec = eph_twinrec_count(h); k < nrec; k++) {
        struct eph_twinrec *r = &h->twinrecs[k];
        for (unsigned tries = 0; tries < 64; tries++) {
            uint32_t s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
            if (!s1)
                break;
            if (s1 & 1) {
                sched_yield();
                continue;
            }
            int match = r->slot == slot && r->gen == gen;
            if (match) {
                size_t n = strnlen(r->path, EPH_PATH_MAX - 1);
                memcpy(out, r->path, n);
                out[n] = '\0';
                *dev = r->dev;
                *ino = r->ino;
            }
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&r->seq, memory_order_relaxed) != s1)
                continue;
            if (!match)
                break;
            *at = k;
            return out[0] ? s1 : 0;
        }
    }
    return 0;
}

static inline uint32_t eph_twinrec_seq(struct eph_shm_header *h, unsigned k)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&h->twinrecs[k % EPH_TWINRECS].seq, memory_order_acquire);
}

/* ---- holds (version 12) ---- */

/* A hold on the record of slot/gen for the stand-in of process pid: its index + 1, or 0 when all
 * are taken (even after those of dead processes were taken back): the caller then makes no
 * stand-in.  The caller reads the slot live after this (seq_cst: before any twin that could miss
 * the hold) and gives the hold back if it is not.  hint: where to start looking. */
static inline uint32_t eph_hold_claim(struct eph_shm_header *h, uint32_t pid, uint32_t slot, uint32_t gen,
                                      uint32_t hint)
{
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < EPH_STANDIN_HOLDS; i++) {
            uint32_t k = (hint + i) % EPH_STANDIN_HOLDS, zero = 0;
            struct eph_standin_hold *o = &h->standin_holds[k];
            if (atomic_load_explicit(&o->pid, memory_order_relaxed) != 0 ||
                !atomic_compare_exchange_strong(&o->pid, &zero, pid | EPH_HOLD_FILLING))
                continue;
            uint32_t hw = atomic_load(&h->holds_hwm);
            while (hw < k + 1 && !atomic_compare_exchange_weak(&h->holds_hwm, &hw, k + 1))
                ;
            atomic_store_explicit(&o->slot, slot, memory_order_relaxed);
            atomic_store_explicit(&o->gen, gen, memory_order_relaxed);
            atomic_store(&o->pid, pid); /* seq_cst: before the caller's look at the slot */
            return k + 1;
        }
        /* None free: those of processes that died holding them (system calls only here). */
        for (uint32_t k = 0; pass == 0 && k < EPH_STANDIN_HOLDS; k++) {
            struct eph_standin_hold *o = &h->standin_holds[k];
            uint32_t p = atomic_load(&o->pid);
            if (p && eph_pid_gone(p & ~EPH_HOLD_FILLING))
                atomic_compare_exchange_strong(&o->pid, &p, 0);
        }
    }
    return 0;
}

/* The hold (index + 1) of process pid given back; another process's is left alone. */
static inline void eph_hold_give(struct eph_shm_header *h, uint32_t hold, uint32_t pid)
{
    if (!hold || hold > EPH_STANDIN_HOLDS)
        return;
    uint32_t p = pid;
    atomic_compare_exchange_strong(&h->standin_holds[hold - 1].pid, &p, 0);
}

/* The hold (index + 1) of process from, now process to's (a fork child's copy of the stand-in). */
static inline void eph_hold_pass(struct eph_shm_header *h, uint32_t hold, uint32_t from, uint32_t to)
{
    if (!hold || hold > EPH_STANDIN_HOLDS)
        return;
    atomic_compare_exchange_strong(&h->standin_holds[hold - 1].pid, &from, to);
}

#endif
