/*
 * budget.c - the memory adapter: how much the in-memory files may occupy.
 *
 *   budget = limit - (usage - bytes of our in-memory files) - headroom
 *
 * Mechanism (see "Daemon" in docs/ARCHITECTURE.md for the reasoning):
 *   - a 20 ms timerfd re-reads two small cgroup files (limit and usage) with
 *     pread on fds kept open: a few microseconds per tick, and it bounds the
 *     reaction to the function's growth or a limit change to ~20 ms plus
 *     the eviction itself;
 *   - kernel notifications wake us earlier where they exist: cgroup v2
 *     memory.events (inotify IN_MODIFY on high/max/oom), cgroup v1
 *     memory.pressure_level "medium" through cgroup.event_control;
 *   - every RESERVE (a file growing past what the budget allowed) re-reads
 *     the cgroup before deciding.
 * Page cache is reclaimable by the kernel, so when the raw formula says we
 * must evict, memory.stat is read and clean file pages are not counted as
 * the function's own memory (otherwise the page cache that our own
 * evictions create would trigger more evictions).
 */
#include "budget.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "evict.h"
#include "guard.h"
#include "log.h"
#include "loop.h"

#define BUDGET_POLL_NS (20ll * 1000 * 1000)
#define BUDGET_IDLE_NS (1000ll * 1000 * 1000)
#define BUDGET_UNLIMITED (1ll << 60)
#define SHORTFALL_INTERVAL_NS (250ull * 1000 * 1000)

static struct {
    int64_t static_budget;      /* --budget or -1 */
    int64_t headroom_opt;       /* --headroom or -1 */
    int version;                /* 1, 2, 0 = no cgroup */
    char base[PATH_MAX];        /* our own cgroup directory */
    char dir[PATH_MAX];         /* the directory whose limit binds (base or an ancestor) */
    char mount[PATH_MAX];       /* hierarchy mount point: the walk stops there */
    int fd_limit, fd_usage;     /* open on dir, read with pread */
    int fd_stat;                /* dir's memory.stat, read with pread */
    int64_t limit;              /* cgroup limit, -1 unlimited */
    int64_t usage;              /* cgroup usage, -1 unknown */
    int64_t own;                /* last computed own memory, -1 unknown */
    int64_t own_peak;           /* highest own on a fresh memory.stat, -1 unknown */
    int64_t own_peak_win;       /* the same since budget_own_window(1) opened a window */
    int64_t override;           /* limit adopted by shrink/grow, -1 none */
    int64_t memavail_half;
    uint64_t headroom;          /* in effect */
    uint64_t ticks;
    uint64_t last_shortfall;
    struct loop_timer timer;
    struct loop_ev notify;
} B = {.fd_limit = -1, .fd_usage = -1, .fd_stat = -1, .override = -1, .limit = -1, .usage = -1, .own = -1,
       .own_peak = -1, .own_peak_win = -1};

static int64_t budget_read_fd(int fd)
{
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -2;
    buf[n] = 0;
    if (strncmp(buf, "max", 3) == 0)
        return -1;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (end == buf)
        return -2;
    return v >= BUDGET_UNLIMITED ? -1 : v;
}

static int64_t budget_read_file(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -2;
    int64_t v = budget_read_fd(fd);
    close(fd);
    return v;
}

static const char *budget_limit_name(void)
{
    return B.version == 2 ? "memory.max" : "memory.limit_in_bytes";
}

static const char *budget_usage_name(void)
{
    return B.version == 2 ? "memory.current" : "memory.usage_in_bytes";
}

/* What memory.stat tells us beyond usage. */
struct budget_mstat {
    int64_t reclaimable; /* clean file pages: the kernel takes them back without swap */
    int64_t shmem;       /* shared memory charged here: our memfds' resident pages (and any /dev/shm) */
};

