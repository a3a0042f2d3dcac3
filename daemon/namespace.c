/*
 * namespace.c - the daemon's side of the shared path hash, inode slots, the
 * namespace lock (ephemera/nslock.h), the memfd pool lent to shims, the
 * reclaim of files shims unlinked, and ns_check().
 *
 * Since region version 2 the shims change the hash too (create, unlink and
 * rename of in-memory files, shim/nsfast.c), so every daemon change and every
 * daemon read that a change depends on happens under ns_lock (nsl_enter).
 * Slot allocation stays the daemon's: a shim only makes files of slots the
 * daemon lent it (EPH_OP_POOL).
 */
#include "namespace.h"

#include <ctype.h>
#include <signal.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "daemon.h"
#include "ephemera/lock.h"
#include "ephemera/nslock.h"
#include "keeper.h"
#include "log.h"
#include "reserve.h"

#define NS_LOCK_STEAL_NS (1000ull * 1000 * 1000)

static uint32_t *ns_freelist; /* stack of free slot indices below inode_hwm */
static uint32_t ns_nfree;

int ns_init(char *err, size_t errlen)
{
    ns_freelist = reserve_table((size_t)D.h->ninodes * sizeof *ns_freelist);
    D.inode_root = reserve_table(D.h->ninodes);
    if (!ns_freelist || !D.inode_root) {
        snprintf(err, errlen, "mmap(inode tables, %u): out of memory", D.h->ninodes);
        return -1;
    }
    return 0;
}

static uint32_t ns_hwm(void)
{
    return atomic_load_explicit(&D.h->inode_hwm, memory_order_relaxed);
}

/* ---- ns_lock ----------------------------------------------------------- */

static int nsl_depth; /* the daemon is single-threaded: nested sections share one lock */

/* Fds of freed slots, closed (or emptied for reuse) once the lock is released:
 * either frees the memfd's pages, which shims waiting for the lock should not
 * wait for. */
#define NSL_DEFER 256
static struct nsl_deferred {
    int fd;
    int empty;    /* a memfd to truncate to 0 first (nsl_close_later) */
    int recycle;  /* a freed file's memfd to empty and put back in the stock (nsl_recycle_later) */
    uint64_t ino; /* with recycle: the st_ino its file reported */
} nsl_deferred[NSL_DEFER];
static int nsl_ndeferred;

static int ns_stock_recycle(int fd, uint64_t ino);

static void nsl_close(struct nsl_deferred d)
{
    if (d.recycle) {
        if (ns_stock_recycle(d.fd, d.ino) == 0)
            return;
        keeper_dropped(d.fd);
        d.empty = keeper_active();
    }
    if (d.empty && ftruncate(d.fd, 0) < 0)
        log_msg(LOG_WARN, "ftruncate of a freed memfd (fd %d): %s", d.fd, strerror(errno));
    close(d.fd);
}

static void nsl_defer(struct nsl_deferred d)
{
    if (nsl_depth > 0 && nsl_ndeferred < NSL_DEFER)
        nsl_deferred[nsl_ndeferred++] = d;
    else
        nsl_close(d);
}

/* With empty set (a freed file's memfd that nobody opens or maps), its pages go back when
 * it is closed here even though the keeper holds a copy of the fd: the keeper closes its
 * copy only once the DROP reaches it, later than a program that deleted a file expects its
 * memory charge to drop (test/fs/unlink_charge.test.mjs). */
static void nsl_close_later(int fd, int empty)
{
    if (fd < 0)
        return;
    keeper_dropped(fd);
    nsl_defer((struct nsl_deferred){.fd = fd, .empty = empty && keeper_active()});
}

/* A freed file's memfd that nobody opens or maps: emptied after the unlock and
 * kept in the stock for the next file, instead of closed here and in the keeper
 * and made again (docs/ARCHITECTURE.md, "Freed memfds are made files again"). */
static void nsl_recycle_later(int fd, uint64_t ino)
{
    nsl_defer((struct nsl_deferred){.fd = fd, .recycle = 1, .ino = ino});
}

int nsl_enter(void)
{
    if (nsl_depth++ > 0)
        return 0;
    int from = 0, redone = 0, holder = 0;
    int e = eph_ns_lock(D.h, &from, &redone, &holder);
    if (e < 0) {
        nsl_depth--;
        log_msg(LOG_ERR, "namespace lock: held by tid %d for 5 s (a stopped process?); giving up with EIO",
                holder);
        return e;
    }
    if (from) {
        log_msg(LOG_WARN, "namespace lock recovered from tid %d (its change %s)", from,
                redone ? "redone" : "discarded");
        ns_check_and_log("after a lock recovery");
    } else if (atomic_load_explicit(&D.h->ns_unchecked, memory_order_relaxed)) {
        ns_check_and_log("after a shim's lock recovery");
    }
    return 0;
}

void nsl_exit(void)
{
    if (--nsl_depth == 0) {
        eph_ns_unlock(D.h);
        while (nsl_ndeferred > 0)
            nsl_close(nsl_deferred[--nsl_ndeferred]);
    }
}

int ns_lookup(const char *path)
{
    /* a further name of a file (a hard link, shim/nslink.c) is that file */
    return eph_name_file(D.h, eph_chain_lookup(D.h, path));
}

int ns_name_slot(const char *path)
{
    return eph_chain_lookup(D.h, path);
}

/* Commit the record built (eph_j_begin and its steps) and apply it, inside the caller's write
 * section (eph_j_commit is the shims', with a section and stall points of its own); dropped > 0:
 * it dropped a name, whose slot is freed at the next reclaim.  0. */
