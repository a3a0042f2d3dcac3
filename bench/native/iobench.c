/*
 * iobench - one timed I/O loop over one file, for `ephemera bench io`.
 *
 * The timed loops live here, in native code, so that the harness's own runtime is never part of a
 * measurement.  One invocation runs one workload on one target and prints one JSON line:
 *
 *   iobench WORKLOAD (--dir DIR | --memcpy) [--ops N] [--size BYTES] [--block BYTES]
 *           [--passes N] [--seed N]
 *
 * WORKLOAD is rand-pread, rand-pwrite, rand-read (lseek+read), rand-write (lseek+write),
 * seq-write, seq-read or meta (open+fstat+close of an existing file).  pass-pread and pass-meta
 * measure what an interposed library costs on calls it passes through: IB_PAIRS pairs of short
 * laps, one calling open/fstat/close/pread by name (which an LD_PRELOAD library interposes) and
 * one calling libc's own definitions through pointers looked up in libc.so.6 itself (which no
 * preloaded library sees), in ABBA order.  Both halves run the same libc code and system calls in
 * the same process - same address-space layout, same file, same moment - so their ratio is the
 * interposer's cost alone (about 1.00 without one).  Each pair gives one ratio from two laps a
 * millisecond apart, so a burst of someone else's work spoils a pair, not the estimate: the
 * result is the median of the pair ratios (and its quartiles).  --memcpy runs the same access pattern as plain memcpy on a malloc'd arena: the
 * physical limit for the data workloads.
 *
 * Each loop is timed as a whole and in up to IB_BATCHES laps (random and meta: equal slices of
 * the operations; sequential: one lap per pass).  On a shared machine the median lap is a steadier
 * estimate than the total, because a burst of someone else's work spoils one lap, not the run.
 *
 * Data is checked, so a fast wrong answer cannot pass: block k of the file holds the word
 * (k ^ seed) in its first and last 8 bytes and a fixed filler in between.  Reads check both marker
 * words inside the timed loop (every contender pays the same two compares); after the loop, the
 * whole file is verified untimed.
 */
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
    IB_PASS_PREAD, IB_PASS_META
};

static const char *const ib_names[] = {"rand-pread", "rand-pwrite", "rand-read", "rand-write", "seq-write",
                                       "seq-read",   "meta",        "pass-pread", "pass-meta"};

struct ib_opts {
    enum ib_workload wl;
    const char *dir;      /* target directory, or NULL with --memcpy */
    uint64_t ops;         /* random and meta workloads: operations timed */
    uint64_t size;        /* file (or arena) size in bytes */
    uint64_t block;       /* bytes per read/write */
    uint64_t passes;      /* sequential workloads: whole-file passes timed */
    uint64_t seed;
};

struct ib_target {
    int fd;               /* the file, or -1 for memcpy */
    unsigned char *arena; /* the memcpy arena, or NULL */
    char path[4096];
};

#define IB_BATCHES 10
#define IB_PAIRS 250            /* pass-through: libc/syscall lap pairs */

