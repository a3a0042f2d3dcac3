/*
 * shim/rpc.c - the client side of proto.h: one SOCK_SEQPACKET connection per
 * process, opened lazily, serialised by a mutex (namespace calls are the slow
 * path), re-opened after fork so parent and child never share a stream.
 *
 * A daemon killed under us is replaced by the keeper (docs/ARCHITECTURE.md, "A namespace that
 * survives the daemon"): a request whose connection breaks waits, bounded, for the new daemon
 * and is made once more on a new connection.  Only failures pay for this: the common path makes
 * no call more.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/keeper.h"
#include "ephemera/proto.h"

#include "rpc.h"
#include "sys.h"
#include "creds.h"
#include "init.h"
#include "vforkchild.h"
#include "pathnorm.h"

static int rpc_fd = -1;
static pid_t rpc_pid;                   /* the process that opened rpc_fd */
static pthread_mutex_t rpc_mu = PTHREAD_MUTEX_INITIALIZER;

void rpc_req_init(struct eph_req *req, uint32_t op)
{
    /* Only the fixed part is zeroed; paths are NUL-terminated by the caller
     * and the daemon reads up to the NUL. */
    memset(req, 0, offsetof(struct eph_req, path));
    req->path[0] = '\0';
    req->path2[0] = '\0';
    req->version = EPH_PROTO_VERSION;
    req->op = op;
    req->pid = (int32_t)getpid();
    /* The identity only where the daemon acts with the caller's rights (two
     * syscalls saved on the others: a fork registers its child's ledger). */
    if (op == EPH_OP_CREATE || op == EPH_OP_UNLINK || op == EPH_OP_RENAME || op == EPH_OP_RMDIR) {
        req->uid = (uint32_t)creds_euid();
        req->gid = (uint32_t)creds_egid();
    }
}

/*
 * The child must not speak on the parent's connection (responses would
 * interleave): its first request opens its own (rpc_own).  Nothing is written
 * here unless another thread held the lock at fork, so a child that only
 * execs or exits copies none of our pages.
 */
void rpc_after_fork(void)
{
    if (rpc_mu.__data.__lock) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        memcpy(&rpc_mu, &fresh, sizeof fresh);
    }
}

/* Under rpc_mu: drop a connection inherited through fork. */
static void rpc_own(const struct eph_req *req)
{
    if (rpc_fd >= 0 && rpc_pid != req->pid) {
        sys.close(rpc_fd);
        rpc_fd = -1;
    }
}

#define RPC_QUIET_S 10 /* a daemon silent this long is reported, and again after each as long */

/* RPC_QUIET_S; fault builds take EPHEMERA_RPC_QUIET_S (seconds) for a test that cannot wait 10 s. */
static unsigned rpc_quiet_s(void)
{
#ifdef EPH_FAULTS
    const char *q = getenv("EPHEMERA_RPC_QUIET_S");
    if (q && atoi(q) > 0)
        return (unsigned)atoi(q);
#endif
    return RPC_QUIET_S;
}

static int rpc_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sh.sock_path, strlen(sh.sock_path) + 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        sys.close(fd);
        return -e;
    }
    /* Receives time out, so that a daemon that runs but does not answer is reported (rpc_recv). */
    struct timeval quiet = {(time_t)rpc_quiet_s(), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quiet, sizeof quiet);
    /* Keep the socket off the numbers the application expects to get next. */
    if (fd < 100) {
        int nfd = sys.fcntl(fd, F_DUPFD_CLOEXEC, 100);
        if (nfd >= 0) {
            sys.close(fd);
            fd = nfd;
        }
    }
    return fd;
}

static int64_t rpc_mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void rpc_nap(void)
{
    struct timespec t = {0, 2 * 1000 * 1000};
    nanosleep(&t, NULL);
}

/* The state letter of /proc/<pid>/stat (R, S, D, T, Z...) and its flags; 0 when it cannot be read. */
static char rpc_pid_state(int pid, unsigned long *flags)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    int fd = sys.open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = sys.read(fd, buf, sizeof buf - 1);
    sys.close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *paren = strrchr(buf, ')');
    if (!paren || paren[1] != ' ')
        return 0;
    /* state ppid pgrp session tty_nr tpgid flags */
    char *f = paren + 2;
    for (int i = 0; i < 6 && f; i++) {
        f = strchr(f, ' ');
        if (f)
            f++;
    }
    *flags = f ? strtoul(f, NULL, 10) : 0;
    return paren[2];
}

