/*
 * iobench - timed I/O loops over files, for `ephemera bench io`.
 *
 * The timed loops live here, in native code, so that the harness's own runtime is never part of a
 * measurement.  One invocation runs one workload and prints one JSON line:
 *
 *   iobench WORKLOAD TARGET... [--ops N] [--size BYTES] [--block BYTES] [--passes N] [--seed N]
 *           [--lap-ops N] [--buf-offset N] [--entries N]
 *   TARGET: --dir DIR | --by-name NAME=DIR | --direct NAME=DIR | --memcpy
 *
 * WORKLOAD is rand-pread, rand-pwrite, rand-read (lseek+read), rand-write (lseek+write),
 * seq-write, seq-read or meta (open+fstat+close of an existing file), or one of the namespace
 * workloads (issue 15), whose operation is: md-create (create, write 4 KiB, close, unlink),
 * md-rename (one file of a set of --entries files: the set is created, then each renamed, then each
 * stat'ed, then each unlinked), md-mkdir (mkdir and rmdir of a subdirectory), md-readdir
 * (opendir, readdir of --entries files, closedir), md-lock (fcntl F_SETLK write lock and unlock
 * of the whole file) or md-ofdlock (the same by F_OFD_SETLK, the open file description's lock).  Each target of a namespace workload works in a directory of its own.
 * pass-pread and pass-meta measure what an interposed library costs on calls it passes through:
 * IB_PAIRS pairs of short laps, one calling open/fstat/close/pread by name (which an LD_PRELOAD
 * library interposes) and one calling libc's own definitions through pointers looked up in
 * libc.so.6 itself (which no preloaded library sees), in ABBA order.  Both halves run the same libc code and system calls in
 * the same process - same address-space layout, same file, same moment - so their ratio is the
 * interposer's cost alone (about 1.00 without one).  Each pair gives one ratio from two laps a
 * millisecond apart, so a burst of someone else's work spoils a pair, not the estimate: the
 * result is the median of the pair ratios (and its quartiles).
 *
 * A target is a file in a directory, reached by name (--dir, --by-name: open/pread/... as the
 * program calls them, so an interposer sees them) or straight into libc (--direct: pointers from
 * libc.so.6, so an interposer in the process costs that target nothing), or --memcpy: the same
 * access pattern as plain memcpy on a malloc'd arena, the physical limit of a copying design.
 *
 * With one target, a loop is timed in IB_BATCHES laps (random and meta: equal slices of the
 * operations; sequential: one lap per pass) and the median lap is reported: a burst of someone
 * else's work spoils one lap, not the run.  With several targets (data and namespace workloads;
 * a namespace lap is --lap-ops operations, md-rename's one set of --entries files) the run is
 * paired: every target gets its own file, and the targets take turns, one lap each per round
 * (--lap-ops random operations, or one sequential pass), in rotating order that reverses every
 * other cycle, so each target runs in each position and after each other target equally often.
 * Every target runs the same offsets in the same round, and a random lap is preceded by an untimed
 * read of the target's whole file (ib_warm), so that it does not measure the cache refill that
 * taking turns causes.  All targets of a round share the moment,
 * so the per-round ratios of their laps compare them without the +-10% that separate processes
 * differ by; the JSON lists each target's laps (ns per operation) in round order.
 *
 * The program's buffer comes from malloc, or with --buf-offset N lies N bytes into a page: where
 * the destination sits relative to the source modulo 4 KiB decides how fast rep movsb copies (a
 * buffer 1-31 bytes past a page-aligned source is 4-5x slower on AMD Zen 3, in memcpy and in the
 * kernel's copy_to_user alike), and malloc puts buffers of 128 KiB or more 16 bytes into a page.
 *
 * Data is checked, so a fast wrong answer cannot pass: block k of the file holds the word
 * (k ^ seed) in its first and last 8 bytes and a fixed filler in between.  Reads check both marker
 * words inside the timed loop (every target pays the same two compares); before and after the
 * timed loops, the whole file is verified untimed (the first check also warms every target up).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IB_OK 0
#define IB_ERR 1

enum ib_workload {
    IB_RAND_PREAD, IB_RAND_PWRITE, IB_RAND_READ, IB_RAND_WRITE, IB_SEQ_WRITE, IB_SEQ_READ, IB_META,
    IB_PASS_PREAD, IB_PASS_META,
    IB_MD_CREATE, IB_MD_RENAME, IB_MD_MKDIR, IB_MD_READDIR, IB_MD_LOCK, IB_MD_OFDLOCK
};

static const char *const ib_names[] = {"rand-pread", "rand-pwrite", "rand-read", "rand-write", "seq-write",
                                       "seq-read",   "meta",        "pass-pread", "pass-meta",
                                       "md-create",  "md-rename",   "md-mkdir",   "md-readdir", "md-lock",
                                       "md-ofdlock"};

/* Bytes md-create writes into each file. */
#define IB_MD_WRITE 4096

struct ib_opts {
    enum ib_workload wl;
    uint64_t ops;         /* random and meta workloads: operations timed (per target) */
    uint64_t size;        /* file (or arena) size in bytes */
    uint64_t block;       /* bytes per read/write */
    uint64_t passes;      /* sequential workloads: whole-file passes timed */
    uint64_t seed;
    uint64_t lap_ops;     /* paired random runs: operations per lap */
    uint64_t buf_offset;  /* the I/O buffer's offset into a page, or IB_MALLOC_BUF */
    uint64_t entries;     /* md-readdir: files listed; md-rename: files per set */
};

