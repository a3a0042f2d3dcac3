/*
 * walk_test.c - glob(3) and nftw(3)/ftw(3) under the shim.
 *
 *   walk_test            (runs itself under the shim: see shimmed.h)
 *
 * Two checks, both in the shimmed child:
 *  1. The shim's own nftw/ftw against glibc's (looked up in libc.so.6) on a disk
 *     tree with symlinks, a loop, a dangling link, and callbacks that skip
 *     and stop: the traces (paths, type flags, level, base, cwd) and return
 *     values must be identical, for every flag combination; and on a tree
 *     deeper than PATH_MAX that the callback removes, for several nopenfd.
 *  2. The same tree built under a managed root, files in memory, against a
 *     copy on disk: glob and nftw must list the in-memory files exactly as
 *     the disk ones (glibc's own glob and nftw, which cannot see them, must
 *     not: that shows the check has teeth).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "trace.h"

typedef int (*nftw_fn)(const char *, int (*)(const char *, const struct stat *, int, struct FTW *), int, int);
typedef int (*ftw_fn)(const char *, int (*)(const char *, const struct stat *, int), int);
typedef int (*glob_fn)(const char *, int, int (*)(const char *, int), glob_t *);

static size_t strip; /* prefix of reported paths to hide (the scratch directory) */
static int cb_flags;
static int allow_stop; /* only under the start that tests FTW_STOP: it would hide the rest */
static int deep;       /* a tree deeper than PATH_MAX: lengths instead of paths, and remove as rm does */

static int on_nftw(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    char cwd[PATH_MAX] = "";
    if (cb_flags & FTW_CHDIR) {
        if (!getcwd(cwd, sizeof cwd))
            strcpy(cwd, "?");
    }
    const char *base = path + f->base;
    if (deep) {
        int r = 0;
        /* glibc's nftw moves by its internal fchdir, which the shim does not see: let it see the cwd */
        if ((cb_flags & FTW_CHDIR) && chdir(".") < 0)
            emit("chdir(.): %s\n", strerror(errno));
        if (flag == FTW_DP)
            r = rmdir((cb_flags & FTW_CHDIR) ? base : path);
        else if (flag == FTW_F)
            r = unlink((cb_flags & FTW_CHDIR) ? base : path);
        emit("len=%zu flag=%d level=%d base=%.4s cwd=%s rm=%d/%d\n", strlen(path), flag, f->level, base,
             cwd[0] == '?' ? "?" : "ok", r, r < 0 ? errno : 0);
        return 0;
    }
    emit("%s flag=%d level=%d base=%s size=%lld cwd=%s\n", strlen(path) >= strip ? path + strip : path,
         flag, f->level, base, flag == FTW_F ? (long long)st->st_size : -1LL,
         strlen(cwd) >= strip ? cwd + strip : cwd);
    if (!(cb_flags & FTW_ACTIONRETVAL))
        return 0;
    if (strcmp(base, "skipsub") == 0)
        return FTW_SKIP_SUBTREE;
    if (strcmp(base, "skipsib") == 0)
        return FTW_SKIP_SIBLINGS;
    if (strcmp(base, "stop") == 0 && allow_stop)
        return FTW_STOP;
    return FTW_CONTINUE;
}

static int on_ftw(const char *path, const struct stat *st, int flag)
{
    emit("%s flag=%d size=%lld\n", strlen(path) >= strip ? path + strip : path, flag,
         flag == FTW_F ? (long long)st->st_size : -1LL);
    return 0;
}

static void build_tree(const char *t)
{
    tree_common(t);
    file_put_text(TP("%s/z/skipsib", t), "s");
    mkdir(TP("%s/s", t), 0755);
    file_put_text(TP("%s/s/stop", t), "stop");
    file_put_text(TP("%s/s/after", t), "after");
}


static int run_nftw_fds(nftw_fn f, const char *start, int flags, size_t strip_len, int nopenfd)
{
    tlen = 0;
    trace[0] = '\0';
    strip = strip_len;
    cb_flags = flags;
    errno = 0;
    int r = f(start, on_nftw, nopenfd, flags);
    emit("=> %d errno=%d\n", r, r < 0 ? errno : 0);
    return r;
}

