/*
 * shim/nsdir.c - mkdir, rmdir and stat of directories that live only in the
 * region, made by the calling process without the daemon or the disk (issue 15).
 *
 * A directory made here is an inode of state EPH_MDIR named by its path in
 * the region's hash, like an in-memory file, under ns_lock with a redo record
 * (ephemera/nslock.h).  Its slot comes from the pool nsfast.c keeps (the memfd
 * lent with it is closed: a directory has no bytes).  The counts tmpfs
 * reports (st_nlink of it and of its parent, st_size) live in the inode.
 *
 * mkdir, rmdir and stat know these directories, and the calls that serve a
 * name inside one from the region (open, create, stat, unlink, rename, link:
 * nsd_resolve_in) keep files, links and misses there without a twin.  Every
 * other call that resolves a path through path_resolve reaches nsd_resolved()
 * first, which asks the daemon to give each in-memory directory on the path a
 * disk twin (daemon/dirtwin.c): after that the directory is an ordinary disk
 * directory and everything the shim and the daemon did before applies
 * unchanged.  Eviction makes the twins of a file's directories itself.
 *
 * The namespace is keyed by canonical paths.  A symlink under a root could
 * lead a later walk into an in-memory directory by another name, which the
 * lexical lookups here would miss; so from the first symlink made under a
 * root on (or one found there at start), mkdir stays on disk (mdirs_off).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/nslock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "nsdir.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "rpc.h"
#include "paths.h"
#include "pathnorm.h"
#include "fp_stat.h"
#include "fp_settle.h"
#include "fp_times.h"
#include "fdtable.h"
#include "nsfast.h"
#include "nsview.h"
#include "creds.h"
#include "dircache.h"
#include "nsdirfd.h"

#define NSD_BOGO_DIRENT 20 /* tmpfs: st_size of a directory is 20 per entry, 40 empty */

/*
 * The slots of directories this process made, with our fd of the memfd lent with each: when it
 * removes one of them itself, the slot goes back to its pool (FREE, lent to it again) instead of
 * to the daemon, so a mkdir + rmdir loop makes no close, no refill and no memfd in the daemon.
 * Bounded (the fds stay open); a slot the daemon freed meanwhile (another process removed the
 * directory, or it got a twin) is noticed by its generation and its fd closed.
 */
#define NSD_KEEP 32
static struct nsd_kept {
    uint32_t slot, gen;
    int32_t dfd, lent_to;
    int fd;
} nsd_kept[NSD_KEEP];
static int nsd_nkept;
static pthread_mutex_t nsd_kept_mu = PTHREAD_MUTEX_INITIALIZER;

/* Our fd of the slot's memfd is still ours, or we never had one (a pool lent without fds,
 * EPH_POOL_NOFDS).  A number the program closed and reused is the program's now. */
static int nsd_fd_ours(const struct nsd_kept *k)
{
    return k->fd < 0 || ft_is_priv(k->fd, k->slot);
}

static int nsd_kept_live(const struct nsd_kept *k)
{
    struct eph_inode *in = &sh.inodes[k->slot];
    return atomic_load(&in->state) == EPH_MDIR && atomic_load(&in->gen) == k->gen && nsd_fd_ours(k);
}

/* After our mkdir made slot a directory: keep its fd for the rmdir, or close it. */
static void nsd_keep_slot(struct nsd_kept k)
{
    pthread_mutex_lock(&nsd_kept_mu);
    if (nsd_nkept == NSD_KEEP)
        for (int i = 0; i < nsd_nkept; i++)
            if (!nsd_kept_live(&nsd_kept[i])) {
                if (nsd_fd_ours(&nsd_kept[i]))
                    nsf_give_slot(nsd_kept[i].slot, nsd_kept[i].dfd, nsd_kept[i].fd, 0);
                nsd_kept[i--] = nsd_kept[--nsd_nkept];
            }
    int kept = nsd_nkept < NSD_KEEP;
    if (kept)
        nsd_kept[nsd_nkept++] = k;
    pthread_mutex_unlock(&nsd_kept_mu);
    if (!kept)
        nsf_give_slot(k.slot, k.dfd, k.fd, 0);
}

/* Take slot (of generation gen) out of the kept ones: 1 with *k, else 0. */
static int nsd_take_kept(uint32_t slot, uint32_t gen, struct nsd_kept *k)
{
    int found = 0;
    pthread_mutex_lock(&nsd_kept_mu);
    for (int i = 0; i < nsd_nkept && !found; i++)
        if (nsd_kept[i].slot == slot && nsd_kept[i].gen == gen) {
            *k = nsd_kept[i];
            nsd_kept[i] = nsd_kept[--nsd_nkept];
            found = 1;
        }
    pthread_mutex_unlock(&nsd_kept_mu);
    return found && nsd_fd_ours(k);
}

void nsd_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&nsd_kept_mu, &fresh, sizeof fresh);
    for (int i = 0; i < nsd_nkept; i++)
        if (nsd_fd_ours(&nsd_kept[i]))
            nsf_give_slot(nsd_kept[i].slot, nsd_kept[i].dfd, nsd_kept[i].fd, 0);
    nsd_nkept = 0;
}

static int nsd_may(uint32_t mode, uint32_t ouid, uint32_t ogid, uid_t uid, gid_t gid, int want);

static SH_TLS int nsd_keep; /* set around the resolve of a call answered here */
/* The path of a stat that found no directory in memory and goes to the kernel: its ENOENT there is
 * the answer, not a reason for a twin (a name missing in an in-memory directory is missing).
 * Armed by nsd_stat's miss, consumed by the ENOENT, disarmed by any other resolve. */
static SH_TLS struct {
    int dirfd, armed, final, answered;
    char path[256];
} nsd_quiet;

static inline int nsd_live(void)
{
    return atomic_load_explicit(&sh.attached, memory_order_acquire) &&
           atomic_load_explicit(&sh.hdr->mdirs_live, memory_order_relaxed) != 0;
}

/* abs as an in-memory directory, read under the seqlock: its slot, -1 (not one), or -2 (cannot tell). */
static int nsd_find(const char *abs, uint32_t *gen)
{
    uint32_t idx, g, st;
    int r = nsv_find(abs, &idx, &g, &st);
    if (r == -EAGAIN)
        return -2;
    if (r < 0 || st != EPH_MDIR)
        return -1;
    if (gen)
        *gen = g;
    return (int)idx;
}

/* The twins of the in-memory directories on abs keep, in this process, the identity (st_dev,
 * st_ino) that its stat of them showed while they were in memory: a walk that lstat()s a
 * directory, opens it (which makes the twin) and compares fstat's answer (shutil.rmtree, fts,
 * find) must find the same directory (fp_settle.c's table, as for a file a link moved to disk). */
#define NSD_ID_MAX 8
struct nsd_id {
    size_t len;
    uint64_t dev, ino;
};

static int nsd_ids_of(const char *abs, struct nsd_id *ids)
{
    char pre[EPH_PATH_MAX];
    size_t n = strnlen(abs, sizeof pre - 1);
    int k = 0;
    memcpy(pre, abs, n);
    pre[n] = '\0';
    for (size_t i = 1; i <= n && k < NSD_ID_MAX; i++) {
        if (i < n && pre[i] != '/')
            continue;
        char c = pre[i];
        pre[i] = '\0';
        uint32_t g;
        int idx = nsd_find(pre, &g);
        pre[i] = c;
        if (idx >= 0)
            ids[k++] = (struct nsd_id){i, sh.inodes[idx].dev, sh.inodes[idx].ino};
    }
    return k;
}