/* pid is a process that runs: not a zombie waiting to be reaped, and not exiting (a process
 * killed with SIGKILL closes its sockets before it becomes a zombie: PF_EXITING meanwhile). */
static int rpc_pid_runs(int pid)
{
    unsigned long flags = 0;
    char st = rpc_pid_state(pid, &flags);
    return st && st != 'Z' && st != 'X' && !(flags & 0x4 /* PF_EXITING */);
}

#define RPC_RESTART_WAIT_MS 15000

/* The keeper's mark beside the socket: a new daemon is being started (EPH_KEEPER_RESTARTING). */
static int rpc_restarting(void)
{
    char p[sizeof sh.sock_path + sizeof EPH_KEEPER_RESTARTING];
    const char *slash = strrchr(sh.sock_path, '/');
    if (!slash)
        return 0;
    snprintf(p, sizeof p, "%.*s/%s", (int)(slash - sh.sock_path), sh.sock_path, EPH_KEEPER_RESTARTING);
    return sys.access(p, F_OK) == 0;
}

/*
 * A request to the daemon seen_pid failed.  If that daemon died and a keeper is replacing it,
 * wait (at most 15 s) until the new one listens: 1, with *seen_pid its pid; else 0 at once.
 */
static int rpc_wait_daemon(int *seen_pid)
{
    if (!*seen_pid || !atomic_load_explicit(&sh.attached, memory_order_acquire))
        return 0;
    struct eph_shm_header *h = sh.hdr;
    int keeper = atomic_load(&h->keeper_pid);
    if (!keeper) {
        sh_log("ephemerad %d: no keeper", *seen_pid);
        return 0; /* nobody restarts it */
    }
    int64_t deadline = rpc_mono_ms() + RPC_RESTART_WAIT_MS;
    for (;;) {
        uint32_t down = atomic_load(&h->daemon_down); /* before the pid: see daemon/main.c */
        int pid = atomic_load(&h->daemon_pid);
        if (down == EPH_DAEMON_GONE)
            return 0;
        if (down == EPH_DAEMON_UP && pid != *seen_pid) {
            sh_log("ephemerad %d was replaced by %d; asking again", *seen_pid, pid);
            *seen_pid = pid;
            return 1;
        }
        if (down == EPH_DAEMON_UP && rpc_pid_runs(pid)) {
            sh_log("ephemerad %d runs: the request failed for another reason", pid);
            return 0;
        }
        if (!rpc_pid_runs(keeper) || rpc_mono_ms() > deadline) {
            sh_log("ephemerad %d died and no new one listens%s", *seen_pid,
                   rpc_mono_ms() > deadline ? " after 15 s" : " (its keeper is gone)");
            return 0;
        }
        rpc_nap();
    }
}

/* Under rpc_mu: a connection of our own, waiting for a daemon being replaced. 0 or -errno. */
static int rpc_ensure(const struct eph_req *req, int *seen_pid)
{
    rpc_own(req);
    if (rpc_fd >= 0)
        return 0;
    int64_t hello_until = 0;
    for (;;) {
        int rc = rpc_connect();
        if (rc >= 0) {
            rpc_fd = rc;
            rpc_pid = req->pid;
            return 0;
        }
        if (rc != -ECONNREFUSED && rc != -ENOENT)
            return rc;
        if (*seen_pid) {
            if (!rpc_wait_daemon(seen_pid))
                return rc;
            continue;
        }
        /* Not attached yet (HELLO): no region tells whether a new daemon is coming, but the
         * keeper marks the run directory while it starts one (keeper.h); without the mark a
         * refused socket fails at once, as before. */
        if (!hello_until)
            hello_until = rpc_mono_ms() + RPC_RESTART_WAIT_MS;
        if (req->op != EPH_OP_HELLO || !rpc_restarting() || rpc_mono_ms() > hello_until)
            return rc;
        rpc_nap();
    }
}

int rpc_daemon_replaced(int pid)
{
    return rpc_wait_daemon(&pid);
}

