/*
 * build/ephemera-run: `ephemera run` without Node.js on the path of a function's start.
 *
 * build/ephemera hands `run ARGS` here.  The launcher does what src/cli/run.ts does (the daemon in
 * a private run directory, the wait for `ready`, the command with the shim preloaded, signals
 * passed on, stats, shutdown with writeback or discard, the command's exit status) for every
 * command line it reads exactly as run.ts does; anything else (a mistake, --memory, --help)
 * goes to Node's CLI before anything has happened, so behaviour never differs.  Node's CLI hands
 * the runs it checked back here (a --memory run with its cgroup made: EPHEMERA_RUN_CGROUP), so
 * that every run has the keeper.
 * docs/ARCHITECTURE.md, "The native launcher", says why and what comes next.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "ephemera/shm.h"
#include "control.h"
#include "env.h"
#include "ephemera/gate.h"
#include "gate.h"
#include "json.h"
#include "keeper.h"
#include "report.h"

extern char **environ;

/* The bounds of run.ts, and the ones it lacks (a daemon that ignores SIGTERM, a reply that never
 * comes): nothing here waits without one. */
#define READY_TIMEOUT_MS 15000
#define CONNECT_TIMEOUT_MS 5000
#define STATS_TIMEOUT_MS 120000
#define SHUTDOWN_TIMEOUT_MS 600000 /* writeback of every in-memory file to the disk */
#define DAEMON_EXIT_TIMEOUT_MS 120000
#define GONE_GRACE_MS 500
/* A daemon that keeps dying is not restarted forever: after this many the keeper writes the files
 * back itself at the end. */
#define MAX_RESTARTS 5

static char build_dir[PATH_MAX];
static long long t_start_us;
#define BUILD_PATH_MAX (PATH_MAX + 32)
static sigset_t old_mask;
static struct rlimit old_nofile; /* the children get it back: only we and the daemon need more */
static bool debug;
/* EPHEMERA_START_GATE=0: every command waits for `ready` in the launcher's child, as before the
 * gate (for measuring the gate against it; docs/BENCHMARKS.md). */
static bool gate_off;
/* Set when Node's CLI handed us the run (run.ts, EPHEMERA_RUN_FROM_NODE): handing it back would
 * loop, so a command line we cannot run is an error instead. */
static bool from_node;
/* The cgroup.procs file of the --memory cgroup that Node's CLI made (EPHEMERA_RUN_CGROUP), or
 * NULL: the daemon and the command each move themselves into it before their exec, so they are
 * charged from their first page on, while we (the keeper) stay outside it. */
static const char *cgroup_procs;
/* exec_child's report of a failure to join that cgroup, beside an exec's errno. */
#define JOIN_FAILED 0x10000
/* The command's child (or its shim, at the start gate) saw the daemon's ready pipe close without
 * `ready`: it never ran. */
#define NOT_READY EPH_GATE_NOT_READY

/* ---- small helpers ---- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* With EPHEMERA_LAUNCHER_DEBUG set: where the start-up time goes, on stderr. */
static void phase(const char *what)
{
    if (debug)
        fprintf(stderr, "ephemera-run: %8.3f ms  %s\n", (double)(now_us() - t_start_us) / 1000.0, what);
}

static const char *errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "EUNKNOWN";
}

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    struct jbuf b = {0};
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jb_printf(&b, "ephemera run: %s\n", msg);
    if (write(2, b.s, b.len) < 0) { /* nowhere left to say it */
    }
    jb_free(&b);
}

static void build_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", build_dir, name);
}

/* ---- handing over to Node ---- */

/* `node build/js/cli/main.js ARGV...`: Node's CLI (the `node` on PATH). */
static void __attribute__((noreturn)) exec_node_cli(int argc, char **argv, const char *why)
{
    char main_js[BUILD_PATH_MAX];
    build_path(main_js, sizeof main_js, "js/cli/main.js");
    char **nargv = calloc((size_t)argc + 3, sizeof *nargv);
    if (nargv == NULL)
        abort();
    nargv[0] = "node";
    nargv[1] = main_js;
    for (int i = 0; i < argc; i++)
        nargv[i + 2] = argv[i];
    execvp("node", nargv);
    fprintf(stderr, "ephemera: cannot start node%s%s%s: %s; is Node.js on PATH?\n", why ? " for `ephemera run` (" : "", why ? why : "",
            why ? ")" : "", strerror(errno));
    exit(127);
}

static void __attribute__((noreturn)) hand_to_node(int argc, char **argv, const char *why)
{
    if (from_node) {
        fprintf(stderr, "ephemera: EPH_RUN_LAUNCHER: build/ephemera-run cannot take this run from Node's CLI (%s); "
                        "run the command line through build/ephemera, or report it: run.ts should not have handed it over\n",
                why);
        exit(1);
    }
    if (debug)
        fprintf(stderr, "ephemera-run: handing over to Node's CLI: %s\n", why);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    argv[0] = "run"; /* `node main.js run ARGS` */
    exec_node_cli(argc, argv, why);
}

/* ---- checks that run.ts makes before it starts anything ---- */

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool writable_parent(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    return is_dir(dir) && access(dir, W_OK) == 0;
}

static bool executable_file(const char *p)
{
    struct stat st;
    return access(p, X_OK) == 0 && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* resolveCommand: the path run.ts would exec, or NULL (Node then gives the error, or finds a
 * command in a relative PATH entry, which spawn searches for again). */
static char *resolve_command(const char *cmd)
{
    if (strchr(cmd, '/') != NULL)
        return executable_file(cmd) ? strdup(cmd) : NULL;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *dir = path;;) {
        const char *end = strchrnul(dir, ':');
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%.*s/%s", (int)(end - dir), dir, cmd);
        if (executable_file(dir == end ? cmd : p))
            return dir[0] == '/' ? strdup(p) : NULL;
        if (*end == '\0')
            return NULL;
        dir = end + 1;
    }
}

