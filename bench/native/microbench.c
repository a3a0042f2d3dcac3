/*
 * microbench - the paper's micro benchmark (Table 3: "multiple file operations on two files of the
 * same size"), for `ephemera bench fig7|fig8|fig9`.
 *
 *   microbench (--dir DIR | --memcpy) --file-size BYTES --ops N [--block BYTES] [--seed N] [--keep]
 *
 * One run is one function invocation: it creates two files of --file-size bytes in DIR with
 * sequential writes, then performs --ops random block-sized operations, each on a random file at a
 * random block, half preads and half pwrites, and finally removes the files (unless --keep).  It
 * prints one JSON line with the time of each phase; the harness runs it in a memory cgroup, on
 * disk, on tmpfs, or under `ephemera run --memory`.
 *
 * --memcpy runs the same operations as memcpy on two malloc'd arenas instead of files: the
 * physical limit of any in-memory file system on this machine.
 *
 * The data is checked so a fast wrong answer cannot pass: block k of file f carries the word
 * (k ^ seed ^ f << 48) in its first and last 8 bytes.  Every write puts the same words back,
 * every read checks them, and after the timed phases both files are verified in full (untimed).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MB_OK 0
#define MB_ERR 1
#define MB_FILES 2

struct mb_opts {
    const char *dir;     /* where the two files go */
    uint64_t file_size;  /* bytes per file, a multiple of block */
    uint64_t ops;        /* random operations in the timed op phase */
    uint64_t block;      /* bytes per operation */
    uint64_t seed;
    int keep;            /* leave the files behind (for inspection) */
    int memcpy_mode;     /* --memcpy: arenas instead of files */
};

/* The two "files": kernel fds, or arenas with --memcpy. */
struct mb_files {
    int fd[2];
    unsigned char *arena[2];
    char path[2][4096];
};

static char mb_errbuf[640];

static int mb_fail(const char *what, const char *path) {
    snprintf(mb_errbuf, sizeof mb_errbuf, "%s %s: %s", what, path, strerror(errno));
    return MB_ERR;
}

static uint64_t mb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap enough not to show in the op loop, same sequence for every contender. */
static uint64_t mb_rand(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint64_t mb_word(uint64_t f, uint64_t k, uint64_t seed) {
    return k ^ seed ^ (f << 48);
}

static void mb_mark(unsigned char *buf, uint64_t block, uint64_t f, uint64_t k, uint64_t seed) {
    uint64_t w = mb_word(f, k, seed);
    memcpy(buf, &w, 8);
    memcpy(buf + block - 8, &w, 8);
}

static int mb_check(const unsigned char *buf, uint64_t block, uint64_t f, uint64_t k, uint64_t seed) {
    uint64_t a, b, w = mb_word(f, k, seed);
    memcpy(&a, buf, 8);
    memcpy(&b, buf + block - 8, 8);
    return a == w && b == w;
}

static int mb_parse_u64(const char *flag, const char *text, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
        fprintf(stderr, "microbench: %s needs a non-negative integer, got \"%s\"\n", flag, text);
        return MB_ERR;
    }
    *out = (uint64_t)v;
    return MB_OK;
}

static int mb_parse(int argc, char **argv, struct mb_opts *o) {
    memset(o, 0, sizeof *o);
    o->block = 8192;
    o->seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--keep") == 0) {
            o->keep = 1;
            continue;
        }
        if (strcmp(a, "--memcpy") == 0) {
            o->memcpy_mode = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "microbench: %s needs a value (or is unknown)\n", a);
            return MB_ERR;
        }
        int rc;
        if (strcmp(a, "--dir") == 0) o->dir = v, rc = MB_OK;
        else if (strcmp(a, "--file-size") == 0) rc = mb_parse_u64(a, v, &o->file_size);
        else if (strcmp(a, "--ops") == 0) rc = mb_parse_u64(a, v, &o->ops);
        else if (strcmp(a, "--block") == 0) rc = mb_parse_u64(a, v, &o->block);
        else if (strcmp(a, "--seed") == 0) rc = mb_parse_u64(a, v, &o->seed);
        else {
            fprintf(stderr, "microbench: unknown flag %s; flags: --dir --memcpy --file-size --ops --block --seed --keep\n", a);
            return MB_ERR;
        }
        if (rc != MB_OK) return MB_ERR;
        i++;
    }
    if ((o->dir == NULL) == !o->memcpy_mode || o->file_size == 0) {
        fprintf(stderr, "usage: microbench (--dir DIR | --memcpy) --file-size BYTES --ops N [--block BYTES] [--seed N] [--keep]\n");
        return MB_ERR;
    }
    if (o->block < 16 || o->file_size % o->block != 0) {
        fprintf(stderr, "microbench: --file-size (%" PRIu64 ") must be a multiple of --block (%" PRIu64 "), which must be at least 16\n", o->file_size, o->block);
        return MB_ERR;
    }
    return MB_OK;
}

/* One block in or out: pread/pwrite on a file, or memcpy on an arena.  Inlined into each loop. */
static inline int mb_put(const struct mb_opts *o, struct mb_files *fs, uint64_t f, const unsigned char *buf, uint64_t off) {
    if (o->memcpy_mode) {
        memcpy(fs->arena[f] + off, buf, o->block);
        return MB_OK;
    }
    return pwrite(fs->fd[f], buf, o->block, (off_t)off) == (ssize_t)o->block ? MB_OK : mb_fail("pwrite", fs->path[f]);
}