int rpc_open_daemon_fd(int n, int flags)
{
    char p[64];
    int pid = sh_daemon_pid();
    snprintf(p, sizeof p, "/proc/%d/fd/%d", pid, n);
    int fd = sys.open(p, flags);
    if (fd < 0 && errno == ENOENT && rpc_daemon_replaced(pid)) {
        snprintf(p, sizeof p, "/proc/%d/fd/%d", sh_daemon_pid(), n);
        fd = sys.open(p, flags);
    }
    return fd;
}

static int rpc_seen_pid(void)
{
    return atomic_load_explicit(&sh.attached, memory_order_acquire) ? sh_daemon_pid() : 0;
}

/*
 * The daemon's answer to request op.  It comes within milliseconds, or after
 * seconds when the request moves a large file to disk.  A daemon that dies
 * closes the connection, which ends the wait (EOF or ECONNRESET, and the
 * caller's retry on a keeper's new daemon).  One that runs and says nothing
 * for RPC_QUIET_S (stopped by a signal or a debugger, stalled at its memory
 * limit until the watchdog lifts the guard) is waited for, as a process waits
 * for a stopped NFS server, but never in silence: each RPC_QUIET_S the log
 * says which daemon, in what state, for which request.
 */
static ssize_t rpc_recv(int sock, struct msghdr *mh, uint32_t op)
{
    for (unsigned quiet = 0;;) {
        ssize_t r = recvmsg(sock, mh, MSG_CMSG_CLOEXEC);
        if (r >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
            return r;
        if (errno == EINTR)
            continue;
        quiet += rpc_quiet_s();
        int pid = rpc_seen_pid();
        unsigned long flags;
        char st = pid ? rpc_pid_state(pid, &flags) : 0;
        sh_log("ephemerad %d has not answered request %u for %u s (process state %c%s); still waiting", pid, op,
               quiet, st ? st : '?', st == 'T' || st == 't' ? ": stopped" : st == 'D' ? ": in the kernel" : "");
    }
}

/* 0, or 1 when sending failed (the daemon never saw the request). */
static int rpc_send(int sock, const struct eph_req *req, int send_fd)
{
    union eph_fd_cmsg out;
    struct iovec oiov = {(void *)req, sizeof *req};
    struct msghdr omh = {.msg_iov = &oiov, .msg_iovlen = 1};
    if (send_fd >= 0)
        eph_msg_attach_fd(&omh, &out, send_fd);
    ssize_t w;
    do
        w = REAL(sendmsg)(sock, &omh, MSG_NOSIGNAL); /* (not our wrapper: intercept_names.c) */
    while (w < 0 && errno == EINTR);
    return w != (ssize_t)sizeof *req;
}

/* Returns 0, -errno, or 1 when sending failed (the daemon never saw the request). */
static int rpc_exchange(int sock, const struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd)
{
    if (rpc_send(sock, req, send_fd))
        return 1;
    union eph_fd_cmsg cm;
    struct iovec iov = {resp, sizeof *resp};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    eph_msg_control(&mh, &cm);
    ssize_t r = rpc_recv(sock, &mh, req->op);
    if (r < 0)
        return -errno;
    if (r != (ssize_t)sizeof *resp)
        return -EPROTO;
    *fd_out = eph_msg_fd(&mh);
    return 0;
}

int rpc_call(struct eph_req *req, struct eph_resp *resp, int *fd_out)
{
    return rpc_call_fd(req, resp, fd_out, -1);
}

static int rpc_inode_ask(uint32_t op, uint32_t inode, uint32_t gen, struct eph_resp *resp, int *fd)
{
    struct eph_req req;
    rpc_req_init(&req, op);
    req.inode = inode;
    req.gen = gen;
    return rpc_call(&req, resp, fd);
}

int rpc_inode_call(uint32_t op, uint32_t inode, uint32_t gen)
{
    struct eph_resp resp;
    int fd;
    if (rpc_inode_ask(op, inode, gen, &resp, &fd) != 0)
        return 0;
    if (fd >= 0)
        sys.close(fd);
    return resp.status;
}

int rpc_disk_fd(uint32_t inode, uint32_t gen)
{
    struct eph_resp resp;
    int fd;
    if (rpc_inode_ask(EPH_OP_EVICT, inode, gen, &resp, &fd) != 0)
        return -EIO;
    if (resp.status < 0 || resp.where != EPH_WHERE_DISK || fd < 0) {
        if (fd >= 0)
            sys.close(fd);
        return resp.status < 0 ? resp.status : -EIO;
    }
    return fd;
}

/*
 * A vfork child shares our memory, so rpc_fd and rpc_mu are its parent's: it asks over a
 * connection of its own, made for the request and closed after it (vforkchild.h), once.
 */
static int rpc_child_call(const struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd)
{
    int sock = rpc_connect();
    if (sock < 0)
        return sock;
    int rc = rpc_exchange(sock, req, resp, fd_out, send_fd);
    sys.close(sock);
    return rc > 0 ? -ECONNRESET : rc;
}

void rpc_send_fd(struct eph_req *req, int send_fd)
{
    if (unlikely(sh_vfork_child())) {
        int sock = rpc_connect();
        if (sock >= 0) {
            rpc_send(sock, req, send_fd);
            sys.close(sock);
        }
        return;
    }
    sh_busy++;
    int seen = rpc_seen_pid();
    pthread_mutex_lock(&rpc_mu);
    for (int attempt = 0; attempt < 3 && rpc_ensure(req, &seen) == 0; attempt++) {
        if (!rpc_send(rpc_fd, req, send_fd))
            break;
        sys.close(rpc_fd);
        rpc_fd = -1;
        /* A connection to a daemon that died since (one already replaced is not waited for:
         * rpc_wait_daemon finds the new one running): once more on a new one, as rpc_call_fd. */
        if (attempt > 0 && !rpc_wait_daemon(&seen))
            break;
    }
    pthread_mutex_unlock(&rpc_mu);
    sh_busy--;
}

int rpc_call_fd(struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd)
{
    int rc;
    *fd_out = -1;
    if (unlikely(sh_vfork_child()))
        return rpc_child_call(req, resp, fd_out, send_fd);
    sh_busy++;
    int seen = rpc_seen_pid(), maybe_ran = 0;
    pthread_mutex_lock(&rpc_mu);
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((rc = rpc_ensure(req, &seen)) < 0)
            break;
        rc = rpc_exchange(rpc_fd, req, resp, fd_out, send_fd);
        if (rc == 0)
            break;
        sys.close(rpc_fd);
        rpc_fd = -1;
        if (rc < 0) {
            /* The daemon saw it and did not answer.  Asked again only of a new daemon that took
             * over from a dead one, and never a CREATE with O_EXCL (it may have run). */
            int excl = req->op == EPH_OP_CREATE && (req->flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
            if (attempt == 2 || excl || !rpc_wait_daemon(&seen))
                break;
            maybe_ran = 1;
            continue;
        }
        /* The daemon never saw it: a stale connection (a daemon that died since), once more. */
        rc = -ECONNRESET;
    }
    pthread_mutex_unlock(&rpc_mu);
    sh_busy--;
    if (rc < 0)
        sh_log("rpc op %u failed: %s", req->op, strerror(-rc));
    /* An unlink, rmdir or rename that the dead daemon may have made before it died finds its
     * name gone when it is made again: that is its own effect, not the program's error. */
    if (rc == 0 && maybe_ran && resp->status == -ENOENT &&
        (req->op == EPH_OP_UNLINK || req->op == EPH_OP_RMDIR || req->op == EPH_OP_RENAME)) {
        sh_log("op %u on %s: ENOENT when made again after the daemon died; taken as done", req->op, req->path);
        resp->status = 0;
    }
    return rc;
}

/*
 * EPH_OP_POOL: one request, one answer carrying up to EPH_POOL_FIRST fds.
 * Returns the number of entries (fds[i] belongs to resp->e[i]), or -errno.
 */
int rpc_call_pool(struct eph_req *req, struct eph_pool_resp *resp, int *fds)
{
    int rc = -ECONNREFUSED, n = 0;
    if (unlikely(sh_vfork_child()))
        return rc; /* lent to the parent, whose memory this is: a vfork child makes no file in memory */
    sh_busy++;
    int seen = rpc_seen_pid();
    pthread_mutex_lock(&rpc_mu);
again:
    rc = rpc_ensure(req, &seen);
    if (rpc_fd >= 0) {
        rc = 0;
        if (rpc_send(rpc_fd, req, -1)) {
            rc = -ECONNRESET;
        } else {
            union eph_pool_cmsg cm;
            memset(&cm, 0, sizeof cm);
            struct iovec iov = {resp, sizeof *resp};
            struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                                .msg_controllen = sizeof cm.buf};
            ssize_t r = rpc_recv(rpc_fd, &mh, req->op);
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); r > 0 && c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                    n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                    if (n > EPH_POOL_FIRST)
                        n = EPH_POOL_FIRST;
                    memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)n);
                }
            if (r < 0)
                rc = -errno;
            else if (r != (ssize_t)sizeof *resp || (mh.msg_flags & MSG_CTRUNC))
                rc = -EPROTO;
        }
        if (rc < 0) {
            sys.close(rpc_fd);
            rpc_fd = -1;
            /* Nothing was lent if the daemon died before its answer: ask the new one once. */
            if (n == 0 && (rc == -ECONNRESET || rc == -EPROTO || rc == -EPIPE) && rpc_wait_daemon(&seen))
                goto again;
        }
    }
    pthread_mutex_unlock(&rpc_mu);
    sh_busy--;
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            sys.close(fds[i]);
        sh_log("rpc pool failed: %s", strerror(-rc));
        return rc;
    }
    if ((req->flags & EPH_POOL_NOFDS) && n == 0)
        return (int)resp->r.arg; /* the slots only: the caller opens each memfd itself */
    if ((uint64_t)n != resp->r.arg) {
        for (int i = 0; i < n; i++)
            sys.close(fds[i]);
        return -EPROTO;
    }
    return n;
}