/* makeRunDir: a fresh 0711 directory outside every managed root, or NULL. */
static char *make_run_dir(const struct run_opts *o)
{
    uid_t uid = getuid();
    char bases[4][PATH_MAX];
    int nb = 0;
    if (uid == 0)
        snprintf(bases[nb++], PATH_MAX, "/run/ephemera");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg != NULL && xdg[0] != '\0')
        snprintf(bases[nb++], PATH_MAX, "%s/ephemera", xdg);
    /* os.tmpdir() */
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = getenv("TMP");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = getenv("TEMP");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    snprintf(bases[nb++], PATH_MAX, "%s/ephemera-%u", tmp, (unsigned)uid);
    snprintf(bases[nb++], PATH_MAX, "/var/tmp/ephemera-%u", (unsigned)uid);
    for (int i = 0; i < nb; i++) {
        if (bases[i][0] != '/')
            return NULL; /* a relative base: run.ts resolves it against its cwd; leave it to Node */
        char *base = args_resolve("/", bases[i]);
        bool inside = false;
        for (size_t r = 0; r < o->nroots && !inside; r++)
            inside = args_under(base, o->roots[r]);
        bool ok = !inside;
        if (ok) {
            /* mkdirSync(base, { recursive: true, mode: 0o711 }) */
            for (char *s = base + 1; ok; s++) {
                if (*s == '/' || *s == '\0') {
                    char c = *s;
                    *s = '\0';
                    if (mkdir(base, 0711) < 0 && errno != EEXIST)
                        ok = false;
                    *s = c;
                    if (c == '\0')
                        break;
                }
            }
            struct stat st;
            ok = ok && stat(base, &st) == 0 && S_ISDIR(st.st_mode);
            if (ok && st.st_uid == uid && chmod(base, 0711) < 0)
                ok = false;
        }
        if (ok) {
            size_t n = strlen(base) + sizeof "/run-XXXXXX";
            char *dir = malloc(n);
            snprintf(dir, n, "%s/run-XXXXXX", base);
            if (mkdtemp(dir) != NULL && chmod(dir, 0711) == 0) {
                free(base);
                return dir;
            }
            free(dir);
        }
        free(base);
    }
    return NULL;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

/* ---- children ---- */

struct child {
    pid_t pid;
    int pidfd;
    bool done;
    int code;   /* exit code, or -1 */
    int signal; /* killing signal, or 0 */
};

/* In the child: signals as libuv leaves them for a spawned process (default dispositions, none
 * blocked), then exec; on failure the errno goes up `errfd` and the child exits 127. */
static void __attribute__((noreturn)) exec_child(const char *file, char *const *argv, char *const *envp, int errfd)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (old_nofile.rlim_cur != 0)
        setrlimit(RLIMIT_NOFILE, &old_nofile);
    if (cgroup_procs != NULL) {
        /* "0" is the writer itself, in cgroup v1 and v2 alike. */
        int e = 0, fd = open(cgroup_procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0\n", 2) != 2)
            e = errno | JOIN_FAILED;
        if (fd >= 0)
            close(fd);
        if (e != 0) {
            if (write(errfd, &e, sizeof e) < 0) { /* the parent sees EOF and a 127 exit */
            }
            _exit(127);
        }
    }
    /* execvp's rules, as libuv's spawn: a name without a slash is looked up in PATH, and a file
     * the kernel cannot run (ENOEXEC: a script without #!) goes to /bin/sh. */
    execvpe(file, argv, envp);
    int e = errno;
    if (write(errfd, &e, sizeof e) < 0) { /* the parent sees EOF and a 127 exit */
    }
    _exit(127);
}

/* The errno of a failed exec, or 0 once it succeeded (the pipe closed on exec). */
static int exec_result(int errfd)
{
    int e = 0;
    ssize_t r;
    do
        r = read(errfd, &e, sizeof e);
    while (r < 0 && errno == EINTR);
    close(errfd);
    return r == (ssize_t)sizeof e ? e : 0;
}

/*
 * A child that shares our memory until its exec, as posix_spawn's (CLONE_VM | CLONE_VFORK): no
 * page tables are copied and neither process takes copy-on-write faults afterwards, each of which
 * costs ~17 us on a shadow-paging VM (docs/ARCHITECTURE.md, "Start-up on a shadow-paging VM").
 * We are suspended until it execs or exits, so fn must do neither anything that waits nor
 * anything but system calls, exec and _exit; it runs on its own stack (here, above our frames).
 */
static pid_t spawn_shared(int (*fn)(void *), void *arg)
{
#if defined(__SANITIZE_ADDRESS__)
    /* ASan keeps one shadow of the stack per thread: a child running on a stack of its own in
     * our memory confuses it (a CHECK failure, then a hang).  The sanitizer build forks. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    return pid;
#else
    char stack[64 << 10] __attribute__((aligned(16)));
    return clone(fn, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
#endif
}

static void reap(struct child *c)
{
    siginfo_t si = {0};
    if (c->done || waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;
    c->done = true;
    if (si.si_code == CLD_EXITED) {
        c->code = si.si_status;
        c->signal = 0;
    } else {
        c->code = -1;
        c->signal = si.si_status;
    }
    close(c->pidfd);
    c->pidfd = -1;
}

/* Wait up to ms for the child to end. */
static bool wait_child(struct child *c, int ms)
{
    long long deadline = now_ms() + ms;
    while (!c->done) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
        if (poll(&p, 1, (int)left) > 0)
            reap(c);
    }
    return true;
}

static void how_it_ended(const struct child *c, char *buf, size_t n)
{
    if (c->signal)
        report_signal_name(c->signal, buf, n);
    else
        snprintf(buf, n, "status %d", c->code);
}

/* ---- the run ---- */

struct run {
    struct run_opts *o;
    const char *ephemerad, *lib, *cmd_path;
    char *rundir;
    struct child daemon, cmd;
    /* Read ends of the pipes on which a child's failed exec reports its errno (EOF once it
     * exec'd), or -1: read when the daemon's readiness or the command's end is waited for anyway,
     * so that neither start costs the launcher a wake-up of its own. */
    int daemon_errfd, cmd_errfd;
    bool daemon_started, cmd_started, shutdown_sent;
    bool gated; /* the command waits at the shim's start gate (spawn_command) */
    int sigfd;
    sigset_t forwarded;
    int pending_signal;
    struct ctl ctl;
    bool ctl_open;
    struct keeper k;
    int restarts;          /* daemons started to take over from one that died */
    bool fallback;         /* none could: the keeper writes the files back itself at the end */
    /* The error that ends the run, printed as main.ts prints an EphemeraError. */
    const char *err_code;
    struct jbuf err_msg;
};

