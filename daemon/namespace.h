/*
 * namespace.h - the path -> inode hash in the shared region, and inode slot
 * allocation.  The daemon is the only writer; shim processes read the hash
 * lock-free under the seqlock header->ns_seq, so every change to buckets,
 * chains or paths happens between ns_write_begin() and ns_write_end(), inside
 * nsl_enter() (shims change the hash too, under the same lock).
 */
#ifndef EPHD_NAMESPACE_H
#define EPHD_NAMESPACE_H

#include <stddef.h>
#include <stdint.h>

#include "ephemera/proto.h"

int ns_init(char *err, size_t errlen);

/* Take ns_lock (nested sections of the daemon share it): 0, or -EIO after
 * 5 s behind a stopped holder.  A dead holder's change is recovered and
 * ns_check() runs.  Every daemon change of the namespace is inside one. */
int nsl_enter(void);
void nsl_exit(void);

/* bytes_in_memory (counter) and the capacity of every file in memory (files), read together
 * under ns_lock and every such file's inode lock (ns_bytes_recount); ok 0 when a file's lock
 * was held then (not waited for) or ns_lock could not be had. */
struct ns_bytes {
    int ok;
    uint64_t counter, files;
};

/* The namespace's invariants (namespace.c): 0, or the number violated with
 * the first described in first.  Frees inodes left unnamed and unopened.
 * bytes (may be NULL) receives the count of bytes in memory, made in the
 * same section. */
int ns_check(char *first, size_t n, struct ns_bytes *bytes);
void ns_check_and_log(const char *when);

/* The memfd pool (EPH_OP_POOL): lend up to want free slots, each with a
 * fresh memfd, to process pid; out/fds receive them.  Number lent. */
int ns_pool_lend(int32_t pid, int want, struct eph_pool_entry *out, int *fds);
/* Take back the unused entries lent to pid (only_dead: to every pid that
 * no longer exists).  Number taken back. */
int ns_pool_take_back(int32_t pid, int only_dead);
/* Make memfds ahead of time, off the callers' path. */
void ns_pool_restock(void);
/* The memfds in stock (n of them): made ahead, or a freed file's kept for the next. */
const int *ns_stock_fds(int *n);
/* Free the files shims unlinked, if any shim said so (reclaim_pending). */
void ns_reclaim(void);

/* The recent creates in the region (place_recent, read by place.c): the path
 * kept for entry k of a file placed on disk, and the entries of inode idx
 * (gen) turned into disk entries at path when an eviction names it there
 * (under ns_lock). */
char *ns_recent_path(uint32_t k);
void ns_recent_evicted(uint32_t idx, uint32_t gen, const char *path);

/* After a takeover (takeover.h): the daemon's private tables from the region, the free slots
 * (neither used nor lent) and each named file's root. */
void ns_adopt_slots(void);

/* Inode index named by path, or -1. */
int ns_lookup(const char *path);
/* The slot that holds name path (a further name's own slot, shim/nslink.c, where ns_lookup
 * gives its file), or -1. */
int ns_name_slot(const char *path);
/* Under ns_lock, inside a write section: take name path away from file t (the file's own
 * name or a further one, shim/nslink.c), logged as the shims' changes are.  0 or -ENOENT. */
int ns_drop_name_logged(const char *path, uint32_t t);
/* 1 when idx names a live inode of generation gen. */
int ns_valid(uint32_t idx, uint32_t gen);

/* New in-memory inode (state MEM, nlink 0, open_count 0, not yet named):
 * index, or -errno (-ENFILE when the table is full, memfd errors). */
int ns_new_inode(int root, uint32_t mode, uint32_t uid, uint32_t gid);
/* Return a slot to the free list: closes its fds, fixes the counters. */
void ns_free(uint32_t idx);
/* Free idx if nothing refers to it any more (unnamed and no open
 * descriptions).  1 if freed. */
int ns_maybe_gc(uint32_t idx);
/* ns_maybe_gc over the whole table (periodic tick). */
void ns_gc_all(void);

/* Processes killed by a signal never drop their open counts.  When no shim
 * is connected and no other process maps the region (twice, a second
 * apart), every count is a leak: reset them and collect. */
void ns_sweep_orphans(int nconns, uint64_t accepts);
/* At shutdown: log the unlinked files that references still hold (a leak's trace). */
void ns_log_held(void);

/* Take inode idx's lock (eph_unlock releases it).  A holder that died is
 * taken over as eph_lock does (after 20 ms, repaired); unlike eph_lock it also
 * gives up waiting on a live holder after a second and takes the lock over: the
 * daemon must not hang behind a process stopped inside a critical section. */
uint64_t ns_files_in_memory(void); /* counted from the slots (the stats' gauge) */
int ns_lock(uint32_t idx); /* 1: taken over (callers treat the holder as one that may resume) */

void ns_write_begin(void);
void ns_write_end(void);
/* Name idx as path (nlink 1).  Inside a write section; path fits EPH_PATH_MAX. */
void ns_insert(uint32_t idx, const char *path);
/* Drop idx's name (nlink 0).  Inside a write section. */
void ns_remove(uint32_t idx);
/* Rename in memory as one journaled change: name src of file s becomes dst, and name dst of
 * file d (if >= 0, the replaced target, not s) goes; other names of either stay (shim/nslink.c).
 * Inside a write section; dst fits EPH_PATH_MAX.  0, or -ENOENT when a name is not the file's. */
int ns_rename_logged(const char *src, uint32_t s, const char *dst, int64_t d);

/* 1 if some in-memory file is named below directory dir ("dir/..."). */
int ns_has_below(const char *dir);
/* 1 if a proper ancestor directory of path is an in-memory file (ENOTDIR). */
int ns_ancestor_is_file(const char *path);
/* Longest path (strlen) that renaming every file below `from` to below `to`
 * would produce, or 0 if no file lives below `from`. */
size_t ns_longest_renamed(const char *from, const char *to);
/* Rename every in-memory path below `a` to below `b`; with exchange, also
 * those below `b` to below `a`, from the paths as they were before the call.
 * Inside a write section; the caller checked lengths.  Number renamed. */
size_t ns_rename_prefix(const char *a, const char *b, int exchange);

#endif
