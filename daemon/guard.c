/*
 * guard.c - the OOM guard (guard.h).
 *
 * Polling cannot outrun a function that allocates faster than the disk can
 * take evicted files (hundreds of MB in a few ms).  Plain disk would let such
 * a function finish, so we must too: while we hold evictable files, the
 * kernel is told to *wait* instead of killing.
 *   v1: memory.oom_control oom_kill_disable=1 - at the limit, charging tasks
 *       sleep until memory is uncharged; an eventfd on memory.oom_control
 *       wakes us at once, we evict, the punch uncharges and wakes them.
 *   v2: memory.high a little below memory.max - above it the kernel
 *       throttles the allocating tasks, and memory.events wakes us.
 * The eviction path takes no memory (O_DIRECT from a pre-charged buffer, see
 * evict.c), so the daemon cannot block on the very limit it is freeing.
 * With nothing left to evict the guard is lifted, so a function that really
 * outgrows its limit meets the kernel's normal OOM handling, as on disk.
 * The original values are restored at exit.
 */
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon.h"
#include "guardlease.h"
#include "log.h"
#include "loop.h"

/* After the watchdog outside the cgroup lifted the guard (a stall lasted
 * too long), it stays lifted this long: the kernel's OOM handling decides. */
#define GUARD_REARM_NS (5000ull * 1000 * 1000)

static struct {
    int version;             /* 1 or 2 */
    int armed;
    int ctl_fd;              /* v1 memory.oom_control, v2 memory.high (read-write) */
    char orig[32];           /* v2: memory.high as found */
    int64_t high;            /* v2: value we wrote, -1 = "max" */
    struct loop_ev oom;      /* v1: OOM notification eventfd */
    void (*on_oom)(void);
    void (*before_arm)(void); /* once, before the first arming */
    uint64_t rearm_at;       /* v1: not before (mono ns), after an outside lift */
    int follow;              /* the knob is read-only here (a container): the host arms it */
    int want;                /* follow mode: the daemon's wish, as last reported (-1: never) */
    int max_fd, cur_fd;      /* v2: memory.max (follow mode) and memory.current (read-only) */
    int stalled;             /* at the last reading: the guard set and the cgroup waiting at it */
    int inside;              /* the daemon is a member of the guarded cgroup: its charges wait too */
    int64_t seen_high, seen_cur; /* v2: memory.high and memory.current at the last stall reading */
    void (*want_fn)(int want);
} G = {.ctl_fd = -1, .high = -2, .oom = {.fd = -1}, .want = -1, .max_fd = -1, .cur_fd = -1};

static int guard_write(const char *v)
{
    ssize_t n = pwrite(G.ctl_fd, v, strlen(v), 0);
    return n == (ssize_t)strlen(v) ? 0 : -1;
}

/* v1 memory.oom_control: *disabled = oom_kill_disable, return under_oom
 * (-1 each when unreadable).  A pread on an fd kept open: no allocation. */
static int guard_read_v1(int *disabled)
{
    char buf[256];
    ssize_t n = pread(G.ctl_fd, buf, sizeof buf - 1, 0);
    *disabled = -1;
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *d = strstr(buf, "oom_kill_disable ");
    if (d)
        *disabled = d[17] == '1';
    char *p = strstr(buf, "under_oom ");
    return p && p[10] == '1';
}

/* A v2 knob's number (an fd kept open): -1 for "max" or unreadable. */
static int64_t guard_read_num(int fd)
{
    char buf[32];
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0 || buf[0] < '0' || buf[0] > '9')
        return -1;
    buf[n] = 0;
    return strtoll(buf, NULL, 10);
}

int guard_active(void)
{
    return G.ctl_fd >= 0;
}

/* Follow mode, v2: the host's guard read now (preads of fds kept open: nothing charged), into
 * *armed; returns whether the cgroup waits above it. */
static int guard_read_follow_v2(int *armed)
{
    int64_t high = guard_read_num(G.ctl_fd), max = guard_read_num(G.max_fd), cur = guard_read_num(G.cur_fd);
    *armed = high >= 0 && (max < 0 || high < max);
    G.seen_high = high;
    G.seen_cur = cur;
    return *armed && cur > high;
}

