/*
 * shimops.c - the handlers of the shim protocol's requests (shimops.h):
 * namespace changes, growth and eviction on a shim process's behalf.
 *
 * Disk operations done on a caller's behalf (rmdir, rename, unlinking a
 * rename target) run with the caller's fsuid/fsgid when the daemon is root,
 * so the kernel applies the caller's permissions.  Operations that only
 * touch the in-memory namespace check the directory's mode bits in user
 * space (supplementary groups are not known to us; owner and primary group
 * are).
 */
#include "shimops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "budget.h"
#include "daemon.h"
#include "ephemera/diskbytes.h"
#include "ephemera/lock.h"
#include "ephemera/twinrec.h"
#include "evict.h"
#include "ledger.h"
#include "log.h"
#include "dirtwin.h"
#include "namespace.h"
#include "place.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_WHITEOUT (1 << 2)
#endif

/* ---- caller credentials ---------------------------------------------- */

static int shim_as_caller(const struct eph_req *q)
{
    if (geteuid() != 0 || q->uid == 0)
        return 0;
    setfsgid(q->gid);
    setfsuid(q->uid);
    return 1;
}

static void shim_as_self(int switched)
{
    if (!switched)
        return;
    setfsuid(0);
    setfsgid(0);
}

/* Parent directory of an absolute path into buf ("/" for "/x"). */
static void shim_parent(const char *path, char *buf, size_t n)
{
    snprintf(buf, n, "%s", path);
    char *s = strrchr(buf, '/');
    if (s == buf)
        s[1] = 0;
    else if (s)
        *s = 0;
}

/* Mode-bit check of `want` (R_OK/W_OK/X_OK bits) for uid/gid. */
static int shim_may(uint32_t mode, uint32_t ouid, uint32_t ogid, const struct eph_req *q, int want)
{
    if (q->uid == 0)
        return 1;
    int bits = q->uid == ouid ? (int)(mode >> 6) & 7 : q->gid == ogid ? (int)(mode >> 3) & 7 : (int)mode & 7;
    return (bits & want) == want;
}

/* Stat path's parent, which must be a directory: 0 or -errno. */
static int shim_parent_dir(const char *path, struct stat *st)
{
    char parent[EPH_PATH_MAX];
    shim_parent(path, parent, sizeof parent);
    if (stat(parent, st) < 0)
        return -errno;
    return S_ISDIR(st->st_mode) ? 0 : -ENOTDIR;
}

/* May the caller add or remove an entry (owned by file_uid) in path's
 * parent directory?  0 or -errno; *pst receives the parent's stat. */
static int shim_dir_writable(const char *path, const struct eph_req *q, int64_t file_uid,
                             struct stat *pst)
{
    struct stat st;
    int rc = shim_parent_dir(path, &st);
    if (rc < 0)
        return rc;
    if (pst)
        *pst = st;
    if (!shim_may(st.st_mode, st.st_uid, st.st_gid, q, W_OK | X_OK))
        return -EACCES;
    if (file_uid >= 0 && q->uid != 0 && (st.st_mode & S_ISVTX) && q->uid != (uint32_t)file_uid &&
        q->uid != st.st_uid)
        return -EPERM;
    return 0;
}

/* A name appeared in or left path's directory without the kernel seeing
 * it: move the directory's mtime/ctime as it would (atime untouched). */
static void shim_touch_parent(const char *path)
{
    char parent[EPH_PATH_MAX];
    shim_parent(path, parent, sizeof parent);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    utimensat(AT_FDCWD, parent, ts, 0);
}

static void shim_touch(struct eph_inode *in)
{
    atomic_store(&in->last_use, ephd_mono_ns());
}

/* ---- operations ------------------------------------------------------- */

static int shim_send_disk(struct eph_resp *r, struct eph_inode *in, uint32_t idx, int *fd)
{
    r->where = EPH_WHERE_DISK;
    r->inode = idx;
    r->gen = atomic_load(&in->gen);
    if (in->disk_fd >= 0)
        *fd = in->disk_fd;
    return 0;
}

