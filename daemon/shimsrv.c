/*
 * shimsrv.c - serves the shim protocol (include/ephemera/proto.h).
 *
 * Every request is one datagram of exactly sizeof(struct eph_req); every
 * response one struct eph_resp, with at most one fd in SCM_RIGHTS.  The
 * daemon is single-threaded, so each request runs to completion; the
 * namespace changes it makes for one run under the region's namespace lock,
 * which shims take for the changes they make themselves.  This file is the
 * transport (connections, credentials, datagrams and fds); the requests'
 * handlers are in shimops.c.
 */
#include "shimsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "ephemera/proto.h"
#include "guard.h"
#include "log.h"
#include "loop.h"
#include "namespace.h"
#include "ledger.h"
#include "shimops.h"

struct shim_conn {
    struct loop_ev ev;
    pid_t pid;              /* from SO_PEERCRED, for logs */
    uid_t uid;              /* SO_PEERCRED: a non-root peer cannot claim another identity */
    gid_t gid;
    int paused;             /* off the loop during a stall (shim_resume) */
    struct shim_conn *next; /* all connections, closed at exit */
};

static struct shim_conn *shim_conns;
static int shim_count;
static uint64_t shim_accepted;
static int shim_npaused; /* connections, and the listener, off the loop during a stall */
static int shim_listener_paused;

int shim_nconns(void)
{
    return shim_count;
}

uint64_t shim_accepts(void)
{
    return shim_accepted;
}

static struct loop_ev shim_listener = {.fd = -1};
static char shim_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* A fresh open file description on fd (own kernel offset and flags), via
 * /proc; falls back to fd itself, which SCM_RIGHTS duplicates. */
static int shim_reopen(int fd, int *owned)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int r = open(p, O_RDWR | O_CLOEXEC);
    if (r >= 0) {
        *owned = 1;
        return r;
    }
    *owned = 0;
    return fd;
}

/* ---- transport -------------------------------------------------------- */

static void shim_drop(struct shim_conn *c)
{
    for (struct shim_conn **pp = &shim_conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            shim_count--;
            break;
        }
    if (c->paused)
        shim_npaused--;
    else
        loop_del(&c->ev);
    close(c->ev.fd);
    free(c);
}

static int shim_reply(struct shim_conn *c, struct eph_resp *r, int fd)
{
    struct iovec iov = {.iov_base = r, .iov_len = sizeof *r};
    union eph_fd_cmsg u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    int owned = 0;
    if (fd >= 0) {
        fd = shim_reopen(fd, &owned);
        eph_msg_attach_fd(&m, &u, fd);
        r->has_fd = 1;
    }
    ssize_t n = sendmsg(c->ev.fd, &m, MSG_NOSIGNAL);
    if (owned)
        close(fd);
    return n == (ssize_t)sizeof *r ? 0 : -1;
}

/* EPH_OP_POOL: a batch of slots and memfds in one message. */
static void shim_pool(struct shim_conn *c, struct eph_req *q)
{
    static struct eph_pool_resp pr;
    int fds[EPH_POOL_MAX];
    memset(&pr, 0, sizeof pr);
    pr.r.version = EPH_PROTO_VERSION;
    pr.r.op = q->op;
    /* Only the peer's own pid: SO_PEERCRED, not what the request claims. */
    int32_t pid = c->pid > 0 ? c->pid : q->pid;
    if (q->flags & EPH_POOL_FRESH)
        ns_pool_take_back(pid, 0);
    int most = (q->flags & EPH_POOL_NOFDS) ? EPH_POOL_MAX : EPH_POOL_FIRST;
    int want = q->arg > (uint64_t)most ? most : (int)q->arg;
    int n = ns_pool_lend(pid, want, pr.e, fds);
    pr.r.arg = (uint64_t)n;
    pr.r.status = n > 0 ? 0 : -ENFILE;
    union eph_pool_cmsg u;
    struct iovec iov = {.iov_base = &pr, .iov_len = sizeof pr};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0 && !(q->flags & EPH_POOL_NOFDS)) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
        pr.r.has_fd = 1;
    }
    log_msg(LOG_DEBUG, "pid %d pool %d -> %d", (int)pid, want, n);
    if (sendmsg(c->ev.fd, &m, MSG_NOSIGNAL) != (ssize_t)sizeof pr) {
        log_msg(LOG_INFO, "shim pid %d: pool reply failed (%s); dropping it", (int)c->pid, strerror(errno));
        /* Nothing reached it: the slots come back now. */
        ns_pool_take_back(pid, 0);
        shim_drop(c);
        return;
    }
    /* The stock is made again after the stall (the next reply, or the tick) if one began. */
    if (!guard_blocks_requests())
        ns_pool_restock();
}

