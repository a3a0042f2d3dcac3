/*
 * A daemon killed (SIGKILL) in the middle of moving a file to disk, with no
 * keeper to start a new one, leaves the file's state MOVING for good: nobody
 * will ever lower it.  A process that meets the file then (a read that backs
 * off and waits for the move to end) must not wait for ever: once the kernel
 * says the daemon is gone and no successor comes, it gets EIO, within a bound
 * (shim/fp_settle.c, fp_moving_slice).
 *
 * The fault build of the daemon stops itself (SIGSTOP) just after it set
 * MOVING (EPHEMERA_LOCK_STALL=evict-moving, daemon/evict.c), which makes the
 * moment exact.  shimmed.h starts no keeper.  Before that, the same daemon is
 * stopped by the test and a new program's first request must be reported in
 * the shim's log while it waits (shim/rpc.c, rpc_recv), then answered.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shimmed.h"

#define BOUND_S 20.0 /* the reader must have its answer within this: 15 s for a keeper that never comes, and slack */

/* 1 once the shim's log holds needle (polled up to 5 s). */
static int log_has(const char *needle)
{
    const char *log = getenv("EPHEMERA_LOG");
    static char buf[1 << 16];
    for (int i = 0; log && i < 500; i++) {
        int fd = open(log, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = 0;
        if (strstr(buf, needle))
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/*
 * A daemon that runs but does not answer (stopped here with SIGSTOP) is waited
 * for, but not in silence: a new shimmed program's first request that waits
 * for an answer (a pool batch for its first new file: its fd table's
 * registration is sent without waiting since branch gccstart) logs the
 * daemon's pid and state after EPHEMERA_RPC_QUIET_S (1 s in this test; 10 s
 * in production builds), and gets its answer once the daemon goes on.
 */
static void silent_daemon(pid_t daemon, const char *root)
{
    char fresh[PATH_MAX];
    snprintf(fresh, sizeof fresh, "%s/silent", root);
    kill(daemon, SIGSTOP);
    CHECK(stopped_within(daemon), "the daemon did not stop");
    pid_t c = fork();
    if (c == 0) {
        execl("/usr/bin/touch", "touch", fresh, (char *)NULL);
        _exit(127);
    }
    int said = log_has("has not answered request");
    CHECK(said, "no word in the shim's log (%s) of the daemon that did not answer", getenv("EPHEMERA_LOG"));
    CHECK(waitpid(c, NULL, WNOHANG) == 0, "the program did not wait for the stopped daemon");
    kill(daemon, SIGCONT);
    double took;
    int st = wait_bounded_s(c, BOUND_S, &took);
    CHECK(st == 0, "the program, once the daemon went on, exited %d after %.1f s", st, took);
    if (said)
        printf("movekill_test: a request to a stopped daemon was reported in the log, and answered once it went on\n");
    unlink(fresh); /* the file moved next is the test's own */
}

static int child(const char *root, const char *disk)
{
    (void)disk;
    char run[PATH_MAX], a[PATH_MAX];
    snprintf(a, sizeof a, "%s/moving", root);
    pid_t daemon = shimmed_daemon(root, run);
    enum { N = 64 * 1024 };
    static char buf[N];
    memset(buf, 'm', N);
    int fd = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, buf, N) == N, "write %s: %s", a, strerror(errno));
    CHECK(ephd_stat(run, "files_in_memory") == 1, "the file is not in memory");
    if (daemon <= 0 || fd < 0)
        return 1;
    silent_daemon(daemon, root);

    /* Ask for the move from a child: the daemon stops inside it and never answers. */
    pid_t asker = shrink_until_stopped(run, daemon);
    CHECK(asker > 0, "the daemon did not stop with the file MOVING (state %c)", proc_state(daemon));
    if (asker <= 0)
        return 1;

    /* A reader meets MOVING and waits for the move; then the mover dies. */
    pid_t reader = fork();
    if (reader == 0) {
        char got[16];
        ssize_t r = pread(fd, got, sizeof got, 0);
        int e = errno;
        if (r == (ssize_t)sizeof got && memcmp(got, buf, sizeof got) == 0)
            _exit(0); /* read from memory after all: also an answer */
        fprintf(stderr, "movekill_test: the reader's pread: %zd (%s)\n", r, r < 0 ? strerror(e) : "short or wrong");
        _exit(r < 0 && e == EIO ? 0 : 1);
    }
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(waitpid(reader, NULL, WNOHANG) == 0, "the reader did not wait for the move");
    kill(daemon, SIGKILL); /* our parent reaps it: a zombie meanwhile, which counts as gone */
    double took;
    int st = wait_bounded_s(reader, BOUND_S, &took);
    CHECK(st == 0, "the reader behind a daemon killed mid-move exited %d after %.1f s (0: EIO or the bytes; -1: "
          "still waiting after %.0f s)", st, took, BOUND_S);
    printf("movekill_test: a read behind a daemon killed while it moved the file answered in %.2f s\n", took);
    kill(asker, SIGKILL);
    waitpid(asker, NULL, 0);
    close(fd);
    printf("movekill_test (shimmed): %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return shimmed_main(argc, argv, "movekill", child);
    /* The daemon's stall point is in its fault build only; the shim stays the production one. */
    if (shimmed_use_faulty_daemon("movekill_test", "evict-moving"))
        return 1;
    /* The fault build of the shim: it takes EPHEMERA_RPC_QUIET_S.  Its log, to look for the report. */
    if (shimmed_use_faults_build("movekill_test"))
        return 1;
    setenv("EPHEMERA_RPC_QUIET_S", "1", 1);
    char log[PATH_MAX], cwd[PATH_MAX - 64];
    if (!getcwd(cwd, sizeof cwd))
        return 1;
    snprintf(log, sizeof log, "%s/build/test/movekill-%d.log", cwd, (int)getpid());
    setenv("EPHEMERA_LOG", log, 1);
    int rc = shimmed_main(argc, argv, "movekill", child);
    if (rc == 0)
        unlink(log);
    else
        fprintf(stderr, "movekill_test: the shim's log is %s\n", log);
    return rc;
}
