/*
 * shim/nsdir.h - directories made in memory by the calling process (nsdir.c):
 * mkdir, rmdir and stat of them under the region's ns_lock, and a disk twin
 * asked of the daemon before anything else meets them.
 */
#ifndef SHIM_NSDIR_H
#define SHIM_NSDIR_H

#include <sys/stat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ephemera/proto.h"

/*
 * The hook of path_resolve: abs (managed, from p) is about to be used by a
 * call that only the kernel or the daemon can answer, so every in-memory
 * directory that is abs or an ancestor of it gets its disk twin first.
 * Nothing to do (one load) while no directory is in memory.
 */
void nsd_resolved(const char *abs, const char *p);
/* A path with ".." is about to be walked by the kernel: every in-memory directory gets its twin. */
void nsd_dotdot(void);
/* After a kernel call on (dirfd, path) failed with ENOENT: 1 if in-memory directories on the way
 * got their twins just now (the caller makes the call again), else 0; errno kept. */
int nsd_enoent(int dirfd, const char *path);
/* abs is a directory in memory (for the checks that walk a path's ancestors). */
int nsd_is_dir(const char *abs);
/* Any directory in memory at all (the region's mdirs_live), and the region attached. */
int nsd_dirs_live(void);
/* abs's parent is a directory in memory: 1 with its slot and generation (either may be NULL), else 0. */
int nsd_mem_parent(const char *abs, uint32_t *idx, uint32_t *gen);
/* dir is a directory in memory: 1 if the caller may amode it (search on every directory on the
 * way, in memory by their modes, on disk by the kernel's), 0 if not; -1: dir is none in memory. */
int nsd_allows(const char *dir, int amode);
/* Files may live inside directories in memory (on unless EPHEMERA_MEMDIR_FILES=0, nsdir.c). */
int nsd_files_in_memory(void);
/* A switch of this feature that is on unless the environment says name=0, read once into *on (-1
 * until then): nsd_files_in_memory, ndf_on.  Inline, so the answer costs them one load as before. */
static inline int nsd_switch_on(const char *name, int *on)
{
    if (*on < 0) {
        const char *v = getenv(name);
        *on = !(v && strcmp(v, "0") == 0);
    }
    return *on;
}
/* path_resolve for the calls that serve a file in an in-memory directory from the region (open,
 * unlink, rename, link): no twin when the name's parent is a directory in memory and the name
 * itself is none; otherwise the twins nsd_resolved makes. */
int nsd_resolve_in(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing);
/* nsd_resolve_in for an open that a stand-in fd can serve (nsdirfd.c): 2 with the slot and
 * generation when the path is itself a directory in memory (no twin made), else its result. */
int nsd_resolve_dir(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing, uint32_t *idx, uint32_t *gen);
/* A change of the directory in memory at abs (slot idx of generation gen), already checked
 * against the caller: apply(its slot, arg) under the namespace lock, 0; -2 when it is in memory no
 * longer or (by_path) a directory on the way denies search: the caller goes the kernel's way. */
int nsd_change(const char *abs, uint32_t idx, uint32_t gen, int by_path, void (*apply)(struct eph_inode *, const void *),
               const void *arg);
/* abs is a directory in memory: its slot (and generation), else -1. */
int nsd_dir_slot(const char *abs, uint32_t *gen);
/* Give the in-memory directories on abs their disk twins (the old way, for a stand-in fd). */
void nsd_give_twin(const char *abs);
/* After nsd_resolve_in: the path goes through a name missing below a directory in memory, so
 * every call on it fails with ENOENT, and no twin was made: the caller answers that itself. */
int nsd_missing(void);
/* The caller answers ENOENT for (dirfd, p) itself (a name missing in an in-memory directory):
 * ENOENT_FIX must not make twins and ask the kernel again. */
void nsd_quiet_enoent(int dirfd, const char *p);
/* In ENOENT_FIX after nsd_enoent: 1 when that ENOENT was such an answer (nsv_enoent has nothing
 * to refine: no in-memory file is on the way). */