#define IB_MALLOC_BUF UINT64_MAX

/* How a target's file is reached: by name (what an interposer sees) or libc's own definitions. */
struct ib_io {
    int (*open)(const char *, int, ...);
    int (*close)(int);
    int (*fstat)(int, struct stat *);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    off_t (*lseek)(int, off_t, int);
    int (*unlink)(const char *);
    int (*rename)(const char *, const char *);
    int (*stat)(const char *, struct stat *);
    int (*mkdir)(const char *, mode_t);
    int (*rmdir)(const char *);
    DIR *(*opendir)(const char *);
    struct dirent *(*readdir)(DIR *);
    int (*closedir)(DIR *);
    int (*fcntl)(int, int, ...);
};

static const struct ib_io ib_by_name = {open,   close, fstat, pread, pwrite,  read,    write,   lseek,   unlink,
                                        rename, stat,  mkdir, rmdir, opendir, readdir, closedir, fcntl};
static struct ib_io ib_libc;

#define IB_MAX_TARGETS 8

struct ib_target {
    const char *name;
    const char *dir;          /* NULL for memcpy */
    const struct ib_io *io;
    int fd;                   /* the file, or -1 for memcpy */
    unsigned char *arena;     /* the memcpy arena, or NULL */
    char path[4096];
    uint64_t *lap_ns;         /* duration of each lap */
    uint64_t *lap_ops;        /* operations in each lap */
    uint64_t laps;
    uint64_t bad;             /* reads that returned wrong marker words */
};

#define IB_BATCHES 10
#define IB_PAIRS 250            /* pass-through: libc/syscall lap pairs */

/* Lap times of a pass-through loop's halves. */
struct ib_clock {
    uint64_t lap_ns[IB_BATCHES];    /* duration of each lap */
    uint64_t lap_ops[IB_BATCHES];   /* operations in each lap */
    int laps;
};

static char ib_errbuf[512];

static int ib_fail(const char *what) {
    snprintf(ib_errbuf, sizeof ib_errbuf, "%s: %s", what, strerror(errno));
    return IB_ERR;
}

static uint64_t ib_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int ib_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and minimum ns per operation over n laps. */
static void ib_lap_summary(const uint64_t *lap_ns, const uint64_t *lap_ops, uint64_t n, double *median, double *min) {
    double *per = malloc((n ? n : 1) * sizeof *per);
    *min = *median = 0;
    if (!per) return;
    for (uint64_t i = 0; i < n; i++) per[i] = (double)lap_ns[i] / (double)(lap_ops[i] ? lap_ops[i] : 1);
    qsort(per, (size_t)n, sizeof per[0], ib_cmp_double);
    if (n) {
        *min = per[0];
        *median = n % 2 ? per[n / 2] : (per[n / 2 - 1] + per[n / 2]) / 2;
    }
    free(per);
}

/* Marker words of block k; the filler between them is 0xA5. */
static void ib_mark(unsigned char *buf, uint64_t block, uint64_t k, uint64_t seed) {
    uint64_t w = k ^ seed;
    memcpy(buf, &w, 8);
    memcpy(buf + block - 8, &w, 8);
}

static int ib_check(const unsigned char *buf, uint64_t block, uint64_t k, uint64_t seed) {
    uint64_t a, b, w = k ^ seed;
    memcpy(&a, buf, 8);
    memcpy(&b, buf + block - 8, 8);
    return a == w && b == w;
}

/* Full-write with retry on short writes; used only outside timed loops. */
static int ib_pwrite_all(int fd, const unsigned char *buf, uint64_t n, uint64_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return ib_fail("pwrite");
        }
        buf += w;
        n -= (uint64_t)w;
        off += (uint64_t)w;
    }
    return IB_OK;
}

static int ib_fill(struct ib_target *t, const struct ib_opts *o, unsigned char *buf) {
    uint64_t nblocks = o->size / o->block;
    for (uint64_t k = 0; k < nblocks; k++) {
        ib_mark(buf, o->block, k, o->seed);
        if (t->arena) memcpy(t->arena + k * o->block, buf, o->block);
        else if (ib_pwrite_all(t->fd, buf, o->block, k * o->block) != IB_OK) return IB_ERR;
    }
    return IB_OK;
}

static int ib_verify(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, unsigned char *filler) {
    uint64_t nblocks = o->size / o->block;
    if (t->bad) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "%s: %" PRIu64 " timed reads returned wrong data", t->name, t->bad);
        return IB_ERR;
    }
    for (uint64_t k = 0; k < nblocks; k++) {
        const unsigned char *p = buf;
        if (t->arena) {
            p = t->arena + k * o->block;
        } else {
            ssize_t r = pread(t->fd, buf, o->block, (off_t)(k * o->block));
            if (r < 0) return ib_fail("pread (verify)");
            if ((uint64_t)r != o->block) {
                snprintf(ib_errbuf, sizeof ib_errbuf, "%s: verify: short read of block %" PRIu64 " (%zd bytes)", t->name, k, r);
                return IB_ERR;
            }
        }
        if (!ib_check(p, o->block, k, o->seed) || memcmp(p + 8, filler, o->block - 16) != 0) {
            snprintf(ib_errbuf, sizeof ib_errbuf, "%s: verify: block %" PRIu64 " holds wrong data", t->name, k);
            return IB_ERR;
        }
    }
    return IB_OK;
}