static int ns_commit_logged(struct eph_shm_header *h, int dropped)
{
    atomic_store_explicit(&h->journal.state, EPH_J_COMMITTED, memory_order_seq_cst);
    for (uint32_t k = 0; k < h->journal.n; k++)
        eph_j_apply_op(h, &h->journal.op[k]);
    atomic_store_explicit(&h->journal.state, EPH_J_EMPTY, memory_order_release);
    if (dropped > 0)
        atomic_store(&h->reclaim_pending, 1);
    return 0;
}

int ns_drop_name_logged(const char *path, uint32_t t)
{
    /* As ns_rename_logged: the shims' record, applied inside the caller's write section. */
    struct eph_shm_header *h = D.h;
    int n = eph_chain_lookup(h, path);
    if (!eph_names(h, n, t))
        return -ENOENT;
    eph_j_begin(h);
    return ns_commit_logged(h, eph_j_drop_name(h, (uint32_t)n, t, 1));
}

int ns_valid(uint32_t idx, uint32_t gen)
{
    if (idx >= ns_hwm())
        return 0;
    struct eph_inode *in = &D.inodes[idx];
    return atomic_load(&in->state) != EPH_FREE && atomic_load(&in->gen) == gen;
}

void ns_adopt_slots(void)
{
    ns_nfree = 0;
    for (uint32_t i = ns_hwm(); i-- > 0;) {
        struct eph_inode *in = &D.inodes[i];
        /* A free slot has no memfd (ns_free; takeover_repair, under the lock, takes a dead
         * daemon's unfinished lend's away): one with a memfd is a shim's create half applied. */
        if (atomic_load(&in->state) == EPH_FREE && !atomic_load(&in->lent_to) && in->mem_fd < 0)
            ns_freelist[ns_nfree++] = i;
        else if (in->path[0] && ephd_root_of(in->path) >= 0)
            D.inode_root[i] = (uint8_t)ephd_root_of(in->path);
    }
}

static int ns_alloc_slot(void)
{
    if (ns_nfree)
        return (int)ns_freelist[--ns_nfree];
    uint32_t hwm = ns_hwm();
    if (hwm >= D.h->ninodes)
        return -1;
    D.inodes[hwm].mem_fd = D.inodes[hwm].disk_fd = -1; /* a free slot has no fds (ns_adopt_slots) */
    atomic_store_explicit(&D.h->inode_hwm, hwm + 1, memory_order_release);
    return (int)hwm;
}

static uint64_t ns_root_devs[EPHD_MAX_ROOTS];

static uint64_t ns_root_dev(int root, uint64_t fallback)
{
    if (root < 0 || root >= D.nroots)
        return fallback;
    if (!ns_root_devs[root]) {
        struct stat st;
        ns_root_devs[root] = stat(D.roots[root], &st) == 0 ? (uint64_t)st.st_dev : fallback;
    }
    return ns_root_devs[root];
}

static int ns_memfd(uint64_t *ino);

