/*
 * loop.c - the daemon's only event loop.
 */
#include "loop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
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
