/*
 * daemon/dirtwin.c - disk twins of in-memory directories (issue 15).
 *
 * A shim's mkdir makes a directory in the region only (EPH_MDIR, shim/nsdir.c):
 * mkdir, rmdir and stat of it, and the files made in it, are answered there.
 * Everything else that has to meet it on disk (the eviction of a file in it,
 * opendir, chdir, chmod, a rename, an exec of a program without the shim...)
 * first asks for its disk twin: the
 * daemon makes the directory on disk with the in-memory mode, owner and times,
 * for it and every in-memory ancestor, top down, and then drops the slot, so
 * that from then on it is an ordinary disk directory and every existing path of
 * the shim and the daemon serves it unchanged.  Done under ns_lock, so no shim
 * adds or removes a name in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/nslock.h"
#include "ephemera/shm.h"
#include "ephemera/twinrec.h"

#include "daemon.h"
#include "dirtwin.h"
#include "evict.h"
#include "log.h"
#include "namespace.h"

static int dt_key_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Under ns_lock: the record the next twin fills (include/ephemera/twinrec.h): the lowest one never
 * filled or whose slot and generation no stand-in holds (a hold being filled in is not one yet: its
 * claimer reads its slot after, finds it gone and makes no stand-in).  One exists while there are
 * as many records as holds: the holds name at most EPH_STANDIN_HOLDS directories, the one being
 * twinned among them, and it has no record yet.  The usual case, no hold at all: record 0.
 */
static unsigned dt_twinrec_pick(struct eph_shm_header *h)
{
    static uint64_t held[EPH_STANDIN_HOLDS];
    unsigned n = 0, hw = atomic_load(&h->holds_hwm);
    for (unsigned i = 0; i < hw && i < EPH_STANDIN_HOLDS; i++) {
        struct eph_standin_hold *o = &h->standin_holds[i];
        uint32_t pid = atomic_load(&o->pid);
        if (pid && !(pid & EPH_HOLD_FILLING))
            held[n++] = (uint64_t)atomic_load(&o->slot) << 32 | atomic_load(&o->gen);
    }
    if (n)
        qsort(held, n, sizeof *held, dt_key_cmp);
    for (unsigned k = 0; k < EPH_TWINRECS; k++) {
        struct eph_twinrec *r = &h->twinrecs[k];
        uint64_t key = (uint64_t)r->slot << 32 | r->gen;
        if (!atomic_load(&r->seq) || !n || !bsearch(&key, held, n, sizeof *held, dt_key_cmp))
            return k;
    }
    /* Unreachable while the counts match: the old ring, the oldest record reused. */
    unsigned k = atomic_load(&h->twinrec_next) % EPH_TWINRECS;
    atomic_store(&h->twinrec_next, (k + 1) % EPH_TWINRECS);
    log_msg(LOG_WARN, "every record of a twin is held by a stand-in: record %u reused", k);
    return k;
}

void dt_holds_gc(void)
{
    struct eph_shm_header *h = D.h;
    unsigned hw = atomic_load(&h->holds_hwm), freed = 0;
    for (unsigned i = 0; i < hw && i < EPH_STANDIN_HOLDS; i++) {
        struct eph_standin_hold *o = &h->standin_holds[i];
        uint32_t pid = atomic_load(&o->pid);
        if (pid && eph_pid_gone(pid & ~EPH_HOLD_FILLING) && atomic_compare_exchange_strong(&o->pid, &pid, 0))
            freed++;
    }
    if (freed)
        log_msg(LOG_DEBUG, "%u stand-in holds of processes that died given back", freed);
}

/* The directory idx (EPH_MDIR, its parent already on disk) made on disk, then dropped. */
static int dt_twin_made(uint32_t idx)
{
    struct eph_shm_header *h = D.h;
    struct eph_inode *in = &D.inodes[idx];
    char path[EPH_PATH_MAX], parent[EPH_PATH_MAX];
    snprintf(path, sizeof path, "%s", in->path);
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash)
        return -EINVAL;
    slash[slash == parent ? 1 : 0] = '\0';
    struct stat before, st;
    int have_before = stat(parent, &before) == 0;
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        log_msg(LOG_ERR, "disk twin of in-memory directory %s: mkdir: %s", path, strerror(e));
        return -e;
    }
    /* EEXIST: a program without the shim made it meanwhile; it is the twin if it is a directory. */
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
        log_msg(LOG_ERR, "disk twin of in-memory directory %s: a non-directory is in the way", path);
        return -EEXIST;
    }
    if (lchown(path, in->uid, in->gid) < 0 && errno != EPERM)
        log_msg(LOG_WARN, "disk twin %s: chown %u:%u: %s", path, in->uid, in->gid, strerror(errno));
    if (chmod(path, in->mode & 07777) < 0)
        log_msg(LOG_WARN, "disk twin %s: chmod %o: %s", path, in->mode & 07777, strerror(errno));
    int64_t a = atomic_load(&in->atime_ns), m = atomic_load(&in->mtime_ns);
    struct timespec ts[2] = {{a / 1000000000, a % 1000000000}, {m / 1000000000, m % 1000000000}};
    utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
    /* The kernel stamped the twin's ctime now (mkdir, chown, chmod, utimensat); the program saw
     * the one of its mkdir in memory: shown instead while the kernel's stays (eph_dirtime). */
    struct stat shown = st;
    int64_t c = atomic_load(&in->ctime_ns);
    shown.st_ctim = (struct timespec){c / 1000000000, c % 1000000000};
    shown.st_mtim = ts[1];
    evict_hide_dir_times(path, &shown);
    /* Our mkdir moved the parent's kernel times, which the program's mkdir (done in memory, long
     * ago) already did: show the earlier ones, as after an eviction's link.  The time of that mkdir
     * is in the region's dirtouch table, which the shims show when it is later (shim/nsfast.c). */
    if (have_before)
        evict_hide_dir_times(parent, &before);
    /* Its in-memory subdirectories now have a disk parent, whose st_nlink the shims raise
     * for each (plain stores: they only matter once the directory below is dropped). */
    size_t plen = strlen(path);
    uint32_t hwm = atomic_load(&h->inode_hwm);
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *c = &D.inodes[i];
        if (atomic_load(&c->state) == EPH_MDIR && strncmp(c->path, path, plen) == 0 && c->path[plen] == '/' &&
            !strchr(c->path + plen + 1, '/'))
            c->dir_parent_ino = (uint64_t)st.st_ino;
    }
    eph_lock_stall("twin-made"); /* fault builds: on disk, still in memory (test/c/twinlinks_test.c) */
    /* Before the slot goes: a stand-in fd that finds it gone finds where the twin is. */
    eph_twinrec_put(h, dt_twinrec_pick(h), idx, atomic_load(&in->gen), (uint64_t)st.st_dev, (uint64_t)st.st_ino,
                    path);
    uint32_t live = atomic_load(&h->mdirs_live);
    eph_j_begin(h);
    eph_j_add(h, EPH_JOP_REMOVE, idx, 0);
    eph_j_set32(h, &h->mdirs_live, live ? live - 1 : 0);
    eph_j_commit(h);
    atomic_fetch_add(&h->dir_twins, 1);
    log_msg(LOG_DEBUG, "disk twin of in-memory directory %s", path);
    ns_maybe_gc(idx); /* unnamed and never opened: the slot and its memfd go back */
    return 0;
}