/* Own mode, v2 (the daemon wrote memory.high itself: `ephemera run --memory`): the cgroup above
 * the value written, read now.  Only when the daemon is in that cgroup: outside it nothing it
 * charges is throttled, and its eviction lines are not held (tests count them). */
static int guard_read_own_v2(void)
{
    if (!G.inside || G.high < 0)
        return 0;
    G.seen_high = G.high;
    G.seen_cur = guard_read_num(G.cur_fd);
    return G.seen_cur > G.high;
}

int guard_stalled_now(void)
{
    if (G.ctl_fd < 0)
        return 0;
    if (G.version == 2 && G.follow) {
        G.stalled = guard_read_follow_v2(&G.armed);
    } else if (G.version == 2) {
        G.stalled = guard_read_own_v2();
    } else if (G.version == 1) {
        int disabled, under = guard_read_v1(&disabled);
        G.stalled = (G.follow ? disabled == 1 : G.armed) && under == 1;
    }
    log_hold(G.stalled);
    return G.stalled;
}

void guard_usage(int64_t usage)
{
    if (G.ctl_fd < 0 || G.follow || G.version != 2)
        return;
    G.stalled = G.inside && G.high >= 0 && usage > G.high;
    log_hold(G.stalled);
}

int guard_blocks_requests(void)
{
    /* The guard not set at the last reading (every 20 ms; in follow mode the host's knob as
     * read then): no stall, no read. */
    if (G.ctl_fd < 0 || !G.inside || !G.armed || !guard_stalled_now())
        return 0;
    if (G.version != 2)
        return 1; /* v1: under_oom, a real freeze */
    /* v2: memory.current a little above memory.high is the steady state of a cgroup full of page
     * cache (the kernel reclaims it back towards memory.high), not a stall.  The kernel sleeps a
     * charger only when its penalty exceeds HZ/100 jiffies, 64 * HZ * overage^2 for a charge of a
     * batch (mm/memcontrol.c, calculate_high_delay): an overage above 1/80 of memory.high.  Below
     * 1/128 (0.78%) the daemon's charges cost a little reclaim and no sleep, so it answers.  The
     * values are those the stall was just read from. */
    return G.seen_cur - G.seen_high > G.seen_high / 128;
}

int guard_wanted(void)
{
    return G.follow ? G.want > 0 : -1;
}

void guard_on_want(void (*fn)(int want))
{
    G.want_fn = fn;
}

/*
 * Follow mode: Docker mounts the container's cgroup read-only, so the
 * daemon cannot set its guard (v1 oom_kill_disable, v2 memory.high); the
 * node agent sets it from the host
 * (src/guard/container-guard.ts) while the daemon wants it - the daemon
 * reports each change of its wish (guard_on_want: a control-protocol event)
 * - and the agent's watchdog bounds every stall.  The daemon reads the knob
 * at each budget tick: once it sees the guard set it makes its working set
 * resident (as before its own first arming), and while the cgroup waits at
 * its limit it holds its log.  Without cgroup.event_control (read-only too)
 * no eventfd wakes it: the 20 ms budget poll finds the stall, since usage at
 * the limit shrinks the budget and evicts.
 */
static void guard_follow(int want)
{
    if (want != G.want) {
        G.want = want;
        if (G.want_fn)
            G.want_fn(want);
    }
    if (G.version == 2) {
        /* memory.high throttles, it does not freeze; but it throttles us too (we are in the
         * cgroup): a page charged while usage is above it (a log line's page, a struct file for
         * an open) puts us to sleep for up to 2 s on our way back to user space.  So the log is
         * held as on v1, and the budget's opens wait (guard_stalled_now).  A guard nobody can lift
         * any more would throttle for good: the lease's rule bounds that too. */
        G.stalled = guard_read_follow_v2(&G.armed);
        log_hold(G.stalled);
        lease_tick(G.armed, G.stalled);
        return;
    }
    int disabled, under = guard_read_v1(&disabled);
    int armed = disabled == 1;
    if (armed && G.before_arm) {
        void (*fn)(void) = G.before_arm;
        G.before_arm = NULL;
        fn();
    }
    if (armed != G.armed) {
        G.armed = armed;
        log_hold(0);
        log_msg(LOG_INFO, "oom guard %s from outside the container (oom_kill_disable=%d)",
                armed ? "armed" : "lifted", armed);
    }
    G.stalled = armed && under == 1;
    log_hold(G.stalled);
    lease_tick(armed, under);
}

