/*
 * mt_hammer - many threads on managed files at once.  The shim promises a
 * fast path with no global lock; this checks that the per-description and
 * per-inode locking still gives the kernel's answers:
 *
 *   regions   each thread its own fd, pwrite/lseek+write/pread in its own
 *             region of one file, checked against a private shadow copy;
 *   shared    one fd (one offset) shared by all threads: write() records
 *             must neither overlap nor get lost;
 *   append    each thread its own O_APPEND fd: the same property;
 *   publish   one writer appends bytes whose value depends on the offset,
 *             readers pread below the size fstat reports: a size must never
 *             become visible before its bytes;
 *   churn     create/write/rename/read/unlink of per-thread files, so the
 *             daemon connection is used from every thread at once.
 *
 * usage: mt_hammer DIR [THREADS] [ITERATIONS]; exit 0 when all checks pass.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REGION (256 * 1024)
#define REC 64
#define MAXT 32

static const char *g_dir;
static int g_threads = 8;
static int g_iters = 2000;
static atomic_long g_checks;
static atomic_int g_failed;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mt_hammer: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    atomic_store(&g_failed, 1);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

static int xopen(const char *name, int flags)
{
    char p[4096];
    path_of(p, sizeof p, name);
    int fd = open(p, flags, 0644);
    if (fd < 0)
        fail("open %s: %s", p, strerror(errno));
    return fd;
}

static int cmp_rec(const void *a, const void *b)
{
    return memcmp(a, b, REC);
}

static void make_rec(char *r, int t, int i, const char *tag)
{
    memset(r, '.', REC);
    int k = snprintf(r, REC, "%s thread %d record %d", tag, t, i);
    r[k] = ' ';
    r[REC - 1] = '\n';
}

/* All records present once, in any order. */
static void check_records(const char *name, int per_thread, const char *tag)
{
    char p[4096];
    path_of(p, sizeof p, name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) {
        fail("open %s: %s", p, strerror(errno));
        return;
    }
    size_t want = (size_t)g_threads * (size_t)per_thread * REC;
    char *buf = malloc(want + REC), *exp = malloc(want);
    size_t got = 0;
    ssize_t k;
    while ((k = read(fd, buf + got, want + REC - got)) > 0)
        got += (size_t)k;
    close(fd);
    if (got != want) {
        fail("%s: %zu bytes, expected %zu (%s)", name, got, want, got < want ? "records lost" : "extra bytes");
    } else {
        size_t n = 0;
        for (int t = 0; t < g_threads; t++)
            for (int i = 0; i < per_thread; i++)
                make_rec(exp + (n++) * REC, t, i, tag);
        qsort(buf, want / REC, REC, cmp_rec);
        qsort(exp, want / REC, REC, cmp_rec);
        if (memcmp(buf, exp, want))
            fail("%s: records overlap or are torn", name);
        atomic_fetch_add(&g_checks, 1);
    }
    free(buf);
    free(exp);
}

/* ---------------------------------------------------------------- regions */

static void *regions_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    int fd = xopen("regions.dat", O_RDWR);
    if (fd < 0)
        return NULL;
    unsigned char *shadow = calloc(1, REGION), *buf = malloc(65536), *rd = malloc(65536);
    size_t hi = 0; /* bytes of the region written so far */
    uint64_t x = mix((uint64_t)t + 1);
    off_t base = (off_t)t * REGION;
    for (int i = 0; i < g_iters && !atomic_load(&g_failed); i++) {
        x = mix(x);
        size_t len = 1 + x % 16384;
        size_t off = (x >> 20) % (REGION - len);
        for (size_t j = 0; j < len; j++)
            buf[j] = (unsigned char)mix(x + j);
        ssize_t w;
        if (x & 1) {
            w = pwrite(fd, buf, len, base + (off_t)off);
        } else {
            if (lseek(fd, base + (off_t)off, SEEK_SET) != base + (off_t)off)
                fail("thread %d: lseek: %s", t, strerror(errno));
            w = write(fd, buf, len);
        }
        if (w != (ssize_t)len) {
            fail("thread %d: write %zu at %zu returned %zd (%s)", t, len, off, w, strerror(errno));
            break;
        }
        memcpy(shadow + off, buf, len);
        if (off + len > hi)
            hi = off + len;
        /* read back a random window of what this thread owns */
        size_t roff = (x >> 40) % hi, rlen = hi - roff < 65536 ? hi - roff : 65536;
        ssize_t r = pread(fd, rd, rlen, base + (off_t)roff);
        if (r != (ssize_t)rlen || memcmp(rd, shadow + roff, rlen)) {
            fail("thread %d iteration %d: pread %zu at %zu returned %zd or wrong bytes", t, i, rlen, roff, r);
            break;
        }
        atomic_fetch_add(&g_checks, 1);
    }
    close(fd);
    /* leave the shadow for the final whole-file check */
    free(buf);
    free(rd);
    return shadow;
}