/* Lap times of one timed loop. */
struct ib_clock {
    uint64_t start;                 /* when the loop began */
    uint64_t last;                  /* end of the previous lap */
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

static void ib_clock_start(struct ib_clock *c) {
    c->laps = 0;
    c->start = c->last = ib_now_ns();
}

static void ib_clock_lap(struct ib_clock *c, uint64_t ops) {
    uint64_t now = ib_now_ns();
    if (c->laps < IB_BATCHES) {
        c->lap_ns[c->laps] = now - c->last;
        c->lap_ops[c->laps] = ops;
        c->laps++;
    }
    c->last = now;
}

/* Is lap i (operation index i, 0-based) the last of its slice of n operations? */
static int ib_lap_due(uint64_t i, uint64_t n) {
    uint64_t per = n / IB_BATCHES ? n / IB_BATCHES : 1;
    return (i + 1) % per == 0 && (i + 1) / per <= IB_BATCHES;
}

static int ib_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and minimum ns per operation over the laps. */
static void ib_clock_summary(const struct ib_clock *c, double *median, double *min) {
    double per[IB_BATCHES];
    int n = c->laps;
    for (int i = 0; i < n; i++) per[i] = (double)c->lap_ns[i] / (double)(c->lap_ops[i] ? c->lap_ops[i] : 1);
    qsort(per, (size_t)n, sizeof per[0], ib_cmp_double);
    *min = n ? per[0] : 0;
    *median = n == 0 ? 0 : n % 2 ? per[n / 2] : (per[n / 2 - 1] + per[n / 2]) / 2;
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
    for (uint64_t k = 0; k < nblocks; k++) {
        const unsigned char *p = buf;
        if (t->arena) {
            p = t->arena + k * o->block;
        } else {
            ssize_t r = pread(t->fd, buf, o->block, (off_t)(k * o->block));
            if (r < 0) return ib_fail("pread (verify)");
            if ((uint64_t)r != o->block) {
                snprintf(ib_errbuf, sizeof ib_errbuf, "verify: short read of block %" PRIu64 " (%zd bytes)", k, r);
                return IB_ERR;
            }
        }
        if (!ib_check(p, o->block, k, o->seed) || memcmp(p + 8, filler, o->block - 16) != 0) {
            snprintf(ib_errbuf, sizeof ib_errbuf, "verify: block %" PRIu64 " holds wrong data", k);
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

static int ib_random(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, struct ib_clock *clk, uint64_t *sum) {
    uint64_t nblocks = o->size / o->block, state = o->seed * 2 + 1, bad = 0;
    uint64_t *ks = malloc(o->ops * sizeof *ks);
    int writing = o->wl == IB_RAND_PWRITE || o->wl == IB_RAND_WRITE;
    int seek = o->wl == IB_RAND_READ || o->wl == IB_RAND_WRITE;
    int rc = IB_ERR;

    if (!ks) return ib_fail("malloc");
    for (uint64_t i = 0; i < o->ops; i++) ks[i] = ib_rand(&state) % nblocks;

    uint64_t lap_first = 0;
    ib_clock_start(clk);
    for (uint64_t i = 0; i < o->ops; i++) {
        uint64_t k = ks[i], off = k * o->block;
        ssize_t n;
        if (writing) ib_mark(buf, o->block, k, o->seed);
        if (t->arena) {
            if (writing) memcpy(t->arena + off, buf, o->block);
            else memcpy(buf, t->arena + off, o->block);
            n = (ssize_t)o->block;
        } else if (seek) {
            if (lseek(t->fd, (off_t)off, SEEK_SET) < 0) { ib_fail("lseek"); goto err; }
            n = writing ? write(t->fd, buf, o->block) : read(t->fd, buf, o->block);
        } else {
            n = writing ? pwrite(t->fd, buf, o->block, (off_t)off) : pread(t->fd, buf, o->block, (off_t)off);
        }
        if (n != (ssize_t)o->block) { ib_fail(writing ? "write" : "read"); goto err; }
        if (!writing) bad += !ib_check(buf, o->block, k, o->seed);
        *sum += buf[8];
        if (ib_lap_due(i, o->ops)) {
            ib_clock_lap(clk, i + 1 - lap_first);
            lap_first = i + 1;
        }
    }
    clk->last = ib_now_ns();
    if (bad) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "%" PRIu64 " of %" PRIu64 " reads returned wrong data", bad, o->ops);
        goto err;
    }
    rc = IB_OK;
err:
    free(ks);
    return rc;
}

static int ib_seq(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, struct ib_clock *clk, uint64_t *sum) {
    uint64_t nblocks = o->size / o->block, bad = 0;
    int writing = o->wl == IB_SEQ_WRITE;
    ib_clock_start(clk);
    for (uint64_t p = 0; p < o->passes; p++) {
        if (!t->arena) {
            if (writing) {
                if (close(t->fd) < 0) return ib_fail("close");
                t->fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
                if (t->fd < 0) return ib_fail("open O_TRUNC");
            } else if (lseek(t->fd, 0, SEEK_SET) < 0) {
                return ib_fail("lseek");
            }
        }
        for (uint64_t k = 0; k < nblocks; k++) {
            if (writing) ib_mark(buf, o->block, k, o->seed);
            if (t->arena) {
                if (writing) memcpy(t->arena + k * o->block, buf, o->block);
                else memcpy(buf, t->arena + k * o->block, o->block);
            } else {
                ssize_t n = writing ? write(t->fd, buf, o->block) : read(t->fd, buf, o->block);
                if (n != (ssize_t)o->block) return ib_fail(writing ? "write" : "read");
            }
            if (!writing) bad += !ib_check(buf, o->block, k, o->seed);
            *sum += buf[8];
        }
        ib_clock_lap(clk, nblocks);
    }
    clk->last = ib_now_ns();
    if (bad) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "%" PRIu64 " sequential reads returned wrong data", bad);
        return IB_ERR;
    }
    return IB_OK;
}