/* xorshift64*: cheap, and the offsets are drawn before timing anyway. */
static uint64_t ib_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void ib_lap_record(struct ib_target *t, uint64_t ns, uint64_t ops) {
    t->lap_ns[t->laps] = ns;
    t->lap_ops[t->laps++] = ops;
}

/*
 * Before a paired random lap, the target reads its whole file once, untimed: the targets' data
 * (32 MiB each) cannot share the last-level cache, so without this every lap would start with
 * the previous target's data in the caches (and its page-table entries in the TLB's backing
 * caches) and measure a refill that a process running alone does not pay.  After the sweep, the
 * lap runs with as much of its own data cached as it can have, as it would alone.
 */
static int ib_warm(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, uint64_t *sum) {
    uint64_t nblocks = o->size / o->block;
    for (uint64_t k = 0; k < nblocks; k++) {
        if (t->arena) {
            memcpy(buf, t->arena + k * o->block, o->block);
        } else if (t->io->pread(t->fd, buf, o->block, (off_t)(k * o->block)) != (ssize_t)o->block) {
            return ib_fail("pread (warm-up)");
        }
        *sum += buf[8];
    }
    return IB_OK;
}

/*
 * One timed lap of a data workload on one target: random operations ks[from, to), or (ks NULL)
 * one sequential pass over blocks [from, to), which a write pass begins with open(O_TRUNC) and a
 * read pass with lseek to 0.
 */
static int ib_lap(struct ib_target *t, const struct ib_opts *o, const uint64_t *ks, uint64_t from, uint64_t to,
                  unsigned char *buf, uint64_t *sum) {
    const struct ib_io *io = t->io;
    int writing = o->wl == IB_RAND_PWRITE || o->wl == IB_RAND_WRITE || o->wl == IB_SEQ_WRITE;
    int positioned = o->wl == IB_RAND_PREAD || o->wl == IB_RAND_PWRITE;
    uint64_t bad = 0, t0 = ib_now_ns();

    if (!ks && !t->arena) {
        if (writing) {
            if (io->close(t->fd) < 0) return ib_fail("close");
            t->fd = io->open(t->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
            if (t->fd < 0) return ib_fail("open O_TRUNC");
        } else if (io->lseek(t->fd, 0, SEEK_SET) < 0) {
            return ib_fail("lseek");
        }
    }
    for (uint64_t i = from; i < to; i++) {
        uint64_t k = ks ? ks[i] : i, off = k * o->block;
        ssize_t n;
        if (writing) ib_mark(buf, o->block, k, o->seed);
        if (t->arena) {
            if (writing) memcpy(t->arena + off, buf, o->block);
            else memcpy(buf, t->arena + off, o->block);
            n = (ssize_t)o->block;
        } else if (positioned) {
            n = writing ? io->pwrite(t->fd, buf, o->block, (off_t)off) : io->pread(t->fd, buf, o->block, (off_t)off);
        } else {
            if (ks && io->lseek(t->fd, (off_t)off, SEEK_SET) < 0) return ib_fail("lseek");
            n = writing ? io->write(t->fd, buf, o->block) : io->read(t->fd, buf, o->block);
        }
        if (n != (ssize_t)o->block) return ib_fail(writing ? "write" : "read");
        if (!writing) bad += !ib_check(buf, o->block, k, o->seed);
        *sum += buf[8];
    }
    ib_lap_record(t, ib_now_ns() - t0, to - from);
    t->bad += bad;
    return IB_OK;
}

/* Which target takes turn j of round r: from r mod n onwards, backwards in every other cycle of n rounds. */
static int ib_turn(uint64_t r, int j, int nt) {
    int backwards = (r / (uint64_t)nt) % 2;
    return (int)((r + (uint64_t)(backwards ? nt - j : j)) % (uint64_t)nt);
}

/*
 * The data workloads: rounds of one lap per target.  With one target, IB_BATCHES laps.  With
 * several, round r runs them from target r mod n onwards, forwards in even cycles of n rounds and
 * backwards in odd ones.
 */
static int ib_data(struct ib_target *ts, int nt, const struct ib_opts *o, unsigned char *buf, uint64_t *sum,
                   uint64_t *rounds_out, uint64_t *lap_ops_out) {
    int random = o->wl <= IB_RAND_WRITE;
    uint64_t nblocks = o->size / o->block, state = o->seed * 2 + 1;
    uint64_t lap_ops = !random ? nblocks : nt > 1 ? o->lap_ops : o->ops / IB_BATCHES;
    if (lap_ops == 0) lap_ops = 1;
    uint64_t rounds = !random ? o->passes : (o->ops + lap_ops - 1) / lap_ops;
    uint64_t *ks = NULL;
    int rc = IB_ERR;

    if (random) {
        ks = malloc(o->ops * sizeof *ks);
        if (!ks) return ib_fail("malloc");
        for (uint64_t i = 0; i < o->ops; i++) ks[i] = ib_rand(&state) % nblocks;
    }
    for (int j = 0; j < nt; j++) {
        ts[j].lap_ns = calloc(rounds ? rounds : 1, sizeof *ts[j].lap_ns);
        ts[j].lap_ops = calloc(rounds ? rounds : 1, sizeof *ts[j].lap_ops);
        if (!ts[j].lap_ns || !ts[j].lap_ops) { ib_fail("calloc"); goto err; }
    }
    for (uint64_t r = 0; r < rounds; r++) {
        uint64_t from = random ? r * lap_ops : 0;
        uint64_t to = random ? (from + lap_ops < o->ops ? from + lap_ops : o->ops) : nblocks;
        for (int j = 0; j < nt; j++) {
            int idx = ib_turn(r, j, nt);
            if (nt > 1 && random && ib_warm(&ts[idx], o, buf, sum) != IB_OK) goto err;
            if (ib_lap(&ts[idx], o, ks, from, to, buf, sum) != IB_OK) goto err;
        }
    }
    *rounds_out = rounds;
    *lap_ops_out = lap_ops;
    rc = IB_OK;
err:
    free(ks);
    return rc;
}

/* PATH = DIR/NAME<i>; the namespace laps build their names with it (every target pays the same). */
static void ib_name(char *path, size_t len, const char *dir, const char *name, uint64_t i) {
    snprintf(path, len, "%s/%s%" PRIu64, dir, name, i);
}

/*
 * A namespace workload's directory for target t (t->path, made through the target's own calls, so
 * the ephemera target's files are created by the shim as a program's would be): md-readdir fills it
 * with o->entries empty files, md-lock opens one file in it.
 */
static int ib_md_setup(struct ib_target *t, const struct ib_opts *o) {
    char p[4200];
    if (t->io->mkdir(t->path, 0755) < 0) return ib_fail("mkdir (set-up)");
    if (o->wl == IB_MD_READDIR) {
        for (uint64_t i = 0; i < o->entries; i++) {
            ib_name(p, sizeof p, t->path, "e", i);
            int fd = t->io->open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0 || t->io->close(fd) < 0) return ib_fail("create (set-up)");
        }
    } else if (o->wl == IB_MD_LOCK || o->wl == IB_MD_OFDLOCK) {
        ib_name(p, sizeof p, t->path, "lock", 0);
        t->fd = t->io->open(p, O_RDWR | O_CREAT | O_EXCL, 0644);
        if (t->fd < 0) return ib_fail("create (set-up)");
        if (t->io->write(t->fd, "lock", 4) != 4) return ib_fail("write (set-up)");
    }
    return IB_OK;
}