static int fail(struct run *r, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *r, const char *code, const char *fmt, ...)
{
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->err_code = code;
    jb_puts(&r->err_msg, msg);
    return -1;
}

/* Signals that arrived: forwarded to the command while it runs, remembered before it starts. */
static void drain_signals(struct run *r)
{
    struct signalfd_siginfo si;
    while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (!sigismember(&r->forwarded, sig))
            continue; /* ^C on a terminal: CMD got it too and decides what it means */
        if (r->cmd_started && !r->cmd.done)
            kill(r->cmd.pid, sig);
        else if (r->pending_signal == 0)
            r->pending_signal = sig;
    }
}

static void ready_hint(struct run *r)
{
    if (r->o->log_file == NULL)
        jb_puts(&r->err_msg, "; its message, if any, is above; rerun with --log FILE for more");
    else
        jb_printf(&r->err_msg, "; its message is above and in %s", r->o->log_file);
}

/* The daemon's child (spawn_shared: our memory, its own stack) up to its exec. */
struct daemon_child {
    const char *file;
    char **argv;
    int errfd;
    struct keeper_plan *plan;
};

static int daemon_child_main(void *arg)
{
    struct daemon_child *dc = arg;
    /* Its own session: a terminal's ^C must not stop it before the files are safe. */
    setsid();
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, 0);
    int errfd = dc->errfd;
    int pe = keeper_place(dc->plan, &errfd);
    if (pe < 0) {
        pe = -pe;
        if (write(errfd, &pe, sizeof pe) < 0) { /* the parent sees EOF and a 127 exit */
        }
        _exit(127);
    }
    exec_child(dc->file, dc->argv, environ, errfd);
}

static int spawn_daemon(struct run *r, int *ready_fd)
{
    char budget[32], headroom[32], ready_num[16], keeper_num[16], manifest_num[16];
    char *argv[20 + 2 * r->o->nroots];
    int n = 0;
    argv[n++] = (char *)r->ephemerad;
    argv[n++] = "--rundir";
    argv[n++] = r->rundir;
    for (size_t i = 0; i < r->o->nroots; i++) {
        argv[n++] = "--root";
        argv[n++] = r->o->roots[i];
    }
    if (r->o->budget >= 0) {
        snprintf(budget, sizeof budget, "%lld", r->o->budget);
        argv[n++] = "--budget";
        argv[n++] = budget;
    }
    if (r->o->headroom >= 0) {
        snprintf(headroom, sizeof headroom, "%lld", r->o->headroom);
        argv[n++] = "--headroom";
        argv[n++] = headroom;
    }
    if (r->o->log_file != NULL) {
        argv[n++] = "--log";
        argv[n++] = r->o->log_file;
    }
    argv[n++] = "--on-exit";
    argv[n++] = r->o->discard ? "discard" : "writeback";

    /* The ready pipe, our link (keeper.h) and, for a daemon that takes over, the manifest, at
     * numbers that none of the fds it takes over needs. */
    bool takeover = r->restarts > 0;
    int ready[2], err[2], link = -1, manifest = -1, e;
    if (pipe2(ready, O_CLOEXEC) < 0)
        return fail(r, "EPH_DAEMON_START", "cannot start ephemerad: pipe: %s", strerror(errno));
    if (pipe2(err, O_CLOEXEC) < 0) {
        close(ready[0]);
        close(ready[1]);
        return fail(r, "EPH_DAEMON_START", "cannot start ephemerad: pipe: %s", strerror(errno));
    }
    struct keeper_plan plan = {0};
    if ((e = keeper_link(&r->k, &link)) < 0 || (takeover && (e = manifest = keeper_manifest(&r->k)) < 0)) {
        manifest = -1;
    } else {
        int extra[3] = {ready[1], link, manifest}, at[3];
        e = keeper_plan(&r->k, extra, at, takeover ? 3 : 2, &plan);
        snprintf(ready_num, sizeof ready_num, "%d", at[0]);
        snprintf(keeper_num, sizeof keeper_num, "%d", at[1]);
        snprintf(manifest_num, sizeof manifest_num, "%d", at[2]);
    }
    if (e < 0) {
        close(ready[0]);
        close(ready[1]);
        close(err[0]);
        close(err[1]);
        if (link >= 0)
            close(link);
        if (manifest >= 0)
            close(manifest);
        return fail(r, "EPH_DAEMON_START", "cannot start ephemerad: the keeper's link: %s", strerror(-e));
    }
    argv[n++] = "--ready-fd";
    argv[n++] = ready_num;
    argv[n++] = "--keeper-fd";
    argv[n++] = keeper_num;
    if (takeover) {
        argv[n++] = "--takeover-manifest";
        argv[n++] = manifest_num;
    }
    argv[n] = NULL;

    struct daemon_child dc = {.file = r->ephemerad, .argv = argv, .errfd = err[1], .plan = &plan};
    pid_t pid = spawn_shared(daemon_child_main, &dc);
    int fork_errno = errno;
    keeper_plan_free(&plan);
    close(ready[1]);
    close(err[1]);
    close(link);
    if (manifest >= 0)
        close(manifest);
    if (pid < 0) {
        close(ready[0]);
        close(err[0]);
        return fail(r, "EPH_DAEMON_START", "cannot start ephemerad: fork: %s", strerror(fork_errno));
    }
    r->daemon = (struct child){.pid = pid, .pidfd = (int)syscall(SYS_pidfd_open, pid, 0), .code = -1};
    r->daemon_started = true;
    r->daemon_errfd = err[0];
    *ready_fd = ready[0];
    return 0;
}

/* The daemon's exec failed (its errno came up the pipe): the run's error.  Else 0. */
static int daemon_exec_failed(struct run *r)
{
    int e = exec_result(r->daemon_errfd);
    r->daemon_errfd = -1;
    if (e == 0)
        return 0;
    wait_child(&r->daemon, 1000); /* it is on its way to _exit(127) */
    if (e & JOIN_FAILED)
        fail(r, "EPH_CGROUP_IO", "cannot start ephemerad in the --memory cgroup: writing to %s: %s", cgroup_procs,
             errname(e & ~JOIN_FAILED));
    else
        fail(r, "EPH_DAEMON_START", "cannot start ephemerad: spawn %s %s; run `make`", r->ephemerad, errname(e));
    ready_hint(r);
    return -1;
}

