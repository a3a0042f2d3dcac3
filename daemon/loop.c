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
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static int loop_fd = -1;
static int loop_stopping;

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

void loop_stop(void)
{
    loop_stopping = 1;
}

static void loop_on_timer(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    struct loop_timer *t = (struct loop_timer *)ev;
    uint64_t n;
    if (read(ev->fd, &n, sizeof n) != sizeof n)
        return;
    t->fn(n);
}

int loop_every(struct loop_timer *t, uint64_t period_ns, void (*fn)(uint64_t expirations),
               char *err, size_t errlen)
{
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) {
        snprintf(err, errlen, "timerfd_create: %s", strerror(errno));
        return -1;
    }
    struct timespec p = {(time_t)(period_ns / 1000000000ull), (long)(period_ns % 1000000000ull)};
    struct itimerspec its = {p, p};
    timerfd_settime(tfd, 0, &its, NULL);
    t->ev.fd = tfd;
    t->ev.fn = loop_on_timer;
    t->fn = fn;
    if (loop_add(&t->ev, EPOLLIN) < 0) {
        snprintf(err, errlen, "epoll_ctl(timerfd): %s", strerror(errno));
        close(tfd);
        t->ev.fd = -1;
        return -1;
    }
    return 0;
}

void loop_cancel(struct loop_timer *t)
{
    if (t->ev.fd < 0 || !t->fn)
        return;
    loop_del(&t->ev);
    close(t->ev.fd);
    t->ev.fd = -1;
}

static void (*loop_after)(void);

void loop_after_each(void (*fn)(void))
{
    loop_after = fn;
}

void loop_run(void)
{
    while (!loop_stopping) {
        struct epoll_event e;
        int n = epoll_wait(loop_fd, &e, 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERR, "epoll_wait: %s", strerror(errno));
            loop_stopping = 1;
            break;
        }
        if (n == 1) {
            struct loop_ev *ev = e.data.ptr;
            ev->fn(ev, e.events);
            if (loop_after)
                loop_after();
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
