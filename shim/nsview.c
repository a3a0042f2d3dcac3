/*
 * shim/nsview.c - the shim's view of the daemon's namespace: seqlock reads
 * of the shared path hash, and the errors the kernel's path walk would give.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/nslock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "nsview.h"
#include "sys.h"
#include "creds.h"
#include "dircache.h"
#include "init.h"
#include "pathnorm.h"
#include "paths.h"
#include "fp_stat.h"
#include "nsdir.h"

/*
 * A namespace reader met the daemon inside (or racing) a write section.  Spin
 * briefly, then let the daemon run: on a busy machine it can be preempted in
 * the middle of a write, and a reader that gave up after a fixed number of
 * spins reported existing files as missing (ENOENT, absent from readdir).
 * 0: try again; -EAGAIN after about 5 s (a daemon that died mid-write).
 */
int nsv_backoff(unsigned tries)
{
    if (tries < 64) {
        __builtin_ia32_pause();
        return 0;
    }
    if (tries < 128) {
        sched_yield();
        return 0;
    }
    if (tries > 128 + 100000)
        return -EAGAIN;
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL);
    return 0;
}

/*
 * May the caller walk to abs's parent?  The kernel needs search permission on
 * every directory of the path before it looks at a name; the shared hash
 * does not, so without this another user would reach an in-memory file
 * through a directory it may not enter.  One faccessat of the parent checks
 * the whole chain as the kernel's walk does (root with CAP_DAC_OVERRIDE
 * passes, and skips the call).
 */
int nsv_dir_allows(const char *dir, int amode)
{
    if (creds_euid() == 0)
        return 1;
    int m = nsd_allows(dir, amode); /* a directory in memory: its mode bits, no call */
    if (m >= 0)
        return m;
    int saved = errno;
    long r = syscall(SYS_faccessat2, AT_FDCWD, dir, amode, AT_EACCESS);
    if (r < 0 && errno == ENOSYS)
        r = sys.faccessat(AT_FDCWD, dir, amode, AT_EACCESS);
    int ok = r == 0 || errno != EACCES;
    errno = saved;
    return ok;
}

int nsv_parent(const char *abs, char *parent)
{
    const char *slash = strrchr(abs, '/');
    size_t n = slash && slash != abs ? (size_t)(slash - abs) : 1;
    if (n >= EPH_PATH_MAX)
        return -1;
    memcpy(parent, abs, n);
    parent[n] = '\0';
    return 0;
}

int nsv_parent_allows(const char *abs, int amode)
{
    char parent[EPH_PATH_MAX];
    return nsv_parent(abs, parent) < 0 || nsv_dir_allows(parent, amode);
}

int nsv_parent_searchable(const char *abs)
{
    return nsv_parent_allows(abs, X_OK);
}

/*
 * The answers of this thread's last lookups, each valid while ns_seq still has the even value it
 * had when the answer was read: every change to the chains, paths and names happens inside an odd
 * ns_seq (nslock.h), so an unchanged ns_seq means a new lookup would walk the same chain to the
 * same slot.  One call asks about the same names several times (its path's ancestors in
 * nsd_resolve_in, walk_error and nsd_resolved, its parent in nsd_mem_parent and nsf_dir_writable,
 * the name itself before and under the lock): the FNV hash of the whole path and the chain walk
 * (two cache misses) were most of the shim's own time in `git add` (branch gitcost).  The slot's
 * state and gen are read again at each hit, as a lookup reads them, since an eviction changes a
 * state without a namespace change; a gen that moved sends the lookup the long way.
 */
#define NSV_MEMO 16 /* direct-mapped by the name's length and last byte: one compare per lookup */
#define NSV_MEMO_PATH 160
static SH_TLS struct nsv_memo {
    const void *hdr; /* the region it was read from (NULL: unused) */
    uint64_t seq;
    uint32_t len;
    int32_t idx; /* -1: no such name */
    uint32_t gen;
    char path[NSV_MEMO_PATH];
} nsv_memo[NSV_MEMO];