int ns_new_inode(int root, uint32_t mode, uint32_t uid, uint32_t gid)
{
    int idx = ns_alloc_slot();
    if (idx < 0)
        return -ENFILE;
    uint64_t ino;
    int fd = ns_memfd(&ino);
    if (fd < 0) {
        int e = errno;
        ns_freelist[ns_nfree++] = (uint32_t)idx;
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        memset(&st, 0, sizeof st);
    struct eph_inode *in = &D.inodes[idx];
    int64_t now = ephd_real_ns();
    eph_inode_fresh(in, 0, ephd_mono_ns());
    in->mem_fd = fd;
    /* Identity as a file of its root's file system (find -xdev, FTW_MOUNT and
     * du -x must not take it for a mount point), with an inode number tagged
     * so that it can never equal a disk file's there (shutil's samefile). */
    in->ino = ino;
    in->dev = ns_root_dev(root, st.st_dev);
    in->mode = S_IFREG | (mode & 07777);
    in->uid = uid;
    in->gid = gid;
    in->next = 0;
    in->hash = 0;
    atomic_store(&in->atime_ns, now);
    atomic_store(&in->mtime_ns, now);
    atomic_store(&in->ctime_ns, now);
    in->btime_ns = now;
    in->path[0] = 0;
    D.inode_root[idx] = (uint8_t)root;
    atomic_store_explicit(&in->state, EPH_MEM, memory_order_release);

    struct eph_counters *c = &D.h->c;
    atomic_fetch_add(&c->files_created, 1);
    eph_atomic_max(&c->files_in_memory_peak, atomic_fetch_add(&c->files_in_memory, 1) + 1);
    return idx;
}

void ns_free(uint32_t idx)
{
    struct eph_inode *in = &D.inodes[idx];
    if (nsl_enter() < 0)
        return; /* the next gc tick tries again */
    uint32_t st = atomic_load(&in->state);
    if (st == EPH_FREE) {
        nsl_exit();
        return;
    }
    if (in->path[0]) {
        ns_write_begin();
        ns_remove(idx);
        ns_write_end();
    }
    /* Exactly once: a shim that unlinked the file may have given its pages back already (nsfast.c). */
    uint64_t cap = atomic_exchange(&in->capacity, 0);
    if (st == EPH_MEM) {
        struct eph_counters *c = &D.h->c;
        atomic_fetch_sub(&c->files_in_memory, 1);
        atomic_fetch_sub(&c->bytes_in_memory, cap);
    }
    /* As nsfast.c's nsf_reclaim: not while a program maps it (pinned), whose pages must stay. */
    int pinned = atomic_load(&in->pinned) != 0;
    if (st == EPH_MEM && !pinned && in->mem_fd >= 0)
        nsl_recycle_later(in->mem_fd, in->ino);
    else
        nsl_close_later(in->mem_fd, cap != 0 && !pinned);
    nsl_close_later(in->disk_fd, 0);
    in->mem_fd = in->disk_fd = -1;
    atomic_store(&in->capacity, 0);
    atomic_store(&in->size, 0);
    /* gen moves before the slot is reusable so stale descs never match. */
    atomic_store(&in->gen, atomic_load(&in->gen) + 1);
    atomic_store_explicit(&in->state, EPH_FREE, memory_order_release);
    eph_wake_all(&in->epoch);
    ns_freelist[ns_nfree++] = idx;
    nsl_exit();
}

int ns_maybe_gc(uint32_t idx)
{
    if (idx >= ns_hwm())
        return 0;
    struct eph_inode *in = &D.inodes[idx];
    if (atomic_load(&in->state) == EPH_FREE || atomic_load(&in->nlink) != 0 ||
        atomic_load(&in->open_count) != 0)
        return 0;
    if (nsl_enter() < 0)
        return 0;
    /* Looked at again under the lock: a shim may have named it meanwhile. */
    int gone = atomic_load(&in->state) != EPH_FREE && atomic_load(&in->nlink) == 0 &&
               atomic_load(&in->open_count) == 0;
    if (gone) {
        log_msg(LOG_DEBUG, "gc inode %u", idx);
        eph_lock_stall("gc-chosen"); /* fault builds: between the look and the free (test/c/truncgc_test.c) */
        ns_free(idx);
    }
    nsl_exit();
    return gone;
}

void ns_gc_all(void)
{
    uint32_t hwm = ns_hwm();
    for (uint32_t i = 0; i < hwm; i++)
        ns_maybe_gc(i);
}

void ns_write_begin(void)
{
    if (nsl_depth == 0)
        log_msg(LOG_ERR, "namespace write outside ns_lock (a bug)");
    eph_ns_seq_begin(D.h);
}

void ns_write_end(void)
{
    eph_ns_seq_end(D.h);
}

void ns_insert(uint32_t idx, const char *path)
{
    eph_chain_insert(D.h, idx, path);
}

void ns_remove(uint32_t idx)
{
    if (D.inodes[idx].path[0])
        eph_chain_remove(D.h, idx);
}

int ns_rename_logged(const char *src, uint32_t s, const char *dst, int64_t d)
{
    /* The shims' record (nslock.h), applied inside the caller's write section: a daemon killed
     * between the removal and the insertion leaves a COMMITTED record that the next locker
     * (a shim, or the daemon that takes over) applies again.  Name slots move, not files
     * (hard links in memory, shim/nslink.c), as in the shims' nsf_rename. */
    struct eph_shm_header *h = D.h;
    int na = eph_chain_lookup(h, src), nb = d >= 0 ? eph_chain_lookup(h, dst) : -1;
    if (!eph_names(h, na, s) || (d >= 0 && !eph_names(h, nb, (uint32_t)d)))
        return -ENOENT;
    eph_j_begin(h);
    memcpy(h->journal.path, dst, strlen(dst) + 1);
    return ns_commit_logged(h, eph_j_rename(h, (uint32_t)na, s, nb, d >= 0 ? (uint32_t)d : 0));
}

/* Length of the directory prefix dir if path lies strictly below it, else 0. */
static size_t ns_below(const char *path, const char *dir, size_t dlen)
{
    if (strncmp(path, dir, dlen) != 0 || path[dlen] != '/')
        return 0;
    return dlen;
}

int ns_has_below(const char *dir)
{
    size_t dlen = strlen(dir);
    uint32_t hwm = ns_hwm();
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (in->path[0] && atomic_load(&in->state) != EPH_FREE && ns_below(in->path, dir, dlen))
            return 1;
    }
    return 0;
}

int ns_ancestor_is_file(const char *path)
{
    char buf[EPH_PATH_MAX];
    size_t n = strnlen(path, sizeof buf - 1);
    memcpy(buf, path, n);
    buf[n] = 0;
    for (size_t i = n; i > 1; i--) {
        if (buf[i - 1] != '/')
            continue;
        buf[i - 1] = 0;
        if (buf[0] && ns_lookup(buf) >= 0)
            return 1;
    }
    return 0;
}

size_t ns_longest_renamed(const char *from, const char *to)
{
    size_t flen = strlen(from), tlen = strlen(to), longest = 0;
    uint32_t hwm = ns_hwm();
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (!in->path[0] || atomic_load(&in->state) == EPH_FREE || !ns_below(in->path, from, flen))
            continue;
        size_t l = strlen(in->path) - flen + tlen;
        if (l > longest)
            longest = l;
    }
    return longest;
}