static void nsd_twin(const char *abs, uint32_t flags)
{
    struct eph_req req;
    struct eph_resp resp;
    struct nsd_id ids[NSD_ID_MAX];
    int nids = flags || !nsd_files_in_memory() ? 0 : nsd_ids_of(abs, ids);
    int fd = -1;
    rpc_req_init(&req, EPH_OP_DIRTWIN);
    req.flags = (int32_t)flags;
    memcpy(req.path, abs, strnlen(abs, EPH_PATH_MAX - 1));
    req.path[strnlen(abs, EPH_PATH_MAX - 1)] = '\0';
    ndf_before_twin();
    int rc = rpc_call(&req, &resp, &fd);
    dc_changed(); /* new disk directories, and their parents' st_nlink and times (dircache.c) */
    if (fd >= 0)
        sys.close(fd);
    if (rc < 0 || resp.status < 0) {
        sh_log("disk twin of the in-memory directories on %s failed: %s", abs, strerror(rc < 0 ? -rc : -resp.status));
        return;
    }
    for (int k = 0; k < nids; k++) {
        char p[EPH_PATH_MAX];
        struct stat st;
        memcpy(p, abs, ids[k].len);
        p[ids[k].len] = '\0';
        if (sys.lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            fp_idmap_remember((uint64_t)st.st_dev, (uint64_t)st.st_ino, ids[k].dev, ids[k].ino);
    }
    ndf_after_twin(); /* stand-in fds of these directories are put on their twins (nsdirfd.c) */
}



/* May this call ask for twins: not inside the lock or the shim's own libc calls; attached. */
static int nsd_may_twin(void)
{
    if (nsd_keep || nsf_held || sh_busy || sh.disabled)
        return 0;
    if (!atomic_load_explicit(&sh.attached, memory_order_acquire) && sh_attach() < 0)
        return 0;
    return atomic_load_explicit(&sh.hdr->mdirs_live, memory_order_relaxed) != 0;
}

void nsd_give_twin(const char *abs)
{
    if (nsd_may_twin())
        nsd_twin(abs, 0);
}

int nsd_dir_slot(const char *abs, uint32_t *gen)
{
    return nsd_live() ? nsd_find(abs, gen) : -1;
}

void nsd_resolved(const char *abs, const char *p)
{
    if (!nsd_keep)
        nsd_quiet.armed = 0;
    if (!nsd_may_twin())
        return;
    /* "a/.." was folded lexically: the directory it went through is gone from abs. */
    if (pn_has_dotdot(p)) {
        nsd_twin("/", EPH_DIRTWIN_ALL);
        return;
    }
    char pre[EPH_PATH_MAX];
    size_t n = strnlen(abs, sizeof pre - 1);
    memcpy(pre, abs, n);
    pre[n] = '\0';
    for (size_t i = 1; i <= n; i++) {
        if (i < n && pre[i] != '/')
            continue;
        char c = pre[i];
        pre[i] = '\0';
        int found = nsd_find(pre, NULL);
        pre[i] = c;
        if (found != -1) {
            nsd_twin(abs, 0);
            return;
        }
    }
}

void nsd_dotdot(void)
{
    if (nsd_may_twin())
        nsd_twin("/", EPH_DIRTWIN_ALL);
}

int nsd_enoent(int dirfd, const char *path)
{
    char abs[EPH_PATH_MAX];
    int t, e = errno;
    nsd_quiet.answered = 0;
    /* Through a stand-in whose directory got its twin in the middle of the call: on the twin now,
     * and again (the kernel met the removed stand-in, where nothing can be). */
    if (unlikely(ft_mdirfd(dirfd)) && !path_bad_ptr(path) && path[0] != '/' && ndf_moved(dirfd)) {
        errno = e;
        return 1;
    }
    if (path_bad_ptr(path) || !path_maybe_managed(dirfd, path) || !nsd_may_twin())
        return 0;
    if (nsd_quiet.armed && dirfd == nsd_quiet.dirfd && strcmp(path, nsd_quiet.path) == 0) {
        nsd_quiet.armed = 0;
        nsd_quiet.answered = nsd_quiet.final;
        return 0;
    }
    uint64_t before = atomic_load(&sh.hdr->dir_twins);
    path_resolve(dirfd, path, abs, &t); /* makes the twins (nsd_resolved) */
    int again = atomic_load(&sh.hdr->dir_twins) != before;
    errno = e;
    return again;
}

int nsd_dirs_live(void)
{
    return nsd_live();
}

int nsd_is_dir(const char *abs)
{
    return nsd_live() && nsd_find(abs, NULL) >= 0;
}

int nsd_mem_parent(const char *abs, uint32_t *idx, uint32_t *gen)
{
    if (!nsd_live())
        return 0;
    char dir[EPH_PATH_MAX];
    uint32_t g;
    nsf_parent(abs, dir);
    int i = nsd_find(dir, &g);
    if (i < 0)
        return 0;
    if (idx)
        *idx = (uint32_t)i;
    if (gen)
        *gen = g;
    return 1;
}

int nsd_allows(const char *dir, int amode)
{
    if (!nsd_live() || nsd_find(dir, NULL) < 0)
        return -1;
    uid_t uid = creds_euid();
    gid_t gid = creds_egid();
    char pre[EPH_PATH_MAX];
    size_t n = strnlen(dir, sizeof pre - 1);
    memcpy(pre, dir, n);
    pre[n] = '\0';
    /* The kernel's walk: search on every directory on the way, then amode on dir itself. */
    for (int want = amode;; want = X_OK) {
        uint32_t g;
        int i = nsd_find(pre, &g);
        if (i < 0)
            return nsv_dir_allows(pre, X_OK); /* the first directory on disk, and the disk above it */
        struct eph_inode *in = &sh.inodes[i];
        if (!nsd_may(in->mode, in->uid, in->gid, uid, gid, want))
            return 0;
        char *s = strrchr(pre, '/');
        if (!s || s == pre)
            return 1;
        *s = '\0';
    }
}

static SH_TLS int nsd_missing_last;
/* nsd_resolve_dir: a directory in memory at the path itself is wanted (its slot, no twin). */
static SH_TLS int nsd_dir_wanted, nsd_dir_found;
static SH_TLS uint32_t nsd_dir_gen;

/*
 * Files inside directories in memory (branch dirfiles): on unless EPHEMERA_MEMDIR_FILES=0 is in
 * the environment (read once per process; every process of a run sees the same value).  Off,
 * nsd_resolve_in is path_resolve and every directory gets its twin at its first file, as on main
 * before; the switch is there to tell a bug of this feature from another while it is young.
 */
int nsd_files_in_memory(void)
{
    static int on = -1;
    return nsd_switch_on("EPHEMERA_MEMDIR_FILES", &on);
}

/* abs goes through a name that exists nowhere, right below a directory in memory that the caller
 * may search (the kernel's walk says ENOENT there: nothing below an in-memory directory is on
 * disk), and is not the name itself: 1. */
static int nsd_under_missing(const char *abs)
{
    char pre[EPH_PATH_MAX];
    size_t n = strnlen(abs, sizeof pre - 1), last = 0;
    memcpy(pre, abs, n);
    pre[n] = '\0';
    for (size_t i = 1; i < n; i++) {
        if (pre[i] != '/')
            continue;
        pre[i] = '\0';
        int f = nsd_find(pre, NULL);
        pre[i] = '/';
        if (f == -2)
            return 0;
        if (f >= 0)
            last = i;
    }
    if (last == 0)
        return 0;
    const char *next = strchr(abs + last + 1, '/');
    if (!next)
        return 0; /* the name itself: its parent is in memory */
    size_t cut = (size_t)(next - abs);
    uint32_t idx, g, st;
    pre[cut] = '\0';
    int r = nsv_find(pre, &idx, &g, &st);
    if (r != -ENOENT && r != -1)
        return 0; /* there (a file: the kernel's ENOTDIR), or cannot tell */
    pre[last] = '\0';
    return nsd_allows(pre, X_OK) == 1;
}

int nsd_resolve_in(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing)
{
    nsd_missing_last = 0;
    if (!nsd_files_in_memory())
        return path_resolve(dirfd, p, out, trailing);
    nsd_quiet.armed = 0;
    nsd_keep = 1;
    int r = path_resolve(dirfd, p, out, trailing);
    nsd_keep = 0;
    if (r <= 0 || !nsd_may_twin())
        return r;
    /* A name in an in-memory directory, itself no directory in memory: served from the region.
     * A name below one that is missing there: the caller answers ENOENT (nsd_missing). */
    if (pn_has_dotdot(p)) {
        nsd_resolved(out, p);
    } else if (nsd_mem_parent(out, NULL, NULL) && nsd_find(out, NULL) == -1) {
        /* Only the name's own directory stays in memory; the ones above it get their twins (once),
         * as every ancestor of a file did before files could live in memory.  A program that
         * walks a tree stats a directory, opens it (which makes its twin) and compares the two:
         * the directory that holds the files meets its twin at that stat (nsd_fill), and a
         * directory above them must already be on disk for the sizes to agree. */
        char gp[EPH_PATH_MAX];
        nsf_parent(out, gp);
        char *s = strrchr(gp, '/');
        /* With stand-in fds the open of a directory makes no twin and its fstat is the region's,
         * as its stat is: the sizes agree at every level, and the directories above stay in
         * memory too (branch dirtwin: tar x made 10 twins here, and each one kept its subtree
         * from a rename in memory). */
        if (s && s != gp && !ndf_on()) {
            *s = '\0';
            if (nsd_find(gp, NULL) != -1)
                nsd_resolved(gp, gp);
        }
        return r;
    }
    else if (nsd_under_missing(out))
        nsd_missing_last = 1;
    else if (nsd_dir_wanted && (nsd_dir_found = nsd_find(out, &nsd_dir_gen)) >= 0)
        ; /* the directory itself, opened on a stand-in (nsdirfd.c): no twin */
    else
        nsd_resolved(out, p);
    return r;
}

/*
 * chmod and utimensat of a directory in memory (issue 15, branch twincount): apply changes its
 * slot under the namespace lock, where stat, the permission checks of the calls served in memory
 * (nsd_may) and its twin, when one is made later (daemon/dirtwin.c), read the mode and times.
 * Before, each call gave the directory its disk twin first (unzip restores every directory's mode
 * and times: 21 round trips for 1000 files).
 */
int nsd_change(const char *abs, uint32_t idx, uint32_t gen, int by_path, void (*apply)(struct eph_inode *, const void *),
               const void *arg)
{
    struct eph_shm_header *h = sh.hdr;
    /* by path, the kernel's walk needs search on every directory on the way */
    if ((by_path && nsd_allows(abs, 0) != 1) || nsf_hold() < 0)
        return -2;
    struct eph_inode *in = &sh.inodes[idx];
    int ok = eph_chain_lookup(h, abs) == (int)idx && atomic_load(&in->gen) == gen &&
             atomic_load(&in->state) == EPH_MDIR;
    if (ok)
        apply(in, arg);
    nsf_unhold();
    return ok ? 0 : -2;
}

int nsd_resolve_dir(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing, uint32_t *idx, uint32_t *gen)
{
    nsd_dir_wanted = 1;
    nsd_dir_found = -1;
    int r = nsd_resolve_in(dirfd, p, out, trailing);
    nsd_dir_wanted = 0;
    if (r > 0 && nsd_dir_found >= 0) {
        *idx = (uint32_t)nsd_dir_found;
        *gen = nsd_dir_gen;
        return 2;
    }
    return r;
}

int nsd_missing(void)
{
    return nsd_missing_last;
}

void nsd_quiet_enoent(int dirfd, const char *p)
{
    size_t n = strlen(p);
    nsd_quiet.dirfd = dirfd;
    memcpy(nsd_quiet.path, p, n < sizeof nsd_quiet.path ? n + 1 : 1);
    nsd_quiet.armed = n < sizeof nsd_quiet.path;
    nsd_quiet.final = 1;
}

int nsd_enoent_final(void)
{
    int a = nsd_quiet.answered;
    nsd_quiet.answered = 0;
    return a;
}

int nsd_resolve_stat(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing)
{
    size_t n = strlen(p);
    nsd_quiet.dirfd = dirfd;
    nsd_quiet.final = 0;
    memcpy(nsd_quiet.path, p, n < sizeof nsd_quiet.path ? n + 1 : 1);
    return nsd_resolve(dirfd, p, out, trailing);
}

int nsd_resolve(int dirfd, const char *p, char out[EPH_PATH_MAX], int *trailing)
{
    nsd_quiet.armed = 0;
    nsd_keep = 1;
    int r = path_resolve(dirfd, p, out, trailing);
    nsd_keep = 0;
    return r;
}

/* ---- checks ------------------------------------------------------------------ */

/* The last component of p is "." or "..": the kernel's errors (EEXIST, EINVAL, ENOTEMPTY) come from disk. */
static int nsd_dot_last(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    size_t s = n;
    while (s > 0 && p[s - 1] != '/')
        s--;
    return (n - s == 1 && p[s] == '.') || (n - s == 2 && p[s] == '.' && p[s + 1] == '.');
}

/* Mode bits of a directory (owner ouid:ogid) against the caller's effective ids. */
static int nsd_may(uint32_t mode, uint32_t ouid, uint32_t ogid, uid_t uid, gid_t gid, int want)
{
    if (uid == 0)
        return 1;
    unsigned bits = uid == ouid ? (mode >> 6) & 7 : (gid == ogid || fp_in_group(ogid)) ? (mode >> 3) & 7 : mode & 7;
    return (bits & (unsigned)want) == (unsigned)want;
}

/* What a directory's parent is: in memory (slot, gen) or on disk (its stat). */
struct nsd_parent {
    int idx; /* -1: on disk */
    uint32_t gen, mode, uid, gid;
    uint64_t dev, ino;
};

static void nsd_parent_mem(struct nsd_parent *p, int idx, uint32_t gen)
{
    struct eph_inode *in = &sh.inodes[idx];
    *p = (struct nsd_parent){idx, gen, in->mode, in->uid, in->gid, in->dev, 0};
}

static void nsd_parent_disk(struct nsd_parent *p, const struct stat *st)
{
    *p = (struct nsd_parent){-1, 0, st->st_mode, st->st_uid, st->st_gid, st->st_dev, st->st_ino};
}

/* Under ns_lock: the parent an operation looked at is still there (in memory: same slot). */
static int nsd_parent_same(const char *dir, const struct nsd_parent *p)
{
    if (p->idx < 0)
        return eph_chain_lookup(sh.hdr, dir) < 0;
    struct eph_inode *in = &sh.inodes[p->idx];
    return eph_chain_lookup(sh.hdr, dir) == p->idx && atomic_load(&in->gen) == p->gen &&
           atomic_load(&in->state) == EPH_MDIR;
}

/* A parent in a record: its entries and subdirectories moved by de and ds, its times now. */
static void nsd_j_parent_by(struct eph_shm_header *h, const struct nsd_parent *p, int de, int ds, int64_t now)
{
    if (p->idx < 0)
        return;
    struct eph_inode *in = &sh.inodes[p->idx];
    if (de)
        eph_j_set32(h, &in->dir_entries, in->dir_entries + (uint32_t)de);
    if (ds)
        eph_j_set32(h, &in->dir_subdirs, in->dir_subdirs + (uint32_t)ds);
    eph_j_set64(h, &in->mtime_ns, (uint64_t)now);
    eph_j_set64(h, &in->ctime_ns, (uint64_t)now);
}

/* Journal the parent's side of adding (+1) or removing (-1) a subdirectory; 0: a name replaced (a
 * rename over an empty directory), only the times move. */
static void nsd_j_parent(struct eph_shm_header *h, const struct nsd_parent *p, int d, int64_t now)
{
    nsd_j_parent_by(h, p, d, d, now);
}

/* ---- mkdir ---------------------------------------------------------------------- */

/* The disk parent dir (canonical: no symlink on the way) and its stat; -1: not here. */
static int nsd_disk_parent(const char *dir, struct stat *st)
{
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof how);
    if (fd < 0)
        return -1;
    if (sys.fstat(fd, st) < 0) {
        sys.close(fd);
        return -1;
    }
    return fd;
}

