/*
 * shim/intercept_open.c - the open family.  A managed path that names an
 * in-memory file is opened from this process's cache or through the daemon
 * (CREATE); a new name is created here when it is the common case
 * (nsfast.c), else the daemon answers with a memfd fd or tells us to use the
 * disk.  Everything else goes to the kernel untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "paths.h"
#include "fdtable.h"
#include "dircache.h"
#include "diskbytes.h"
#include "rpc.h"
#include "fp_desc.h"
#include "fp_settle.h"
#include "fp_size.h"
#include "nsview.h"
#include "nsdir.h"
#include "nsdirfd.h"
#include "nsfast.h"
#include "inotify.h"
#include "intercept_names.h"
#include "intercept_stdio.h"

/* The kernel keeps every open flag in f_flags except these (F_GETFL shows the rest). */
#define DESC_FLAGS (~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC))

/* The kernel handed out fd: if our table still names it, that entry is stale. */
static void claim_fd(int fd)
{
    if (fd >= 0 && ft_managed(fd))
        ft_forget(fd);
    else
        db_forget(fd);
}

int open_real(int dirfd, const char *path, int flags, mode_t mode);
int open_real(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd = REAL(openat)(dirfd, path, flags, mode);
    claim_fd(fd);
    return fd;
}

/* An in-memory file opened by the daemon (or made by nsf_create, whose pool fd
 * priv becomes our private fd of it; -1 otherwise): attach a description to kfd. */
static int adopt_priv(int kfd, uint32_t inode, uint32_t gen, int flags, int cloexec_right, int priv, const char *abs)
{
    uint32_t desc;
    int e, ddesc = nsf_ddesc_took; /* kfd is on the daemon's description (nsf_daemon_fd) */
    nsf_ddesc_took = 0;
    claim_fd(kfd);
    if (!cloexec_right && !(flags & O_CLOEXEC) && sys.fcntl(kfd, F_SETFD, 0) < 0)
        goto err_errno;
    if ((e = fp_desc_alloc(inode, gen, flags & DESC_FLAGS, &desc)) < 0) {
        ft_inflight_clear();
        fp_inode_release(inode, gen);
        sys.close(kfd);
        if (priv >= 0)
            sys.close(priv);
        errno = -e;
        return -1;
    }
    ft_inflight_desc(desc, kfd);
    if ((e = ft_install_priv(kfd, desc, kfd, priv)) < 0) {
        ft_inflight_clear();
        fp_desc_unref(desc);
        sys.close(kfd);
        errno = -e;
        return -1;
    }
    ft_inflight_clear(); /* listed under kfd now */
    if (ddesc)
        ft_ddesc_mark(kfd, (flags & O_CLOEXEC) != 0);
    if (flags & O_TRUNC) {
        if (atomic_load(&sh.inodes[inode].size) > 0 && (e = fp_set_size_fd(kfd, 0)) < 0) {
            ft_forget(kfd);
            sys.close(kfd);
            errno = -e;
            return -1;
        }
        fp_open_trunc(kfd);
    }
    if (kfd <= 2)
        stdio_std_managed(kfd);
    if (ino_on())
        ino_opened(kfd, flags, abs);
    return kfd;
err_errno:
    e = errno;
    ft_inflight_clear();
    fp_inode_release(inode, gen);
    sys.close(kfd);
    if (priv >= 0)
        sys.close(priv);
    errno = e;
    return -1;
}

static int adopt(int kfd, uint32_t inode, uint32_t gen, int flags, int cloexec_right, const char *abs)
{
    return adopt_priv(kfd, inode, gen, flags, cloexec_right, -1, abs);
}

/*
 * Reopen of an in-memory file this process has cached: no daemon round trip.
 * Takes the open_count reference itself, then checks that the name still
 * leads to the same live inode (the daemon frees an inode only when it is
 * both unnamed and unopened, so after that check it cannot go away).
 * Returns the fd, -1 with errno, or -2 to take the daemon path.
 */