size_t ns_rename_prefix(const char *a, const char *b, int exchange)
{
    char olda[EPH_PATH_MAX], oldb[EPH_PATH_MAX], np[EPH_PATH_MAX];
    snprintf(olda, sizeof olda, "%s", a);
    snprintf(oldb, sizeof oldb, "%s", b);
    size_t alen = strlen(olda), blen = strlen(oldb), moved = 0;
    uint32_t hwm = ns_hwm();
    /* Two passes so a file moved from a to b is not moved back by the b
     * pass of an exchange: mark the movers first. */
    uint32_t *movers = malloc(sizeof *movers * (hwm ? hwm : 1));
    uint8_t *side = malloc(hwm ? hwm : 1);
    if (!movers || !side) {
        free(movers);
        free(side);
        log_msg(LOG_ERR, "rename prefix %s -> %s: out of memory", a, b);
        return 0;
    }
    size_t nm = 0;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (!in->path[0] || atomic_load(&in->state) == EPH_FREE)
            continue;
        if (ns_below(in->path, olda, alen)) {
            movers[nm] = i;
            side[nm++] = 0;
        } else if (exchange && ns_below(in->path, oldb, blen)) {
            movers[nm] = i;
            side[nm++] = 1;
        }
    }
    for (size_t k = 0; k < nm; k++) {
        struct eph_inode *in = &D.inodes[movers[k]];
        const char *rest = in->path + (side[k] ? blen : alen);
        int n = snprintf(np, sizeof np, "%s%s", side[k] ? olda : oldb, rest);
        if (n < 0 || (size_t)n >= sizeof np)
            continue; /* caller evicted these beforehand */
        uint32_t nl = atomic_load(&in->nlink); /* a file with further names counts them all */
        ns_remove(movers[k]);
        ns_insert(movers[k], np);
        if (atomic_load(&in->state) != EPH_NAME && nl > 1)
            atomic_store(&in->nlink, nl);
        int r = ephd_root_of(np);
        if (r >= 0)
            D.inode_root[movers[k]] = (uint8_t)r;
        moved++;
    }
    free(movers);
    free(side);
    return moved;
}

/* 1 if a process other than the daemon has the region mapped. */
static int ns_region_mapped_elsewhere(void)
{
    struct stat st;
    if (fstat(D.region_fd, &st) < 0)
        return 1;
    DIR *proc = opendir("/proc");
    if (!proc)
        return 1;
    int found = 0;
    char path[300], line[512];
    for (struct dirent *e; !found && (e = readdir(proc));) {
        if (!isdigit((unsigned char)e->d_name[0]) || atoi(e->d_name) == (int)D.pid)
            continue;
        snprintf(path, sizeof path, "/proc/%s/maps", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            unsigned long ino;
            if (sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 && ino == st.st_ino &&
                strstr(line, "ephemera-region")) {
                found = 1;
                break;
            }
        }
        fclose(f);
    }
    closedir(proc);
    return found;
}

/*
 * The descriptions of the region that can be in use, a run at a time: [*d0, *d1).  Only the
 * pages of the table some process wrote hold data; a read of any other page of the shared region
 * would fault in a fresh page of shared memory, charged to the instance's cgroup.  A whole scan
 * of the default table (65536 descriptions, 2 MiB) did that at shutdown, while the function could
 * be at its limit with nothing left to evict (daemon_proto_test's 128 MiB cgroup under ASan was
 * OOM-killed there).  SEEK_DATA/SEEK_HOLE on the region's memfd read nothing.  *pos starts at 0;
 * 0 when there is no further run (or the memfd cannot say: then nothing is read either).
 */
static int ns_desc_run(off_t *pos, uint32_t *d0, uint32_t *d1)
{
    const off_t base = (off_t)((char *)eph_descs(D.h) - (char *)D.h);
    const off_t end = base + (off_t)D.h->ndescs * (off_t)sizeof(struct eph_desc);
    if (D.region_fd < 0 || base + *pos >= end)
        return 0;
    off_t data = lseek(D.region_fd, base + *pos, SEEK_DATA);
    if (data < 0 || data >= end)
        return 0;
    off_t hole = lseek(D.region_fd, data, SEEK_HOLE);
    if (hole < 0 || hole > end)
        hole = end;
    const off_t sz = (off_t)sizeof(struct eph_desc);
    *d0 = (uint32_t)((data - base) / sz);
    *d1 = (uint32_t)((hole - base + sz - 1) / sz);
    *pos = hole - base;
    return *d1 > *d0;
}

/*
 * At shutdown: every unnamed file still held, with the descriptions that hold it.  A reference
 * nobody gives back (a killed process's, missed by its ledger) shows here as open_count with no
 * description (a reference taken and never put in one) or with one whose refs no live process lists.
 */
void ns_log_held(void)
{
    uint32_t hwm = ns_hwm(), shown = 0;
    struct eph_desc *ds = eph_descs(D.h);
    for (uint32_t i = 0; i < hwm && shown < 16; i++) {
        struct eph_inode *in = &D.inodes[i];
        uint32_t st = atomic_load(&in->state), oc = atomic_load(&in->open_count);
        if (st == EPH_FREE || st == EPH_MDIR || st == EPH_NAME || atomic_load(&in->nlink) != 0 || oc == 0)
            continue;
        char buf[256];
        int n = 0;
        uint32_t nd = 0, d0, d1;
        buf[0] = 0;
        for (off_t pos = 0; ns_desc_run(&pos, &d0, &d1);)
            for (uint32_t d = d0; d < d1; d++)
                if (atomic_load(&ds[d].refs) && ds[d].inode == i && ds[d].inode_gen == atomic_load(&in->gen) &&
                    nd++ < 4 && n < (int)sizeof buf - 32)
                    n += snprintf(buf + n, sizeof buf - (size_t)n, " %u (refs %u)", d, atomic_load(&ds[d].refs));
        log_msg(LOG_INFO, "at shutdown: unlinked inode %u (%llu bytes, state %u) still has open_count %u, %u descriptions%s%s",
                i, (unsigned long long)atomic_load(&in->capacity), st, oc, nd, nd ? ":" : "", buf);
        shown++;
    }
}