static int run_nftw(nftw_fn f, const char *start, int flags, size_t strip_len)
{
    return run_nftw_fds(f, start, flags, strip_len, 4);
}

static const int FLAG_SETS[] = {
    0, FTW_PHYS, FTW_DEPTH, FTW_PHYS | FTW_DEPTH, FTW_CHDIR, FTW_CHDIR | FTW_DEPTH, FTW_MOUNT,
    FTW_ACTIONRETVAL, FTW_ACTIONRETVAL | FTW_DEPTH, FTW_ACTIONRETVAL | FTW_CHDIR | FTW_PHYS,
    FTW_ACTIONRETVAL | FTW_CHDIR | FTW_DEPTH, FTW_PHYS | FTW_CHDIR | FTW_DEPTH | FTW_MOUNT,
};
#define NFLAGS (sizeof FLAG_SETS / sizeof FLAG_SETS[0])

/* 1. ours against glibc's on a disk tree */
static void check_against_glibc(const char *disk)
{
    nftw_fn real_nftw = (nftw_fn)libc_sym("nftw");
    ftw_fn real_ftw = (ftw_fn)libc_sym("ftw");
    CHECK(real_nftw && real_ftw, "glibc's nftw/ftw not found");
    if (!real_nftw || !real_ftw)
        return;
    char t[PATH_MAX], start[PATH_MAX + 8];
    snprintf(t, sizeof t, "%s/tree", disk);
    build_tree(t);
    char cwd0[PATH_MAX];
    CHECK(getcwd(cwd0, sizeof cwd0) != NULL, "getcwd");
    const char *starts[] = {"%s", "%s/", "%s/b", "%s/a", "%s/b/dang", "%s/b/lnk", "%s/missing", "%s/b/loop", "%s/s"};
    for (size_t s = 0; s < sizeof starts / sizeof starts[0]; s++) {
        snprintf(start, sizeof start, starts[s], t);
        allow_stop = strcmp(starts[s], "%s/s") == 0;
        for (size_t i = 0; i < NFLAGS; i++) {
            int ra = run_nftw(real_nftw, start, FLAG_SETS[i], strlen(disk));
            char *want = strdup(trace);
            char c1[PATH_MAX];
            CHECK(getcwd(c1, sizeof c1) && strcmp(c1, cwd0) == 0, "glibc left the cwd at %s", c1);
            int rb = run_nftw(nftw, start, FLAG_SETS[i], strlen(disk));
            CHECK(ra == rb && strcmp(want, trace) == 0, "nftw(%s, flags %#x): glibc\n%s-- shim\n%s", start,
                  FLAG_SETS[i], want, trace);
            CHECK(getcwd(c1, sizeof c1) && strcmp(c1, cwd0) == 0, "nftw left the cwd at %s", c1);
            free(want);
        }
        tlen = 0;
        strip = strlen(disk);
        int ra = real_ftw(start, on_ftw, 4);
        emit("=> %d\n", ra);
        char *want = strdup(trace);
        tlen = 0;
        int rb = ftw(start, on_ftw, 4);
        emit("=> %d\n", rb);
        CHECK(strcmp(want, trace) == 0, "ftw(%s): glibc\n%s-- shim\n%s", start, want, trace);
        free(want);
    }
    errno = 0;
    CHECK(nftw(t, on_nftw, 4, 0x4000) == -1 && errno == EINVAL, "unknown flag: EINVAL");
    errno = 0;
    CHECK(nftw("", on_nftw, 4, 0) == -1 && errno == ENOENT, "empty path: ENOENT");
}

/* A chain of directories of 200-byte names, two files in each, built by mkdir + chdir. */
static void build_deep(const char *t, int levels)
{
    char name[201];
    memset(name, 'd', 200);
    name[200] = '\0';
    int top = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(mkdir(t, 0755) == 0 && chdir(t) == 0, "mkdir %s: %s", t, strerror(errno));
    for (int i = 0; i < levels; i++) {
        file_put_text("f", "x");
        CHECK(mkdir(name, 0755) == 0 && chdir(name) == 0, "level %d: %s", i, strerror(errno));
        file_put_text("g", "y");
    }
    CHECK(fchdir(top) == 0, "back to the start");
    close(top);
}