static int open_cached(const char *abs, uint32_t inode, uint32_t gen, int flags)
{
    struct eph_inode *ino = &sh.inodes[inode];
    int acc = flags & O_ACCMODE, want = 0;
    if (acc == O_RDONLY || acc == O_RDWR)
        want |= R_OK;
    if (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC))
        want |= W_OK;
    atomic_fetch_add(&ino->open_count, 1);
    ft_inflight_inode(inode, gen);
    uint32_t i2, g2;
    if (atomic_load(&ino->state) != EPH_MEM || atomic_load(&ino->gen) != gen ||
        nsv_lookup(abs, &i2, &g2) < 0 || i2 != inode || g2 != gen) {
        ft_inflight_clear();
        fp_inode_release(inode, gen);
        return -2;
    }
    if (!names_access_ok(ino, want, 1)) {
        ft_inflight_clear();
        fp_inode_release(inode, gen);
        errno = EACCES;
        return -1;
    }
    int dd, fd = ft_cached_dup(inode, gen, flags & O_CLOEXEC, &dd), priv = -1;
    nsf_ddesc_took = fd >= 0 && dd; /* a dup of a private fd on the daemon's description is on it too */
    if (fd < 0) {
        /* Nothing cached here (a small file keeps no private fd, FT_NO_PRIV): open
         * the daemon's memfd, one call as the kernel's open; the daemon if refused. */
        fd = nsf_daemon_fd(ino->mem_fd, flags & O_CLOEXEC);
        priv = FT_NO_PRIV;
    }
    if (fd < 0) {
        ft_inflight_clear();
        fp_inode_release(inode, gen);
        return -2;
    }
    atomic_store_explicit(&ino->last_use, sh_lru_ns(), memory_order_relaxed);
    return adopt_priv(fd, inode, gen, flags, 1, priv, abs);
}

/* A managed path the kernel opens (on disk): a writer's file has its bytes counted. */
static int open_disk(int dirfd, const char *path, int flags, mode_t mode)
{
    if (unlikely(ft_mdirfd(dirfd)) && path[0] != '/') {
        /* A stand-in whose directory got its twin since this call named it (the daemon's, for an
         * eviction): the kernel's open goes to the twin, not to the removed stand-in (ENOENT). */
        char p[EPH_PATH_MAX];
        ndf_path(dirfd, p);
    }
    int fd = open_real(dirfd, path, flags, mode);
    if (unlikely(fd < 0) && errno == ENOENT && path[0] != '/' && ndf_moved(dirfd))
        fd = open_real(dirfd, path, flags, mode); /* the twin came after the look above */
    if (fd >= 0 && ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)))
        db_opened(fd);
    if (fd >= 0 && !(flags & O_PATH))
        ft_mark_root(fd); /* its syncs answer at once */
    return fd;
}

/*
 * The kernel's open of a managed name that is in memory nowhere (the daemon's answer), when it
 * may create the name (O_CREAT): the create is made under ns_lock, after looking again that the
 * name did not go to memory meanwhile, and moves disk_names.  A create in memory (the daemon's
 * CREATE, a shim's nsf_create, a rename or link onto the name) decides from a look at the disk;
 * a disk name made without the lock could land after that look and before its insert, and stay
 * hidden under the in-memory file: one name, two files, each process writing the one it opened.
 * Seen as SQLite's WAL with two files: a new connection read frames that the index said another
 * writer had written, into the other file, and got SQLITE_IOERR_SHORT_READ (test/README.md,
 * "hidden-create").  Only the create is made under the lock, with O_EXCL (it cannot block, as an
 * open of a FIFO would); a name that is there is opened after the unlock, with the caller's
 * flags minus O_CREAT (the same answer: it makes no name).  -2: the name is in memory now.
 */
#define OPEN_CREATE_TRIES 8

