/*
 * ephemera/nslock.h - the namespace lock of the shared region and its redo
 * journal, used by the daemon and by every shim process.  Header-only, so the
 * two sides share one implementation (as lock.h).
 *
 * ns_lock is a pthread mutex, ROBUST | PROCESS_SHARED: a holder killed inside
 * the section hands the next locker EOWNERDEAD instead of a hang.  Every change
 * is first written as a redo record (struct eph_journal) of idempotent
 * operations, then COMMITTED, then applied inside an odd ns_seq (so lock-free
 * readers retry), then EMPTY.  The locker that inherits a dead holder's lock
 * applies a COMMITTED record again (each operation may run twice: stores of
 * precomputed values, and chain removals and insertions that first look
 * whether they were done) and discards any other.  The one operation that is
 * not a store, an add to a counter that other processes move at the same time
 * without the lock (bytes_in_memory: a write's growth), marks itself applied
 * (EPH_JOP_ADD64 -> EPH_JOP_ADDED) next to the add, so it is made once.
 *
 * Waits are bounded: pthread_mutex_clocklock in 100 ms slices; after 5 s the
 * caller gets -EIO (and logs the holder's tid), never a hang.  A holder that
 * is stopped rather than dead is the only way to get there.
 */
#ifndef EPHEMERA_NSLOCK_H
#define EPHEMERA_NSLOCK_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/shm.h"

#define EPH_NS_WAIT_SLICE_NS (100 * 1000 * 1000L)
#define EPH_NS_WAIT_MAX_NS (5 * 1000 * 1000 * 1000LL)

/* Set up the mutex in a fresh region (the daemon, once). 0 or an errno. */
static inline int eph_ns_lock_init(struct eph_shm_header *h)
{
    pthread_mutexattr_t a;
    int e = pthread_mutexattr_init(&a);
    if (!e)
        e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!e)
        e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!e)
        e = pthread_mutex_init(&h->ns_lock, &a);
    pthread_mutexattr_destroy(&a);
    return e;
}

/* ---- the hash chains (one implementation for both sides) -------------- */

/* Take inode idx off its chain and clear its name.  Idempotent. */
static inline void eph_chain_remove(struct eph_shm_header *h, uint32_t idx)
{
    struct eph_inode *inodes = eph_inodes(h), *in = &inodes[idx];
    _Atomic uint32_t *b = &eph_buckets(h)[in->hash & (h->nbuckets - 1)];
    uint32_t i = atomic_load_explicit(b, memory_order_relaxed);
    if (i == idx + 1) {
        atomic_store_explicit(b, in->next, memory_order_release);
    } else {
        for (uint32_t steps = 0; i && i <= h->ninodes && steps < h->ninodes; steps++) {
            struct eph_inode *p = &inodes[i - 1];
            if (p->next == idx + 1) {
                p->next = in->next;
                break;
            }
            i = p->next;
        }
    }
    in->next = 0;
    in->path[0] = 0;
    atomic_store_explicit(&eph_dirhashes(h)[idx], 0, memory_order_relaxed);
    atomic_store(&in->nlink, 0);
}

/* Give inode idx the name path and chain it, its nlink untouched.  Idempotent: an inode
 * already on path's chain only gets its name (re)written. */
static inline void eph_chain_name(struct eph_shm_header *h, uint32_t idx, const char *path)
{
    struct eph_inode *inodes = eph_inodes(h), *in = &inodes[idx];
    uint32_t hv = eph_path_hash(path);
    _Atomic uint32_t *b = &eph_buckets(h)[hv & (h->nbuckets - 1)];
    int chained = 0;
    uint32_t i = atomic_load_explicit(b, memory_order_relaxed);
    for (uint32_t steps = 0; i && i <= h->ninodes && steps < h->ninodes; steps++) {
        if (i == idx + 1) {
            chained = 1;
            break;
        }
        i = inodes[i - 1].next;
    }
    if (in->path != path)
        memcpy(in->path, path, strlen(path) + 1);
    in->hash = hv;
    atomic_store_explicit(&eph_dirhashes(h)[idx], eph_dir_hash(in->path), memory_order_relaxed);
    if (!chained) {
        in->next = atomic_load_explicit(b, memory_order_relaxed);
        atomic_store_explicit(b, idx + 1, memory_order_release);
    }
}