static int budget_read_stat(struct budget_mstat *m)
{
    /* v1 total_* are hierarchical; shmem sits on the anon LRU, so the file
     * lists never contain our memfds. */
    static const char *v1[] = {"total_inactive_file", "total_active_file", "total_dirty",
                               "total_writeback", "total_shmem"};
    static const char *v2[] = {"inactive_file", "active_file", "file_dirty", "file_writeback",
                               "shmem"};
    const char *const *names = B.version == 2 ? v2 : v1;
    /* A pread of an fd kept open, into a static buffer: an open would charge a struct file to
     * our cgroup, which on v2 above memory.high throttles us (this is read just before evicting,
     * when the function stalls at the guard), and fopen's buffer came from the heap. */
    static char buf[16384];
    int64_t val[5] = {0};
    ssize_t n = B.fd_stat < 0 ? -1 : pread(B.fd_stat, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    for (char *line = buf; *line;) {
        for (int i = 0; i < 5; i++) {
            size_t l = strlen(names[i]);
            if (strncmp(line, names[i], l) == 0 && line[l] == ' ')
                val[i] = strtoll(line + l + 1, NULL, 10);
        }
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    /* Dirty and writeback pages count as reclaimable too: under the cgroup's
     * pressure the kernel writes them back and frees them (v1 reclaim waits
     * on writeback, v2 throttles the writer) instead of OOM-killing.  Counting
     * them as the function's own memory made the page cache of a file that
     * had just gone to disk push the other files out of memory as well. */
    (void)val[2];
    (void)val[3];
    m->reclaimable = val[0] + val[1];
    m->shmem = val[4];
    return 0;
}

static int64_t budget_reclaimable(void)
{
    struct budget_mstat m;
    return B.version && budget_read_stat(&m) == 0 ? m.reclaimable : 0;
}

/* Pick, between our cgroup and its ancestors up to the mount point, the
 * one with the smallest limit, and keep its limit and usage files open. */
static void budget_rescan(void)
{
    char cur[PATH_MAX], best[PATH_MAX];
    int64_t best_limit = -1;
    snprintf(cur, sizeof cur, "%s", B.base);
    snprintf(best, sizeof best, "%s", B.base);
    size_t mlen = strlen(B.mount);
    for (;;) {
        int64_t l = budget_read_file(cur, budget_limit_name());
        if (l >= 0 && (best_limit < 0 || l < best_limit)) {
            best_limit = l;
            snprintf(best, sizeof best, "%s", cur);
        }
        if (strlen(cur) <= mlen)
            break;
        char *s = strrchr(cur, '/');
        if (!s || s == cur)
            break;
        *s = 0;
    }
    if (strcmp(best, B.dir) == 0 && B.fd_limit >= 0)
        return;
    if (B.fd_limit >= 0)
        close(B.fd_limit);
    if (B.fd_usage >= 0)
        close(B.fd_usage);
    if (B.fd_stat >= 0)
        close(B.fd_stat);
    snprintf(B.dir, sizeof B.dir, "%s", best);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", B.dir, budget_limit_name());
    B.fd_limit = open(p, O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "%s/%s", B.dir, budget_usage_name());
    B.fd_usage = open(p, O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "%s/memory.stat", B.dir);
    B.fd_stat = open(p, O_RDONLY | O_CLOEXEC);
    log_msg(LOG_INFO, "cgroup v%d: limit from %s (%lld)", B.version, B.dir, (long long)best_limit);
}

static void budget_memavail(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[128];
    if (!f)
        return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "MemAvailable:", 13) == 0)
            B.memavail_half = strtoll(line + 13, NULL, 10) * 1024 / 2;
    fclose(f);
}

static uint64_t budget_headroom_for(int64_t limit)
{
    if (B.headroom_opt >= 0)
        return (uint64_t)B.headroom_opt;
    if (limit < 0)
        return 0;
    /* Enough for what a function can allocate between two polls, without
     * wasting a large share of small containers. */
    uint64_t h = (uint64_t)limit / 16;
    if (h < (8u << 20))
        h = 8u << 20;
    if (h > (64u << 20))
        h = 64u << 20;
    return h;
}

static int64_t budget_limit_eff(void)
{
    int64_t l = B.limit;
    if (B.override >= 0 && (l < 0 || B.override < l))
        l = B.override;
    return l;
}

/* memory.stat is re-read only when usage moved by more than this since the
 * last reading, or when we are about to evict.  While files are in memory
 * under a limit the growth estimate wants it fresher: then a move of usage
 * by more than BUDGET_RESTAT_LIVE, or BUDGET_RESTAT_TICKS ticks, is enough.
 * (The function's own memory cannot grow by more than usage moved, so
 * skipping the read of a flat tick loses no growth; the read costs
 * 0.2-0.35 ms of CPU, on the function's CPU in a one-CPU container.) */