static int open_disk_create(int dirfd, const char *path, const char *abs, int flags, mode_t mode)
{
    if (!(flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE || nsf_held)
        return open_disk(dirfd, path, flags, mode);
    for (int tries = 0; tries < OPEN_CREATE_TRIES; tries++) {
        uint32_t i, g;
        if (nsf_hold() < 0)
            return -1;
        if (nsv_lookup(abs, &i, &g) == 0) {
            nsf_unhold();
            return -2;
        }
        /* the caller's path, for the kernel's own checks (a final symlink gives EEXIST here:
         * the open below follows it, and one that leads nowhere ends in the caller's open) */
        int fd = open_disk(dirfd, path, flags | O_EXCL, mode), e = errno;
        if (fd >= 0)
            nsf_disk_named();
        nsf_unhold();
        if (fd >= 0 || (flags & O_EXCL)) {
            errno = e;
            return fd;
        }
        /* Not made: the name may be there, and then the kernel's open answers as without
         * O_CREAT (O_EXCL can say EACCES first, where the caller may not write the directory) */
        fd = open_disk(dirfd, path, flags & ~O_CREAT, mode);
        int oe = errno;
        if (fd >= 0 || oe != ENOENT) {
            /* O_CREAT on a directory is EISDIR, for reading too and before the permission checks */
            struct stat st;
            int dir = fd >= 0 ? (flags & O_ACCMODE) == O_RDONLY && sys.fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)
                              : sys.fstatat(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) == 0 &&
                                    S_ISDIR(st.st_mode);
            if (dir) {
                if (fd >= 0)
                    sys.close(fd);
                oe = EISDIR;
                fd = -1;
            }
            errno = oe;
            return fd;
        }
        if (e != EEXIST) {
            errno = e; /* nothing there: the create's own answer */
            return -1;
        }
        /* removed since our try: make it again */
    }
    return open_disk(dirfd, path, flags, mode);
}

#define OPEN_AGAIN (-3) /* open_managed_try: the name went to memory meanwhile, look again */

/*
 * A name outside every root as spelled, which a symlink outside them may lead into one (paths.c,
 * path_alias).  A create asks first, while anything is in memory: the kernel would make a second
 * file on disk under a name in memory (one name, two files), or fail in a directory in memory.
 * Any other open asks only after the kernel's ENOENT, the answer it gives for a name in memory.
 * managed: the open of the canonical name (open_managed inside a change, open_managed_path).
 */
static __attribute__((noinline)) int open_outside(int dirfd, const char *path, int flags, mode_t mode,
                                                  int (*managed)(int, const char *, int, mode_t))
{
    char canon[EPH_PATH_MAX];
    if ((flags & O_CREAT) && path_alias(dirfd, path, canon))
        return managed(AT_FDCWD, canon, flags, mode);
    int fd = open_real(dirfd, path, flags, mode);
    if (fd < 0 && errno == ENOENT && !(flags & O_CREAT) && path_alias(dirfd, path, canon))
        return managed(AT_FDCWD, canon, flags, mode);
    return fd;
}

static int open_managed_try(int dirfd, const char *path, int flags, mode_t mode, int last);

/* open_disk after nsd_resolve_in: a name in an in-memory directory gets the twins it skipped,
 * since the kernel now walks the path (open_common's ENOENT_FIX cannot make the call again). */
static int open_disk_in(int dirfd, const char *path, int flags, mode_t mode, const char *abs)
{
    nsd_resolved(abs, path);
    return open_disk(dirfd, path, flags, mode);
}

int open_managed(int dirfd, const char *path, int flags, mode_t mode);
int open_managed(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd = OPEN_AGAIN;
    for (int tries = 0; fd == OPEN_AGAIN; tries++)
        fd = open_managed_try(dirfd, path, flags, mode, tries + 1 >= OPEN_CREATE_TRIES);
    return fd;
}