static void nsd_list_add(struct eph_shm_header *h, uint64_t before, uint32_t slot);

int nsd_mkdir(int dirfd, const char *path, mode_t mode, char abs[EPH_PATH_MAX])
{
    char dir[EPH_PATH_MAX];
    int trailing;
    if (sh_busy || !path_maybe_managed(dirfd, path) || pn_has_dotdot(path) || nsd_dot_last(path))
        return -2;
    if (nsd_resolve(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0 || path_is_root(abs))
        return -2;
    struct eph_shm_header *h = sh.hdr;
    if (atomic_load(&h->mdirs_off))
        return -2;
    const char *name = strrchr(abs, '/') + 1;
    if (!name[0] || strlen(name) > NAME_MAX)
        return -2;
    nsf_parent(abs, dir);
    uid_t uid = creds_euid();
    gid_t gid = creds_egid();
    uint32_t gone = atomic_load(&h->dirs_gone); /* the parent is looked at before the lock */
    struct nsd_parent par;
    uint32_t pg = 0, fi, fg;
    int pidx = nsd_find(dir, &pg), kfd = -1, disk = pidx == -1;
    if (pidx == -2)
        return -2;
    if (pidx >= 0) {
        nsd_parent_mem(&par, pidx, pg);
        if (!nsd_may(par.mode, par.uid, par.gid, uid, gid, X_OK))
            return -2;
        if (nsd_find(abs, NULL) != -1 || nsv_lookup(abs, &fi, &fg) == 0) {
            errno = EEXIST;
            return -1;
        }
        if (!nsd_may(par.mode, par.uid, par.gid, uid, gid, W_OK))
            return -2;
    } else {
        struct stat pst;
        /* No symlink under a root: the lexical parent is the kernel's walk, and its stat may come
         * from the dircache (git's 256 fan-out mkdirs each opened "objects" with openat2). */
        if (nsd_no_symlinks() ? dc_stat(dir, &pst) < 0 || !S_ISDIR(pst.st_mode) : (kfd = nsd_disk_parent(dir, &pst)) < 0)
            return -2;
        nsd_parent_disk(&par, &pst);
        int x = nsd_may(par.mode, par.uid, par.gid, uid, gid, X_OK), there = x && nsd_find(abs, NULL) != -1;
        if (!x || there || !nsd_may(par.mode, par.uid, par.gid, uid, gid, W_OK) || nsv_lookup(abs, &fi, &fg) == 0) {
            if (kfd >= 0)
                sys.close(kfd);
            if (there)
                errno = EEXIST; /* a directory in memory: the kernel's lookup finds it before the write check */
            return there ? -1 : -2;
        }
    }
    uint32_t slot;
    int32_t dfd;
    int pfd;
    if (nsf_take_slot(&slot, &dfd, &pfd) < 0) {
        if (kfd >= 0)
            sys.close(kfd);
        return -2;
    }
    if (nsf_hold() < 0) {
        nsf_give_slot(slot, dfd, pfd, 1);
        if (kfd >= 0)
            sys.close(kfd);
        return -1;
    }
    struct eph_inode *in = &sh.inodes[slot];
    struct stat st;
    int ok = slot < h->ninodes && atomic_load(&in->state) == EPH_FREE && in->mem_fd == dfd;
    int again = ok && (atomic_load(&h->mdirs_off) || atomic_load(&h->dirs_gone) != gone ||
                       eph_chain_lookup(h, abs) >= 0 || !nsd_parent_same(dir, &par) ||
                       /* the name free on disk, looked at under the lock as a rename's target is */
                       (disk && ((kfd >= 0 ? sys.fstatat(kfd, name, &st, AT_SYMLINK_NOFOLLOW)
                                           : sys.fstatat(AT_FDCWD, abs, &st, AT_SYMLINK_NOFOLLOW)) == 0 ||
                                 errno != ENOENT)));
    if (!ok || again) {
        nsf_unhold();
        nsf_give_slot(slot, dfd, pfd, ok); /* not the free slot that was lent: dropped */
        if (kfd >= 0)
            sys.close(kfd);
        return -2;
    }
    /* FREE and on no chain: invisible until the record applies. */
    int64_t now = fp_fine_stamp();
    uint32_t m = (uint32_t)mode & 01777 & ~sh_umask(), g = gid;
    if (par.mode & S_ISGID) {
        g = par.gid;
        m |= S_ISGID;
    }
    eph_inode_fresh(in, 0, sh_lru_ns());
    in->dev = par.dev;
    in->mode = S_IFDIR | m;
    in->uid = uid;
    in->gid = g;
    in->dir_entries = in->dir_subdirs = 0;
    in->dir_parent_ino = par.ino;
    atomic_store(&in->times_seen, 0);
    atomic_store(&in->atime_ns, now);
    atomic_store(&in->mtime_ns, now);
    atomic_store(&in->ctime_ns, now);
    in->btime_ns = now;
    int32_t lent_to = atomic_load(&in->lent_to); /* our pid: the slot was lent to us */

    uint64_t made = atomic_load(&h->shim_mkdirs); /* under ns_lock: the record moves it by one */
    eph_j_begin(h);
    memcpy(h->journal.path, abs, strlen(abs) + 1);
    eph_j_add(h, EPH_JOP_INSERT, slot, 0);
    eph_j_set32(h, &in->lent_to, 0);
    eph_j_set32(h, &in->state, EPH_MDIR);
    eph_j_set32(h, &h->mdirs_live, atomic_load(&h->mdirs_live) + 1);
    nsd_j_parent(h, &par, 1, now);
    /* In the record, after the state: whoever reads the new count sees the slot EPH_MDIR, and a
     * redo after a kill counts it too (nsd_children_of's lists of directories depend on it). */
    eph_j_add64(h, &h->shim_mkdirs, 1);
    eph_j_commit(h);
    nsd_list_add(h, made, slot);
    /* a disk parent's times: the region's dirtouch table, as for a file's create (nsfast.c) */
    int shown = !disk || nsf_touch_dir(par.dev, par.ino, now) == 0;
    nsf_unhold();

    nsd_keep_slot((struct nsd_kept){slot, atomic_load(&in->gen), dfd, lent_to, pfd});
    if (kfd >= 0)
        sys.close(kfd);
    if (!shown)
        nsf_touch_kernel(abs);
    return 0;
}

/* ---- rmdir ----------------------------------------------------------------------- */

int nsd_rmdir(int dirfd, const char *path, char abs[EPH_PATH_MAX])
{
    char dir[EPH_PATH_MAX];
    int trailing;
    abs[0] = '\0';
    if (sh_busy || !path_maybe_managed(dirfd, path))
        return -2;
    /* "x/." and "x/..": the kernel's EINVAL or ENOTEMPTY once it has walked to x (the lexical
     * path is x itself, which must not be removed) */
    if (nsd_dot_last(path))
        return ENOENT_FIX(dirfd, path, sys.unlinkat(dirfd, path, AT_REMOVEDIR));
    if (!nsd_live() || pn_has_dotdot(path))
        return -2;
    if (nsd_resolve(dirfd, path, abs, &trailing) <= 0 || sh_attach() < 0)
        return -2;
    struct eph_shm_header *h = sh.hdr;
    uint32_t g, pg = 0;
    int idx = nsd_find(abs, &g);
    if (idx < 0)
        return -2;
    nsf_parent(abs, dir);
    int pidx = nsd_find(dir, &pg);
    if (pidx == -2)
        return -2;
    struct nsd_parent par;
    uid_t uid = creds_euid();
    if (pidx >= 0) {
        nsd_parent_mem(&par, pidx, pg);
    } else {
        struct stat pst;
        if (dc_stat(dir, &pst) < 0)
            return -2;
        nsd_parent_disk(&par, &pst);
    }
    struct eph_inode *in = &sh.inodes[idx];
    if (uid != 0 && (!nsd_may(par.mode, par.uid, par.gid, uid, creds_egid(), W_OK | X_OK) ||
                     ((par.mode & S_ISVTX) && uid != in->uid && uid != par.uid)))
        return -2; /* the kernel's EACCES or EPERM, from the twin */
    if (nsf_hold() < 0)
        return -1;
    if (eph_chain_lookup(h, abs) != idx || atomic_load(&in->gen) != g || atomic_load(&in->state) != EPH_MDIR ||
        !nsd_parent_same(dir, &par)) {
        nsf_unhold();
        return -2;
    }
    if (in->dir_entries) {
        nsf_unhold();
        errno = ENOTEMPTY;
        return -1;
    }
    int64_t now = fp_fine_stamp();
    uint32_t live = atomic_load(&h->mdirs_live);
    struct nsd_kept k = {0};
    int ours = nsd_take_kept((uint32_t)idx, g, &k);
    eph_j_begin(h);
    eph_j_add(h, EPH_JOP_REMOVE, (uint32_t)idx, 0);
    eph_j_set32(h, &h->mdirs_live, live ? live - 1 : 0);
    nsd_j_parent(h, &par, -1, now);
    if (ours) { /* back to our pool: FREE and lent to us, as the daemon lent it */
        eph_j_set32(h, &in->state, EPH_FREE);
        eph_j_set32(h, &in->lent_to, (uint32_t)k.lent_to);
    }
    eph_j_commit(h);
    atomic_fetch_add(&h->dirs_gone, 1); /* after the removal (shm.h) */
    if (!ours)
        atomic_store(&h->reclaim_pending, 1); /* the daemon frees the slot (unnamed, never opened) */
    int shown = par.idx >= 0 || nsf_touch_dir(par.dev, par.ino, now) == 0;
    nsf_unhold();
    if (ours)
        nsf_give_slot(k.slot, k.dfd, k.fd, 1);
    if (!shown)
        nsf_touch_kernel(abs);
    return 0;
}

/* ---- rename ---------------------------------------------------------------------- */

/* a directory's parent, as nsd_parent: 0, or -2 (cannot tell, or no directory there) */
static int nsd_parent_of(const char *abs, char dir[EPH_PATH_MAX], struct nsd_parent *p)
{
    uint32_t g = 0;
    nsf_parent(abs, dir);
    int i = nsd_find(dir, &g);
    if (i == -2)
        return -2;
    if (i >= 0) {
        nsd_parent_mem(p, i, g);
        return 0;
    }
    struct stat st;
    if (dc_stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return -2;
    nsd_parent_disk(p, &st);
    return 0;
}

/*
 * Under ns_lock: may the subtree of directory a (holding names) move to b?  Every slot at or
 * below it in memory with a name that still fits (EPH_PATH_MAX) once renamed, and none of its
 * files on its way to disk (an eviction links its file at the path it read).  One pass over
 * the slots ever used.
 */
static int nsd_tree_movable(const char *a, const char *b)
{
    struct eph_shm_header *h = sh.hdr;
    size_t alen = strlen(a), blen = strlen(b);
    uint32_t hwm = atomic_load(&h->inode_hwm);
    if (hwm > h->ninodes)
        hwm = h->ninodes;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &sh.inodes[i];
        uint32_t st = atomic_load(&in->state);
        if (st == EPH_FREE || !eph_path_at_or_below(in->path, a, alen))
            continue;
        if ((st != EPH_MEM && st != EPH_MDIR && st != EPH_NAME) || blen + strlen(in->path) - alen >= EPH_PATH_MAX)
            return 0;
    }
    return 1;
}

/* After a move or exchange of a directory in memory has committed, still holding: the times of
 * the parents on disk (pa, and pb unless same), the hold let go, the directory cache told (a disk
 * parent's st_nlink counts its subdirectories in memory); a parent whose times had no room in the
 * table gets the kernel's touch of both names instead.  0. */
static int nsd_moved(const struct nsd_parent *pa, const struct nsd_parent *pb, int same, int64_t now, const char *a,
                     const char *b)
{
    int full = (pa->idx < 0 && nsf_touch_dir(pa->dev, pa->ino, now) < 0) ||
               (!same && pb->idx < 0 && nsf_touch_dir(pb->dev, pb->ino, now) < 0);
    nsf_unhold();
    dc_changed();
    if (full) {
        nsf_touch_kernel(a);
        nsf_touch_kernel(b);
    }
    return 0;
}

int nsd_rename_dir(const char *a, uint32_t s, uint32_t sg, const char *b, int t, uint32_t tg)
{
    struct eph_shm_header *h = sh.hdr;
    char da[EPH_PATH_MAX], db[EPH_PATH_MAX];
    struct nsd_parent pa, pb;
    uint32_t gone = atomic_load(&h->dirs_gone); /* the parents are looked at before the lock */
    if (strlen(b) >= EPH_PATH_MAX || nsd_parent_of(a, da, &pa) < 0 || nsd_parent_of(b, db, &pb) < 0)
        return -2;
    struct eph_inode *in = &sh.inodes[s], *ti = t >= 0 ? &sh.inodes[t] : NULL;
    /* Another file system (or root) is the kernel's EXDEV, after its twins: the old way. */
    if (pb.dev != in->dev)
        return -2;
    int same = strcmp(da, db) == 0;
    if (nsf_hold() < 0)
        return -1;
    int r = -3; /* changed since the caller looked: it decides again */
    struct stat st;
    if (atomic_load(&h->mdirs_off)) {
        r = -2;
        goto out;
    }
    if (atomic_load(&h->dirs_gone) != gone || eph_chain_lookup(h, a) != (int)s || atomic_load(&in->gen) != sg ||
        atomic_load(&in->state) != EPH_MDIR || !nsd_parent_same(da, &pa) || !nsd_parent_same(db, &pb))
        goto out;
    if (ti) {
        if (eph_chain_lookup(h, b) != t || atomic_load(&ti->gen) != tg || atomic_load(&ti->state) != EPH_MDIR)
            goto out;
        if (ti->dir_entries) {
            errno = ENOTEMPTY; /* filled since the caller's look */
            r = -1;
            goto out;
        }
    } else if (eph_chain_lookup(h, b) >= 0) {
        goto out;
    } else if (pb.idx < 0 && (sys.lstat(b, &st) == 0 || errno != ENOENT)) {
        r = -2; /* a name on disk there (looked at under the lock, as mkdir's): the kernel's rename */
        goto out;
    }
    if (in->dir_entries && !nsd_tree_movable(a, b)) {
        r = -2;
        goto out;
    }
    int64_t now = fp_fine_stamp();
    uint32_t live = atomic_load(&h->mdirs_live);
    uint64_t pino = pb.idx < 0 ? pb.ino : 0;
    eph_j_begin(h);
    if (ti) { /* the empty directory replaced goes, as an rmdir (the daemon frees its slot) */
        eph_j_add(h, EPH_JOP_REMOVE, (uint32_t)t, 0);
        eph_j_set32(h, &h->mdirs_live, live ? live - 1 : 0);
    }
    memcpy(h->journal.path, b, strlen(b) + 1);
    if (!in->dir_entries) {
        /* alone: one name changes, as a file's rename (nlink of a directory slot is 1) */
        eph_j_add(h, EPH_JOP_REMOVE, s, 0);
        eph_j_add(h, EPH_JOP_INSERT, s, 0);
    } else {
        size_t alen = strlen(a);
        memcpy(h->journal.path2, a, alen + 1);
        eph_j_add(h, EPH_JOP_MOVETREE, 0, (uint64_t)alen);
    }
    eph_j_set64(h, &in->ctime_ns, (uint64_t)now);
    if (in->dir_parent_ino != pino)
        eph_j_set64(h, &in->dir_parent_ino, pino);
    if (same) {
        nsd_j_parent(h, &pa, ti ? -1 : 0, now);
    } else {
        nsd_j_parent(h, &pa, -1, now);
        nsd_j_parent(h, &pb, ti ? 0 : 1, now);
    }
    eph_j_commit_as(h, "dirmove");
    atomic_fetch_add(&h->dirs_gone, 1); /* every path below a changed (shm.h) */
    atomic_fetch_add(&h->shim_dir_renames, 1);
    if (ti)
        atomic_store(&h->reclaim_pending, 1);
    return nsd_moved(&pa, &pb, same, now, a, b);
out:
    nsf_unhold();
    return r;
}

/* Under ns_lock: is side x (name abs) still what the caller saw?  A directory: its slot on the
 * chain, of its generation, EPH_MDIR; a file: a name of it on the chain, the file EPH_MEM. */
static int nsd_xside_same(struct eph_shm_header *h, const char *abs, const struct nsd_xside *x)
{
    struct eph_inode *in = &sh.inodes[x->slot];
    int n = eph_chain_lookup(h, abs);
    if (atomic_load(&in->gen) != x->gen || atomic_load(&in->state) != (x->dir ? EPH_MDIR : EPH_MEM))
        return 0;
    return x->dir ? n == (int)x->slot : eph_names(h, n, x->slot);
}

/*
 * RENAME_EXCHANGE of a and b, both in memory and at least one a directory, the kernel's checks
 * made by the caller: one record of three XTREE steps (a's subtree or name parked, b's to a, the
 * parked one to b; nslock.h), both ctimes, a directory's dir_parent_ino (a disk parent counts its
 * subdirectories in memory by it) and the parents' times.  Two directories: no parent's count
 * moves (one leaves each and one arrives); a directory against a file in two parents: the
 * directory's old parent has a subdirectory less, its new one one more, as tmpfs's
 * simple_rename_exchange.  0; -3 when a name or a parent changed since the caller looked; -2 (the
 * old way) when a file below either is on its way to disk, a name would not fit, or the two are
 * on different file systems.
 */
int nsd_exchange(const char *a, const struct nsd_xside *xa, const char *b, const struct nsd_xside *xb)
{
    struct eph_shm_header *h = sh.hdr;
    char da[EPH_PATH_MAX], db[EPH_PATH_MAX];
    struct nsd_parent pa, pb;
    uint32_t gone = atomic_load(&h->dirs_gone); /* the parents are looked at before the lock */
    if ((!xa->dir && !xb->dir) || nsd_parent_of(a, da, &pa) < 0 || nsd_parent_of(b, db, &pb) < 0)
        return -2;
    struct eph_inode *ai = &sh.inodes[xa->slot], *bi = &sh.inodes[xb->slot];
    if (ai->dev != bi->dev || pa.dev != pb.dev)
        return -2; /* the kernel's EXDEV, after the twins */
    int same = strcmp(da, db) == 0;
    /* a directory against a file in two parents: the subdirectory moves from the one to the other */
    int sa = same || xa->dir == xb->dir ? 0 : xa->dir ? -1 : 1, sb = -sa;
    if (nsf_hold() < 0)
        return -1;
    int r = -3;
    if (atomic_load(&h->mdirs_off)) {
        r = -2;
        goto out;
    }
    if (atomic_load(&h->dirs_gone) != gone || !nsd_xside_same(h, a, xa) || !nsd_xside_same(h, b, xb) ||
        !nsd_parent_same(da, &pa) || !nsd_parent_same(db, &pb))
        goto out;
    if (!nsd_tree_movable(a, b) || !nsd_tree_movable(b, a)) {
        r = -2;
        goto out;
    }
    int64_t now = fp_fine_stamp();
    uint64_t aino = pb.idx < 0 ? pb.ino : 0, bino = pa.idx < 0 ? pa.ino : 0; /* the new parents */
    eph_j_begin(h);
    memcpy(h->journal.path, a, strlen(a) + 1);
    memcpy(h->journal.path2, b, strlen(b) + 1);
    for (uint64_t step = 1; step <= 3; step++)
        eph_j_add(h, EPH_JOP_XTREE, 0, step);
    eph_j_set64(h, &ai->ctime_ns, (uint64_t)now);
    eph_j_set64(h, &bi->ctime_ns, (uint64_t)now);
    if (xa->dir && ai->dir_parent_ino != aino)
        eph_j_set64(h, &ai->dir_parent_ino, aino);
    if (xb->dir && bi->dir_parent_ino != bino)
        eph_j_set64(h, &bi->dir_parent_ino, bino);
    /* at most 12: 3 steps, 2 ctimes, 2 dir_parent_inos with two directories (1 with a file), and 2
     * times of each parent in memory (with a file in two parents, 3: the subdirectory count) */
    nsd_j_parent_by(h, &pa, 0, sa, now);
    if (!same)
        nsd_j_parent_by(h, &pb, 0, sb, now);
    eph_j_commit_as(h, "dirxchg");
    atomic_fetch_add(&h->dirs_gone, 1); /* every path below both changed (shm.h) */
    atomic_fetch_add(&h->shim_dir_renames, 1);
    return nsd_moved(&pa, &pb, same, now, a, b);
out:
    nsf_unhold();
    return r;
}

/* ---- stat ------------------------------------------------------------------------ */

/* abs if it is an in-memory directory, into st (or stx): 0, or -1 (not one). */
static int nsd_fill(const char *abs, struct stat *st, struct statx *stx)
{
    nsd_quiet.armed = 1;
    if (!nsd_live())
        return -1;
    for (int tries = 0; tries < 100; tries++) {
        uint32_t g;
        int idx = nsd_find(abs, &g);
        if (idx < 0)
            return -1;
        nsd_quiet.armed = 0;
        struct eph_inode *in = &sh.inodes[idx];
        if (in->dir_entries > in->dir_subdirs && !ndf_on() && nsd_may_twin()) {
            /* It holds files: the twin first, and the kernel's stat of it.  A program that stats a
             * directory, opens it (which makes the twin) and compares the two (tar's "file changed
             * as we read it", by st_size) must see one directory; a directory holding only
             * subdirectories keeps tmpfs's answers in memory, as before files could live there
             * (the ones above files are on disk already: nsd_resolve_in). */
            nsd_twin(abs, 0);
            return -1;
        }
        if (st)
            fp_fill_stat(in, -1, st);
        else
            fp_fill_statx(in, -1, STATX_BASIC_STATS, stx);
        uint32_t entries = in->dir_entries, subdirs = in->dir_subdirs;
        if (atomic_load(&in->gen) != g || atomic_load(&in->state) != EPH_MDIR)
            continue; /* freed and reused while we copied */
        if (st) {
            st->st_nlink = 2 + subdirs;
            st->st_size = (off_t)(2 + entries) * NSD_BOGO_DIRENT;
            st->st_blocks = 0;
        } else {
            stx->stx_nlink = 2 + subdirs;
            stx->stx_size = (uint64_t)(2 + entries) * NSD_BOGO_DIRENT;
            stx->stx_blocks = 0;
        }
        sh_tc.stats++;
        sh_count_tick();
        return 0;
    }
    return -1;
}

int nsd_stat(const char *abs, struct stat *st)
{
    return nsd_fill(abs, st, NULL);
}

int nsd_statx(const char *abs, struct statx *stx)
{
    return nsd_fill(abs, NULL, stx);
}

/*
 * In-memory directories made directly in the disk directory (dev, ino), for the st_nlink of every
 * stat of a disk directory.  A walk over every slot up to the high-water mark cost a cache miss
 * per slot (each is a few KiB apart): unzip's stat of its output directory after each file it
 * wrote scanned 2,000 slots each time, a tenth of its CPU.  So each thread keeps the list of slots
 * that were directories in memory at its last walk, and walks again only when a mkdir in memory
 * made another one: every slot becomes EPH_MDIR only through nsd_mkdir's record, which counts it in
 * shim_mkdirs (journalled, after the state, so a reader of the new count sees the slot, and a redo
 * after a kill counts too).  A listed slot is read live (removed, twinned, reused as a file: no
 * longer EPH_MDIR, not counted), so only the list's membership is cached.  More directories than
 * the list holds: the walk every time, as before.
 */
#define NSD_KIDS_MAX EPH_MDIR_LIST
static SH_TLS struct {
    const void *hdr;
    uint64_t made; /* shim_mkdirs at the walk */
    uint32_t takeovers, n, full;
    uint32_t idx[NSD_KIDS_MAX];
} nsd_kids;

static int nsd_kid_of(const struct eph_inode *in, uint64_t dev, uint64_t ino)
{
    return atomic_load_explicit(&in->state, memory_order_relaxed) == EPH_MDIR && in->dir_parent_ino == ino &&
           in->dev == dev && atomic_load_explicit(&in->nlink, memory_order_relaxed);
}

/*
 * The region's shared list (the header's mdir_list, branch gitfast): every process walked the slots
 * once for itself, at its first stat of a disk directory, and again after any mkdir in memory: git
 * add's and git commit's first stats each read 600-1,500 slots 1,208 bytes apart (a cache and a TLB
 * miss each), the shim's largest symbol in `bench tools`' git row.  Now the first process walks and
 * leaves its list in the region; nsd_mkdir appends the slot it made; a process whose list is out of
 * date copies the region's when it is complete for the shim_mkdirs it read (1), else walks (0).
 */
static int nsd_kids_adopt(struct eph_shm_header *h, uint64_t made, uint32_t takeovers)
{
    uint32_t s = atomic_load_explicit(&h->mdir_list_seq, memory_order_acquire);
    if ((s & 1) || atomic_load_explicit(&h->mdir_list_made, memory_order_relaxed) != made ||
        atomic_load_explicit(&h->mdir_list_takeovers, memory_order_relaxed) != takeovers)
        return 0;
    uint32_t n = atomic_load_explicit(&h->mdir_list_n, memory_order_relaxed);
    if (n > NSD_KIDS_MAX)
        return 0;
    nsd_kids.hdr = NULL; /* a signal handler's stat meanwhile walks for itself */
    for (uint32_t k = 0; k < n; k++)
        nsd_kids.idx[k] = atomic_load_explicit(&h->mdir_list[k], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&h->mdir_list_seq, memory_order_relaxed) != s)
        return 0; /* written meanwhile: the caller walks */
    for (uint32_t k = 0; k < n; k++)
        if (nsd_kids.idx[k] >= h->ninodes)
            return 0; /* not what a shim wrote: walk */
    nsd_kids.n = n;
    nsd_kids.full = 0;
    nsd_kids.made = made;
    nsd_kids.takeovers = takeovers;
    nsd_kids.hdr = h;
    return 1;
}