/* Give inode idx the name path and chain it, as its one name (nlink 1).  Idempotent. */
static inline void eph_chain_insert(struct eph_shm_header *h, uint32_t idx, const char *path)
{
    eph_chain_name(h, idx, path);
    atomic_store(&eph_inodes(h)[idx].nlink, 1);
}

/* The inode on path's chain, or -1.  Under ns_lock (or as its only writer). */
static inline int eph_chain_lookup(struct eph_shm_header *h, const char *path)
{
    struct eph_inode *inodes = eph_inodes(h);
    uint32_t hv = eph_path_hash(path);
    uint32_t i = atomic_load_explicit(&eph_buckets(h)[hv & (h->nbuckets - 1)], memory_order_relaxed);
    for (uint32_t steps = 0; i && i <= h->ninodes && steps < h->ninodes; steps++) {
        struct eph_inode *in = &inodes[i - 1];
        if (in->hash == hv && strcmp(in->path, path) == 0)
            return (int)(i - 1);
        i = in->next;
    }
    return -1;
}

/* ---- a directory renamed with its subtree (version 9, shim/nsdir.c) ---- */

/* Take slot idx off the chain of bucket hv, if it is there; its name and nlink stay.  Idempotent. */
static inline void eph_chain_unhook(struct eph_shm_header *h, uint32_t idx, uint32_t hv)
{
    struct eph_inode *inodes = eph_inodes(h), *in = &inodes[idx];
    _Atomic uint32_t *b = &eph_buckets(h)[hv & (h->nbuckets - 1)];
    uint32_t i = atomic_load_explicit(b, memory_order_relaxed);
    if (i == idx + 1) {
        atomic_store_explicit(b, in->next, memory_order_release);
        in->next = 0;
        return;
    }
    for (uint32_t steps = 0; i && i <= h->ninodes && steps < h->ninodes; steps++) {
        struct eph_inode *p = &inodes[i - 1];
        if (p->next == idx + 1) {
            p->next = in->next;
            in->next = 0;
            return;
        }
        i = p->next;
    }
}

/* Slot idx takes the name journal.path3 (complete), off the chain of its old hash and onto the
 * new one; nlink untouched (a file's further names stay counted).  stall: the fault builds' stall
 * point between the two (NULL: none). */
static inline void eph_ns_stall(const char *point);
static inline void eph_tree_rename_slot(struct eph_shm_header *h, uint32_t idx, uint32_t old_hash, const char *stall)
{
    struct eph_inode *in = &eph_inodes(h)[idx];
    eph_chain_unhook(h, idx, old_hash);
    if (stall)
        eph_ns_stall(stall); /* fault builds: a slot off every chain, two moved before it */
    if (in->hash != old_hash)
        eph_chain_unhook(h, idx, in->hash); /* a redo after the new hash was stored */
    eph_chain_name(h, idx, h->journal.path3);
}

