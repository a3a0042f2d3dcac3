/*
 * A chmod (chown, utimensat, the xattr calls) by path finds the file in
 * memory, sees it leave (the daemon moves it to disk), waits for the move and
 * then changes the disk file.  The shim reached that file through the
 * daemon's own fd, /proc/<ephemerad>/fd/<disk_fd>.  But when nobody has the
 * file open the daemon frees its slot right after the move (daemon/evict.c,
 * evict_commit, then ns_maybe_gc), and closes that fd: a call in between got
 * ENOENT for a file that exists (about 1 chmod in 12,000 under eviction
 * pressure, test/README.md), and once the daemon had given the number to
 * another file the call changed that one instead.
 *
 * The moment is made exact with two stall points: the daemon's fault build
 * stops with the file MOVING (EPHEMERA_LOCK_STALL=evict-moving), the shim's
 * stops the calling process once it found the file leaving memory and again
 * once it saw it on disk, before it reaches the daemon's fd (moved-wait,
 * moved-disk, shim/intercept_names.c).  The test holds the file open
 * meanwhile, so that the slot lives until the caller has looked; then it
 * closes it, waits until the daemon has closed the disk fd, moves another
 * file to disk (which may take the same fd number) and lets the caller go
 * on.  Every call must have the kernel's answer, on the right file.  Each
 * call also runs with the file still open (the slot lives), where it must
 * reach the disk file itself.
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
#include <utime.h>

#include "check.h"
#include "shimmed.h"

#define BOUND_S 20.0
#define WHEN 1000000000 /* the times the utime calls set */

static pid_t daemon_pid;
static char run_dir[PATH_MAX];

/* ---- what each call does, and how its effect shows ------------------------ */

struct op {
    const char *name;
    int keep;                     /* the file has user.keep = "kept" before it moves */
    int (*call)(const char *p);   /* in the stalled process: 1 when the answer is right */
    int (*took)(const char *p);   /* 1 when the file shows the call's effect */
    int (*clean)(const char *p);  /* 1 when another file shows no trace of it */
};

