/*
 * A stand-in (shim/nsdirfd.c: an fd of a directory that lives in memory) whose directory gets
 * its disk twin while *another* process renames a directory above it.  The fd's owner sees
 * neither: it knows the path it read at its last use, and once the daemon gave the directory its
 * twin the slot that named it is gone.  Before region version 10 the fd then looked for its
 * directory at the old path, found nothing and took it for removed: a create through it failed
 * with ENOENT where tmpfs makes the file (docs/ARCHITECTURE.md, "The last path must be the
 * twin's", still open there).  Each case is forced, in both orders:
 *
 *   twin, then kernel rename:  another process makes a symlink in the directory (its twin and
 *                              its ancestors'), then another renames the top one on disk (the
 *                              shim's own kernel rename: nothing of it is in memory any more);
 *   twin, then daemon rename:  the same with a directory in memory left beside the twin, so the
 *                              rename goes to the daemon, which moves the names in memory below;
 *   memory rename, then twin:  another process renames the top directory while it is all in
 *                              memory (one MOVETREE record), then another gives the twin;
 *   daemon move, then twin:    the top directory is on disk, the stand-in's below it in memory:
 *                              another process's rename moves it in the region (the daemon's
 *                              ns_rename_prefix), then another gives it its twin.
 *
 *   exchange, either order:    the same with RENAME_EXCHANGE of the top directory and another.
 *
 * Each must create the file in the directory the fd was opened on, as tmpfs does.  `--budget 0`
 * only keeps the daemon's evictions out of the way (the twins here are the test's own).
 *
 * The ring went round (branch twinring): the twin's record was one of a ring of 64 until region
 * version 12, so more than 64 twins after the stand-in's (one `dt_twin_all` of many directories)
 * left it no record, and it looked at the last path it saw.  Each case below gives 100 more
 * directories their twins in the same call as the stand-in's (shorter names are twinned first):
 *
 *   ring, then rename:         the twins, then another process's kernel rename of the top one;
 *   rename, then ring:         another process's rename in memory, then the twins;
 *   a copy by dup:             the stand-in dup'ed, the first fd closed, then the twins and the
 *                              rename: the copy has a hold of its own;
 *   a fork child's copy:       the parent closes its fd right after the fork, then the twins and
 *                              the rename: the child's copy creates the file.
 *
 * And the holds themselves: given back at close (1,000 rounds of open, dup, close), and 600 fds
 * of one directory at once (more than the 512 holds: the rest take the old way) all create.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"
#include "standin.h"

/* renameat2(from, to, flags) in another process (its shim's hooks are its own): 0 or -1. */
static int elsewhere_rename(const char *from, const char *to, unsigned flags)
{
    pid_t p = fork();
    if (p == 0)
        _exit(renameat2(AT_FDCWD, from, AT_FDCWD, to, flags) == 0 ? 0 : 1);
    int st = 0;
    return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* root/<t>a/c/f3 in memory, the stand-in on f3; the twin given; root/<t>a renamed to <t>b by
 * another process; keep: a directory in memory left beside the twin (the daemon's rename). */
static void twin_then_rename(const char *root, const char *run, const char *t, int keep)
{
    char a[PATH_MAX], c[PATH_MAX + 8], f3[PATH_MAX + 16], m[PATH_MAX + 8], b[PATH_MAX], made[PATH_MAX + 32];
    char what[64];
    snprintf(what, sizeof what, "twin, then %s rename", keep ? "daemon" : "kernel");
    snprintf(a, sizeof a, "%s/%sa", root, t);
    snprintf(c, sizeof c, "%s/c", a);
    snprintf(f3, sizeof f3, "%s/f3", c);
    snprintf(m, sizeof m, "%s/m", a);
    snprintf(b, sizeof b, "%s/%sb", root, t);
    snprintf(made, sizeof made, "%s/c/f3/f2", b);
    CHECK(mkdir(a, 0755) == 0 && mkdir(c, 0755) == 0 && mkdir(f3, 0755) == 0, "%s: mkdir: %s", what, strerror(errno));
    int fd = open_standin(f3, "a/c/f3");
    if (fd < 0)
        return;
    long long twins = ephd_stat(run, "dir_twins");
    CHECK(twin_elsewhere(f3) == 0, "%s: another process's symlink in a/c/f3 failed", what);
    CHECK(ephd_stat(run, "dir_twins") >= twins + 3, "%s: a, a/c and a/c/f3 did not get their twins", what);
    if (keep)
        CHECK(mkdir(m, 0755) == 0, "%s: mkdir a/m: %s", what, strerror(errno));
    CHECK(elsewhere_rename(a, b, 0) == 0, "%s: another process's rename failed", what);
    create_through(fd, "f2", O_WRONLY, made, what);
}

static void rename_then_twin(const char *root, const char *run, int on_disk)
{
    char a[PATH_MAX], c[PATH_MAX + 8], f3[PATH_MAX + 16], b[PATH_MAX], bf3[PATH_MAX + 16], made[PATH_MAX + 32];
    const char *what = on_disk ? "daemon move, then twin" : "memory rename, then twin";
    snprintf(a, sizeof a, "%s/%s", root, on_disk ? "xa" : "ma");
    snprintf(c, sizeof c, "%s/c", a);
    snprintf(f3, sizeof f3, "%s/f3", c);
    snprintf(b, sizeof b, "%s/%s", root, on_disk ? "xb" : "mb");
    snprintf(bf3, sizeof bf3, "%s/c/f3", b);
    snprintf(made, sizeof made, "%s/f2", bf3);
    CHECK(mkdir(a, 0755) == 0 && mkdir(c, 0755) == 0, "%s: mkdir: %s", what, strerror(errno));
    if (on_disk)
        CHECK(twin_elsewhere(c) == 0, "%s: another process's symlink in a/c failed", what);
    CHECK(mkdir(f3, 0755) == 0, "%s: mkdir a/c/f3: %s", what, strerror(errno));
    int fd = open_standin(f3, "a/c/f3");
    if (fd < 0)
        return;
    long long twins = ephd_stat(run, "dir_twins");
    CHECK(elsewhere_rename(a, b, 0) == 0, "%s: another process's rename failed", what);
    CHECK(ephd_stat(run, "dir_twins") == twins, "%s: the rename made twins: a/c/f3 did not move in memory", what);
    CHECK(twin_elsewhere(bf3) == 0, "%s: another process's symlink in b/c/f3 failed", what);
    CHECK(ephd_stat(run, "dir_twins") > twins, "%s: b/c/f3 did not get its twin", what);
    create_through(fd, "f2", O_WRONLY, made, what);
}

/* RENAME_EXCHANGE of a (holding f3, the stand-in's) and b by another process, with the twin of
 * a/f3 before it (twin_first) or after it (then the exchange, made by the twin way, leaves f3 in
 * memory below and the daemon moves it in the region). */
static void exchanged(const char *root, int twin_first)
{
    char a[PATH_MAX], f3[PATH_MAX + 8], b[PATH_MAX], bf3[PATH_MAX + 8], made[PATH_MAX + 16];
    const char *what = twin_first ? "twin, then exchange" : "exchange, then twin";
    snprintf(a, sizeof a, "%s/%s", root, twin_first ? "ya" : "za");
    snprintf(b, sizeof b, "%s/%s", root, twin_first ? "yb" : "zb");
    snprintf(f3, sizeof f3, "%s/f3", a);
    snprintf(bf3, sizeof bf3, "%s/f3", b);
    snprintf(made, sizeof made, "%s/f2", bf3);
    CHECK(mkdir(a, 0755) == 0 && mkdir(f3, 0755) == 0 && mkdir(b, 0755) == 0, "%s: mkdir: %s", what, strerror(errno));
    int fd = open_standin(f3, "a/f3");
    if (fd < 0)
        return;
    if (twin_first)
        CHECK(twin_elsewhere(f3) == 0, "%s: another process's symlink in a/f3 failed", what);
    CHECK(elsewhere_rename(a, b, RENAME_EXCHANGE) == 0, "%s: another process's exchange failed", what);
    if (!twin_first)
        CHECK(twin_elsewhere(bf3) == 0, "%s: another process's symlink in b/f3 failed", what);
    create_through(fd, "f2", O_WRONLY, made, what);
}

/* n directories in memory under root/<name>, for a twin of everything to give more than a ring's
 * worth of twins. */
static void many_dirs(const char *root, const char *name, int n, const char *what)
{
    char d[PATH_MAX], e[PATH_MAX + 16];
    snprintf(d, sizeof d, "%s/%s", root, name);
    int ok = mkdir(d, 0755) == 0;
    for (int i = 0; ok && i < n; i++) {
        snprintf(e, sizeof e, "%s/d%d", d, i);
        ok = mkdir(e, 0755) == 0;
    }
    CHECK(ok, "%s: mkdir %s/...: %s", what, name, strerror(errno));
}

enum ring_case { RING_THEN_RENAME, RENAME_THEN_RING, RING_DUP, RING_FORK };

/* root/<t>a/c/f3 in memory and a stand-in on it; root/<t>many/d0..d99 in memory; then, in the
 * order of the case, another process's rename of <t>a to <t>b and another's twin of everything (the
 * stand-in's first: its name is the shortest but its ancestors').  The create through the fd (its
 * copy, for dup and fork) must make <t>b/c/f3/f2. */
static void ring_round(const char *root, const char *run, enum ring_case how)
{
    static const char *const names[] = {"ring, then rename", "rename, then ring", "ring, a copy by dup",
                                        "ring, a fork child's copy"};
    static const char *const tags[] = {"q", "r", "s", "u"};
    const char *what = names[how], *t = tags[how];
    char a[PATH_MAX], c[PATH_MAX + 8], f3[PATH_MAX + 16], b[PATH_MAX], made[PATH_MAX + 32], many[16];
    snprintf(a, sizeof a, "%s/%sa", root, t);
    snprintf(c, sizeof c, "%s/c", a);
    snprintf(f3, sizeof f3, "%s/f3", c);
    snprintf(b, sizeof b, "%s/%sb", root, t);
    snprintf(made, sizeof made, "%s/c/f3/f2", b);
    snprintf(many, sizeof many, "%smany", t);
    CHECK(mkdir(a, 0755) == 0 && mkdir(c, 0755) == 0 && mkdir(f3, 0755) == 0, "%s: mkdir: %s", what, strerror(errno));
    int fd = open_standin(f3, "a/c/f3");
    if (fd < 0)
        return;
    int go[2] = {-1, -1};
    pid_t kid = -1;
    if (how == RING_DUP) {
        int copy = dup(fd);
        CHECK(copy >= 0 && is_standin(copy), "%s: dup: %s", what, strerror(errno));
        close(fd);
        fd = copy;
    } else if (how == RING_FORK) {
        CHECK(pipe(go) == 0, "%s: pipe: %s", what, strerror(errno));
        kid = fork();
        if (kid == 0) {
            char x;
            close(go[1]);
            if (read(go[0], &x, 1) != 1)
                _exit(3);
            int nf = openat(fd, "f2", O_CREAT | O_WRONLY, 0600);
            _exit(nf >= 0 ? 0 : errno == ENOENT ? 4 : 5);
        }
        close(go[0]);
        close(fd); /* at once: the child's copy alone stands for a/c/f3 from here on */
    }
    many_dirs(root, many, 100, what);
    long long twins = ephd_stat(run, "dir_twins");
    if (how == RENAME_THEN_RING) {
        CHECK(elsewhere_rename(a, b, 0) == 0, "%s: another process's rename failed", what);
        CHECK(ephd_stat(run, "dir_twins") == twins, "%s: the rename made twins: a/c/f3 did not move in memory", what);
    }
    CHECK(twin_elsewhere(how == RENAME_THEN_RING ? b : a) == 0, "%s: another process's symlink failed", what);
    CHECK(ephd_stat(run, "dir_twins") >= twins + 104, "%s: %lld twins, not the 104 of a, a/c, a/c/f3 and many/*",
          what, ephd_stat(run, "dir_twins") - twins);
    if (how != RENAME_THEN_RING)
        CHECK(elsewhere_rename(a, b, 0) == 0, "%s: another process's rename failed", what);
    if (how != RING_FORK) {
        create_through(fd, "f2", O_WRONLY, made, what);
        return;
    }
    int st = 0;
    CHECK(write(go[1], "g", 1) == 1, "%s: write to the child: %s", what, strerror(errno));
    close(go[1]);
    CHECK(kid > 0 && waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "%s: the child's creat f2 through its copy of the stand-in: exit %d (4: ENOENT; tmpfs: made)", what,
          WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    struct stat sb;
    CHECK(stat(made, &sb) == 0 && S_ISREG(sb.st_mode), "%s: %s is not there: %s", what, made, strerror(errno));
}

/* The holds (region version 12) come back: 1,000 rounds of open, dup and close leave the next open a
 * stand-in (a hold leaked at each close would have run the 512 out).  Then 600 fds of one directory
 * at once: past the 512th the open takes the old way (the twin), and every fd still creates where
 * tmpfs does. */
static void holds(const char *root, const char *run)
{
    const char *what = "holds";
    char d[PATH_MAX], f[PATH_MAX + 16];
    snprintf(d, sizeof d, "%s/ho", root);
    CHECK(mkdir(d, 0755) == 0, "%s: mkdir: %s", what, strerror(errno));
    int ok = 1;
    for (int i = 0; i < 1000 && ok; i++) {
        int fd = open(d, O_RDONLY | O_DIRECTORY), c = fd >= 0 ? dup(fd) : -1;
        ok = fd >= 0 && c >= 0 && is_standin(fd) && is_standin(c);
        close(c);
        close(fd);
    }
    CHECK(ok, "%s: a round of open, dup and close gave no stand-in", what);
    int fd = open(d, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0 && is_standin(fd), "%s: after 1,000 rounds the open gives no stand-in (holds not given back?)", what);
    close(fd);
    enum { N = 600 };
    static int fds[N];
    int opened = 0;
    long long twins = ephd_stat(run, "dir_twins");
    for (int i = 0; i < N; i++)
        opened += (fds[i] = open(d, O_RDONLY | O_DIRECTORY)) >= 0;
    CHECK(opened == N, "%s: %d of %d opens: %s", what, opened, N, strerror(errno));
    CHECK(ephd_stat(run, "dir_twins") > twins, "%s: %d opens at once made no twin: more holds than 512?", what, N);
    for (int i = 0; i < N; i += 99) {
        snprintf(f, sizeof f, "f%d", i);
        int nf = fds[i] >= 0 ? openat(fds[i], f, O_CREAT | O_WRONLY, 0600) : -1;
        CHECK(nf >= 0, "%s: creat %s through fd %d of %d: %s", what, f, i, N, strerror(errno));
        if (nf >= 0)
            close(nf);
        snprintf(f, sizeof f, "%s/f%d", d, i);
        struct stat st;
        CHECK(stat(f, &st) == 0 && S_ISREG(st.st_mode), "%s: %s is not there: %s", what, f, strerror(errno));
    }
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX];
    shimmed_run_dir(root, run);
    twin_then_rename(root, run, "k", 0);
    twin_then_rename(root, run, "d", 1);
    rename_then_twin(root, run, 0);
    rename_then_twin(root, run, 1);
    exchanged(root, 1);
    exchanged(root, 0);
    ring_round(root, run, RING_THEN_RENAME);
    ring_round(root, run, RENAME_THEN_RING);
    ring_round(root, run, RING_DUP);
    ring_round(root, run, RING_FORK);
    holds(root, run);
    printf("standinrename_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    return standin_main(argc, argv, "standinrename", child);
}
