/*
 * chmod, chown, utimensat and setxattr by path find their file in memory and
 * change it under the inode lock (shim/intercept_names.c); an xattr call makes
 * its change on the memfd, held through the daemon's fd (fp_hold).  The lock
 * keeps a move out, but not the daemon's collection: a slot with no name that
 * the daemon saw nobody open is freed without it (daemon/namespace.c,
 * ns_maybe_gc), the slot goes to the next file made, and its memfd back to the
 * stock once ns_stock_recycle found no extended attribute on it.  So when
 * another process unlinked the file's last name while the call was between its
 * check and its change, the change could land on the next file: its mode,
 * owner or times, or an attribute on its memfd, set either on the new file
 * directly or on the memfd while it waited in the stock for one.
 *
 * The moment is made exact with the shim's fault build: the caller stops with
 * the file checked and locked (attr-locked), or for the xattr calls with the
 * memfd held as well (xattr-held).  The test unlinks the file meanwhile, gives
 * the daemon a second to collect it, and makes 32 new files in a new process
 * (a batch: the slot and memfd freed last are lent first), either before the
 * caller goes on (the slot and memfd taken over while it waits) or after it
 * (an attribute would sit on the memfd in the stock: the daemon's own memfds
 * are looked at too).  No new file may show the call's effect, no memfd of the
 * daemon may carry its attribute, and the caller must get what tmpfs gives for
 * a file unlinked during the call: 0 or ENOENT.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/proto.h"

#include "check.h"
#include "shimmed.h"

#define BOUND_S 20.0
#define NEW_FILES EPH_POOL_FIRST
#define WHEN 1000000000 /* the times utimensat sets */

static pid_t daemon_pid;
static char run_dir[PATH_MAX];

/* ---- the calls, and how their effect shows -------------------------------- */

struct op {
    const char *name;
    const char *stall;           /* where the caller stops (EPHEMERA_LOCK_STALL) */
    int root_only;
    int (*call)(const char *p);  /* 0, or -1 with errno */
    int (*clean)(const char *p); /* 1 when a new file shows no trace of the call */
};

static int chmod_call(const char *p) { return chmod(p, 0600); }
static int mode_clean(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && (st.st_mode & 07777) == 0644;
}

static int chown_call(const char *p) { return chown(p, 4321, 4322); }
static int owner_clean(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_uid == geteuid() && st.st_gid == getegid();
}

static int utimensat_call(const char *p)
{
    struct timespec ts[2] = {{WHEN, 0}, {WHEN, 0}};
    return utimensat(AT_FDCWD, p, ts, 0);
}
static int times_clean(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_mtim.tv_sec != WHEN && st.st_atim.tv_sec != WHEN;
}

static int setxattr_call(const char *p) { return setxattr(p, "user.stray", "dead", 4, 0); }
static int lsetxattr_call(const char *p) { return lsetxattr(p, "user.stray", "dead", 4, 0); }
static int xattr_clean(const char *p)
{
    char list[256];
    return listxattr(p, list, sizeof list) == 0;
}

static const struct op ops[] = {
    {"chmod", "attr-locked", 0, chmod_call, mode_clean},
    {"chown", "attr-locked", 1, chown_call, owner_clean},
    {"utimensat", "attr-locked", 0, utimensat_call, times_clean},
    {"setxattr", "xattr-held", 0, setxattr_call, xattr_clean},
    {"lsetxattr", "xattr-held", 0, lsetxattr_call, xattr_clean},
};

/* ---- the daemon's memfds -------------------------------------------------- */

/* How many of the daemon's fds carry user.stray (the kernel's answer, past the shim). */
static int daemon_fds_with_stray(void)
{
    ssize_t (*libc_getxattr)(const char *, const char *, void *, size_t) =
        (ssize_t (*)(const char *, const char *, void *, size_t))libc_sym("getxattr");
    char dir[64], p[PATH_MAX];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)daemon_pid);
    DIR *d = opendir(dir);
    if (!d || !libc_getxattr)
        return d ? (closedir(d), -1) : -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            n += libc_getxattr(p, "user.stray", NULL, 0) >= 0;
        }
    closedir(d);
    return n;
}