/* waitForReady: `ready\n` on fd 3 within READY_TIMEOUT_MS, the daemon's early exit, or the bound. */
static int wait_ready(struct run *r, int ready_fd)
{
    long long deadline = now_ms() + READY_TIMEOUT_MS;
    struct eph_ready_scan seen;
    seen.len = 0;
    bool eof = false;
    int rc = 1;
    while (rc == 1) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            fail(r, "EPH_DAEMON_START", "ephemerad did not report ready within %d ms", READY_TIMEOUT_MS);
            ready_hint(r);
            rc = -1;
            break;
        }
        struct pollfd p[5] = {
            {.fd = eof ? -1 : ready_fd, .events = POLLIN},
            {.fd = r->daemon.pidfd, .events = POLLIN},
            {.fd = r->sigfd, .events = POLLIN},
            {.fd = keeper_poll_fd(&r->k), .events = POLLIN},
            {.fd = r->daemon_errfd, .events = POLLIN},
        };
        if (poll(p, 5, (int)left) < 0 && errno != EINTR)
            continue;
        if ((p[4].revents || (p[1].revents & POLLIN)) && r->daemon_errfd >= 0 && daemon_exec_failed(r) < 0) {
            rc = -1;
            break;
        }
        if (p[3].revents)
            keeper_pump(&r->k);
        if (p[2].revents & POLLIN)
            drain_signals(r);
        if (p[0].revents & (POLLIN | POLLHUP)) {
            size_t room;
            char *at = eph_ready_room(&seen, &room);
            ssize_t got = read(ready_fd, at, room);
            if (got > 0) {
                if (eph_ready_took(&seen, (size_t)got)) {
                    rc = 0;
                    break;
                }
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN))
                eof = true;
        }
        if (p[1].revents & POLLIN) {
            reap(&r->daemon);
            if (r->daemon.done) {
                char how[32];
                how_it_ended(&r->daemon, how, sizeof how);
                fail(r, "EPH_DAEMON_START", "ephemerad exited before it was ready (%s)", how);
                ready_hint(r);
                rc = -1;
            }
        }
    }
    close(ready_fd);
    if (r->daemon_errfd >= 0) { /* ready, or gone: either way it exec'd, or the pipe says why not */
        if (rc == 0 && daemon_exec_failed(r) < 0)
            rc = -1;
        else if (r->daemon_errfd >= 0) {
            close(r->daemon_errfd);
            r->daemon_errfd = -1;
        }
    }
    return rc;
}

/* In the command's child: wait for the daemon's `ready` line on ready_fd, so that the command
 * starts the moment the daemon listens, with no wake-up of the launcher in between.  A pipe closed
 * without it (the daemon died or failed to exec) is reported as NOT_READY. */
static void child_wait_ready(int ready_fd, int errfd)
{
    if (!eph_ready_wait(ready_fd, read)) {
        int e = NOT_READY;
        if (write(errfd, &e, sizeof e) < 0) { /* the parent sees EOF and a 127 exit */
        }
        _exit(127);
    }
    close(ready_fd);
}

/* The gated command's child (spawn_shared) up to its exec: only the gate's two ends cross it. */
struct command_child {
    const char *file;
    char **argv, **env;
    int errfd, gate_r, gate_w;
};

static int command_child_main(void *arg)
{
    struct command_child *cc = arg;
    if (fcntl(cc->gate_r, F_SETFD, 0) < 0 || fcntl(cc->gate_w, F_SETFD, 0) < 0) {
        int e = errno;
        if (write(cc->errfd, &e, sizeof e) < 0) { /* the parent sees EOF and a 127 exit */
        }
        _exit(127);
    }
    exec_child(cc->file, cc->argv, cc->env, cc->errfd);
}

/* Fork the command; with ready_fd >= 0 it runs only once the daemon said `ready` (run_instance:
 * wait_started), and the pipe is the child's alone from here (closed here in every case).  A
 * command that will load the shim is exec'd at once and waits at the shim's start gate
 * (include/ephemera/gate.h), so that its exec, the dynamic loader and the shim's constructor run
 * beside the daemon's start; any other waits in the child before its exec, as before. */
static int spawn_command(struct run *r, int ready_fd)
{
    char **env = env_for_command(environ, r->lib, r->rundir, r->o->roots, r->o->nroots, r->o->log_file);
    int err[2];
    if (pipe2(err, O_CLOEXEC) < 0) {
        int e = errno;
        env_free(env);
        if (ready_fd >= 0)
            close(ready_fd);
        return fail(r, "EPH_RUN_SPAWN", "ephemera run: cannot start a pipe for the command: %s", strerror(e));
    }
    /* The gate's ends, above the numbers a program expects to get from its first opens. */
    int gate_r = -1, gate_w = -1;
    if (ready_fd >= 0 && !gate_off && gate_possible(r->cmd_path)) {
        gate_r = fcntl(ready_fd, F_DUPFD_CLOEXEC, 100);
        gate_w = fcntl(err[1], F_DUPFD_CLOEXEC, 100);
        if (gate_r >= 0 && gate_w >= 0) {
            char v[64];
            snprintf(v, sizeof v, EPH_GATE_ENV "=%d:%d", gate_r, gate_w);
            env = env_add(env, v);
        } else {
            if (gate_r >= 0)
                close(gate_r);
            if (gate_w >= 0)
                close(gate_w);
            gate_r = gate_w = -1;
        }
    }
    r->gated = gate_r >= 0;
    pid_t pid;
    if (r->gated) {
        /* Nothing to wait for before its exec: it can share our memory until then. */
        struct command_child cc = {.file = r->cmd_path, .argv = r->o->command, .env = env, .errfd = err[1], .gate_r = gate_r, .gate_w = gate_w};
        pid = spawn_shared(command_child_main, &cc);
    } else {
        pid = fork();
        if (pid == 0) {
            if (ready_fd >= 0)
                child_wait_ready(ready_fd, err[1]);
            exec_child(r->cmd_path, r->o->command, env, err[1]);
        }
    }
    int fork_errno = errno;
    if (gate_r >= 0)
        close(gate_r);
    if (gate_w >= 0)
        close(gate_w);
    if (ready_fd >= 0)
        close(ready_fd);
    close(err[1]);
    env_free(env);
    struct jbuf q = {0};
    js_quote(&q, r->o->command[0], strlen(r->o->command[0]));
    int rc = 0;
    if (pid < 0) {
        close(err[0]);
        rc = fail(r, "EPH_RUN_SPAWN", "ephemera run: cannot start %s: spawn %s", q.s, errname(fork_errno));
    } else {
        r->cmd = (struct child){.pid = pid, .pidfd = (int)syscall(SYS_pidfd_open, pid, 0), .code = -1};
        r->cmd_started = true;
        r->cmd_errfd = err[0];
    }
    jb_free(&q);
    return rc;
}

