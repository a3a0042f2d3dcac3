/*
 * guardlease.c - the guard's lease (guardlease.h).
 */
#include "guardlease.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* How long a stall may last, with nobody left to lift the guard, before the
 * daemon kills: the outside watchdog's first bound (src/guard/watchdog.ts
 * stallMs), so a stall ends no later than a watched one would begin to. */
#define LEASE_STALL_NS (1000ull * 1000 * 1000)

static struct {
    int fd;                  /* our read end of the lease FIFO, -1 = none */
    int procs_fd;            /* <cgroup>/cgroup.procs */
    char path[PATH_MAX];
    uint64_t stall_since;    /* a stall with nobody holding the lease, 0 = none */
    int killed;              /* pid killed in this stall */
} L = {.fd = -1, .procs_fd = -1};

/* Static: the kill path must not touch a page that is not resident. */
static char procs_buf[16384];

static void lease_open(void)
{
    int fd = open(L.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
        close(fd);
        return;
    }
    if (L.fd >= 0)
        close(L.fd);
    L.fd = fd;
}

void lease_init(const char *rundir, const char *cgdir)
{
    char p[PATH_MAX + 32];
    if (snprintf(L.path, sizeof L.path, "%s/guard.lease", rundir) >= (int)sizeof L.path)
        return;
    lease_open();
    log_msg(LOG_INFO, "oom guard lease: %s", L.fd >= 0 ? L.path : "none (the host keeps no lease: a stall is "
                                                                   "ended from outside only)");
    snprintf(p, sizeof p, "%s/cgroup.procs", cgdir);
    L.procs_fd = open(p, O_RDONLY | O_CLOEXEC);
}

int lease_held(void)
{
    if (L.fd < 0)
        return -1;
    char b[64];
    ssize_t n = read(L.fd, b, sizeof b);
    if (n != 0)
        return 1; /* EAGAIN: a writer lives (bytes, never written by the host, are drained) */
    /* No writer.  A host that made its FIFO anew (another state directory's inode at our
     * path) holds that one: look at the path again (an open, off the stall path). */
    struct stat a, b2;
    if (stat(L.path, &a) == 0 && fstat(L.fd, &b2) == 0 && (a.st_ino != b2.st_ino || a.st_dev != b2.st_dev)) {
        lease_open();
        n = read(L.fd, b, sizeof b);
        return n != 0;
    }
    return 0;
}

/* The tasks of our cgroup, each with its /proc/PID/oom_score open: during a
 * stall an open fails (ENOMEM: a struct file is charged to the cgroup that
 * is full), a pread of an fd opened and read before does not. */
#define LEASE_TASKS 64
static struct {
    pid_t pid;
    int fd;
} tasks[LEASE_TASKS];
static int ntasks;

/* Brings the list in line with cgroup.procs, while the guard is set (a pread
 * of the kept fd: it works during a stall too, and a failed one changes nothing).
 * A task not listed yet is opened only when may_open: on v2 an open during a
 * stall is not refused, it charges a struct file (and the seq_file and its
 * buffer) to the cgroup above memory.high, and the kernel throttles the daemon
 * for up to 2 s on its way back to user space. */
static void lease_refresh(int may_open)
{
    if (L.procs_fd < 0)
        return;
    ssize_t n = pread(L.procs_fd, procs_buf, sizeof procs_buf - 1, 0);
    if (n <= 0)
        return;
    procs_buf[n] = '\0';
    pid_t self = getpid();
    int keep[LEASE_TASKS] = {0};
    for (char *s = procs_buf, *end; *s; s = end) {
        long pid = strtol(s, &end, 10);
        if (end == s)
            break;
        while (*end == '\n')
            end++;
        if (pid <= 1 || pid == self)
            continue; /* pid 1 of the container's namespace ignores our SIGKILL */
        int i;
        for (i = 0; i < ntasks && tasks[i].pid != pid; i++)
            ;
        if (i == ntasks) {
            if (ntasks == LEASE_TASKS || !may_open)
                continue;
            char p[64], v[32];
            snprintf(p, sizeof p, "/proc/%ld/oom_score", pid);
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            (void)!pread(fd, v, sizeof v, 0); /* the kernel's buffer for it: now */
            tasks[ntasks].pid = (pid_t)pid;
            tasks[ntasks].fd = fd;
            ntasks++;
        }
        keep[i] = 1;
    }
    for (int i = ntasks - 1; i >= 0; i--) {
        if (keep[i])
            continue;
        close(tasks[i].fd);
        tasks[i] = tasks[--ntasks];
        keep[i] = keep[ntasks];
    }
}

/* The task the kernel's OOM killer would pick: the highest oom_score (0 =
 * unkillable, skipped), never the daemon itself.  0 when none. */
static pid_t lease_victim(int *score)
{
    pid_t best = 0;
    *score = 0;
    for (int i = 0; i < ntasks; i++) {
        char v[32];
        ssize_t k = pread(tasks[i].fd, v, sizeof v - 1, 0);
        if (k <= 0)
            continue; /* exited: its /proc file answers ESRCH */
        v[k] = '\0';
        int sc = atoi(v);
        if (sc > *score) {
            *score = sc;
            best = tasks[i].pid;
        }
    }
    return best;
}

void lease_tick(int armed, int under)
{
    if (L.fd < 0 && L.path[0] && armed)
        lease_open(); /* linked after we started (an agent that took the container over) */
    if (armed) /* a task that came during a stall is opened after it (or when nobody else is left to kill) */
        lease_refresh(under != 1);
    if (!armed || under != 1) {
        L.stall_since = 0;
        if (L.killed) {
            log_hold(0);
            log_msg(LOG_WARN, "oom guard orphaned: the stall ended after the daemon killed pid %d (nobody held the "
                              "lease to lift the guard)", L.killed);
            L.killed = 0;
        }
        return;
    }
    if (lease_held() != 0)
        return; /* someone outside watches (its watchdog bounds the stall), or no lease at all */
    uint64_t now = ephd_mono_ns();
    if (!L.stall_since) {
        L.stall_since = now;
        return;
    }
    if (now - L.stall_since < LEASE_STALL_NS)
        return;
    int score;
    pid_t v = lease_victim(&score);
    if (v <= 0) {
        /* Nobody we know of is left to kill: the tasks that came during the stall, opened now
         * (the daemon may be throttled for it, but it has to act). */
        lease_refresh(1);
        v = lease_victim(&score);
    }
    if (v > 0 && kill(v, SIGKILL) == 0) {
        L.killed = v;
        /* Said now, while the container still runs (the victim may be its whole function, and the
         * container ends with it); the write fails harmlessly when no page is to be had. */
        log_hold(0);
        log_msg(LOG_WARN, "oom guard orphaned: nobody holds its lease (%s) to lift it, and the cgroup "
                          "stalled at its limit for %llu ms: killed pid %d (oom_score %d), as the "
                          "kernel would have without the guard",
                L.path, (unsigned long long)(LEASE_STALL_NS / 1000000), v, score);
        log_hold(1);
    }
    L.stall_since = now; /* the victim's exit uncharges its pages: a new stall needs its own bound */
}

void lease_fini(void)
{
    if (L.fd >= 0)
        close(L.fd);
    if (L.procs_fd >= 0)
        close(L.procs_fd);
    L.fd = L.procs_fd = -1;
    for (int i = 0; i < ntasks; i++)
        close(tasks[i].fd);
    ntasks = 0;
}