#define BUDGET_RESTAT_BYTES (4ll << 20)
#define BUDGET_RESTAT_LIVE (1ll << 20)
#define BUDGET_RESTAT_TICKS 5
/* A growing function gets this many ticks of its current growth rate as
 * extra headroom: evicting takes time (disk speed), so start early. */
#define BUDGET_SURGE_TICKS 10

static struct budget_mstat budget_ms;
static budget_shortfall_cb budget_shortfall_fn;
static uint64_t budget_usage_seq, budget_stat_seq; /* readings of usage / of memory.stat */
static int64_t budget_raw_at_stat = -1, budget_usage_at_stat = -1;
static int64_t budget_prev_own = -1, budget_prev_growth, budget_surge;

/* Is the last memory.stat reading too old for the current usage reading?
 * At most once per usage reading (see BUDGET_RESTAT_*). */
static int budget_stat_stale(int64_t raw, uint64_t ours)
{
    if (budget_raw_at_stat < 0)
        return 1;
    if (budget_stat_seq == budget_usage_seq)
        return 0;
    if (llabs(raw - budget_raw_at_stat) > BUDGET_RESTAT_BYTES)
        return 1;
    return ours > 0 && (llabs(B.usage - budget_usage_at_stat) > BUDGET_RESTAT_LIVE ||
                        budget_usage_seq - budget_stat_seq >= BUDGET_RESTAT_TICKS);
}

/* Recompute from the last readings; `precise` re-reads memory.stat. */
static uint64_t budget_compute(int precise)
{
    int64_t L = budget_limit_eff();
    uint64_t ours = atomic_load(&D.h->c.bytes_in_memory);
    B.headroom = budget_headroom_for(L);
    int64_t budget = -1;
    B.own = -1;
    if (L >= 0) {
        if (B.usage >= 0) {
            int64_t raw = B.usage - (int64_t)ours;
            if (B.version && (precise || budget_stat_stale(raw, ours)) && budget_read_stat(&budget_ms) == 0) {
                budget_raw_at_stat = raw;
                budget_usage_at_stat = B.usage;
                budget_stat_seq = budget_usage_seq;
            }
            /* Our files are charged by their resident pages, which fill the
             * capacity only gradually: subtracting capacity would make our
             * own writes look like the function growing. */
            int64_t charged = B.version ? budget_ms.shmem : (int64_t)ours;
            if (charged > (int64_t)ours)
                charged = (int64_t)ours;
            int64_t own = B.usage - charged - (B.version ? budget_ms.reclaimable : 0);
            if (own < 0)
                own = 0;
            B.own = own;
            /* The peak only from a memory.stat read for this usage reading:
             * an old one may still count page cache as the function's. */
            if (B.version && budget_stat_seq == budget_usage_seq) {
                if (own > B.own_peak)
                    B.own_peak = own;
                if (own > B.own_peak_win)
                    B.own_peak_win = own;
            }
            /* Capacity not yet resident will be charged when it is
             * written: it must fit as well. */
            budget = L - own - (int64_t)B.headroom - budget_surge;
        } else {
            budget = L - (int64_t)B.headroom;
        }
        if (budget < 0)
            budget = 0;
    }
    if (B.static_budget >= 0 && (budget < 0 || B.static_budget < budget))
        budget = B.static_budget;
    if (budget < 0)
        budget = B.memavail_half;
    return (uint64_t)budget;
}

static void budget_read(void)
{
    if (B.version && B.fd_usage >= 0) {
        int64_t l = budget_read_fd(B.fd_limit), u = budget_read_fd(B.fd_usage);
        if (l != -2)
            B.limit = l;
        if (u >= 0)
            B.usage = u;
        budget_usage_seq++;
    }
}