/* Take the list for writing: the even seq it had, or 1 (odd) when another writer holds it. */
static uint32_t nsd_list_take(struct eph_shm_header *h)
{
    uint32_t s = atomic_load_explicit(&h->mdir_list_seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong(&h->mdir_list_seq, &s, s + 1))
        return 1;
    return s;
}

static void nsd_list_give(struct eph_shm_header *h, uint32_t s)
{
    atomic_store_explicit(&h->mdir_list_seq, s + 2, memory_order_release);
}

/* After a walk that found them all: the region's list, for the next process. */
static void nsd_list_publish(struct eph_shm_header *h)
{
    uint32_t s = nsd_list_take(h);
    if (s & 1)
        return;
    for (uint32_t k = 0; k < nsd_kids.n; k++)
        atomic_store_explicit(&h->mdir_list[k], nsd_kids.idx[k], memory_order_relaxed);
    atomic_store_explicit(&h->mdir_list_n, nsd_kids.n, memory_order_relaxed);
    atomic_store_explicit(&h->mdir_list_made, nsd_kids.made, memory_order_relaxed);
    atomic_store_explicit(&h->mdir_list_takeovers, nsd_kids.takeovers, memory_order_relaxed);
    nsd_list_give(h, s);
}

/*
 * nsd_mkdir, under ns_lock, after its record made slot EPH_MDIR and moved shim_mkdirs from before:
 * a list complete for before is complete for before + 1 with the slot in it (listed already when it
 * was a directory in memory before, read live: not twice).  Else nothing: the list stays out of
 * date and the next reader walks.
 */