/* Remove what ib_md_setup made (best effort: called on the way out, also after a failure). */
static void ib_md_teardown(struct ib_target *t, const struct ib_opts *o) {
    char p[4200];
    if (t->fd >= 0) t->io->close(t->fd);
    t->fd = -1;
    if (o->wl == IB_MD_READDIR)
        for (uint64_t i = 0; i < o->entries; i++) {
            ib_name(p, sizeof p, t->path, "e", i);
            t->io->unlink(p);
        }
    if (o->wl == IB_MD_LOCK || o->wl == IB_MD_OFDLOCK) {
        ib_name(p, sizeof p, t->path, "lock", 0);
        t->io->unlink(p);
    }
    t->io->rmdir(t->path);
}

/* One timed lap of a namespace workload: n operations on target t. */
static int ib_md_lap(struct ib_target *t, const struct ib_opts *o, uint64_t n, uint64_t *sum) {
    static const unsigned char buf[IB_MD_WRITE] = {0xA5};
    const struct ib_io *io = t->io;
    char a[4200], b[4200];
    struct stat st;
    uint64_t t0 = ib_now_ns();
    switch (o->wl) {
    case IB_MD_CREATE:
        for (uint64_t i = 0; i < n; i++) {
            ib_name(a, sizeof a, t->path, "c", i);
            int fd = io->open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) return ib_fail("open O_CREAT");
            if (io->write(fd, buf, IB_MD_WRITE) != IB_MD_WRITE) return ib_fail("write");
            if (io->close(fd) < 0) return ib_fail("close");
            if (io->unlink(a) < 0) return ib_fail("unlink");
        }
        break;
    case IB_MD_RENAME:
        for (uint64_t i = 0; i < n; i++) {
            ib_name(a, sizeof a, t->path, "f", i);
            int fd = io->open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (fd < 0) return ib_fail("open O_CREAT|O_EXCL");
            if (io->close(fd) < 0) return ib_fail("close");
        }
        for (uint64_t i = 0; i < n; i++) {
            ib_name(a, sizeof a, t->path, "f", i);
            ib_name(b, sizeof b, t->path, "r", i);
            if (io->rename(a, b) < 0) return ib_fail("rename");
        }
        for (uint64_t i = 0; i < n; i++) {
            ib_name(b, sizeof b, t->path, "r", i);
            if (io->stat(b, &st) < 0) return ib_fail("stat");
            *sum += (uint64_t)st.st_size + 1;
        }
        for (uint64_t i = 0; i < n; i++) {
            ib_name(b, sizeof b, t->path, "r", i);
            if (io->unlink(b) < 0) return ib_fail("unlink");
        }
        break;
    case IB_MD_MKDIR:
        for (uint64_t i = 0; i < n; i++) {
            ib_name(a, sizeof a, t->path, "d", i);
            if (io->mkdir(a, 0755) < 0) return ib_fail("mkdir");
            if (io->rmdir(a) < 0) return ib_fail("rmdir");
        }
        break;
    case IB_MD_READDIR:
        for (uint64_t i = 0; i < n; i++) {
            DIR *d = io->opendir(t->path);
            uint64_t count = 0;
            if (!d) return ib_fail("opendir");
            errno = 0;
            while (io->readdir(d)) count++;
            if (errno) return ib_fail("readdir");
            if (io->closedir(d) < 0) return ib_fail("closedir");
            if (count != o->entries + 2) { /* "." and ".." */
                snprintf(ib_errbuf, sizeof ib_errbuf, "%s: readdir listed %" PRIu64 " entries, expected %" PRIu64, t->name, count, o->entries + 2);
                return IB_ERR;
            }
            *sum += count;
        }
        break;
    case IB_MD_LOCK:
        for (uint64_t i = 0; i < n; i++) {
            struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
            if (io->fcntl(t->fd, F_SETLK, &lk) < 0) return ib_fail("fcntl F_SETLK F_WRLCK");
            lk.l_type = F_UNLCK;
            if (io->fcntl(t->fd, F_SETLK, &lk) < 0) return ib_fail("fcntl F_SETLK F_UNLCK");
        }
        break;
    case IB_MD_OFDLOCK:
        for (uint64_t i = 0; i < n; i++) {
            struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0, .l_pid = 0};
            if (io->fcntl(t->fd, F_OFD_SETLK, &lk) < 0) return ib_fail("fcntl F_OFD_SETLK F_WRLCK");
            lk.l_type = F_UNLCK;
            if (io->fcntl(t->fd, F_OFD_SETLK, &lk) < 0) return ib_fail("fcntl F_OFD_SETLK F_UNLCK");
        }
        break;
    default:
        snprintf(ib_errbuf, sizeof ib_errbuf, "%s is not a namespace workload", ib_names[o->wl]);
        return IB_ERR;
    }
    ib_lap_record(t, ib_now_ns() - t0, n);
    return IB_OK;
}

