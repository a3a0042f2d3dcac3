/*
 * shim/intercept_stat.c - the stat layers: stat/lstat/fstat/fstatat/statx,
 * their *64 names, and the pre-2.33 __xstat family that older binaries call.
 * An in-memory file is answered from its shared inode without a syscall.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "paths.h"
#include "pathnorm.h"
#include "fdtable.h"
#include "fp_desc.h"
#include "fp_settle.h"
#include "fp_stat.h"
#include "nsview.h"
#include "nsdir.h"
#include "nsdirfd.h"

/*
 * After path_canon(abs) said 0 (c): a name that memory does not hold, in a directory that lives
 * only in memory, searchable on the way.  Nothing under such a directory is on disk (nsdir.c), so
 * the answer is ENOENT, which the kernel's stat gave only after walking to the missing directory,
 * and ENOENT_FIX's look after it (a second resolve, a walk of the region and the dircache over
 * every ancestor) only confirmed: unzip stats and lstats each name twice before it creates it,
 * 4,000 such calls for 1,000 files.  A search denied on the way takes the old path (the kernel's
 * EACCES), as does a name with ".." (a physical walk).
 */
static int missing_in_mem_dir(const char *path, const char *abs, int c)
{
    return c == 0 && path_canon_absent && !pn_has_dotdot(path) && nsd_mem_parent(abs, NULL, NULL) &&
           nsv_parent_searchable(abs);
}