void ns_sweep_orphans(int nconns, uint64_t accepts)
{
    static uint64_t first_seen, first_accepts;
    if (nconns > 0) {
        first_seen = 0;
        return;
    }
    uint32_t hwm = ns_hwm(), held = 0;
    for (uint32_t i = 0; i < hwm; i++)
        if (atomic_load(&D.inodes[i].state) != EPH_FREE && atomic_load(&D.inodes[i].open_count))
            held++;
    if (!held || ns_region_mapped_elsewhere()) {
        first_seen = 0;
        return;
    }
    /* Twice, a second apart, with no new connection in between: a process
     * between exec(2) and its first request maps nothing for a moment. */
    uint64_t now = ephd_mono_ns();
    if (!first_seen || first_accepts != accepts) {
        first_seen = now;
        first_accepts = accepts;
        return;
    }
    if (now - first_seen < 1000000000ull)
        return;
    first_seen = 0;
    log_msg(LOG_INFO, "no process maps the region any more: dropping %u leaked open counts", held);
    /* Zero the description table without touching its untouched pages. */
    fallocate(D.region_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)D.h->descs_off,
              (off_t)(D.h->buckets_off - D.h->descs_off));
    atomic_store(&D.h->desc_hint, 0);
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        atomic_store(&in->open_count, 0); /* a FREE slot's too: nobody is left to give a late one back */
        if (atomic_load(&in->state) == EPH_FREE)
            continue;
        atomic_store(&in->pinned, 0);
        atomic_store(&in->inflight, 0);
        ns_maybe_gc(i);
    }
}

int ns_lock(uint32_t idx)
{
    struct eph_inode *in = &D.inodes[idx];
    if (eph_trylock(&in->lock))
        return 0;
    uint64_t start = ephd_mono_ns();
    const uint32_t me = eph_lock_self();
    for (;;) {
        uint32_t w = atomic_load(&in->lock.word);
        if (w == 0 && eph_trylock(&in->lock))
            return 0;
        /* A holder that exited: take over at once (the hook repairs, eph_lock_recovered). */
        if (w != 0 && ephd_mono_ns() - start > 20ull * 1000 * 1000 && eph_lock_take_dead(&in->lock, w, me))
            return 1;
        if (ephd_mono_ns() - start > NS_LOCK_STEAL_NS) {
            /* Critical sections are a memcpy long: a holder that stays
             * this long is stopped or starved (a dead one was taken over
             * above).  Take the lock over, or the whole instance would hang
             * behind it; a live one sees the state or epoch moved when
             * it resumes and redoes its write (shim/fp_io.c, io_again). */
            log_msg(LOG_WARN,
                    "inode %u: lock held for 1 s by live process %u; taking it over (a stalled holder redoes its "
                    "write when it resumes)",
                    idx, w & EPH_LOCK_OWNER);
            atomic_store(&in->lock.word, me | EPH_LOCK_WAITERS);
            return 1;
        }
        if (w != 0)
            eph_futex(&in->lock.word, FUTEX_WAIT, w, &(struct timespec){0, 10 * 1000 * 1000});
    }
}

/* A lock of the region taken over from a process that died holding it: an
 * inode's is repaired through its memfd (eph_inode_lock_repair); a
 * description's offset needs nothing (one store, old or new, both valid). */
void eph_lock_recovered(eph_lock_t *l, uint32_t dead_pid)
{
    uintptr_t a = (uintptr_t)l, base = (uintptr_t)D.inodes;
    if (a >= base && a < base + (uintptr_t)D.h->ninodes * sizeof(struct eph_inode)) {
        uint32_t idx = (uint32_t)((a - base) / sizeof(struct eph_inode));
        struct eph_inode *in = &D.inodes[idx];
        int fixed = eph_inode_lock_repair(in, in->mem_fd);
        log_msg(LOG_WARN, "inode %u (%s): took its lock over from process %u, which died holding it%s", idx,
                in->path[0] ? in->path : "unlinked", dead_pid,
                fixed ? "; its memfd is as long as its capacity again" : "");
    } else {
        log_msg(LOG_WARN, "took a description lock over from process %u, which died holding it", dead_pid);
    }
}

/* ---- ns_check: the invariants of the namespace ------------------------- */

/*
 * Files whose bytes are in memory now (MEM, or MOVING until the move ends), counted from the
 * slots.  The shared counter files_in_memory is kept by shims and the daemon around their
 * journal records, not inside them, so a process SIGKILLed between a record's commit and its
 * counter update leaves it one off (nsconc's seed 9150 once showed 2^64 - 1 after its clean);
 * the slots are what the record made.  Read without the lock: a gauge of one moment.
 */
uint64_t ns_files_in_memory(void)
{
    uint64_t mem = 0;
    uint32_t hwm = ns_hwm();
    for (uint32_t i = 0; i < hwm; i++) {
        uint32_t st = atomic_load(&D.inodes[i].state);
        mem += st == EPH_MEM || st == EPH_MOVING;
    }
    return mem;
}

/*
 * The bytes the in-memory files hold (the capacity of every MEM or MOVING slot: a FREE slot's
 * pages, a shim's home, are not counted, nor a further name's) into *slots, and bytes_in_memory
 * at the same moment into *counter.  The counter moves without ns_lock (a write's growth, under
 * the file's inode lock) as well as with it (the shims' records, the daemon's frees), so both
 * are read under ns_lock and every such file's inode lock at once.  The inode locks are only
 * tried: one held (a write in progress, a holder that died with its charge in flight, which its
 * ledger gives back) gives -EBUSY at once rather than a wait.  0, -EBUSY, or -EIO (ns_lock).
 */