/* v1: the guard is off, and stays off for GUARD_REARM_NS, for the reason
 * given (lifted from outside, or given way to by the daemon). */
static void guard_off_for_a_while(const char *why)
{
    G.armed = 0;
    G.rearm_at = ephd_mono_ns() + GUARD_REARM_NS;
    log_hold(0);
    log_msg(LOG_WARN, "oom guard lifted %s; not re-armed for %llu s", why,
            (unsigned long long)(GUARD_REARM_NS / 1000000000ull));
}

void guard_update(int64_t limit, uint64_t headroom, int want)
{
    if (G.ctl_fd < 0)
        return;
    if (want && G.before_arm) {
        void (*fn)(void) = G.before_arm;
        G.before_arm = NULL;
        fn();
    }
    if (G.follow) {
        guard_follow(want);
        return;
    }
    if (G.version == 1) {
        int disabled, under = guard_read_v1(&disabled);
        if (G.armed && disabled == 0) {
            /* Not us: the watchdog outside the cgroup (src/guard/) found
             * the instance stalled at its limit and lifted the guard. */
            guard_off_for_a_while("from outside the cgroup (a stall at the limit lasted too long)");
        }
        if (want && G.rearm_at && ephd_mono_ns() < G.rearm_at)
            want = 0;
        if (want != G.armed) {
            if (guard_write(want ? "1" : "0") == 0) {
                G.armed = want;
                log_msg(LOG_INFO, "oom guard %s (oom_kill_disable=%d)", want ? "armed" : "lifted", want);
            }
        }
        /* Writing to the log may need a page of page cache: not while the
         * cgroup is frozen at its limit. */
        G.stalled = G.armed && under == 1;
        log_hold(G.stalled);
    } else {
        int64_t high = -1;
        if (want && limit >= 0)
            high = limit - (int64_t)headroom / 2;
        if (high != G.high && (high < 0 || G.high < 0 || llabs(high - G.high) > (1 << 20))) {
            char v[32];
            if (high < 0)
                snprintf(v, sizeof v, "max");
            else
                snprintf(v, sizeof v, "%lld", (long long)high);
            if (guard_write(v) == 0) {
                G.high = high;
                G.armed = high >= 0;
                log_msg(LOG_INFO, "oom guard: memory.high=%s", v);
            }
        }
        /* The stall against the value now written (guard_usage saw the one before). */
        G.stalled = guard_read_own_v2();
        log_hold(G.stalled);
    }
}

void guard_give_way(void)
{
    if (G.ctl_fd < 0 || G.follow || G.version != 1 || !G.armed)
        return;
    if (guard_write("0") == 0)
        guard_off_for_a_while("by the daemon: it needs memory back to keep a file's bytes");
}

void guard_waiting(void)
{
    if (G.ctl_fd >= 0 && G.follow)
        guard_follow(G.want > 0);
}

static void guard_on_oom(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    uint64_t n;
    if (read(ev->fd, &n, sizeof n) < 0)
        return;
    G.on_oom();
}

/* Whether this process is listed in dir's cgroup.procs (read once, at start: the daemon is
 * started in its cgroup, `ephemera run --memory` and a container alike). */
static int guard_member(const char *dir)
{
    char p[PATH_MAX + 64], line[32];
    snprintf(p, sizeof p, "%s/cgroup.procs", dir);
    FILE *f = fopen(p, "re");
    int found = 0;
    long self = (long)getpid();
    while (f && !found && fgets(line, sizeof line, f))
        found = strtol(line, NULL, 10) == self;
    if (f)
        fclose(f);
    return found;
}

