/*
 * Directories made in memory (shim/nsdir.c) and their disk twins (daemon/dirtwin.c):
 *
 * - mkdir, rmdir and stat run in memory: the disk under the root never sees the directory (read
 *   with libc's own lstat, past the shim), the daemon counts them (dirs_made_in_memory) and makes
 *   no twin; st_mode, st_nlink, st_size, st_blocks of the directory and st_nlink and times of its
 *   parent are tmpfs's; EEXIST, ENOTEMPTY, ENOTDIR, ENOENT, EINVAL where tmpfs gives them; the
 *   umask, the sticky bit and a set-gid parent (its group and S_ISGID inherited);
 * - another user (setuid in a child): EACCES in a directory it may not write, a directory of its
 *   own in a sticky one, and EPERM when it removes another user's directory there; EACCES from
 *   stat and statx of a directory inside one it may not search;
 * - a listing of the parent shows the directory (DT_DIR); a listing of the directory itself makes
 *   no twin (a stand-in fd, shim/nsdirfd.c), a chdir into it does: on disk with the mode, owner and
 *   mtime the program saw;
 * - a process SIGKILLed inside the namespace lock during a mkdir or an rmdir (EPHEMERA_NS_STALL of
 *   the fault build: before the commit, after the first store, after all of them) leaves the
 *   state before or after, the daemon's ns-check consistent, and others carry on; the same for a
 *   rename of a directory holding a subtree, killed before its commit, in the middle of its
 *   MOVETREE step and after it (branch dirtwin); and for RENAME_EXCHANGE of two directory trees
 *   in memory, killed before its commit, in each of its three XTREE steps, between two, and after
 *   them (branch exchange).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

static char run_dir[PATH_MAX];

static void control(const char *op, char *buf, size_t n)
{
    char req[128];
    snprintf(req, sizeof req, "{\"v\":1,\"id\":1,\"op\":\"%s\"}\n", op);
    ephd_control(run_dir, req, buf, n);
}

static void control_bytes(const char *op, long long bytes, char *buf, size_t n)
{
    char req[160];
    snprintf(req, sizeof req, "{\"v\":1,\"id\":1,\"op\":\"%s\",\"bytes\":%lld}\n", op, bytes);
    ephd_control(run_dir, req, buf, n);
}

static void ns_consistent(const char *when)
{
    char buf[4096];
    control("ns-check", buf, sizeof buf);
    CHECK(strstr(buf, "\"consistent\":true") != NULL, "ns-check %s: %s", when, buf);
}

/* The disk's own answer, past the shim. */
static int disk_lstat(const char *p, struct stat *st)
{
    int (*real)(const char *, struct stat *) = (int (*)(const char *, struct stat *))libc_sym("lstat");
    return real ? real(p, st) : -1;
}

static int err_of(int r)
{
    return r < 0 ? errno : 0;
}