/* ---- one call ------------------------------------------------------------- */

/* A new process makes the NEW_FILES files g[i], of n bytes each: 1 when it did. */
static int make_new_files(char g[][PATH_MAX], size_t n)
{
    pid_t maker = fork();
    if (maker == 0) {
        int ok = 1;
        for (int i = 0; i < NEW_FILES; i++)
            ok &= file_put(g[i], 'g', n);
        _exit(ok ? 0 : 1);
    }
    double took;
    return maker > 0 && wait_bounded_s(maker, BOUND_S, &took) == 0;
}

/* 1 once files_in_memory reads want, within ms milliseconds. */
static int in_memory_within(long long want, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (ephd_stat(run_dir, "files_in_memory") == want)
            return 1;
        pause_ms(10);
    }
    return 0;
}

/* When the new files are made: while the caller waits (TAKEN), or after it went on (STOCK). */
enum when { TAKEN, STOCK };
static const char *const when_names[] = {"made while the call waited", "made after it"};

static void one(const char *root, int k, enum when when)
{
    const struct op *op = &ops[k];
    char f[PATH_MAX], g[NEW_FILES][PATH_MAX];
    snprintf(f, sizeof f, "%s/f%d-%d", root, k, (int)when);
    for (int i = 0; i < NEW_FILES; i++)
        snprintf(g[i], sizeof g[i], "%s/g%d-%d-%d", root, k, (int)when, i);

    /* f is made by a process that exits: nobody holds an fd of it, so its unlink leaves the slot to
     * the daemon's collection (not a home of ours). */
    long long before = ephd_stat(run_dir, "files_in_memory");
    pid_t maker = fork();
    if (maker == 0)
        _exit(file_put(f, 'f', 4096) ? 0 : 1);
    double took;
    CHECK(wait_bounded_s(maker, BOUND_S, &took) == 0, "%s: the process making %s failed", op->name, f);
    CHECK(ephd_stat_becomes(run_dir, "files_in_memory", before + 1), "%s: %s is not in memory", op->name, f);
    struct stat fs;
    CHECK(stat(f, &fs) == 0, "stat %s: %s", f, strerror(errno));

    pid_t caller = fork();
    if (caller == 0) {
        setenv("EPHEMERA_LOCK_STALL", op->stall, 1);
        int r = op->call(f);
        _exit(r == 0 ? 0 : errno == ENOENT ? 10 : 11);
    }
    int stopped = wait_stopped(caller);
    CHECK(stopped, "%s: the caller did not stop at %s", op->name, op->stall);
    /* Another process (this one) unlinks f's last name; the daemon collects it within a second
     * unless the call holds it. */
    CHECK(unlink(f) == 0, "unlink %s: %s", f, strerror(errno));
    int freed = stopped && in_memory_within(before, 1000);
    if (when == TAKEN)
        CHECK(make_new_files(g, 4096), "%s: making the new files: %s", op->name, strerror(errno));
    int st = continue_until_exit_s(caller, BOUND_S);
    CHECK(st == 0 || st == 10, "%s of a file unlinked during the call: status %d (0: done, 10: ENOENT, 11: another "
          "error)", op->name, st);
    CHECK(ephd_stat_becomes(run_dir, "files_in_memory", before + (when == TAKEN ? NEW_FILES : 0)),
          "%s: the daemon did not free %s after the call (%lld files in memory)", op->name, f,
          ephd_stat(run_dir, "files_in_memory"));
    int stray = op->clean == xattr_clean ? daemon_fds_with_stray() : 0;
    CHECK(stray == 0, "%s: %d of the daemon's memfds carry the attribute the call set on %s", op->name, stray, f);
    if (when == STOCK)
        CHECK(make_new_files(g, 4096), "%s: making the new files: %s", op->name, strerror(errno));

    int clean = 0, took_memfd = -1;
    for (int i = 0; i < NEW_FILES; i++) {
        struct stat gs;
        int ok = op->clean(g[i]);
        CHECK(ok, "%s: %s, made after %s was unlinked, shows the call's effect", op->name, g[i], f);
        clean += ok;
        if (stat(g[i], &gs) == 0 && (uint32_t)gs.st_ino == (uint32_t)fs.st_ino)
            took_memfd = i;
    }
    printf("attrgc_test: %-9s (new files %s): the daemon %s f while it waited; the call %s; %d of %d new files "
           "clean%s%s\n",
           op->name, when_names[when], freed ? "freed" : "kept", st == 0 ? "succeeded" : st == 10 ? "got ENOENT" : "failed",
           clean, NEW_FILES, took_memfd >= 0 ? ", one on f's memfd" : "",
           stray > 0 ? ", and the attribute sat on a memfd of the daemon's" : "");
    for (int i = 0; i < NEW_FILES; i++)
        unlink(g[i]);
    CHECK(ephd_stat_becomes(run_dir, "files_in_memory", before), "%s: the new files were not freed", op->name);
}