/* 1 = answered into st (or failed with errno set; *rc holds the result), 0 = not ours. */
static int stat_managed(int dirfd, const char *path, struct stat *st, int flags, int *rc, int follow)
{
    if (path && !path[0] && (flags & AT_EMPTY_PATH)) {
        if (!ft_managed(dirfd))
            return 0;
        *rc = fstat(dirfd, st);
        return 1;
    }
    char abs[EPH_PATH_MAX];
    int trailing;
    /* An unwritable st: the kernel finds the file first, then fails to copy out (EFAULT). */
    struct stat tmp, *dst = path_bad_ptr(st) ? &tmp : st;
    if (sh_busy || nsd_resolve_stat(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0)
        return 0;
    int dir = nsd_stat(abs, dst) == 0; /* a directory in memory */
    if (dir && !nsv_parent_searchable(abs)) { /* the walk to it: search permission on the way */
        errno = EACCES;
        *rc = -1;
        return 1;
    }
    if (!dir && nsv_stat(abs, dst) < 0) {
        int c = path_canon(abs, follow || trailing);
        if (c == 0 && path_canon_absent && !pn_has_dotdot(path) && !nsd_mem_parent(abs, NULL, NULL)) {
            /* Its lstat just found no entry at this very name (no symlink on the way), and
             * memory has none: the kernel's stat would fail alike, and ENOENT_FIX's look
             * after it would make the same two calls to tell ENOENT from ENOTDIR (an
             * in-memory file above it).  A missing name costs one call, as on tmpfs.  Not in a
             * directory in memory: there the lstat's ENOENT may only say "no twin", and the
             * search permissions are the region's (ENOENT_FIX and nsdir.c answer). */
            errno = nsv_ancestor_is_file(abs) ? ENOTDIR : ENOENT;
            *rc = -1;
            return 1;
        }
        if (missing_in_mem_dir(path, abs, c)) {
            errno = ENOENT;
            *rc = -1;
            return 1;
        }
        if (c <= 0 || nsv_stat(abs, dst) < 0)
            return 0;
    }
    if ((trailing && !dir) || dst != st) {
        errno = dst != st ? EFAULT : ENOTDIR;
        *rc = -1;
    } else {
        *rc = 0;
    }
    return 1;
}

/*
 * A directory where an eviction linked a file shows the times it had before
 * (struct eph_dirtime), as long as the kernel's are still the ones that
 * link left.  1 if *c and *m were replaced.
 */
static __attribute__((noinline)) int dir_times_shown(uint64_t dev, uint64_t ino, int64_t *c, int64_t *m)
{
    struct eph_shm_header *h = sh.hdr;
    uint32_t used = atomic_load_explicit(&h->dirtimes_used, memory_order_acquire);
    for (uint32_t i = 0; i < used && i < EPH_DIRTIMES; i++) {
        struct eph_dirtime *e = &h->dirtimes[i];
        if (atomic_load_explicit(&e->ino, memory_order_relaxed) != ino)
            continue;
        for (int tries = 0; tries < 1000; tries++) {
            uint32_t s = atomic_load(&e->seq);
            if (s & 1)
                continue; /* the daemon is between two stores: a few instructions */
            uint64_t d = atomic_load(&e->dev), in = atomic_load(&e->ino);
            int64_t kc = atomic_load(&e->kctime_ns), km = atomic_load(&e->kmtime_ns);
            int64_t sc = atomic_load(&e->ctime_ns), sm = atomic_load(&e->mtime_ns);
            if (atomic_load(&e->seq) != s)
                continue;
            if (d != dev || in != ino || kc != *c || km != *m)
                break;
            *c = sc;
            *m = sm;
            return 1;
        }
    }
    return 0;
}

/* For every stat result the kernel gave: only directories can have an entry. */
static inline int dir_times_any(void)
{
    return atomic_load_explicit(&sh.attached, memory_order_acquire) &&
           (atomic_load_explicit(&sh.hdr->dirtimes_used, memory_order_relaxed) ||
            atomic_load_explicit(&sh.hdr->dirtouch_used, memory_order_relaxed));
}

/* The eviction's times first (they replace the kernel's), then the later of those and
 * the shims' in-memory changes (struct eph_dirtouch). */
static int dir_times_of(uint64_t dev, uint64_t ino, int64_t *c, int64_t *m)
{
    int r = dir_times_shown(dev, ino, c, m);
    return nsv_dir_touched(dev, ino, c, m) | r;
}

static inline void dir_times(int rc, struct stat *st)
{
    nsd_disk_dir(rc, st); /* and its subdirectories in memory count in st_nlink */
    if (likely(rc != 0 || !S_ISDIR(st->st_mode)) || !dir_times_any())
        return;
    int64_t c = eph_ns(st->st_ctim.tv_sec, st->st_ctim.tv_nsec), m = eph_ns(st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    if (dir_times_of(st->st_dev, st->st_ino, &c, &m)) {
        st->st_ctim = (struct timespec){c / 1000000000, c % 1000000000};
        st->st_mtim = (struct timespec){m / 1000000000, m % 1000000000};
    }
}

static inline void dir_times_x(int rc, struct statx *x)
{
    nsd_disk_dir_x(rc, x);
    if (likely(rc != 0 || !S_ISDIR(x->stx_mode)) || !(x->stx_mask & STATX_CTIME) || !(x->stx_mask & STATX_MTIME) ||
        !dir_times_any())
        return;
    int64_t c = eph_ns(x->stx_ctime.tv_sec, x->stx_ctime.tv_nsec), m = eph_ns(x->stx_mtime.tv_sec, x->stx_mtime.tv_nsec);
    if (dir_times_of(makedev(x->stx_dev_major, x->stx_dev_minor), x->stx_ino, &c, &m)) {
        x->stx_ctime.tv_sec = c / 1000000000;
        x->stx_ctime.tv_nsec = (uint32_t)(c % 1000000000);
        x->stx_mtime.tv_sec = m / 1000000000;
        x->stx_mtime.tv_nsec = (uint32_t)(m % 1000000000);
    }
}

/*
 * r = call, the kernel's stat into st, and the in-memory part of a directory's
 * answer added (dir_times, keyed by the disk's identity: before any
 * translation).  Made again when the daemon gave some directory its disk twin
 * meanwhile (twin_seq): its link in the parent may have been counted twice, by
 * the kernel and as a subdirectory in memory, or not at all (at most 8 times).
 */
#define DIR_STAT(r, call, st, times, mode)                                                                 \
    do {                                                                                                  \
        for (int try_ = 0;; try_++) {                                                                     \
            uint32_t seq_ = nsd_twin_seq();                                                               \
            (r) = (call);                                                                                 \
            times((r), (st));                                                                             \
            if ((r) != 0 || !S_ISDIR((st)->mode) || !nsd_twin_moved(seq_) || try_ == 8)                   \
                break;                                                                                    \
        }                                                                                                 \
    } while (0)

/* A managed path answered by the kernel (DIR_STAT): it may be a file this process had open when it moved. */
static int disk_stat_done(int rc, struct stat *st)
{
    if (rc == 0 && ft_fds)
        fp_idmap_translate(st);
    return rc;
}

/*
 * A name outside every root as spelled, which the kernel did not find: a symlink outside the roots
 * may lead into one, to a name in memory (paths.c, path_alias).  The managed stat of its canonical
 * name, or the kernel's ENOENT.
 */
static __attribute__((noinline)) int stat_enoent_outside(int dirfd, const char *path, struct stat *st, int flags)
{
    char canon[EPH_PATH_MAX];
    if (path_alias(dirfd, path, canon))
        return fstatat(AT_FDCWD, canon, st, flags & AT_SYMLINK_NOFOLLOW);
    errno = ENOENT;
    return -1;
}

/* A managed spelling's kernel stat (from a cwd above a root, a relative name may be outside them). */
static inline int stat_done_outside(int r, int dirfd, const char *path, struct stat *st, int flags)
{
    if (unlikely(r < 0) && errno == ENOENT && path_outside(dirfd, path))
        return stat_enoent_outside(dirfd, path, st, flags);
    return r;
}

/* The kernel's stat of a name outside the roots: a directory's in-memory part (as fstatat adds),
 * a name in memory reached through a symlink outside the roots. */
#define STAT_OUTSIDE(r, call, dirfd, path, st, flags)                          \
    do {                                                                      \
        DIR_STAT(r, call, st, dir_times, st_mode);                            \
        if (unlikely((r) < 0) && errno == ENOENT)                             \
            (r) = stat_enoent_outside(dirfd, path, st, flags);                \
    } while (0)

SH_EXPORT int stat(const char *path, struct stat *st)
{
    int rc;
    if (likely(!path_maybe_managed(AT_FDCWD, path))) {
        int r;
        STAT_OUTSIDE(r, REAL(stat)(path, st), AT_FDCWD, path, st, 0);
        return r;
    }
    if (!stat_managed(AT_FDCWD, path, st, 0, &rc, 1)) {
        fp_settle_moved();
        int r;
        DIR_STAT(r, ENOENT_FIX(AT_FDCWD, path, REAL(stat)(path, st)), st, dir_times, st_mode);
        return stat_done_outside(disk_stat_done(r, st), AT_FDCWD, path, st, 0);
    }
    return rc;
}

SH_EXPORT int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }

SH_EXPORT int lstat(const char *path, struct stat *st)
{
    int rc;
    if (likely(!path_maybe_managed(AT_FDCWD, path))) {
        int r;
        STAT_OUTSIDE(r, REAL(lstat)(path, st), AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
        return r;
    }
    if (!stat_managed(AT_FDCWD, path, st, 0, &rc, 0)) {
        fp_settle_moved();
        int r;
        DIR_STAT(r, ENOENT_FIX(AT_FDCWD, path, REAL(lstat)(path, st)), st, dir_times, st_mode);
        return stat_done_outside(disk_stat_done(r, st), AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
    }
    return rc;
}

SH_EXPORT int lstat64(const char *path, struct stat64 *st) { return lstat(path, (struct stat *)st); }

SH_EXPORT int fstat(int fd, struct stat *st)
{
    if (likely(!ft_managed(fd))) {
        if (unlikely(ft_mdirfd(fd)) && !path_bad_ptr(st))
            return ndf_stat(fd, st); /* a stand-in: the directory in memory it stands for */
        int r;
        DIR_STAT(r, REAL(fstat)(fd, st), st, dir_times, st_mode); /* tar's check of a directory it read through an fd */
        if (r == 0 && S_ISDIR(st->st_mode))
            fp_idmap_translate(st); /* a twin keeps the identity it had in memory (nsdir.c), after
                                     * the times, which are keyed by the disk's identity */
        return r;
    }
    if (path_bad_ptr(st)) {
        errno = EFAULT;
        return -1;
    }
    return fp_fstat(fd, st);
}

SH_EXPORT int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }

SH_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    int rc;
    __asm__("" : "+r"(path)); /* declared nonnull, but the kernel accepts NULL with AT_EMPTY_PATH */
    if (unlikely(ft_mdirfd(dirfd)) && (flags & AT_EMPTY_PATH) && (!path || (!path_bad_ptr(path) && !path[0])) &&
        !path_bad_ptr(st))
        return ndf_stat(dirfd, st);
    if (likely(!path_maybe_managed(dirfd, path)) && !(path && !path_bad_ptr(path) && !path[0] && ft_managed(dirfd))) {
        int r;
        STAT_OUTSIDE(r, REAL(fstatat)(dirfd, path, st, flags), dirfd, path, st, flags);
        return r;
    }
    if (!stat_managed(dirfd, path, st, flags, &rc, !(flags & AT_SYMLINK_NOFOLLOW))) {
        fp_settle_moved();
        int r;
        DIR_STAT(r, ENOENT_FIX(dirfd, path, REAL(fstatat)(dirfd, path, st, flags)), st, dir_times, st_mode);
        return stat_done_outside(disk_stat_done(r, st), dirfd, path, st, flags);
    }
    return rc;
}

SH_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
    return fstatat(dirfd, path, (struct stat *)st, flags);
}