static void phase_regions(void)
{
    int fd = xopen("regions.dat", O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0)
        return;
    if (ftruncate(fd, (off_t)g_threads * REGION) < 0)
        fail("ftruncate: %s", strerror(errno));
    pthread_t th[MAXT];
    for (int t = 0; t < g_threads; t++)
        pthread_create(&th[t], NULL, regions_thread, (void *)(intptr_t)t);
    unsigned char *whole = malloc(REGION);
    for (int t = 0; t < g_threads; t++) {
        unsigned char *shadow;
        pthread_join(th[t], (void **)&shadow);
        if (!shadow)
            continue;
        if (pread(fd, whole, REGION, (off_t)t * REGION) != REGION || memcmp(whole, shadow, REGION))
            fail("regions: thread %d's region differs from its shadow after all threads ended", t);
        free(shadow);
    }
    free(whole);
    close(fd);
}

/* ---------------------------------------------------------------- shared / append */

static int g_shared_fd;

static void *shared_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    char r[REC];
    for (int i = 0; i < g_iters; i++) {
        make_rec(r, t, i, "shared");
        ssize_t w = write(g_shared_fd, r, REC);
        if (w != REC) {
            fail("shared: thread %d write returned %zd (%s)", t, w, strerror(errno));
            break;
        }
    }
    return NULL;
}