static void budget_apply(void)
{
    if (B.version == 2 && guard_active())
        guard_usage(B.usage);
    uint64_t budget = budget_compute(0);
    uint64_t ours = atomic_load(&D.h->c.bytes_in_memory);
    if (ours > budget && B.version)
        budget = budget_compute(1);
    /* The shim grows files on its own while they fit under the published
     * budget; past it, RESERVE decides without pushing out files in use.
     * Publishing a little less than the eviction threshold keeps small
     * moves of the live budget (a tick's own-memory and surge estimate)
     * from landing in the tick's eviction below, whose victim is simply the
     * least recently used file, possibly one in use. */
    uint64_t slack = 0;
    if (B.version && budget_limit_eff() >= 0) {
        slack = budget / 16;
        if (slack < (1u << 20))
            slack = budget < (2u << 20) ? budget / 2 : (1u << 20);
    }
    atomic_store(&D.h->budget, budget - slack);
    if (ours > budget) {
        log_msg(LOG_INFO, "budget %llu < %llu bytes in memory (own %lld, surge %lld): evicting",
                (unsigned long long)budget, (unsigned long long)ours, (long long)B.own,
                (long long)budget_surge);
        evict_down_to(budget, 0);
    }
    int64_t L = budget_limit_eff();
    if (L >= 0 && B.own >= 0 && (uint64_t)B.own + B.headroom > (uint64_t)L) {
        uint64_t now = ephd_mono_ns();
        if (now - B.last_shortfall >= SHORTFALL_INTERVAL_NS) {
            B.last_shortfall = now;
            uint64_t bytes = (uint64_t)B.own + B.headroom - (uint64_t)L;
            log_msg(LOG_WARN, "shortfall: own %lld + headroom %llu > limit %lld",
                    (long long)B.own, (unsigned long long)B.headroom, (long long)L);
            if (budget_shortfall_fn)
                budget_shortfall_fn(bytes, L, B.usage, atomic_load(&D.h->c.bytes_in_memory));
        }
    }
    /* Only under a real limit: an unlimited cgroup has nothing to guard. */
    if (guard_active())
        guard_update(B.limit, B.headroom, B.limit >= 0 && evict_has_evictable());
}

void budget_refresh(void)
{
    budget_read();
    budget_apply();
}

/* The guard's wake-up: the cgroup is at its limit with tasks waiting. */
static void budget_on_oom(void)
{
    evict_test_touch();
    budget_refresh();
}

/* Once per tick: growth of the function's own memory sets the surge
 * reserve once it has lasted two ticks (then ten ticks of the smaller step
 * are reserved); a tick without growth halves it.  A single step - a buffer
 * allocated once, then used - is already in `own` and predicts nothing:
 * reserving ten times it, for ten ticks, zeroed the budget just when the
 * function wrote that buffer to a file (FunctionBench's gzip does that).
 * Fast growers still meet the OOM guard, which makes them wait, not die. */
static void budget_track_growth(void)
{
    if (B.own < 0) {
        budget_surge = budget_prev_growth = 0;
        return;
    }
    int64_t d = budget_prev_own >= 0 ? B.own - budget_prev_own : 0;
    int64_t steady = d < budget_prev_growth ? d : budget_prev_growth;
    if (d <= 0)
        budget_surge /= 2;
    else
        budget_surge = budget_surge * 4 / 5;
    if (steady > 0 && steady * BUDGET_SURGE_TICKS > budget_surge)
        budget_surge = steady * BUDGET_SURGE_TICKS;
    budget_prev_growth = d;
    budget_prev_own = B.own;
}

void budget_on_shortfall(budget_shortfall_cb fn)
{
    budget_shortfall_fn = fn;
}

void budget_set_override(int64_t limit)
{
    B.override = limit;
}

int64_t budget_override(void)
{
    return B.override;
}

void budget_snapshot(struct budget_snapshot *s)
{
    s->limit = budget_limit_eff();
    s->usage = B.usage;
    s->budget = atomic_load(&D.h->budget);
    s->headroom = B.headroom;
    s->cgroup = B.version ? B.dir : NULL;
    s->version = B.version;
    s->own = B.own;
    s->own_peak = B.own_peak;
}

int64_t budget_own_window(int reset)
{
    if (!B.version)
        return -1;
    /* A reading of usage and memory.stat now: the window's last sample (and
     * the next one's first), then the usual apply (it may evict). */
    budget_read();
    budget_compute(1);
    budget_apply();
    int64_t peak = B.own_peak_win;
    if (reset)
        B.own_peak_win = budget_stat_seq == budget_usage_seq ? B.own : -1;
    return peak;
}

int budget_fits(int64_t limit, int64_t *excess)
{
    int64_t need;
    if (B.version && B.fd_usage >= 0) {
        int64_t u = budget_read_fd(B.fd_usage);
        if (u >= 0)
            B.usage = u;
        need = B.usage - budget_reclaimable();
    } else {
        need = (int64_t)atomic_load(&D.h->c.bytes_in_memory);
    }
    int64_t room = limit - (int64_t)budget_headroom_for(limit);
    *excess = need > room ? need - room : 0;
    return need <= room;
}