SH_EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
    __asm__("" : "+r"(path));
    if (path_bad_ptr(stx)) {
        /* the kernel's answer, without our fill: EFAULT for a file it finds (in memory: ours) */
        struct statx tmp;
        int r = statx(dirfd, path, flags, mask, &tmp);
        if (r == 0)
            errno = EFAULT;
        return r == 0 ? -1 : r;
    }
    if (unlikely(ft_mdirfd(dirfd)) && (flags & AT_EMPTY_PATH) && (!path || (!path_bad_ptr(path) && !path[0])))
        return ndf_statx(dirfd, mask, stx);
    if (path && !path_bad_ptr(path) && !path[0] && (flags & AT_EMPTY_PATH) && ft_managed(dirfd)) {
        if (atomic_load(&fp_inode_of(fp_desc(dirfd))->state) != EPH_MEM)
            fp_settle(dirfd);
        if (ft_fds[dirfd].flags & FT_DISK) {
            int r = REAL(statx)(dirfd, path, flags, mask, stx);
            if (r == 0)
                fp_idmap_translate_x(stx);
            return r;
        }
        sh_tc.stats++;
        return fp_fill_statx(fp_inode_of(fp_desc(dirfd)), dirfd, mask, stx);
    }
    if (likely(!path_maybe_managed(dirfd, path)))
        goto real;
    char abs[EPH_PATH_MAX];
    int trailing;
    uint32_t inode, gen;
    if (sh_busy || nsd_resolve_stat(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0)
        goto real;
    if (nsd_statx(abs, stx) == 0) {
        if (nsv_parent_searchable(abs))
            return 0;
        errno = EACCES; /* the walk to it: search permission on the way */
        return -1;
    }
    for (int tries = 0; tries < 100; tries++) {
        int c = 1;
        if (nsv_lookup(abs, &inode, &gen) < 0 &&
            (tries || (c = path_canon(abs, !(flags & AT_SYMLINK_NOFOLLOW) || trailing)) <= 0 || nsv_lookup(abs, &inode, &gen) < 0)) {
            if (!tries && missing_in_mem_dir(path, abs, c)) {
                errno = ENOENT;
                return -1;
            }
            goto real;
        }
        struct eph_inode *ino = &sh.inodes[inode];
        fp_fill_statx(ino, -1, mask, stx);
        if (atomic_load(&ino->gen) == gen && atomic_load(&ino->state) != EPH_FREE) {
            if (trailing) {
                errno = ENOTDIR;
                return -1;
            }
            sh_tc.stats++;
            sh_count_tick();
            return 0;
        }
    }
real:
    if (!REAL(statx)) {
        errno = ENOSYS;
        return -1;
    }
    if (!ft_fds || !path_maybe_managed(dirfd, path)) {
        int r;
        DIR_STAT(r, sys.statx(dirfd, path, flags, mask, stx), stx, dir_times_x, stx_mode);
        char canon[EPH_PATH_MAX];
        if (path_alias_after(r, dirfd, path, canon))
            return statx(AT_FDCWD, canon, flags & ~AT_EMPTY_PATH, mask, stx); /* stat_enoent_outside's */
        return r;
    }
    fp_settle_moved();
    int r;
    DIR_STAT(r, ENOENT_FIX(dirfd, path, sys.statx(dirfd, path, flags, mask, stx)), stx, dir_times_x, stx_mode);
    if (r == 0)
        fp_idmap_translate_x(stx);
    char canon[EPH_PATH_MAX];
    if (path_alias_after(r, dirfd, path, canon))
        return statx(AT_FDCWD, canon, flags & ~AT_EMPTY_PATH, mask, stx);
    return r;
}