static void *append_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    int fd = xopen("append.dat", O_WRONLY | O_APPEND);
    char r[REC];
    for (int i = 0; i < g_iters && fd >= 0; i++) {
        make_rec(r, t, i, "append");
        if (write(fd, r, REC) != REC) {
            fail("append: thread %d write: %s", t, strerror(errno));
            break;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void run_threads(void *(*fn)(void *))
{
    pthread_t th[MAXT];
    for (int t = 0; t < g_threads; t++)
        pthread_create(&th[t], NULL, fn, (void *)(intptr_t)t);
    for (int t = 0; t < g_threads; t++)
        pthread_join(th[t], NULL);
}

static void phase_shared(void)
{
    g_shared_fd = xopen("shared.dat", O_WRONLY | O_CREAT | O_TRUNC);
    if (g_shared_fd < 0)
        return;
    run_threads(shared_thread);
    off_t end = lseek(g_shared_fd, 0, SEEK_CUR);
    if (end != (off_t)g_threads * g_iters * REC)
        fail("shared: offset after all writes is %ld, expected %ld", (long)end, (long)g_threads * g_iters * REC);
    close(g_shared_fd);
    check_records("shared.dat", g_iters, "shared");

    int fd = xopen("append.dat", O_WRONLY | O_CREAT | O_TRUNC);
    if (fd >= 0)
        close(fd);
    run_threads(append_thread);
    check_records("append.dat", g_iters, "append");
}

/* ---------------------------------------------------------------- publish */

static atomic_int g_writer_done;

static unsigned char byte_at(uint64_t off)
{
    return (unsigned char)(mix(off / 8) >> (8 * (off % 8)));
}

static void *publish_writer(void *arg)
{
    (void)arg;
    int fd = xopen("publish.dat", O_WRONLY | O_APPEND);
    unsigned char buf[8192];
    uint64_t off = 0;
    for (int i = 0; i < g_iters * 4 && fd >= 0; i++) {
        size_t len = 1 + mix((uint64_t)i) % sizeof buf;
        for (size_t j = 0; j < len; j++)
            buf[j] = byte_at(off + j);
        if (write(fd, buf, len) != (ssize_t)len) {
            fail("publish: writer: %s", strerror(errno));
            break;
        }
        off += len;
    }
    if (fd >= 0)
        close(fd);
    atomic_store(&g_writer_done, 1);
    return NULL;
}

static void *publish_reader(void *arg)
{
    int t = (int)(intptr_t)arg;
    int fd = xopen("publish.dat", O_RDONLY);
    unsigned char buf[4096];
    uint64_t x = mix((uint64_t)t * 77);
    while (fd >= 0 && !atomic_load(&g_failed)) {
        int done = atomic_load(&g_writer_done);
        struct stat st;
        if (fstat(fd, &st) < 0) {
            fail("publish: fstat: %s", strerror(errno));
            break;
        }
        if (st.st_size > 0) {
            x = mix(x);
            uint64_t off = x % (uint64_t)st.st_size;
            size_t len = (size_t)((uint64_t)st.st_size - off < sizeof buf ? (uint64_t)st.st_size - off : sizeof buf);
            ssize_t r = pread(fd, buf, len, (off_t)off);
            if (r != (ssize_t)len) {
                fail("publish: reader %d: pread %zu at %lu below size %ld returned %zd", t, len,
                     (unsigned long)off, (long)st.st_size, r);
                break;
            }
            for (size_t j = 0; j < len; j++)
                if (buf[j] != byte_at(off + j)) {
                    fail("publish: reader %d: byte at %lu is %u, expected %u (size %ld was visible before its data)",
                         t, (unsigned long)(off + j), buf[j], byte_at(off + j), (long)st.st_size);
                    goto out;
                }
            atomic_fetch_add(&g_checks, 1);
        }
        if (done)
            break;
    }
out:
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void phase_publish(void)
{
    int fd = xopen("publish.dat", O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return;
    close(fd);
    pthread_t w, th[MAXT];
    int readers = g_threads > 1 ? g_threads - 1 : 1;
    pthread_create(&w, NULL, publish_writer, NULL);
    for (int t = 0; t < readers; t++)
        pthread_create(&th[t], NULL, publish_reader, (void *)(intptr_t)t);
    pthread_join(w, NULL);
    for (int t = 0; t < readers; t++)
        pthread_join(th[t], NULL);
}

/* ---------------------------------------------------------------- churn */

static void *churn_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    char a[4096], b[4096], name[64], buf[3000], rd[3000];
    int n = g_iters / 10 + 1;
    for (int i = 0; i < n && !atomic_load(&g_failed); i++) {
        snprintf(name, sizeof name, "churn-%d-%d", t, i % 4);
        path_of(a, sizeof a, name);
        snprintf(name, sizeof name, "churn-%d-%d.renamed", t, i % 4);
        path_of(b, sizeof b, name);
        size_t len = 1 + mix((uint64_t)(t * 100000 + i)) % sizeof buf;
        memset(buf, 'a' + (t + i) % 26, len);
        int fd = open(a, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
            fail("churn: thread %d create/write %s: %s", t, a, strerror(errno));
            break;
        }
        close(fd);
        if (rename(a, b) < 0) {
            fail("churn: thread %d rename %s: %s", t, a, strerror(errno));
            break;
        }
        fd = open(b, O_RDONLY);
        ssize_t r = fd < 0 ? -1 : read(fd, rd, sizeof rd);
        if (r != (ssize_t)len || memcmp(rd, buf, len)) {
            fail("churn: thread %d: %s reads back %zd bytes, expected %zu", t, b, r, len);
            break;
        }
        close(fd);
        if (i % 3 == 0 && unlink(b) < 0) {
            fail("churn: unlink %s: %s", b, strerror(errno));
            break;
        }
        atomic_fetch_add(&g_checks, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mt_hammer DIR [THREADS] [ITERATIONS]\n");
        return 2;
    }
    g_dir = argv[1];
    if (argc > 2)
        g_threads = atoi(argv[2]);
    if (argc > 3)
        g_iters = atoi(argv[3]);
    if (g_threads < 1 || g_threads > MAXT || g_iters < 1) {
        fprintf(stderr, "mt_hammer: THREADS must be 1..%d and ITERATIONS positive\n", MAXT);
        return 2;
    }
    phase_regions();
    printf("regions: %s\n", atomic_load(&g_failed) ? "FAILED" : "ok");
    phase_shared();
    printf("shared+append: %s\n", atomic_load(&g_failed) ? "FAILED" : "ok");
    phase_publish();
    printf("publish: %s\n", atomic_load(&g_failed) ? "FAILED" : "ok");
    run_threads(churn_thread);
    printf("churn: %s\n", atomic_load(&g_failed) ? "FAILED" : "ok");
    printf("mt_hammer: %d threads, %ld checks, %s\n", g_threads, atomic_load(&g_checks),
           atomic_load(&g_failed) ? "FAILED" : "all ok");
    return atomic_load(&g_failed) ? 1 : 0;
}
