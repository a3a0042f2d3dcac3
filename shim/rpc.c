/*
 * shim/rpc.c - the client side of proto.h: one SOCK_SEQPACKET connection per
 * process, opened lazily, serialised by a mutex (namespace calls are the slow
 * path), re-opened after fork so parent and child never share a stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ephemera/proto.h"

#include "rpc.h"
#include "sys.h"
#include "creds.h"
#include "init.h"

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

/* 0, or 1 when sending failed (the daemon never saw the request). */
static int rpc_send(const struct eph_req *req, int send_fd)
{
    union eph_fd_cmsg out;
    struct iovec oiov = {(void *)req, sizeof *req};
    struct msghdr omh = {.msg_iov = &oiov, .msg_iovlen = 1};
    if (send_fd >= 0)
        eph_msg_attach_fd(&omh, &out, send_fd);
    ssize_t w;
    do
        w = sendmsg(rpc_fd, &omh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    return w != (ssize_t)sizeof *req;
}

/* Returns 0, -errno, or 1 when sending failed (the daemon never saw the request). */
static int rpc_exchange(const struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd)
{
    if (rpc_send(req, send_fd))
        return 1;
    union eph_fd_cmsg cm;
    struct iovec iov = {resp, sizeof *resp};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    eph_msg_control(&mh, &cm);
    ssize_t r;
    do
        r = recvmsg(rpc_fd, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
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

void rpc_send_fd(struct eph_req *req, int send_fd)
{
    sh_busy++;
    pthread_mutex_lock(&rpc_mu);
    rpc_own(req);
    if (rpc_fd < 0) {
        int rc = rpc_connect();
        if (rc >= 0) {
            rpc_fd = rc;
            rpc_pid = req->pid;
        }
    }
    if (rpc_fd >= 0 && rpc_send(req, send_fd)) {
        sys.close(rpc_fd);
        rpc_fd = -1;
    }
    pthread_mutex_unlock(&rpc_mu);
    sh_busy--;
}

int rpc_call_fd(struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd)
{
    int rc;
    *fd_out = -1;
    sh_busy++;
    pthread_mutex_lock(&rpc_mu);
    rpc_own(req);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (rpc_fd < 0) {
            rc = rpc_connect();
            if (rc < 0)
                break;
            rpc_fd = rc;
            rpc_pid = req->pid;
        }
        rc = rpc_exchange(req, resp, fd_out, send_fd);
        if (rc == 0)
            break;
        sys.close(rpc_fd);
        rpc_fd = -1;
        /* Retry only what the daemon never saw: a CREATE with O_EXCL must not run twice. */
        if (rc < 0)
            break;
        rc = -ECONNRESET;
    }
    pthread_mutex_unlock(&rpc_mu);
    sh_busy--;
    if (rc < 0)
        sh_log("rpc op %u failed: %s", req->op, strerror(-rc));
    return rc;
}

/*
 * EPH_OP_POOL: one request, one answer carrying up to EPH_POOL_MAX fds.
 * Returns the number of entries (fds[i] belongs to resp->e[i]), or -errno.
 */
int rpc_call_pool(struct eph_req *req, struct eph_pool_resp *resp, int *fds)
{
    int rc = -ECONNREFUSED, n = 0;
    sh_busy++;
    pthread_mutex_lock(&rpc_mu);
    rpc_own(req);
    if (rpc_fd < 0 && (rc = rpc_connect()) >= 0) {
        rpc_fd = rc;
        rpc_pid = req->pid;
    }
    if (rpc_fd >= 0) {
        rc = 0;
        if (rpc_send(req, -1)) {
            rc = -ECONNRESET;
        } else {
            union eph_pool_cmsg cm;
            memset(&cm, 0, sizeof cm);
            struct iovec iov = {resp, sizeof *resp};
            struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                                .msg_controllen = sizeof cm.buf};
            ssize_t r;
            do
                r = recvmsg(rpc_fd, &mh, MSG_CMSG_CLOEXEC);
            while (r < 0 && errno == EINTR);
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); r > 0 && c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                    n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                    if (n > EPH_POOL_MAX)
                        n = EPH_POOL_MAX;
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