static void nsd_list_add(struct eph_shm_header *h, uint64_t before, uint32_t slot)
{
    uint32_t s = nsd_list_take(h);
    if (s & 1)
        return;
    uint32_t n = atomic_load_explicit(&h->mdir_list_n, memory_order_relaxed), k = 0;
    if (atomic_load_explicit(&h->mdir_list_made, memory_order_relaxed) == before &&
        atomic_load_explicit(&h->mdir_list_takeovers, memory_order_relaxed) == atomic_load(&h->takeovers) &&
        n <= NSD_KIDS_MAX) {
        while (k < n && atomic_load_explicit(&h->mdir_list[k], memory_order_relaxed) != slot)
            k++;
        if (k < n || n < NSD_KIDS_MAX) {
            if (k == n) {
                atomic_store_explicit(&h->mdir_list[n], slot, memory_order_relaxed);
                atomic_store_explicit(&h->mdir_list_n, n + 1, memory_order_relaxed);
            }
            atomic_store_explicit(&h->mdir_list_made, before + 1, memory_order_relaxed);
        }
    }
    nsd_list_give(h, s);
}

static void nsd_kids_walk(uint64_t made, uint32_t takeovers)
{
    nsd_kids.hdr = NULL; /* a signal handler's stat meanwhile walks for itself */
    atomic_fetch_add_explicit(&sh.hdr->mdir_walks, 1, memory_order_relaxed);
    uint32_t hwm = atomic_load(&sh.hdr->inode_hwm), n = 0, full = 0;
    for (uint32_t i = 0; i < hwm && i < sh.hdr->ninodes; i++) {
        if (atomic_load_explicit(&sh.inodes[i].state, memory_order_relaxed) != EPH_MDIR)
            continue;
        if (n == NSD_KIDS_MAX) {
            full = 1;
            break;
        }
        nsd_kids.idx[n++] = i;
    }
    nsd_kids.n = n;
    nsd_kids.full = full;
    nsd_kids.made = made;
    nsd_kids.takeovers = takeovers;
    nsd_kids.hdr = sh.hdr;
    if (!full)
        nsd_list_publish(sh.hdr);
}