static int ib_meta(struct ib_target *t, const struct ib_opts *o, struct ib_clock *clk, uint64_t *sum) {
    struct stat st = {0};
    uint64_t lap_first = 0;
    ib_clock_start(clk);
    for (uint64_t i = 0; i < o->ops; i++) {
        int fd = open(t->path, O_RDONLY);
        if (fd < 0) return ib_fail("open");
        if (fstat(fd, &st) < 0) return ib_fail("fstat");
        if (close(fd) < 0) return ib_fail("close");
        *sum += (uint64_t)st.st_size;
        if (ib_lap_due(i, o->ops)) {
            ib_clock_lap(clk, i + 1 - lap_first);
            lap_first = i + 1;
        }
    }
    clk->last = ib_now_ns();
    if ((uint64_t)st.st_size != o->size) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "fstat reports size %jd, expected %" PRIu64, (intmax_t)st.st_size, o->size);
        return IB_ERR;
    }
    return IB_OK;
}

/* libc's own definitions, looked up in libc.so.6 so that an interposer is bypassed. */
static struct {
    int (*open)(const char *, int, ...);
    int (*fstat)(int, struct stat *);
    int (*close)(int);
    ssize_t (*pread)(int, void *, size_t, off_t);
} ib_libc;

static int ib_libc_resolve(void) {
    void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!h) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "dlopen libc.so.6: %s", dlerror());
        return IB_ERR;
    }
    *(void **)&ib_libc.open = dlsym(h, "open");
    *(void **)&ib_libc.fstat = dlsym(h, "fstat");
    *(void **)&ib_libc.close = dlsym(h, "close");
    *(void **)&ib_libc.pread = dlsym(h, "pread");
    if (!ib_libc.open || !ib_libc.fstat || !ib_libc.close || !ib_libc.pread) {
        snprintf(ib_errbuf, sizeof ib_errbuf, "libc.so.6 lacks open/fstat/close/pread: %s", dlerror());
        return IB_ERR;
    }
    return IB_OK;
}

/* One op of a pass-through loop: by name (direct = 0, what an interposer sees) or straight into libc. */
static int ib_pass_op(struct ib_target *t, const struct ib_opts *o, unsigned char *buf, uint64_t k, int direct, uint64_t *sum) {
    if (o->wl == IB_PASS_PREAD) {
        off_t off = (off_t)(k * o->block);
        ssize_t n = direct ? ib_libc.pread(t->fd, buf, o->block, off) : pread(t->fd, buf, o->block, off);
        if (n != (ssize_t)o->block) return ib_fail("pread");
        if (!ib_check(buf, o->block, k, o->seed)) {
            snprintf(ib_errbuf, sizeof ib_errbuf, "pread of block %" PRIu64 " returned wrong data", k);
            return IB_ERR;
        }
        *sum += buf[8];
        return IB_OK;
    }
    struct stat st;
    int fd = direct ? ib_libc.open(t->path, O_RDONLY) : open(t->path, O_RDONLY);
    if (fd < 0) return ib_fail("open");
    if ((direct ? ib_libc.fstat(fd, &st) : fstat(fd, &st)) < 0) return ib_fail("fstat");
    if ((direct ? ib_libc.close(fd) : close(fd)) < 0) return ib_fail("close");
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
    ib_clock_start(lib);
    ib_clock_start(direct);
    if (ib_libc_resolve() != IB_OK) return IB_ERR;
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
            "usage: iobench WORKLOAD (--dir DIR | --memcpy) [--ops N] [--size BYTES] [--block BYTES] [--passes N] [--seed N]\n"
            "WORKLOAD: rand-pread rand-pwrite rand-read rand-write seq-write seq-read meta pass-pread pass-meta\n",
            why);
    return 2;
}