/*
 * 1b. A tree deeper than PATH_MAX, removed by the callback as a tree-removal
 * tool does: glibc reaches the deep entries through its directory descriptors
 * (up to nopenfd of them) and by full path beyond; ours must report and fail
 * exactly the same.
 */
static void check_deep(const char *disk)
{
    nftw_fn real_nftw = (nftw_fn)libc_sym("nftw");
    if (!real_nftw)
        return;
    static const int flags[] = {FTW_PHYS | FTW_DEPTH, FTW_DEPTH, FTW_PHYS | FTW_DEPTH | FTW_CHDIR, FTW_PHYS};
    static const int fds[] = {1, 4, 64};
    char t[PATH_MAX];
    deep = 1;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        for (size_t j = 0; j < sizeof fds / sizeof fds[0]; j++) {
            /* glibc 2.36 itself aborts here (ftw.c:540, `startp != data->dirbuf`), without the shim too */
            if ((flags[i] & FTW_CHDIR) && fds[j] > 1)
                continue;
            snprintf(t, sizeof t, "%s/deep-glibc", disk);
            build_deep(t, 30);
            run_nftw_fds(real_nftw, t, flags[i], 0, fds[j]);
            char *want = strdup(trace);
            snprintf(t, sizeof t, "%s/deep-shim_", disk);
            build_deep(t, 30);
            run_nftw_fds(nftw, t, flags[i], 0, fds[j]);
            CHECK(strcmp(want, trace) == 0, "deep nftw(flags %#x, nopenfd %d): glibc\n%s-- shim\n%s", flags[i], fds[j],
                  want, trace);
            free(want);
            /* what the walk could not remove, the kernel's own walk (rm -r) does */
            char cmd[PATH_MAX + 64];
            snprintf(cmd, sizeof cmd, "rm -rf '%s/deep-glibc' '%s/deep-shim_'", disk, disk);
            CHECK(system(cmd) == 0, "%s", cmd);
        }
    }
    deep = 0;
}

static char *glob_list(glob_fn g, const char *pat, int flags, size_t strip_len)
{
    glob_t gl;
    memset(&gl, 0, sizeof gl);
    int r = g(pat, flags, NULL, &gl);
    size_t cap = 64;
    for (size_t i = 0; r == 0 && i < gl.gl_pathc; i++)
        cap += strlen(gl.gl_pathv[i]) + 2;
    char *out = malloc(cap);
    snprintf(out, cap, "r=%d:", r);
    for (size_t i = 0; r == 0 && i < gl.gl_pathc; i++) {
        const char *p = gl.gl_pathv[i];
        strcat(out, " ");
        strcat(out, strlen(p) >= strip_len ? p + strip_len : p);
    }
    if (r == 0 || r == GLOB_NOMATCH)
        globfree(&gl);
    return out;
}