void budget_fini(void)
{
    loop_cancel(&B.timer);
    guard_fini();
}

static void budget_on_tick(uint64_t n)
{
    B.ticks += n;
    uint64_t per_sec = B.version ? (uint64_t)(1000000000ll / BUDGET_POLL_NS) : 1;
    if (B.ticks % per_sec < n && !guard_stalled_now()) {
        /* Once a second: limits set on ancestors, and MemAvailable.  Not while the cgroup
         * stalls at the guard: the walk opens each ancestor's limit file (a struct file charged
         * to us: on v1 the open fails then, on v2 it throttles us for up to 2 s). */
        if (B.version)
            budget_rescan();
        else
            budget_memavail();
    }
    budget_read();
    budget_compute(0);
    budget_track_growth();
    budget_apply();
}

static void budget_on_notify(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    char buf[512];
    if (read(ev->fd, buf, sizeof buf) < 0)
        return;
    budget_refresh();
}

/* Our cgroup from /proc/self/cgroup and the hierarchy mount from
 * /proc/self/mountinfo.  v1's memory controller wins on hybrid systems,
 * because that is where the limit lives there. */
static int budget_find(char *err, size_t errlen)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[PATH_MAX + 128], v1path[PATH_MAX] = "", v2path[PATH_MAX] = "";
    int have1 = 0, have2 = 0;
    if (!f) {
        snprintf(err, errlen, "cannot read /proc/self/cgroup: %s", strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = 0;
        char *ctrl = c1 + 1, *path = c2 + 1;
        if (strcmp(line, "0") == 0 && !*ctrl) {
            snprintf(v2path, sizeof v2path, "%s", path);
            have2 = 1;
            continue;
        }
        for (char *t = strtok(ctrl, ","); t; t = strtok(NULL, ","))
            if (strcmp(t, "memory") == 0) {
                snprintf(v1path, sizeof v1path, "%s", path);
                have1 = 1;
            }
    }
    fclose(f);
    f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        snprintf(err, errlen, "cannot read /proc/self/mountinfo: %s", strerror(errno));
        return -1;
    }
    char m1[PATH_MAX] = "", r1[PATH_MAX] = "", m2[PATH_MAX] = "", r2[PATH_MAX] = "";
    while (fgets(line, sizeof line, f)) {
        char root[PATH_MAX], mnt[PATH_MAX], rest[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s %4095[^\n]", root, mnt, rest) != 3)
            continue;
        char *dash = strstr(rest, " - ");
        if (!dash)
            continue;
        char fstype[64], src[256], opts[1024] = "";
        if (sscanf(dash + 3, "%63s %255s %1023s", fstype, src, opts) < 2)
            continue;
        if (strcmp(fstype, "cgroup2") == 0 && !m2[0]) {
            snprintf(m2, sizeof m2, "%s", mnt);
            snprintf(r2, sizeof r2, "%s", root);
        } else if (strcmp(fstype, "cgroup") == 0 && !m1[0]) {
            for (char *t = strtok(opts, ","); t; t = strtok(NULL, ","))
                if (strcmp(t, "memory") == 0) {
                    snprintf(m1, sizeof m1, "%s", mnt);
                    snprintf(r1, sizeof r1, "%s", root);
                }
        }
    }
    fclose(f);
    const char *path, *mnt, *root;
    if (have1 && m1[0]) {
        B.version = 1;
        path = v1path, mnt = m1, root = r1;
    } else if (have2 && m2[0]) {
        B.version = 2;
        path = v2path, mnt = m2, root = r2;
    } else {
        return 0;
    }
    /* Inside a container the mount's root is our cgroup's ancestor. */
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(path, root, rl) == 0)
        path += rl;
    snprintf(B.mount, sizeof B.mount, "%s", mnt);
    if (snprintf(B.base, sizeof B.base, "%s%s", mnt, strcmp(path, "/") == 0 ? "" : path) >=
        (int)sizeof B.base) {
        snprintf(err, errlen, "cgroup path %s%s is too long", mnt, path);
        return -1;
    }
    struct stat st;
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/%s", B.base, budget_usage_name());
    if (stat(probe, &st) < 0) {
        snprintf(B.base, sizeof B.base, "%s", mnt);
        snprintf(probe, sizeof probe, "%s/%s", B.base, budget_usage_name());
        if (stat(probe, &st) < 0) {
            log_msg(LOG_INFO, "cgroup v%d found but no memory controller files; no live budget",
                    B.version);
            B.version = 0;
        }
    }
    return 0;
}