static int op_create(const struct eph_req *q, struct eph_resp *r, int *fd)
{
    const char *path = q->path;
    int flags = q->flags;
    int root = ephd_root_of(path);
    int tmpfile = (flags & O_TMPFILE) == O_TMPFILE;

    if (tmpfile) {
        /* An anonymous file in a managed directory: memory, never named. */
        struct stat st;
        int tr = root;
        for (int i = 0; tr < 0 && i < D.nroots; i++)
            if (strcmp(path, D.roots[i]) == 0)
                tr = i;
        if (tr < 0 || atomic_load(&D.h->budget) == 0) {
            r->where = EPH_WHERE_DISK;
            return 0;
        }
        if ((flags & O_ACCMODE) == O_RDONLY)
            return -EINVAL;
        if (ns_lookup(path) >= 0 || ns_ancestor_is_file(path))
            return -ENOTDIR;
        if (stat(path, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if (!shim_may(st.st_mode, st.st_uid, st.st_gid, q, W_OK | X_OK))
            return -EACCES;
        int idx = ns_new_inode(tr, q->mode, q->uid, (st.st_mode & S_ISGID) ? st.st_gid : q->gid);
        if (idx < 0) {
            r->where = EPH_WHERE_DISK;
            atomic_fetch_add(&D.h->c.files_on_disk, 1);
            return 0;
        }
        struct eph_inode *in = &D.inodes[idx];
        atomic_fetch_add(&in->open_count, 1); /* added: a late reference to the slot's last file may be in it (eph_inode_fresh) */
        r->where = EPH_WHERE_MEM;
        r->inode = (uint32_t)idx;
        r->gen = atomic_load(&in->gen);
        *fd = in->mem_fd;
        return 0;
    }

    if (root < 0) {
        r->where = EPH_WHERE_DISK;
        return 0;
    }
    int idx = ns_lookup(path);
    if (idx >= 0) {
        struct eph_inode *in = &D.inodes[idx];
        if ((flags & O_CREAT) && (flags & O_EXCL))
            return -EEXIST;
        if (flags & O_DIRECTORY)
            return -ENOTDIR;
        int acc = flags & O_ACCMODE, want = 0;
        if (acc == O_RDONLY || acc == O_RDWR)
            want |= R_OK;
        if (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC))
            want |= W_OK;
        if (!shim_may(in->mode, in->uid, in->gid, q, want))
            return -EACCES;
        if (flags & O_TRUNC) {
            /* Capacity is kept: another process may be reading through
             * its mapping, and shrinking the memfd would fault it. */
            if (ns_lock((uint32_t)idx))
                /* Taken over from a stalled writer: when it resumes it must
                 * not publish the size it computed before this truncate, but
                 * write again (shim/fp_io.c, io_again) and zero the gap. */
                atomic_fetch_add(&in->epoch, 1);
            atomic_store(&in->size, 0);
            atomic_store(&in->holes, 0);
            int64_t now = ephd_real_ns();
            atomic_store(&in->mtime_ns, now);
            atomic_store(&in->ctime_ns, now);
            eph_unlock(&in->lock);
        }
        atomic_fetch_add(&in->open_count, 1);
        shim_touch(in);
        r->where = EPH_WHERE_MEM;
        r->inode = (uint32_t)idx;
        r->gen = atomic_load(&in->gen);
        *fd = in->mem_fd;
        return 0;
    }
    if (ns_ancestor_is_file(path))
        return -ENOTDIR;
    if (!(flags & O_CREAT) || (flags & O_DIRECTORY)) {
        r->where = EPH_WHERE_DISK;
        return 0;
    }
    struct stat st;
    if (lstat(path, &st) == 0 || errno != ENOENT) {
        /* It exists on disk (or the kernel has something to say about the
         * path): the real open(2) gives the right result. */
        r->where = EPH_WHERE_DISK;
        return 0;
    }
    struct stat pst;
    int e = shim_dir_writable(path, q, -1, &pst);
    if (e < 0)
        return e;
    if (place_predict_disk(path)) {
        r->where = EPH_WHERE_DISK;
        atomic_fetch_add(&D.h->c.files_on_disk, 1);
        return 0;
    }
    idx = ns_new_inode(root, q->mode, q->uid, (pst.st_mode & S_ISGID) ? pst.st_gid : q->gid);
    if (idx < 0) {
        log_msg(LOG_WARN, "create %s: kept on disk: %s", path, strerror(-idx));
        r->where = EPH_WHERE_DISK;
        atomic_fetch_add(&D.h->c.files_on_disk, 1);
        return 0;
    }
    struct eph_inode *in = &D.inodes[idx];
    atomic_fetch_add(&in->open_count, 1); /* added, as above */
    ns_write_begin();
    ns_insert((uint32_t)idx, path);
    ns_write_end();
    shim_touch_parent(path);
    place_note(idx, atomic_load(&in->gen), path);
    r->where = EPH_WHERE_MEM;
    r->inode = (uint32_t)idx;
    r->gen = atomic_load(&in->gen);
    *fd = in->mem_fd;
    return 0;
}

static int op_unlink(const struct eph_req *q)
{
    int idx = ns_lookup(q->path);
    if (idx < 0)
        return ns_ancestor_is_file(q->path) ? -ENOTDIR : -ENOENT;
    struct eph_inode *in = &D.inodes[idx];
    int e = shim_dir_writable(q->path, q, in->uid, NULL);
    if (e < 0)
        return e;
    ns_write_begin();
    ns_drop_name_logged(q->path, (uint32_t)idx); /* the name may be one of several (shim/nslink.c) */
    ns_write_end();
    atomic_store(&in->ctime_ns, ephd_real_ns());
    shim_touch_parent(q->path);
    ns_maybe_gc((uint32_t)idx);
    return 0;
}

static int op_rmdir(const struct eph_req *q)
{
    if (ns_lookup(q->path) >= 0 || ns_ancestor_is_file(q->path))
        return -ENOTDIR;
    if (ns_has_below(q->path))
        return -ENOTEMPTY;
    int sw = shim_as_caller(q);
    int rc = rmdir(q->path) < 0 ? -errno : 0;
    shim_as_self(sw);
    return rc;
}

enum { K_NONE, K_MEM, K_DIR, K_OTHER };

/* What a rename operand is: in memory, a directory or something else on
 * disk, or nothing.  -errno for paths the kernel would reject. */
static int rn_kind(const char *path, int *midx)
{
    *midx = ns_lookup(path);
    if (*midx >= 0)
        return K_MEM;
    if (ns_ancestor_is_file(path))
        return -ENOTDIR;
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? K_NONE : -errno;
    return S_ISDIR(st.st_mode) ? K_DIR : K_OTHER;
}

static int rn_is_below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* The kernel rename, with the namespace rewritten in the same seqlock
 * write section so shim readers never see the directory half-moved. */
static int rn_disk(const struct eph_req *q, int exchange)
{
    int sw = shim_as_caller(q);
    ns_write_begin();
    struct eph_twinmask tr;
    eph_twinrec_moving(D.h, q->path, q->path2, exchange, &tr); /* twins of stand-ins below */
    int rc = renameat2(AT_FDCWD, q->path, AT_FDCWD, q->path2, (unsigned)q->flags) < 0 ? -errno : 0;
    if (rc == 0)
        ns_rename_prefix(q->path, q->path2, exchange);
    eph_twinrec_moved(D.h, &tr, q->path, q->path2, rc == 0);
    ns_write_end();
    shim_as_self(sw);
    return rc;
}

static int op_rename(const struct eph_req *q, struct eph_resp *r)
{
    const char *src = q->path, *dst = q->path2;
    int fl = q->flags;
    int exchange = (fl & RENAME_EXCHANGE) != 0, noreplace = (fl & RENAME_NOREPLACE) != 0;
    if ((fl & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) || (exchange && noreplace) ||
        (exchange && (fl & RENAME_WHITEOUT)))
        return -EINVAL;
    int s, d;
    int ks = rn_kind(src, &s), kd = rn_kind(dst, &d);
    int mem = ks == K_MEM || kd == K_MEM || (ks == K_DIR && ns_has_below(src)) ||
              (kd == K_DIR && ns_has_below(dst));
    if (!mem) {
        if (ks < 0)
            return ks;
        r->where = EPH_WHERE_DISK;
        return 0;
    }
    if (fl & RENAME_WHITEOUT)
        return -EINVAL;
    /* The checks in the order the kernel makes them (do_renameat2): both
     * paths' directories, the source, NOREPLACE, EXCHANGE's target, the
     * ancestry traps, then the types (vfs_rename). */
    if (ks < 0)
        return ks;
    if (kd < 0)
        return kd;
    if (kd == K_NONE) {
        struct stat st;
        int rc = shim_parent_dir(dst, &st);
        if (rc < 0)
            return rc;
    }
    if (ks == K_NONE)
        return -ENOENT;
    if (noreplace && kd != K_NONE)
        return -EEXIST;
    if (exchange && kd == K_NONE)
        return -ENOENT;
    if (ks == K_DIR && rn_is_below(dst, src))
        return -EINVAL;
    if (rn_is_below(src, dst))
        return exchange ? -EINVAL : -ENOTEMPTY;
    if (strcmp(src, dst) == 0 || (ks == K_MEM && kd == K_MEM && s == d))
        return 0; /* one name, or two names of one file (shim/nslink.c): nothing happens */
    if (!exchange) {
        if (ks == K_DIR && (kd == K_MEM || kd == K_OTHER))
            return -ENOTDIR;
        if (ks != K_DIR && kd == K_DIR)
            return -EISDIR;
        if (ks == K_DIR && kd == K_DIR && ns_has_below(dst))
            return -ENOTEMPTY;
    }
    int e;
    int droot = ephd_root_of(dst);
    /* A file with several names (hard links in memory, shim/nslink.c) keeps them in the handlers
     * below, which move and drop name slots (ns_rename_logged, ns_drop_name_logged) and trade them
     * in an exchange.  Left: a file leaving the managed roots, which goes to disk first, every name
     * a disk link of it, once the rename is sure to be allowed (a refused one must not move it),
     * and the rename is decided again. */
    int ls = ks == K_MEM && D.inodes[s].link_head, ld = kd == K_MEM && D.inodes[d].link_head;
    int in_memory = exchange || kd == K_MEM || (ks == K_MEM && droot >= 0 && strlen(dst) < EPH_PATH_MAX);
    if ((ls || ld) && !in_memory) {
        if ((e = shim_dir_writable(src, q, ks == K_MEM ? (int64_t)D.inodes[s].uid : -1, NULL)) < 0 ||
            (e = shim_dir_writable(dst, q, kd == K_MEM ? (int64_t)D.inodes[d].uid : -1, NULL)) < 0)
            return e;
        if ((ls && (e = evict_linked(src)) < 0) || (ld && (e = evict_linked(dst)) < 0))
            return e;
        return op_rename(q, r);
    }

    if (ks == K_MEM && kd == K_MEM) {
        struct eph_inode *si = &D.inodes[s], *di = &D.inodes[d];
        if ((e = shim_dir_writable(src, q, si->uid, NULL)) < 0 ||
            (e = shim_dir_writable(dst, q, di->uid, NULL)) < 0)
            return e;
        int64_t now = ephd_real_ns();
        ns_write_begin();
        if (exchange) {
            /* The two names trade places: the slots that hold them, which for a file with
             * several names may be further-name slots (shim/nslink.c); each file keeps its count. */
            int na = ns_name_slot(src), nb = ns_name_slot(dst);
            uint32_t snl = atomic_load(&si->nlink), dnl = atomic_load(&di->nlink);
            ns_remove((uint32_t)na);
            ns_remove((uint32_t)nb);
            ns_insert((uint32_t)na, dst);
            ns_insert((uint32_t)nb, src);
            atomic_store(&si->nlink, snl);
            atomic_store(&di->nlink, dnl);
        } else {
            ns_rename_logged(src, (uint32_t)s, dst, d);
        }
        ns_write_end();
        uint8_t sr = D.inode_root[s];
        D.inode_root[s] = D.inode_root[d];
        D.inode_root[d] = sr;
        atomic_store(&si->ctime_ns, now);
        atomic_store(&di->ctime_ns, now);
        shim_touch_parent(src);
        shim_touch_parent(dst);
        if (!exchange)
            ns_maybe_gc((uint32_t)d);
        return 0;
    }
    if (ks == K_MEM && !exchange && droot >= 0 && strlen(dst) < EPH_PATH_MAX) {
        /* Memory file over nothing or over a disk file: rename in memory;
         * the shadowed disk entry goes in the same write section. */
        struct eph_inode *si = &D.inodes[s];
        if ((e = shim_dir_writable(src, q, si->uid, NULL)) < 0)
            return e;
        if (kd == K_NONE && (e = shim_dir_writable(dst, q, -1, NULL)) < 0)
            return e;
        int sw = shim_as_caller(q);
        ns_write_begin();
        /* The disk entry's kernel unlink bypasses the daemon: one that vanished
         * since rn_kind's lstat is simply not there any more (the kernel's rename
         * creates the name then), not an error of this rename. */
        if (kd == K_OTHER && unlink(dst) < 0 && errno != ENOENT) {
            e = -errno;
            ns_write_end();
            shim_as_self(sw);
            return e;
        }
        ns_rename_logged(src, (uint32_t)s, dst, -1);
        ns_write_end();
        shim_as_self(sw);
        D.inode_root[s] = (uint8_t)droot;
        atomic_store(&si->ctime_ns, ephd_real_ns());
        shim_touch_parent(src);
        if (kd == K_NONE)
            shim_touch_parent(dst);
        return 0;
    }
    if (ks == K_OTHER && kd == K_MEM && !exchange) {
        /* Disk file over a memory file: the kernel rename, then the
         * memory file disappears in the same write section. */
        struct eph_inode *di = &D.inodes[d];
        if ((e = shim_dir_writable(dst, q, di->uid, NULL)) < 0)
            return e;
        int sw = shim_as_caller(q);
        ns_write_begin();
        e = renameat2(AT_FDCWD, src, AT_FDCWD, dst, (unsigned)fl) < 0 ? -errno : 0;
        if (e == 0)
            ns_drop_name_logged(dst, (uint32_t)d); /* a further name, or the file's own */
        ns_write_end();
        shim_as_self(sw);
        if (e == 0) {
            atomic_store(&di->ctime_ns, ephd_real_ns()); /* seen while it has names left */
            ns_maybe_gc((uint32_t)d);
        }
        return e;
    }
    if (exchange && (ks == K_MEM) != (kd == K_MEM) && droot >= 0 && ephd_root_of(src) >= 0) {
        /* A memory file trades places with a disk entry (file, symlink,
         * directory): the disk entry moves with the real rename (NOREPLACE:
         * nothing may sit under the memory file's name on disk), the memory
         * file moves in the namespace, all in one write section.  The file
         * stays in memory and keeps its inode number, as on tmpfs. */
        const char *mpath = ks == K_MEM ? src : dst, *dpath = ks == K_MEM ? dst : src;
        int m = ks == K_MEM ? s : d, kdisk = ks == K_MEM ? kd : ks;
        struct eph_inode *mi = &D.inodes[m];
        if ((e = shim_dir_writable(mpath, q, mi->uid, NULL)) < 0)
            return e;
        if (kdisk != K_DIR || ns_longest_renamed(dpath, mpath) < EPH_PATH_MAX) {
            int sw = shim_as_caller(q);
            ns_write_begin();
            struct eph_twinmask tr = {{0}};
            if (kdisk == K_DIR)
                eph_twinrec_moving(D.h, dpath, mpath, 0, &tr);
            e = renameat2(AT_FDCWD, dpath, AT_FDCWD, mpath, RENAME_NOREPLACE) < 0 ? -errno : 0;
            eph_twinrec_moved(D.h, &tr, dpath, mpath, e == 0);
            if (e == 0) {
                /* the slot that holds the name: a further name's own, for a file with several */
                int nm = ns_name_slot(mpath);
                uint32_t nl = atomic_load(&mi->nlink);
                ns_remove((uint32_t)nm);
                if (kdisk == K_DIR)
                    ns_rename_prefix(dpath, mpath, 0);
                ns_insert((uint32_t)nm, dpath);
                atomic_store(&mi->nlink, nl);
            }
            ns_write_end();
            shim_as_self(sw);
            if (e == 0) {
                D.inode_root[m] = (uint8_t)ephd_root_of(dpath);
                atomic_store(&mi->ctime_ns, ephd_real_ns());
                return 0;
            }
            if (e != -EEXIST)
                return e;
            /* Something on disk hides behind the memory name: fall back. */
        }
    }
    /* Everything else (exchanges with disk entries, memory files leaving
     * the managed roots, directories holding memory files): put the memory
     * files involved on disk as needed, then let the kernel rename. */
    if (ks == K_MEM && (e = evict_inode((uint32_t)s, EVICT_FORCE)) < 0)
        return e;
    if (kd == K_MEM && (e = evict_inode((uint32_t)d, EVICT_FORCE)) < 0)
        return e;
    if (ks == K_DIR && (droot < 0 || ns_longest_renamed(src, dst) >= EPH_PATH_MAX))
        evict_below(src, EVICT_FORCE);
    if (exchange && kd == K_DIR &&
        (ephd_root_of(src) < 0 || ns_longest_renamed(dst, src) >= EPH_PATH_MAX))
        evict_below(dst, EVICT_FORCE);
    return rn_disk(q, exchange);
}

static int op_reserve(const struct eph_req *q, struct eph_resp *r, int *fd)
{
    if (!ns_valid(q->inode, q->gen))
        return -ESTALE;
    struct eph_inode *in = &D.inodes[q->inode];
    if (atomic_load(&in->state) != EPH_MEM)
        return shim_send_disk(r, in, q->inode, fd);
    uint64_t want = q->arg, cap = atomic_load(&in->capacity);
    r->inode = q->inode;
    r->gen = q->gen;
    if (want <= cap) {
        r->where = EPH_WHERE_MEM;
        r->arg = cap;
        return 0;
    }
    int pinned = atomic_load(&in->pinned) != 0;
    budget_refresh(); /* a growth is the moment to look at the cgroup again */
    uint64_t budget = atomic_load(&D.h->budget);
    if (!pinned && (want > budget || evict_make_room(want - cap, q->inode, EVICT_SPARE_BUSY) < 0)) {
        /* Files bigger than the budget never enter memory, and a growing file
         * does not push out files in use: it goes to disk itself (no thrashing). */
        int e = evict_inode(q->inode, 0);
        if (e == -EBUSY)
            /* Record-locked: its lock would not follow it to disk.  Like a
             * mapped file it grows in memory, past the budget if it must. */
            log_msg(LOG_WARN, "inode %u is record-locked: growing in memory", q->inode);
        else if (e < 0)
            return e;
        else
            return shim_send_disk(r, in, q->inode, fd);
    }
    if (pinned && evict_make_room(want - cap, q->inode, 0) < 0)
        log_msg(LOG_WARN, "inode %u is mapped by the app: growing past the budget", q->inode);
    ns_lock(q->inode);
    cap = atomic_load(&in->capacity);
    if (want > cap) {
        if (ftruncate(in->mem_fd, (off_t)want) < 0) {
            int e = errno;
            eph_unlock(&in->lock);
            log_msg(LOG_WARN, "ftruncate(memfd of inode %u, %llu): %s; moving it to disk", q->inode,
                    (unsigned long long)want, strerror(e));
            if (pinned)
                return -e;
            /* No memory for it at all: the bytes go to disk, even from under a record lock. */
            if ((e = evict_inode(q->inode, EVICT_FORCE)) < 0)
                return e;
            return shim_send_disk(r, in, q->inode, fd);
        }
        atomic_store(&in->capacity, want);
        uint64_t b = atomic_fetch_add(&D.h->c.bytes_in_memory, want - cap) + (want - cap);
        eph_atomic_max(&D.h->c.bytes_in_memory_peak, b);
        eph_db_memory_grew(D.h, b);
    }
    eph_unlock(&in->lock);
    r->where = EPH_WHERE_MEM;
    r->arg = atomic_load(&in->capacity);
    return 0;
}

static int op_evict(const struct eph_req *q, struct eph_resp *r, int *fd)
{
    if (!ns_valid(q->inode, q->gen))
        return -ESTALE;
    struct eph_inode *in = &D.inodes[q->inode];
    int flags = EVICT_FORCE;
    if (atomic_load(&in->pinned))
        flags |= EVICT_KEEP_PAGES;
    int e = evict_inode(q->inode, flags);
    if (e < 0)
        return e;
    return shim_send_disk(r, in, q->inode, fd);
}

static int op_materialise(struct eph_resp *r)
{
    /* The program cannot see the region: its directories too, and none in memory from now on. */
    if (nsl_enter() == 0) {
        dt_twin_all(1);
        nsl_exit();
    }
    r->arg = (uint64_t)evict_all(EVICT_FORCE | EVICT_KEEP_PAGES, 1);
    atomic_fetch_add(&D.h->c.materialisations, 1);
    return 0;
}

static int op_release(const struct eph_req *q)
{
    if (ns_valid(q->inode, q->gen))
        ns_maybe_gc(q->inode);
    return 0;
}

int shimops_run(struct eph_req *q, struct eph_resp *r, int *fd, pid_t peer, int peer_sock, int *in_fd)
{
    switch (q->op) {
    case EPH_OP_HELLO:
        r->arg = D.region_size;
        r->arg2 = (uint64_t)D.pid;
        r->inode = (uint32_t)D.region_fd; /* for EPHEMERA_REGION: the same number after a takeover */
        *fd = D.region_fd;
        return 0;
    case EPH_OP_CREATE:
    case EPH_OP_UNLINK:
    case EPH_OP_RENAME:
    case EPH_OP_RMDIR: {
        /* Shims change the namespace too: decide and change under ns_lock. */
        if (nsl_enter() < 0)
            return -EIO;
        /* In-memory directories on the way get a disk twin first: every handler works on disk paths. */
        int rc = dt_settle(q->path);
        if (rc == 0 && q->op == EPH_OP_RENAME)
            rc = dt_settle(q->path2);
        rc = rc < 0                       ? rc
                 : q->op == EPH_OP_CREATE   ? op_create(q, r, fd)
                 : q->op == EPH_OP_UNLINK ? op_unlink(q)
                 : q->op == EPH_OP_RENAME ? op_rename(q, r)
                                          : op_rmdir(q);
        /* The shims' dircache (shim/dircache.c) goes stale here, not only when the caller gets
         * our answer: a caller killed before it (or one still on its way back) would leave every
         * other shim taking a removed directory for a live one for up to a second, and creating
         * files in memory under it. */
        if (q->op == EPH_OP_RENAME || q->op == EPH_OP_RMDIR)
            atomic_fetch_add(&D.h->dir_gen, 1);
        /* After the change, before the unlock: a shim that looked at a parent before this bump
         * sees it moved when it takes the lock (a rename may move a directory). */
        if (q->op == EPH_OP_RENAME || q->op == EPH_OP_RMDIR)
            atomic_fetch_add(&D.h->dirs_gone, 1);
        /* The caller's reference, in its ledger before the answer can be lost with it. */
        if (q->op == EPH_OP_CREATE && rc == 0 && r->where == EPH_WHERE_MEM && q->inflight1)
            ledger_note_inflight(peer, q->inflight1 - 1, r->inode, r->gen);
        nsl_exit();
        return rc;
    }
    case EPH_OP_RESERVE: return op_reserve(q, r, fd);
    case EPH_OP_MATERIALISE_ALL: return op_materialise(r);
    case EPH_OP_DIRTWIN: return dt_op(q);
    case EPH_OP_EVICT: return op_evict(q, r, fd);
    case EPH_OP_RELEASE: return op_release(q);
    case EPH_OP_LEDGER: {
        int self = !(q->flags & EPH_LEDGER_CHILD);
        return ledger_register(self ? peer : (pid_t)q->arg, self, in_fd, self ? peer_sock : -1);
    }
    default: return -EOPNOTSUPP;
    }
}
