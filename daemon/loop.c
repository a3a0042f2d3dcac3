/*
 * loop.c - the daemon's only event loop.
 */
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

static int loop_fd = -1;

int loop_init(char *err, size_t errlen)
{
    loop_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop_fd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int loop_add(struct loop_ev *ev, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    return epoll_ctl(loop_fd, EPOLL_CTL_ADD, ev->fd, &e);
}

int loop_mod(struct loop_ev *ev, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = ev};
    return epoll_ctl(loop_fd, EPOLL_CTL_MOD, ev->fd, &e);
}

void loop_del(struct loop_ev *ev)
{
    epoll_ctl(loop_fd, EPOLL_CTL_DEL, ev->fd, NULL);
}

void loop_run(void)
{
    while (!D.stop) {
        struct epoll_event e;
        int n = epoll_wait(loop_fd, &e, 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERR, "epoll_wait: %s", strerror(errno));
            D.stop = 1;
            break;
        }
        if (n == 1) {
            struct loop_ev *ev = e.data.ptr;
            ev->fn(ev, e.events);
        }
    }
}

int loop_listen_unix(struct loop_ev *ev, const char *path, int type, unsigned mode, int backlog,
                     char *err, size_t errlen)
{
    const char *tname = type == SOCK_SEQPACKET ? "SOCK_SEQPACKET" : "SOCK_STREAM";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        snprintf(err, errlen, "socket path '%s' is longer than %zu bytes; use a shorter --rundir",
                 path, sizeof a.sun_path - 1);
        return -1;
    }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket(AF_UNIX, %s): %s", tname, strerror(errno));
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        snprintf(err, errlen, "bind(%s): %s", path, strerror(errno));
        goto err;
    }
    chmod(path, mode);
    if (listen(fd, backlog) < 0) {
        snprintf(err, errlen, "listen(%s): %s", path, strerror(errno));
        goto err;
    }
    ev->fd = fd;
    if (loop_add(ev, EPOLLIN) < 0) {
        snprintf(err, errlen, "epoll_ctl(%s): %s", path, strerror(errno));
        ev->fd = -1;
        goto err;
    }
    return 0;
err:
    close(fd);
    return -1;
}