/*
 * The namespace workloads: rounds of one lap per target, in the data workloads' rotating order.
 * A lap is --lap-ops operations, md-rename's one set of --entries files.
 */
static int ib_md(struct ib_target *ts, int nt, const struct ib_opts *o, uint64_t *sum,
                 uint64_t *rounds_out, uint64_t *lap_ops_out) {
    uint64_t lap_ops = o->wl == IB_MD_RENAME ? o->entries : nt > 1 ? o->lap_ops : o->ops / IB_BATCHES;
    if (lap_ops == 0) lap_ops = 1;
    uint64_t rounds = (o->ops + lap_ops - 1) / lap_ops;
    for (int j = 0; j < nt; j++) {
        ts[j].lap_ns = calloc(rounds ? rounds : 1, sizeof *ts[j].lap_ns);
        ts[j].lap_ops = calloc(rounds ? rounds : 1, sizeof *ts[j].lap_ops);
        if (!ts[j].lap_ns || !ts[j].lap_ops) return ib_fail("calloc");
    }
    for (uint64_t r = 0; r < rounds; r++)
        for (int j = 0; j < nt; j++)
            if (ib_md_lap(&ts[ib_turn(r, j, nt)], o, lap_ops, sum) != IB_OK) return IB_ERR;
    *rounds_out = rounds;
    *lap_ops_out = lap_ops;
    return IB_OK;
}

static int ib_meta(struct ib_target *t, const struct ib_opts *o, uint64_t *sum) {
    struct stat st = {0};
    uint64_t per = o->ops / IB_BATCHES ? o->ops / IB_BATCHES : 1, t0 = ib_now_ns(), first = 0;
    t->lap_ns = calloc(IB_BATCHES + 1, sizeof *t->lap_ns);
    t->lap_ops = calloc(IB_BATCHES + 1, sizeof *t->lap_ops);
    if (!t->lap_ns || !t->lap_ops) return ib_fail("calloc");
    for (uint64_t i = 0; i < o->ops; i++) {
        int fd = open(t->path, O_RDONLY);
        if (fd < 0) return ib_fail("open");
        if (fstat(fd, &st) < 0) return ib_fail("fstat");
        if (close(fd) < 0) return ib_fail("close");
        *sum += (uint64_t)st.st_size;
        if ((i + 1) % per == 0 && t->laps < IB_BATCHES) {
            uint64_t now = ib_now_ns();
            ib_lap_record(t, now - t0, i + 1 - first);
            t0 = now;
            first = i + 1;
        }
    }
    if ((uint64_t)st.st_size != o->size) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "fstat reports size %jd, expected %" PRIu64, (intmax_t)st.st_size, o->size);
        return IB_ERR;
    }
    return IB_OK;
}

/* libc's own definitions, looked up in libc.so.6 so that an interposer is bypassed. */
static int ib_libc_resolve(void) {
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "dlopen libc.so.6: %s", dlerror());
        return IB_ERR;
    }
    static const struct { void **slot; const char *name; } syms[] = {
        {(void **)&ib_libc.open, "open"},         {(void **)&ib_libc.close, "close"},
        {(void **)&ib_libc.fstat, "fstat"},       {(void **)&ib_libc.pread, "pread"},
        {(void **)&ib_libc.pwrite, "pwrite"},     {(void **)&ib_libc.read, "read"},
        {(void **)&ib_libc.write, "write"},       {(void **)&ib_libc.lseek, "lseek"},
        {(void **)&ib_libc.unlink, "unlink"},     {(void **)&ib_libc.rename, "rename"},
        {(void **)&ib_libc.stat, "stat"},         {(void **)&ib_libc.mkdir, "mkdir"},
        {(void **)&ib_libc.rmdir, "rmdir"},       {(void **)&ib_libc.opendir, "opendir"},
        {(void **)&ib_libc.readdir, "readdir"},   {(void **)&ib_libc.closedir, "closedir"},
        {(void **)&ib_libc.fcntl, "fcntl"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(ib_errbuf, sizeof ib_errbuf, "libc.so.6 lacks %s: %s", syms[i].name, dlerror());
            return IB_ERR;
        }
    }
    return IB_OK;
}