static void budget_watch(void)
{
    B.notify.fd = -1;
    if (B.version == 2) {
        int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/memory.events", B.dir);
        if (fd >= 0 && inotify_add_watch(fd, p, IN_MODIFY) >= 0)
            B.notify.fd = fd;
        else if (fd >= 0)
            close(fd);
    } else if (B.version == 1) {
        char p[PATH_MAX + 64], msg[64];
        snprintf(p, sizeof p, "%s/memory.pressure_level", B.dir);
        int pfd = open(p, O_RDONLY | O_CLOEXEC);
        snprintf(p, sizeof p, "%s/cgroup.event_control", B.dir);
        int cfd = open(p, O_WRONLY | O_CLOEXEC);
        int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (pfd >= 0 && cfd >= 0 && efd >= 0) {
            int n = snprintf(msg, sizeof msg, "%d %d medium", efd, pfd);
            if (write(cfd, msg, (size_t)n) == n) {
                B.notify.fd = efd;
                efd = -1;
            }
        }
        if (pfd >= 0)
            close(pfd);
        if (cfd >= 0)
            close(cfd);
        if (efd >= 0)
            close(efd);
    }
    if (B.notify.fd >= 0) {
        B.notify.fn = budget_on_notify;
        if (loop_add(&B.notify, EPOLLIN) < 0) {
            close(B.notify.fd);
            B.notify.fd = -1;
        }
    }
    log_msg(LOG_INFO, "cgroup notifications: %s",
            B.notify.fd < 0 ? "none (polling only)"
                            : B.version == 2 ? "memory.events" : "memory.pressure_level");
}

int budget_init(const struct budget_opts *o, char *err, size_t errlen)
{
    B.static_budget = o->static_budget;
    B.headroom_opt = o->headroom;
    if (strcmp(o->cgroup, "none") == 0) {
        B.version = 0;
    } else if (strcmp(o->cgroup, "auto") == 0) {
        if (budget_find(err, errlen) < 0)
            return -1;
    } else {
        struct stat st;
        char p[PATH_MAX + 64];
        snprintf(B.base, sizeof B.base, "%s", o->cgroup);
        snprintf(B.mount, sizeof B.mount, "%s", o->cgroup);
        snprintf(p, sizeof p, "%s/memory.max", o->cgroup);
        if (stat(p, &st) == 0) {
            B.version = 2;
        } else {
            snprintf(p, sizeof p, "%s/memory.limit_in_bytes", o->cgroup);
            if (stat(p, &st) < 0) {
                snprintf(err, errlen,
                         "--cgroup '%s' is not a cgroup directory with a memory controller (no "
                         "memory.max or memory.limit_in_bytes); pass a directory under "
                         "/sys/fs/cgroup, 'auto' or 'none'",
                         o->cgroup);
                return -1;
            }
            B.version = 1;
        }
        /* An explicit cgroup is the one that binds: no walk to ancestors. */
    }
    budget_memavail();
    if (B.version) {
        budget_rescan();
        budget_watch();
        evict_set_sync(1);
        /* Only our own cgroup, the instance's: a limit that binds higher up
         * (a slice shared with other services) is not ours to bend. */
        if (o->oom_guard && strcmp(B.dir, B.base) != 0)
            log_msg(LOG_INFO, "oom guard off: the binding limit is on %s, not our cgroup", B.dir);
        else if (o->oom_guard)
            guard_init(B.version, B.dir, budget_on_oom, o->before_guard);
    }
    if (loop_every(&B.timer, (uint64_t)(B.version ? BUDGET_POLL_NS : BUDGET_IDLE_NS),
                   budget_on_tick, err, errlen) < 0)
        return -1;
    budget_refresh();
    log_msg(LOG_INFO, "budget %llu bytes (static %lld, cgroup %s, limit %lld, headroom %llu)",
            (unsigned long long)atomic_load(&D.h->budget), (long long)B.static_budget,
            B.version ? B.dir : "none", (long long)B.limit, (unsigned long long)B.headroom);
    return 0;
}