static inline struct nsv_memo *nsv_memo_slot(const char *abs, size_t len)
{
    return &nsv_memo[(len * 7 + (unsigned char)abs[len - 1]) % NSV_MEMO];
}

/* 0 or -ENOENT: the answer kept for abs; 1: none (look it up). */
static int nsv_memo_find(const struct eph_shm_header *h, const char *abs, size_t len, uint32_t *inode, uint32_t *gen,
                         uint32_t *state)
{
    const struct nsv_memo *m = nsv_memo_slot(abs, len);
    uint64_t s = atomic_load_explicit(&h->ns_seq, memory_order_acquire);
    if (m->seq != s || (s & 1) || m->hdr != h || m->len != len || memcmp(m->path, abs, len) != 0)
        return 1;
    if (m->idx < 0)
        return -ENOENT;
    struct eph_inode *ino = &sh.inodes[m->idx];
    uint32_t st = atomic_load_explicit(&ino->state, memory_order_acquire);
    if (atomic_load_explicit(&ino->gen, memory_order_acquire) != m->gen)
        return 1;
    *inode = (uint32_t)m->idx;
    *gen = m->gen;
    *state = st;
    return 0;
}

static void nsv_memo_keep(const struct eph_shm_header *h, uint64_t seq, const char *abs, size_t len, int idx, uint32_t gen)
{
    if (len >= NSV_MEMO_PATH)
        return;
    struct nsv_memo *m = nsv_memo_slot(abs, len);
    /* unused while it is filled: a signal handler's lookup on this thread never sees half of it */
    m->hdr = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    m->seq = seq;
    m->len = (uint32_t)len;
    m->idx = idx;
    m->gen = gen;
    memcpy(m->path, abs, len);
    atomic_signal_fence(memory_order_seq_cst);
    m->hdr = h;
}

int nsv_find(const char *abs, uint32_t *inode, uint32_t *gen, uint32_t *state)
{
    /* Only names strictly below a root are in the region: the prefixes above the roots that every
     * walk of a path's ancestors (walk_error, nsd_resolved, nsd_under_missing) asks about, and a
     * root itself, are answered without hashing the prefix and walking its chain. */
    size_t len = strlen(abs);
    if (len <= path_roots_shortest())
        return -ENOENT;
    struct eph_shm_header *h = sh.hdr;
    int r = nsv_memo_find(h, abs, len, inode, gen, state);
    if (r <= 0)
        return r;
    uint32_t hash = eph_path_hash(abs);
    for (unsigned tries = 0;; tries++) {
        uint64_t s1 = atomic_load_explicit(&h->ns_seq, memory_order_acquire);
        if (s1 & 1) {
            if (nsv_backoff(tries) < 0)
                return -EAGAIN;
            continue;
        }
        int found = -1;
        uint32_t g = 0, st = EPH_FREE;
        uint32_t idx = atomic_load_explicit(&sh.buckets[hash & (h->nbuckets - 1)], memory_order_relaxed);
        for (uint32_t steps = 0; idx && idx <= h->ninodes && steps < h->ninodes; steps++) {
            struct eph_inode *ino = &sh.inodes[idx - 1];
            if (ino->hash == hash && strncmp(ino->path, abs, EPH_PATH_MAX) == 0) {
                found = (int)(idx - 1);
                st = atomic_load_explicit(&ino->state, memory_order_relaxed);
                if (st == EPH_NAME) {
                    /* a further name of a file (a hard link, nslink.c): the file is the answer */
                    uint32_t to = ino->link_to;
                    if (to >= h->ninodes) {
                        found = -1; /* torn: the seqlock check below sends us round again */
                        break;
                    }
                    found = (int)to;
                    ino = &sh.inodes[to];
                    st = atomic_load_explicit(&ino->state, memory_order_relaxed);
                }
                g = atomic_load_explicit(&ino->gen, memory_order_relaxed);
                break;
            }
            idx = ino->next;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->ns_seq, memory_order_relaxed) != s1) {
            if (nsv_backoff(tries) < 0)
                return -EAGAIN;
            continue;
        }
        nsv_memo_keep(h, s1, abs, len, found, g);
        if (found < 0)
            return -ENOENT;
        *inode = (uint32_t)found;
        *gen = g;
        *state = st;
        return 0;
    }
}

