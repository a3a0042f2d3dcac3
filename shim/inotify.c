/*
 * shim/inotify.c - inotify for in-memory files: shadows and the calls
 * repeated on them (see inotify.h and docs/ARCHITECTURE.md, "inotify").
 *
 * Layout: <run directory>/inotify/ (mode 01777) holds one directory per
 * shadowed directory, named by the 64-bit FNV-1a hash of its canonical path
 * (the same hash is its entry in the region's watch_dirs), and "limbo", an
 * unwatched directory through which a rename into or out of the shadows
 * passes.  A placeholder has the in-memory file's name and is empty or one
 * byte long; its contents never matter.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ephemera/shm.h"

#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "pathnorm.h"
#include "paths.h"
#include "fdtable.h"
#include "nsview.h"
#include "nsfast.h"
#include "inotify.h"

/* By desc index: this process's fd on the placeholder of the description's file. */
struct shadow_fd {
    _Atomic int fd1;             /* fd + 1, 0 = none */
    uint32_t inode, gen;         /* the file it was opened for: a reused desc slot never inherits it */
    uint64_t dir;                /* its directory's entry in watch_dirs: once the daemon drops that
                                  * shadow (daemon/watchgc.c), the fd goes at the next write; 0 for
                                  * a name's placeholder in limbo, kept until the last close */
};
static struct shadow_fd *_Atomic shadows;

static struct shadow_fd *shadow_table(void)
{
    struct shadow_fd *t = atomic_load(&shadows);
    if (t || !sh.hdr)
        return t;
    struct shadow_fd *n = calloc(sh.hdr->ndescs, sizeof *n);
    if (n && !atomic_compare_exchange_strong(&shadows, &t, n)) {
        free(n);
        return t;
    }
    return n;
}

/* ---- the shadow tree ---------------------------------------------------- */

static char shadow_root[EPH_PATH_MAX] SH_COLD;

static const char *root_dir(void)
{
    if (!shadow_root[0]) {
        char tmp[sizeof sh.sock_path];
        memcpy(tmp, sh.sock_path, sizeof tmp);
        tmp[sizeof tmp - 1] = '\0';
        char *slash = strrchr(tmp, '/');
        if (!slash)
            return NULL;
        *slash = '\0';
        char r[EPH_PATH_MAX];
        snprintf(r, sizeof r, "%s/inotify", tmp);
        memcpy(shadow_root, r, sizeof r); /* every thread computes the same bytes */
    }
    return shadow_root;
}

static uint64_t dir_hash(const char *p, size_t n)
{
    uint64_t x = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        x ^= (unsigned char)p[i];
        x *= 1099511628211ull;
    }
    return x ? x : 1; /* 0 marks a free entry */
}

static int reg_has(uint64_t h)
{
    struct eph_shm_header *hd = sh.hdr;
    uint32_t n = atomic_load_explicit(&hd->watch_used, memory_order_acquire);
    for (uint32_t i = 0; i < n && i < EPH_WATCH_DIRS; i++)
        if (atomic_load_explicit(&hd->watch_dirs[i], memory_order_relaxed) == h)
            return 1;
    return 0;
}

/*
 * 1 newly entered, 0 already there, -ENOSPC when the table is full, -EIO when
 * ns_lock cannot be had.  Under ns_lock, which the daemon holds to drop an
 * entry and lower watch_used (daemon/watchgc.c): the count is never lowered
 * below an entry being made.
 */
static int reg_add(uint64_t h)
{
    struct eph_shm_header *hd = sh.hdr;
    if (nsf_hold() < 0)
        return -EIO;
    int r = -ENOSPC;
    for (uint32_t i = 0; i < EPH_WATCH_DIRS; i++) {
        uint64_t cur = 0;
        if (atomic_compare_exchange_strong(&hd->watch_dirs[i], &cur, h)) {
            if (atomic_load(&hd->watch_used) < i + 1)
                atomic_store(&hd->watch_used, i + 1);
            r = 1;
            break;
        }
        if (cur == h) {
            r = 0;
            break;
        }
    }
    nsf_unhold();
    return r;
}