/* ---- st_blocks of a file with holes ---------------------------------------- */

/*
 * A stat by path of a file with holes asks the kernel how many blocks its
 * memfd holds through the daemon's fd number (shim/fp_stat.c,
 * allocated_blocks), which is the file's only while its slot is.  The caller
 * stops with the number read (blocks-stat); meanwhile f's last name goes, the
 * daemon collects it and a new process makes 32 files of 64 KiB, one on the
 * memfd f had.  The answer must be f's own (one page written: 8 blocks) or
 * ENOENT, never the 128 blocks of the new file.  The kernel does answer 128
 * then; the stat looks at the slot's generation after its fill and starts
 * again when it moved (nsv_stat, statx), finding the name gone.  (An fstat asks
 * through the caller's own fd, below.)
 */
static void blocks_by_path(const char *root)
{
    char f[PATH_MAX], g[NEW_FILES][PATH_MAX];
    snprintf(f, sizeof f, "%s/h", root);
    for (int i = 0; i < NEW_FILES; i++)
        snprintf(g[i], sizeof g[i], "%s/gh%d", root, i);
    long long before = ephd_stat(run_dir, "files_in_memory");
    pid_t maker = fork();
    if (maker == 0) {
        static char page[4096];
        memset(page, 'h', sizeof page);
        int fd = open(f, O_CREAT | O_RDWR | O_TRUNC, 0644);
        _exit(fd >= 0 && pwrite(fd, page, sizeof page, 512 * 1024) == (ssize_t)sizeof page && close(fd) == 0 ? 0 : 1);
    }
    double took;
    CHECK(wait_bounded_s(maker, BOUND_S, &took) == 0, "the process making %s failed", f);
    struct stat fs;
    CHECK(stat(f, &fs) == 0 && fs.st_blocks == 8, "%s, one page written past a hole: %lld blocks, not 8", f,
          (long long)fs.st_blocks);

    pid_t caller = fork();
    if (caller == 0) {
        setenv("EPHEMERA_LOCK_STALL", "blocks-stat", 1);
        struct stat st;
        int r = stat(f, &st);
        if (r == 0 && st.st_blocks != fs.st_blocks)
            fprintf(stderr, "attrgc_test: stat of %s: %lld blocks\n", f, (long long)st.st_blocks);
        _exit(r == 0 ? (st.st_blocks == fs.st_blocks ? 0 : 12) : errno == ENOENT ? 10 : 11);
    }
    int stopped = wait_stopped(caller);
    CHECK(stopped, "the stat of %s did not stop at blocks-stat", f);
    CHECK(unlink(f) == 0, "unlink %s: %s", f, strerror(errno));
    int freed = stopped && in_memory_within(before, 1000);
    CHECK(make_new_files(g, 64 * 1024), "making the new files: %s", strerror(errno));
    int took_memfd = 0;
    for (int i = 0; i < NEW_FILES; i++) {
        struct stat gs;
        took_memfd |= stat(g[i], &gs) == 0 && (uint32_t)gs.st_ino == (uint32_t)fs.st_ino;
    }
    int st = continue_until_exit_s(caller, BOUND_S);
    CHECK(st == 0 || st == 10, "stat of a file with holes whose slot went meanwhile: status %d (0: its blocks, "
          "10: ENOENT, 12: another number)", st);
    printf("attrgc_test: stat      of a file with holes: the daemon %s it while the call waited%s; %s\n",
           freed ? "freed" : "kept", took_memfd ? ", a new file took its memfd" : "",
           st == 0 ? "its own blocks" : st == 10 ? "ENOENT" : st == 12 ? "ANOTHER FILE'S BLOCKS" : "failed");
    for (int i = 0; i < NEW_FILES; i++)
        unlink(g[i]);
    CHECK(ephd_stat_becomes(run_dir, "files_in_memory", before), "the files of the blocks case were not freed");
}