static mode_t mode_of(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static int chmod_call(const char *p) { return chmod(p, 0600) == 0; }
static int fchmodat_call(const char *p) { return fchmodat(AT_FDCWD, p, 0600, 0) == 0; }
static int mode_took(const char *p) { return mode_of(p) == 0600; }
static int mode_clean(const char *p) { return mode_of(p) == 0644; }

static int chown_call(const char *p) { return chown(p, 4321, 4322) == 0; }
static int lchown_call(const char *p) { return lchown(p, 4321, 4322) == 0; }
static int fchownat_call(const char *p) { return fchownat(AT_FDCWD, p, 4321, 4322, 0) == 0; }
static int owner_took(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_uid == 4321 && st.st_gid == 4322;
}
static int owner_clean(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_uid == geteuid();
}

static int utimensat_call(const char *p)
{
    struct timespec ts[2] = {{WHEN, 0}, {WHEN, 0}};
    return utimensat(AT_FDCWD, p, ts, 0) == 0;
}
static int utime_call(const char *p)
{
    struct utimbuf ub = {WHEN, WHEN};
    return utime(p, &ub) == 0;
}
static int times_took(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_mtim.tv_sec == WHEN && st.st_atim.tv_sec == WHEN;
}
static int times_clean(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && st.st_mtim.tv_sec != WHEN;
}

static int setxattr_call(const char *p) { return setxattr(p, "user.set", "v", 1, 0) == 0; }
static int lsetxattr_call(const char *p) { return lsetxattr(p, "user.set", "v", 1, 0) == 0; }
static int set_took(const char *p)
{
    char v[8];
    return getxattr(p, "user.set", v, sizeof v) == 1 && v[0] == 'v';
}
static int set_clean(const char *p) { return getxattr(p, "user.set", NULL, 0) < 0 && errno == ENODATA; }

static int get_call(const char *p)
{
    char v[16];
    return getxattr(p, "user.keep", v, sizeof v) == 4 && memcmp(v, "kept", 4) == 0;
}
static int lget_call(const char *p)
{
    char v[16];
    return lgetxattr(p, "user.keep", v, sizeof v) == 4 && memcmp(v, "kept", 4) == 0;
}
static int list_call(const char *p)
{
    char v[256];
    ssize_t n = listxattr(p, v, sizeof v);
    return n > 0 && memmem(v, (size_t)n, "user.keep", 10) != NULL;
}
static int llist_call(const char *p)
{
    char v[256];
    ssize_t n = llistxattr(p, v, sizeof v);
    return n > 0 && memmem(v, (size_t)n, "user.keep", 10) != NULL;
}
static int kept(const char *p) { return getxattr(p, "user.keep", NULL, 0) == 4; }

static int remove_call(const char *p) { return removexattr(p, "user.keep") == 0; }
static int lremove_call(const char *p) { return lremovexattr(p, "user.keep") == 0; }
static int removed(const char *p) { return getxattr(p, "user.keep", NULL, 0) < 0 && errno == ENODATA; }

static int no_keep(const char *p) { return getxattr(p, "user.keep", NULL, 0) < 0 && errno == ENODATA; }

static const struct op ops[] = {
    {"chmod", 0, chmod_call, mode_took, mode_clean},
    {"fchmodat", 0, fchmodat_call, mode_took, mode_clean},
    {"chown", 0, chown_call, owner_took, owner_clean},
    {"lchown", 0, lchown_call, owner_took, owner_clean},
    {"fchownat", 0, fchownat_call, owner_took, owner_clean},
    {"utimensat", 0, utimensat_call, times_took, times_clean},
    {"utime", 0, utime_call, times_took, times_clean},
    {"setxattr", 0, setxattr_call, set_took, set_clean},
    {"lsetxattr", 0, lsetxattr_call, set_took, set_clean},
    {"getxattr", 1, get_call, kept, no_keep},
    {"lgetxattr", 1, lget_call, kept, no_keep},
    {"listxattr", 1, list_call, kept, no_keep},
    {"llistxattr", 1, llist_call, kept, no_keep},
    {"removexattr", 1, remove_call, removed, no_keep},
    {"lremovexattr", 1, lremove_call, removed, no_keep},
};

/* ---- the daemon ---------------------------------------------------------- */

/* A shrink to 0 asked from a child; the daemon stops in it with the one file in memory MOVING.
 * The asker's pid, or -1 (a failed check). */
static pid_t move_start(void)
{
    pid_t asker = shrink_until_stopped(run_dir, daemon_pid);
    CHECK(asker > 0, "the daemon did not stop with the file MOVING (state %c)", proc_state(daemon_pid));
    return asker;
}

/* The daemon goes on and ends the move; 1 once the asker has its answer. */
static int move_end(pid_t asker)
{
    kill(daemon_pid, SIGCONT);
    double took;
    int st = wait_bounded_s(asker, BOUND_S, &took);
    CHECK(st == 0, "the shrink request, once the daemon went on: %d after %.1f s", st, took);
    return st == 0;
}

/* The kernel's stat, past the shim: a process that held a file open while it moved keeps seeing its
 * in-memory identity on a stat of the path. */
static int kernel_stat(const char *path, struct stat *st)
{
    int (*libc_stat)(const char *, struct stat *) = (int (*)(const char *, struct stat *))libc_sym("stat");
    return libc_stat ? libc_stat(path, st) : -1;
}

/* 1 when the daemon's fd n (a name in /proc/<daemon>/fd) is on the file at path.  By identity: a
 * moved file's fd may have been made with O_TMPFILE, whose /proc link never shows the name it got
 * later. */
static int daemon_fd_is(const char *n, const char *path)
{
    char link[PATH_MAX];
    struct stat want, st;
    snprintf(link, sizeof link, "/proc/%d/fd/%s", (int)daemon_pid, n);
    return n[0] != '.' && kernel_stat(path, &want) == 0 && kernel_stat(link, &st) == 0 && st.st_dev == want.st_dev &&
           st.st_ino == want.st_ino;
}

/* The number of the daemon's (first) fd on the file at path, or -1. */
static int daemon_fd_on(const char *path)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)daemon_pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d)))
        if (daemon_fd_is(e->d_name, path))
            found = atoi(e->d_name);
    closedir(d);
    return found;
}