/* dt_twin_made with twin_seq odd throughout: the shims' count of the parent's links waits it out. */
static int dt_twin(uint32_t idx)
{
    atomic_fetch_add(&D.h->twin_seq, 1);
    int e = dt_twin_made(idx);
    atomic_fetch_add(&D.h->twin_seq, 1);
    return e;
}

static int dt_find(const char *path)
{
    int idx = eph_chain_lookup(D.h, path);
    return idx >= 0 && atomic_load(&D.inodes[idx].state) == EPH_MDIR ? idx : -1;
}

int dt_settle(const char *path)
{
    if (!path[0] || atomic_load(&D.h->mdirs_live) == 0)
        return 0;
    char p[EPH_PATH_MAX];
    size_t n = strnlen(path, sizeof p - 1);
    memcpy(p, path, n);
    p[n] = '\0';
    /* Shortest prefix first: a directory's parent is made before it. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        char c = p[i];
        p[i] = '\0';
        int idx = dt_find(p);
        p[i] = c;
        if (idx >= 0) {
            int e = dt_twin((uint32_t)idx);
            if (e < 0)
                return e;
        }
    }
    return 0;
}

static int dt_by_len(const void *a, const void *b)
{
    size_t la = strlen(D.inodes[*(const uint32_t *)a].path), lb = strlen(D.inodes[*(const uint32_t *)b].path);
    return la < lb ? -1 : la > lb;
}

int dt_twin_all(int off)
{
    struct eph_shm_header *h = D.h;
    if (off)
        atomic_fetch_or(&h->mdirs_off, EPH_MDIRS_ALWAYS);
    if (atomic_load(&h->mdirs_live) == 0)
        return 0;
    uint32_t hwm = atomic_load(&h->inode_hwm), n = 0;
    uint32_t *v = malloc(sizeof *v * (hwm ? hwm : 1));
    if (!v)
        return -ENOMEM;
    for (uint32_t i = 0; i < hwm; i++)
        if (atomic_load(&D.inodes[i].state) == EPH_MDIR && D.inodes[i].path[0])
            v[n++] = i;
    qsort(v, n, sizeof *v, dt_by_len); /* parents have shorter names */
    int rc = 0;
    for (uint32_t k = 0; k < n; k++) {
        int e = dt_twin(v[k]);
        if (e < 0 && rc == 0)
            rc = e;
    }
    free(v);
    log_msg(LOG_INFO, "gave %u in-memory directories a disk twin%s", n, off ? "; mkdir stays on disk from now on" : "");
    return rc;
}

int dt_op(const struct eph_req *q)
{
    if (nsl_enter() < 0)
        return -EIO;
    int rc = (q->flags & EPH_DIRTWIN_ALL) ? dt_twin_all((q->flags & EPH_DIRTWIN_OFF) != 0) : dt_settle(q->path);
    nsl_exit();
    return rc;
}

/* ---- the start: a walk through a symlink must never miss a directory ---- */

#define DT_SCAN_MAX 20000
static unsigned dt_seen;
static int dt_visit(const char *p, const struct stat *st, int type, struct FTW *f)
{
    (void)p;
    (void)st;
    (void)f;
    return type == FTW_SL || type == FTW_SLN || ++dt_seen > DT_SCAN_MAX;
}

void dt_init(void)
{
    for (int r = 0; r < D.nroots; r++) {
        dt_seen = 0;
        if (nftw(D.roots[r], dt_visit, 16, FTW_PHYS) != 0) {
            atomic_fetch_or(&D.h->mdirs_off, EPH_MDIRS_ALWAYS);
            log_msg(LOG_INFO, "%s holds a symlink or over %d entries: mkdir stays on disk", D.roots[r], DT_SCAN_MAX);
            return;
        }
    }
}