static void semantics(const char *root)
{
    char d[PATH_MAX], e[PATH_MAX], f[PATH_MAX], x[PATH_MAX];
    struct stat st, rst0, rst;
    long long made0 = ephd_stat(run_dir, "dirs_made_in_memory"), twins0 = ephd_stat(run_dir, "dir_twins");
    CHECK(stat(root, &rst0) == 0, "stat root: %s", strerror(errno));
    umask(022);
    snprintf(d, sizeof d, "%s/d", root);
    snprintf(e, sizeof e, "%s/d/e", root);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    /* ---- in memory: mkdir, rmdir, stat, and the parent's listing ---- */
    CHECK(mkdir(d, 0777) == 0, "mkdir d: %s", strerror(errno));
    CHECK(stat(d, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755 && st.st_nlink == 2 &&
              st.st_size == 40 && st.st_blocks == 0 && st.st_uid == getuid(),
          "stat d: mode %o nlink %lu size %lld blocks %lld", st.st_mode, (unsigned long)st.st_nlink,
          (long long)st.st_size, (long long)st.st_blocks);
    CHECK(disk_lstat(d, &st) < 0 && errno == ENOENT, "d is on disk: it should live in memory only");
    CHECK(stat(root, &rst) == 0 && rst.st_nlink == rst0.st_nlink + 1, "root nlink %lu, was %lu",
          (unsigned long)rst.st_nlink, (unsigned long)rst0.st_nlink);
    CHECK(rst.st_mtim.tv_sec > rst0.st_mtim.tv_sec ||
              (rst.st_mtim.tv_sec == rst0.st_mtim.tv_sec && rst.st_mtim.tv_nsec > rst0.st_mtim.tv_nsec),
          "the root's mtime did not move with mkdir");
    CHECK(err_of(mkdir(d, 0755)) == EEXIST, "mkdir d again: %s", strerror(errno));
    CHECK(mkdir(e, 0700) == 0, "mkdir d/e: %s", strerror(errno));
    CHECK(stat(d, &st) == 0 && st.st_nlink == 3 && st.st_size == 60, "d with e: nlink %lu size %lld",
          (unsigned long)st.st_nlink, (long long)st.st_size);
    CHECK(lstat(e, &st) == 0 && (st.st_mode & 07777) == 0700, "lstat d/e: mode %o", st.st_mode);
    snprintf(x, sizeof x, "%s/d/e/", root);
    CHECK(stat(x, &st) == 0 && S_ISDIR(st.st_mode), "stat d/e/: %s", strerror(errno));
    CHECK(err_of(rmdir(d)) == ENOTEMPTY, "rmdir of a non-empty d: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/d/nope", root);
    CHECK(err_of(stat(x, &st)) == ENOENT, "stat of a missing name: %s", strerror(errno));
    CHECK(rmdir(e) == 0, "rmdir d/e: %s", strerror(errno));
    CHECK(stat(d, &st) == 0 && st.st_nlink == 2 && st.st_size == 40, "d emptied: nlink %lu size %lld",
          (unsigned long)st.st_nlink, (long long)st.st_size);
    /* sticky and set-gid: kept from the mode, and inherited from the parent */
    umask(0);
    snprintf(x, sizeof x, "%s/sticky", root);
    CHECK(mkdir(x, 01777) == 0 && stat(x, &st) == 0 && (st.st_mode & 07777) == 01777, "sticky: mode %o", st.st_mode);
    umask(022);
    CHECK(chmod(root, 02775) == 0 && chown(root, 0, 4242) == 0, "set-gid root: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/sgid", root);
    CHECK(mkdir(x, 0755) == 0 && stat(x, &st) == 0 && (st.st_mode & S_ISGID) && st.st_gid == 4242,
          "under a set-gid parent: mode %o gid %u", st.st_mode, st.st_gid);
    snprintf(f, sizeof f, "%s/sgid/g", root);
    CHECK(mkdir(f, 0700) == 0 && stat(f, &st) == 0 && (st.st_mode & 07777) == 02700 && st.st_gid == 4242,
          "under an in-memory set-gid parent: mode %o gid %u", st.st_mode, st.st_gid);
    CHECK(rmdir(f) == 0 && rmdir(x) == 0 && chmod(root, 0755) == 0 && chown(root, 0, 0) == 0, "cleanup sgid");
    /* a file where a directory would go, and a directory where a file is */
    snprintf(f, sizeof f, "%s/file", root);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create file: %s", strerror(errno));
    close(fd);
    CHECK(err_of(mkdir(f, 0755)) == EEXIST, "mkdir over a file: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/file/sub", root);
    CHECK(err_of(mkdir(x, 0755)) == ENOTDIR, "mkdir under a file: %s", strerror(errno));
    CHECK(err_of(rmdir(f)) == ENOTDIR, "rmdir of a file: %s", strerror(errno));
    int seen = 0;
    DIR *dir = opendir(root);
    struct dirent *de;
    while (dir && (de = readdir(dir)) != NULL)
        if (!strcmp(de->d_name, "d"))
            seen = de->d_type == DT_DIR ? 1 : -1;
    if (dir)
        closedir(dir);
    CHECK(seen == 1, "readdir of the root: d %s", seen ? "not DT_DIR" : "missing");
    CHECK(ephd_stat(run_dir, "dirs_made_in_memory") - made0 >= 5, "dirs_made_in_memory %lld (was %lld)",
          ephd_stat(run_dir, "dirs_made_in_memory"), made0);
    CHECK(ephd_stat(run_dir, "dir_twins") == twins0, "a twin was made (%lld, was %lld) though only mkdir, rmdir and stat ran",
          ephd_stat(run_dir, "dir_twins"), twins0);
    /* ---- a listing of it is served on a stand-in fd: no twin (shim/nsdirfd.c) ---- */
    struct stat mem;
    CHECK(stat(d, &mem) == 0 && stat(root, &rst) == 0, "stat d");
    dir = opendir(d);
    CHECK(dir != NULL, "opendir d: %s", strerror(errno));
    int n = 0;
    while (dir && (de = readdir(dir)) != NULL)
        n++;
    if (dir)
        closedir(dir);
    CHECK(n == 2, "d lists %d names, want . and ..", n);
    CHECK(ephd_stat(run_dir, "dir_twins") == twins0 && disk_lstat(d, &st) < 0, "opendir of d made its twin");
    /* ---- chdir into it makes the disk twin, as the program saw the directory ---- */
    int here = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(here >= 0 && chdir(d) == 0 && fchdir(here) == 0, "chdir d and back: %s", strerror(errno));
    if (here >= 0)
        close(here);
    CHECK(disk_lstat(d, &st) == 0 && S_ISDIR(st.st_mode) && st.st_mode == mem.st_mode && st.st_uid == mem.st_uid &&
              st.st_gid == mem.st_gid && st.st_mtim.tv_sec == mem.st_mtim.tv_sec &&
              st.st_mtim.tv_nsec == mem.st_mtim.tv_nsec,
          "the twin of d: mode %o uid %u mtime %lld.%09ld, the program saw %o %u %lld.%09ld", st.st_mode, st.st_uid,
          (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, mem.st_mode, mem.st_uid, (long long)mem.st_mtim.tv_sec,
          mem.st_mtim.tv_nsec);
    CHECK(stat(root, &st) == 0 && st.st_mtim.tv_sec == rst.st_mtim.tv_sec && st.st_mtim.tv_nsec == rst.st_mtim.tv_nsec,
          "the twin's mkdir moved the root's mtime: the program's mkdir did, long before");
    CHECK(ephd_stat(run_dir, "dir_twins") > twins0, "no twin counted");
    snprintf(f, sizeof f, "%s/d/inside", root);
    fd = open(f, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0, "create d/inside: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
    /* ---- errors that meet the kernel (the twins answer) ---- */
    CHECK(mkdir(e, 0755) == 0, "mkdir d/e again: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/d/e/.", root);
    CHECK(err_of(rmdir(x)) == EINVAL, "rmdir d/e/.: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/d/e/nope/z", root);
    CHECK(err_of(mkdir(x, 0755)) == ENOENT, "mkdir under a missing directory: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/d/e/nope", root);
    CHECK(err_of(rmdir(x)) == ENOENT, "rmdir of a missing name: %s", strerror(errno));
    CHECK(err_of(unlink(e)) == EISDIR, "unlink of a directory: %s", strerror(errno));
    CHECK(rmdir(e) == 0, "rmdir d/e: %s", strerror(errno));
    /* ---- another user, in a child: the kernel's permission rules ---- */
    char up[PATH_MAX];
    snprintf(up, sizeof up, "%.*s", (int)(strrchr(root, '/') - root), root);
    CHECK(chmod(up, 0755) == 0, "chmod %s: %s", up, strerror(errno)); /* the other user must reach the root */
    snprintf(x, sizeof x, "%s/mine", root);
    CHECK(mkdir(x, 0755) == 0, "mkdir mine: %s", strerror(errno));
    snprintf(f, sizeof f, "%s/sticky/r", root);
    CHECK(mkdir(f, 0755) == 0, "mkdir sticky/r: %s", strerror(errno));
    char priv[PATH_MAX], privsub[PATH_MAX + 8];
    snprintf(priv, sizeof priv, "%s/priv", root);
    snprintf(privsub, sizeof privsub, "%s/sub", priv);
    CHECK(mkdir(priv, 0700) == 0 && mkdir(privsub, 0755) == 0, "mkdir priv/sub: %s", strerror(errno));
    pid_t c = fork();
    if (c == 0) {
        char p[PATH_MAX];
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(90);
        snprintf(p, sizeof p, "%s/mine/x", root);
        if (err_of(mkdir(p, 0755)) != EACCES)
            _exit(91);
        snprintf(p, sizeof p, "%s/sticky/n", root);
        if (mkdir(p, 0755) != 0)
            _exit(92);
        snprintf(p, sizeof p, "%s/sticky/r", root);
        if (err_of(rmdir(p)) != EPERM)
            _exit(93);
        snprintf(p, sizeof p, "%s/mine", root);
        if (err_of(rmdir(p)) != EACCES)
            _exit(94);
        snprintf(p, sizeof p, "%s/sticky/n", root);
        if (rmdir(p) != 0)
            _exit(95);
        /* A directory in memory inside one this user may not search: the kernel's walk says
         * EACCES to stat and statx (the shim answered from memory; seed 3008 of difftest users). */
        struct stat sst;
        struct statx sx;
        if (err_of(lstat(privsub, &sst)) != EACCES || err_of(stat(privsub, &sst)) != EACCES)
            _exit(96);
        if (err_of(statx(AT_FDCWD, privsub, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx)) != EACCES)
            _exit(97);
        _exit(0);
    }
    int status = 0;
    waitpid(c, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another user's mkdir/rmdir: exit %d (see the child)",
          WEXITSTATUS(status));
    struct stat pst;
    CHECK(disk_lstat(priv, &pst) < 0 && errno == ENOENT, "priv got a disk twin: the other user's stat made one");
    CHECK(rmdir(privsub) == 0 && rmdir(priv) == 0, "rmdir priv/sub: %s", strerror(errno));
    CHECK(rmdir(f) == 0 && rmdir(x) == 0 && unlink(d) != 0, "cleanup users");
    snprintf(f, sizeof f, "%s/d/inside", root);
    CHECK(unlink(f) == 0 && rmdir(d) == 0, "remove d: %s", strerror(errno));
    ns_consistent("after the semantics");
}

static void call_mkdir(const char *a, const char *b)
{
    (void)b;
    (void)mkdir(a, 0755);
}

static void call_rmdir(const char *a, const char *b)
{
    (void)b;
    (void)rmdir(a);
}

static void call_rename(const char *a, const char *b)
{
    (void)rename(a, b);
}

/* call(a, b) in a child that stops at `point` inside the namespace lock (EPHEMERA_NS_STALL of the
 * fault build), then is SIGKILLed there: 1 if it stopped. */
static int killed_at(const char *point, const char *when, void (*call)(const char *, const char *), const char *a,
                     const char *b)
{
    pid_t v = fork();
    if (v == 0) {
        setenv("EPHEMERA_NS_STALL", point, 1);
        call(a, b);
        _exit(3);
    }
    int stopped = killed_when_stopped(v);
    CHECK(stopped, "%s: the victim did not stop inside the lock", when);
    return stopped;
}

/* A mkdir (or rmdir) stopped at `point` inside the lock, killed: the state before or after. */
static void kill_inside(const char *root, int is_mkdir, const char *point, int committed)
{
    char a[PATH_MAX], other[PATH_MAX], when[128];
    struct stat st;
    snprintf(a, sizeof a, "%s/%s-%s", root, is_mkdir ? "mkdir" : "rmdir", point);
    snprintf(when, sizeof when, "after killing a %s at %s", is_mkdir ? "mkdir" : "rmdir", point);
    if (!is_mkdir)
        CHECK(mkdir(a, 0755) == 0, "mkdir %s: %s", a, strerror(errno));
    if (!killed_at(point, when, is_mkdir ? call_mkdir : call_rmdir, a, NULL))
        return;
    /* The next locker recovers: a mkdir of our own takes the lock. */
    snprintf(other, sizeof other, "%s/after-%s-%s", root, is_mkdir ? "mkdir" : "rmdir", point);
    CHECK(mkdir(other, 0700) == 0, "%s: mkdir of another: %s", when, strerror(errno));
    int there = stat(a, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 2;
    CHECK(there == (is_mkdir ? committed : !committed), "%s: the directory %s", when, there ? "exists" : "is missing");
    ns_consistent(when);
    /* Others keep going: remove what is left. */
    CHECK(rmdir(other) == 0, "%s: rmdir of another: %s", when, strerror(errno));
    if (there)
        CHECK(rmdir(a) == 0, "%s: rmdir of the survivor: %s", when, strerror(errno));
    CHECK(stat(a, &st) < 0 && errno == ENOENT, "%s: still there", when);
}

/*
 * A rename of a directory in memory holding a subtree (one record: its MOVETREE step renames every
 * slot below it, shim/nsdir.c) stopped at `point` inside the lock and killed: the next locker finds
 * every name at the old place (killed before the commit) or every name at the new one (after it:
 * the record is redone, the slot the victim had taken off its chain included), the files' bytes,
 * the counts and the daemon's ns-check intact.  "movetree" stops with two slots renamed and the
 * third off every chain.
 */
static ssize_t slurp(const char *path, char *buf, size_t n);
static void rename_killed(const char *root, const char *point, int committed)
{
    char from[PATH_MAX], to[PATH_MAX], p[PATH_MAX + 32], when[128];
    static const char *const names[] = {"", "/f1", "/s", "/s/f2", "/s/t", "/s/t/f3"};
    struct stat st;
    snprintf(from, sizeof from, "%s/mv-%s", root, point);
    snprintf(to, sizeof to, "%s/moved-%s", root, point);
    snprintf(when, sizeof when, "after killing a directory's rename at %s", point);
    /* (after the eviction above, creates ask the daemon until EPH_PLACE_RECENT files were made in
     * memory again, and its CREATE gives the file's directory its twin: warm-up files in the root) */
    for (int k = 0; k < 6; k++) {
        snprintf(p, sizeof p, "%s/warm-%s-%d", root, point, k);
        CHECK(file_put(p, 'w', 1) && unlink(p) == 0, "%s: warm-up file: %s", when, strerror(errno));
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        snprintf(p, sizeof p, "%s%s", from, names[k]);
        if (strchr(names[k], 'f')) {
            int fd = open(p, O_CREAT | O_WRONLY, 0644);
            CHECK(fd >= 0 && write(fd, names[k], strlen(names[k])) == (ssize_t)strlen(names[k]), "create %s: %s", p,
                  strerror(errno));
            if (fd >= 0)
                close(fd);
        } else {
            CHECK(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
        }
    }
    CHECK(disk_lstat(from, &st) < 0 && errno == ENOENT, "%s: the tree is not in memory", when);
    long long renamed0 = ephd_stat(run_dir, "dirs_renamed_in_memory");
    if (!killed_at(point, when, call_rename, from, to))
        return;
    /* The next locker recovers: a mkdir of our own takes the lock. */
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/after-mv-%s", root, point);
    CHECK(mkdir(other, 0700) == 0 && rmdir(other) == 0, "%s: mkdir and rmdir of another: %s", when, strerror(errno));
    const char *here = committed ? to : from, *gone = committed ? from : to;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char buf[64] = "";
        snprintf(p, sizeof p, "%s%s", here, names[k]);
        if (strchr(names[k], 'f'))
            CHECK(slurp(p, buf, sizeof buf - 1) == (ssize_t)strlen(names[k]) && memcmp(buf, names[k], strlen(names[k])) == 0,
                  "%s: %s: %s", when, p, strerror(errno));
        else
            CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s: %s is no directory: %s", when, p, strerror(errno));
        snprintf(p, sizeof p, "%s%s", gone, names[k]);
        CHECK(lstat(p, &st) < 0 && errno == ENOENT, "%s: %s is there too", when, p);
    }
    snprintf(p, sizeof p, "%s/s", here);
    CHECK(stat(p, &st) == 0 && st.st_nlink == 3 && st.st_size == 80, "%s: %s nlink %lu size %lld (tmpfs: 3, 80)", when, p,
          (unsigned long)st.st_nlink, (long long)st.st_size);
    CHECK(ephd_stat(run_dir, "dirs_renamed_in_memory") == renamed0, "%s: the victim's count moved", when);
    ns_consistent(when);
    /* Others keep going: the tree moves again, then goes. */
    CHECK(rename(here, gone) == 0, "%s: rename back: %s", when, strerror(errno));
    CHECK(ephd_stat(run_dir, "dirs_renamed_in_memory") == renamed0 + 1, "%s: the rename back was not made in memory", when);
    for (size_t k = sizeof names / sizeof names[0]; k-- > 0;) {
        snprintf(p, sizeof p, "%s%s", gone, names[k]);
        CHECK((strchr(names[k], 'f') ? unlink(p) : rmdir(p)) == 0, "%s: remove %s: %s", when, p, strerror(errno));
    }
    ns_consistent(when);
}

static void call_exchange(const char *a, const char *b)
{
    (void)renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

/* Is every name of tree `names` (directories, and files holding `tag` plus their name) below
 * top, with the bytes?  The failures are checks. */
static void tree_there(const char *top, const char *const *names, size_t n, const char *tag, const char *when)
{
    char p[PATH_MAX + 32], want[64];
    struct stat st;
    for (size_t k = 0; k < n; k++) {
        char buf[64] = "";
        snprintf(p, sizeof p, "%s%s", top, names[k]);
        snprintf(want, sizeof want, "%s%s", tag, names[k]);
        if (strchr(names[k], 'f'))
            CHECK(slurp(p, buf, sizeof buf - 1) == (ssize_t)strlen(want) && memcmp(buf, want, strlen(want)) == 0,
                  "%s: %s holds \"%s\", want \"%s\" (%s)", when, p, buf, want, strerror(errno));
        else
            CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s: %s is no directory: %s", when, p, strerror(errno));
    }
}

/*
 * RENAME_EXCHANGE of two directory trees in memory (one record of three XTREE steps: a's subtree
 * parked, b's to a, the parked one to b; nslock.h) stopped at `point` inside the lock and killed:
 * the next locker finds both trees where they were (killed before the commit) or exchanged (after
 * it: the steps done are skipped and the one in flight finished), with the bytes, the counts and
 * the daemon's ns-check intact.  "exchangeN" stops in step N with two slots of it moved and the
 * third off every chain; "dirxchg-applying" after step 1.  bfile: b is a file in memory (its step
 * moves one slot: no stop in step 2), and the root's st_nlink is unchanged (same parent).
 */
static void exchange_killed(const char *root, const char *point, int committed, int bfile)
{
    char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX + 32], when[160];
    static const char *const an[] = {"", "/f1", "/s", "/s/f2", "/s/t"};
    static const char *const bn[] = {"", "/f3", "/u", "/u/f4", "/u/f5", "/u/v"};
    static const char *const bf[] = {"f"}; /* (a name holding 'f': a file) */
    const char *const *bnames = bfile ? bf : bn;
    size_t na = sizeof an / sizeof an[0], nb = bfile ? 1 : sizeof bn / sizeof bn[0];
    struct stat st, rst0;
    snprintf(a, sizeof a, "%s/xa-%s-%d", root, point, bfile);
    snprintf(b, sizeof b, "%s/xb-%s-%d", root, point, bfile);
    snprintf(when, sizeof when, "after killing an exchange%s at %s", bfile ? " with a file" : "", point);
    for (int k = 0; k < 6; k++) { /* warm-up files, as rename_killed's */
        snprintf(p, sizeof p, "%s/warm-%s-%d", root, point, k);
        CHECK(file_put(p, 'w', 1) && unlink(p) == 0, "%s: warm-up file: %s", when, strerror(errno));
    }
    for (int side = 0; side < 2; side++) {
        const char *const *names = side ? bnames : an;
        size_t n = side ? nb : na;
        for (size_t k = 0; k < n; k++) {
            const char *rest = bfile && side ? "" : names[k];
            snprintf(p, sizeof p, "%s%s", side ? b : a, rest);
            if (strchr(names[k], 'f')) {
                char text[64];
                snprintf(text, sizeof text, "%s%s", side ? "B" : "A", names[k]);
                int fd = open(p, O_CREAT | O_WRONLY, 0644);
                CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "create %s: %s", p,
                      strerror(errno));
                if (fd >= 0)
                    close(fd);
            } else {
                CHECK(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
            }
        }
    }
    CHECK(disk_lstat(a, &st) < 0 && disk_lstat(b, &st) < 0, "%s: the trees are not in memory", when);
    CHECK(stat(root, &rst0) == 0, "stat root");
    long long renamed0 = ephd_stat(run_dir, "dirs_renamed_in_memory"), twins0 = ephd_stat(run_dir, "dir_twins");
    if (!killed_at(point, when, call_exchange, a, b))
        return;
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/after-x-%s", root, point);
    CHECK(mkdir(other, 0700) == 0 && rmdir(other) == 0, "%s: mkdir and rmdir of another: %s", when, strerror(errno));
    const char *at_a = committed ? b : a, *at_b = committed ? a : b; /* where tree A and tree B are now */
    tree_there(at_a, an, na, "A", when);
    if (bfile) {
        char buf[16] = "";
        CHECK(slurp(at_b, buf, sizeof buf - 1) == 2 && memcmp(buf, "Bf", 2) == 0, "%s: %s holds \"%s\", want \"Bf\"",
              when, at_b, buf);
    } else {
        tree_there(at_b, bn, nb, "B", when);
        snprintf(p, sizeof p, "%s/u", at_b);
        CHECK(stat(p, &st) == 0 && st.st_nlink == 3 && st.st_size == 100, "%s: %s nlink %lu size %lld (tmpfs: 3, 100)",
              when, p, (unsigned long)st.st_nlink, (long long)st.st_size);
    }
    snprintf(p, sizeof p, "%s/s/f2", at_b);
    CHECK(lstat(p, &st) < 0 && (errno == ENOENT || errno == ENOTDIR), "%s: %s is there too", when, p);
    snprintf(p, sizeof p, "%s/u", at_a);
    CHECK(lstat(p, &st) < 0 && errno == ENOENT, "%s: %s is there too", when, p);
    CHECK(stat(at_a, &st) == 0 && st.st_nlink == 3 && st.st_size == 80, "%s: %s nlink %lu size %lld (tmpfs: 3, 80)", when,
          at_a, (unsigned long)st.st_nlink, (long long)st.st_size);
    CHECK(stat(root, &st) == 0 && st.st_nlink == rst0.st_nlink, "%s: the root's nlink %lu, was %lu", when,
          (unsigned long)st.st_nlink, (unsigned long)rst0.st_nlink);
    CHECK(ephd_stat(run_dir, "dirs_renamed_in_memory") == renamed0 && ephd_stat(run_dir, "dir_twins") == twins0,
          "%s: the victim's count moved, or twins were made", when);
    ns_consistent(when);
    /* Others keep going: the two are exchanged back (in memory), then go. */
    CHECK(renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0, "%s: exchange back: %s", when, strerror(errno));
    CHECK(ephd_stat(run_dir, "dirs_renamed_in_memory") == renamed0 + 1 && ephd_stat(run_dir, "dir_twins") == twins0,
          "%s: the exchange back was not made in memory", when);
    tree_there(at_b, an, na, "A", when);
    if (!bfile)
        tree_there(at_a, bn, nb, "B", when);
    for (int side = 0; side < 2; side++) {
        const char *const *names = side ? bnames : an;
        for (size_t k = side ? nb : na; k-- > 0;) {
            snprintf(p, sizeof p, "%s%s", side ? at_a : at_b, bfile && side ? "" : names[k]);
            CHECK((strchr(names[k], 'f') ? unlink(p) : rmdir(p)) == 0, "%s: remove %s: %s", when, p, strerror(errno));
        }
    }
    ns_consistent(when);
}

/* Read all of path into buf (n at most): the length, or -1. */
static ssize_t slurp(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t got = 0, r;
    while ((size_t)got < n && (r = read(fd, buf + got, n - (size_t)got)) > 0)
        got += r;
    close(fd);
    return got;
}

/*
 * Files inside directories made in memory stay in memory with them: no disk twin of their own
 * directory for a create, a write, a read, a stat, a rename, an unlink or a miss (the directories
 * above it get theirs once); the directory's counts move as tmpfs's; an eviction then makes the
 * twin and lands every byte at its path.
 */
static void files_inside(const char *root)
{
    char a[PATH_MAX], c[PATH_MAX], f[PATH_MAX], g[PATH_MAX], x[PATH_MAX], buf[8192], want[6000];
    struct stat st;
    long long twins0 = ephd_stat(run_dir, "dir_twins"), made0 = ephd_stat(run_dir, "dirs_made_in_memory");
    snprintf(a, sizeof a, "%s/fa", root);
    snprintf(c, sizeof c, "%s/fa/b/c", root);
    snprintf(f, sizeof f, "%s/fa/b/c/f", root);
    snprintf(g, sizeof g, "%s/fa/b/g", root);
    snprintf(x, sizeof x, "%s/fa/b", root);
    CHECK(mkdir(a, 0755) == 0 && mkdir(x, 0755) == 0 && mkdir(c, 0750) == 0, "mkdir fa/b/c: %s", strerror(errno));
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (char)('a' + i % 23);
    int fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 0640);
    CHECK(fd >= 0, "create fa/b/c/f: %s", strerror(errno));
    if (fd >= 0) {
        CHECK(write(fd, want, sizeof want) == (ssize_t)sizeof want, "write f: %s", strerror(errno));
        close(fd);
    }
    CHECK(stat(f, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == (off_t)sizeof want && (st.st_mode & 07777) == 0640,
          "stat f: size %lld mode %o", (long long)st.st_size, st.st_mode);
    CHECK(slurp(f, buf, sizeof buf) == (ssize_t)sizeof want && memcmp(buf, want, sizeof want) == 0, "read f back");
    CHECK(err_of(rmdir(c)) == ENOTEMPTY, "rmdir of c holding f: %s", strerror(errno));
    snprintf(buf, sizeof buf, "%s/nope", c);
    CHECK(err_of(open(buf, O_RDONLY)) == ENOENT, "open of a missing name in c: %s", strerror(errno));
    CHECK(err_of(unlink(buf)) == ENOENT, "unlink of a missing name in c: %s", strerror(errno));
    CHECK(err_of(stat(buf, &st)) == ENOENT, "stat of a missing name in c: %s", strerror(errno));
    /* access (git asks F_OK of every object before it writes it): answered without a twin */
    long long twins_a = ephd_stat(run_dir, "dir_twins");
    CHECK(err_of(access(buf, F_OK)) == ENOENT, "access of a missing name in c: %s", strerror(errno));
    CHECK(access(f, F_OK) == 0 && access(f, R_OK | W_OK) == 0, "access of c/f: %s", strerror(errno));
    snprintf(buf, sizeof buf, "%s/nope/deeper", c);
    CHECK(err_of(access(buf, F_OK)) == ENOENT, "access below a missing name in c: %s", strerror(errno));
    snprintf(buf, sizeof buf, "%s/", f);
    CHECK(err_of(access(buf, F_OK)) == ENOTDIR, "access of c/f/: %s", strerror(errno));
    CHECK(ephd_stat(run_dir, "dir_twins") == twins_a && disk_lstat(c, &st) < 0, "access gave c its twin");
    /* git's pattern: a temporary name, renamed to its final one in another directory */
    CHECK(rename(f, g) == 0, "rename c/f to b/g: %s", strerror(errno));
    CHECK(stat(c, &st) == 0 && st.st_size == 40, "c after the rename: size %lld (tmpfs: 40)", (long long)st.st_size);
    CHECK(rename(g, f) == 0 && err_of(stat(g, &st)) == ENOENT, "rename back: %s", strerror(errno));
    fd = open(g, O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0 && close(fd) == 0 && unlink(g) == 0, "create and unlink b/g: %s", strerror(errno));
    /* the file's own directory stays in memory, and so do the two above it: with stand-in fds
     * (nsdirfd.c) a walker's open and fstat of each agree with its stat, with no twin (before
     * branch dirtwin, fa and fa/b got their twins at the file's create) */
    CHECK(disk_lstat(c, &st) < 0 && errno == ENOENT, "fa/b/c is on disk: a disk mkdir was made for it");
    CHECK(disk_lstat(x, &st) < 0 && errno == ENOENT, "fa/b is on disk: a twin was made for it");
    CHECK(ephd_stat(run_dir, "dir_twins") - twins0 == 0, "twins made: %lld, want 0 (fa, fa/b and fa/b/c stay in memory)",
          ephd_stat(run_dir, "dir_twins") - twins0);
    CHECK(ephd_stat(run_dir, "dirs_made_in_memory") - made0 == 3, "dirs_made_in_memory moved by %lld, want 3",
          ephd_stat(run_dir, "dirs_made_in_memory") - made0);
    ns_consistent("with files in in-memory directories");
    /* a stat of a directory that holds a file answers from memory, and so does the fstat of an fd
     * opened on it (a stand-in, shim/nsdirfd.c): tar stats, opens and compares st_size */
    snprintf(x, sizeof x, "%s/held", root);
    snprintf(g, sizeof g, "%s/held/f", root);
    long long twins1 = ephd_stat(run_dir, "dir_twins");
    CHECK(mkdir(x, 0755) == 0 && (fd = open(g, O_CREAT | O_WRONLY, 0600)) >= 0 && close(fd) == 0, "held/f: %s",
          strerror(errno));
    CHECK(ephd_stat(run_dir, "dir_twins") == twins1, "held/f made a twin");
    int sr = stat(x, &st);
    CHECK(sr == 0 && S_ISDIR(st.st_mode) && st.st_size == 60, "stat of held: %s, st_size %ld (tmpfs: 60)", strerror(errno),
          (long)st.st_size);
    struct stat fst;
    int hfd = open(x, O_RDONLY | O_DIRECTORY);
    CHECK(hfd >= 0 && fstat(hfd, &fst) == 0 && fst.st_size == st.st_size && fst.st_ino == st.st_ino,
          "fstat of held: size %ld ino %llu, stat said %ld %llu", (long)fst.st_size, (unsigned long long)fst.st_ino,
          (long)st.st_size, (unsigned long long)st.st_ino);
    if (hfd >= 0)
        close(hfd);
    CHECK(disk_lstat(x, &st) < 0 && ephd_stat(run_dir, "dir_twins") == twins1,
          "stat and open of a directory holding a file: %lld twins made, want 0", ephd_stat(run_dir, "dir_twins") - twins1);
    CHECK(unlink(g) == 0 && rmdir(x) == 0, "remove held: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/fa/b", root);
    snprintf(g, sizeof g, "%s/fa/b/g", root);

    /* an eviction: the twin chain, parents first, then the file at its path, every byte */
    control_bytes("shrink", 0, buf, sizeof buf);
    CHECK(disk_lstat(f, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == (off_t)sizeof want, "f not on disk after the shrink: %s",
          buf);
    int dfd = -1;
    {
        int (*real_open)(const char *, int, ...) = (int (*)(const char *, int, ...))libc_sym("open");
        dfd = real_open ? real_open(f, O_RDONLY) : -1;
    }
    ssize_t got = dfd >= 0 ? read(dfd, buf, sizeof buf) : -1;
    if (dfd >= 0)
        close(dfd);
    CHECK(got == (ssize_t)sizeof want && memcmp(buf, want, sizeof want) == 0, "the disk copy of f differs (%zd bytes)", got);
    CHECK(disk_lstat(c, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750, "the twin of c: mode %o",
          st.st_mode);
    CHECK(ephd_stat(run_dir, "dir_twins") - twins0 == 3, "the eviction made %lld twins, want 3", ephd_stat(run_dir, "dir_twins") - twins0);
    control_bytes("grow", 1073741824LL, buf, sizeof buf);
    CHECK(unlink(f) == 0 && rmdir(c) == 0 && rmdir(x) == 0 && rmdir(a) == 0, "remove fa: %s", strerror(errno));
    ns_consistent("after the eviction");
    /* shutil.rmtree's check: lstat of a directory in memory, open it (a stand-in), fstat the fd */
    struct stat mem;
    snprintf(x, sizeof x, "%s/ident", root);
    CHECK(mkdir(x, 0700) == 0 && lstat(x, &mem) == 0, "mkdir ident: %s", strerror(errno));
    fd = open(x, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == mem.st_dev && st.st_ino == mem.st_ino,
          "a twin's fstat shows another directory than lstat did in memory (%llu:%llu, was %llu:%llu)",
          (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (unsigned long long)mem.st_dev,
          (unsigned long long)mem.st_ino);
    if (fd >= 0)
        close(fd);
    CHECK(lstat(x, &st) == 0 && st.st_ino == mem.st_ino && rmdir(x) == 0, "lstat after the twin, rmdir ident");
}

/*
 * A symlink keeps mkdir on disk only while it exists (git init makes one and unlinks it at once,
 * which turned directories in memory off for the whole run); access() of names in a directory in
 * memory answers without a twin (git asks access(F_OK) of every object before it writes it).
 */
static void symlinks_and_access(const char *root)
{
    char a[PATH_MAX], l[PATH_MAX], x[PATH_MAX], f[PATH_MAX];
    struct stat st;
    int fd = -1;
    snprintf(a, sizeof a, "%s/sa", root);
    snprintf(l, sizeof l, "%s/sl", root);
    CHECK(mkdir(a, 0755) == 0 && disk_lstat(a, &st) < 0, "sa made on disk before any symlink");
    /* git init's probe: made and unlinked at once; the directory in memory got its twin meanwhile */
    CHECK(symlink("testing", l) == 0 && disk_lstat(a, &st) == 0 && S_ISDIR(st.st_mode),
          "a symlink gives every directory in memory its twin: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/sa/while", root);
    long long made1 = ephd_stat(run_dir, "dirs_made_in_memory");
    CHECK(mkdir(x, 0755) == 0 && disk_lstat(x, &st) == 0 && ephd_stat(run_dir, "dirs_made_in_memory") == made1,
          "mkdir while a symlink exists is on disk");
    CHECK(unlink(l) == 0 && err_of(lstat(l, &st)) == ENOENT, "unlink the symlink: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/sa/after", root);
    CHECK(mkdir(x, 0755) == 0 && disk_lstat(x, &st) < 0 && ephd_stat(run_dir, "dirs_made_in_memory") == made1 + 1,
          "mkdir after the only symlink went is in memory again (made %lld, was %lld)",
          ephd_stat(run_dir, "dirs_made_in_memory"), made1);
    /* a symlink to a directory made after it: the walk through it finds the directory */
    CHECK(symlink("sa/later", l) == 0, "symlink sl -> sa/later: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/sa/later", root);
    snprintf(f, sizeof f, "%s/sl/f", root);
    CHECK(mkdir(x, 0755) == 0 && disk_lstat(x, &st) == 0, "sa/later is on disk while sl exists");
    CHECK((fd = open(f, O_CREAT | O_WRONLY, 0644)) >= 0 && close(fd) == 0, "create through sl: %s", strerror(errno));
    snprintf(f, sizeof f, "%s/sa/later/f", root);
    CHECK(stat(f, &st) == 0 && S_ISREG(st.st_mode) && unlink(f) == 0 && rmdir(x) == 0, "sa/later/f: %s", strerror(errno));
    CHECK(unlink(l) == 0, "unlink sl: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/sa/while", root);
    rmdir(x);
    snprintf(x, sizeof x, "%s/sa/after", root);
    rmdir(x);
    /* a rename over the symlink removes it without the count: mkdir stays on disk (the safe side) */
    snprintf(f, sizeof f, "%s/sa/plain", root);
    CHECK(symlink("sa", l) == 0 && (fd = open(f, O_CREAT | O_WRONLY, 0644)) >= 0 && close(fd) == 0 && rename(f, l) == 0 &&
              unlink(l) == 0,
          "rename a file over sl: %s", strerror(errno));
    snprintf(x, sizeof x, "%s/sa/stays", root);
    CHECK(mkdir(x, 0755) == 0 && disk_lstat(x, &st) == 0, "mkdir after a symlink went by a rename: still on disk");
    CHECK(rmdir(x) == 0, "rmdir sa/stays: %s", strerror(errno));
    CHECK(rmdir(a) == 0, "rmdir sa: %s", strerror(errno));
    ns_consistent("after the symlinks");
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    shimmed_run_dir(root, run_dir);
    semantics(root);
    files_inside(root);
    static const char *points[] = {"building", "applying", "applied"};
    for (int m = 1; m >= 0; m--)
        for (int p = 0; p < 3; p++)
            kill_inside(root, m, points[p], p > 0);
    rename_killed(root, "dirmove-building", 0);
    rename_killed(root, "movetree", 1);
    rename_killed(root, "dirmove-applied", 1);
    exchange_killed(root, "dirxchg-building", 0, 0);
    exchange_killed(root, "exchange1", 1, 0);
    exchange_killed(root, "dirxchg-applying", 1, 0);
    exchange_killed(root, "exchange2", 1, 0);
    exchange_killed(root, "exchange3", 1, 0);
    exchange_killed(root, "dirxchg-applied", 1, 0);
    exchange_killed(root, "exchange1", 1, 1);
    exchange_killed(root, "exchange3", 1, 1);
    symlinks_and_access(root); /* last: it leaves a symlink counted (mkdir on disk from then on) */
    ns_consistent("at the end");
    printf("nsdir_test: %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    setenv("EPHEMERA_MEMDIR_FILES", "1", 1); /* files inside directories in memory (the default; not turned off by the caller) */
    /* EPHEMERA_NS_STALL is in the fault build of the shim only. */
    return shimmed_main_faulty(argc, argv, "nsdir", child, NULL, 1);
}
