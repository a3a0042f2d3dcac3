/*
 * keeper.c - the daemon's side of the keeper link (keeper.h, include/ephemera/keeper.h).
 *
 * One way and bounded: the socket is blocking with a 5 s send timeout, so a keeper that stopped
 * reading costs a logged error, never a hung daemon; after such an error the link is given up
 * (a keeper that missed a message no longer has a faithful copy) and said so in the log.
 */
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"

static int keeper_fd = -1;
static struct eph_keeper_entry keeper_drops[EPH_KEEPER_BATCH];
static int keeper_ndrops;

int keeper_init(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    keeper_fd = fd;
    return 0;
}

int keeper_active(void)
{
    return keeper_fd >= 0;
}

static void keeper_lost(const char *what)
{
    log_msg(LOG_ERR, "keeper link: %s: %s; giving it up (files will not survive a crash of the daemon)", what,
            strerror(errno));
    close(keeper_fd);
    keeper_fd = -1;
}

static void keeper_send(uint32_t op, const struct eph_keeper_entry *e, int n, const int *fds)
{
    ssize_t w;
    do
        w = eph_keeper_send(keeper_fd, op, e, n, fds, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(sizeof(struct eph_keeper_msg) + sizeof *e * (size_t)n))
        keeper_lost(op == EPH_KEEPER_HOLD ? "sending fds" : "sending closes");
}

void keeper_flush(void)
{
    if (keeper_fd >= 0 && keeper_ndrops > 0)
        keeper_send(EPH_KEEPER_DROP, keeper_drops, keeper_ndrops, NULL);
    keeper_ndrops = 0;
}

void keeper_hold(const struct eph_keeper_entry *e, int n)
{
    if (keeper_fd < 0 || n <= 0)
        return;
    keeper_flush();
    for (int off = 0; off < n && keeper_fd >= 0; off += EPH_KEEPER_BATCH) {
        int k = n - off < EPH_KEEPER_BATCH ? n - off : EPH_KEEPER_BATCH;
        int fds[EPH_KEEPER_BATCH];
        for (int i = 0; i < k; i++)
            fds[i] = e[off + i].fd;
        keeper_send(EPH_KEEPER_HOLD, e + off, k, fds);
    }
}

void keeper_hold_one(int fd, uint32_t kind, uint32_t arg, uint32_t gen)
{
    struct eph_keeper_entry e = {.fd = fd, .kind = kind, .arg = arg, .gen = gen};
    keeper_hold(&e, 1);
}

void keeper_hold_readonly(int fd, uint32_t kind, uint32_t arg, uint32_t gen)
{
    if (keeper_fd < 0)
        return;
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int ro = open(p, O_RDONLY | O_CLOEXEC);
    struct eph_keeper_entry e = {.fd = fd, .kind = kind, .arg = arg, .gen = gen};
    keeper_flush();
    if (ro < 0) {
        keeper_send(EPH_KEEPER_HOLD, &e, 1, &fd); /* no /proc: the fd itself */
        return;
    }
    keeper_send(EPH_KEEPER_HOLD, &e, 1, &ro);
    close(ro);
}

void keeper_dropped(int fd)
{
    if (keeper_fd < 0 || fd < 0)
        return;
    if (keeper_ndrops == EPH_KEEPER_BATCH)
        keeper_flush();
    keeper_drops[keeper_ndrops++] = (struct eph_keeper_entry){.fd = fd};
}

void keeper_close(void)
{
    keeper_flush();
    if (keeper_fd >= 0)
        close(keeper_fd);
    keeper_fd = -1;
}
