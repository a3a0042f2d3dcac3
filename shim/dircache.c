/*
 * shim/dircache.c - recently seen disk directories (dircache.h).
 *
 * A handful of entries, replaced round robin: the common path touches one
 * directory again and again (a root, a build's object directory, a temporary
 * directory) and its ancestors.  Only directories are kept: a stat that finds a
 * file or nothing is the kernel's answer each time.  Guarded by one mutex; the
 * section is a compare and a copy.
 *
 * Each table keeps what a look compares (length, generation, time) in a small array of its own
 * and the names and answers in another, SH_COLD: a look that misses reads one page, and a process
 * writes a name's page only when it keeps that name (before, a miss read every entry's length,
 * spread one per page over 13 pages of .bss, each a page fault in every shimmed process).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ephemera/nslock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "compiler.h"
#include "dircache.h"
#include "init.h"
#include "sys.h"

#define DC_ENTRIES 16
/* Names kept inline, at most this long: longer ones are not kept (each look asks the kernel), so
 * that the driver of a compile, which fills every entry, writes 2 pages and not 8. */
#define DC_NAME_MAX 256
#define DC_TTL_NS 1000000000ull /* CLOCK_MONOTONIC_COARSE: a program without the shim is seen within 1 s */

struct dc_key {
    size_t len;     /* 0 = unused */
    uint64_t tail;  /* the name's last 8 bytes (dc_tail): a look compares names only where it agrees */
    uint64_t gen;   /* the region's dir_gen when the stat was made */
    uint64_t stamp; /* sh_lru_ns() when the stat was made */
};

/* The last 8 bytes of a name of len bytes (fewer, zero-filled, for a shorter one).  Names of one
 * length are often siblings (git's objects/xx, a build's object directories), whose first bytes
 * agree: comparing the whole name with every entry of its length cost git add 3.4 memcmp a look. */
static inline uint64_t dc_tail(const char *s, size_t len)
{
    uint64_t t = 0;
    if (len >= sizeof t)
        memcpy(&t, s + len - sizeof t, sizeof t);
    else
        memcpy(&t, s, len);
    return t;
}

struct dc_entry {
    struct stat st;
    char path[DC_NAME_MAX];
};

static struct dc_key dc_keys[DC_ENTRIES];
static struct dc_entry dc[DC_ENTRIES] SH_COLD;
static unsigned dc_next;
static pthread_mutex_t dc_mu = PTHREAD_MUTEX_INITIALIZER; /* writers, and dc_fd_path's readers */
static _Atomic unsigned dc_seq;                            /* odd: a writer is changing an entry */
#define DC_READ_TRIES 4

/* A reader's start: the sequence to check at the end (odd: a writer inside, the read will fail). */
static inline unsigned dc_read_begin(void)
{
    return atomic_load_explicit(&dc_seq, memory_order_acquire);
}

/* A reader's end: 1 when what it read since dc_read_begin(s) is one writer's complete state. */
static inline int dc_read_valid(unsigned s)
{
    atomic_thread_fence(memory_order_acquire); /* the entry's loads before the second look */
    return !(s & 1) && atomic_load_explicit(&dc_seq, memory_order_relaxed) == s;
}

/* A writer's start: 0 when the lock is busy, and then the store is skipped (a cache may always
 * leave an entry out).  Not a wait: the holder may be this very thread, interrupted inside a write
 * by a signal whose handler names a file. */
