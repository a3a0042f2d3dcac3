/*
 * The daemon's eviction and exit writeback with faults in front of its real
 * calls (build/test/ephemerad-faults, EPHEMERAD_FAULTS; daemon/sys.h).
 * Wanted: an eviction that fails keeps the file in memory with every byte
 * intact (even after part of it was punched out of the memfd) and a later
 * eviction moves it; EINTR and short transfers are retried without anyone
 * noticing; a writeback at exit that fails once is tried again, and one that
 * cannot succeed is named in the log, counted in the stats and turns the
 * exit status to 3.  Each case runs its own daemon with its own rules; the
 * file is written and read back by this program re-run under the shim.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ephd.h"

/* 6 MiB: more than one 4 MiB chunk of the write-through copy, so a fault in
 * the second chunk comes after the first was punched out of the memfd. */
#define FILE_BYTES (6u << 20)

static const char *shim;

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 12)) & 0xff);
}

/* Child modes (run under the shim, or plain for --check-disk). */
static int child(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    unsigned seed = (unsigned)atoi(argv[3]);
    unsigned char *want = malloc(FILE_BYTES), *got = malloc(FILE_BYTES + 1);
    fill(want, FILE_BYTES, seed);
    int ok = 0;
    if (strcmp(argv[1], "--write") == 0) {
        int fd = open(argv[2], O_CREAT | O_WRONLY | O_TRUNC, 0644);
        ok = fd >= 0 && write(fd, want, FILE_BYTES) == (ssize_t)FILE_BYTES && close(fd) == 0;
        if (!ok)
            fprintf(stderr, "write %s: %s\n", argv[2], strerror(errno));
    } else {
        int fd = open(argv[2], O_RDONLY);
        size_t n = 0;
        ssize_t r = 0;
        while (fd >= 0 && n < FILE_BYTES + 1 && (r = read(fd, got + n, FILE_BYTES + 1 - n)) > 0)
            n += (size_t)r;
        ok = fd >= 0 && n == FILE_BYTES && memcmp(got, want, FILE_BYTES) == 0;
        if (!ok)
            fprintf(stderr, "%s: %zu bytes read (want %u), %s\n", argv[2], n, FILE_BYTES,
                    n == FILE_BYTES ? "the bytes differ" : strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    free(want);
    free(got);
    return ok ? 0 : 1;
}

struct inst {
    char dir[PATH_MAX], root[PATH_MAX + 8], run[PATH_MAX + 8], file[PATH_MAX + 16];
    pid_t pid;
};

/* Run this program as a child: mode on the file, under the shim unless plain. */
static int run_child(const char *self, struct inst *in, const char *mode, int plain)
{
    pid_t c = fork();
    if (c == 0) {
        if (!plain) {
            char sock[PATH_MAX + 32];
            snprintf(sock, sizeof sock, "%s/shim.sock", in->run);
            setenv("LD_PRELOAD", shim, 1);
            setenv("EPHEMERA_LIB", shim, 1);
            setenv("EPHEMERA_SOCK", sock, 1);
            setenv("EPHEMERA_ROOTS", in->root, 1);
            const char *asan = getenv("ASAN_OPTIONS");
            char opts[512];
            snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "", asan ? ":" : "");
            setenv("ASAN_OPTIONS", opts, 1);
        }
        execl(self, self, mode, in->file, "5", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(c, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* One request on the control socket; the reply line in buf (empty on failure). */
static void control(struct inst *in, const char *req, char *buf, size_t n)
{
    ephd_control(in->run, req, buf, n);
}

/* A number field of the stats (-1 when absent). */
static long long stat_of(struct inst *in, const char *key)
{
    return ephd_stat(in->run, key);
}

/* Ask for every file to leave memory (the Tenant Manager taking memory back). */
static void shrink(struct inst *in)
{
    char buf[8192];
    control(in, "{\"v\":1,\"id\":1,\"op\":\"shrink\",\"bytes\":0}\n", buf, sizeof buf);
}

/* A cgroup v2 directory stand-in with no limit: enough for the daemon to copy
 * the way it does under a limit (write-through with O_DIRECT from its bounce
 * buffer, punching the memfd chunk by chunk). */
static void fake_cgroup(const char *dir)
{
    static const char *const files[][2] = {
        {"memory.max", "max\n"},
        {"memory.current", "10000000\n"},
        {"memory.stat", "anon 9000000\nfile 1000000\nactive_file 0\ninactive_file 0\nfile_dirty 0\n"
                        "file_writeback 0\nshmem 0\n"},
        {"memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"},
        {"memory.high", "max\n"},
    };
    mkdir(dir, 0755);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", dir, files[i][0]);
        FILE *f = fopen(p, "w");
        if (f) {
            fputs(files[i][1], f);
            fclose(f);
        }
    }
}

static int start_in(struct inst *in, const char *self, const char *name, const char *rules, int cgroup);

/* A daemon of the fault build with these rules, and the test file written through the shim. */
static int start(struct inst *in, const char *self, const char *name, const char *rules)
{
    return start_in(in, self, name, rules, 0);
}

/* The same, with the daemon given a cgroup (the stand-in above) when cgroup is set. */
static int start_in(struct inst *in, const char *self, const char *name, const char *rules, int cgroup)
{
    const char *daemon = getenv("EPHEMERAD_FAULTY") ? getenv("EPHEMERAD_FAULTY") : "build/test/ephemerad-faults";
    char base[PATH_MAX];
    snprintf(base, sizeof base, "build/test/daemon_faults-%s-XXXXXX", name);
    if (!mkdtemp(base) || !realpath(base, in->dir))
        return -1;
    snprintf(in->root, sizeof in->root, "%s/root", in->dir);
    snprintf(in->run, sizeof in->run, "%s/run", in->dir);
    snprintf(in->file, sizeof in->file, "%s/f", in->root);
    mkdir(in->root, 0755);
    mkdir(in->run, 0755);
    char cg[PATH_MAX + 8];
    snprintf(cg, sizeof cg, "%s/cg", in->dir);
    if (cgroup)
        fake_cgroup(cg);
    const char *const args[] = {"--cgroup", cgroup ? cg : "none", "--budget", "64M", NULL};
    setenv("EPHEMERAD_FAULTS", rules, 1);
    in->pid = ephd_start(daemon, in->run, in->root, args);
    unsetenv("EPHEMERAD_FAULTS");
    if (in->pid < 0) {
        fprintf(stderr, "%s: %s did not become ready\n", name, daemon);
        return -1;
    }
    if (run_child(self, in, "--write", 0) != 0) {
        fprintf(stderr, "%s: writing the file through the shim failed\n", name);
        return -1;
    }
    return 0;
}

/* Stop the daemon (SIGTERM: the exit writeback) and return its exit status. */
static int stop(struct inst *in)
{
    int st = 0;
    if (in->pid > 0) {
        kill(in->pid, SIGTERM);
        waitpid(in->pid, &st, 0);
        in->pid = -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int log_has(struct inst *in, const char *what)
{
    char p[PATH_MAX + 32], line[1024];
    snprintf(p, sizeof p, "%s/ephemerad.log", in->run);
    FILE *f = fopen(p, "r");
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void finish(struct inst *in)
{
    stop(in);
    rm_rf(in->dir);
}

static int on_disk(struct inst *in)
{
    struct stat st;
    return stat(in->file, &st) == 0 && st.st_size == FILE_BYTES;
}

/* An eviction that fails (disk full in the middle of the copy, an I/O error
 * on the length or the link) keeps the file in memory, intact, and a later
 * one moves it once the fault is gone. */
static void case_fail_then_retry(const char *self, const char *name, const char *rules, int failures_wanted)
{
    struct inst in = {.pid = -1};
    CHECK(start(&in, self, name, rules) == 0, "%s: no daemon or no file", name);
    if (in.pid < 0)
        return finish(&in);
    CHECK(stat_of(&in, "files_in_memory") == 1, "%s: the file is not in memory before the shrink", name);
    int attempts = 0;
    while (stat_of(&in, "evictions") == 0 && attempts < failures_wanted + 2) {
        if (attempts++)
            usleep(1100 * 1000); /* a failed eviction backs off for a second */
        shrink(&in);
        if (stat_of(&in, "evictions") == 0) {
            CHECK(stat_of(&in, "files_in_memory") == 1, "%s: after a failed eviction the file left memory", name);
            CHECK(!on_disk(&in), "%s: a failed eviction left a file on disk", name);
            CHECK(run_child(self, &in, "--check", 0) == 0, "%s: bytes lost after failed eviction %d", name, attempts);
        }
    }
    CHECK(attempts == failures_wanted + 1, "%s: evicted after %d attempts, want %d", name, attempts, failures_wanted + 1);
    CHECK(stat_of(&in, "eviction_failures") == failures_wanted, "%s: eviction_failures %lld, want %d", name,
          stat_of(&in, "eviction_failures"), failures_wanted);
    CHECK(stat_of(&in, "files_in_memory") == 0 && stat_of(&in, "evictions") == 1, "%s: the retry did not evict",
          name);
    CHECK(run_child(self, &in, "--check", 1) == 0, "%s: the evicted file on disk differs", name);
    CHECK(stop(&in) == 0, "%s: the daemon did not exit 0", name);
    finish(&in);
}

/* EINTR and short transfers: the first eviction succeeds, nothing lost. */
static void case_transparent_in(const char *self, const char *name, const char *rules, int cgroup)
{
    struct inst in = {.pid = -1};
    CHECK(start_in(&in, self, name, rules, cgroup) == 0, "%s: no daemon or no file", name);
    if (in.pid < 0)
        return finish(&in);
    shrink(&in);
    CHECK(stat_of(&in, "evictions") == 1 && stat_of(&in, "eviction_failures") == 0,
          "%s: evictions %lld, failures %lld after one shrink, want 1 and 0", name, stat_of(&in, "evictions"),
          stat_of(&in, "eviction_failures"));
    CHECK(run_child(self, &in, "--check", 1) == 0, "%s: the evicted file on disk differs", name);
    finish(&in);
}

static void case_transparent(const char *self, const char *name, const char *rules)
{
    case_transparent_in(self, name, rules, 0);
}

/* The link of the complete disk file fails for want of memory (a dentry is
 * charged to the cgroup, at its limit) after the write-through copy punched
 * the whole memfd, and putting those bytes back into memory fails the same
 * way.  They are only on disk then: the daemon names the file again (it had
 * put the file back to memory with holes, and the next eviction or the exit
 * writeback wrote zeros: guard.test.ts's "f2: bytes differ on disk"). */
static void case_enomem_forward(const char *self, const char *name)
{
    struct inst in = {.pid = -1};
    CHECK(start_in(&in, self, name, "linkat:ENOMEM:times=1,pwrite:ENOMEM:on=mem:times=1,sendfile:ENOMEM:on=mem:times=1",
                   1) == 0,
          "%s: no daemon or no file", name);
    if (in.pid < 0)
        return finish(&in);
    shrink(&in);
    CHECK(stat_of(&in, "evictions") == 1 && stat_of(&in, "files_in_memory") == 0,
          "%s: evictions %lld, files in memory %lld after one shrink, want 1 and 0", name, stat_of(&in, "evictions"),
          stat_of(&in, "files_in_memory"));
    CHECK(run_child(self, &in, "--check", 1) == 0, "%s: the evicted file on disk differs", name);
    CHECK(log_has(&in, "no byte lost"), "%s: the log does not say the move completed after the failed link", name);
    CHECK(stop(&in) == 0, "%s: the daemon did not exit 0", name);
    finish(&in);
}

/* The link keeps failing: the punched bytes go back into the memfd once it
 * takes them (two ENOMEMs first), the file stays in memory, intact. */
static void case_enomem_back(const char *self, const char *name)
{
    struct inst in = {.pid = -1};
    CHECK(start_in(&in, self, name, "linkat:ENOMEM,pwrite:ENOMEM:on=mem:times=2,sendfile:ENOMEM:on=mem:times=2",
                   1) == 0,
          "%s: no daemon or no file", name);
    if (in.pid < 0)
        return finish(&in);
    shrink(&in);
    CHECK(stat_of(&in, "evictions") == 0 && stat_of(&in, "files_in_memory") == 1 &&
              stat_of(&in, "eviction_failures") == 1,
          "%s: evictions %lld, in memory %lld, failures %lld after one shrink, want 0, 1 and 1", name,
          stat_of(&in, "evictions"), stat_of(&in, "files_in_memory"), stat_of(&in, "eviction_failures"));
    CHECK(!on_disk(&in), "%s: a failed eviction left a file on disk", name);
    CHECK(run_child(self, &in, "--check", 0) == 0, "%s: bytes lost after the failed eviction", name);
    CHECK(log_has(&in, "restored to memory"), "%s: the log does not say the punched bytes were restored", name);
    finish(&in);
}

/* Writeback at exit that fails once: tried again, the file is on disk, exit 0. */
static void case_writeback_retried(const char *self)
{
    struct inst in = {.pid = -1};
    CHECK(start(&in, self, "wb-once", "sendfile:EIO:on=disk:times=1,pwrite:EIO:on=disk:times=1") == 0, "no daemon");
    if (in.pid < 0)
        return finish(&in);
    CHECK(!on_disk(&in), "wb-once: the file is on disk before the exit");
    int st = stop(&in);
    CHECK(st == 0, "wb-once: exit status %d after a writeback that worked the second time", st);
    CHECK(run_child(self, &in, "--check", 1) == 0, "wb-once: the file written back at exit is missing or differs");
    finish(&in);
}

/* Writeback at exit that cannot work (the link fails every time): the stats
 * of the shutdown reply count it, the log names it, the exit status is 3. */
static void case_writeback_fails(const char *self)
{
    struct inst in = {.pid = -1};
    CHECK(start(&in, self, "wb-fail", "linkat:ENOSPC") == 0, "no daemon");
    if (in.pid < 0)
        return finish(&in);
    char buf[8192];
    control(&in, "{\"v\":1,\"id\":1,\"op\":\"shutdown\"}\n", buf, sizeof buf);
    CHECK(strstr(buf, "\"writeback_failed\":1") != NULL, "wb-fail: shutdown reply without writeback_failed 1: %s",
          buf);
    int st = 0;
    waitpid(in.pid, &st, 0);
    in.pid = -1;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "wb-fail: exit status %#x, want 3", st);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s (%u bytes) could not be written back", in.file, FILE_BYTES);
    CHECK(log_has(&in, want), "wb-fail: the log does not name the file: want \"%s\"", want);
    CHECK(log_has(&in, "1 could not be written"), "wb-fail: the log has no count of unwritten files");
    finish(&in);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strncmp(argv[1], "--", 2) == 0)
        return child(argc, argv);
    shim = getenv("EPHEMERA_SHIM") ? getenv("EPHEMERA_SHIM") : "build/libephemera.so";
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = 0;

    /* Disk full in the second 4 MiB chunk (the first already punched out of the memfd), or in
     * the second O_DIRECT block when the write-through copy goes direct. */
    case_fail_then_retry(self, "enospc", "sendfile:ENOSPC:on=disk:after=1:times=1,pwrite:ENOSPC:on=disk:after=1:times=1", 1);
    /* A one-off I/O error from sendfile is an error, not a refusal of sendfile: the eviction
     * fails and is retried (it used to be taken for a refusal, and the copy went on by
     * read/write as if nothing had happened). */
    case_fail_then_retry(self, "eio-send", "sendfile:EIO:on=disk:after=1:times=1", 1);
    /* An I/O error setting the length, then one linking the complete file at its name. */
    case_fail_then_retry(self, "eio", "ftruncate:EIO:on=disk:times=1,linkat:EIO:times=1", 2);
    case_transparent(self, "eintr",
                     "sendfile:EINTR:on=disk:times=3,pwrite:EINTR:on=disk:times=3,ftruncate:EINTR:on=disk:times=2,"
                     "linkat:EINTR:times=2,sync_file_range:EINTR:on=disk:times=2,pread:EINTR:times=2");
    case_transparent(self, "short", "sendfile:short:on=disk:times=4,pwrite:short:on=disk:times=2");
    case_writeback_retried(self);
    case_writeback_fails(self);
    /* Memory pressure after the punch (issue 9, the guard test's lost bytes); only with a
     * cgroup does an eviction punch as it copies (write-through with O_DIRECT from the bounce
     * buffer).  And a short read of the memfd in that copy, which took the rest of the chunk
     * for zeros and punched it. */
    case_enomem_forward(self, "enomem-fwd-cg");
    case_enomem_back(self, "enomem-back-cg");
    case_transparent_in(self, "short-read-cg", "pread:short:on=mem:times=8", 1);
    printf("daemon_faults_test: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
