/*
 * The kernel's walk errors through a symlink to an in-memory file that is moved to disk meanwhile
 * (shim/nsview.c, walk_error).
 *
 * The soak of dd2adc5 (docs/BENCHMARKS.md, multix3 evicting seed 146144258, process c2, op 3138)
 * had `rename("b/c/", "a/c/f0")` with a a symlink to ../f2, a file in memory: tmpfs says ENOTDIR
 * (the walk to a/c meets a file), the shim said ENOENT once.  walk_error asked the disk first
 * (stat through the symlink: ENOENT, the file was only in memory), then memory (the symlink's
 * target); the daemon's eviction of the file came in between, naming it on disk only after the
 * stat and taking it out of memory before the look, so neither look saw it: ENOENT.
 *
 * Forced with the shim's fault build: EPHEMERA_NS_STALL=walk-link stops the caller (SIGSTOP)
 * right after the disk's ENOENT through a symlink, before it asks memory; this process then moves
 * every file to disk (the daemon's shrink to 0, then its budget back) and lets it go on.  The
 * rename must fail as on tmpfs, with ENOTDIR, from a directory on disk and from a file in memory.
 * (Not from a directory in memory: a symlink under a root gives every one its disk twin, and a
 * directory made while one is there is made on disk, shim/nsdir.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "stalled.h"


static char run_dir[PATH_MAX];

/* A file made in memory (checked), with a few bytes. */
static int make_in_memory(const char *p)
{
    int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "bytes", 5) == 5 && close(fd) == 0, "create %s: %s", p, strerror(errno));
    struct stat st;
    int mem = stat(p, &st) == 0 && (st.st_ino & INO_IN_MEMORY) && !disk_has(p);
    CHECK(mem, "%s is not in memory: the case shows nothing", p);
    return mem;
}

enum call { C_RENAME_DIR, C_RENAME_FILE, C_MKDIR, C_CREATE, C_LINK, C_STAT, C_N };
static const char *const names[C_N] = {"rename of a directory on disk", "rename of a file in memory", "mkdir",
                                       "open O_CREAT", "link of a file in memory", "stat"};

/* In the caller: the call onto dst (a name below the symlink).  0, or -1 with errno. */
static int do_call(enum call c, const char *dir, const char *file, const char *dst)
{
    struct stat st;
    switch (c) {
    case C_RENAME_DIR:
        return rename(dir, dst);
    case C_RENAME_FILE:
        return rename(file, dst);
    case C_MKDIR:
        return mkdir(dst, 0755);
    case C_CREATE: {
        int f = open(dst, O_CREAT | O_EXCL | O_WRONLY, 0600);
        return f < 0 ? -1 : close(f);
    }
    case C_LINK:
        return link(file, dst);
    case C_STAT:
        return stat(dst, &st);
    default:
        return -1;
    }
}

/*
 * The call onto "<root>/l<c>/c/f0", l<c> a symlink to f<c>, a file in memory that goes to disk
 * while the caller stops at walk-link.  tmpfs: ENOTDIR.
 */
static void one_case(enum call c, const char *root, const char *dir)
{
    char f[PATH_MAX], l[PATH_MAX], g[PATH_MAX], target[32], dst[PATH_MAX];
    snprintf(target, sizeof target, "f%d", (int)c);
    snprintf(f, sizeof f, "%s/f%d", root, (int)c);
    snprintf(l, sizeof l, "%s/l%d", root, (int)c);
    snprintf(g, sizeof g, "%s/g%d", root, (int)c);
    snprintf(dst, sizeof dst, "%s/l%d/c/f0", root, (int)c);
    if (!make_in_memory(f) || !make_in_memory(g))
        return;
    CHECK(symlink(target, l) == 0, "symlink %s: %s", l, strerror(errno));
    pid_t p = fork();
    if (p == 0) {
        setenv("EPHEMERA_NS_STALL", "walk-link", 1);
        _exit(stall_exit_code(do_call(c, dir, g, dst)));
    }
    CHECK(p > 0, "fork: %s", strerror(errno));
    if (p < 0)
        return;
    struct to_disk moved = {run_dir, names[c], f, NULL};
    int code, stops = stall_run(p, evict_at_first_stop, &moved, &code);
    CHECK(stops >= 1, "%s: the call never stopped at walk-link: the case shows nothing (%s)", names[c], stall_said(code));
    CHECK(code == ENOTDIR, "%s onto %s: %s, tmpfs ENOTDIR (%d stops)", names[c], dst, stall_said(code), stops);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    /* a directory on disk (glibc's mkdir, past the shim), renamed with a trailing slash as in the soak */
    char d[PATH_MAX], dir[PATH_MAX];
    snprintf(d, sizeof d, "%s/d", root);
    snprintf(dir, sizeof dir, "%s/d/", root);
    int (*real_mkdir)(const char *, mode_t) = (int (*)(const char *, mode_t))libc_sym("mkdir");
    CHECK(real_mkdir && real_mkdir(d, 0755) == 0 && disk_has(d), "mkdir %s on disk: %s", d, strerror(errno));
    for (int c = 0; c < C_N; c++)
        one_case((enum call)c, root, dir);
    printf("walklink_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return shimmed_main_faulty(argc, argv, "walklink", child, NULL, 1);
}