/* The daemon's ready pipe closed without `ready`: why, as wait_ready says it.  Always -1. */
static int daemon_not_ready(struct run *r)
{
    if (r->daemon_errfd >= 0 && daemon_exec_failed(r) < 0)
        return -1;
    wait_child(&r->daemon, GONE_GRACE_MS);
    char how[32] = "still running";
    if (r->daemon.done)
        how_it_ended(&r->daemon, how, sizeof how);
    fail(r, "EPH_DAEMON_START", "ephemerad exited before it was ready (%s)", how);
    ready_hint(r);
    return -1;
}


/* The command's child waits for `ready` itself (spawn_command); here we wait, within
 * READY_TIMEOUT_MS, for its exec (its pipe closes: the daemon was ready and the command runs) or
 * its report that it never ran.  Signals meanwhile go to the child: before its exec one kills it
 * there, as the command would never have started; after, the command gets it as any other.
 * 0 once the command runs, -1 with the run's error. */
static int wait_started(struct run *r)
{
    long long deadline = now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            kill(r->cmd.pid, SIGKILL); /* still waiting for `ready`: it never ran */
            wait_child(&r->cmd, 1000);
            close(r->cmd_errfd);
            r->cmd_errfd = -1;
            r->cmd_started = false;
            fail(r, "EPH_DAEMON_START", "ephemerad did not report ready within %d ms", READY_TIMEOUT_MS);
            ready_hint(r);
            return -1;
        }
        struct pollfd p[3] = {
            {.fd = r->cmd_errfd, .events = POLLIN},
            {.fd = r->sigfd, .events = POLLIN},
            {.fd = keeper_poll_fd(&r->k), .events = POLLIN},
        };
        if (poll(p, 3, (int)left) < 0 && errno != EINTR)
            continue;
        if (p[2].revents)
            keeper_pump(&r->k);
        if (p[1].revents & POLLIN)
            drain_signals(r);
        if (p[0].revents) {
            int e = 0;
            ssize_t got;
            do
                got = read(r->cmd_errfd, &e, sizeof e);
            while (got < 0 && errno == EINTR);
            if (got == 0) { /* exec'd */
                close(r->cmd_errfd);
                r->cmd_errfd = -1;
                if (r->daemon_errfd >= 0) { /* the daemon exec'd too: it said `ready` */
                    close(r->daemon_errfd);
                    r->daemon_errfd = -1;
                }
                return 0;
            }
            /* It never ran: NOT_READY, or its exec failed; command_exec_failed words it. */
            wait_child(&r->cmd, 1000);
            close(r->cmd_errfd);
            r->cmd_errfd = -1;
            r->cmd_started = false;
            if (got != (ssize_t)sizeof e)
                e = EIO;
            if (e == NOT_READY)
                return daemon_not_ready(r);
            struct jbuf q = {0};
            js_quote(&q, r->o->command[0], strlen(r->o->command[0]));
            if (e & JOIN_FAILED)
                fail(r, "EPH_CGROUP_IO", "ephemera run: cannot start %s in the --memory cgroup: writing to %s: %s", q.s,
                     cgroup_procs, errname(e & ~JOIN_FAILED));
            else
                fail(r, "EPH_RUN_SPAWN", "ephemera run: cannot start %s: spawn %s %s", q.s, r->cmd_path, errname(e));
            jb_free(&q);
            return -1;
        }
    }
}