int nsv_lookup(const char *abs, uint32_t *inode, uint32_t *gen)
{
    uint32_t i, g, st;
    int r = nsv_find(abs, &i, &g, &st);
    if (r < 0)
        return r;
    if (st == EPH_MDIR)
        return -ENOENT; /* a directory in memory (nsdir.c) is no file */
    if (!nsv_parent_searchable(abs))
        return -ENOENT; /* left to the kernel, whose walk fails with EACCES */
    *inode = i;
    *gen = g;
    return 0;
}

int nsv_stat(const char *abs, struct stat *st)
{
    uint32_t inode, gen;
    for (int tries = 0; tries < 100; tries++) {
        int r = nsv_lookup(abs, &inode, &gen);
        if (r < 0)
            return r;
        struct eph_inode *ino = &sh.inodes[inode];
        fp_fill_stat(ino, -1, st);
        /* The slot may have been freed and reused while we copied. */
        if (atomic_load(&ino->gen) == gen && atomic_load(&ino->state) != EPH_FREE) {
            sh_tc.stats++;
            sh_count_tick();
            return 0;
        }
    }
    return -ENOENT;
}

/*
 * What the kernel's walk to abs's parent would fail with: 0 if every proper
 * ancestor is a directory, else -ENOTDIR or -ENOENT for the first one that
 * is not (an in-memory file counts as a file, although the disk has nothing).
 */
static int walk_error(const char *abs, int depth);

int nsv_walk_error(const char *abs)
{
    return walk_error(abs, 0);
}

static int walk_error(const char *abs, int depth)
{
    char buf[EPH_PATH_MAX];
    size_t n = strlen(abs);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, abs, n + 1);
    uint32_t inode, gen;
    char *s = strchr(buf + 1, '/');
    /* Below a root, the walk starts under it when the root is a directory: every ancestor above a
     * root is below none, so not in memory, and a stat of the root succeeds exactly when each of
     * them leads to a directory, which is all the walk asked of them (git's loose objects: one
     * look where there were two or three more; a new process stats one directory, not each). */
    size_t rl = path_outer_root(buf);
    if (rl) {
        struct stat rs;
        buf[rl] = '\0';
        int dir = dc_stat(buf, &rs) == 0 && S_ISDIR(rs.st_mode);
        buf[rl] = '/';
        if (dir)
            s = strchr(buf + rl + 1, '/');
    }
    for (; s; s = strchr(s + 1, '/')) {
        *s = '\0';
        struct stat st;
        int e = 0;
        /* One look at the region per ancestor: what nsv_lookup and then nsd_is_dir would each
         * have looked up (a file the caller may reach, else a directory in memory). */
        uint32_t state;
        int found = nsv_find(buf, &inode, &gen, &state) == 0;
        if (found && state != EPH_MDIR && nsv_parent_searchable(buf)) {
            e = -ENOTDIR;
        } else if (found && state == EPH_MDIR && nsd_dirs_live()) {
            /* a directory in memory (nsdir.c) */
        } else if (dc_stat(buf, &st) < 0) {
            e = -errno;
            /* a symlink on disk that leads to an in-memory file is a file too */
            char tgt[EPH_PATH_MAX];
            memcpy(tgt, buf, strlen(buf) + 1);
            if (e == -ENOENT && depth < 8 && path_canon(tgt, 1) > 0) {
                eph_ns_stall("walk-link"); /* fault builds: the disk said ENOENT, memory not yet asked (test/c/walklink_test.c) */
                if (nsv_lookup(tgt, &inode, &gen) == 0)
                    e = -ENOTDIR;
                else if (walk_error(tgt, depth + 1) == -ENOTDIR)
                    e = -ENOTDIR;
                /* The disk was asked before memory here: a file the daemon moved to disk in
                 * between (named there before it leaves memory) was in neither look, and the walk
                 * said ENOENT for it (soak seed 146144258).  The disk again, past the dircache's
                 * miss of this call: it is there now if it was in memory at the first look. */
                else if (sys.stat(buf, &st) == 0)
                    e = S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            e = -ENOTDIR;
        }
        *s = '/';
        if (e)
            return e;
    }
    /* the kernel's walk also needs search permission on the last directory, for the final name */
    return nsv_parent_searchable(abs) ? 0 : -EACCES;
}

