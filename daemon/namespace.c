/*
 * namespace.c - single writer of the shared path hash and of inode slots.
 */
#include "namespace.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "ephemera/lock.h"
#include "log.h"

#define NS_LOCK_STEAL_NS (1000ull * 1000 * 1000)

static uint32_t *ns_freelist; /* stack of free slot indices below inode_hwm */
static uint32_t ns_nfree;

int ns_init(char *err, size_t errlen)
{
    ns_freelist = calloc(D.h->ninodes, sizeof *ns_freelist);
    D.inode_root = calloc(D.h->ninodes, 1);
    if (!ns_freelist || !D.inode_root) {
        snprintf(err, errlen, "calloc(inode tables, %u): out of memory", D.h->ninodes);
        return -1;
    }
    return 0;
}

static uint32_t ns_hwm(void)
{
    return atomic_load_explicit(&D.h->inode_hwm, memory_order_relaxed);
}

int ns_lookup(const char *path)
{
    /* The daemon is the only writer, so it reads without the seqlock. */
    uint32_t hv = eph_path_hash(path);
    _Atomic uint32_t *b = eph_buckets(D.h);
    uint32_t i = atomic_load_explicit(&b[hv & (D.h->nbuckets - 1)], memory_order_relaxed);
    while (i) {
        struct eph_inode *in = &D.inodes[i - 1];
        if (in->hash == hv && strcmp(in->path, path) == 0)
            return (int)(i - 1);
        i = in->next;
    }
    return -1;
}

int ns_valid(uint32_t idx, uint32_t gen)
{
    if (idx >= ns_hwm())
        return 0;
    struct eph_inode *in = &D.inodes[idx];
    return atomic_load(&in->state) != EPH_FREE && atomic_load(&in->gen) == gen;
}

