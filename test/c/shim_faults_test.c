/*
 * The shim's syscall table with faults in front (build/test/libephemera-faults.so,
 * EPHEMERA_FAULTS; see ephemera/systable.h): an error or a short transfer of
 * the shim's own call reaches the program as the kernel would report it on a
 * file, and no byte already written is lost.  Each case runs in its own
 * shimmed process with its own rules and daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

#define CASE_ENV "SHIM_FAULTS_CASE"

static void fill(char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)((i * 131 + seed * 7 + (i >> 12)) & 0xff);
}

/* root/f, new, opened for reading and writing; b filled with the bytes to write. */
static int new_file(const char *root, char *path, size_t pathsz, char *b, size_t n, unsigned seed)
{
    snprintf(path, pathsz, "%s/f", root);
    fill(b, n, seed);
    int fd = open(path, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

/* The whole file read back through the shim equals want[0, n). */
static int same_bytes(const char *path, const char *want, size_t n)
{
    char *got = malloc(n + 1);
    int fd = open(path, O_RDONLY);
    ssize_t r = fd >= 0 ? pread(fd, got, n + 1, 0) : -1;
    int ok = r == (ssize_t)n && memcmp(got, want, n) == 0;
    if (fd >= 0)
        close(fd);
    free(got);
    return ok;
}

/* The first write of a new file fails with ENOSPC (what: which call refused), changes nothing, and a retry works. */
static void refused_then_retried(const char *root, unsigned seed, const char *what)
{
    char path[PATH_MAX + 16], b[8192];
    int fd = new_file(root, path, sizeof path, b, sizeof b, seed);
    errno = 0;
    ssize_t w = write(fd, b, sizeof b);
    CHECK(w == -1 && errno == ENOSPC, "write when %s gave %zd (%s), want -1 ENOSPC", what, w, strerror(errno));
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 0, "a failed write changed the size to %lld", (long long)st.st_size);
    CHECK(lseek(fd, 0, SEEK_CUR) == 0, "a failed write moved the offset");
    CHECK(write(fd, b, sizeof b) == (ssize_t)sizeof b, "the write after the fault failed: %s", strerror(errno));
    close(fd);
    CHECK(same_bytes(path, b, sizeof b), "bytes differ after a refused write (%s) and a retry", what);
}

/* pwrite:ENOSPC:on=mem:times=1 - the memfd refuses the first write of new pages. */
static void case_mem_enospc(const char *root) { refused_then_retried(root, 1, "the memfd refuses the bytes"); }

/* pwrite:short:on=mem:times=1 - the memfd takes half: the program sees a short write, as on a full disk. */
static void case_mem_short(const char *root)
{
    char path[PATH_MAX + 16];
    static char b[65536];
    int fd = new_file(root, path, sizeof path, b, sizeof b, 2);
    ssize_t w = write(fd, b, sizeof b);
    CHECK(w == (ssize_t)sizeof b / 2, "write of 64 KiB under pwrite:short gave %zd, want 32768", w);
    CHECK(lseek(fd, 0, SEEK_CUR) == w, "offset %lld after a short write of %zd", (long long)lseek(fd, 0, SEEK_CUR), w);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == w, "size %lld after a short write of %zd", (long long)st.st_size, w);
    CHECK(write(fd, b + w, sizeof b - (size_t)w) == (ssize_t)sizeof b - w, "the rest did not go in: %s", strerror(errno));
    close(fd);
    CHECK(same_bytes(path, b, sizeof b), "bytes differ after a short write and the rest");
}

/* ftruncate:ENOSPC:on=mem:times=1 - growing the memfd fails: the write fails, nothing is half done. */
static void case_grow_enospc(const char *root) { refused_then_retried(root, 3, "the memfd cannot grow"); }

/*
 * A fault on pwritev:on=disk once, with a 64 KiB budget - a 512 KiB file moves
 * to disk while it is written (writes then go to the disk file: the writeback
 * path); the program sees the faulted write fail with want_err, or come back
 * short (want_err 0), carries on, and everything written before and after is
 * there.
 */