static int dir_path(uint64_t h, char out[EPH_PATH_MAX])
{
    const char *root = root_dir();
    return root && snprintf(out, EPH_PATH_MAX, "%s/%016llx", root, (unsigned long long)h) < EPH_PATH_MAX;
}

static uint64_t parent_hash(const char *abs)
{
    const char *slash = strrchr(abs, '/');
    return dir_hash(abs, !slash || slash == abs ? 1 : (size_t)(slash - abs));
}

/* The placeholder of abs when abs's directory has a shadow: 1 with its path in out, else 0. */
static int shadow_of(const char *abs, char out[EPH_PATH_MAX])
{
    const char *slash = strrchr(abs, '/');
    if (!slash || !slash[1])
        return 0;
    uint64_t h = dir_hash(abs, slash == abs ? 1 : (size_t)(slash - abs));
    if (!reg_has(h))
        return 0;
    const char *root = root_dir();
    return root && snprintf(out, EPH_PATH_MAX, "%s/%016llx/%s", root, (unsigned long long)h, slash + 1) < EPH_PATH_MAX;
}

/* A copy of an in-memory inode's path, consistent under the namespace seqlock; 0 if unnamed. */
static int path_copy(struct eph_inode *ino, char out[EPH_PATH_MAX])
{
    struct eph_shm_header *h = sh.hdr;
    for (unsigned tries = 0; nsv_backoff(tries) == 0; tries++) {
        uint64_t s1 = atomic_load_explicit(&h->ns_seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        size_t len = strnlen(ino->path, EPH_PATH_MAX - 1);
        memcpy(out, ino->path, len);
        out[len] = '\0';
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->ns_seq, memory_order_relaxed) == s1)
            return len > 0;
    }
    return 0;
}

/*
 * The names of in-memory file idx (its own, then those made by link,
 * shim/nslink.c), one at a time: the n-th into out, 0 when there is none.
 * Read without the lock (a name made or dropped meanwhile is seen or not, as
 * a lookup would); the list is at most as long as the pool.
 */
static int name_nth(uint32_t idx, unsigned n, char out[EPH_PATH_MAX])
{
    struct eph_inode *in = &sh.inodes[idx];
    if (n == 0)
        return path_copy(in, out);
    uint32_t s = atomic_load(&in->link_head);
    for (unsigned k = 1; s && s - 1 < sh.hdr->ninodes && k < sh.hdr->ninodes; k++) {
        struct eph_inode *ni = &sh.inodes[s - 1];
        if (k == n)
            return atomic_load(&ni->state) == EPH_NAME && atomic_load(&ni->link_to) == idx && path_copy(ni, out);
        s = atomic_load(&ni->link_next);
    }
    return 0;
}

static int shadow_of(const char *abs, char out[EPH_PATH_MAX]);

/*
 * A name made by link in a directory nobody watches, of a file that is
 * watched, has its placeholder in limbo, named by the hash of its path: it
 * is a link of the file's placeholder, so that an open and a write through
 * that name reach the file's watches (and no directory's), and its unlink
 * changes their count of links, as on tmpfs.  1 with the path in out.
 */
static int limbo_name(const char *abs, char out[EPH_PATH_MAX], int make)
{
    const char *root = root_dir();
    if (!root || snprintf(out, EPH_PATH_MAX, "%s/limbo", root) >= EPH_PATH_MAX)
        return 0;
    if (make)
        sys.mkdir(out, 01777);
    size_t n = strlen(out);
    return snprintf(out + n, EPH_PATH_MAX - n, "/n%016llx", (unsigned long long)dir_hash(abs, strlen(abs))) <
           (int)(EPH_PATH_MAX - n);
}

/* abs's placeholder: in its directory's shadow, or else in limbo if it has one there. */
static int placeholder_of(const char *abs, char out[EPH_PATH_MAX])
{
    struct stat st;
    return shadow_of(abs, out) || (limbo_name(abs, out, 0) && sys.lstat(out, &st) == 0);
}

