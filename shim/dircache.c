/*
 * shim/dircache.c - recently seen disk directories (dircache.h).
 *
 * A handful of entries, replaced round robin: the common path touches one
 * directory again and again (a root, a build's object directory, a temporary
 * directory) and its ancestors.  Only directories are kept: a stat that finds a
 * file or nothing is the kernel's answer each time.  Guarded by one mutex; the
 * section is a compare and a copy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ephemera/nslock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "dircache.h"
#include "init.h"
#include "sys.h"

#define DC_ENTRIES 16
#define DC_TTL_NS 1000000000ull /* CLOCK_MONOTONIC_COARSE: a program without the shim is seen within 1 s */

struct dc_entry {
    size_t len;          /* 0 = unused */
    uint64_t gen;        /* the region's dir_gen when the stat was made */
    uint64_t stamp;      /* sh_lru_ns() when the stat was made */
    struct stat st;
    char path[EPH_PATH_MAX];
};

static struct dc_entry dc[DC_ENTRIES];
static unsigned dc_next;
static pthread_mutex_t dc_mu = PTHREAD_MUTEX_INITIALIZER;

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
    if (!sh.hdr || len >= EPH_PATH_MAX)
        return sys.stat(dir, st);
    uint64_t gen = dc_gen(), now = sh_lru_ns();
    if (dc_miss.len != 0 && dc_miss.len == len && dc_miss.depth > 0 && dc_miss.gen == gen && memcmp(dc_miss.path, dir, len) == 0) {
        eph_ns_stall("dc-miss"); /* fault builds: the call's own miss answers (test/c/enoentorder_test.c) */
        errno = ENOENT; /* this call's own stat of it found nothing */
        return -1;
    }
    pthread_mutex_lock(&dc_mu);
    for (int i = 0; i < DC_ENTRIES; i++) {
        struct dc_entry *e = &dc[i];
        if (e->len == len && e->gen == gen && now - e->stamp < DC_TTL_NS && memcmp(e->path, dir, len) == 0) {
            *st = e->st;
            pthread_mutex_unlock(&dc_mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&dc_mu);
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
    if (!S_ISDIR(st->st_mode))
        return 0;
    pthread_mutex_lock(&dc_mu);
    struct dc_entry *e = &dc[dc_next++ % DC_ENTRIES];
    e->len = len;
    e->gen = gen;
    e->stamp = now;
    e->st = *st;
    memcpy(e->path, dir, len + 1);
    pthread_mutex_unlock(&dc_mu);
    return 0;
}

/* Directories reached by a kernel walk that met no symlink (paths.c, canon_parent), kept under
 * the same rules as the stats above; and directories spelled through a symlink (paths.c,
 * path_alias: a root reached through a symlink outside every root) with the kernel's name of each
 * in real (empty for the first kind).  A symlink on the way re-pointed by a shim goes by an unlink
 * or a rename, made by a symlink, and all three move the generation. */
struct dc_canon {
    size_t len; /* 0 = unused */
    uint64_t gen;
    uint64_t stamp;
    char path[EPH_PATH_MAX], real[EPH_PATH_MAX];
};

static struct dc_canon dcc[DC_ENTRIES];
static unsigned dcc_next;

uint64_t dc_generation(void)
{
    return dc_gen();
}

/* An entry for dir of the kind asked (alias: real is not empty): 1, real copied when asked. */
static int canon_find(const char *dir, size_t len, char *real)
{
    if (!sh.hdr || len >= EPH_PATH_MAX)
        return 0;
    uint64_t gen = dc_gen(), now = sh_lru_ns();
    int hit = 0;
    pthread_mutex_lock(&dc_mu);
    for (int i = 0; i < DC_ENTRIES && !hit; i++) {
        struct dc_canon *e = &dcc[i];
        hit = e->len == len && e->gen == gen && now - e->stamp < DC_TTL_NS && memcmp(e->path, dir, len) == 0 &&
              !e->real[0] == !real;
        if (hit && real)
            memcpy(real, e->real, strlen(e->real) + 1);
    }
    pthread_mutex_unlock(&dc_mu);
    return hit;
}

static void canon_put(const char *dir, size_t len, const char *real, uint64_t gen)
{
    size_t rlen = real ? strlen(real) : 0;
    if (!sh.hdr || len >= EPH_PATH_MAX || rlen >= EPH_PATH_MAX)
        return;
    uint64_t now = sh_lru_ns();
    pthread_mutex_lock(&dc_mu);
    struct dc_canon *e = &dcc[dcc_next++ % DC_ENTRIES];
    e->len = len;
    e->gen = gen;
    e->stamp = now;
    memcpy(e->path, dir, len);
    e->path[len] = 0;
    memcpy(e->real, real ? real : "", rlen + 1);
    pthread_mutex_unlock(&dc_mu);
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
struct dc_fdname {
    int fd1;             /* fd + 1, 0 = unused */
    size_t len;
    uint64_t gen;
    uint64_t stamp;
    dev_t dev;
    ino_t ino;
    char path[EPH_PATH_MAX];
};

static struct dc_fdname dcf[DC_ENTRIES];
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
    pthread_mutex_lock(&dc_mu);
    for (int i = 0; i < DC_ENTRIES && !have; i++) {
        struct dc_fdname *e = &dcf[i];
        if (e->fd1 == fd + 1 && e->gen == gen && now - e->stamp < DC_TTL_NS) {
            memcpy(out, e->path, e->len + 1);
            dev = e->dev;
            ino = e->ino;
            have = 1;
        }
    }
    pthread_mutex_unlock(&dc_mu);
    if (have) {
        if (sys.fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == dev && st.st_ino == ino)
            return 0;
    }
    /* As for the stats: the generation read before the readlink keeps a racing change out. */
    if (fd_readlink(fd, out, n) < 0)
        return -1;
    if (sys.fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    size_t len = strlen(out);
    pthread_mutex_lock(&dc_mu);
    struct dc_fdname *e = NULL;
    for (int i = 0; i < DC_ENTRIES && !e; i++)
        if (dcf[i].fd1 == fd + 1)
            e = &dcf[i]; /* one entry per fd */
    if (!e)
        e = &dcf[dcf_next++ % DC_ENTRIES];
    e->fd1 = fd + 1;
    e->len = len;
    e->gen = gen;
    e->stamp = now;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    memcpy(e->path, out, len + 1);
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
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&dc_mu, &fresh, sizeof fresh);
}