/* One op of a pass-through loop: by name (direct = 0, what an interposer sees) or straight into libc. */
static int ib_pass_op(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, uint64_t k, int direct, uint64_t *sum) {
    const struct ib_io *io = direct ? &ib_libc : &ib_by_name;
    if (o->wl == IB_PASS_PREAD) {
        off_t off = (off_t)(k * o->block);
        ssize_t n = io->pread(t->fd, buf, o->block, off);
        if (n != (ssize_t)o->block) return ib_fail("pread");
        if (!ib_check(buf, o->block, k, o->seed)) {
            snprintf(ib_errbuf, sizeof ib_errbuf, "pread of block %" PRIu64 " returned wrong data", k);
            return IB_ERR;
        }
        *sum += buf[8];
        return IB_OK;
    }
    struct stat st;
    int fd = io->open(t->path, O_RDONLY);
    if (fd < 0) return ib_fail("open");
    if (io->fstat(fd, &st) < 0) return ib_fail("fstat");
    if (io->close(fd) < 0) return ib_fail("close");
    *sum += (uint64_t)st.st_size;
    return IB_OK;
}

/* Pass-through result: the quartiles of the per-pair by-name/direct ratios, and the by-name laps' total. */
struct ib_pass_result {
    double q1, median, q3;
    uint64_t lib_ns, lib_ops;
};

static int ib_pass(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, struct ib_clock *lib,
                   struct ib_clock *direct, struct ib_pass_result *res, uint64_t *sum) {
    uint64_t nblocks = o->size / o->block, state = o->seed * 2 + 1;
    uint64_t per_lap = o->ops / (2 * IB_PAIRS) ? o->ops / (2 * IB_PAIRS) : 1;
    static double ratio[IB_PAIRS];
    lib->laps = direct->laps = 0;
    res->lib_ns = res->lib_ops = 0;
    for (int pair = 0; pair < IB_PAIRS; pair++) {
        uint64_t ns[2];
        for (int half = 0; half < 2; half++) {
            /* ABBA: which half goes first alternates, so a trend in the machine's speed cancels */
            int is_direct = half ^ (pair & 1);
            uint64_t t0 = ib_now_ns();
            for (uint64_t i = 0; i < per_lap; i++) {
                if (ib_pass_op(t, o, buf, ib_rand(&state) % nblocks, is_direct, sum) != IB_OK) return IB_ERR;
            }
            ns[is_direct] = ib_now_ns() - t0;
        }
        ratio[pair] = (double)ns[0] / (double)(ns[1] ? ns[1] : 1);
        res->lib_ns += ns[0];
        res->lib_ops += per_lap;
        /* the lap clocks keep IB_BATCHES laps each, for the per-op columns */
        if ((pair + 1) % (IB_PAIRS / IB_BATCHES) == 0) {
            lib->lap_ns[lib->laps] = ns[0];
            lib->lap_ops[lib->laps++] = per_lap;
            direct->lap_ns[direct->laps] = ns[1];
            direct->lap_ops[direct->laps++] = per_lap;
        }
    }
    qsort(ratio, IB_PAIRS, sizeof ratio[0], ib_cmp_double);
    res->q1 = ratio[IB_PAIRS / 4];
    res->median = (ratio[(IB_PAIRS - 1) / 2] + ratio[IB_PAIRS / 2]) / 2;
    res->q3 = ratio[(3 * IB_PAIRS) / 4];
    return IB_OK;
}

static int ib_parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return IB_ERR;
    *out = v;
    return IB_OK;
}

static int ib_usage(const char *why) {
    fprintf(stderr,
            "iobench: %s\n"
            "usage: iobench WORKLOAD TARGET... [--ops N] [--size BYTES] [--block BYTES] [--passes N] [--seed N] [--lap-ops N]\n"
            "       [--buf-offset N] [--entries N]\n"
            "TARGET: --dir DIR | --by-name NAME=DIR | --direct NAME=DIR | --memcpy (several targets: data and md-* workloads)\n"
            "WORKLOAD: rand-pread rand-pwrite rand-read rand-write seq-write seq-read meta pass-pread pass-meta\n"
            "          md-create md-rename md-mkdir md-readdir md-lock (--entries N: files listed / per rename set)\n",
            why);
    return 2;
}

/* NAME=DIR of --by-name/--direct; NAME must be non-empty and safe to print in JSON. */
static int ib_parse_target(char *arg, struct ib_target *t) {
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return IB_ERR;
    *eq = 0;
    for (const char *c = arg; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) return IB_ERR;
    t->name = arg;
    t->dir = eq + 1;
    return IB_OK;
}