/* 1 once the daemon holds no fd on path (it freed the slot), within 5 s. */
static int daemon_lets_go(const char *path)
{
    for (int i = 0; i < 500; i++) {
        if (daemon_fd_on(path) < 0)
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* A file of n bytes in memory, open: its fd, or -1 (a failed check). */
static int make(const char *path, size_t n)
{
    static char buf[64 * 1024];
    memset(buf, 'x', n);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    int ok = fd >= 0 && write(fd, buf, n) == (ssize_t)n;
    CHECK(ok, "write %s: %s", path, strerror(errno));
    if (!ok && fd >= 0)
        close(fd);
    return ok ? fd : -1;
}

/* ---- one call, in the moment ---------------------------------------------- */

/* How the moment ends before the stalled call goes on. */
enum after { FREED, TAKEN_OVER, STILL_OPEN };
static const char *const after_names[] = {"freed", "freed, its slot taken over", "still open"};

/* Call ops[k] on a file that moved to disk and was freed meanwhile (FREED); then another file moved
 * to disk (TAKEN_OVER: it may take over the slot and the daemon's fd number); or, to see the call
 * reach a file that stays, the test still has it open (STILL_OPEN). */
static void one(const char *root, int k, enum after other)
{
    const struct op *op = &ops[k];
    char f[PATH_MAX], g[PATH_MAX];
    snprintf(f, sizeof f, "%s/f%d-%d", root, k, (int)other);
    snprintf(g, sizeof g, "%s/g%d", root, k);

    /* The caller exists before the file, so it holds no reference to it. */
    int go[2];
    if (pipe(go) < 0)
        return;
    pid_t caller = fork();
    if (caller == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        setenv("EPHEMERA_LOCK_STALL", "moved-wait,moved-disk", 1);
        int ok = op->call(f);
        int e = errno;
        if (!ok)
            fprintf(stderr, "evictattr_test: %s(%s): %s\n", op->name, f, strerror(e));
        _exit(ok ? 0 : 1);
    }
    close(go[0]);

    int fd = make(f, 64 * 1024);
    if (fd >= 0 && op->keep)
        CHECK(setxattr(f, "user.keep", "kept", 4, 0) == 0, "setxattr %s in memory: %s", f, strerror(errno));
    CHECK(ephd_stat_becomes(run_dir, "files_in_memory", 1), "%s is not the one file in memory (%lld)", f,
          ephd_stat(run_dir, "files_in_memory"));
    pid_t asker = fd >= 0 ? move_start() : -1;
    if (asker < 0) {
        kill(caller, SIGKILL);
        waitpid(caller, NULL, 0);
        close(go[1]);
        if (fd >= 0)
            close(fd);
        return;
    }
    /* The caller finds f MOVING and stops there; then the move ends, f stays held by our fd. */
    if (write(go[1], "x", 1) != 1)
        return;
    close(go[1]);
    int at_wait = wait_stopped(caller);
    CHECK(at_wait, "%s: the caller did not stop where it found the file leaving memory", op->name);
    int moved = move_end(asker);
    CHECK(daemon_fd_on(f) >= 0, "%s: the daemon has no fd on %s after the move", op->name, f);
    /* It looks again: on disk, same file; it stops before it reaches the daemon's fd. */
    kill(caller, SIGCONT);
    int at_disk = at_wait && wait_stopped(caller);
    CHECK(at_disk, "%s: the caller did not stop with the file on disk", op->name);
    /* Nobody has f open any more: the daemon frees its slot and closes the disk fd. */
    if (other != STILL_OPEN) {
        close(fd);
        CHECK(daemon_lets_go(f), "%s: the daemon still has an fd on %s after its last close", op->name, f);
    }
    /* Another file moves to disk: it may take over f's slot, and the daemon's fd number. */
    int gfd = other == TAKEN_OVER && moved && at_disk ? make(g, 4096) : -1;
    pid_t asker2 = gfd >= 0 ? move_start() : -1;
    if (asker2 >= 0)
        move_end(asker2);

    kill(caller, SIGCONT);
    double took;
    int st = wait_bounded_s(caller, BOUND_S, &took);
    int right = st == 0 && op->took(f), spared = gfd < 0 || op->clean(g);
    CHECK(st == 0, "%s of a file freed after its move: not the kernel's answer (the caller exited %d)", op->name, st);
    CHECK(op->took(f), "%s: %s does not show the change", op->name, f);
    CHECK(spared, "%s: %s, another file moved to disk meanwhile, was changed instead", op->name, g);
    if (gfd >= 0)
        close(gfd);
    if (other == STILL_OPEN)
        close(fd);
    printf("evictattr_test: %-12s right after the move (%s): %s%s\n", op->name,
           after_names[other], right ? "the kernel's answer" : "WRONG",
           spared ? "" : ", and the other file changed");
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    daemon_pid = shimmed_daemon(root, run_dir);
    if (daemon_pid <= 0)
        return 1;
    umask(022);
    /* Attached to the daemon before the first caller is forked: a caller that had to say hello
     * itself would wait for the stopped daemon instead of reaching its stall point. */
    char warm[PATH_MAX];
    snprintf(warm, sizeof warm, "%s/warm", root);
    int w = make(warm, 1);
    if (w < 0)
        return 1;
    close(w);
    /* O_PATH on an in-memory file is held the same way (shim/intercept_open.c): the kernel's view of
     * its memfd, with the close-on-exec flag asked for. */
    int pa = open(warm, O_PATH), pb = open(warm, O_PATH | O_CLOEXEC);
    struct stat ps;
    CHECK(pa >= 0 && fstat(pa, &ps) == 0 && S_ISREG(ps.st_mode), "O_PATH open of %s: %s", warm, strerror(errno));
    CHECK(pa >= 0 && fcntl(pa, F_GETFD) == 0, "O_PATH without O_CLOEXEC: fd flags %d", fcntl(pa, F_GETFD));
    CHECK(pb >= 0 && fcntl(pb, F_GETFD) == FD_CLOEXEC, "O_PATH | O_CLOEXEC: fd flags %d", fcntl(pb, F_GETFD));
    if (pa >= 0)
        close(pa);
    if (pb >= 0)
        close(pb);
    CHECK(unlink(warm) == 0, "unlink %s: %s", warm, strerror(errno));
    for (int k = 0; k < (int)(sizeof ops / sizeof ops[0]); k++) {
        if (ops[k].took == owner_took && geteuid() != 0) {
            printf("evictattr_test: %s skipped (not root)\n", ops[k].name);
            continue;
        }
        one(root, k, FREED);
        one(root, k, TAKEN_OVER);
        one(root, k, STILL_OPEN);
    }
    printf("evictattr_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    /* Both fault builds: the daemon's stall point (evict-moving) and the shim's (moved-wait, moved-disk). */
    return shimmed_main_faulty(argc, argv, "evictattr", child, "evict-moving", 1);
}