int nsv_ancestor_is_file(const char *abs)
{
    return nsv_walk_error(abs) == -ENOTDIR;
}

/* nsv_enoent, a name spelled with a trailing slash whose symlink leads to abs (canonical): 1 if abs
 * is a file, which the kernel's walk would have met (ENOTDIR). */
static int slash_file(const char *abs)
{
    uint32_t inode, gen;
    eph_ns_stall("enoent-slash"); /* fault builds: the kernel said ENOENT, memory not yet asked (test/c/enoentorder_test.c) */
    return nsv_lookup(abs, &inode, &gen) == 0;
}

/* The errno for the kernel's ENOENT at abs (resolved lexically; canonicalised here): ENOTDIR when
 * the walk meets a file in memory. */
static void enoent_of(char abs[EPH_PATH_MAX], int t)
{
    if (nsv_ancestor_is_file(abs) || (path_canon(abs, 1) > 0 && (nsv_ancestor_is_file(abs) || (t && slash_file(abs)))))
        errno = ENOTDIR; /* a trailing slash through a symlink to an in-memory file, too */
    else
        errno = ENOENT;
}

void nsv_enoent(int dirfd, const char *path)
{
    char abs[EPH_PATH_MAX];
    int t;
    if (nsd_enoent_final() || sh_busy || !path_maybe_managed(dirfd, path) || sh_attach() < 0)
        return;
    if (pn_has_dotdot(path)) {
        int e = path_physical_error(dirfd, path);
        if (e == -ENOTDIR) {
            errno = ENOTDIR;
            return;
        }
    }
    if (nsd_resolve(dirfd, path, abs, &t) <= 0) /* (its errno only: no disk twin for it) */
        return;
    enoent_of(abs, t);
}

void nsv_enoent_resolved(const char *abs, int t)
{
    char a[EPH_PATH_MAX];
    size_t n = strlen(abs);
    if (nsd_enoent_final() || sh_busy || n >= sizeof a || sh_attach() < 0)
        return;
    memcpy(a, abs, n + 1);
    enoent_of(a, t);
}

int nsv_dir_touched(uint64_t dev, uint64_t ino, int64_t *c, int64_t *m)
{
    struct eph_shm_header *h = sh.hdr;
    if (!atomic_load_explicit(&h->dirtouch_used, memory_order_acquire))
        return 0;
    uint32_t i0 = nsv_dirtouch_slot(ino);
    for (uint32_t k = 0; k < EPH_DIRTOUCH; k++) {
        struct eph_dirtouch *e = &h->dirtouch[(i0 + k) % EPH_DIRTOUCH];
        uint64_t ei = atomic_load_explicit(&e->ino, memory_order_acquire);
        if (ei == 0)
            return 0; /* entries are never removed: the probe ends at the first empty one */
        if (ei != ino)
            continue;
        for (int tries = 0; tries < 1000; tries++) {
            uint32_t s = atomic_load(&e->seq);
            if (s & 1)
                continue; /* a holder of ns_lock between two stores */
            uint64_t d = atomic_load(&e->dev);
            int64_t mt = atomic_load(&e->mtime_ns), ct = atomic_load(&e->ctime_ns);
            if (atomic_load(&e->seq) != s)
                continue;
            if (d != dev)
                break; /* another file system's directory of the same ino: probe on */
            int moved = 0;
            if (mt > *m) {
                *m = mt;
                moved = 1;
            }
            if (ct > *c) {
                *c = ct;
                moved = 1;
            }
            return moved;
        }
    }
    return 0;
}