static uint32_t nsd_children_of(uint64_t dev, uint64_t ino)
{
    struct eph_shm_header *h = sh.hdr;
    uint64_t made = atomic_load_explicit(&h->shim_mkdirs, memory_order_acquire);
    uint32_t takeovers = atomic_load(&h->takeovers), n = 0;
    if ((nsd_kids.hdr != h || nsd_kids.made != made || nsd_kids.takeovers != takeovers) &&
        !nsd_kids_adopt(h, made, takeovers))
        nsd_kids_walk(made, takeovers);
    if (nsd_kids.full || nsd_kids.hdr != h) {
        atomic_fetch_add_explicit(&h->mdir_walks, 1, memory_order_relaxed);
        uint32_t hwm = atomic_load(&h->inode_hwm);
        for (uint32_t i = 0; i < hwm && i < h->ninodes; i++)
            n += (uint32_t)nsd_kid_of(&sh.inodes[i], dev, ino);
        return n;
    }
    for (uint32_t k = 0; k < nsd_kids.n; k++)
        n += (uint32_t)nsd_kid_of(&sh.inodes[nsd_kids.idx[k]], dev, ino);
    return n;
}

uint32_t nsd_twin_seq(void)
{
    if (!atomic_load_explicit(&sh.attached, memory_order_acquire))
        return 0;
    uint32_t s = atomic_load(&sh.hdr->twin_seq);
    if (likely(!(s & 1)) || !nsd_live())
        return s;
    /* A twin under way (a mkdir and a few calls: well under a millisecond): its end waited for, at
     * most a second (a daemon stopped or killed in it; a takeover ends it). */
    for (int i = 0; i < 2000 && (s & 1); i++) {
        struct timespec ts = {0, 500 * 1000};
        nanosleep(&ts, NULL);
        s = atomic_load(&sh.hdr->twin_seq);
    }
    return s;
}