static inline int mb_get(const struct mb_opts *o, struct mb_files *fs, uint64_t f, unsigned char *buf, uint64_t off) {
    if (o->memcpy_mode) {
        memcpy(buf, fs->arena[f] + off, o->block);
        return MB_OK;
    }
    return pread(fs->fd[f], buf, o->block, (off_t)off) == (ssize_t)o->block ? MB_OK : mb_fail("pread", fs->path[f]);
}

/* Sequential create: what a function does when it writes its scratch inputs. */
static int mb_create(const struct mb_opts *o, struct mb_files *fs, unsigned char *buf) {
    memset(buf, 0xA5, o->block);
    for (uint64_t f = 0; f < MB_FILES; f++) {
        if (o->memcpy_mode) {
            snprintf(fs->path[f], sizeof fs->path[f], "arena %" PRIu64, f);
            fs->arena[f] = malloc(o->file_size);
            if (fs->arena[f] == NULL) return mb_fail("malloc", fs->path[f]);
        } else {
            snprintf(fs->path[f], sizeof fs->path[f], "%s/microbench-%d-%" PRIu64 ".dat", o->dir, (int)getpid(), f);
            fs->fd[f] = open(fs->path[f], O_RDWR | O_CREAT | O_TRUNC, 0644);
            if (fs->fd[f] < 0) return mb_fail("open", fs->path[f]);
        }
        for (uint64_t k = 0; k < o->file_size / o->block; k++) {
            mb_mark(buf, o->block, f, k, o->seed);
            if (mb_put(o, fs, f, buf, k * o->block) != MB_OK) return MB_ERR;
        }
    }
    return MB_OK;
}

static int mb_ops(const struct mb_opts *o, struct mb_files *fs, unsigned char *buf, uint64_t *reads) {
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 1;
    uint64_t blocks = o->file_size / o->block;
    for (uint64_t i = 0; i < o->ops; i++) {
        uint64_t r = mb_rand(&rng);
        uint64_t f = r & 1;
        int is_read = (r >> 1) & 1;
        uint64_t k = (r >> 2) % blocks;
        if (is_read) {
            if (mb_get(o, fs, f, buf, k * o->block) != MB_OK) return MB_ERR;
            if (!mb_check(buf, o->block, f, k, o->seed)) {
                snprintf(mb_errbuf, sizeof mb_errbuf, "wrong data in %s at block %" PRIu64 " (op %" PRIu64 ")", fs->path[f], k, i);
                return MB_ERR;
            }
            (*reads)++;
        } else {
            mb_mark(buf, o->block, f, k, o->seed);
            if (mb_put(o, fs, f, buf, k * o->block) != MB_OK) return MB_ERR;
        }
    }
    return MB_OK;
}

static int mb_verify(const struct mb_opts *o, struct mb_files *fs, unsigned char *buf) {
    for (uint64_t f = 0; f < MB_FILES; f++) {
        for (uint64_t k = 0; k < o->file_size / o->block; k++) {
            if (mb_get(o, fs, f, buf, k * o->block) != MB_OK) return MB_ERR;
            if (!mb_check(buf, o->block, f, k, o->seed)) {
                snprintf(mb_errbuf, sizeof mb_errbuf, "verify: wrong data in %s at block %" PRIu64, fs->path[f], k);
                return MB_ERR;
            }
        }
    }
    return MB_OK;
}

int main(int argc, char **argv) {
    struct mb_opts o;
    struct mb_files fs = {.fd = {-1, -1}, .arena = {NULL, NULL}};
    unsigned char *buf = NULL;
    uint64_t reads = 0, t0, t1, t2, t3;
    int rc = MB_ERR;

    if (mb_parse(argc, argv, &o) != MB_OK) return 2;
    buf = malloc(o.block);
    if (buf == NULL) {
        snprintf(mb_errbuf, sizeof mb_errbuf, "malloc %" PRIu64 " bytes failed", o.block);
        goto err;
    }
    t0 = mb_now_ns();
    if (mb_create(&o, &fs, buf) != MB_OK) goto err;
    t1 = mb_now_ns();
    if (mb_ops(&o, &fs, buf, &reads) != MB_OK) goto err;
    t2 = mb_now_ns();
    if (mb_verify(&o, &fs, buf) != MB_OK) goto err;
    for (int f = 0; f < MB_FILES && !o.memcpy_mode; f++) {
        close(fs.fd[f]);
        fs.fd[f] = -1;
        if (!o.keep && unlink(fs.path[f]) != 0) {
            mb_fail("unlink", fs.path[f]);
            goto err;
        }
    }
    t3 = mb_now_ns();
    printf("{\"file_size\":%" PRIu64 ",\"files\":%d,\"ops\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"block\":%" PRIu64
           ",\"create_ns\":%" PRIu64 ",\"ops_ns\":%" PRIu64 ",\"total_ns\":%" PRIu64 ",\"verify_ns\":%" PRIu64 "}\n",
           o.file_size, MB_FILES, o.ops, reads, o.block, t1 - t0, t2 - t1, t2 - t0, t3 - t2);
    rc = MB_OK;
err:
    if (rc != MB_OK) fprintf(stderr, "microbench: %s\n", mb_errbuf);
    for (int f = 0; f < MB_FILES; f++) {
        if (fs.fd[f] >= 0) close(fs.fd[f]);
        free(fs.arena[f]);
    }
    free(buf);
    return rc == MB_OK ? 0 : 1;
}
