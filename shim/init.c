/*
 * shim/init.c - the constructor (which resolves the table of real calls,
 * sys.c, eagerly), global state, lazy attachment to ephemerad, diagnostics
 * and counters.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/gate.h"
#include "ephemera/proto.h"
#include "ephemera/lock.h"
#include "ephemera/shm.h"

#include "init.h"
#include "compiler.h"
#include "sys.h"
#include "paths.h"
#include "fdtable.h"
#include "rpc.h"
#include "fp_desc.h"
#include "intercept_proc.h"
#include "vforkchild.h"

struct sh_global sh = {.log_fd = -1, .region_fd = -1};
SH_TLS int sh_busy;
SH_TLS int sh_vfork_mark; /* vforkchild.h */
SH_TLS struct sh_tcount sh_tc;

SH_STARTDATA static _Atomic uint32_t sh_umask_cache;
static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;

void sh_log(const char *fmt, ...)
{
    if (sh.log_fd < 0)
        return;
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "ephemera[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m : sizeof buf - (size_t)n - 2);
    buf[len++] = '\n';
    ssize_t r = sys.write(sh.log_fd, buf, len);
    (void)r;
}

int64_t sh_now_ns(void)
{
    struct timespec ts;
    /* Not the coarse clock: tmpfs has fine-grained (multigrain) timestamps. */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t sh_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

uint64_t sh_lru_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t sh_umask(void) { return atomic_load_explicit(&sh_umask_cache, memory_order_relaxed); }

/* umask is wrapped only to cache it: reading it otherwise means setting it. */
SH_EXPORT mode_t umask(mode_t m)
{
    mode_t old = (mode_t)sys.syscall(SYS_umask, m);
    if (!sh_vfork_child()) /* a vfork child's umask is its own; the cache is its parent's */
        atomic_store_explicit(&sh_umask_cache, m & 0777, memory_order_relaxed);
    return old;
}

SH_START void sh_flush_counters(void) /* at every exit (sh_fini): beside the start */
{
    struct sh_tcount *t = &sh_tc;
    struct eph_shm_header *h = sh.hdr;
    t->pending = 0;
    if (!h)
        return;
#define ADD(field, v) \
    if (v) { atomic_fetch_add_explicit(&h->c.field, v, memory_order_relaxed); v = 0; }
    ADD(fast_reads, t->reads);
    ADD(fast_writes, t->writes);
    ADD(fast_seeks, t->seeks);
    ADD(fast_stats, t->stats);
    ADD(bytes_read, t->bytes_read);
    ADD(bytes_written, t->bytes_written);
    ADD(slow_ops, t->slow);
#undef ADD
}

/* Flush the exiting thread's counters too, not only the main thread's. */
SH_STARTDATA static pthread_key_t flush_key;
static void flush_on_thread_exit(void *p)
{
    (void)p;
    sh_flush_counters();
}

/* FNV-1a of EPHEMERA_SOCK: which run an EPHEMERA_REGION was written for. */
uint64_t sh_sock_hash(void)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)sh.sock_path; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return h;
}

/* A mapping of size bytes that is a region of this build. */
static int region_ok(const struct eph_shm_header *h, uint64_t size)
{
    return h->magic == EPH_SHM_MAGIC && h->version == EPH_SHM_VERSION &&
           h->header_size == sizeof(struct eph_shm_header) && h->total_size <= size;
}

/*
 * The region through the daemon's own fd, which a process exec'd by an
 * attached one knows from EPHEMERA_REGION: a stat, an open and the mmap where
 * HELLO is a socket, a connect and a round trip through a daemon that has to
 * be scheduled first.  NULL when the variable is absent or stale (a daemon
 * that died, its pid given to another process), or when /proc refuses us the
 * daemon's fd (another uid): HELLO then, as before.  The stat comes first so
 * that a stale number never opens what it names now (a device, a FIFO): only
 * the regular file with the region's inode number is opened, and then the
 * region's own header (magic, version, the daemon's pid) decides.
 */
