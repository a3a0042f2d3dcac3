/*
 * shim/intercept_stat.c - the stat layers: stat/lstat/fstat/fstatat/statx,
 * their *64 names, and the pre-2.33 __xstat family that older binaries call.
 * An in-memory file is answered from its shared inode without a syscall.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "shim.h"

/* 1 = answered into st (or failed with errno set; *rc holds the result), 0 = not ours. */
static int stat_managed(int dirfd, const char *path, struct stat *st, int flags, int *rc, int follow)
{
    if (path && !path[0] && (flags & AT_EMPTY_PATH)) {
        if (!ft_managed(dirfd))
            return 0;
        *rc = fp_fstat(dirfd, st);
        return 1;
    }
    char abs[EPH_PATH_MAX];
    int trailing;
    if (sh_busy || path_resolve(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0)
        return 0;
    if (ns_stat(abs, st) < 0 && (path_canon(abs, follow || trailing) <= 0 || ns_stat(abs, st) < 0))
        return 0;
    if (trailing) {
        errno = ENOTDIR;
        *rc = -1;
    } else {
        *rc = 0;
    }
    return 1;
}

/* A managed path answered by the kernel: it may be a file this process had open when it moved. */
static int disk_stat_done(int rc, struct stat *st)
{
    if (rc == 0 && ft_fds)
        fp_idmap_translate(st);
    return rc;
}

SH_EXPORT int stat(const char *path, struct stat *st)
{
    int rc;
    if (likely(!path_maybe_managed(AT_FDCWD, path)))
        return REAL(stat)(path, st);
    if (!stat_managed(AT_FDCWD, path, st, 0, &rc, 1)) {
        fp_settle_moved();
        return disk_stat_done(ENOENT_FIX(AT_FDCWD, path, REAL(stat)(path, st)), st);
    }
    return rc;
}

SH_EXPORT int stat64(const char *path, struct stat64 *st) { return stat(path, (struct stat *)st); }

SH_EXPORT int lstat(const char *path, struct stat *st)
{
    int rc;
    if (likely(!path_maybe_managed(AT_FDCWD, path)))
        return REAL(lstat)(path, st);
    if (!stat_managed(AT_FDCWD, path, st, 0, &rc, 0)) {
        fp_settle_moved();
        return disk_stat_done(ENOENT_FIX(AT_FDCWD, path, REAL(lstat)(path, st)), st);
    }
    return rc;
}

SH_EXPORT int lstat64(const char *path, struct stat64 *st) { return lstat(path, (struct stat *)st); }

SH_EXPORT int fstat(int fd, struct stat *st)
{
    if (likely(!ft_managed(fd)))
        return REAL(fstat)(fd, st);
    return fp_fstat(fd, st);
}

SH_EXPORT int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }

SH_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
    int rc;
    __asm__("" : "+r"(path)); /* declared nonnull, but the kernel accepts NULL with AT_EMPTY_PATH */
    if (likely(!path_maybe_managed(dirfd, path)) && !(path && !path[0] && ft_managed(dirfd)))
        return REAL(fstatat)(dirfd, path, st, flags);
    if (!stat_managed(dirfd, path, st, flags, &rc, !(flags & AT_SYMLINK_NOFOLLOW))) {
        fp_settle_moved();
        return disk_stat_done(ENOENT_FIX(dirfd, path, REAL(fstatat)(dirfd, path, st, flags)), st);
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
    if (path && !path[0] && (flags & AT_EMPTY_PATH) && ft_managed(dirfd)) {
        if (atomic_load(&fp_inode_of(fp_desc(dirfd))->state) != EPH_MEM)
            fp_settle(dirfd);
        if (ft_fds[dirfd].flags & FT_DISK) {
            int r = REAL(statx)(dirfd, path, flags, mask, stx);
            if (r == 0)
                fp_idmap_translate_x(stx);
            return r;
        }
        sh_tc.stats++;
        return fp_fill_statx(fp_inode_of(fp_desc(dirfd)), mask, stx);
    }
    if (likely(!path_maybe_managed(dirfd, path)))
        goto real;
    char abs[EPH_PATH_MAX];
    int trailing;
    uint32_t inode, gen;
    if (sh_busy || path_resolve(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0)
        goto real;
    for (int tries = 0; tries < 100; tries++) {
        if (ns_lookup(abs, &inode, &gen) < 0 && (tries || path_canon(abs, !(flags & AT_SYMLINK_NOFOLLOW) || trailing) <= 0 || ns_lookup(abs, &inode, &gen) < 0))
            goto real;
        struct eph_inode *ino = &sh.inodes[inode];
        fp_fill_statx(ino, mask, stx);
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
    if (!ft_fds || !path_maybe_managed(dirfd, path))
        return sys.statx(dirfd, path, flags, mask, stx);
    fp_settle_moved();
    int r = ENOENT_FIX(dirfd, path, sys.statx(dirfd, path, flags, mask, stx));
    if (r == 0)
        fp_idmap_translate_x(stx);
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