static void keeper_log_line(struct run *r, const char *level, const char *msg)
{
    char path[PATH_MAX + 32];
    if (r->o->log_file != NULL)
        snprintf(path, sizeof path, "%s", r->o->log_file);
    else
        snprintf(path, sizeof path, "%s/ephemerad.log", r->rundir);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    dprintf(fd, "%02d:%02d:%02d.%03ld ephemera-run[%d] %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, (int)getpid(), level, msg);
    close(fd);
}

/* A line for the daemon's log, where its own lines about the run are (--log FILE, or the run
 * directory's ephemerad.log), and with say, for the user too (stderr). */
static void keeper_report(struct run *r, bool say, const char *level, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void keeper_report(struct run *r, bool say, const char *level, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (say)
        warn("%s", msg);
    keeper_log_line(r, level, msg);
}

/* Served while a control request waits; a closed link is not polled again (it would spin). */
static void keeper_aux(void *arg)
{
    struct run *r = arg;
    keeper_pump(&r->k);
    if (r->k.eof)
        r->ctl.aux = NULL;
}

static int connect_control(struct run *r, struct ctl_error *cerr)
{
    char *sock = malloc(strlen(r->rundir) + sizeof "/control.sock");
    if (sock == NULL)
        abort();
    sprintf(sock, "%s/control.sock", r->rundir);
    free((char *)r->ctl.path);
    if (ctl_connect(&r->ctl, sock, CONNECT_TIMEOUT_MS, cerr) < 0) {
        free(sock);
        r->ctl.path = NULL;
        return -1;
    }
    r->ctl_open = true;
    r->ctl.aux_fd = keeper_poll_fd(&r->k);
    r->ctl.aux = keeper_aux;
    r->ctl.aux_arg = r;
    return 0;
}

/* The run directory's mark that a new daemon is being started (EPH_KEEPER_RESTARTING). */
static void restarting_mark(struct run *r, bool on)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", r->rundir, EPH_KEEPER_RESTARTING);
    if (on)
        close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    else
        unlink(p);
}

/*
 * The daemon died (any signal, or an exit that was not asked for).  A new one takes its region
 * over with the fds we kept (keeper.h); if none can, from here on we are the files' only holder,
 * and write them back ourselves at the end (finish_without_daemon).  0 when a new daemon runs.
 */
static int daemon_died(struct run *r)
{
    char how[32];
    how_it_ended(&r->daemon, how, sizeof how);
    keeper_pump(&r->k); /* everything it sent before it died is still in the socket */
    if (r->ctl_open) {
        ctl_close(&r->ctl);
        r->ctl_open = false;
    }
    struct keeper_files f;
    int noted = keeper_note(&r->k, EPH_DAEMON_RESTARTING, &f);
    const char *why_not = NULL;
    if (noted < 0)
        why_not = "the keeper never received its region";
    else if (r->k.broken)
        why_not = "a message from it could not be read, so the keeper's copies may be incomplete";
    else if (r->restarts >= MAX_RESTARTS)
        why_not = "it already died " "too often in this run";
    if (why_not == NULL) {
        keeper_report(r, true, "warn", "ephemerad died (%s); restarting it and taking over %llu files (%llu in memory)", how,
                   (unsigned long long)f.files, (unsigned long long)f.in_mem);
        restarting_mark(r, true);
        r->restarts++;
        int ready_fd = -1;
        struct ctl_error cerr = {0};
        r->err_code = NULL;
        jb_free(&r->err_msg);
        bool up = spawn_daemon(r, &ready_fd) == 0 && wait_ready(r, ready_fd) == 0;
        restarting_mark(r, false);
        if (up && connect_control(r, &cerr) == 0) {
            keeper_report(r, false, "info", "ephemerad restarted (pid %d) and took the region over", (int)r->daemon.pid);
            return 0;
        }
        if (cerr.code != NULL) {
            jb_puts(&r->err_msg, cerr.msg.s);
            jb_free(&cerr.msg);
        }
        keeper_report(r, true, "error", "the new ephemerad did not start: %s", r->err_msg.len ? r->err_msg.s : "no reason given");
        r->err_code = NULL;
        jb_free(&r->err_msg);
        if (!r->daemon.done) { /* started but not usable: it must not write beside us */
            kill(r->daemon.pid, SIGKILL);
            wait_child(&r->daemon, DAEMON_EXIT_TIMEOUT_MS);
        }
        why_not = "no new daemon could start";
    } else {
        keeper_report(r, true, "error", "ephemerad died (%s) and cannot be restarted: %s", how, why_not);
    }
    keeper_note(&r->k, EPH_DAEMON_GONE, &f);
    r->fallback = true;
    keeper_report(r, true, "warn", "the keeper holds the %llu files in memory and writes them to disk when the command ends",
               (unsigned long long)f.in_mem);
    return -1;
}

/* The command runs until it ends; signals for us go to it meanwhile, and a daemon that dies is
 * replaced. */
static void wait_command(struct run *r)
{
    while (!r->cmd.done) {
        bool watch = !r->fallback && !r->daemon.done;
        struct pollfd p[4] = {{.fd = r->cmd.pidfd, .events = POLLIN},
                              {.fd = r->sigfd, .events = POLLIN},
                              {.fd = keeper_poll_fd(&r->k), .events = POLLIN},
                              {.fd = watch ? r->daemon.pidfd : -1, .events = POLLIN}};
        if (poll(p, 4, -1) < 0)
            continue;
        if (p[2].revents)
            keeper_pump(&r->k);
        if (p[1].revents & POLLIN)
            drain_signals(r);
        if (p[3].revents & POLLIN) {
            reap(&r->daemon);
            if (r->daemon.done)
                daemon_died(r);
        }
        if (p[0].revents & POLLIN)
            reap(&r->cmd);
    }
}

/* No daemon is left: the files in memory go to disk from the keeper's copies (unless --discard). */
static void finish_without_daemon(struct run *r)
{
    if (r->o->discard) {
        keeper_report(r, true, "info", "--discard: the files in memory are dropped");
        return;
    }
    int failed = 0;
    struct jbuf why = {0};
    int written = keeper_writeback(&r->k, &failed, &why);
    if (failed)
        keeper_report(r, true, "error", "the keeper wrote %d in-memory files to disk; %d could not be written:\n%s", written, failed,
                   why.s);
    else
        keeper_report(r, true, "info", "the keeper wrote all %d in-memory files to disk", written);
    jb_free(&why);
    if (r->o->stats_file != NULL)
        keeper_report(r, true, "warn", "--stats %s not written: no daemon was left to count the run", r->o->stats_file);
}

static int write_stats(struct run *r, const struct jv *stats, int status, int sig, double elapsed_ms)
{
    char signame[32];
    if (sig)
        report_signal_name(sig, signame, sizeof signame);
    struct run_report rep = {
        .command = r->o->command,
        .ncommand = r->o->ncommand,
        .exit_status = status,
        .signal = sig ? signame : NULL,
        .elapsed_ms = elapsed_ms,
        .on_exit = r->o->discard ? "discard" : "writeback",
        .roots = r->o->roots,
        .nroots = r->o->nroots,
    };
    struct jbuf out = {0};
    report_json(&out, stats, &rep);
    int e = 0;
    int fd = open(r->o->stats_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        e = errno;
    for (size_t done = 0; fd >= 0 && done < out.len;) {
        ssize_t w = write(fd, out.s + done, out.len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
    }
    if (fd >= 0 && close(fd) < 0 && e == 0)
        e = errno;
    jb_free(&out);
    if (e != 0)
        return fail(r, "EPH_RUN_STATS_WRITE", "cannot write --stats %s: %s; give a writable path", r->o->stats_file, errname(e));
    return 0;
}

/* A request whose result is the daemon's stats (`stats`, `shutdown`), checked as parseStats
 * checks it: the reply, or NULL with *err set. */
static struct jv *stats_request(struct run *r, const char *op, const char *fields, int timeout_ms, int gate_fd,
                                const struct jv **result, struct ctl_error *err)
{
    struct jv *reply = ctl_request_gated(&r->ctl, op, fields, timeout_ms, gate_fd, result, err);
    if (reply == NULL)
        return NULL;
    struct jbuf source = {0}, msg = {0};
    jb_printf(&source, "%s: the reply to '%s'", r->ctl.path, op);
    bool ok = report_check_stats(*result, source.s, &msg);
    jb_free(&source);
    if (ok) {
        jb_free(&msg);
        return reply;
    }
    err->code = "EPH_DAEMON_PROTOCOL";
    jb_free(&err->msg);
    err->msg = msg;
    jv_free(reply);
    return NULL;
}

/* runInstance after set-up: the status to exit with, or -1 with r->err_* set. */
static int run_instance(struct run *r)
{
    int ready_fd = -1;
    phase("set-up done");
    if (spawn_daemon(r, &ready_fd) < 0)
        return -1;
    phase("daemon started");
    struct ctl_error cerr = {0};
    drain_signals(r);
    int sig = r->pending_signal, code = -1;
    struct timespec ts0, ts1;
    if (sig != 0) {
        /* A signal before anything ran: the command never starts; the daemon's orderly shutdown
         * still follows. */
        if (wait_ready(r, ready_fd) < 0)
            return -1;
        if (connect_control(r, &cerr) < 0) {
            fail(r, cerr.code, "%s", cerr.msg.s);
            jb_free(&cerr.msg);
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts0);
    } else {
        /* The command's child waits for `ready` itself and execs at once (wait_started): the
         * launcher is not woken between the daemon's readiness and the command's start. */
        if (spawn_command(r, ready_fd) < 0) /* it closed ready_fd */
            return -1;
        if (wait_started(r) < 0)
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &ts0);
        phase(r->gated ? "command past the shim's start gate (the daemon ready)" : "command started (the daemon ready)");
        /* The daemon listens (it said `ready`); if the control socket fails now, the command
         * runs on and the end of the run tries again (and says so). */
        if (connect_control(r, &cerr) < 0)
            jb_free(&cerr.msg);
        wait_command(r);
        phase("command ended");
        sig = r->cmd.signal;
        code = r->cmd.code;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double elapsed_ms = (double)(ts1.tv_sec - ts0.tv_sec) * 1e3 + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e6;
    int status = sig ? 128 + sig : code;

    /* stats, then shutdown; a failure of either is reported after CMD's own status.  A daemon
     * killed meanwhile (even inside the shutdown's writeback) is replaced and asked again. */
    const struct jv *result = NULL;
    struct jv *stats_reply = NULL;
    while (!r->fallback) {
        jb_free(&cerr.msg);
        cerr = (struct ctl_error){0};
        /* The stats are asked for only when --stats wants them: otherwise the shutdown's own reply
         * (the same counters, checked the same way) says the run ended well, one round trip
         * fewer on every run's end. */
        bool want_stats = r->o->stats_file != NULL, was_open = r->ctl_open;
        if (!was_open)
            connect_control(r, &cerr);
        else if (want_stats)
            stats_reply = stats_request(r, "stats", "", STATS_TIMEOUT_MS, -1, &result, &cerr);
        phase("stats answered");
        if (was_open && (stats_reply != NULL || !want_stats)) {
            r->shutdown_sent = true;
            const struct jv *fin = NULL;
            struct jv *shut = stats_request(r, "shutdown", r->o->discard ? "\"mode\":\"discard\"" : "\"mode\":\"writeback\"",
                                            SHUTDOWN_TIMEOUT_MS, r->daemon.pidfd, &fin, &cerr);
            if (shut != NULL && !want_stats) {
                stats_reply = shut;
                result = fin;
                break;
            }
            if (shut != NULL) {
                jv_free(shut);
                break;
            }
            jv_free(stats_reply);
            stats_reply = NULL;
        }
        phase("shutdown answered");
        /* The socket closing and the exit being reaped are separate events; give the second a moment. */
        wait_child(&r->daemon, GONE_GRACE_MS);
        if (!r->daemon.done || (r->shutdown_sent && r->daemon.signal == 0))
            break; /* alive, or it ended on its own after the shutdown: reported below */
        if (cerr.code == NULL) {
            cerr.code = "EPH_DAEMON_CLOSED";
            jb_puts(&cerr.msg, "ephemerad ended");
        }
        r->shutdown_sent = false;
        if (daemon_died(r) < 0)
            break;
    }
    if (r->fallback) {
        jb_free(&cerr.msg);
        finish_without_daemon(r);
        return status;
    }
    if (stats_reply == NULL) {
        char how[32] = "";
        if (r->daemon.done)
            how_it_ended(&r->daemon, how, sizeof how);
        warn("%s: %s%s%s%s", cerr.code, cerr.msg.s, r->daemon.done ? "; ephemerad ended (" : "", how,
             r->daemon.done ? ") before the command finished, so files it held in memory were not written back" : "");
        jb_free(&cerr.msg);
        return status == 0 ? 1 : status;
    }
    jb_free(&cerr.msg);
    if (r->o->stats_file != NULL) {
        int rc = write_stats(r, result, status, sig, elapsed_ms);
        if (rc < 0) {
            jv_free(stats_reply);
            return -1;
        }
    }
    jv_free(stats_reply);
    if (!wait_child(&r->daemon, DAEMON_EXIT_TIMEOUT_MS))
        warn("ephemerad did not exit within %d ms after shutdown; leaving it running (pid %d)", DAEMON_EXIT_TIMEOUT_MS, (int)r->daemon.pid);
    else if (r->daemon.signal != 0 || r->daemon.code != 0) {
        char how[32];
        how_it_ended(&r->daemon, how, sizeof how);
        warn("ephemerad exited with %s after shutdown", how);
    }
    phase("daemon exited");
    return status;
}

/* The `finally` of runInstance. */
static void clean_up(struct run *r)
{
    if (r->ctl_open)
        ctl_close(&r->ctl);
    free((char *)r->ctl.path);
    if (r->daemon_started && !r->daemon.done && !r->shutdown_sent) {
        /* Set-up or CMD failed before the orderly shutdown: SIGTERM still applies --on-exit. */
        kill(r->daemon.pid, SIGTERM);
        if (!wait_child(&r->daemon, DAEMON_EXIT_TIMEOUT_MS))
            warn("ephemerad did not exit within %d ms of SIGTERM; leaving it running (pid %d)", DAEMON_EXIT_TIMEOUT_MS, (int)r->daemon.pid);
    }
    if (r->daemon_errfd >= 0)
        close(r->daemon_errfd);
    if (r->cmd_errfd >= 0)
        close(r->cmd_errfd);
    keeper_fini(&r->k);
    if (r->rundir != NULL)
        remove_tree(r->rundir);
}

/* Node opens /dev/null on a closed 0, 1 or 2 before anything else; so do we, so that no pipe of
 * ours lands there. */
static void stdio_open(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
}

int main(int argc, char **argv)
{
    t_start_us = now_us();
    stdio_open();
    debug = getenv("EPHEMERA_LAUNCHER_DEBUG") != NULL && getenv("EPHEMERA_LAUNCHER_DEBUG")[0] != '\0';
    /* run.ts's hand-over (docs/ARCHITECTURE.md, "One keeper for every run"); neither reaches the
     * daemon or the command. */
    from_node = getenv("EPHEMERA_RUN_FROM_NODE") != NULL;
    gate_off = getenv(EPH_GATE_ENV) != NULL && strcmp(getenv(EPH_GATE_ENV), "0") == 0;
    if (getenv("EPHEMERA_RUN_CGROUP") != NULL && getenv("EPHEMERA_RUN_CGROUP")[0] != '\0')
        cgroup_procs = strdup(getenv("EPHEMERA_RUN_CGROUP"));
    unsetenv("EPHEMERA_RUN_FROM_NODE");
    unsetenv("EPHEMERA_RUN_CGROUP");
    ssize_t n = readlink("/proc/self/exe", build_dir, sizeof build_dir - 1);
    if (n >= (ssize_t)sizeof build_dir - 1)
        n = -1;
    if (n <= 0) {
        fprintf(stderr, "ephemera: cannot find the build directory (/proc/self/exe: %s)\n", strerror(errno));
        return 1;
    }
    build_dir[n] = '\0';
    char *base = strrchr(build_dir, '/');
    *base++ = '\0';
    /* Installed as build/ephemera too, this binary is the CLI's front door: `run` is ours, every
     * other command goes to Node's CLI, with nothing between (no shell: docs/ARCHITECTURE.md,
     * "Start-up: where the time goes"). */
    if (strcmp(base, "ephemera") == 0) {
        if (argc < 2 || strcmp(argv[1], "run") != 0)
            exec_node_cli(argc - 1, argv + 1, NULL);
        argc--;
        argv++; /* argv[0] is now "run": the rest are run's arguments, as for build/ephemera-run */
        prctl(PR_SET_NAME, "ephemera-run"); /* the one name in ps, logs and the workloads' checks */
    }
    sigset_t handled;
    sigemptyset(&handled);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGQUIT);
    /* From here a signal waits for us (run.ts has its handlers before it makes the run dir). */
    sigprocmask(SIG_BLOCK, &handled, &old_mask);

    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        hand_to_node(argc, argv, "no working directory");
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        hand_to_node(argc, argv, "--help");
    struct run_opts o;
    const char *why = args_parse(argc - 1, argv + 1, cwd, &o);
    if (why != NULL)
        hand_to_node(argc, argv, why);
    for (size_t i = 0; i < o.nroots; i++)
        if (!is_dir(o.roots[i]))
            hand_to_node(argc, argv, "a --root that is not a directory");
    if ((o.stats_file && !writable_parent(o.stats_file)) || (o.log_file && !writable_parent(o.log_file)))
        hand_to_node(argc, argv, "a --stats or --log whose directory is not writable");
    char ephemerad[BUILD_PATH_MAX], lib[BUILD_PATH_MAX];
    const char *env_daemon = getenv("EPHEMERA_EPHEMERAD");
    if (env_daemon != NULL) {
        if (env_daemon[0] == '\0')
            hand_to_node(argc, argv, "an empty EPHEMERA_EPHEMERAD");
        snprintf(ephemerad, sizeof ephemerad, "%s", env_daemon);
    } else {
        build_path(ephemerad, sizeof ephemerad, "ephemerad");
        if (access(ephemerad, X_OK) < 0)
            hand_to_node(argc, argv, "build/ephemerad is missing");
    }
    build_path(lib, sizeof lib, "libephemera.so");
    if (access(lib, R_OK) < 0)
        hand_to_node(argc, argv, "build/libephemera.so is missing");
    char *cmd_path = resolve_command(o.command[0]);
    if (cmd_path == NULL)
        hand_to_node(argc, argv, "a command that is not found");

    struct run r = {.o = &o, .ephemerad = ephemerad, .lib = lib, .cmd_path = cmd_path, .sigfd = -1, .daemon_errfd = -1, .cmd_errfd = -1};
    keeper_init(&r.k);
    /* We hold a copy of every fd the daemon holds (keeper.h); the command gets the old limit back. */
    if (getrlimit(RLIMIT_NOFILE, &old_nofile) == 0 && old_nofile.rlim_cur < old_nofile.rlim_max) {
        struct rlimit raised = {old_nofile.rlim_max, old_nofile.rlim_max};
        setrlimit(RLIMIT_NOFILE, &raised);
    } else {
        old_nofile.rlim_cur = 0; /* nothing to give back */
    }
    sigemptyset(&r.forwarded);
    /* A terminal's ^C already reaches CMD, which shares our process group: passing SIGINT on as
     * well would deliver it twice.  Without a terminal, SIGINT can only have been sent to us. */
    if (!isatty(0))
        sigaddset(&r.forwarded, SIGINT);
    sigaddset(&r.forwarded, SIGTERM);
    sigaddset(&r.forwarded, SIGHUP);
    sigaddset(&r.forwarded, SIGQUIT);
    r.rundir = make_run_dir(&o);
    if (r.rundir == NULL)
        hand_to_node(argc, argv, "no run directory could be made");
    r.sigfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    /* Node ignores SIGPIPE: a closed stderr must not end the run before the files are safe.
     * The children get the default back (exec_child). */
    signal(SIGPIPE, SIG_IGN);

    int status = run_instance(&r);
    clean_up(&r);
    if (status < 0) {
        /* main.ts: `ephemera: CODE: message`; every code here ends with status 1. */
        fprintf(stderr, "ephemera: %s: %s\n", r.err_code, r.err_msg.s);
        status = 1;
    }
    jb_free(&r.err_msg);
    free(r.rundir);
    free(cmd_path);
    args_free(&o);
    return status;
}
