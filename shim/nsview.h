/*
 * shim/nsview.h - the shim's read-only view of the daemon's namespace
 * (nsview.c): seqlock lookups in the shared path hash, and the errors the
 * kernel's path walk would give where in-memory files stand in the way.
 * (The daemon's own namespace, which writes the hash, is daemon/namespace.c.)
 */
#ifndef SHIM_NSVIEW_H
#define SHIM_NSVIEW_H

#include <errno.h>
#include <stdint.h>

#include "ephemera/shm.h"

struct stat;

/* abs (normalised, managed) in the shared hash: 0 with its slot and gen, -ENOENT, or -EAGAIN. */
/* May the caller search every directory down to abs's parent (as the kernel's walk requires)? */
int nsv_parent_searchable(const char *abs);
/* May it reach dir (abs's parent) with amode on it (W_OK | X_OK to change an entry)?  Root: yes,
 * without a call.  Only a definite EACCES says no. */
int nsv_dir_allows(const char *dir, int amode);
int nsv_parent_allows(const char *abs, int amode);
int nsv_parent(const char *abs, char *parent); /* abs's directory ("/" for "/x") into EPH_PATH_MAX bytes; -1 too long */
int nsv_lookup(const char *abs, uint32_t *inode, uint32_t *gen);
/* abs in the shared hash whatever it names (files and in-memory directories), no permission check:
 * 0 with its slot, gen and state, -ENOENT, or -EAGAIN. */
int nsv_find(const char *abs, uint32_t *inode, uint32_t *gen, uint32_t *state);
int nsv_backoff(unsigned tries); /* seqlock reader wait: 0 retry, -EAGAIN give up */
int nsv_stat(const char *abs, struct stat *st);    /* 0, -ENOENT if not in memory */

/* 1 if a proper ancestor of abs is an in-memory file (the kernel would say ENOTDIR). */
int nsv_ancestor_is_file(const char *abs);
int nsv_walk_error(const char *abs);
/* The first slot to probe for directory ino in the region's dirtouch table. */
static inline uint32_t nsv_dirtouch_slot(uint64_t ino)
{
    return (uint32_t)((ino * 0x9E3779B97F4A7C15ull) >> 40) % EPH_DIRTOUCH;
}
/* Directory (dev, ino) as the kernel reported it, with its ctime *c and mtime *m:
 * raise them to the times a shim's in-memory change recorded (struct
 * eph_dirtouch).  1 if either moved. */
int nsv_dir_touched(uint64_t dev, uint64_t ino, int64_t *c, int64_t *m);
/* After a real call on a managed path failed with ENOENT: make it ENOTDIR where tmpfs would. */
void nsv_enoent(int dirfd, const char *path);
/* nsv_enoent for a caller that resolved (dirfd, path) itself before its kernel call: abs is
 * nsd_resolve_in's (or nsd_resolve's) answer for it (> 0, and path has no ".."), t its trailing
 * slash.  The same errno, without a second resolve of the name. */
void nsv_enoent_resolved(const char *abs, int t);
/* (An ENOENT may come from an in-memory directory on the way, shim/nsdir.c: then once more, after its twin.) */
int nsd_enoent(int dirfd, const char *path);
#define ENOENT_FIX(dirfd, path, call) ENOENT_FIX_RESOLVED(dirfd, path, "", 0, call)
/* ENOENT_FIX for a caller that resolved the name itself (abs, t: nsv_enoent_resolved's), or
 * could not (abs empty: as ENOENT_FIX). */
#define ENOENT_FIX_RESOLVED(dirfd, path, abs, t, call)               \
    ({                                                               \
        __typeof__(call) r_ = (call);                                \
        if (r_ < 0 && errno == ENOENT && nsd_enoent(dirfd, path))    \
            r_ = (call);                                             \
        if (r_ < 0 && errno == ENOENT) {                             \
            if ((abs)[0])                                            \
                nsv_enoent_resolved(abs, t);                         \
            else                                                     \
                nsv_enoent(dirfd, path);                             \
        }                                                            \
        r_;                                                          \
    })

#endif