/*
 * The same count through an fd held by another user than the daemon's, who may
 * not open the daemon's fds (/proc/<pid>/fd needs ptrace access): fstat and
 * statx(AT_EMPTY_PATH) of a child that dropped to uid 65534 with the fd
 * inherited ask the kernel through that fd, and count as tmpfs (8 blocks), not
 * the size's pages.
 */
static void blocks_other_user(const char *root)
{
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/hu", root);
    static char page[4096];
    memset(page, 'h', sizeof page);
    int fd = open(f, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0 && pwrite(fd, page, sizeof page, 512 * 1024) == (ssize_t)sizeof page, "writing %s: %s", f,
          strerror(errno));
    pid_t user = fd >= 0 ? fork() : -1;
    if (user == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(13);
        struct stat st;
        struct statx sx;
        if (fstat(fd, &st) != 0 || statx(fd, "", AT_EMPTY_PATH, STATX_BLOCKS, &sx) != 0)
            _exit(11);
        if (st.st_blocks != 8 || sx.stx_blocks != 8)
            fprintf(stderr, "attrgc_test: uid 65534's fstat of %s: %lld blocks, statx %llu\n", f,
                    (long long)st.st_blocks, (unsigned long long)sx.stx_blocks);
        _exit(st.st_blocks == 8 && sx.stx_blocks == 8 ? 0 : 12);
    }
    double took;
    int st = user > 0 ? wait_bounded_s(user, BOUND_S, &took) : -1;
    CHECK(st == 0, "fstat and statx of a file with holes by uid 65534: status %d (12: not its 8 blocks)", st);
    printf("attrgc_test: fstat     of a file with holes by another user: %s\n",
           st == 0 ? "its own blocks" : st == 12 ? "NOT ITS BLOCKS" : "failed");
    if (fd >= 0)
        close(fd);
    unlink(f);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    daemon_pid = shimmed_daemon(root, run_dir);
    if (daemon_pid <= 0)
        return 1;
    umask(022);
    for (int k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++) {
        if (ops[k].root_only && geteuid() != 0) {
            printf("attrgc_test: %s skipped (not root)\n", ops[k].name);
            continue;
        }
        one(root, k, TAKEN);
        one(root, k, STOCK);
    }
    blocks_by_path(root);
    if (geteuid() == 0)
        blocks_other_user(root);
    printf("attrgc_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* The shim's stall points (attr-locked, xattr-held) are in its fault build. */
    return shimmed_main_faulty(argc, argv, "attrgc", child, NULL, 1);
}
