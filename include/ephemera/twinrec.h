/*
 * ephemera/twinrec.h - where the twins of directories in memory went (struct eph_twinrec, region
 * version 10), for the stand-in fds that knew them by slot (shim/nsdirfd.c).
 *
 * Writers hold ns_lock: the daemon records each twin it makes (daemon/dirtwin.c) before the
 * record that drops the slot, so a reader that finds the slot gone finds the record; every rename
 * of a disk directory made under ns_lock (the daemon's, daemon/shimops.c; the shim's own kernel
 * rename, shim/intercept_names.c) marks the records at or below either name moving before the
 * kernel's call and gives them their new paths after it.  Readers take no lock: a record's seq is
 * odd while it is written or moving, and a reader that opened the twin's path reads the seq again
 * (a rename between its copy and its open would have moved it).  A holder killed in between
 * leaves the seq odd: the record is then unreadable until a twin reuses it (never wrong).
 */
#ifndef EPHEMERA_TWINREC_H
#define EPHEMERA_TWINREC_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

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

/* Under ns_lock: the directory of slot/gen is now the disk directory path (dev, ino). */
static inline void eph_twinrec_add(struct eph_shm_header *h, uint32_t slot, uint32_t gen, uint64_t dev,
                                   uint64_t ino, const char *path)
{
    uint32_t k = atomic_load(&h->twinrec_next) % EPH_TWINRECS;
    atomic_store(&h->twinrec_next, (k + 1) % EPH_TWINRECS);
    struct eph_twinrec *r = &h->twinrecs[k];
    size_t n = strnlen(path, EPH_PATH_MAX - 1);
    eph_twinrec_open(r);
    r->slot = slot;
    r->gen = gen;
    r->dev = dev;
    r->ino = ino;
    memcpy(r->path, path, n);
    r->path[n] = '\0';
    eph_twinrec_close(r);
}

/* The records at or below a (or, exchanging, b): bit k for twinrecs[k]. */
static inline uint64_t eph_twinrec_under(struct eph_shm_header *h, const char *a, const char *b, int exchange)
{
    uint64_t m = 0;
    size_t alen = strlen(a), blen = strlen(b);
    for (unsigned k = 0; k < EPH_TWINRECS; k++) {
        struct eph_twinrec *r = &h->twinrecs[k];
        if (!atomic_load(&r->seq) || !r->path[0])
            continue;
        if (eph_path_at_or_below(r->path, a, alen) || (exchange && eph_path_at_or_below(r->path, b, blen)))
            m |= 1ull << k;
    }
    return m;
}

/* Under ns_lock, before the kernel's rename of a to b: the records it may move, marked moving
 * (returned, for eph_twinrec_moved). */
static inline uint64_t eph_twinrec_moving(struct eph_shm_header *h, const char *a, const char *b, int exchange)
{
    uint64_t m = eph_twinrec_under(h, a, b, exchange);
    for (unsigned k = 0; k < EPH_TWINRECS; k++)
        if (m & (1ull << k))
            eph_twinrec_open(&h->twinrecs[k]);
    return m;
}

/* Under ns_lock, after it (done: the rename was made): new paths, and readable again. */
static inline void eph_twinrec_moved(struct eph_shm_header *h, uint64_t m, const char *a, const char *b, int done)
{
    size_t alen = strlen(a), blen = strlen(b);
    for (unsigned k = 0; k < EPH_TWINRECS; k++) {
        if (!(m & (1ull << k)))
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
    for (unsigned k = 0; k < EPH_TWINRECS; k++) {
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

#endif
