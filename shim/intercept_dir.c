/*
 * shim/intercept_dir.c - directory streams under managed roots.  Directories
 * are real; a stream on one is wrapped so that, after the kernel's entries,
 * it yields the in-memory files whose parent is that directory.  Our DIR is
 * told apart from glibc's by a magic at offset 0 (glibc's starts with the fd
 * and a lock word, which can never form the magic).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "pathnorm.h"
#include "paths.h"
#include "fdtable.h"
#include "fp_settle.h"
#include "nsview.h"
#include "nsdir.h"
#include "nsdirfd.h"
#include "dircache.h"

#define DIR_MAGIC 0x45504844495252ULL /* "EPHDIRR" */
#define STANDIN_END 0x7fffffff /* a stand-in's position once its listing was read */

/* One name of the in-memory listing: 24 bytes, its name in the stream's pool (names), so that a
 * listing of n names costs n small entries and their bytes, not n dirents. */
struct mem_ent {
    uint64_t ino;
    uint32_t hash;          /* eph_path_hash(name): the snapshot is sorted by it */
    uint32_t name;          /* offset of the NUL-terminated name in eph_dir.names */
    uint16_t len;           /* strlen of the name (at most 255, as d_name holds) */
    unsigned char on_disk;  /* the kernel listed this name already: do not repeat it */
    unsigned char type;     /* DT_REG, or DT_DIR for a directory in memory (nsdir.c) */
};

struct eph_dir {
    uint64_t magic;
    DIR *real;
    char path[EPH_PATH_MAX];
    size_t plen;
    struct mem_ent *mem;         /* in-memory entries, snapshot at open/rewind */
    uint32_t nmem, pos;
    uint32_t cap;                /* entries mem has room for (kept across rewinds) */
    char *names;                 /* the entries' names, back to back */
    size_t names_cap;
    int phase;                   /* 0: kernel entries, 1: in-memory entries */
    int standin;                 /* on a stand-in fd (nsdirfd.c): no kernel stream (real is NULL), its
                                  * fd below; "." and ".." first */
    int fd;
    int fresh;                   /* a stand-in's stream before its first read: the position is the
                                  * description's, shared with the fd's copies (STANDIN_END once read) */
    uint64_t dev;                /* the directory's st_dev, for the identity map of moved files */
    struct dirent ent;
};

static inline struct eph_dir *ours(DIR *d)
{
    return d && ((struct eph_dir *)(void *)d)->magic == DIR_MAGIC ? (struct eph_dir *)(void *)d : NULL;
}

static int ent_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct mem_ent *)a)->hash, y = ((const struct mem_ent *)b)->hash;
    return x < y ? -1 : x > y;
}

static inline const char *ent_name(const struct eph_dir *e, const struct mem_ent *m) { return e->names + m->name; }

/*
 * The snapshot is taken before the kernel's entries are read, so a file that
 * moves to disk in between (linked at its path before it leaves the
 * namespace) is in both: the kernel's listing marks it, and the in-memory
 * phase skips it.
 */