static int dc_write_begin(void)
{
    if (pthread_mutex_trylock(&dc_mu) != 0)
        return 0;
    atomic_store_explicit(&dc_seq, atomic_load_explicit(&dc_seq, memory_order_relaxed) + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* odd before any store to an entry */
    return 1;
}

static void dc_write_end(void)
{
    atomic_store_explicit(&dc_seq, atomic_load_explicit(&dc_seq, memory_order_relaxed) + 1, memory_order_release);
    pthread_mutex_unlock(&dc_mu);
}

static inline uint64_t dc_gen(void)
{
    return sh.hdr ? atomic_load_explicit(&sh.hdr->dir_gen, memory_order_acquire) : 0;
}

/* The miss of the current call (dircache.h): short paths only (a thread's copy stays small). */
static SH_TLS struct {
    int depth;  /* calls in progress on this thread that keep a miss */
    size_t len; /* 0 = none kept */
    uint64_t gen;
    char path[256];
} dc_miss;

void dc_miss_begin(void)
{
    dc_miss.depth++;
    dc_miss.len = 0;
}

void dc_miss_end(void)
{
    if (dc_miss.depth > 0)
        dc_miss.depth--;
    dc_miss.len = 0;
}

int dc_stat(const char *dir, struct stat *st)
{
    size_t len = strlen(dir);
    if (!sh.hdr || len >= DC_NAME_MAX)
        return sys.stat(dir, st);
    uint64_t gen = dc_gen(), now = sh_lru_ns(), tail = dc_tail(dir, len);
    if (dc_miss.len != 0 && dc_miss.len == len && dc_miss.depth > 0 && dc_miss.gen == gen && memcmp(dc_miss.path, dir, len) == 0) {
        eph_ns_stall("dc-miss"); /* fault builds: the call's own miss answers (test/c/enoentorder_test.c) */
        errno = ENOENT; /* this call's own stat of it found nothing */
        return -1;
    }
    for (int tries = 0; tries < DC_READ_TRIES; tries++) {
        unsigned s = dc_read_begin();
        int hit = 0;
        for (int i = 0; i < DC_ENTRIES && !hit; i++) {
            const struct dc_key *k = &dc_keys[i];
            if (k->len == len && k->tail == tail && k->gen == gen && now - k->stamp < DC_TTL_NS &&
                memcmp(dc[i].path, dir, len) == 0) {
                *st = dc[i].st; /* a torn copy is overwritten: by the next try's, or the kernel's */
                hit = 1;
            }
        }
        if (dc_read_valid(s)) {
            if (hit)
                return 0;
            break;
        }
    }
    /* The generation is read before the stat: a change that lands between them
     * leaves an entry of the old generation, which the next look ignores. */
    if (sys.stat(dir, st) < 0) {
        if (errno == ENOENT && dc_miss.depth > 0 && len < sizeof dc_miss.path) {
            memcpy(dc_miss.path, dir, len);
            dc_miss.gen = gen;
            dc_miss.len = len;
        }
        return -1;
    }
    if (!S_ISDIR(st->st_mode) || !dc_write_begin())
        return 0;
    unsigned i = dc_next++ % DC_ENTRIES;
    struct dc_entry *e = &dc[i];
    dc_keys[i] = (struct dc_key){len, tail, gen, now};
    e->st = *st;
    memcpy(e->path, dir, len + 1);
    dc_write_end();
    return 0;
}

/* Directories reached by a kernel walk that met no symlink (paths.c, canon_parent), kept under
 * the same rules as the stats above; and directories spelled through a symlink (paths.c,
 * path_alias: a root reached through a symlink outside every root) with the kernel's name of each
 * in real (empty for the first kind).  A symlink on the way re-pointed by a shim goes by an unlink
 * or a rename, made by a symlink, and all three move the generation. */
struct dc_canon_key {
    struct dc_key k;
    int alias; /* real is not empty */
};

struct dc_canon {
    char path[DC_NAME_MAX], real[DC_NAME_MAX];
};

static struct dc_canon_key dcc_keys[DC_ENTRIES];
static struct dc_canon dcc[DC_ENTRIES] SH_COLD;
static unsigned dcc_next;

uint64_t dc_generation(void)
{
    return dc_gen();
}

/* An entry for dir of the kind asked (alias: real is not empty): 1, real copied when asked. */
static int canon_find(const char *dir, size_t len, char *real)
{
    if (!sh.hdr || len >= DC_NAME_MAX)
        return 0;
    uint64_t gen = dc_gen(), now = sh_lru_ns(), tail = dc_tail(dir, len);
    for (int tries = 0; tries < DC_READ_TRIES; tries++) {
        unsigned s = dc_read_begin();
        int hit = 0;
        for (int i = 0; i < DC_ENTRIES && !hit; i++) {
            const struct dc_canon_key *k = &dcc_keys[i];
            hit = k->k.len == len && k->k.tail == tail && k->k.gen == gen && now - k->k.stamp < DC_TTL_NS &&
                  k->alias == !!real && memcmp(dcc[i].path, dir, len) == 0;
            if (hit && real)
                memcpy(real, dcc[i].real, strnlen(dcc[i].real, DC_NAME_MAX - 1) + 1); /* torn: bounded */
        }
        if (dc_read_valid(s))
            return hit;
    }
    return 0;
}

static void canon_put(const char *dir, size_t len, const char *real, uint64_t gen)
{
    size_t rlen = real ? strlen(real) : 0;
    if (!sh.hdr || len >= DC_NAME_MAX || rlen >= DC_NAME_MAX)
        return;
    uint64_t now = sh_lru_ns();
    if (!dc_write_begin())
        return;
    unsigned i = dcc_next++ % DC_ENTRIES;
    struct dc_canon *e = &dcc[i];
    dcc_keys[i] = (struct dc_canon_key){{len, dc_tail(dir, len), gen, now}, rlen != 0};
    memcpy(e->path, dir, len);
    e->path[len] = 0;
    memcpy(e->real, real ? real : "", rlen + 1);
    dc_write_end();
}

int dc_canonical(const char *dir, size_t len)
{
    return canon_find(dir, len, NULL);
}

void dc_canonical_seen(const char *dir, size_t len, uint64_t gen)
{
    canon_put(dir, len, NULL, gen);
}

int dc_alias(const char *dir, size_t len, char *real)
{
    return canon_find(dir, len, real);
}

void dc_alias_seen(const char *dir, size_t len, const char *real, uint64_t gen)
{
    canon_put(dir, len, real, gen);
}

/*
 * Directory fds named through /proc/self/fd (a readlink costs 10-15 µs here, an fstat
 * under 1.5 µs): an *at call relative to a directory fd names it each time, and tar or
 * rm -r make thousands of them on a few fds.  An entry is used while the generation and
 * the time rules above hold and fstat still finds the same directory behind the fd (the
 * fd may have been closed and its number given to another directory since).
 */
struct dc_fdkey {
    int fd1; /* fd + 1, 0 = unused */
    size_t len;
    uint64_t gen;
    uint64_t stamp;
    dev_t dev;
    ino_t ino;
};

static struct dc_fdkey dcf_keys[DC_ENTRIES];
static char dcf_path[DC_ENTRIES][DC_NAME_MAX] SH_COLD;
static unsigned dcf_next;

static int fd_readlink(int fd, char *out, size_t n)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t r = sys.readlink(link, out, n - 1);
    if (r <= 0 || (size_t)r >= n - 1)
        return -1;
    out[r] = '\0';
    return out[0] == '/' ? 0 : -1;
}

