/*
 * shimmed.h - run a C test under the shim: start $EPHEMERAD on a scratch root
 * and re-run the test program itself with $EPHEMERA_SHIM preloaded.
 *
 *   int main(int argc, char **argv)
 *   {
 *       return shimmed_main(argc, argv, "name", child_main);
 *   }
 *
 * child_main(root, disk) runs in the shimmed process: root is managed, disk
 * is a plain directory beside it.  The scratch directory is removed at the end.
 * shimmed_main_args() also passes extra arguments to the daemon (NULL-ended);
 * shimmed_main_faulty() runs the parent with the daemon's or the shim's fault build.
 */
#ifndef EPH_TEST_SHIMMED_H
#define EPH_TEST_SHIMMED_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ephd.h"

/* glibc's own definition (RTLD_NEXT from the program would find the preloaded shim's). */
static inline void *libc_sym(const char *name)
{
    static void *libc;
    if (!libc)
        libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    return libc ? dlsym(libc, name) : NULL;
}

static inline int shimmed_main_args(int argc, char **argv, const char *name, int (*child)(const char *, const char *),
                                    const char *const *daemon_args)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3]);
    const char *daemon = getenv("EPHEMERAD") ? getenv("EPHEMERAD") : "build/ephemerad";
    const char *shim = getenv("EPHEMERA_SHIM") ? getenv("EPHEMERA_SHIM") : "build/libephemera.so";
    char base[PATH_MAX];
    snprintf(base, sizeof base, "build/test/%s-XXXXXX", name);
    mkdir("build", 0755);
    mkdir("build/test", 0755);
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char dir[PATH_MAX], root[PATH_MAX + 8], disk[PATH_MAX + 8], rundir[PATH_MAX + 8], sock[PATH_MAX + 32];
    if (!realpath(base, dir))
        return 1;
    snprintf(root, sizeof root, "%s/root", dir);
    snprintf(disk, sizeof disk, "%s/disk", dir);
    snprintf(rundir, sizeof rundir, "%s/run", dir);
    snprintf(sock, sizeof sock, "%s/shim.sock", rundir);
    mkdir(root, 0755);
    mkdir(disk, 0755);
    mkdir(rundir, 0755);
    pid_t d = ephd_start(daemon, rundir, root, daemon_args);
    if (d < 0) {
        fprintf(stderr, "%s: %s did not become ready\n", name, daemon);
        rm_rf(dir);
        return 1;
    }
    pid_t c = fork();
    if (c == 0) {
        setenv("LD_PRELOAD", shim, 1);
        setenv("EPHEMERA_LIB", shim, 1);
        setenv("EPHEMERA_SOCK", sock, 1);
        setenv("EPHEMERA_ROOTS", root, 1);
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "", asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execl("/proc/self/exe", argv[0], "--child", root, disk, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(c, &st, 0);
    kill(d, SIGTERM);
    int dst;
    waitpid(d, &dst, 0);
    if (rm_rf(dir) != 0)
        fprintf(stderr, "%s: could not remove %s\n", name, dir);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: failed (status %#x)\n", name, st);
        return 1;
    }
    return 0;
}

/*
 * Make the shimmed children use the fault build of the shim, build/test/libephemera-faults.so
 * (beside the production $EPHEMERA_SHIM; `make test-build` makes it): 0, or 1 with a message
 * naming `name` when it is missing.
 */
static inline int shimmed_use_faults_build(const char *name)
{
    const char *shim = getenv("EPHEMERA_SHIM") ? getenv("EPHEMERA_SHIM") : "build/libephemera.so";
    char faults_shim[PATH_MAX];
    snprintf(faults_shim, sizeof faults_shim, "%.*s/test/libephemera-faults.so",
             (int)(strrchr(shim, '/') ? strrchr(shim, '/') - shim : 1), strrchr(shim, '/') ? shim : ".");
    if (access(faults_shim, R_OK) != 0) {
        fprintf(stderr, "%s: %s is missing; run `make test-build`\n", name, faults_shim);
        return 1;
    }
    setenv("EPHEMERA_SHIM", faults_shim, 1);
    return 0;
}

/*
 * Run the daemon's fault build ($EPHEMERAD_FAULTY, daemon/sys.h) stopping itself (SIGSTOP) at the
 * stall point stall (EPHEMERA_LOCK_STALL): 0, or 1 with a message naming `name` when it is missing.
 */
static inline int shimmed_use_faulty_daemon(const char *name, const char *stall)
{
    const char *faulty = getenv("EPHEMERAD_FAULTY");
    if (!faulty || access(faulty, X_OK) != 0) {
        fprintf(stderr, "%s: EPHEMERAD_FAULTY (%s) is missing; run `make test-build`\n", name, faulty ? faulty : "unset");
        return 1;
    }
    setenv("EPHEMERAD", faulty, 1);
    setenv("EPHEMERA_LOCK_STALL", stall, 1);
    return 0;
}

static inline void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* The daemon's run directory, beside the managed root that child() was given (shimmed_main's layout). */
static inline void shimmed_run_dir(const char *root, char run[PATH_MAX])
{
    snprintf(run, PATH_MAX, "%.*s/run", (int)(strrchr(root, '/') - root), root);
}