int nsd_twin_moved(uint32_t seq)
{
    if (!atomic_load_explicit(&sh.attached, memory_order_acquire) || !nsd_live())
        return 0;
    return atomic_load(&sh.hdr->twin_seq) != seq;
}

void nsd_disk_dir(int rc, struct stat *st)
{
    if (likely(rc != 0 || !S_ISDIR(st->st_mode)) || !atomic_load_explicit(&sh.attached, memory_order_acquire))
        return;
    if (nsd_live())
        st->st_nlink += nsd_children_of(st->st_dev, st->st_ino);
}

void nsd_disk_dir_x(int rc, struct statx *stx)
{
    if (likely(rc != 0 || !S_ISDIR(stx->stx_mode)) || !atomic_load_explicit(&sh.attached, memory_order_acquire))
        return;
    if ((stx->stx_mask & STATX_NLINK) && nsd_live())
        stx->stx_nlink += nsd_children_of(makedev(stx->stx_dev_major, stx->stx_dev_minor), stx->stx_ino);
}

/* ---- symlinks --------------------------------------------------------------------- */

/*
 * A symlink keeps directories on disk only while it exists: git init makes one
 * to learn whether the file system has them and unlinks it at once, which used
 * to turn directories in memory off for the whole instance (and git's object
 * directories with them).  The count is raised under the lock before the
 * symlink is made, so no mkdir that read it lower is still to commit, and
 * lowered only after an unlink the shim made of a name it saw was a symlink,
 * under the lock (two unlinks of one name cannot both count it).  Every other
 * way a symlink goes (a rename over it, glibc's remove) leaves the count high:
 * directories stay on disk, the old behaviour, never the unsafe side.
 */