int main(int argc, char **argv) {
    struct ib_opts o = {.wl = IB_RAND_PREAD, .dir = NULL, .ops = 500000, .size = 32u << 20, .block = 8192, .passes = 4, .seed = 42};
    struct ib_target t = {.fd = -1, .arena = NULL, .path = {0}};
    unsigned char *buf = NULL, *filler = NULL;
    int memcpy_mode = 0, found = 0, rc = 1;
    struct ib_clock clk = {0}, direct = {0};
    uint64_t sum = 0, ops;
    double lap_median, lap_min, direct_median = 0, direct_min = 0;
    struct ib_pass_result pass = {0};

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
        if (strcmp(argv[i], "--memcpy") == 0) { memcpy_mode = 1; continue; }
        if (i + 1 >= argc) return ib_usage("flag without a value");
        if (strcmp(argv[i], "--dir") == 0) { o.dir = argv[++i]; continue; }
        if (strcmp(argv[i], "--ops") == 0) num = &o.ops;
        else if (strcmp(argv[i], "--size") == 0) num = &o.size;
        else if (strcmp(argv[i], "--block") == 0) num = &o.block;
        else if (strcmp(argv[i], "--passes") == 0) num = &o.passes;
        else if (strcmp(argv[i], "--seed") == 0) num = &o.seed;
        else return ib_usage("unknown flag");
        if (ib_parse_u64(argv[++i], num) != IB_OK) return ib_usage("a number flag needs a non-negative integer");
    }
    if (memcpy_mode == (o.dir != NULL)) return ib_usage("give exactly one of --dir DIR and --memcpy");
    if (o.block < 16 || o.size < o.block || o.size % o.block) return ib_usage("--block must be >= 16 and divide --size");
    if (memcpy_mode && (o.wl == IB_META || o.wl == IB_PASS_PREAD || o.wl == IB_PASS_META)) {
        return ib_usage("meta and pass-* have no memcpy form");
    }

    buf = malloc(o.block);
    filler = malloc(o.block);
    if (!buf || !filler) { ib_fail("malloc"); goto err; }
    memset(buf, 0xA5, o.block);
    memset(filler, 0xA5, o.block);

    if (memcpy_mode) {
        t.arena = malloc(o.size);
        if (!t.arena) { ib_fail("malloc arena"); goto err; }
    } else {
        snprintf(t.path, sizeof t.path, "%s/iobench-%d.dat", o.dir, (int)getpid());
        t.fd = open(t.path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (t.fd < 0) { ib_fail("open"); goto err; }
    }
    /* Sequential writes create the file themselves; everything else needs it filled first. */
    if (o.wl != IB_SEQ_WRITE || memcpy_mode) {
        if (ib_fill(&t, &o, buf) != IB_OK) goto err;
    }

    switch (o.wl) {
    case IB_RAND_PREAD: case IB_RAND_PWRITE: case IB_RAND_READ: case IB_RAND_WRITE:
        if (ib_random(&t, &o, buf, &clk, &sum) != IB_OK) goto err;
        ops = o.ops;
        break;
    case IB_SEQ_WRITE: case IB_SEQ_READ:
        if (ib_seq(&t, &o, buf, &clk, &sum) != IB_OK) goto err;
        ops = o.passes * (o.size / o.block);
        break;
    case IB_META:
        if (close(t.fd) < 0) { ib_fail("close"); goto err; }
        t.fd = -1;
        if (ib_meta(&t, &o, &clk, &sum) != IB_OK) goto err;
        ops = o.ops;
        t.fd = open(t.path, O_RDONLY);
        if (t.fd < 0) { ib_fail("reopen"); goto err; }
        break;
    case IB_PASS_PREAD: case IB_PASS_META:
        if (ib_pass(&t, &o, buf, &clk, &direct, &pass, &sum) != IB_OK) goto err;
        ib_clock_summary(&direct, &direct_median, &direct_min);
        ops = pass.lib_ops;
        break;
    default:
        goto err;
    }
    if (ib_verify(&t, &o, buf, filler) != IB_OK) goto err;

    ib_clock_summary(&clk, &lap_median, &lap_min);
    uint64_t ns = clk.last - clk.start;
    if (o.wl == IB_PASS_PREAD || o.wl == IB_PASS_META) ns = pass.lib_ns; /* only the libc half is the measured loop */
    printf("{\"workload\":\"%s\",\"target\":\"%s\",\"ops\":%" PRIu64 ",\"block\":%" PRIu64 ",\"size\":%" PRIu64
           ",\"ns\":%" PRIu64 ",\"ns_per_op\":%.3f,\"laps\":%d,\"lap_median_ns_per_op\":%.3f,\"lap_min_ns_per_op\":%.3f"
           ",\"direct_lap_median_ns_per_op\":%.3f,\"direct_lap_min_ns_per_op\":%.3f"
           ",\"pairs\":%d,\"pair_ratio_q1\":%.5f,\"pair_ratio_median\":%.5f,\"pair_ratio_q3\":%.5f,\"checksum\":%" PRIu64 "}\n",
           ib_names[o.wl], memcpy_mode ? "memcpy" : o.dir, ops, o.block, o.size, ns, (double)ns / (double)(ops ? ops : 1),
           clk.laps, lap_median, lap_min, direct_median, direct_min, pass.median > 0 ? IB_PAIRS : 0, pass.q1, pass.median,
           pass.q3, sum);
    rc = 0;
err:
    if (rc) fprintf(stderr, "iobench %s: %s\n", ib_names[o.wl], ib_errbuf);
    if (t.fd >= 0) close(t.fd);
    if (t.path[0]) unlink(t.path);
    free(t.arena);
    free(buf);
    free(filler);
    return rc;
}