/* 2. in-memory files against the same tree on disk */
static void check_memory_vs_disk(const char *root, const char *disk)
{
    char mt[PATH_MAX], dt[PATH_MAX];
    snprintf(mt, sizeof mt, "%s/t", root);
    snprintf(dt, sizeof dt, "%s/t", disk);
    build_tree(mt);
    build_tree(dt);
    /* make sure the files really are in memory: not on disk under their names */
    allow_stop = 0;
    char probe[PATH_MAX + 8];
    snprintf(probe, sizeof probe, "%s/b/c", mt);
    int (*real_stat)(const char *, struct stat *) = (int (*)(const char *, struct stat *))libc_sym("stat");
    struct stat st;
    CHECK(real_stat && real_stat(probe, &st) < 0, "%s is on disk: the shim did not keep it in memory", probe);

    static const char *pats[] = {"%s/t/*", "%s/t/b/*", "%s/t/*/*", "%s/t/b/[cd]*", "%s/t/*/e",
                                 "%s/t/b/c", "%s/t/z/?", "%s/t/nothing*", "%s/t/*/*/*"};
    static const int gflags[] = {0, GLOB_MARK, GLOB_ONLYDIR, GLOB_NOCHECK, GLOB_NOSORT | GLOB_MARK};
    char pm[PATH_MAX + 32], pd[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        for (size_t j = 0; j < sizeof gflags / sizeof gflags[0]; j++) {
            snprintf(pm, sizeof pm, pats[i], root);
            snprintf(pd, sizeof pd, pats[i], disk);
            char *a = glob_list(glob, pm, gflags[j], strlen(root));
            char *b = glob_list(glob, pd, gflags[j], strlen(disk));
            if (gflags[j] & GLOB_NOSORT) {
                /* order is the directory's: compare as sets */
                for (char *s = a; *s; s++) if (*s == ' ') *s = '\n';
                for (char *s = b; *s; s++) if (*s == ' ') *s = '\n';
                char *sa = sorted(a), *sb = sorted(b);
                free(a);
                free(b);
                a = sa;
                b = sb;
            }
            CHECK(strcmp(a, b) == 0, "glob(%s, %#x): memory [%s] disk [%s]", pats[i], gflags[j], a, b);
            free(a);
            free(b);
        }
    }
    /* GLOB_ALTDIRFUNC from the caller is respected: glibc's readdir sees only the disk */
    {
        glob_t gl;
        memset(&gl, 0, sizeof gl);
        gl.gl_opendir = (void *(*)(const char *))libc_sym("opendir");
        gl.gl_readdir = (struct dirent * (*)(void *)) libc_sym("readdir");
        gl.gl_closedir = (void (*)(void *))libc_sym("closedir");
        gl.gl_lstat = lstat;
        gl.gl_stat = stat;
        snprintf(pm, sizeof pm, "%s/t/b/*", root);
        int r = glob(pm, GLOB_ALTDIRFUNC, NULL, &gl);
        CHECK(r == 0 && gl.gl_pathc == 5, "caller's GLOB_ALTDIRFUNC: r=%d n=%zu (want the 5 disk entries)", r,
              gl.gl_pathc);
        if (r == 0)
            globfree(&gl);
    }
    /* glibc's own glob misses the in-memory files: the comparison above has teeth */
    glob_fn real_glob = (glob_fn)libc_sym("glob");
    snprintf(pm, sizeof pm, "%s/t/b/*", root);
    snprintf(pd, sizeof pd, "%s/t/b/*", disk);
    char *a = glob_list(real_glob, pm, 0, strlen(root)), *b = glob_list(glob, pd, 0, strlen(disk));
    CHECK(strcmp(a, b) != 0, "glibc's glob saw the in-memory files too (%s)", a);
    free(a);
    free(b);

    for (size_t i = 0; i < NFLAGS; i++) {
        if (FLAG_SETS[i] & FTW_ACTIONRETVAL)
            continue; /* skips depend on readdir order */
        run_nftw(nftw, mt, FLAG_SETS[i], strlen(root));
        char *m = sorted(trace);
        run_nftw(nftw, dt, FLAG_SETS[i], strlen(disk));
        char *d = sorted(trace);
        CHECK(strcmp(m, d) == 0, "nftw flags %#x: memory\n%s-- disk\n%s", FLAG_SETS[i], m, d);
        free(m);
        free(d);
    }
    nftw_fn real_nftw = (nftw_fn)libc_sym("nftw");
    run_nftw(real_nftw, mt, FTW_PHYS, strlen(root));
    char *m = sorted(trace);
    run_nftw(nftw, dt, FTW_PHYS, strlen(disk));
    char *d = sorted(trace);
    CHECK(strcmp(m, d) != 0, "glibc's nftw saw the in-memory files too");
    free(m);
    free(d);
}

static int child_main(const char *root, const char *disk)
{
    check_against_glibc(disk);
    check_deep(disk);
    check_memory_vs_disk(root, disk);
    printf("walk_test: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}

int main(int argc, char **argv)
{
    return shimmed_main(argc, argv, "walk_test", child_main);
}