static int ns_bytes_recount(uint64_t *slots, uint64_t *counter)
{
    uint32_t hwm = ns_hwm(), n = 0;
    uint32_t *held = malloc((hwm ? hwm : 1) * sizeof *held);
    if (!held || nsl_enter() < 0) {
        free(held);
        return -EIO;
    }
    uint64_t sum = 0;
    int busy = 0;
    for (uint32_t i = 0; i < hwm && !busy; i++) {
        struct eph_inode *in = &D.inodes[i];
        uint32_t st = atomic_load(&in->state);
        if (st != EPH_MEM && st != EPH_MOVING)
            continue;
        if (!eph_trylock(&in->lock)) {
            busy = 1;
            break;
        }
        held[n++] = i;
        sum += atomic_load(&in->capacity);
    }
    uint64_t c = atomic_load(&D.h->c.bytes_in_memory);
    while (n > 0)
        eph_unlock(&D.inodes[held[--n]].lock);
    nsl_exit();
    free(held);
    if (busy)
        return -EBUSY;
    *slots = sum;
    *counter = c;
    return 0;
}

/*
 * Checks, under ns_lock: the seqlock is even and the journal empty; every
 * chained inode is live, named, hashed to its own bucket and chained once; no
 * two chained inodes share a path; every live named inode is chained and has
 * nlink 1, every unnamed one nlink 0; no FREE slot is chained.  It repairs
 * what a dead holder can leave behind without breaking them: a live inode
 * that nobody names or opens is freed (its unlinker died before the reclaim
 * hint), and files_in_memory is recounted.  Returns the number of violations;
 * the first is described in first; bytes (may be NULL) gets bytes_in_memory
 * and what the files in memory hold, counted in the same section.
 */
int ns_check(char *first, size_t n, struct ns_bytes *bytes)
{
    int bad = 0;
    first[0] = 0;
#define NS_BAD(...)                                      \
    do {                                                 \
        if (!bad++)                                      \
            snprintf(first, n, __VA_ARGS__);             \
    } while (0)
    if (nsl_enter() < 0) {
        snprintf(first, n, "namespace lock not available within 5 s");
        return 1;
    }
    struct eph_shm_header *h = D.h;
    uint32_t hwm = ns_hwm();
    if (atomic_load(&h->ns_seq) & 1)
        NS_BAD("ns_seq is odd (%llu) with the lock held", (unsigned long long)atomic_load(&h->ns_seq));
    if (atomic_load(&h->journal.state) != EPH_J_EMPTY)
        NS_BAD("journal in state %u with the lock held", atomic_load(&h->journal.state));
    uint8_t *seen = calloc(hwm ? hwm : 1, 1);
    if (!seen) {
        nsl_exit();
        snprintf(first, n, "out of memory");
        return 1;
    }
    _Atomic uint32_t *b = eph_buckets(h);
    uint32_t chained = 0;
    for (uint32_t k = 0; k < h->nbuckets; k++) {
        uint32_t steps = 0;
        for (uint32_t i = atomic_load(&b[k]); i; i = D.inodes[i - 1].next) {
            if (i > hwm) {
                NS_BAD("bucket %u chains slot %u beyond the high-water mark %u", k, i - 1, hwm);
                break;
            }
            if (++steps > hwm) {
                NS_BAD("bucket %u: a cycle", k);
                break;
            }
            struct eph_inode *in = &D.inodes[i - 1];
            if (seen[i - 1]++) {
                NS_BAD("inode %u chained twice", i - 1);
                break;
            }
            chained++;
            if (atomic_load(&in->state) == EPH_FREE)
                NS_BAD("free slot %u is chained (path '%s')", i - 1, in->path);
            if (!in->path[0])
                NS_BAD("inode %u chained without a name", i - 1);
            else if (in->hash != eph_path_hash(in->path) || (in->hash & (h->nbuckets - 1)) != k)
                NS_BAD("inode %u (%s) is on bucket %u, its hash says %u", i - 1, in->path, k,
                       in->hash & (h->nbuckets - 1));
            uint32_t names = 1;
            for (uint32_t x = in->link_head, s3 = 0; x && x <= hwm && s3 < hwm; x = D.inodes[x - 1].link_next, s3++)
                names++;
            if (atomic_load(&in->state) == EPH_NAME) {
                uint32_t t = in->link_to;
                uint32_t ts = t < hwm ? atomic_load(&D.inodes[t].state) : EPH_FREE;
                if (t >= hwm || atomic_load(&D.inodes[t].gen) != in->link_gen || (ts != EPH_MEM && ts != EPH_MOVING))
                    NS_BAD("name %u (%s) names slot %u, which is no file of its generation", i - 1, in->path, t);
            } else if (atomic_load(&in->nlink) != names) {
                NS_BAD("named inode %u (%s) has nlink %u for %u names", i - 1, in->path, atomic_load(&in->nlink),
                       names);
            }
            for (uint32_t j = in->next, s2 = 0; j && j <= hwm && s2 < hwm; j = D.inodes[j - 1].next, s2++)
                if (strcmp(D.inodes[j - 1].path, in->path) == 0) {
                    NS_BAD("two inodes (%u, %u) are named %s", i - 1, j - 1, in->path);
                    break;
                }
        }
    }
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (atomic_load(&in->state) == EPH_FREE)
            continue;
        if (in->path[0] && !seen[i])
            NS_BAD("inode %u is named %s but not chained", i, in->path);
        if (!in->path[0] && atomic_load(&in->nlink) != 0)
            NS_BAD("unnamed inode %u has nlink %u", i, atomic_load(&in->nlink));
    }
    free(seen);
    atomic_store(&h->c.files_in_memory, ns_files_in_memory());
    atomic_store(&h->ns_unchecked, 0);
    /* Inside this section: a check that could not take the lock makes no second 5 s wait. */
    if (bytes)
        bytes->ok = ns_bytes_recount(&bytes->files, &bytes->counter) == 0;
    nsl_exit();
    ns_gc_all();
