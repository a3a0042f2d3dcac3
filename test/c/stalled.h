/*
 * Helpers of the tests that stop a shimmed caller at a fault-build stall point
 * (EPHEMERA_NS_STALL) and change the namespace under it: the disk's own answer
 * past the shim, and every file moved to disk through the daemon's control socket.
 */
#ifndef EPH_TEST_STALLED_H
#define EPH_TEST_STALLED_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "shimmed.h"

#define INO_IN_MEMORY (1ull << 44) /* EPH_INO_TAG (include/ephemera/shm.h) */

/* The disk's own answer, past the shim (which serves syscall(2) too): glibc's fstatat. */
static inline int disk_has(const char *path)
{
    struct stat st;
    int (*real_fstatat)(int, const char *, struct stat *, int) =
        (int (*)(int, const char *, struct stat *, int))libc_sym("fstatat");
    return real_fstatat && real_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Every file to disk (the budget shrunk to nothing), then the budget back; run_dir is the
 * daemon's (shimmed_run_dir).  The shrink's answer is EPH_CANNOT_SHRINK, the daemon's own memory
 * being more than 0 bytes, once every file it can move is on disk: the caller checks its files. */
static inline void evict_everything(const char *run_dir)
{
    char buf[4096];
    ephd_control(run_dir, "{\"v\":1,\"id\":1,\"op\":\"shrink\",\"bytes\":0}\n", buf, sizeof buf);
    CHECK(buf[0] != 0, "shrink: no answer");
    ephd_control(run_dir, "{\"v\":1,\"id\":2,\"op\":\"grow\",\"bytes\":1073741824}\n", buf, sizeof buf);
    CHECK(strstr(buf, "\"ok\":true") != NULL, "grow: %s", buf);
}

/* The stop of the tests that move every file to disk under a stopped caller (a stall_stop_fn's
 * arg): at the first stop, evict_everything, and file (and also, if not NULL) must then be on
 * disk, or the case shows nothing. */
struct to_disk {
    const char *run_dir, *what, *file, *also;
};

static inline void evict_at_first_stop(int k, void *arg)
{
    const struct to_disk *t = arg;
    if (k != 0)
        return;
    evict_everything(t->run_dir);
    CHECK(disk_has(t->file) && (!t->also || disk_has(t->also)),
          "%s: %s did not go to disk: the case shows nothing", t->what, t->file);
}

/* A stopped caller's exit code for its call's result r: 0, the errno (below 100), or 99. */
static inline int stall_exit_code(int r)
{
    return r == 0 ? 0 : errno > 0 && errno < 100 ? errno : 99;
}

/* What an exit code of stall_exit_code says, for a message (-1: the caller did not exit). */
static inline const char *stall_said(int code)
{
    return code == 0 ? "success" : code > 0 && code < 99 ? strerror(code) : "the caller failed";
}

/* Called at the k-th stop (k from 0) of a caller at its stall point, before it goes on. */
typedef void (*stall_stop_fn)(int k, void *arg);

/* Let child p run to its end, calling at_stop (if not NULL) at each of its stops at a stall point
 * (SIGSTOP) and then continuing it.  Bounded: a child not gone after 60 s is killed (a CHECK fails).
 * Returns the number of stops; *code is the child's exit code, or -1 if it did not exit. */
static inline int stall_run(pid_t p, stall_stop_fn at_stop, void *arg, int *code)
{
    int stops = 0, st = 0;
    *code = -1;
    for (int tick = 0; tick < 6000; tick++) {
        pid_t w = waitpid(p, &st, WUNTRACED | WNOHANG);
        if (w < 0) {
            CHECK(0, "wait: %s", strerror(errno));
            return stops;
        }
        if (w == p && WIFSTOPPED(st)) {
            if (at_stop)
                at_stop(stops, arg);
            stops++;
            kill(p, SIGCONT);
            continue;
        }
        if (w == p) {
            *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            return stops;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(0, "the stopped caller did not finish within 60 s (%d stops): killed", stops);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    return stops;
}

#endif
