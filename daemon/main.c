/*
 * main.c - ephemerad: command line, start-up, signals, shutdown.  The top
 * layer: it wires the modules together (the callbacks through which lower
 * layers report up) and carries out a shutdown, whoever requested it.
 *
 *   ephemerad --rundir DIR [--root DIR]... [--budget SIZE] [--headroom SIZE]
 *             [--cgroup auto|none|PATH] [--log FILE] [--ready-fd N] [--inodes N]
 *             [--on-exit writeback|discard] [--oom-guard on|off] [--debug]
 *             [--keeper-fd N [--takeover-manifest M]]
 *
 * Sizes are read as the CLI reads them (size.h): 256M or 1.5GiB in powers of
 * 1024, 500MB in powers of 1000.  stdout is never written; stderr only for
 * errors that stop the start-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "control.h"
#include "daemon.h"
#include "ephemera/lock.h"
#include "dirtwin.h"
#include "evict.h"
#include "filebytes.h"
#include "guard.h"
#include "keeper.h"
#include "ledger.h"
#include "log.h"
#include "loop.h"
#include "namespace.h"
#include "region.h"
#include "reserve.h"
#include "shimsrv.h"
#include "size.h"
#include "sys.h"
#include "takeover.h"
#include "watchgc.h"

static enum ephd_exit_mode ephd_on_exit = EPHD_EXIT_WRITEBACK;
static int ephd_exit_done; /* writeback/discard already performed */
/* Exit status when the writeback at exit left files unwritten (they are lost). */
#define EPHD_EXIT_UNWRITTEN 3
static int ephd_exit_status;

static const char ephd_usage[] =
    "usage: ephemerad --rundir DIR [--root DIR]... [--budget BYTES] [--headroom BYTES]\n"
    "                 [--cgroup auto|none|PATH] [--log FILE] [--ready-fd N] [--inodes N]\n"
    "                 [--on-exit writeback|discard] [--oom-guard on|off] [--debug]\n"
    "                 [--keeper-fd N [--takeover-manifest M]]\n"
    "sizes are bytes with an optional unit: K, M, G, T, KiB, MiB, GiB, TiB are powers of 1024,\n"
    "KB, MB, GB, TB powers of 1000 (as in `ephemera run`), e.g. --budget 256M or 1.5GiB\n"
    "exit status: 0; 2 for bad arguments or a failed start; 3 when the writeback at exit could not\n"
    "write every in-memory file to disk (the log names each one)\n"
    "--keeper-fd: a SOCK_SEQPACKET socket to the process that keeps a copy of every fd that must\n"
    "outlive the daemon; --takeover-manifest: started by that keeper after a daemon died, take its\n"
    "region over (docs/PROTOCOL.md, \"The keeper link\")\n";

static void ephd_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void ephd_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ephemerad: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int64_t ephd_size_arg(const char *flag, const char *v)
{
    int64_t n = size_parse(v);
    if (n < 0)
        ephd_die("%s: cannot parse size '%s'; write a number of bytes with an optional unit, "
                 "e.g. 123, 64M, 1.5GiB or 500MB (K, M, G, T, KiB... are powers of 1024; KB, MB, "
                 "GB, TB powers of 1000)",
                 flag, v);
    return n;
}

static long ephd_int_arg(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        ephd_die("%s: '%s' is not an integer between %ld and %ld", flag, v, lo, hi);
    return n;
}