static int ns_alloc_slot(void)
{
    if (ns_nfree)
        return (int)ns_freelist[--ns_nfree];
    uint32_t hwm = ns_hwm();
    if (hwm >= D.h->ninodes)
        return -1;
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

int ns_new_inode(int root, uint32_t mode, uint32_t uid, uint32_t gid)
{
    int idx = ns_alloc_slot();
    if (idx < 0)
        return -ENFILE;
    int fd = memfd_create("ephemera", MFD_CLOEXEC);
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
    atomic_store(&in->gen, atomic_load(&in->gen) + 1);
    atomic_store(&in->epoch, 0);
    atomic_store(&in->inflight, 0);
    atomic_store(&in->lock.word, 0);
    atomic_store(&in->open_count, 0);
    atomic_store(&in->nlink, 0);
    atomic_store(&in->pinned, 0);
    atomic_store(&in->holes, 0);
    in->mem_fd = fd;
    in->disk_fd = -1;
    atomic_store(&in->size, 0);
    atomic_store(&in->capacity, 0);
    atomic_store(&in->last_use, ephd_mono_ns());
    /* Identity as a file of its root's file system (find -xdev, FTW_MOUNT and
     * du -x must not take it for a mount point), with an inode number tagged
     * so that it can never equal a disk file's there (shutil's samefile). */
    in->ino = st.st_ino | EPH_INO_TAG;
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
    uint32_t st = atomic_load(&in->state);
    if (st == EPH_FREE)
        return;
    if (in->path[0]) {
        ns_write_begin();
        ns_remove(idx);
        ns_write_end();
    }
    if (st == EPH_MEM) {
        struct eph_counters *c = &D.h->c;
        atomic_fetch_sub(&c->files_in_memory, 1);
        atomic_fetch_sub(&c->bytes_in_memory, atomic_load(&in->capacity));
    }
    if (in->mem_fd >= 0)
        close(in->mem_fd);
    if (in->disk_fd >= 0)
        close(in->disk_fd);
    in->mem_fd = in->disk_fd = -1;
    atomic_store(&in->capacity, 0);
    atomic_store(&in->size, 0);
    /* gen moves before the slot is reusable so stale descs never match. */
    atomic_store(&in->gen, atomic_load(&in->gen) + 1);
    atomic_store_explicit(&in->state, EPH_FREE, memory_order_release);
    eph_wake_all(&in->epoch);
    ns_freelist[ns_nfree++] = idx;
}

int ns_maybe_gc(uint32_t idx)
{
    if (idx >= ns_hwm())
        return 0;
    struct eph_inode *in = &D.inodes[idx];
    if (atomic_load(&in->state) == EPH_FREE || atomic_load(&in->nlink) != 0 ||
        atomic_load(&in->open_count) != 0)
        return 0;
    log_msg(LOG_DEBUG, "gc inode %u", idx);
    ns_free(idx);
    return 1;
}

void ns_gc_all(void)
{
    uint32_t hwm = ns_hwm();
    for (uint32_t i = 0; i < hwm; i++)
        ns_maybe_gc(i);
}

void ns_write_begin(void)
{
    uint64_t s = atomic_load_explicit(&D.h->ns_seq, memory_order_relaxed);
    atomic_store_explicit(&D.h->ns_seq, s + 1, memory_order_relaxed);
    /* Readers that see the even value must not see any of our writes. */
    atomic_thread_fence(memory_order_seq_cst);
}

void ns_write_end(void)
{
    uint64_t s = atomic_load_explicit(&D.h->ns_seq, memory_order_relaxed);
    atomic_store_explicit(&D.h->ns_seq, s + 1, memory_order_release);
}

void ns_insert(uint32_t idx, const char *path)
{
    struct eph_inode *in = &D.inodes[idx];
    size_t n = strlen(path);
    memcpy(in->path, path, n + 1);
    in->hash = eph_path_hash(path);
    _Atomic uint32_t *b = &eph_buckets(D.h)[in->hash & (D.h->nbuckets - 1)];
    in->next = atomic_load_explicit(b, memory_order_relaxed);
    atomic_store_explicit(b, idx + 1, memory_order_release);
    atomic_store(&in->nlink, 1);
}

void ns_remove(uint32_t idx)
{
    struct eph_inode *in = &D.inodes[idx];
    if (!in->path[0])
        return;
    _Atomic uint32_t *b = &eph_buckets(D.h)[in->hash & (D.h->nbuckets - 1)];
    uint32_t i = atomic_load_explicit(b, memory_order_relaxed);
    if (i == idx + 1) {
        atomic_store_explicit(b, in->next, memory_order_release);
    } else {
        while (i) {
            struct eph_inode *p = &D.inodes[i - 1];
            if (p->next == idx + 1) {
                p->next = in->next;
                break;
            }
            i = p->next;
        }
    }
    in->next = 0;
    in->path[0] = 0;
    atomic_store(&in->nlink, 0);
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
        ns_remove(movers[k]);
        ns_insert(movers[k], np);
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
        if (atomic_load(&in->state) == EPH_FREE)
            continue;
        atomic_store(&in->open_count, 0);
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
    for (;;) {
        uint32_t w = atomic_load(&in->lock.word);
        if (w == 0 && eph_trylock(&in->lock))
            return 0;
        if (ephd_mono_ns() - start > NS_LOCK_STEAL_NS) {
            /* Critical sections are a memcpy long: a holder that stays
             * this long was killed inside one, or is stopped or starved.
             * Take the lock over, or the whole instance would hang behind
             * a dead process; a live one sees the state or epoch moved when
             * it resumes and redoes its write (shim/fp_io.c, io_again). */
            log_msg(LOG_WARN,
                    "inode %u: lock held for 1 s; taking it over (a dead holder, or a stalled one that will "
                    "redo its write when it resumes)",
                    idx);
            atomic_store(&in->lock.word, 1);
            return 1;
        }
        if (w != 0)
            eph_futex(&in->lock.word, FUTEX_WAIT, w, &(struct timespec){0, 10 * 1000 * 1000});
    }
}