/* The old ABI: glibc < 2.33 binaries call these with a version number. */
SH_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    return stat(path, st);
}
SH_EXPORT int __xstat64(int ver, const char *path, struct stat *st) __attribute__((alias("__xstat")));

SH_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
    (void)ver;
    return lstat(path, st);
}
SH_EXPORT int __lxstat64(int ver, const char *path, struct stat *st) __attribute__((alias("__lxstat")));

SH_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
    (void)ver;
    return fstat(fd, st);
}
SH_EXPORT int __fxstat64(int ver, int fd, struct stat *st) __attribute__((alias("__fxstat")));

SH_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
    (void)ver;
    return fstatat(dirfd, path, st, flags);
}
SH_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat *st, int flags)
    __attribute__((alias("__fxstatat")));

/*
 * statvfs and statfs.  An in-memory file has no inode on disk, so the
 * kernel's walk fails (ENOENT); the answer is the file system of its
 * directory, where the file goes when memory runs short and which `df`
 * reports for the root: its size and free space are what a program that
 * checks for room before writing needs to see.
 */
/* 1 if (dirfd, path) names an in-memory file (dir: its directory), 0 if not ours, -1 errno set. */
static int vfs_mem_dir(int dirfd, const char *path, char dir[EPH_PATH_MAX])
{
    char abs[EPH_PATH_MAX];
    int trailing;
    uint32_t inode, gen;
    if (sh_busy || path_resolve(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0)
        return 0;
    if (nsv_lookup(abs, &inode, &gen) < 0 && (path_canon(abs, 1) <= 0 || nsv_lookup(abs, &inode, &gen) < 0))
        return 0;
    if (trailing) {
        errno = ENOTDIR;
        return -1;
    }
    char *slash = strrchr(abs, '/');
    size_t n = slash == abs ? 1 : (size_t)(slash - abs);
    memcpy(dir, abs, n);
    dir[n] = '\0';
    return 1;
}

/* The directory of the in-memory file behind managed fd (1), or 0 (unlinked: ask about the fd). */
static int vfs_fd_dir(int fd, char dir[EPH_PATH_MAX])
{
    if (atomic_load(&fp_inode_of(fp_desc(fd))->state) != EPH_MEM)
        fp_settle(fd);
    if (ft_fds[fd].flags & FT_DISK)
        return 0;
    const char *p = fp_inode_of(fp_desc(fd))->path;
    const char *slash = strrchr(p, '/');
    if (p[0] != '/' || !slash)
        return 0;
    size_t n = slash == p ? 1 : (size_t)(slash - p);
    memcpy(dir, p, n);
    dir[n] = '\0';
    return 1;
}

#define VFS_PATH(fn, T)                                                        \
    SH_EXPORT int fn(const char *path, struct T *b)                            \
    {                                                                          \
        char dir[EPH_PATH_MAX];                                                \
        int r_;                                                                \
        if (likely(!path_maybe_managed(AT_FDCWD, path))) {                     \
            r_ = REAL(fn)(path, b);                                            \
            if (unlikely(r_ < 0) && errno == ENOENT && path_alias(AT_FDCWD, path, dir)) \
                return fn(dir, b); /* through a symlink outside the roots */   \
            return r_;                                                         \
        }                                                                      \
        int m = vfs_mem_dir(AT_FDCWD, path, dir);                              \
        if (m < 0)                                                             \
            return -1;                                                         \
        if (m > 0) {                                                           \
            if (path_bad_ptr(b)) {                                             \
                errno = EFAULT;                                                \
                return -1;                                                     \
            }                                                                  \
            return sys.fn(dir, b);                                             \
        }                                                                      \
        r_ = ENOENT_FIX(AT_FDCWD, path, sys.fn(path, b));                      \
        if (path_alias_after(r_, AT_FDCWD, path, dir))                         \
            return fn(dir, b);                                                 \
        return r_;                                                             \
    }
#define VFS_FD(fn, T, pathfn)                                                  \
    SH_EXPORT int fn(int fd, struct T *b)                                      \
    {                                                                          \
        char dir[EPH_PATH_MAX];                                                \
        ndf_settle_if(fd);                                                     \
        if (likely(!ft_managed(fd)) || !vfs_fd_dir(fd, dir))                   \
            return REAL(fn)(fd, b);                                            \
        if (path_bad_ptr(b)) {                                                 \
            errno = EFAULT;                                                    \
            return -1;                                                         \
        }                                                                      \
        return sys.pathfn(dir, b);                                             \
    }
VFS_PATH(statvfs, statvfs)
VFS_PATH(statfs, statfs)
VFS_FD(fstatvfs, statvfs, statvfs)
VFS_FD(fstatfs, statfs, statfs)
#undef VFS_PATH
#undef VFS_FD
SH_EXPORT int statvfs64(const char *path, struct statvfs64 *b) { return statvfs(path, (struct statvfs *)b); }
SH_EXPORT int statfs64(const char *path, struct statfs64 *b) { return statfs(path, (struct statfs *)b); }
SH_EXPORT int fstatvfs64(int fd, struct statvfs64 *b) { return fstatvfs(fd, (struct statvfs *)b); }
SH_EXPORT int fstatfs64(int fd, struct statfs64 *b) { return fstatfs(fd, (struct statfs *)b); }