static struct eph_shm_header *attach_inherited(uint64_t *size)
{
    if (sh.region_pid <= 0 || sh.region_fd < 0)
        return NULL;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", sh.region_pid, sh.region_fd);
    struct stat st;
    if (sys.stat(p, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino != sh.region_ino ||
        (uint64_t)st.st_size < sizeof(struct eph_shm_header))
        return NULL;
    int fd = sys.open(p, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    void *map = sys.mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    sys.close(fd);
    if (map == MAP_FAILED)
        return NULL;
    struct eph_shm_header *h = map;
    if (!region_ok(h, (uint64_t)st.st_size) ||
        atomic_load_explicit(&h->daemon_pid, memory_order_acquire) != sh.region_pid) {
        munmap(map, (size_t)st.st_size);
        return NULL;
    }
    *size = (uint64_t)st.st_size;
    return h;
}

static int attach_common(int soft);

int sh_attach(void)
{
    return attach_common(0);
}

int sh_attach_try(void)
{
    return attach_common(1);
}

static int attach_common(int soft)
{
    if (atomic_load_explicit(&sh.attached, memory_order_acquire))
        return 0;
    if (sh.disabled)
        return -ENOSYS;
    if (sh_vfork_child())
        return -EAGAIN; /* the connection and the mapping would be the parent's (vforkchild.h) */
    int rc = 0, fd = -1;
    void *map = MAP_FAILED;
    pthread_mutex_lock(&attach_mu);
    if (atomic_load_explicit(&sh.attached, memory_order_acquire))
        goto out;
    if (sh.disabled) {
        rc = -ENOSYS;
        goto out;
    }
    struct eph_req req;
    struct eph_resp resp = {0};
    struct eph_shm_header *h = attach_inherited(&resp.arg);
    if (h) {
        map = h;
        goto mapped;
    }
    rpc_req_init(&req, EPH_OP_HELLO);
    rc = rpc_call(&req, &resp, &fd);
    if (rc < 0 || resp.status < 0 || fd < 0) {
        sh_log("HELLO to %s failed (%s); passing everything through", sh.sock_path,
               strerror(rc < 0 ? -rc : resp.status < 0 ? -resp.status : EPROTO));
        goto err;
    }
    map = sys.mmap(NULL, resp.arg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        sh_log("mmap of the shared region (%llu bytes) failed: %s", (unsigned long long)resp.arg,
               strerror(errno));
        goto err;
    }
    h = map;
    if (!region_ok(h, resp.arg)) {
        sh_log("shared region has the wrong magic/version/header size; passing through");
        goto err;
    }
    struct stat st;
    if (sys.fstat(fd, &st) == 0) { /* handed on to the images we exec (EPHEMERA_REGION) */
        sh.region_pid = (int)resp.arg2;
        sh.region_fd = (int)resp.inode;
        sh.region_ino = (uint64_t)st.st_ino;
    }
    sys.close(fd);
    fd = -1;
mapped:
    sh.hdr = h;
    sh.inodes = eph_inodes(h);
    sh.descs = eph_descs(h);
    sh.buckets = eph_buckets(h);
    if (ft_init() < 0) {
        sh_log("cannot allocate the fd table; passing through");
        sh.hdr = NULL;
        goto err;
    }
    atomic_store_explicit(&sh.attached, 1, memory_order_release);
    goto out;
err:
    if (map != MAP_FAILED)
        munmap(map, resp.arg);
    if (fd >= 0)
        sys.close(fd);
    /* A try (sh_attach_try) leaves the process free to attach later: the daemon may not be up yet
     * (ow_entry.sh starts the runtime beside it, and Python's imports look up missing names
     * outside the roots before the daemon listens). */
    if (!soft)
        sh.disabled = 1;
    rc = soft ? -EAGAIN : -ENOSYS;
out:
    pthread_mutex_unlock(&attach_mu);
    return rc;
}

/* Something listens on EPHEMERA_SOCK: the daemon got past its start. */
static int sh_daemon_listens(void)
{
    if (!sh.sock_path[0])
        return 0;
    int fd = (int)sys.syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sh.sock_path, strlen(sh.sock_path) + 1);
    int ok = sys.syscall(SYS_connect, fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    sys.syscall(SYS_close, fd);
    return ok;
}

/*
 * The launcher's start gate (include/ephemera/gate.h): the command was exec'd beside the daemon's
 * start, and its program must not run before the daemon listens, or its first managed call would
 * find no socket and send its files to the disk.  So the constructor, after the work that needs
 * no daemon (the table of real calls, the roots), reads the daemon's ready pipe here.  Without
 * `ready\n` (the daemon died, or a child that an earlier library's constructor started read it
 * first) a connect to the socket decides; if nothing listens the program never runs, as when the
 * launcher's child waited: NOT_READY goes up the launcher's pipe and the process exits 127.  The
 * wait's bound is the launcher's (15 s, then it kills us).  Libc's syscall() from the table of
 * real calls: none of our wrappers (not even our own syscall()), nothing of ours counted.
 */
static ssize_t sh_gate_read(int fd, void *buf, size_t n)
{
    return sys.syscall(SYS_read, fd, buf, n);
}

static void sh_start_gate(void)
{
    const char *g = getenv(EPH_GATE_ENV);
    if (!g)
        return;
    char *e;
    long rfd = strtol(g, &e, 10), wfd = *e == ':' ? strtol(e + 1, &e, 10) : -1;
    int valid = *e == '\0' && rfd >= 0 && wfd >= 0 && rfd <= INT32_MAX && wfd <= INT32_MAX;
    unsetenv(EPH_GATE_ENV); /* the program and its children never see it */
    if (!valid)
        return;
    int ready = eph_ready_wait((int)rfd, sh_gate_read);
    sys.syscall(SYS_close, (int)rfd);
    if (!ready && !sh_daemon_listens()) {
        int word = EPH_GATE_NOT_READY;
        if (sys.syscall(SYS_write, (int)wfd, &word, sizeof word) < 0) { /* the launcher sees EOF and a 127 exit */
        }
        _exit(127);
    }
    sys.syscall(SYS_close, (int)wfd); /* the launcher's sign that the program runs */
}

/* The constructor's work up to the gate: no daemon needed. */
static void sh_init_env(void);

__attribute__((constructor(101))) static void sh_init(void)
{
    sh_init_env();
    sh_start_gate();
    if (!sh.disabled)
        proc_init_inherited(); /* may attach: after the gate */
    else
        unsetenv("EPHEMERA_POOL"); /* slots a parent handed us (nsfast.c): never our children's */
}

static void sh_init_env(void)
{
    eph_lock_self_init(); /* the pid the region's lock words carry for us (fork children: intercept_proc.c) */
    sys_resolve();
#ifdef EPH_FAULTS
    sys_faults_install();
#endif
    /* Libc's syscall(), not ours: our wrapper's code and tables are pages this process need not touch. */
    mode_t m = (mode_t)sys.syscall(SYS_umask, 022);
    sys.syscall(SYS_umask, m);
    atomic_store(&sh_umask_cache, m);

    const char *lg = getenv("EPHEMERA_LOG");
    if (lg && *lg)
        sh.log_fd = sys.open(lg, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (sh.log_fd >= 0 && sh.log_fd < 100) {
        /* Keep off the low numbers: the application expects its opens to get them. */
        int nfd = sys.fcntl(sh.log_fd, F_DUPFD_CLOEXEC, 100);
        sys.close(sh.log_fd);
        sh.log_fd = nfd;
    }
    if (lg && strlen(lg) < sizeof sh.log_env)
        strcpy(sh.log_env, lg);
    const char *rt = getenv("EPHEMERA_ROOTS");
    if (rt && strlen(rt) < sizeof sh.roots_env)
        strcpy(sh.roots_env, rt);
    const char *lib = getenv("EPHEMERA_LIB");
    if (lib && strlen(lib) < sizeof sh.lib_path) {
        strcpy(sh.lib_path, lib);
    } else {
        /* Find ourselves, so LD_PRELOAD can be restored across exec. */
        Dl_info di;
        if (dladdr((void *)sh_log, &di) && di.dli_fname && di.dli_fname[0] == '/' &&
            strlen(di.dli_fname) < sizeof sh.lib_path)
            strcpy(sh.lib_path, di.dli_fname);
    }
    const char *sock = getenv("EPHEMERA_SOCK");
    if (!sock || !*sock || strlen(sock) >= sizeof sh.sock_path) {
        sh.disabled = 1;
        return;
    }
    strcpy(sh.sock_path, sock);
    /* "pid:fd:inode:sock", from the process that exec'd us; sock: sh_sock_hash() of its EPHEMERA_SOCK,
     * so a variable left from another run (a nested `ephemera run`) is not taken for ours */
    const char *rg = getenv("EPHEMERA_REGION");
    if (rg) {
        char *e;
        long pid = strtol(rg, &e, 10), n = *e == ':' ? strtol(e + 1, &e, 10) : -1;
        unsigned long long ino = *e == ':' ? strtoull(e + 1, &e, 10) : 0;
        unsigned long long sk = *e == ':' ? strtoull(e + 1, &e, 16) : 0;
        if (*e == '\0' && pid > 0 && pid <= INT32_MAX && n >= 0 && n <= INT32_MAX && ino && sk == sh_sock_hash()) {
            sh.region_pid = (int)pid;
            sh.region_fd = (int)n;
            sh.region_ino = ino;
        }
    }
    pthread_key_create(&flush_key, flush_on_thread_exit);
    path_init();
}

/*
 * Normal exit: the kernel will close our fds, but the description references
 * live in shared memory and must be dropped by us, or unlinked files would
 * stay allocated until the instance ends.  Streams are flushed first: glibc
 * flushes them only after the destructors, and by then the fds are no longer
 * ours.  (A process killed by a signal or _exit leaks its references.)
 */
__attribute__((destructor)) static void sh_fini(void)
{
    if (sh_vfork_child())
        return; /* exit() in a vfork child: the references and the counters are the parent's */
    sh_flush_counters();
    if (!ft_fds)
        return;
    fflush(NULL);
    /* Mappings stay: other threads may still be inside a read while we exit. */
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        uint32_t d1 = ft_fds[fd].desc1;
        if (!d1)
            continue;
        ft_set((int)fd, 0, ft_fds[fd].flags);
        fp_desc_unref(d1 - 1);
    }
}

/* Each thread registers for a flush at its exit on its first counted op. */
void sh_register_thread_flush(void)
{
    sh_tc.registered = 1;
    pthread_setspecific(flush_key, (void *)1);
}