int nsd_enoent_final(void);
/* path_resolve for the calls nsdir.c answers itself (no twin is made). */
int nsd_resolve(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing);
/* The same for the stat family: when nsd_stat then finds no directory, the kernel's ENOENT for
 * this very path makes no twin either (nsd_enoent). */
int nsd_resolve_stat(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing);

/* mkdir(at) and rmdir / unlinkat(AT_REMOVEDIR): 0, -1 with errno, or -2: not
 * a case done here (the caller goes on as before, which makes any twin it needs).
 * On 0, abs holds the absolute path of the directory made or removed in memory
 * (for the inotify hooks, which must not resolve it again: that makes a twin). */
int nsd_mkdir(int dirfd, const char *path, mode_t mode, char abs[EPH_PATH_MAX]);
int nsd_rmdir(int dirfd, const char *path, char abs[EPH_PATH_MAX]);

/*
 * rename(a, b) of directory a in memory (slot s of generation sg), every check of the kernel's
 * already made by the caller (intercept_names.c): b is free (t -1: in memory, and on disk in a
 * disk parent, looked at again under the lock) or the empty directory in memory t of generation
 * tg, which goes.  Made in the region under ns_lock in one record, with everything below a
 * (EPH_JOP_MOVETREE): 0; -1 with errno (ENOTEMPTY: t filled meanwhile); -3 when a name or a
 * parent changed since the caller looked (it decides again); -2 when a file below is on its way
 * to disk, a name would not fit, a name is on disk at b, or b is on another file system: the
 * caller goes the old way (the twins, then the kernel's rename).
 */
int nsd_rename_dir(const char *a, uint32_t s, uint32_t sg, const char *b, int t, uint32_t tg);

/* One name of an exchange: a directory in memory (its slot), or a file in memory (the file's
 * slot, as nsv_lookup gives it: the name may be one of its further names). */
struct nsd_xside {
    uint32_t slot, gen;
    int dir;
};
/*
 * RENAME_EXCHANGE of a and b, both in memory, at least one a directory, every check of the
 * kernel's made by the caller: one record of three EPH_JOP_XTREE steps.  0; -1 with errno; -3
 * when a name or a parent changed since the caller looked (it decides again); -2 when a file below
 * is on its way to disk, a name would not fit, or the two are on different file systems: the
 * caller goes the old way.
 */
int nsd_exchange(const char *a, const struct nsd_xside *xa, const char *b, const struct nsd_xside *xb);

/* stat of abs (from nsd_resolve) if it is an in-memory directory: 0, or -1 (not one). */
int nsd_stat(const char *abs, struct stat *st);
struct statx;
int nsd_statx(const char *abs, struct statx *stx);
/* A kernel stat of a managed directory: count its in-memory subdirectories in st_nlink. */
void nsd_disk_dir(int rc, struct stat *st);
/* twin_seq before a kernel stat; whether a twin was under way or made since (then stat again). */
uint32_t nsd_twin_seq(void);
int nsd_twin_moved(uint32_t seq);
void nsd_disk_dir_x(int rc, struct statx *stx);

/* In a fork child (nsf_after_fork): the slots kept for reuse are the parent's. */
void nsd_after_fork(void);

/* Before a symlink is made under a root (dirfd, path): directories stay on
 * disk while it exists, and those in memory get their twins.  1 when it was
 * counted; then nsd_symlink_done with the kernel's result. */
int nsd_symlink(int dirfd, const char *path);
/* No symlink can be under a root as far as the shims know (none at the start, none made since
 * that still exists, every program ran with the shim): a name there is never one. */
int nsd_no_symlinks(void);
void nsd_symlink_done(int counted, int rc);
/* unlink(dirfd, path) of a symlink the shims counted, under the lock, and the
 * count down: the kernel's result, or -2 (not such a symlink: the caller
 * unlinks as before). */
int nsd_symlink_unlink(int dirfd, const char *path);
/* After a kernel link made (dirfd, path): a symlink with a second name keeps
 * directories on disk for good. */
void nsd_linked(int dirfd, const char *path);

#endif