void guard_init(int version, const char *dir, void (*on_oom)(void), void (*before_arm)(void))
{
    char p[PATH_MAX + 64];
    G.version = version;
    G.inside = guard_member(dir);
    G.on_oom = on_oom;
    G.before_arm = before_arm;
    snprintf(p, sizeof p, "%s/%s", dir, version == 1 ? "memory.oom_control" : "memory.high");
    G.ctl_fd = open(p, O_RDWR | O_CLOEXEC);
    if (G.ctl_fd < 0 && errno == EROFS) {
        G.ctl_fd = open(p, O_RDONLY | O_CLOEXEC);
        if (G.ctl_fd >= 0) {
            G.follow = 1;
            lease_init(D.rundir, dir);
            if (version == 2) {
                char q[PATH_MAX + 64];
                snprintf(q, sizeof q, "%s/memory.max", dir);
                G.max_fd = open(q, O_RDONLY | O_CLOEXEC);
                snprintf(q, sizeof q, "%s/memory.current", dir);
                G.cur_fd = open(q, O_RDONLY | O_CLOEXEC);
            }
            log_msg(LOG_INFO, "oom guard: %s is read-only (a container's cgroup); following the "
                              "guard its host sets (ephemera node arms it)", p);
            return;
        }
    }
    if (G.ctl_fd < 0) {
        log_msg(LOG_INFO, "oom guard unavailable: open(%s): %s", p, strerror(errno));
        return;
    }
    if (version == 2) {
        ssize_t n = pread(G.ctl_fd, G.orig, sizeof G.orig - 1, 0);
        G.orig[n > 0 ? n : 0] = 0;
        G.orig[strcspn(G.orig, "\n")] = 0;
        /* Someone else manages memory.high: leave it to them. */
        if (strcmp(G.orig, "max") != 0) {
            log_msg(LOG_INFO, "oom guard off: memory.high is already %s", G.orig);
            close(G.ctl_fd);
            G.ctl_fd = -1;
            return;
        }
        snprintf(p, sizeof p, "%s/memory.current", dir);
        G.cur_fd = open(p, O_RDONLY | O_CLOEXEC);
        return;
    }
    /* v1: leave it alone if someone already disabled the OOM killer;
     * otherwise probe that we may write it, then listen for OOM. */
    char cur[256];
    ssize_t n0 = pread(G.ctl_fd, cur, sizeof cur - 1, 0);
    cur[n0 > 0 ? n0 : 0] = 0;
    if (strstr(cur, "oom_kill_disable 1")) {
        log_msg(LOG_INFO, "oom guard off: oom_kill_disable is already set on %s", dir);
        close(G.ctl_fd);
        G.ctl_fd = -1;
        return;
    }
    if (guard_write("0") < 0) {
        log_msg(LOG_INFO, "oom guard unavailable: write(%s): %s", p, strerror(errno));
        close(G.ctl_fd);
        G.ctl_fd = -1;
        return;
    }
    snprintf(p, sizeof p, "%s/cgroup.event_control", dir);
    int cfd = open(p, O_WRONLY | O_CLOEXEC);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%d %d", efd, G.ctl_fd);
    if (cfd >= 0 && efd >= 0 && write(cfd, msg, (size_t)n) == n) {
        G.oom.fd = efd;
        G.oom.fn = guard_on_oom;
        if (loop_add(&G.oom, EPOLLIN) < 0) {
            close(efd);
            G.oom.fd = -1;
        }
    } else if (efd >= 0) {
        close(efd);
    }
    if (cfd >= 0)
        close(cfd);
}

void guard_fini(void)
{
    if (G.ctl_fd >= 0) {
        if (G.max_fd >= 0)
            close(G.max_fd);
        if (G.cur_fd >= 0)
            close(G.cur_fd);
        G.max_fd = G.cur_fd = -1;
        if (G.follow) /* the host's knob: it lifts it when the container goes */
            lease_fini();
        else if (G.version == 1 && G.armed)
            guard_write("0");
        else if (G.version == 2 && G.high != -2)
            guard_write(G.orig);
        close(G.ctl_fd);
        G.ctl_fd = -1;
    }
    if (G.oom.fd >= 0) {
        loop_del(&G.oom);
        close(G.oom.fd);
        G.oom.fd = -1;
    }
    log_hold(0);
}