#undef NS_BAD
    return bad;
}

void ns_check_and_log(const char *when)
{
    static int running;
    if (running)
        return;
    running = 1;
    char first[EPH_PATH_MAX + 200];
    struct ns_bytes b = {0, 0, 0};
    int bad = ns_check(first, sizeof first, &b);
    if (bad)
        log_msg(LOG_ERR, "ns_check %s: %d violations; first: %s", when, bad, first);
    else
        log_msg(LOG_INFO, "ns_check %s: consistent", when);
    if (b.ok && b.files != b.counter)
        log_msg(LOG_WARN, "ns_check %s: bytes_in_memory is %llu, the files in memory hold %llu", when,
                (unsigned long long)b.counter, (unsigned long long)b.files);
    running = 0;
}

/* ---- the memfd pool ------------------------------------------------------ */

#define NS_STOCK EPH_POOL_MAX /* memfds made ahead of time, at least: one grown batch */
#define NS_STOCK_MAX 256  /* and with those emptied after their file was freed, at most */
static int ns_stock[NS_STOCK_MAX]; /* memfds made ahead of time, or emptied after their file was freed */
static uint64_t ns_stock_ino[NS_STOCK_MAX]; /* and the st_ino their next file reports (eph_file_ino) */
static int ns_nstock;