int nsd_symlink(int dirfd, const char *path)
{
    if (sh_busy || sh.disabled || !path_maybe_managed(dirfd, path) || sh_attach() < 0)
        return 0;
    struct eph_shm_header *h = sh.hdr;
    if (nsf_hold() < 0) { /* no count: directories off for good rather than a walk that misses one */
        atomic_fetch_or(&h->mdirs_off, EPH_MDIRS_ALWAYS);
        if (atomic_load(&h->mdirs_live))
            nsd_twin("/", EPH_DIRTWIN_ALL | EPH_DIRTWIN_OFF);
        return 0;
    }
    int counted = (atomic_load(&h->mdirs_off) & EPH_MDIRS_SYMLINKS) != EPH_MDIRS_SYMLINKS;
    if (counted)
        atomic_fetch_add(&h->mdirs_off, 1);
    else
        atomic_fetch_or(&h->mdirs_off, EPH_MDIRS_ALWAYS);
    nsf_unhold();
    if (atomic_load(&h->mdirs_live))
        nsd_twin("/", EPH_DIRTWIN_ALL);
    return counted;
}

int nsd_no_symlinks(void)
{
    return atomic_load_explicit(&sh.attached, memory_order_acquire) && atomic_load(&sh.hdr->mdirs_off) == 0;
}

static void nsd_symlink_gone(void)
{
    struct eph_shm_header *h = sh.hdr;
    uint32_t v = atomic_load(&h->mdirs_off);
    while ((v & EPH_MDIRS_SYMLINKS) != 0 && !atomic_compare_exchange_weak(&h->mdirs_off, &v, v - 1))
        ;
}

void nsd_symlink_done(int counted, int rc)
{
    if (counted && rc < 0) {
        int e = errno;
        nsd_symlink_gone();
        errno = e;
    }
}

int nsd_symlink_unlink(int dirfd, const char *path)
{
    struct eph_shm_header *h = sh.hdr;
    struct stat st;
    if (!h || (atomic_load(&h->mdirs_off) & EPH_MDIRS_SYMLINKS) == 0 || nsf_held || sh_busy)
        return -2;
    int e = errno;
    if (sys.fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode) || nsf_hold() < 0) {
        errno = e;
        return -2;
    }
    int r = -2;
    if (sys.fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        r = sys.unlinkat(dirfd, path, 0);
        e = errno;
        if (r == 0)
            nsd_symlink_gone();
    }
    nsf_unhold();
    errno = e;
    return r;
}

void nsd_linked(int dirfd, const char *path)
{
    struct stat st;
    int e = errno;
    if (!sh_busy && !sh.disabled && path_maybe_managed(dirfd, path) && sh_attach() == 0 &&
        sys.fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        atomic_fetch_or(&sh.hdr->mdirs_off, EPH_MDIRS_ALWAYS);
        if (atomic_load(&sh.hdr->mdirs_live))
            nsd_twin("/", EPH_DIRTWIN_ALL | EPH_DIRTWIN_OFF);
    }
    errno = e;
}