int dc_fd_path(int fd, char *out, size_t n)
{
    if (!sh.hdr || fd < 0 || n < EPH_PATH_MAX)
        return fd_readlink(fd, out, n);
    uint64_t gen = dc_gen(), now = sh_lru_ns();
    struct stat st;
    int have = 0;
    dev_t dev = 0;
    ino_t ino = 0;
    /* A busy lock (perhaps this thread's own, a signal handler having interrupted it): as a miss. */
    int locked = pthread_mutex_trylock(&dc_mu) == 0;
    for (int i = 0; locked && i < DC_ENTRIES && !have; i++) {
        const struct dc_fdkey *e = &dcf_keys[i];
        if (e->fd1 == fd + 1 && e->gen == gen && now - e->stamp < DC_TTL_NS) {
            memcpy(out, dcf_path[i], e->len + 1);
            dev = e->dev;
            ino = e->ino;
            have = 1;
        }
    }
    if (locked)
        pthread_mutex_unlock(&dc_mu);
    if (have) {
        if (sys.fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == dev && st.st_ino == ino)
            return 0;
    }
    /* As for the stats: the generation read before the readlink keeps a racing change out. */
    if (fd_readlink(fd, out, n) < 0)
        return -1;
    size_t len = strlen(out);
    if (len >= DC_NAME_MAX || sys.fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || pthread_mutex_trylock(&dc_mu) != 0)
        return 0;
    int i = -1;
    for (int j = 0; j < DC_ENTRIES && i < 0; j++)
        if (dcf_keys[j].fd1 == fd + 1)
            i = j; /* one entry per fd */
    if (i < 0)
        i = (int)(dcf_next++ % DC_ENTRIES);
    dcf_keys[i] = (struct dc_fdkey){fd + 1, len, gen, now, st.st_dev, st.st_ino};
    memcpy(dcf_path[i], out, len + 1);
    pthread_mutex_unlock(&dc_mu);
    return 0;
}

void dc_changed(void)
{
    if (sh.hdr)
        atomic_fetch_add_explicit(&sh.hdr->dir_gen, 1, memory_order_acq_rel);
}

void dc_after_fork(void)
{
    /* Another thread of the parent held the lock at the fork (a trylock fails only then, the
     * child being alone): the fd-name entries it was writing may be half made. */
    if (pthread_mutex_trylock(&dc_mu) != 0)
        memset(dcf_keys, 0, sizeof dcf_keys);
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&dc_mu, &fresh, sizeof fresh);
    /* Another thread of the parent was inside a write: its entry may be half made.  Forget every
     * entry (a miss asks the kernel) and make the sequence even again, or no read would succeed. */
    unsigned s = atomic_load_explicit(&dc_seq, memory_order_relaxed);
    if (s & 1) {
        memset(dc_keys, 0, sizeof dc_keys);
        memset(dcc_keys, 0, sizeof dcc_keys);
        atomic_store_explicit(&dc_seq, s + 1, memory_order_relaxed);
    }
}