static uint64_t ns_memfd_ino(int fd)
{
    struct stat st;
    return eph_file_ino(fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0, 0);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
/* Slots past the high-water mark whose region pages are made resident ahead: one grown batch. */
#define NS_POPULATE_AHEAD EPH_POOL_MAX
static size_t ns_populated_end; /* bytes of the slot table made resident by ns_populate_ahead */
static int ns_populate_off;     /* MADV_POPULATE_WRITE is not known to this kernel (before 5.14) */

/*
 * The region pages of the slots the next batches will take (from the high-water mark on:
 * freed slots are on pages already touched), made resident with one madvise instead of a
 * page fault each in ns_alloc_slot and ns_pool_lend: on a shadow-paging VM a fault costs
 * ~13 us and a populated page ~1.5 us plus ~6 us at its first touch (docs/ARCHITECTURE.md,
 * "tar's time").  The contents are left alone (fresh pages read as zero, as a fault would
 * give them); at most NS_POPULATE_AHEAD slots (~150 KiB) are charged ahead, no more than the
 * memfds the stock makes ahead.  A failure only leaves the faults to happen as before.
 */
static void ns_populate_ahead(void)
{
    if (ns_populate_off)
        return;
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sz = sizeof(struct eph_inode);
    uint64_t hwm = ns_hwm(), n = D.h->ninodes;
    uint64_t to = hwm + NS_POPULATE_AHEAD < n ? hwm + NS_POPULATE_AHEAD : n;
    /* The table starts on a page and the descriptions start on the page after its end
     * (region.c), so whole pages from the slot at hwm to the one before `to` are its own. */
    size_t lo = ((size_t)hwm * sz) & ~(page - 1), hi = ((size_t)to * sz + page - 1) & ~(page - 1);
    if (lo < ns_populated_end)
        lo = ns_populated_end;
    if (hi <= lo)
        return;
    int r = madvise((char *)D.inodes + lo, hi - lo, MADV_POPULATE_WRITE);
    if (r < 0 && errno == EINVAL)
        ns_populate_off = 1;
    /* A populated page still costs ~6 us at its first store on a shadow-paging VM (the host's
     * entry is filled by the touch, not by the madvise): paid here, after a reply, instead of by
     * ns_pool_lend's stores while a shim waits for its batch (~38 pages for a batch of 128).  An
     * atomic OR of 0 into one byte a page changes nothing (the page holding the slot at hwm can
     * have live slots, written by shims meanwhile; no update is lost).  Only when the populate
     * worked: a page it could not make resident is not faulted in here. */
    if (r == 0)
        for (size_t off = lo; off < hi; off += page)
            __atomic_fetch_or((unsigned char *)D.inodes + off, (unsigned char)0, __ATOMIC_RELAXED);
    ns_populated_end = hi; /* also after another failure (memory short): not retried every tick */
}

/* Fill the stock of memfds (off every caller's path: after a reply, on the tick).  The keeper
 * gets a copy of the whole batch in one message, before any slot can name one of them.  And
 * the slots the next batches will take are made resident (ns_populate_ahead). */
void ns_pool_restock(void)
{
    ns_populate_ahead();
    struct eph_keeper_entry e[NS_STOCK];
    int n = 0;
    while (ns_nstock < NS_STOCK) {
        int fd = memfd_create("ephemera", MFD_CLOEXEC);
        if (fd < 0)
            break;
        ns_stock_ino[ns_nstock] = ns_memfd_ino(fd);
        ns_stock[ns_nstock++] = fd;
        e[n++] = (struct eph_keeper_entry){.fd = fd, .kind = EPH_KEEP_MEM};
    }
    keeper_hold(e, n);
}

const int *ns_stock_fds(int *n)
{
    *n = ns_nstock;
    return ns_stock;
}

/*
 * A freed file's memfd (ino: what its file reported) back into the stock,
 * after the unlock: emptied, and only when it carries nothing the next file
 * could see (an extended attribute set through the shim lives on the memfd).
 * The keeper keeps its copy, as it does for the rest of the stock.  0, or -1
 * when the caller must close it as before (the stock is full, or it is not
 * empty).
 */
static int ns_stock_recycle(int fd, uint64_t ino)
{
    if (ns_nstock >= NS_STOCK_MAX)
        return -1;
    if (ftruncate(fd, 0) < 0 || flistxattr(fd, NULL, 0) != 0)
        return -1;
    ns_stock_ino[ns_nstock] = eph_file_ino_next(ino);
    ns_stock[ns_nstock++] = fd;
    return 0;
}

/* A memfd for a new file, and the st_ino that file reports: from the stock, else a fresh one
 * (copied to the keeper first). */
static int ns_memfd(uint64_t *ino)
{
    if (ns_nstock) {
        ns_nstock--;
        *ino = ns_stock_ino[ns_nstock];
        return ns_stock[ns_nstock];
    }
    int fd = memfd_create("ephemera", MFD_CLOEXEC);
    if (fd >= 0) {
        keeper_hold_one(fd, EPH_KEEP_MEM, 0, 0);
        *ino = ns_memfd_ino(fd); /* a fresh one is rare: the stock is filled after every answer */
    }
    return fd;
}

/* Free slots, those never used included. */
static uint32_t ns_free_slots(void)
{
    return ns_nfree + (D.h->ninodes - ns_hwm());
}

/*
 * A batch: up to EPH_POOL_FIRST slots whatever it costs (a fresh memfd when the stock is
 * empty), and beyond that, for a shim that asked for more because it used its last batch up,
 * only memfds already in stock and only while more than a quarter of the slots are free, so
 * a grown batch never puts memfd_create on the caller's path nor starves other processes.
 */
int ns_pool_lend(int32_t pid, int want, struct eph_pool_entry *out, int *fds)
{
    int n = 0;
    while (n < want) {
        if (n >= EPH_POOL_FIRST && (ns_nstock == 0 || ns_free_slots() <= D.h->ninodes / 4))
            break;
        uint64_t ino;
        int fd = ns_memfd(&ino); /* from the stock when stocked, else fresh and held by the keeper */
        if (fd < 0)
            break;
        int idx = ns_alloc_slot();
        if (idx < 0) {
            ns_stock_ino[ns_nstock] = ino;
            ns_stock[ns_nstock++] = fd;
            break;
        }
        struct eph_inode *in = &D.inodes[idx];
        in->mem_fd = fd;
        in->disk_fd = -1;
        in->ino = ino;
        in->path[0] = 0;
        in->next = 0;
        D.inode_root[idx] = 0; /* eviction takes the root from the path (evict.c) */
        atomic_store(&in->lent_to, pid);
        out[n] = (struct eph_pool_entry){.inode = (uint32_t)idx, .daemon_fd = fd};
        fds[n] = fd;
        n++;
    }
    return n;
}

/* Slot idx back from a pool (unused): its memfd back into the stock (emptied after the unlock,
 * as a freed file's: ns_stock_recycle; closed when the stock is full or it carries an extended
 * attribute), the slot freed.  A process that makes one file returns 31 of its batch of 32
 * when it is gone: kept, they spare the restock a memfd_create + fstat each and the keeper a
 * copy and a drop (docs/ARCHITECTURE.md, "tar's daemon and growth, cut").  A slot a shim kept
 * from its own file (nsfast.c, "homes") may still hold that file's pages: not counted in
 * bytes_in_memory while FREE, and freed with the emptying here.  Its program's fds of it are
 * gone (a home is open nowhere, and the shim closes its own before it asks afresh). */
static void ns_pool_return(uint32_t idx)
{
    struct eph_inode *in = &D.inodes[idx];
    if (in->mem_fd >= 0)
        nsl_recycle_later(in->mem_fd, in->ino);
    in->mem_fd = -1;
    atomic_store(&in->capacity, 0);
    atomic_store(&in->size, 0);
    atomic_store(&in->lent_to, 0);
    ns_freelist[ns_nfree++] = idx;
}

int ns_pool_take_back(int32_t pid, int only_dead)
{
    int n = 0;
    if (nsl_enter() < 0)
        return 0;
    uint32_t hwm = ns_hwm();
    int32_t seen = 0; /* the last pid looked up, and whether it is gone: a batch is 32 slots of one pid */
    int gone = 0;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        int32_t p = atomic_load(&in->lent_to);
        if (!p || atomic_load(&in->state) != EPH_FREE)
            continue;
        if (only_dead && p != seen) {
            seen = p;
            gone = kill(p, 0) < 0 && errno == ESRCH;
        }
        if (only_dead ? !gone : p != pid)
            continue;
        ns_pool_return(i);
        n++;
    }
    nsl_exit();
    return n;
}

void ns_reclaim(void)
{
    if (atomic_exchange(&D.h->reclaim_pending, 0))
        ns_gc_all();
}

/* ---- the recent creates (place_recent) ---------------------------------- */

static char ns_recent_paths[EPH_PLACE_RECENT][EPH_PATH_MAX];

char *ns_recent_path(uint32_t k)
{
    return ns_recent_paths[k % EPH_PLACE_RECENT];
}

void ns_recent_evicted(uint32_t idx, uint32_t gen, const char *path)
{
    uint64_t v = (uint64_t)(idx + 1) | (uint64_t)gen << 32;
    for (uint32_t k = 0; k < EPH_PLACE_RECENT; k++)
        if (atomic_load(&D.h->place_recent[k]) == v) {
            snprintf(ns_recent_paths[k], EPH_PATH_MAX, "%s", path);
            atomic_store(&D.h->place_recent[k], EPH_PLACE_DISK);
        }
}