/* A placeholder that one of file idx's names has now, other than at sp: 1 with its path in out. */
static int placeholder_other(uint32_t idx, const char *sp, char out[EPH_PATH_MAX])
{
    char name[EPH_PATH_MAX];
    struct stat st;
    for (unsigned n = 0; n < 64 && (n == 0 || name_nth(idx, n, name)); n++) {
        if (n == 0 && !name_nth(idx, 0, name))
            continue;
        if (shadow_of(name, out) && strcmp(out, sp) != 0 && sys.lstat(out, &st) == 0 && S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

/*
 * The placeholder at sp for a name of in-memory file idx: a hard link of
 * another name's placeholder when there is one, so that, as on tmpfs, a
 * write through any name reaches the watches of the file (IN_MODIFY on the
 * one placeholder inode) and a link or an unlink changes the count of
 * links the watches see (IN_ATTRIB); an empty file otherwise.  0 when it is
 * there (made now or before), -1 with errno.
 */
static int placeholder_make(uint32_t idx, const char *sp, mode_t mode)
{
    char other[EPH_PATH_MAX];
    if (atomic_load(&sh.inodes[idx].link_head) && placeholder_other(idx, sp, other) && sys.link(other, sp) == 0)
        return 0;
    return (int)syscall(SYS_mknodat, AT_FDCWD, sp, S_IFREG | (mode & 0777), 0) < 0 && errno != EEXIST ? -1 : 0;
}

/*
 * Placeholders for what dir holds now: every in-memory file, and every
 * subdirectory on disk (so that its rmdir and a rename of it are reported).
 * Made with mknod and mkdir before the watch exists, so they raise nothing.
 * A file unlinked while we look may get a placeholder after the unlinker
 * removed its own: look again and take ours back.
 */
static void populate(const char *dir, const char *sd)
{
    struct eph_shm_header *h = sh.hdr;
    size_t dl = strlen(dir);
    uint32_t hwm = atomic_load(&h->inode_hwm);
    for (uint32_t i = 0; i < hwm && i < h->ninodes; i++) {
        struct eph_inode *ino = &sh.inodes[i];
        uint32_t st = atomic_load(&ino->state), file = i;
        if (st == EPH_NAME) /* a name made by link: its file's placeholder, linked */
            file = atomic_load(&ino->link_to);
        else if (st != EPH_MEM && st != EPH_MOVING)
            continue;
        char copy[EPH_PATH_MAX], p[EPH_PATH_MAX];
        if (file >= h->ninodes || !path_copy(ino, copy) || !pn_parent_is(copy, dir, dl))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", sd, strrchr(copy, '/') + 1) >= (int)sizeof p)
            continue;
        if (placeholder_make(file, p, ino->mode) < 0)
            continue;
        atomic_store(&sh.inodes[file].shadowed, 1);
        uint32_t i2, g2;
        if (nsv_lookup(copy, &i2, &g2) != 0)
            sys.unlink(p); /* unlinked meanwhile; a name that now names another file keeps its placeholder */
    }
    int dfd = sys.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return;
    char buf[8192];
    ssize_t n;
    while ((n = getdents64(dfd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] == '.' && (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
                continue;
            struct stat st;
            if (d->d_type != DT_DIR &&
                (d->d_type != DT_UNKNOWN || sys.fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                 !S_ISDIR(st.st_mode)))
                continue;
            char p[EPH_PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", sd, d->d_name) < (int)sizeof p)
                sys.mkdir(p, 0777);
        }
    }
    sys.close(dfd);
}

/*
 * Give dir (canonical, a real directory under a root) its shadow: the
 * directory, then the region's entry (a writer that sees the entry finds the
 * directory), then the placeholders.  0 with the shadow's path, or -1 with
 * errno (ENOSPC: EPH_WATCH_DIRS directories are shadowed already).
 */
static int shadow_dir(const char *dir, char sd[EPH_PATH_MAX])
{
    const char *root = root_dir();
    if (!root) {
        errno = ENOENT;
        return -1;
    }
    if (sys.mkdir(root, 01777) == 0)
        sys.chmod(root, 01777); /* any user's process makes placeholders */
    else if (errno != EEXIST)
        return -1;
    uint64_t h = dir_hash(dir, strlen(dir));
    if (!dir_path(h, sd)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int made = sys.mkdir(sd, 0777) == 0;
    if (made)
        sys.chmod(sd, 0777);
    else if (errno != EEXIST)
        return -1;
    int r = reg_add(h);
    if (r < 0) {
        if (made)
            sys.rmdir(sd);
        errno = -r;
        return -1;
    }
    if (made || r == 1)
        populate(dir, sd);
    return 0;
}

static int parent_shadow(const char *abs, char sd[EPH_PATH_MAX])
{
    char dir[EPH_PATH_MAX];
    const char *slash = strrchr(abs, '/');
    size_t n = slash == abs ? 1 : (size_t)(slash - abs);
    memcpy(dir, abs, n);
    dir[n] = '\0';
    return shadow_dir(dir, sd);
}

/* ---- the watcher's side ------------------------------------------------- */

int ino_add_watch(int ifd, const char *path, uint32_t mask)
{
    char abs[EPH_PATH_MAX], sp[EPH_PATH_MAX];
    int trailing = 0, saved = errno;
    if (sh_busy || path_resolve(AT_FDCWD, path, abs, &trailing) <= 0 || sh_attach() < 0)
        return REAL(inotify_add_watch)(ifd, path, mask);
    int follow = !(mask & IN_DONT_FOLLOW);
    uint32_t inode, gen;
    int in_mem = nsv_lookup(abs, &inode, &gen) == 0 ||
                 (path_canon(abs, follow || trailing) > 0 && nsv_lookup(abs, &inode, &gen) == 0);
    if (in_mem && trailing) {
        errno = ENOTDIR;
        return -1;
    }
    if (!in_mem) {
        /* a directory: by its canonical path, the one writers name their files by */
        char real[PATH_MAX];
        struct stat st;
        if ((follow ? sys.stat(abs, &st) : sys.lstat(abs, &st)) < 0 || !S_ISDIR(st.st_mode) ||
            !REAL(realpath)(abs, real) || strlen(real) >= sizeof abs || path_resolve(AT_FDCWD, real, abs, &trailing) <= 0)
            goto real;
    }
    /* The daemon drops a shadow nobody watches (daemon/watchgc.c): one dropped between our entry
     * and our watch is made again. */
    for (int tries = 0; tries < 3; tries++) {
        uint64_t h;
        if (in_mem) {
            char sd[EPH_PATH_MAX];
            if (parent_shadow(abs, sd) < 0 || !shadow_of(abs, sp))
                goto real;
            struct eph_inode *ino = &sh.inodes[inode];
            if (placeholder_make(inode, sp, ino->mode) < 0)
                goto real;
            atomic_store(&ino->shadowed, 1);
            h = parent_hash(abs);
        } else {
            if (shadow_dir(abs, sp) < 0)
                goto real;
            h = dir_hash(abs, strlen(abs));
        }
        errno = saved;
        int wd = REAL(inotify_add_watch)(ifd, sp, mask);
        if (reg_has(h))
            return wd;
        if (wd >= 0)
            inotify_rm_watch(ifd, wd);
    }
real:
    if (errno == ENOSPC)
        sh_log("inotify: %d directories have a shadow already; %s is watched on disk only", EPH_WATCH_DIRS, abs);
    errno = saved;
    return REAL(inotify_add_watch)(ifd, path, mask);
}

/* ---- the changer's side ------------------------------------------------- */

/* This process dropped one of its fds on desc1 (ft_forget_hook). */
static void ino_forgot(uint32_t desc1)
{
    struct shadow_fd *t = atomic_load(&shadows);
    if (!t || !atomic_load(&t[desc1 - 1].fd1))
        return;
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++)
        if (ft_fds[fd].desc1 == desc1)
            return; /* another fd here still has the description open */
    int f1 = atomic_exchange(&t[desc1 - 1].fd1, 0);
    if (f1) {
        int saved = errno;
        sys.close(f1 - 1); /* the last close: IN_CLOSE_WRITE or IN_CLOSE_NOWRITE */
        errno = saved;
    }
}

void ino_attr(struct eph_inode *ino, mode_t mode, uid_t u, gid_t g, const struct timespec *ts, int times)
{
    char path[EPH_PATH_MAX], sp[EPH_PATH_MAX];
    if (!atomic_load(&ino->shadowed) || !path_copy(ino, path) || !shadow_of(path, sp))
        return;
    int saved = errno;
    if (times)
        sys.utimensat(AT_FDCWD, sp, ts, AT_SYMLINK_NOFOLLOW);
    else if (mode != (mode_t)-1)
        sys.fchmodat(AT_FDCWD, sp, mode & 07777, 0);
    else
        sys.fchownat(AT_FDCWD, sp, u, g, AT_SYMLINK_NOFOLLOW);
    errno = saved;
}

/* Placeholder fds live high, as the pool's do: a program may count on its next open taking the
 * lowest free number (after close(0), open gives 0). */
#define INO_FD_MIN 768

static void shadow_keep(uint32_t desc1, int s, uint64_t dir)
{
    int high = sys.fcntl(s, F_DUPFD_CLOEXEC, INO_FD_MIN);
    if (high >= 0) {
        sys.close(s);
        s = high;
    }
    struct shadow_fd *t = shadow_table();
    if (!t) {
        sys.close(s);
        return;
    }
    struct shadow_fd *e = &t[desc1 - 1];
    struct eph_desc *d = &sh.descs[desc1 - 1];
    int old = atomic_exchange(&e->fd1, 0);
    if (old)
        sys.close(old - 1);
    e->inode = d->inode;
    e->gen = d->inode_gen;
    e->dir = dir;
    atomic_store(&e->fd1, s + 1);
    atomic_store(&ft_forget_hook, ino_forgot);
}

int ino_opened(int fd, int flags, const char *abs)
{
    char path[EPH_PATH_MAX], sp[EPH_PATH_MAX];
    if (fd < 0 || !ft_managed(fd))
        return fd;
    uint32_t desc1 = ft_fds[fd].desc1;
    struct eph_inode *ino = &sh.inodes[sh.descs[desc1 - 1].inode];
    /* by the name it was opened through (a name made by link has a placeholder of its own) */
    size_t al = abs ? strlen(abs) : 0;
    if (al > 0 && al < sizeof path)
        memcpy(path, abs, al + 1);
    else if (!path_copy(ino, path))
        return fd;
    struct stat lst;
    int in_shadow = shadow_of(path, sp);
    if (!in_shadow && !(limbo_name(path, sp, 0) && sys.lstat(sp, &lst) == 0))
        return fd;
    int saved = errno;
    /* the same open: O_CREAT raises IN_CREATE where the name is new, O_TRUNC IN_MODIFY, the open
     * IN_OPEN, and the access mode decides IN_CLOSE_WRITE or IN_CLOSE_NOWRITE at the last close */
    int acc = flags & O_ACCMODE;
    int s = sys.openat(AT_FDCWD, sp, (acc == O_ACCMODE ? O_RDONLY : acc) | (flags & (O_CREAT | O_TRUNC)) |
                                         O_CLOEXEC | O_NOFOLLOW, ino->mode & 0777);
    if (s >= 0) {
        atomic_store(&ino->shadowed, 1);
        shadow_keep(desc1, s, in_shadow ? parent_hash(path) : 0); /* 0: in limbo, kept while open */
    }
    errno = saved;
    return fd;
}

/* This process's placeholder fd for fd's description, opened now if the file has one. */
static int shadow_fd_for(int fd)
{
    uint32_t desc1 = ft_fds[fd].desc1;
    if (!desc1)
        return -1;
    struct eph_desc *d = &sh.descs[desc1 - 1];
    struct shadow_fd *t = shadow_table();
    if (!t)
        return -1;
    struct shadow_fd *e = &t[desc1 - 1];
    int f1 = atomic_load(&e->fd1);
    if (f1 && e->inode == d->inode && e->gen == d->inode_gen) {
        if (!e->dir || reg_has(e->dir))
            return f1 - 1;
        /* nobody watches that shadow any more: let the placeholder go */
        if ((f1 = atomic_exchange(&e->fd1, 0)))
            sys.close(f1 - 1);
    }
    /* opened before the watch (tail -f of a log its writer holds open), or by exec's image */
    struct eph_inode *ino = &sh.inodes[d->inode];
    char path[EPH_PATH_MAX], sp[EPH_PATH_MAX];
    if (!atomic_load(&ino->shadowed) || atomic_load(&ino->gen) != d->inode_gen || !path_copy(ino, path) ||
        !shadow_of(path, sp))
        return -1;
    uint32_t fl = atomic_load(&d->flags) & O_ACCMODE;
    int s = sys.openat(AT_FDCWD, sp, (fl == O_ACCMODE ? O_RDONLY : (int)fl) | O_CLOEXEC | O_NOFOLLOW);
    if (s < 0)
        return -1;
    shadow_keep(desc1, s, parent_hash(path));
    return s;
}

void ino_wrote(int fd, int trunc)
{
    int saved = errno;
    int s = shadow_fd_for(fd);
    if (s >= 0) {
        /* one byte at 0 raises IN_MODIFY (an empty write raises nothing); the size stays <= 1 */
        if (trunc)
            (void)sys.ftruncate(s, 0);
        else
            (void)!sys.pwrite(s, "", 1, 0);
    }
    errno = saved;
}

/* (dirfd, path) as the absolute path the namespace names it by, for the hooks that have none. */
static int resolve(int dirfd, const char *path, char abs[EPH_PATH_MAX])
{
    int trailing;
    return !sh_busy && path_resolve(dirfd, path, abs, &trailing) > 0 && path_canon(abs, 0) >= 0;
}

/* truncate or mkdir by (dirfd, path): the same call on the placeholder */
static void repeat_at(int dirfd, const char *path, int mkdir)
{
    char abs[EPH_PATH_MAX], sp[EPH_PATH_MAX];
    int saved = errno;
    if (resolve(dirfd, path, abs) && shadow_of(abs, sp)) {
        if (mkdir)
            sys.mkdir(sp, 0777);
        else
            (void)sys.truncate(sp, 0);
    }
    errno = saved;
}

void ino_truncated(int dirfd, const char *path) { repeat_at(dirfd, path, 0); }

void ino_unlinked(const char *abs)
{
    char sp[EPH_PATH_MAX];
    int saved = errno;
    if (placeholder_of(abs, sp))
        sys.unlink(sp);
    errno = saved;
}

void ino_mkdir(int dirfd, const char *path) { repeat_at(dirfd, path, 1); }

void ino_linked(uint32_t idx, const char *abs)
{
    char sp[EPH_PATH_MAX] = "", other[EPH_PATH_MAX];
    int saved = errno;
    struct eph_inode *in = &sh.inodes[idx];
    if (shadow_of(abs, sp)) {
        /* IN_CREATE in the new name's directory, and IN_ATTRIB (one more link) on the file's */
        if (placeholder_make(idx, sp, in->mode) == 0)
            atomic_store(&in->shadowed, 1);
    } else if (atomic_load(&in->shadowed) && placeholder_other(idx, sp, other) && limbo_name(abs, sp, 1)) {
        /* a name nobody watches: the file's watches see their count of links change (IN_ATTRIB) */
        sys.unlink(sp); /* a name of that path before, gone without us */
        (void)sys.link(other, sp);
    }
    errno = saved;
}

void ino_mkdir_abs(const char *abs)
{
    char sp[EPH_PATH_MAX];
    int saved = errno;
    if (shadow_of(abs, sp))
        sys.mkdir(sp, 0777);
    errno = saved;
}

void ino_rmdir(const char *abs)
{
    char sp[EPH_PATH_MAX];
    int saved = errno;
    if (shadow_of(abs, sp))
        sys.rmdir(sp);
    /* the watched directory itself: its watches get IN_DELETE_SELF and IN_IGNORED */
    uint64_t h = dir_hash(abs, strlen(abs));
    if (reg_has(h) && dir_path(h, sp))
        sys.rmdir(sp);
    errno = saved;
}

/*
 * A rename between shadows is a rename of the placeholder: IN_MOVED_FROM and
 * IN_MOVED_TO with one cookie, IN_MOVE_SELF on the file's own watches.  Out
 * of a shadow, the target's directory gets one (so a watch on the file keeps
 * following it, as it would on tmpfs); into a shadow from a directory nobody
 * watches, the placeholder comes from limbo (a lone IN_MOVED_TO).
 */
static _Atomic unsigned limbo_seq;

void ino_renamed(const char *a, const char *b)
{
    char sa[EPH_PATH_MAX], sb[EPH_PATH_MAX], sd[EPH_PATH_MAX];
    int saved = errno;
    struct stat st;
    int ha = shadow_of(a, sa), hb = shadow_of(b, sb);
    if (ha && sys.lstat(sa, &st) < 0) {
        errno = saved;
        return; /* no placeholder in a shadowed directory: a file on disk, which is not reported */
    }
    char la[EPH_PATH_MAX], lb[EPH_PATH_MAX];
    int hl = !ha && limbo_name(a, la, 0) && sys.lstat(la, &st) == 0; /* a name in limbo */
    if (!hb && limbo_name(b, lb, 0))
        sys.unlink(lb); /* b's own limbo name, if it had one, is renamed over */
    if (ha && !hb)
        hb = parent_shadow(b, sd) == 0 && shadow_of(b, sb);
    if (ha && hb) {
        sys.rename(sa, sb);
    } else if (hl) {
        /* the file's placeholder goes along: IN_MOVE_SELF, and IN_MOVED_TO where b is watched */
        if (hb)
            sys.rename(la, sb);
        else if (limbo_name(b, lb, 0))
            sys.rename(la, lb);
    } else if (hb) {
        char limbo[EPH_PATH_MAX], p[EPH_PATH_MAX];
        const char *root = root_dir();
        int isdir = sys.stat(b, &st) == 0 && S_ISDIR(st.st_mode);
        if (root && snprintf(limbo, sizeof limbo, "%s/limbo", root) < (int)sizeof limbo &&
            snprintf(p, sizeof p, "%s/%d.%u", limbo, getpid(), atomic_fetch_add(&limbo_seq, 1)) < (int)sizeof p) {
            sys.mkdir(limbo, 01777);
            if ((isdir ? sys.mkdir(p, 0777) : (int)syscall(SYS_mknodat, AT_FDCWD, p, S_IFREG | 0666, 0)) == 0 && sys.rename(p, sb) < 0) {
                if (isdir)
                    sys.rmdir(p);
                else
                    sys.unlink(p);
            }
        }
    } else if (ha) {
        if (sys.unlink(sa) < 0) /* no room for another shadow: IN_DELETE */
            sys.rmdir(sa);
    }
    errno = saved;
}

/* The exported wrapper (with the other families it would sit in intercept_misc.c; it is here so
 * that the whole of inotify is one module). */
SH_EXPORT int inotify_add_watch(int ifd, const char *path, uint32_t mask)
{
    if (likely(!path_maybe_managed(AT_FDCWD, path))) {
        /* Through a symlink outside the roots, asked first: the kernel would watch a disk directory
         * and miss the changes made in memory, or fail on a file in memory (path_alias_name). */
        char canon[EPH_PATH_MAX];
        int dirfd = AT_FDCWD;
        const char *name = sh_busy ? path : path_alias_name(&dirfd, path, canon);
        if (likely(name == path))
            return REAL(inotify_add_watch)(ifd, path, mask);
        return ino_add_watch(ifd, name, mask);
    }
    return ino_add_watch(ifd, path, mask);
}

/*
 * Python's watchers (watchdog, inotify_simple, pyinotify) call inotify through
 * ctypes on CDLL(find_library('c')): ctypes looks the name up with dlsym in
 * libc's own handle, whose scope does not include preloaded libraries, so
 * they would reach libc's inotify_add_watch past the shim.  dlsym of that one
 * name, when it resolves to libc's definition, answers with the wrapper
 * instead.  Every other lookup reaches glibc's dlsym by a tail call, so that
 * RTLD_NEXT still finds the caller's object by its return address.
 */
typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn real_dlsym;

static __attribute__((noinline)) void *dlsym_inotify(void *handle, const char *name)
{
    void *p = real_dlsym(handle, name);
    return p && p == (void *)REAL(inotify_add_watch) ? (void *)inotify_add_watch : p;
}

SH_EXPORT void *dlsym(void *handle, const char *name)
{
    if (unlikely(!real_dlsym))
        real_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (unlikely(!real_dlsym)) /* glibc before 2.34: in libdl */
        real_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    if (unlikely(handle != RTLD_NEXT && handle != RTLD_DEFAULT && name[0] == 'i' &&
                 strcmp(name, "inotify_add_watch") == 0))
        return dlsym_inotify(handle, name);
    return real_dlsym(handle, name);
}