static void ephd_add_root(const char *r)
{
    struct stat st;
    if (D.nroots == EPHD_MAX_ROOTS)
        ephd_die("--root: at most %d roots are supported ('%s' is one too many)", EPHD_MAX_ROOTS, r);
    if (r[0] != '/')
        ephd_die("--root: '%s' is not an absolute path", r);
    if (stat(r, &st) < 0)
        ephd_die("--root: '%s': %s", r, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        ephd_die("--root: '%s' is not a directory", r);
    /*
     * The canonical path: the shim re-checks a namespace miss through the
     * kernel's resolution of the parent, which never goes through a symlink,
     * so a root named through one would manage nothing.
     */
    char *p = realpath(r, NULL);
    if (!p)
        ephd_die("--root: '%s': %s", r, strerror(errno));
    size_t n = strlen(p);
    if (n == 1)
        ephd_die("--root: '/' cannot be managed; pick a scratch directory such as /tmp");
    if (n >= EPH_PATH_MAX / 2)
        ephd_die("--root: '%s' is too long (at most %d bytes)", r, EPH_PATH_MAX / 2);
    D.roots[D.nroots] = p;
    D.rootlen[D.nroots++] = n;
}

/* Perform the exit policy once: writeback or discard. */
static void ephd_finish(enum ephd_exit_mode mode)
{
    if (ephd_exit_done)
        return;
    ephd_exit_done = 1;
    ns_log_held();
    ns_reclaim(); /* files shims unlinked are not files to write back or count */
    if (mode == EPHD_EXIT_WRITEBACK) {
        if (nsl_enter() == 0) { /* empty directories made in memory stay too */
            dt_twin_all(1);
            nsl_exit();
        }
        if (evict_writeback() > 0)
            ephd_exit_status = EPHD_EXIT_UNWRITTEN;
    } else {
        log_msg(LOG_INFO, "shutdown: discarding %llu in-memory files",
                (unsigned long long)atomic_load(&D.h->c.files_in_memory));
    }
}

static struct loop_ev ephd_sig_ev;

static void ephd_on_signal(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    if (read(ev->fd, &si, sizeof si) != sizeof si)
        return;
    log_msg(LOG_INFO, "signal %u: shutting down (%s)", si.ssi_signo,
            ephd_on_exit == EPHD_EXIT_WRITEBACK ? "writeback" : "discard");
    ephd_finish(ephd_on_exit);
    loop_stop();
}

/* A shutdown requested on the control socket: the files are written back
 * (or dropped) before the reply, and the loop ends once it has been sent. */
static void ephd_on_shutdown_request(enum ephd_exit_mode mode)
{
    ephd_finish(mode);
    loop_stop();
}

/* Just before the OOM guard is first set (files in memory under a limit):
 * the working set made resident (reserve.h), and what is allocated from
 * then on comes from a heap reserve (256 KiB: the wake-up path's stdio
 * buffers, a /proc scan, control connections; and the test's injected
 * allocation).  The eviction path itself allocates nothing.  Not before:
 * an instance that never holds files under a limit pays nothing. */
static void ephd_make_resident(void)
{
    log_msg(LOG_INFO, "working set %s",
            reserve_lock((256u << 10) + evict_test_alloc_bytes(), D.h, D.region_size));
}

/* Once a second: the garbage left by processes that died without closing,
 * a sample of the file bytes for their peak, and inotify shadows nobody watches. */
static struct loop_timer ephd_gc_timer;
/* Every 20 ms: the pages of small files that shims unlinked without asking us
 * (nsfast.c leaves them to this: no system call on their unlink). */
static struct loop_timer ephd_reclaim_timer;

static void ephd_reclaim_tick(uint64_t expirations)
{
    (void)expirations;
    ns_reclaim();
    /* Shim requests held back during a stall (shimsrv.h): answered once it is over. */
    if (shim_paused() && !guard_blocks_requests())
        shim_resume();
}

static void ephd_gc_tick(uint64_t expirations)
{
    (void)expirations;
    if (atomic_load(&D.h->ns_unchecked))
        ns_check_and_log("after a shim's lock recovery");
    ns_gc_all();
    ns_pool_take_back(0, 1); /* pool entries of processes that died */
    dt_holds_gc();           /* and their stand-ins' holds on twins' records */
    /* The rest charges the cgroup for kernel memory: memfds made ahead (an inode, a dentry, a
     * struct file each, and the slots' region pages), the walk of the roots and the /proc scans
     * (a struct file per directory opened).  While the cgroup waits at its guard that charge
     * would find it above memory.high and the kernel would throttle the daemon for up to 2 s on
     * its way back to user space, the daemon that has to end the stall (the lease's bound,
     * eviction): so it waits for the next tick after the stall.  Read now, not at the last
     * budget tick: the stall may have begun since. */
    if (guard_stalled_now())
        return;
    ns_pool_restock();
    ns_sweep_orphans(shim_nconns(), shim_accepts());
    fbytes_sample();
    watch_gc();
}

int main(int argc, char **argv)
{
    const char *rundir = NULL, *logpath = NULL, *cgroup = "auto";
    int64_t budget = -1, headroom = -1;
    long ready_fd = -1, inodes = EPH_DEFAULT_INODES, keeper_fd = -1, manifest_fd = -1;
    int debug = 0, oom_guard = 1;
    char err[EPHD_ERRLEN] = "";

    reserve_heap_policy();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(ephd_usage, stderr);
            return 0;
        }
        if (strcmp(a, "--debug") == 0) {
            debug = 1;
            continue;
        }
        /* --flag VALUE and --flag=VALUE */
        char name[64];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof name) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            v = eq + 1;
            a = name;
        } else if (strncmp(a, "--", 2) == 0) {
            if (i + 1 >= argc)
                ephd_die("%s needs a value\n%s", a, ephd_usage);
            v = argv[++i];
        } else {
            ephd_die("unexpected argument '%s'\n%s", a, ephd_usage);
        }
        if (strcmp(a, "--rundir") == 0)
            rundir = v;
        else if (strcmp(a, "--root") == 0)
            ephd_add_root(v);
        else if (strcmp(a, "--budget") == 0)
            budget = ephd_size_arg(a, v);
        else if (strcmp(a, "--headroom") == 0)
            headroom = ephd_size_arg(a, v);
        else if (strcmp(a, "--cgroup") == 0)
            cgroup = v;
        else if (strcmp(a, "--log") == 0)
            logpath = v;
        else if (strcmp(a, "--ready-fd") == 0)
            ready_fd = ephd_int_arg(a, v, 0, INT_MAX);
        else if (strcmp(a, "--keeper-fd") == 0)
            keeper_fd = ephd_int_arg(a, v, 0, INT_MAX);
        else if (strcmp(a, "--takeover-manifest") == 0)
            manifest_fd = ephd_int_arg(a, v, 0, INT_MAX);
        else if (strcmp(a, "--inodes") == 0)
            inodes = ephd_int_arg(a, v, REGION_MIN_INODES, REGION_MAX_INODES);
        else if (strcmp(a, "--oom-guard") == 0) {
            if (strcmp(v, "on") == 0)
                oom_guard = 1;
            else if (strcmp(v, "off") == 0)
                oom_guard = 0;
            else
                ephd_die("--oom-guard: '%s' is not 'on' or 'off'", v);
        } else if (strcmp(a, "--on-exit") == 0) {
            if (strcmp(v, "writeback") == 0)
                ephd_on_exit = EPHD_EXIT_WRITEBACK;
            else if (strcmp(v, "discard") == 0)
                ephd_on_exit = EPHD_EXIT_DISCARD;
            else
                ephd_die("--on-exit: '%s' is not 'writeback' or 'discard'", v);
        } else
            ephd_die("unknown option '%s'\n%s", a, ephd_usage);
    }
    if (!rundir)
        ephd_die("--rundir DIR is required\n%s", ephd_usage);
    struct stat st;
    if (stat(rundir, &st) < 0)
        ephd_die("--rundir: '%s': %s", rundir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        ephd_die("--rundir: '%s' is not a directory", rundir);
    if (cgroup[0] != '/' && strcmp(cgroup, "auto") != 0 && strcmp(cgroup, "none") != 0)
        ephd_die("--cgroup: '%s' is not 'auto', 'none' or an absolute cgroup directory", cgroup);
    if (ready_fd >= 0 && fcntl((int)ready_fd, F_GETFD) < 0)
        ephd_die("--ready-fd: %ld is not an open file descriptor", ready_fd);
    if (keeper_fd >= 0 && keeper_init((int)keeper_fd) < 0)
        ephd_die("--keeper-fd: %ld is not an open SOCK_SEQPACKET socket", keeper_fd);
    if (manifest_fd >= 0 && keeper_fd < 0)
        ephd_die("--takeover-manifest needs --keeper-fd: only a keeper hands a region over");
    int takeover_region = -1;
    if (manifest_fd >= 0 && (takeover_region = takeover_manifest((int)manifest_fd, err, sizeof err)) < 0)
        ephd_die("%s", err);
    /* We never read stdin or write stdout; holding them open would keep a
     * pipe the caller waits on from reaching EOF.  Done before we open
     * anything, so no fd of ours lands on 0 or 1.  stderr stays for
     * start-up errors and the sanitisers' reports. */
    int devnull = open("/dev/null", O_RDWR);
    for (int fd = 0; devnull >= 0 && fd < 2; fd++)
        if (fd != ready_fd && fd != devnull)
            dup2(devnull, fd);
    if (devnull > 2)
        close(devnull);
    if (D.nroots == 0)
        ephd_add_root("/tmp");
    snprintf(D.rundir, sizeof D.rundir, "%s", rundir);
    D.pid = getpid();
    eph_lock_self_init(); /* the pid our lock words carry */

    /* Every in-memory file holds a memfd and possibly a disk fd here. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);

    char path[PATH_MAX + 32];
    if (!logpath) {
        snprintf(path, sizeof path, "%s/ephemerad.log", rundir);
        logpath = path;
    }
    if (log_open(logpath, debug ? LOG_DEBUG : LOG_INFO, err, sizeof err) < 0)
        ephd_die("--log: %s", err);
    if (dsys_faults_install(err, sizeof err) < 0)
        ephd_die("%s", err);
    if (loop_init(err, sizeof err) < 0 ||
        (takeover_region >= 0 ? region_adopt(takeover_region, err, sizeof err)
                              : region_create((uint32_t)inodes, (uint32_t)inodes * 4, err, sizeof err)) < 0 ||
        ns_init(err, sizeof err) < 0 || evict_init(err, sizeof err) < 0)
        ephd_die("%s", err);
    if (takeover_region >= 0) {
        takeover_repair();
        takeover_adopt_fds();
    } else {
        keeper_hold_one(D.region_fd, EPH_KEEP_REGION, 0, 0);
    }
    atomic_store(&D.h->keeper_pid, keeper_active() ? (int32_t)getppid() : 0);
    dt_init();
    evict_set_settle(dt_settle);
    const char *inject = getenv("EPHEMERAD_TEST_EVICT_ALLOC");
    if (inject && *inject) {
        int64_t n = size_parse(inject);
        if (n < 0)
            ephd_die("EPHEMERAD_TEST_EVICT_ALLOC: cannot parse size '%s'", inject);
        evict_test_alloc((size_t)n);
        log_msg(LOG_WARN, "test: every eviction allocates %lld bytes", (long long)n);
    }
    struct budget_opts bo = {.static_budget = budget,
                             .headroom = headroom,
                             .cgroup = cgroup,
                             .oom_guard = oom_guard,
                             .before_guard = ephd_make_resident};
    if (budget_init(&bo, err, sizeof err) < 0)
        ephd_die("%s", err);
    snprintf(path, sizeof path, "%s/shim.sock", rundir);
    if (shim_listen(path, err, sizeof err) < 0)
        ephd_die("%s", err);
    snprintf(path, sizeof path, "%s/control.sock", rundir);
    if (ctl_listen(path, ephd_on_shutdown_request, err, sizeof err) < 0 ||
        loop_every(&ephd_gc_timer, 1000000000ull, ephd_gc_tick, err, sizeof err) < 0 ||
        loop_every(&ephd_reclaim_timer, 20000000ull, ephd_reclaim_tick, err, sizeof err) < 0)
        ephd_die("%s", err);
    /* The closes of one request or tick reach the keeper in one message. */
    loop_after_each(keeper_flush);
    ephd_sig_ev.fd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
    ephd_sig_ev.fn = ephd_on_signal;
    if (ephd_sig_ev.fd < 0 || loop_add(&ephd_sig_ev, EPOLLIN) < 0)
        ephd_die("signalfd: %s", strerror(errno));

    /* Shims that waited for a new daemon (shim/rpc.c) connect from here on: a shim that sees our
     * pid sees us listening (the pid is stored first, then UP; the shim reads them the other way). */
    atomic_store(&D.h->daemon_pid, (int32_t)D.pid);
    atomic_store(&D.h->daemon_down, EPH_DAEMON_UP);
    for (int i = 0; i < D.nroots; i++)
        log_msg(LOG_INFO, "managing %s", D.roots[i]);
    log_msg(LOG_INFO, "ready: %s, %ld inodes, region %zu bytes", rundir, inodes, D.region_size);
    if (ready_fd >= 0) {
        if (write((int)ready_fd, "ready\n", 6) != 6)
            log_msg(LOG_WARN, "--ready-fd %ld: write: %s", ready_fd, strerror(errno));
        close((int)ready_fd);
    }

    loop_run();

    ephd_finish(ephd_on_exit);
    keeper_close(); /* the files are where they belong: the keeper needs nothing more */
    loop_cancel(&ephd_gc_timer);
    shim_close();
    ledger_close();
    ctl_close();
    budget_fini();
    evict_fini();
    region_destroy();
    log_msg(LOG_INFO, "exit");
    log_close();
    return ephd_exit_status;
}