/* The run directory into run (shimmed_run_dir) and the daemon's pid from its stats, checked: the
 * pid, or 0 or less after a failed check. */
static inline pid_t shimmed_daemon(const char *root, char run[PATH_MAX])
{
    shimmed_run_dir(root, run);
    pid_t daemon = (pid_t)ephd_stat(run, "pid");
    CHECK(daemon > 0, "the daemon's pid from stats: %d", (int)daemon);
    return daemon;
}

static inline double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Wait for pid, at most bound_s: its exit status (128 + signal if killed), or -1 if it was still
 * running at the bound (it is then killed and reaped).  *took: how long it ran. */
static inline int wait_bounded_s(pid_t pid, double bound_s, double *took)
{
    double t0 = now_s();
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            *took = now_s() - t0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (now_s() - t0 > bound_s) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            *took = now_s() - t0;
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The state letter of /proc/pid/stat ('T' stopped, 'Z' zombie), or 0: for a process that is not
 * our child (the daemon), which wait_stopped cannot watch. */
static inline char proc_state(pid_t pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* 1 once pid is in state 'T' (stopped), within 5 s. */
static inline int stopped_within(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        if (proc_state(pid) == 'T')
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/*
 * Ask the daemon of run directory run, from a child, to shrink to 0 (every file to disk); a daemon
 * built to stop at a point of the move (shimmed_use_faulty_daemon) stops inside it.  The asker's
 * pid once daemon is stopped, or -1 (the asker is then killed) when it did not stop within 5 s.
 */
static inline pid_t shrink_until_stopped(const char *run, pid_t daemon)
{
    pid_t asker = fork();
    if (asker == 0) {
        char reply[4096];
        ephd_control(run, "{\"v\":1,\"id\":2,\"op\":\"shrink\",\"bytes\":0}\n", reply, sizeof reply);
        _exit(0);
    }
    if (asker > 0 && stopped_within(daemon))
        return asker;
    if (asker > 0) {
        kill(asker, SIGKILL);
        waitpid(asker, NULL, 0);
    }
    return -1;
}

/* Continue child pid (SIGCONT every 10 ms: it may stop at a stall point again) until it has exited,
 * within bound_s: its exit status (128 + signal if killed), or -1 (it is then killed and reaped). */
static inline int continue_until_exit_s(pid_t pid, double bound_s)
{
    for (int i = 0; i < (int)(bound_s * 100); i++) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG | WUNTRACED);
        if (w == pid && WIFEXITED(st))
            return WEXITSTATUS(st);
        if (w == pid && WIFSIGNALED(st))
            return 128 + WTERMSIG(st);
        kill(pid, SIGCONT);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Wait (10 s at most) until child pid stops (SIGSTOP, a test's stall point); 1 if it did. */
static inline int wait_stopped(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(pid, &st, WUNTRACED | WNOHANG) == pid)
            return WIFSTOPPED(st);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* A child that continues pid (SIGCONT every 50 ms) until pid is gone, bound_s at most: for a daemon
 * of a fault build that stops at a stall point it passes again and again (its shutdown's among
 * them).  The child's pid. */
static inline pid_t keep_continuing(pid_t pid, double bound_s)
{
    pid_t keeper = fork();
    if (keeper == 0) {
        for (int i = 0; i < (int)(bound_s * 20) && kill(pid, SIGCONT) == 0; i++)
            pause_ms(50);
        _exit(0);
    }
    return keeper;
}

/* Wait (10 s at most) until child pid stops at its stall point (wait_stopped), then SIGKILL it
 * there and reap it: 1 if it had stopped (killed inside the call), 0 if not. */
static inline int killed_when_stopped(pid_t pid)
{
    int stopped = wait_stopped(pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return stopped;
}

/* Create path (truncated) holding n bytes of c, at most 128 KiB, written at once, and close it: 1
 * when that worked. */
static inline int file_put(const char *path, char c, size_t n)
{
    static char buf[1 << 17];
    if (n > sizeof buf)
        return 0;
    memset(buf, c, n);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    int ok = fd >= 0 && write(fd, buf, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Create path (truncated) holding the text data and close it, each step a check. */
static inline void file_put_text(const char *path, const char *data)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
    if (fd >= 0) {
        CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data), "write %s", path);
        close(fd);
    }
}

/* 1 when fd reads exactly n bytes of c from offset 0 (n at most 64 KiB). */
static inline int fd_holds(int fd, char c, size_t n)
{
    static char buf[(1 << 16) + 1];
    ssize_t r = pread(fd, buf, sizeof buf, 0);
    if (r != (ssize_t)n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i] != c)
            return 0;
    return 1;
}

/* 1 when path holds exactly n bytes of c (n at most 64 KiB). */
static inline int file_holds(const char *path, char c, size_t n)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    int ok = fd_holds(fd, c, n);
    close(fd);
    return ok;
}

/*
 * The start of a late truncate (staleref_test, truncgc_test: the daemon's fault build stops at
 * gc-chosen, the shim's at truncate-ref), in child() of root: the daemon's run directory into run and
 * its pid into *daemon (shimmed_daemon), root/f into f.  f and w (4 KiB each) are made in memory by a
 * process that then exits: nobody holds an fd of f, so its unlink leaves the slot to the daemon's
 * collection (not a home of ours).  A child opens w, a first reference while the daemon runs (a new
 * process's first one waits until the daemon holds its ledger, shim/fdtable.c, which a stopped
 * daemon never would), then truncates f to 100 bytes and stops after its lookup.  f's name goes; the
 * daemon collects the slot and stops before it frees it.  The truncating child's pid (its exit
 * status: 0 truncated, 10 ENOENT, 11 another error, 12 w did not open), or -1 when there was no
 * daemon or it did not stop (a failed check; the child is then killed).
 */
static inline pid_t late_truncate_started(const char *root, char run[PATH_MAX], pid_t *daemon, char f[PATH_MAX],
                                          double bound_s)
{
    char w[PATH_MAX];
    snprintf(f, PATH_MAX, "%s/f", root);
    snprintf(w, sizeof w, "%s/w", root);
    *daemon = shimmed_daemon(root, run);
    if (*daemon <= 0)
        return -1;
    pid_t maker = fork();
    if (maker == 0)
        _exit(file_put(f, 'f', 4096) && file_put(w, 'w', 4096) ? 0 : 1);
    double took;
    CHECK(wait_bounded_s(maker, bound_s, &took) == 0, "the process making f failed");
    CHECK(ephd_stat_becomes(run, "files_in_memory", 2), "f and w are not the two files in memory (%lld)",
          ephd_stat(run, "files_in_memory"));

    pid_t trunc = fork();
    if (trunc == 0) {
        int wfd = open(w, O_RDONLY);
        if (wfd < 0)
            _exit(12);
        close(wfd);
        int r = truncate(f, 100);
        _exit(r == 0 ? 0 : errno == ENOENT ? 10 : 11);
    }
    CHECK(wait_stopped(trunc), "the truncating process did not stop after its lookup");

    CHECK(unlink(f) == 0, "unlink %s: %s", f, strerror(errno));
    int stopped = stopped_within(*daemon);
    CHECK(stopped, "the daemon did not stop before freeing f's slot (state %c)", proc_state(*daemon));
    if (!stopped) {
        kill(trunc, SIGKILL);
        waitpid(trunc, NULL, 0);
        return -1;
    }
    return trunc;
}

static inline int shimmed_main(int argc, char **argv, const char *name, int (*child)(const char *, const char *))
{
    return shimmed_main_args(argc, argv, name, child, NULL);
}

/*
 * shimmed_main for a test that needs fault builds: in the parent, first the daemon's fault build
 * stopping at `stall` (shimmed_use_faulty_daemon; NULL: the production daemon), then, with
 * `faults_shim`, the shim's (shimmed_use_faults_build); a missing build is said under name_test.
 */
static inline int shimmed_main_faulty(int argc, char **argv, const char *name, int (*child)(const char *, const char *),
                                      const char *stall, int faults_shim)
{
    if (argc > 1)
        return shimmed_main(argc, argv, name, child);
    char test[128];
    snprintf(test, sizeof test, "%s_test", name);
    if (stall && shimmed_use_faulty_daemon(test, stall))
        return 1;
    if (faults_shim && shimmed_use_faults_build(test))
        return 1;
    return shimmed_main(argc, argv, name, child);
}

#endif