static int open_managed_try(int dirfd, const char *path, int flags, mode_t mode, int last)
{
    char abs[EPH_PATH_MAX];
    int trailing = 0;
    int tmpfile = (flags & O_TMPFILE) == O_TMPFILE;
    /* A directory in memory opened to be read or named: a stand-in fd, no twin (nsdirfd.c). */
    int dir_ok = ndf_on() && !tmpfile && !(flags & (O_CREAT | O_TRUNC)) && ((flags & O_ACCMODE) == O_RDONLY || (flags & O_PATH));
    uint32_t didx = 0, dgen = 0;
    int rr = sh_busy ? 0
             : dir_ok ? nsd_resolve_dir(dirfd, path, abs, &trailing, &didx, &dgen)
                      : nsd_resolve_in(dirfd, path, abs, &trailing);
    if (rr == 0 && path_outside(dirfd, path))
        return open_outside(dirfd, path, flags, mode, open_managed); /* from a cwd above a root, a directory fd */
    if (rr <= 0)
        return open_real(dirfd, path, flags, mode);
    if (rr == 2) {
        int fd = sh_attach() < 0 ? -2 : ndf_open(abs, didx, dgen, flags);
        if (fd != -2)
            return fd;
        nsd_resolved(abs, path); /* not served here: the twin, and the kernel's open of it */
        return open_disk(dirfd, path, flags, mode);
    }
    if (path_is_root(abs) && !tmpfile)
        return open_disk(dirfd, path, flags, mode); /* the root itself, a directory on disk */
    if (sh_attach() < 0)
        return open_real(dirfd, path, flags, mode);
    /* before any look at the disk below (nsf_create) */
    uint32_t disk_seen = nsf_disk_names();
    if (nsd_missing() && (tmpfile || (flags & (O_CREAT | O_DIRECTORY)) != (O_CREAT | O_DIRECTORY))) {
        nsd_quiet_enoent(dirfd, path); /* a name missing below a directory in memory */
        errno = ENOENT;
        return -1;
    }
    uint32_t inode, gen;
    int absent = 0; /* path_canon's lstat found nothing at abs */
    int in_mem = nsv_lookup(abs, &inode, &gen) == 0;
    if (tmpfile && (in_mem || (path_canon(abs, 1) > 0 && nsv_lookup(abs, &inode, &gen) == 0))) {
        errno = ENOTDIR; /* O_TMPFILE names a directory */
        return -1;
    }
    if (!in_mem && !tmpfile) {
        /* O_CREAT|O_EXCL never follows a final symlink */
        int c = path_canon(abs, !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL));
        if (c < 0)
            return open_disk_in(dirfd, path, flags, mode, abs);
        absent = path_canon_absent;
        if (c > 0)
            in_mem = nsv_lookup(abs, &inode, &gen) == 0;
    }
    if (!in_mem && !(flags & O_CREAT) && !tmpfile) {
        if (!trailing && nsd_mem_parent(abs, NULL, NULL) && !nsd_is_dir(abs) && nsv_parent_searchable(abs)) {
            /* No such name in a directory in memory: the kernel's answer, without a twin. */
            nsd_quiet_enoent(dirfd, path);
            errno = ENOENT;
            return -1;
        }
        return open_disk_in(dirfd, path, flags, mode, abs);
    }
    if (!in_mem && (tmpfile ? !nsv_dir_allows(abs, W_OK | X_OK) : !nsv_parent_searchable(abs)))
        return open_disk_in(dirfd, path, flags, mode, abs); /* the kernel's EACCES from its walk */
    if (!tmpfile && (flags & (O_CREAT | O_DIRECTORY)) == (O_CREAT | O_DIRECTORY))
        return open_disk_in(dirfd, path, flags, mode, abs); /* the kernel's EINVAL */
    ft_inflight_slot(); /* before any reference is taken below: the ledger and this thread's slot */
    if (in_mem) {
        if (trailing && (flags & O_CREAT)) {
            errno = EISDIR;
            return -1;
        }
        if (flags & O_DIRECTORY || trailing) {
            errno = ENOTDIR;
            return -1;
        }
        if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
            errno = EEXIST;
            return -1;
        }
        if (flags & O_PATH) {
            /* An O_PATH fd only names the file: give the kernel's view of the memfd, held as the
             * attribute calls hold it (a slot freed since the lookup gives its memfd and fd number
             * to other files).  A file that left memory meanwhile is the kernel's to open. */
            struct eph_inode *ino = &sh.inodes[inode];
            int fd = fp_hold(ino, gen, EPH_MEM);
            if (fd < 0 && (atomic_load(&ino->gen) != gen || atomic_load(&ino->state) != EPH_MEM)) {
                fp_wait_moving(ino, gen);
                return open_disk_in(dirfd, path, flags, mode, abs);
            }
            if (fd >= 0)
                claim_fd(fd);
            if (fd >= 0 && !(flags & O_CLOEXEC) && sys.fcntl(fd, F_SETFD, 0) < 0) {
                int e = errno;
                sys.close(fd);
                errno = e;
                return -1;
            }
            return fd;
        }
        int fd = open_cached(abs, inode, gen, flags);
        if (fd != -2)
            return fd;
    } else if (!tmpfile && (trailing || (flags & (O_DIRECTORY | O_PATH)))) {
        return open_disk_in(dirfd, path, flags, mode, abs);
    }
    if (!in_mem && !tmpfile && !trailing && (flags & O_CREAT) && !(flags & (O_DIRECTORY | O_PATH))) {
        /* A new name: made here, under the namespace lock, when it is the common case. */
        uint32_t ni, ng;
        int priv;
        int kfd = nsf_create(abs, flags, (mode_t)(mode & 07777 & ~sh_umask()), absent, disk_seen, &ni, &ng, &priv);
        if (kfd >= 0)
            return adopt_priv(kfd, ni, ng, flags, 1, priv, abs);
        if (kfd == -1)
            return -1;
    }
    struct eph_req req;
    struct eph_resp resp;
    int kfd;
    rpc_req_init(&req, EPH_OP_CREATE);
    req.flags = flags;
    req.mode = (uint32_t)(mode & 07777 & ~sh_umask());
    memcpy(req.path, abs, strlen(abs) + 1);
    req.inflight1 = (uint32_t)(ft_inflight_slot() + 1);
    if (rpc_call(&req, &resp, &kfd) < 0)
        return open_disk_in(dirfd, path, flags, mode, abs);
    if (resp.status < 0) {
        if (kfd >= 0)
            sys.close(kfd);
        errno = -resp.status;
        return -1;
    }
    if (resp.where != EPH_WHERE_MEM || kfd < 0) {
        if (kfd >= 0)
            sys.close(kfd);
        if (resp.where == EPH_WHERE_MEM) {
            ft_inflight_clear();
            fp_inode_release(resp.inode, resp.gen);
        }
        nsd_resolved(abs, path); /* the twins the walk skipped: the kernel walks the path now */
        int fd = open_disk_create(dirfd, path, abs, flags, mode);
        if (fd != -2)
            return fd;
        /* made in memory meanwhile: open that (bounded: each try found it there) */
        return last ? open_disk(dirfd, path, flags, mode) : OPEN_AGAIN;
    }
    return adopt(kfd, resp.inode, resp.gen, flags, 0, abs);
}