static void shim_handle(struct shim_conn *c, struct eph_req *q, int in_fd)
{
    struct eph_resp r;
    memset(&r, 0, sizeof r);
    r.version = EPH_PROTO_VERSION;
    r.op = q->op;
    int fd = -1;
    q->path[EPH_PATH_MAX - 1] = 0;
    q->path2[EPH_PATH_MAX - 1] = 0;
    /* The socket is open to every user of the instance and the daemon may
     * be root: only a root peer may act as someone else (its fsuid). */
    if (c->uid != 0) {
        q->uid = c->uid;
        q->gid = c->gid;
    }
    if (q->op == EPH_OP_POOL && q->version == EPH_PROTO_VERSION) {
        shim_pool(c, q);
        ns_reclaim(); /* after the answer: off the caller's path */
        return;
    }
    ns_reclaim(); /* files shims unlinked: freed before anything is decided on the budget */
    int st = q->version != EPH_PROTO_VERSION ? -EPROTONOSUPPORT
                                             : shimops_run(q, &r, &fd, c->pid, c->ev.fd, &in_fd);
    r.status = st;
    if (in_fd >= 0)
        close(in_fd);
    if (q->op == EPH_OP_LEDGER && (q->flags & EPH_LEDGER_NOREPLY))
        return; /* the caller did not wait */
    if (st < 0)
        fd = -1;
    log_msg(LOG_DEBUG, "pid %d op %u %s%s%s -> %d where %u inode %u", (int)q->pid, q->op, q->path,
            q->op == EPH_OP_RENAME ? " -> " : "", q->op == EPH_OP_RENAME ? q->path2 : "", st,
            r.where, r.inode);
    if (shim_reply(c, &r, fd) < 0) {
        log_msg(LOG_INFO, "shim pid %d: reply failed (%s); dropping it", (int)c->pid,
                strerror(errno));
        /* A CREATE's reference for a caller already gone: its ledger was given back
         * (the pidfd came first) before this request, so nothing lists it. */
        if (q->op == EPH_OP_CREATE && st == 0 && r.where == EPH_WHERE_MEM && !ledger_registered(c->pid))
            ledger_drop_ref(r.inode, r.gen);
        shim_drop(c);
    }
}

static void shim_on_conn(struct loop_ev *ev, uint32_t events)
{
    struct shim_conn *c = (struct shim_conn *)ev;
    if (guard_blocks_requests()) {
        loop_del(ev); /* not a mask: a peer's hang-up would still be reported, at every turn */
        c->paused = 1;
        shim_npaused++;
        return;
    }
    static struct eph_req q; /* 2 KiB: static, the loop is single-threaded */
    union eph_fd_cmsg cm;
    struct iovec iov = {&q, sizeof q};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    eph_msg_control(&mh, &cm);
    ssize_t n = recvmsg(ev->fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    (void)events;
    int in_fd = n > 0 ? eph_msg_fd(&mh) : -1;
    if (n > 0 && (size_t)n == sizeof q && in_fd >= 0 && q.op != EPH_OP_LEDGER) {
        close(in_fd);
        in_fd = -1;
    }
    if (n <= 0) {
        shim_drop(c);
        return;
    }
    if ((size_t)n != sizeof q) {
        if (in_fd >= 0)
            close(in_fd);
        log_msg(LOG_WARN, "shim pid %d: request of %zd bytes, expected %zu; dropping it",
                (int)c->pid, n, sizeof q);
        shim_drop(c);
        return;
    }
    shim_handle(c, &q, in_fd);
}

static void shim_on_accept(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    if (guard_blocks_requests()) {
        loop_del(ev);
        shim_listener_paused = 1;
        shim_npaused++;
        return;
    }
    int fd = accept4(ev->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    struct shim_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0) {
        c->pid = cr.pid;
        c->uid = cr.uid;
        c->gid = cr.gid;
    } else {
        c->uid = c->gid = (uid_t)-1; /* unknown: nobody */
    }
    c->ev.fd = fd;
    c->ev.fn = shim_on_conn;
    if (loop_add(&c->ev, EPOLLIN) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->next = shim_conns;
    shim_conns = c;
    shim_count++;
    shim_accepted++;
}

int shim_paused(void)
{
    return shim_npaused;
}

void shim_resume(void)
{
    for (struct shim_conn *c = shim_conns; c; c = c->next)
        if (c->paused && loop_add(&c->ev, EPOLLIN) == 0) {
            c->paused = 0;
            shim_npaused--;
        }
    if (shim_listener_paused && loop_add(&shim_listener, EPOLLIN) == 0) {
        shim_listener_paused = 0;
        shim_npaused--;
    }
}

int shim_listen(const char *path, char *err, size_t errlen)
{
    /* Any user of the instance may run shimmed programs. */
    shim_listener.fn = shim_on_accept;
    if (loop_listen_unix(&shim_listener, path, SOCK_SEQPACKET, 0777, 128, err, errlen) < 0)
        return -1;
    snprintf(shim_path, sizeof shim_path, "%s", path);
    return 0;
}

void shim_close(void)
{
    while (shim_conns)
        shim_drop(shim_conns);
    if (shim_listener.fd >= 0) {
        if (!shim_listener_paused)
            loop_del(&shim_listener);
        close(shim_listener.fd);
        unlink(shim_path);
    }
    shim_listener.fd = -1;
}