/*
 * In a vfork child, a path in a root: the daemon puts everything on disk (MATERIALISE_ALL, as for
 * a program that cannot load the shim), once per child, over a connection of the child's own
 * (rpc.c); the kernel then answers as the shim would.  Rare: a child that only dup2s, closes and
 * execs a program outside the roots never asks.
 */
static int vfork_materialised; /* the pid of the child that asked */

void vfork_child_forget(void)
{
    vfork_materialised = 0;
}

void vfork_child_materialise(void)
{
    int me = (int)getpid();
    if (vfork_materialised == me || sh.disabled)
        return;
    struct eph_req req;
    struct eph_resp resp;
    int fd;
    rpc_req_init(&req, EPH_OP_MATERIALISE_ALL);
    if (rpc_call(&req, &resp, &fd) == 0) {
        if (fd >= 0)
            sys.close(fd);
        vfork_materialised = me;
    }
    sh_log("vfork child: in-memory files materialised for a path in a root");
}

/*
 * In a vfork child, a chdir or fchdir the kernel answered ENOENT: the directory may be one in
 * memory (Python's subprocess with cwd= changes directory in its vfork child).  As a parent's
 * chdir does through nsd_enoent, the in-memory directories on its path get their disk twins
 * (DIRTWIN over the child's own connection), and nothing else moves; a name with ".." (a symlink
 * on the way makes its lexical form wrong) puts everything on disk instead.  dir_gen moves as
 * after any twin (dircache.c): it is the region's, not the parent's private state.  1 when the
 * caller should try the kernel again.
 */
int vfork_child_twin(const char *path)
{
    char cwd[EPH_PATH_MAX], abs[EPH_PATH_MAX];
    if (sh.disabled || !path || !path[0])
        return 0;
    if (pn_has_dotdot(path)) {
        vfork_child_materialise();
        return 1;
    }
    if (path[0] != '/' && (syscall(SYS_getcwd, cwd, sizeof cwd) <= 0 || cwd[0] != '/'))
        return 0;
    if (pn_normalize(path[0] == '/' ? "/" : cwd, path, abs, sizeof abs, NULL) < 0)
        return 0;
    struct eph_req req;
    struct eph_resp resp;
    int fd = -1;
    rpc_req_init(&req, EPH_OP_DIRTWIN);
    req.flags = 0;
    size_t n = strnlen(abs, sizeof req.path - 1);
    memcpy(req.path, abs, n);
    req.path[n] = '\0';
    int rc = rpc_call(&req, &resp, &fd);
    if (fd >= 0)
        sys.close(fd);
    if (rc < 0 || resp.status < 0)
        return 0;
    if (sh.hdr)
        atomic_fetch_add_explicit(&sh.hdr->dir_gen, 1, memory_order_acq_rel);
    return 1;
}