/* Is path p name (of length n) itself or below it? */
static inline int eph_path_at_or_below(const char *p, const char *name, size_t n)
{
    return strncmp(p, name, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/*
 * Every live slot named from or below it gets to plus the rest of its name.  One slot at a time,
 * each marked in flight in step o itself (arg: its index + 1, val's high half: its old hash; the
 * low half is the step's own) once its new name is whole in journal.path3; a locker that redoes
 * the record finishes the slot in flight, then renames whatever still has the old prefix (to is
 * never at or below from: the shim refuses to move a directory into itself).  The walk is over
 * the slots ever used (inode_hwm), under ns_lock and an odd ns_seq.  from and to must not be
 * journal.path3.
 */
static inline void eph_j_move_prefix(struct eph_shm_header *h, struct eph_jop *o, const char *from, const char *to,
                                     const char *stall)
{
    struct eph_journal *j = &h->journal;
    struct eph_inode *inodes = eph_inodes(h);
    _Atomic uint32_t *arg = (_Atomic uint32_t *)(void *)&o->arg;
    _Atomic uint64_t *val = (_Atomic uint64_t *)(void *)&o->val;
    uint64_t low = atomic_load(val) & 0xffffffffu;
    size_t flen = strnlen(from, EPH_PATH_MAX), tlen = strnlen(to, EPH_PATH_MAX);
    uint32_t inflight = atomic_load(arg);
    if (inflight && inflight <= h->ninodes) {
        eph_tree_rename_slot(h, inflight - 1, (uint32_t)(atomic_load(val) >> 32), NULL);
        atomic_store(arg, 0);
    }
    uint32_t hwm = atomic_load(&h->inode_hwm);
    if (hwm > h->ninodes)
        hwm = h->ninodes;
    for (uint32_t i = 0, moved = 0; i < hwm; i++) {
        struct eph_inode *in = &inodes[i];
        if (atomic_load(&in->state) == EPH_FREE || !eph_path_at_or_below(in->path, from, flen))
            continue;
        size_t rest = strnlen(in->path + flen, EPH_PATH_MAX - flen);
        if (tlen + rest >= EPH_PATH_MAX)
            continue; /* the shim checked every name fits before it committed */
        memcpy(j->path3, to, tlen);
        memcpy(j->path3 + tlen, in->path + flen, rest + 1);
        atomic_store(val, (uint64_t)in->hash << 32 | low);
        atomic_store(arg, i + 1);
        eph_tree_rename_slot(h, i, in->hash, moved++ == 2 ? stall : NULL);
        atomic_store(arg, 0);
    }
}

/*
 * The MOVETREE step: every live slot named journal.path2 or below it gets journal.path plus the
 * rest of its name (val's low half: strlen(path2), as written; the walk measures path2 itself).
 */
static inline void eph_j_move_tree(struct eph_shm_header *h, struct eph_jop *o)
{
    eph_j_move_prefix(h, o, h->journal.path2, h->journal.path, "movetree");
}

/*
 * A step of the XTREE exchange (version 13): 1 parks journal.path's subtree at EPH_XTREE_PARK,
 * 2 moves journal.path2's to journal.path, 3 the parked one to journal.path2.  Each step is redone
 * as MOVETREE's (its new prefix is never at or below its old: the two names are not nested, and
 * the park is below neither) and marked done as it ends: after step 1, journal.path holds the
 * other subtree, which a redo of step 1 would park again.  A kill between a step's last slot and
 * its mark redoes a step with nothing left at its old prefix.
 */
static inline void eph_j_xtree(struct eph_shm_header *h, struct eph_jop *o)
{
    struct eph_journal *j = &h->journal;
    uint32_t step = (uint32_t)(atomic_load((_Atomic uint64_t *)(void *)&o->val) & 0xffffffffu);
    if (step == 1)
        eph_j_move_prefix(h, o, j->path, EPH_XTREE_PARK, "exchange1");
    else if (step == 2)
        eph_j_move_prefix(h, o, j->path2, j->path, "exchange2");
    else if (step == 3)
        eph_j_move_prefix(h, o, EPH_XTREE_PARK, j->path2, "exchange3");
    atomic_store((_Atomic uint32_t *)(void *)&o->kind, EPH_JOP_XTREE_DONE);
}

/* ---- further names of a file (hard links in memory, shim/nslink.c) ---- */

/* Does chain slot n name file t: t's own slot, or one of its EPH_NAME slots? */
static inline int eph_names(struct eph_shm_header *h, int n, uint32_t t)
{
    struct eph_inode *inodes = eph_inodes(h);
    if (n < 0 || (uint32_t)n >= h->ninodes || t >= h->ninodes)
        return 0;
    if ((uint32_t)n == t)
        return 1;
    struct eph_inode *in = &inodes[n];
    return atomic_load(&in->state) == EPH_NAME && in->link_to == t && in->link_gen == atomic_load(&inodes[t].gen);
}

/* The file a chain slot names: itself, or the file of an EPH_NAME slot. */
static inline int eph_name_file(struct eph_shm_header *h, int n)
{
    if (n < 0 || (uint32_t)n >= h->ninodes)
        return n;
    struct eph_inode *in = &eph_inodes(h)[n];
    return atomic_load(&in->state) == EPH_NAME && in->link_to < h->ninodes ? (int)in->link_to : n;
}

static inline void eph_j_add(struct eph_shm_header *h, uint32_t kind, uint32_t arg, uint64_t val);
static inline void eph_j_set32(struct eph_shm_header *h, void *field, uint32_t v);

/*
 * Under ns_lock, in a record being built: take away name slot n of file t
 * (eph_names(n, t)).  Its last name: t leaves the chain (nlink 0).  A further
 * name: its slot leaves the chain and t's list, nlink one less.  t's own slot
 * while it has further names: t takes its first further name, which needs a
 * path of the record: path_free 1 uses journal.path (INSERT), 2 journal.path2
 * (INSERT2: path holds a rename's target), 0 none (-2 is returned with nothing
 * added).  Returns 1 when an EPH_NAME slot left (the daemon frees it: the
 * caller sets reclaim_pending after the commit), 0, or -2.
 */
static inline int eph_j_drop_name(struct eph_shm_header *h, uint32_t n, uint32_t t, int path_free)
{
    struct eph_inode *inodes = eph_inodes(h), *in = &inodes[t];
    uint32_t nl = atomic_load(&in->nlink);
    if (n == t && !in->link_head) {
        eph_j_add(h, EPH_JOP_REMOVE, t, 0);
        return 0;
    }
    if (n == t) {
        /* The file's own name goes: it takes its first further name. */
        if (!path_free)
            return -2;
        uint32_t x = in->link_head - 1;
        struct eph_inode *xi = &inodes[x];
        char *dst = path_free == 2 ? h->journal.path2 : h->journal.path;
        memcpy(dst, xi->path, strlen(xi->path) + 1);
        eph_j_add(h, EPH_JOP_REMOVE, x, 0);
        eph_j_add(h, EPH_JOP_REMOVE, t, 0);
        eph_j_add(h, path_free == 2 ? EPH_JOP_INSERT2 : EPH_JOP_INSERT, t, 0);
        eph_j_set32(h, &in->link_head, xi->link_next);
        eph_j_set32(h, &in->nlink, nl > 1 ? nl - 1 : 1); /* after INSERT, which sets 1 */
        return 1;
    }
    struct eph_inode *ni = &inodes[n];
    eph_j_add(h, EPH_JOP_REMOVE, n, 0);
    if (in->link_head == n + 1) {
        eph_j_set32(h, &in->link_head, ni->link_next);
    } else {
        uint32_t p = in->link_head, steps = 0;
        while (p && p <= h->ninodes && inodes[p - 1].link_next != n + 1 && steps++ < h->ninodes)
            p = inodes[p - 1].link_next;
        if (p && p <= h->ninodes && inodes[p - 1].link_next == n + 1)
            eph_j_set32(h, &inodes[p - 1].link_next, ni->link_next);
    }
    eph_j_set32(h, &in->nlink, nl > 1 ? nl - 1 : 0);
    return 1;
}

/*
 * Under ns_lock, in a record being built whose journal.path holds the new
 * name: a rename moves name slot na of file s there, and the name slot nb of
 * file d that held it (nb < 0: none in memory; d != s) goes, its file's own
 * name included (journal.path2 then names the file after it).  Each name
 * keeps its slot, so a file's other names, its nlink and st_ino stay as
 * they were, as on tmpfs.  Times are the caller's.  Returns what
 * eph_j_drop_name returns for nb (1: set reclaim_pending after the commit).
 */
static inline int eph_j_rename(struct eph_shm_header *h, uint32_t na, uint32_t s, int nb, uint32_t d)
{
    int dropped = nb >= 0 ? eph_j_drop_name(h, (uint32_t)nb, d, 2) : 0;
    struct eph_inode *si = &eph_inodes(h)[s];
    uint32_t snl = atomic_load(&si->nlink);
    eph_j_add(h, EPH_JOP_REMOVE, na, 0);
    eph_j_add(h, EPH_JOP_INSERT, na, 0);
    if (na == s && snl > 1)
        eph_j_set32(h, &si->nlink, snl); /* INSERT counts one name; the file has more */
    return dropped;
}

/* ---- seqlock around applied changes ------------------------------------- */

static inline void eph_ns_seq_begin(struct eph_shm_header *h)
{
    uint64_t s = atomic_load_explicit(&h->ns_seq, memory_order_relaxed);
    atomic_store_explicit(&h->ns_seq, s + 1, memory_order_relaxed);
    /* Readers that see the even value must not see any of our writes. */
    atomic_thread_fence(memory_order_seq_cst);
}

static inline void eph_ns_seq_end(struct eph_shm_header *h)
{
    uint64_t s = atomic_load_explicit(&h->ns_seq, memory_order_relaxed);
    atomic_store_explicit(&h->ns_seq, s + 1, memory_order_release);
}

/* ---- the journal ------------------------------------------------------- */

static inline void eph_j_begin(struct eph_shm_header *h)
{
    struct eph_journal *j = &h->journal;
    j->n = 0;
    j->holder = h->ns_lock.__data.__owner & 0x3fffffff; /* our tid, without a syscall */
    atomic_store_explicit(&j->state, EPH_J_BUILDING, memory_order_release);
}

static inline void eph_j_add(struct eph_shm_header *h, uint32_t kind, uint32_t arg, uint64_t val)
{
    struct eph_journal *j = &h->journal;
    if (j->n < EPH_JOURNAL_OPS)
        j->op[j->n++] = (struct eph_jop){kind, arg, val};
    else
        abort(); /* a change bigger than the record: a bug, and it must not half-apply */
}

/* Region offset of a field, for SET operations. */
#define EPH_OFF(h, p) ((uint32_t)((char *)(p) - (char *)(h)))

static inline void eph_j_set32(struct eph_shm_header *h, void *field, uint32_t v)
{
    eph_j_add(h, EPH_JOP_SET32, EPH_OFF(h, field), v);
}

static inline void eph_j_set64(struct eph_shm_header *h, void *field, uint64_t v)
{
    eph_j_add(h, EPH_JOP_SET64, EPH_OFF(h, field), v);
}

/* Into the open record: add delta (negative: take away) to a counter, once, as the record
 * applies.  A counter whose value is kept only under ns_lock would take a SET64 instead. */
static inline void eph_j_add64(struct eph_shm_header *h, _Atomic uint64_t *counter, int64_t delta)
{
    eph_j_add(h, EPH_JOP_ADD64, EPH_OFF(h, counter), (uint64_t)delta);
}

/*
 * An add applied once, by the holder or by the locker that redoes its record: the op is
 * marked applied in the same breath as the add.  Two stores, so a holder killed between
 * them leaves one of two outcomes, and the order picks the safe one: an add is made
 * before its mark (killed between: made again by the redo, the count too high by val),
 * a take-away after its mark (killed between: not made, too high again).  Never below
 * the truth, so never below zero: a count below zero stopped `ephemera run`'s shutdown.
 */
static inline void eph_j_apply_add(struct eph_shm_header *h, struct eph_jop *o)
{
    _Atomic uint64_t *w = (_Atomic uint64_t *)(void *)((char *)h + o->arg);
    _Atomic uint32_t *kind = (_Atomic uint32_t *)(void *)&o->kind;
    if ((int64_t)o->val >= 0) {
        atomic_fetch_add(w, o->val);
        atomic_store(kind, EPH_JOP_ADDED);
    } else {
        atomic_store(kind, EPH_JOP_ADDED);
        atomic_fetch_add(w, o->val);
    }
}

static inline void eph_j_apply_op(struct eph_shm_header *h, struct eph_jop *o)
{
    switch (o->kind) {
    case EPH_JOP_ADD64:
        eph_j_apply_add(h, o);
        break;
    case EPH_JOP_SET32:
        atomic_store((_Atomic uint32_t *)(void *)((char *)h + o->arg), (uint32_t)o->val);
        break;
    case EPH_JOP_SET64:
        atomic_store((_Atomic uint64_t *)(void *)((char *)h + o->arg), o->val);
        break;
    case EPH_JOP_REMOVE:
        if (o->arg < h->ninodes)
            eph_chain_remove(h, o->arg);
        break;
    case EPH_JOP_INSERT:
        if (o->arg < h->ninodes)
            eph_chain_insert(h, o->arg, h->journal.path);
        break;
    case EPH_JOP_INSERT2:
        if (o->arg < h->ninodes)
            eph_chain_insert(h, o->arg, h->journal.path2);
        break;
    case EPH_JOP_MOVETREE:
        eph_j_move_tree(h, o);
        break;
    case EPH_JOP_XTREE:
        eph_j_xtree(h, o);
        break;
    }
}

/* A test hook of the fault builds: EPHEMERA_NS_STALL=<point> stops the process
 * (SIGSTOP) at that point of a change, lock held, for a test to kill it (or, for
 * "last", to keep it there while another process looks at the region).  A record
 * committed with a tag (eph_j_commit_as) stops at "<tag>-<point>" too, and only it,
 * so a test can reach that record past the others of the same call (an unlink's
 * own record comes before its home's, nsfast.c). */
static inline void eph_ns_stall_in(const char *point, const char *tag)
{
#ifdef EPH_FAULTS
    const char *s = getenv("EPHEMERA_NS_STALL");
    size_t n = tag ? strlen(tag) : 0;
    if (s && (strcmp(s, point) == 0 || (tag && strncmp(s, tag, n) == 0 && s[n] == '-' && strcmp(s + n + 1, point) == 0)))
        raise(SIGSTOP);
#else
    (void)point;
    (void)tag;
#endif
}

static inline void eph_ns_stall(const char *point)
{
    eph_ns_stall_in(point, NULL);
}

/* Commit the record and apply it, readers kept out by an odd ns_seq; tag names its
 * stall points in the fault builds (NULL: none but the plain ones). */
static inline void eph_j_commit_as(struct eph_shm_header *h, const char *tag)
{
    struct eph_journal *j = &h->journal;
    eph_ns_stall_in("building", tag);
    atomic_store_explicit(&j->state, EPH_J_COMMITTED, memory_order_seq_cst);
    eph_ns_seq_begin(h);
    for (uint32_t k = 0; k < j->n; k++) {
        if (k > 0 && k + 1 == j->n)
            eph_ns_stall_in("last", tag); /* all but the last store applied: a create's slot still FREE */
        eph_j_apply_op(h, &j->op[k]);
        if (k == 0)
            eph_ns_stall_in("applying", tag);
    }
    eph_ns_seq_end(h);
    eph_ns_stall_in("applied", tag);
    atomic_store_explicit(&j->state, EPH_J_EMPTY, memory_order_release);
}

static inline void eph_j_commit(struct eph_shm_header *h)
{
    eph_j_commit_as(h, NULL);
}

/*
 * Under a lock just inherited from a dead holder: finish or discard its
 * change.  Returns 1 if a committed change was applied again, 0 if discarded.
 */
static inline int eph_ns_recover(struct eph_shm_header *h)
{
    struct eph_journal *j = &h->journal;
    int redo = atomic_load(&j->state) == EPH_J_COMMITTED;
    if (redo) {
        if ((atomic_load(&h->ns_seq) & 1) == 0)
            eph_ns_seq_begin(h);
        for (uint32_t k = 0; k < j->n && k < EPH_JOURNAL_OPS; k++)
            eph_j_apply_op(h, &j->op[k]);
    }
    if (atomic_load(&h->ns_seq) & 1)
        eph_ns_seq_end(h);
    atomic_store(&j->state, EPH_J_EMPTY);
    atomic_fetch_add(&h->ns_recoveries, 1);
    atomic_store(&h->ns_unchecked, 1);
    return redo;
}

static inline int64_t eph_ns_mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * Take ns_lock.  0, or -EIO after 5 s (*holder_tid then names the holder).
 * A dead holder's change is recovered first; *recovered_from (if not NULL)
 * receives its tid, else 0; *redone whether its committed change was redone.
 */
#define EPH_NS_SPIN_TRIES 128

static inline void eph_ns_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline int eph_ns_lock(struct eph_shm_header *h, int *recovered_from, int *redone, int *holder_tid)
{
    if (recovered_from)
        *recovered_from = 0;
    int e = pthread_mutex_trylock(&h->ns_lock);
    /* Most holds (a shim's record, the daemon's tick) last a few microseconds: a bounded spin of
     * tries (~5 us) takes the lock without a futex wait on one side and a wake on the other. */
    for (int spin = 0; e == EBUSY && spin < EPH_NS_SPIN_TRIES; spin++) {
        eph_ns_cpu_relax();
        if (atomic_load_explicit((_Atomic int *)&h->ns_lock.__data.__lock, memory_order_relaxed) == 0)
            e = pthread_mutex_trylock(&h->ns_lock);
    }
    if (e == EBUSY) {
        int64_t start = eph_ns_mono_ns();
        for (;;) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += EPH_NS_WAIT_SLICE_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            e = pthread_mutex_clocklock(&h->ns_lock, CLOCK_MONOTONIC, &ts);
            if (e != ETIMEDOUT && e != EINTR)
                break;
            if (eph_ns_mono_ns() - start >= EPH_NS_WAIT_MAX_NS) {
                if (holder_tid)
                    *holder_tid = h->ns_lock.__data.__owner & 0x3fffffff;
                return -EIO;
            }
        }
    }
    if (e == EOWNERDEAD) {
        int from = h->journal.holder;
        int r = eph_ns_recover(h);
        pthread_mutex_consistent(&h->ns_lock);
        if (recovered_from)
            *recovered_from = from ? from : -1;
        if (redone)
            *redone = r;
        return 0;
    }
    if (e == ENOTRECOVERABLE || e != 0)
        return -EIO;
    return 0;
}

static inline void eph_ns_unlock(struct eph_shm_header *h)
{
    pthread_mutex_unlock(&h->ns_lock);
}

#endif
