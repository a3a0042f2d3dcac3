/*
 * loop.h - a minimal epoll loop (after Redis ae.c): each watched fd carries
 * a handler.  One event per epoll_wait so a handler may close any other
 * watched fd without leaving a stale pointer in a batch.  The loop also owns
 * the periodic ticks (timerfds) and the decision to stop: modules request,
 * main carries out.
 */
#ifndef EPHD_LOOP_H
#define EPHD_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop_ev {
    int fd;
    void (*fn)(struct loop_ev *ev, uint32_t events);
};

int loop_init(char *err, size_t errlen);
int loop_add(struct loop_ev *ev, uint32_t events);
int loop_mod(struct loop_ev *ev, uint32_t events);
void loop_del(struct loop_ev *ev);
/*
 * Create a listening unix socket of `type` (SOCK_STREAM or SOCK_SEQPACKET) at
 * `path` with permissions `mode`, and watch it with ev (ev->fn set by the
 * caller).  On failure returns -1 with a message naming the failing call.
 */
int loop_listen_unix(struct loop_ev *ev, const char *path, int type, unsigned mode, int backlog,
                     char *err, size_t errlen);
/* A periodic tick: fn(expirations) every period_ns, from the loop. */
struct loop_timer {
    struct loop_ev ev;
    void (*fn)(uint64_t expirations);
};
/* Start t; 0, or -1 with err naming the failing call. */
int loop_every(struct loop_timer *t, uint64_t period_ns, void (*fn)(uint64_t expirations),
               char *err, size_t errlen);
void loop_cancel(struct loop_timer *t);

/* fn runs after every handler: work gathered while handling an event, sent once (the keeper's
 * drops, keeper.h). */
void loop_after_each(void (*fn)(void));
/* Run until loop_stop() (or an epoll failure). */
void loop_run(void);
/* Leave loop_run once the current handler returns. */
void loop_stop(void);

#endif