/* Print a JSON string of a path: escapes for '"', '\\' and control bytes. */
static void ib_json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned char)*s);
        else putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    struct ib_opts o = {.wl = IB_RAND_PREAD, .ops = 500000, .size = 32u << 20, .block = 8192, .passes = 4, .seed = 42,
                        .lap_ops = 5000, .buf_offset = IB_MALLOC_BUF, .entries = 1000};
    struct ib_target ts[IB_MAX_TARGETS];
    unsigned char *buf = NULL, *buf_alloc = NULL, *filler = NULL;
    int nt = 0, found = 0, rc = 1, need_libc = 0;
    struct ib_clock lib = {0}, direct = {0};
    uint64_t sum = 0, rounds = 0, lap_ops = 0;
    struct ib_pass_result pass = {0};

    memset(ts, 0, sizeof ts);
    for (int j = 0; j < IB_MAX_TARGETS; j++) ts[j].fd = -1;
    if (argc < 2) return ib_usage("no workload given");
    for (size_t i = 0; i < sizeof ib_names / sizeof ib_names[0]; i++) {
        if (strcmp(argv[1], ib_names[i]) == 0) {
            o.wl = (enum ib_workload)i;
            found = 1;
        }
    }
    if (!found) return ib_usage("unknown workload");
    for (int i = 2; i < argc; i++) {
        uint64_t *num = NULL;
        const char *a = argv[i];
        int is_target = !strcmp(a, "--memcpy") || !strcmp(a, "--dir") || !strcmp(a, "--by-name") || !strcmp(a, "--direct");
        if (is_target && nt == IB_MAX_TARGETS) return ib_usage("too many targets");
        if (!strcmp(a, "--memcpy")) {
            ts[nt].name = "memcpy";
            ts[nt++].io = &ib_by_name;
            continue;
        }
        if (i + 1 >= argc) return ib_usage("flag without a value");
        if (!strcmp(a, "--dir")) {
            ts[nt].name = ts[nt].dir = argv[++i];
            ts[nt++].io = &ib_by_name;
            continue;
        }
        if (!strcmp(a, "--by-name") || !strcmp(a, "--direct")) {
            if (ib_parse_target(argv[++i], &ts[nt]) != IB_OK) return ib_usage("a target needs NAME=DIR (NAME without quotes or backslashes)");
            need_libc |= a[2] == 'd';
            ts[nt++].io = a[2] == 'd' ? &ib_libc : &ib_by_name;
            continue;
        }
        if (strcmp(a, "--ops") == 0) num = &o.ops;
        else if (strcmp(a, "--size") == 0) num = &o.size;
        else if (strcmp(a, "--block") == 0) num = &o.block;
        else if (strcmp(a, "--passes") == 0) num = &o.passes;
        else if (strcmp(a, "--seed") == 0) num = &o.seed;
        else if (strcmp(a, "--lap-ops") == 0) num = &o.lap_ops;
        else if (strcmp(a, "--buf-offset") == 0) num = &o.buf_offset;
        else if (strcmp(a, "--entries") == 0) num = &o.entries;
        else return ib_usage("unknown flag");
        if (ib_parse_u64(argv[++i], num) != IB_OK) return ib_usage("a number flag needs a non-negative integer");
    }
    int data = o.wl <= IB_SEQ_READ, md = o.wl >= IB_MD_CREATE;
    if (nt == 0) return ib_usage("give a target: --dir DIR, --by-name NAME=DIR, --direct NAME=DIR or --memcpy");
    if (nt > 1 && !data && !md) return ib_usage("meta and pass-* take exactly one target");
    if (!data && !md && !ts[0].dir) return ib_usage("meta and pass-* have no memcpy form");
    if (!data && !md && ts[0].io != &ib_by_name) return ib_usage("meta and pass-* call by name: use --dir");
    for (int j = 0; j < nt; j++)
        if (md && !ts[j].dir) return ib_usage("namespace workloads (md-*) have no memcpy form");
    if (md && (o.ops == 0 || (o.wl == IB_MD_RENAME && o.entries == 0)))
        return ib_usage("namespace workloads need --ops > 0 (and md-rename --entries > 0)");
    for (int j = 0; j < nt; j++)
        for (int k = 0; k < j; k++)
            if (!strcmp(ts[j].name, ts[k].name)) return ib_usage("two targets share a name");
    if (o.block < 16 || o.size < o.block || o.size % o.block) return ib_usage("--block must be >= 16 and divide --size");
    if (o.wl <= IB_RAND_WRITE && o.ops == 0) return ib_usage("--ops must be positive");
    if (o.buf_offset != IB_MALLOC_BUF && o.buf_offset >= 4096) return ib_usage("--buf-offset must be below 4096");
    if ((need_libc || o.wl == IB_PASS_PREAD || o.wl == IB_PASS_META) && ib_libc_resolve() != IB_OK) goto err;

    if (o.buf_offset == IB_MALLOC_BUF) {
        buf = buf_alloc = malloc(o.block);
    } else {
        buf_alloc = aligned_alloc(4096, (o.block + o.buf_offset + 4095) / 4096 * 4096);
        buf = buf_alloc ? buf_alloc + o.buf_offset : NULL;
    }
    filler = malloc(o.block);
    if (!buf || !filler) { ib_fail("malloc"); goto err; }
    memset(buf, 0xA5, o.block);
    memset(filler, 0xA5, o.block);

    for (int j = 0; j < nt && md; j++) {
        snprintf(ts[j].path, sizeof ts[j].path, "%s/iobench-%d-%d.d", ts[j].dir, (int)getpid(), j);
        if (ib_md_setup(&ts[j], &o) != IB_OK) goto err;
    }
    for (int j = 0; j < nt && !md; j++) {
        struct ib_target *t = &ts[j];
        if (!t->dir) {
            t->arena = malloc(o.size);
            if (!t->arena) { ib_fail("malloc arena"); goto err; }
        } else {
            snprintf(t->path, sizeof t->path, "%s/iobench-%d-%d.dat", t->dir, (int)getpid(), j);
            t->fd = t->io->open(t->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
            if (t->fd < 0) { ib_fail("open"); goto err; }
        }
        /* Sequential writes create the file themselves; everything else needs it filled first.
         * The untimed check after the fill also warms up: every target starts the timed rounds
         * with its pages in place (an in-memory file's mapping populated, as the program's own
         * earlier reads would have left it), so the first round does not carry page faults. */
        if ((o.wl != IB_SEQ_WRITE || t->arena) &&
            (ib_fill(t, &o, buf) != IB_OK || ib_verify(t, &o, buf, filler) != IB_OK))
            goto err;
    }

    uint64_t ops;
    switch (o.wl) {
    case IB_RAND_PREAD: case IB_RAND_PWRITE: case IB_RAND_READ: case IB_RAND_WRITE: case IB_SEQ_WRITE: case IB_SEQ_READ:
        if (ib_data(ts, nt, &o, buf, &sum, &rounds, &lap_ops) != IB_OK) goto err;
        ops = data && o.wl >= IB_SEQ_WRITE ? o.passes * (o.size / o.block) : o.ops;
        break;
    case IB_META:
        if (close(ts[0].fd) < 0) { ib_fail("close"); goto err; }
        ts[0].fd = -1;
        if (ib_meta(&ts[0], &o, &sum) != IB_OK) goto err;
        ops = o.ops;
        ts[0].fd = open(ts[0].path, O_RDONLY);
        if (ts[0].fd < 0) { ib_fail("reopen"); goto err; }
        break;
    case IB_PASS_PREAD: case IB_PASS_META:
        if (ib_pass(&ts[0], &o, buf, &lib, &direct, &pass, &sum) != IB_OK) goto err;
        ops = pass.lib_ops;
        break;
    case IB_MD_CREATE: case IB_MD_RENAME: case IB_MD_MKDIR: case IB_MD_READDIR: case IB_MD_LOCK: case IB_MD_OFDLOCK:
        if (ib_md(ts, nt, &o, &sum, &rounds, &lap_ops) != IB_OK) goto err;
        ops = rounds * lap_ops;
        break;
    default:
        goto err;
    }
    for (int j = 0; j < nt && !md; j++)
        if (ib_verify(&ts[j], &o, buf, filler) != IB_OK) goto err;

    if (nt > 1) {
        /* paired: every target's laps in round order, ns per operation */
        printf("{\"workload\":\"%s\",\"paired\":true,\"ops\":%" PRIu64 ",\"block\":%" PRIu64 ",\"size\":%" PRIu64
               ",\"rounds\":%" PRIu64 ",\"lap_ops\":%" PRIu64 ",\"laps\":{",
               ib_names[o.wl], ops, o.block, o.size, rounds, lap_ops);
        for (int j = 0; j < nt; j++) {
            printf("%s", j ? "," : "");
            ib_json_str(ts[j].name);
            printf(":[");
            for (uint64_t l = 0; l < ts[j].laps; l++)
                printf("%s%.3f", l ? "," : "", (double)ts[j].lap_ns[l] / (double)(ts[j].lap_ops[l] ? ts[j].lap_ops[l] : 1));
            putchar(']');
        }
        printf("},\"checksum\":%" PRIu64 "}\n", sum);
    } else {
        double lap_median, lap_min, direct_median = 0, direct_min = 0;
        uint64_t ns = 0;
        if (o.wl == IB_PASS_PREAD || o.wl == IB_PASS_META) {
            ib_lap_summary(lib.lap_ns, lib.lap_ops, (uint64_t)lib.laps, &lap_median, &lap_min);
            ib_lap_summary(direct.lap_ns, direct.lap_ops, (uint64_t)direct.laps, &direct_median, &direct_min);
            ns = pass.lib_ns; /* only the by-name half is the measured loop */
        } else {
            ib_lap_summary(ts[0].lap_ns, ts[0].lap_ops, ts[0].laps, &lap_median, &lap_min);
            for (uint64_t l = 0; l < ts[0].laps; l++) ns += ts[0].lap_ns[l];
        }
        printf("{\"workload\":\"%s\",\"target\":", ib_names[o.wl]);
        ib_json_str(ts[0].name);
        printf(",\"ops\":%" PRIu64 ",\"block\":%" PRIu64 ",\"size\":%" PRIu64
               ",\"ns\":%" PRIu64 ",\"ns_per_op\":%.3f,\"laps\":%d,\"lap_median_ns_per_op\":%.3f,\"lap_min_ns_per_op\":%.3f"
               ",\"direct_lap_median_ns_per_op\":%.3f,\"direct_lap_min_ns_per_op\":%.3f"
               ",\"pairs\":%d,\"pair_ratio_q1\":%.5f,\"pair_ratio_median\":%.5f,\"pair_ratio_q3\":%.5f,\"checksum\":%" PRIu64 "}\n",
               ops, o.block, o.size, ns, (double)ns / (double)(ops ? ops : 1), (int)(o.wl >= IB_PASS_PREAD ? lib.laps : (int)ts[0].laps),
               lap_median, lap_min, direct_median, direct_min, pass.median > 0 ? IB_PAIRS : 0, pass.q1, pass.median, pass.q3, sum);
    }
    rc = 0;
err:
    if (rc) fprintf(stderr, "iobench %s: %s\n", ib_names[o.wl], ib_errbuf);
    for (int j = 0; j < nt; j++) {
        if (md && ts[j].path[0]) ib_md_teardown(&ts[j], &o);
        if (ts[j].fd >= 0) close(ts[j].fd);
        if (ts[j].path[0] && !md) unlink(ts[j].path);
        free(ts[j].arena);
        free(ts[j].lap_ns);
        free(ts[j].lap_ops);
    }
    free(buf_alloc);
    free(filler);
    return rc;
}