static int open_managed_path(int dirfd, const char *path, int flags, mode_t mode)
{
    ft_change_begin(); /* from the kernel fd to its entry: a fork waits */
    dc_miss_begin(); /* a missing parent is stat'ed once per call (git's objects/xx) */
    int fd = open_managed(dirfd, path, flags, mode);
    int e = errno;
    ft_change_end();
    errno = e;
    fd = ENOENT_FIX(dirfd, path, fd);
    e = errno;
    dc_miss_end();
    errno = e;
    return fd;
}

/* The kernel's ENOENT for a name outside the roots (open_outside, without a second kernel open). */
static __attribute__((noinline)) int open_enoent_outside(int dirfd, const char *path, int flags, mode_t mode)
{
    char canon[EPH_PATH_MAX];
    if (path_alias(dirfd, path, canon))
        return open_managed_path(AT_FDCWD, canon, flags, mode);
    errno = ENOENT;
    return -1;
}

static inline int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
    if (likely(!path_maybe_managed(dirfd, path))) {
        if (flags & O_CREAT)
            return open_outside(dirfd, path, flags, mode, open_managed_path);
        int fd = open_real(dirfd, path, flags, mode);
        if (likely(fd >= 0) || errno != ENOENT)
            return fd;
        return open_enoent_outside(dirfd, path, flags, mode);
    }
    return open_managed_path(dirfd, path, flags, mode);
}

