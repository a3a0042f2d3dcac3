/*
 * include/ephemera/gate.h - the start gate between the native launcher and the shim
 * (docs/ARCHITECTURE.md, "Start-up on a shadow-paging VM: the start gate").
 *
 * The launcher execs a command that will load the shim (launcher/gate.c decides) at once, beside
 * the daemon's start, instead of after the daemon's `ready`.  The command inherits the read end
 * of the daemon's ready pipe (R) and the write end of the launcher's exec-report pipe (E), named
 * by EPHEMERA_START_GATE="R:E".  The shim's constructor (shim/init.c, sh_start_gate) removes the
 * variable, reads R until the daemon's `ready\n`, closes both and returns to the program: the
 * launcher sees E close, as it saw it close at the exec before.  Without `ready` (the daemon died
 * or never exec'd) the program never runs: the shim writes EPH_GATE_NOT_READY on E and exits 127,
 * as the launcher's own child did.
 */
#ifndef EPHEMERA_GATE_H
#define EPHEMERA_GATE_H

#define EPH_GATE_ENV "EPHEMERA_START_GATE"
/* The word on E when the daemon was never ready (beside an exec's errno, which is smaller). */
#define EPH_GATE_NOT_READY 0x20000

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

/* The daemon's ready pipe read in pieces until its `ready\n` line, which may straddle two reads.
 * The launcher's wait (launcher/main.c, wait_ready, child_wait_ready) and the shim's
 * (shim/init.c, sh_start_gate) scan it here.  Pure: no call but strstr and memmove, so the shim's
 * constructor may use it before anything of its own is set up. */
struct eph_ready_scan {
    char seen[256];
    size_t len;
};

/* Where the next read goes (*room bytes at most). */
static inline char *eph_ready_room(struct eph_ready_scan *s, size_t *room)
{
    *room = sizeof s->seen - 1 - s->len;
    return s->seen + s->len;
}

/* got (> 0) bytes were read into the room: 1 once `ready\n` was seen, else 0 (a full buffer
 * keeps only its tail, where `ready\n` may have begun). */
static inline int eph_ready_took(struct eph_ready_scan *s, size_t got)
{
    s->len += got;
    s->seen[s->len] = '\0';
    if (strstr(s->seen, "ready\n") != NULL)
        return 1;
    if (s->len == sizeof s->seen - 1) {
        memmove(s->seen, s->seen + s->len - 8, 8);
        s->len = 8;
    }
    return 0;
}

/* Reads fd through rd (read(2), or the shim's own call of it) until `ready\n`: 1; its end or an
 * error other than EINTR first: 0.  It blocks: the launcher's bound (it kills the waiter) is the
 * wait's bound. */
static inline int eph_ready_wait(int fd, ssize_t (*rd)(int fd, void *buf, size_t n))
{
    struct eph_ready_scan s;
    s.len = 0;
    for (;;) {
        size_t room;
        char *at = eph_ready_room(&s, &room);
        ssize_t got = rd(fd, at, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        if (eph_ready_took(&s, (size_t)got))
            return 1;
    }
}

#endif