static void mark_on_disk(struct eph_dir *e, const char *name)
{
    uint32_t hash = eph_path_hash(name), lo = 0, hi = e->nmem;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (e->mem[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < e->nmem && e->mem[lo].hash == hash; lo++)
        if (strcmp(ent_name(e, &e->mem[lo]), name) == 0)
            e->mem[lo].on_disk = 1;
}

/* Room for one more entry and len + 1 more bytes of names; 0, or -1 (out of memory). */
static int snap_room(struct eph_dir *e, uint32_t n, size_t used, size_t len)
{
    if (n == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 64;
        struct mem_ent *m = realloc(e->mem, (size_t)cap * sizeof *m);
        if (!m)
            return -1;
        e->mem = m;
        e->cap = cap;
    }
    if (used + len + 1 > e->names_cap) {
        size_t cap = e->names_cap ? e->names_cap * 2 : 1024;
        while (cap < used + len + 1)
            cap *= 2;
        char *nn = realloc(e->names, cap);
        if (!nn)
            return -1;
        e->names = nn;
        e->names_cap = cap;
    }
    return 0;
}

static uint32_t snap_name(struct eph_dir *e, size_t *used, const char *name, size_t len)
{
    uint32_t off = (uint32_t)*used;
    memcpy(e->names + off, name, len);
    e->names[off + len] = '\0';
    *used += len + 1;
    return off;
}

/*
 * Sort m[0..n) by hash: least significant digit first, 8 bits a pass (stable: equal hashes keep
 * the slot order).  tmp has room for n entries.  A few thousand instructions for a thousand
 * names where qsort's merge sort took 360,000 (callgrind, bench io's listing).
 */
static void sort_by_hash(struct mem_ent *m, struct mem_ent *tmp, uint32_t n)
{
    struct mem_ent *from = m, *to = tmp;
    for (unsigned shift = 0; shift < 32; shift += 8) {
        uint32_t count[257] = {0};
        for (uint32_t i = 0; i < n; i++)
            count[((from[i].hash >> shift) & 0xff) + 1]++;
        if (count[((from[0].hash >> shift) & 0xff) + 1] == n)
            continue; /* one digit value: the pass would not move anything */
        for (unsigned d = 1; d < 257; d++)
            count[d] += count[d - 1];
        for (uint32_t i = 0; i < n; i++)
            to[count[(from[i].hash >> shift) & 0xff]++] = from[i];
        struct mem_ent *t = from;
        from = to;
        to = t;
    }
    if (from != m)
        memcpy(m, from, (size_t)n * sizeof *m);
}

/* A stand-in's listing starts as the kernel's does: "." and "..", with the numbers stat gives.
 * Fills m[0] and m[1] (the snapshot leaves them free), or returns -1: removed meanwhile. */
static int add_dots(struct eph_dir *e, size_t *used)
{
    struct stat self, up;
    char parent[EPH_PATH_MAX];
    snprintf(parent, sizeof parent, "%s", e->path);
    char *s = strrchr(parent, '/');
    if (!s)
        return -1;
    s[s == parent ? 1 : 0] = '\0';
    int up_mem = nsd_dir_slot(parent, NULL) >= 0;
    if (nsd_stat(e->path, &self) < 0 || (up_mem ? nsd_stat(parent, &up) : dc_stat(parent, &up)) < 0)
        return -1; /* removed meanwhile: no dots, as the kernel lists a removed directory */
    if (!up_mem)
        fp_idmap_translate(&up); /* a twin this process made shows the number it had in memory */
    if (snap_room(e, e->nmem, *used, 4) < 0) /* room for ".\0..\0", 5 bytes */
        return -1;
    e->mem[0] = (struct mem_ent){.ino = (uint64_t)self.st_ino, .type = DT_DIR, .len = 1,
                                 .name = snap_name(e, used, ".", 1), .hash = eph_path_hash(".")};
    e->mem[1] = (struct mem_ent){.ino = (uint64_t)up.st_ino, .type = DT_DIR, .len = 2,
                                 .name = snap_name(e, used, "..", 2), .hash = eph_path_hash("..")};
    return 0;
}

/*
 * The names in memory directly inside e->path, read under ns_seq (a reader that meets a writer
 * tries again), into e->mem sorted by hash (mark_on_disk's search; the listing's order).  One
 * pass over the slots' directory hashes (eph_dirhashes: 4 bytes a slot, written with the path):
 * a slot of another directory costs that load; a slot whose hash is the directory's is read,
 * its path compared in place (a torn read is thrown away with the whole pass when ns_seq moved),
 * and a child's name copied once, into the pool.  Reading every slot's state and path instead
 * cost two cache lines of each slot up to the high-water mark, and in a new process a page
 * fault per few slots (docs/ARCHITECTURE.md, "branch gitcost3").
 */
static void snapshot(struct eph_dir *e)
{
    struct eph_shm_header *h = sh.hdr;
    /* The names of children begin after "dir/" ("/" for the root: after the slash). */
    size_t pfx = e->plen == 1 && e->path[0] == '/' ? 0 : e->plen;
    uint32_t first = e->standin ? 2 : 0; /* a stand-in's "." and ".." go in front */
    const _Atomic uint32_t *dh = eph_dirhashes(h);
    const uint32_t want = eph_path_hash(e->path); /* "/" for the root: eph_dir_hash of "/x" */
    e->nmem = e->pos = 0;
    for (unsigned tries = 0; nsv_backoff(tries) == 0; tries++) {
        uint64_t s1 = atomic_load_explicit(&h->ns_seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        uint32_t hwm = atomic_load(&h->inode_hwm), n = first;
        size_t used = 0;
        if (!e->cap && snap_room(e, 0, 0, 0) < 0) /* room for the dots */
            return;
        for (uint32_t i = 0; i < hwm && i < h->ninodes; i++) {
            if (atomic_load_explicit(&dh[i], memory_order_relaxed) != want)
                continue; /* named in another directory, or not at all */
            const struct eph_inode *ino = &sh.inodes[i];
            if (atomic_load_explicit(&ino->state, memory_order_relaxed) == EPH_FREE)
                continue;
            const char *p = ino->path;
            /* An unlinked slot's path is "" (its first byte differs from the directory's '/'). */
            if (p[pfx] != '/' || memcmp(p, e->path, pfx) != 0)
                continue;
            const char *name = p + pfx + 1;
            size_t len = strnlen(name, EPH_PATH_MAX - pfx - 1);
            if (len == 0 || memchr(name, '/', len))
                continue; /* the directory itself with a trailing slash, or a grandchild */
            if (len > sizeof e->ent.d_name - 1)
                len = sizeof e->ent.d_name - 1;
            if (snap_room(e, n, used, len) < 0)
                break;
            struct mem_ent *m = &e->mem[n++];
            m->ino = ino->ino;
            m->name = snap_name(e, &used, name, len);
            m->len = (uint16_t)len;
            m->hash = eph_path_hash(e->names + m->name);
            m->on_disk = 0;
            m->type = S_ISDIR(ino->mode) ? DT_DIR : DT_REG;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->ns_seq, memory_order_relaxed) != s1)
            continue;
        uint32_t kids = n - first;
        if (kids > 1) {
            struct mem_ent small[64];
            struct mem_ent *tmp = kids <= 64 ? small : malloc((size_t)kids * sizeof *tmp);
            if (tmp)
                sort_by_hash(e->mem + first, tmp, kids);
            else
                qsort(e->mem + first, kids, sizeof *e->mem, ent_cmp); /* no memory for the copy */
            if (tmp != small)
                free(tmp);
        }
        e->nmem = n;
        if (first && add_dots(e, &used) < 0) {
            memmove(e->mem, e->mem + first, (size_t)kids * sizeof *e->mem);
            e->nmem = kids;
        }
        return;
    }
}

static DIR *wrap(DIR *real, const char *abs)
{
    struct eph_dir *e = calloc(1, sizeof *e);
    if (!e) {
        sys.closedir(real);
        errno = ENOMEM;
        return NULL;
    }
    e->magic = DIR_MAGIC;
    e->real = real;
    e->plen = strlen(abs);
    memcpy(e->path, abs, e->plen + 1);
    struct stat st;
    if (sys.fstat(sys.dirfd(real), &st) == 0)
        e->dev = (uint64_t)st.st_dev;
    fp_settle_moved(); /* our open files that moved since: their identities, for d_ino (as stat does) */
    snapshot(e);
    return (DIR *)(void *)e;
}

/* A stream on a stand-in fd (nsdirfd.c): the listing of the directory in memory it stands for,
 * by its current name; nothing once it is removed, as the kernel lists a removed directory.  No
 * kernel stream: glibc's would only read the removed directory.  fresh_fd: fd was just opened
 * here (opendir), so its position is 0.  NULL with errno, fd untouched, on failure. */
static DIR *wrap_standin(int fd, int fresh_fd)
{
    struct eph_dir *e = calloc(1, sizeof *e);
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    e->magic = DIR_MAGIC;
    e->standin = 1;
    e->fd = fd;
    e->phase = 1;
    if (ndf_path(fd, e->path) == 0 && ft_mdirfd(fd)) {
        e->plen = strlen(e->path);
        snapshot(e);
        /* A copy of an fd whose listing was read to the end (glibc reads it in one batch) starts
         * at the end, as the kernel's position says; rewinddir starts it again. */
        if (!fresh_fd && sys.lseek(fd, 0, SEEK_CUR) > 0)
            e->pos = e->nmem;
        else
            e->fresh = 1;
        return (DIR *)(void *)e;
    }
    free(e);
    /* Removed (the kernel's stream of a removed directory is the answer), or put on its twin just
     * now (a disk directory's stream).  Either way glibc's closedir will close the fd past our
     * close: no mark may outlive it. */
    int removed = ft_mdirfd(fd);
    ndf_forget_if(fd);
    ft_unmark_root(fd);
    DIR *real = REAL(fdopendir)(fd);
    char abs[EPH_PATH_MAX];
    int t;
    if (!real || removed || path_resolve(fd, ".", abs, &t) <= 0)
        return real;
    return wrap(real, abs);
}

/*
 * A name outside every root as spelled, which a symlink outside them may lead into one (paths.c):
 * while anything is in memory, a directory the kernel opened is named by its fd, and one under a
 * root lists the names in memory after the kernel's, as the managed stream does; one the kernel
 * did not find may be a directory in memory, opened by its canonical name.
 */
static __attribute__((noinline)) DIR *opendir_outside(const char *path)
{
    char abs[EPH_PATH_MAX];
    DIR *real = REAL(opendir)(path);
    if (!real)
        return errno == ENOENT && path_alias(AT_FDCWD, path, abs) ? opendir(abs) : NULL;
    if (!sh_busy && path_alias_dir(sys.dirfd(real), AT_FDCWD, path, abs) && sh_attach() == 0)
        return wrap(real, abs);
    return real;
}

SH_EXPORT DIR *opendir(const char *path)
{
    char abs[EPH_PATH_MAX];
    int t;
    if (likely(!path_maybe_managed(AT_FDCWD, path)))
        return opendir_outside(path);
    if (!sh_busy && ndf_on() && sh_attach() == 0) {
        int fd = ndf_open_path(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            DIR *d = wrap_standin(fd, 1);
            if (!d) {
                int e = errno;
                close(fd);
                errno = e;
            }
            return d;
        }
    }
    if (!sh_busy && path_outside(AT_FDCWD, path))
        return opendir_outside(path); /* from a cwd above a root, a relative name outside them */
    if (sh_busy || path_resolve(AT_FDCWD, path, abs, &t) <= 0 || sh_attach() < 0) {
        DIR *d = REAL(opendir)(path);
        if (!d && errno == ENOENT)
            nsv_enoent(AT_FDCWD, path);
        return d;
    }
    uint32_t inode, gen;
    if (nsv_lookup(abs, &inode, &gen) == 0 || (path_canon(abs, 1) > 0 && nsv_lookup(abs, &inode, &gen) == 0)) {
        errno = ENOTDIR;
        return NULL;
    }
    DIR *real = sys.opendir(path);
    if (!real && errno == ENOENT)
        nsv_enoent(AT_FDCWD, path);
    if (!real)
        return NULL;
    /* list the in-memory files of the directory itself, whatever symlink led here */
    int t2;
    if (path_resolve(sys.dirfd(real), ".", abs, &t2) <= 0)
        return real;
    return wrap(real, abs);
}

SH_EXPORT DIR *fdopendir(int fd)
{
    if (ft_managed(fd)) {
        errno = ENOTDIR;
        return NULL;
    }
    if (ft_mdirfd(fd)) {
        /* glibc's checks and its FD_CLOEXEC; the stand-in keeps its mark while the stream lives
         * (dirfd() names it), closedir drops it */
        int fl = sys.fcntl(fd, F_GETFL);
        if (fl < 0)
            return NULL;
        if (fl & O_PATH) {
            errno = EBADF;
            return NULL;
        }
        if (sys.fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return NULL;
        return wrap_standin(fd, 0);
    }
    DIR *real = REAL(fdopendir)(fd);
    if (real)
        ft_unmark_root(fd); /* glibc's closedir closes it */
    if (!real || sh.disabled || sh_busy)
        return real;
    char abs[EPH_PATH_MAX];
    int t;
    if (path_resolve(fd, ".", abs, &t) <= 0 || sh_attach() < 0)
        return real;
    return wrap(real, abs);
}

static struct dirent *next_mem(struct eph_dir *e)
{
    while (e->pos < e->nmem && e->mem[e->pos].on_disk)
        e->pos++;
    if (e->pos >= e->nmem)
        return NULL;
    struct mem_ent *m = &e->mem[e->pos++];
    e->ent.d_ino = m->ino;
    e->ent.d_off = -(long)(e->pos + 1);
    e->ent.d_type = m->type;
    e->ent.d_reclen = sizeof e->ent;
    memcpy(e->ent.d_name, ent_name(e, m), (size_t)m->len + 1);
    return &e->ent;
}

SH_EXPORT struct dirent *readdir(DIR *d)
{
    struct eph_dir *e = ours(d);
    if (likely(!e))
        return REAL(readdir)(d);
    if (e->fresh) {
        e->fresh = 0;
        sys.lseek(e->fd, STANDIN_END, SEEK_SET);
    }
    if (e->phase == 0) {
        int saved = errno;
        errno = 0;
        struct dirent *r = sys.readdir(e->real);
        if (r && e->nmem)
            mark_on_disk(e, r->d_name);
        if (r) /* a file this process had open when it moved: its in-memory number, as stat shows */
            r->d_ino = (ino_t)fp_idmap_ino(e->dev, (uint64_t)r->d_ino);
        if (r || errno)
            return r;
        errno = saved;
        e->phase = 1;
    }
    return next_mem(e);
}

SH_EXPORT struct dirent64 *readdir64(DIR *d)
{
    if (likely(!ours(d)))
        return REAL(readdir64)(d);
    return (struct dirent64 *)(void *)readdir(d);
}

SH_EXPORT int readdir_r(DIR *d, struct dirent *entry, struct dirent **result)
{
    struct eph_dir *e = ours(d);
    if (likely(!e))
        return REAL(readdir_r)(d, entry, result);
    int saved = errno;
    errno = 0;
    struct dirent *r = readdir(d);
    int err = errno;
    errno = saved;
    if (!r) {
        *result = NULL;
        return err;
    }
    memcpy(entry, r, sizeof *r);
    *result = entry;
    return 0;
}

SH_EXPORT int readdir64_r(DIR *d, struct dirent64 *entry, struct dirent64 **result)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return readdir_r(d, (struct dirent *)(void *)entry, (struct dirent **)(void *)result);
#pragma GCC diagnostic pop
}

SH_EXPORT int closedir(DIR *d)
{
    struct eph_dir *e = ours(d);
    if (likely(!e))
        return REAL(closedir)(d);
    int fd = e->standin ? e->fd : sys.dirfd(e->real);
    ndf_forget_if(fd);
    ft_unmark_root(fd); /* a stand-in's or a twin's mark: the fd goes */
    int r = e->standin ? sys.close(fd) : sys.closedir(e->real);
    free(e->mem);
    free(e->names);
    e->magic = 0;
    free(e);
    return r;
}

SH_EXPORT void rewinddir(DIR *d)
{
    struct eph_dir *e = ours(d);
    if (likely(!e)) {
        REAL(rewinddir)(d);
        return;
    }
    if (e->standin && !ft_mdirfd(e->fd)) {
        /* Put on its twin while the stream was open (an fchdir of dirfd(d)...): from now on a
         * disk directory's stream, the kernel's entries and then the names in memory. */
        DIR *real = REAL(fdopendir)(e->fd);
        struct stat st;
        if (real) {
            e->real = real;
            e->standin = 0;
            if (sys.fstat(e->fd, &st) == 0)
                e->dev = (uint64_t)st.st_dev;
        }
    }
    if (e->standin)
        sys.lseek(e->fd, 0, SEEK_SET); /* the kernel's position to 0, as glibc's rewinddir */
    else
        sys.rewinddir(e->real);
    e->phase = e->standin;
    e->fresh = e->standin;
    snapshot(e);
}

/* Kernel positions are non-negative; in-memory entries use -2, -3, ... */
SH_EXPORT long telldir(DIR *d)
{
    struct eph_dir *e = ours(d);
    if (likely(!e))
        return REAL(telldir)(d);
    if (e->phase == 0)
        return sys.telldir(e->real);
    return -(long)e->pos - 2;
}

SH_EXPORT void seekdir(DIR *d, long pos)
{
    struct eph_dir *e = ours(d);
    if (likely(!e)) {
        REAL(seekdir)(d, pos);
        return;
    }
    if (pos >= 0 && e->standin) {
        e->pos = 0; /* no position of a stand-in's stream is a kernel one */
        return;
    }
    if (pos >= 0) {
        e->phase = 0;
        sys.seekdir(e->real, pos);
        return;
    }
    e->phase = 1;
    long idx = -pos - 2;
    e->pos = idx < 0 ? 0 : (uint32_t)idx;
}

SH_EXPORT int dirfd(DIR *d)
{
    struct eph_dir *e = ours(d);
    if (e && e->standin)
        return e->fd;
    return REAL(dirfd)(e ? e->real : d);
}

/* glibc's scandir opens the directory internally, past our opendir. */
static int scandir_impl(const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
                        int (*cmp)(const struct dirent **, const struct dirent **))
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    size_t n = 0, cap = 0;
    struct dirent **v = NULL, *ent;
    int saved = errno;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (sel && !sel(ent)) {
            errno = 0;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            struct dirent **nv = realloc(v, cap * sizeof *v);
            if (!nv)
                goto err;
            v = nv;
        }
        size_t sz = offsetof(struct dirent, d_name) + strlen(ent->d_name) + 1;
        struct dirent *c = malloc(sz < sizeof *c ? sizeof *c : sz);
        if (!c)
            goto err;
        memcpy(c, ent, sz);
        v[n++] = c;
        errno = 0;
    }
    if (errno)
        goto err;
    closedir(d);
    if (cmp && n > 1)
        qsort(v, n, sizeof *v, (int (*)(const void *, const void *))cmp);
    errno = saved;
    *list = v;
    return (int)n;
err:;
    int e = errno ? errno : ENOMEM;
    while (n)
        free(v[--n]);
    free(v);
    closedir(d);
    errno = e;
    return -1;
}

SH_EXPORT int scandir(const char *path, struct dirent ***list, int (*sel)(const struct dirent *),
                      int (*cmp)(const struct dirent **, const struct dirent **))
{
    return scandir_impl(path, list, sel, cmp);
}

/* struct dirent64 and struct dirent are the same layout on 64-bit Linux. */
SH_EXPORT int scandir64(const char *path, struct dirent64 ***list, int (*sel)(const struct dirent64 *),
                        int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
    return scandir_impl(path, (struct dirent ***)(void *)list, (int (*)(const struct dirent *))(void *)sel,
                        (int (*)(const struct dirent **, const struct dirent **))(void *)cmp);
}

/* glibc's getdents64 is the kernel's call on the fd: a stand-in gets its twin first. */
SH_EXPORT ssize_t getdents64(int fd, void *buf, size_t n)
{
    ndf_settle_if(fd);
    return REAL(getdents64)(fd, buf, n);
}