#define TAKE_MODE(flags, last)                                   \
    mode_t mode = 0;                                             \
    if ((flags) & O_CREAT || ((flags) & O_TMPFILE) == O_TMPFILE) { \
        va_list ap;                                              \
        va_start(ap, last);                                      \
        mode = (mode_t)va_arg(ap, int);                          \
        va_end(ap);                                              \
    }

SH_EXPORT int open(const char *path, int flags, ...)
{
    TAKE_MODE(flags, flags);
    return open_common(AT_FDCWD, path, flags, mode);
}

SH_EXPORT int open64(const char *path, int flags, ...)
{
    TAKE_MODE(flags, flags);
    return open_common(AT_FDCWD, path, flags, mode);
}

SH_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    TAKE_MODE(flags, flags);
    return open_common(dirfd, path, flags, mode);
}

SH_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    TAKE_MODE(flags, flags);
    return open_common(dirfd, path, flags, mode);
}

SH_EXPORT int creat(const char *path, mode_t mode)
{
    return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

SH_EXPORT int creat64(const char *path, mode_t mode)
{
    return open_common(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* Fortified entry points: called without a mode (the compiler proved O_CREAT absent). */
SH_EXPORT int __open_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
SH_EXPORT int __open64_2(const char *path, int flags) { return open_common(AT_FDCWD, path, flags, 0); }
SH_EXPORT int __openat_2(int dirfd, const char *path, int flags) { return open_common(dirfd, path, flags, 0); }
SH_EXPORT int __openat64_2(int dirfd, const char *path, int flags) { return open_common(dirfd, path, flags, 0); }

/*
 * ld.so opens a library with its own internal open, past the shim: a library
 * written into a root (a Python extension unpacked to /tmp, a freshly linked
 * .so) moves to disk first.  The real dlopen must see our caller's return
 * address, which it uses for $ORIGIN and the caller's RUNPATH, so it is
 * reached by a tail call (test/fs/programs_more.test.mjs checks a bare-name
 * dlopen through the caller's RUNPATH still works).
 */
/*
 * A library in memory named through a symlink outside the roots: the kernel's ENOENT (ld.so's open)
 * for a path outside them, then its canonical name goes to disk and ld.so tries again
 * (paths.c, path_alias_after).  Not a tail call, so only for a name with no "$" (a DST the caller's
 * address would expand) whose first try failed; the others keep the tail call.
 */
static __attribute__((noinline)) void *dlopen_outside(const char *file, int mode)
{
    void *h = REAL(dlopen)(file, mode);
    if (likely(h))
        return h;
    char canon[EPH_PATH_MAX];
    int e = errno;
    errno = ENOENT; /* dlopen sets no errno: a name it did not load may be one in memory */
    if (path_alias_after(-1, AT_FDCWD, file, canon)) {
        names_to_disk(AT_FDCWD, canon);
        return REAL(dlopen)(file, mode);
    }
    errno = e;
    return NULL;
}

SH_EXPORT void *dlopen(const char *file, int mode)
{
    if (file && strchr(file, '/')) {
        if (!path_bad_ptr(file) && !strchr(file, '$') && !path_maybe_managed(AT_FDCWD, file) && !sh_busy)
            return dlopen_outside(file, mode);
        names_to_disk(AT_FDCWD, file);
    }
    return REAL(dlopen)(file, mode);
}