static void disk_fault(const char *root, int want_err)
{
    char path[PATH_MAX + 16];
    static char b[512 * 1024];
    int fd = new_file(root, path, sizeof path, b, sizeof b, 4);
    int failed = 0, shorts = 0;
    for (size_t off = 0; off < sizeof b;) {
        size_t len = sizeof b - off < 8192 ? sizeof b - off : 8192;
        errno = 0;
        ssize_t w = write(fd, b + off, len);
        if (w < 0) {
            CHECK(errno == want_err, "write at %zu failed with %s, want %s", off, strerror(errno),
                  want_err ? strerror(want_err) : "a short write");
            if (errno != want_err || ++failed > 1)
                break;
            continue;
        }
        shorts += (size_t)w < len;
        off += (size_t)w;
    }
    CHECK(want_err ? failed == 1 : shorts == 1, "%d writes failed and %d were short, want exactly the one faulted",
          failed, shorts);
    close(fd);
    int (*real_stat)(const char *, struct stat *) = (int (*)(const char *, struct stat *))libc_sym("stat");
    struct stat st;
    CHECK(real_stat && real_stat(path, &st) == 0 && st.st_size == (off_t)sizeof b,
          "the file is not on disk in full (it should have moved there): size %lld", (long long)st.st_size);
    CHECK(same_bytes(path, b, sizeof b), "bytes differ after a faulted write on the disk file");
}

static void case_disk_enospc(const char *root) { disk_fault(root, ENOSPC); }
static void case_disk_eio(const char *root) { disk_fault(root, EIO); }
static void case_disk_short(const char *root) { disk_fault(root, 0); }

/* pwrite:EINTR and ftruncate:EINTR once each - a write to a regular file is not interrupted: it goes in. */
static void case_eintr(const char *root)
{
    char path[PATH_MAX + 16];
    static char b[20000];
    int fd = new_file(root, path, sizeof path, b, sizeof b, 5);
    errno = 0;
    ssize_t w = write(fd, b, sizeof b);
    CHECK(w == (ssize_t)sizeof b, "write with EINTR on the shim's own calls gave %zd (%s), want all %zu bytes", w,
          strerror(errno), sizeof b);
    close(fd);
    CHECK(same_bytes(path, b, sizeof b), "bytes differ after an interrupted internal write");
}

static const struct {
    const char *name, *faults;
    void (*run)(const char *root);
    const char *budget;
} cases[] = {
    {"mem-enospc", "pwrite:ENOSPC:on=mem:times=1", case_mem_enospc, NULL},
    {"mem-short", "pwrite:short:on=mem:times=1", case_mem_short, NULL},
    {"grow-enospc", "ftruncate:ENOSPC:on=mem:times=1", case_grow_enospc, NULL},
    {"eintr", "pwrite:EINTR:on=mem:times=1,ftruncate:EINTR:on=mem:times=1", case_eintr, NULL},
    {"disk-enospc", "pwritev:ENOSPC:on=disk:times=1", case_disk_enospc, "64K"},
    {"disk-eio", "pwritev:EIO:on=disk:times=1", case_disk_eio, "64K"},
    {"disk-short", "pwritev:short:on=disk:times=1", case_disk_short, "64K"},
};

static int child(const char *root, const char *disk)
{
    (void)disk;
    const char *name = getenv(CASE_ENV);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (name && strcmp(name, cases[i].name) == 0)
            cases[i].run(root);
    printf("shim_faults_test %s: %d checks, %d failures\n", name ? name : "?", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return shimmed_main(argc, argv, "shim_faults", child);
    /* The test build of the shim beside the production one (make test-build makes it). */
    if (shimmed_use_faults_build("shim_faults_test"))
        return 1;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv(CASE_ENV, cases[i].name, 1);
        setenv("EPHEMERA_FAULTS", cases[i].faults, 1);
        const char *args[] = {"--budget", cases[i].budget, NULL};
        int r = shimmed_main_args(argc, argv, "shim_faults", child, cases[i].budget ? args : NULL);
        fprintf(stderr, "%s: %s\n", cases[i].name, r == 0 ? "ok" : "FAILED");
        bad |= r;
    }
    unsetenv("EPHEMERA_FAULTS");
    return bad;
}
