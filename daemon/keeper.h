/*
 * keeper.h - the link to the keeper (include/ephemera/keeper.h): every fd that must outlive the
 * daemon is copied to the process that started it, so that a daemon killed by a signal can be
 * replaced by a new one that takes the region over (takeover.h).  Without --keeper-fd every
 * call is a no-op.
 *
 * Callers hold an fd with keeper_hold() before the region can name it (so a copy exists before
 * anything depends on it) and report each close with keeper_dropped() before they close it.
 * Drops are batched and sent before the next hold and after each event the loop handles (a
 * request, a tick): the socket's order is what keeps a reused number apart from the file it
 * replaced, and the keeper's copy of a freed memfd must not keep its pages for long.
 */
#ifndef EPHD_KEEPER_H
#define EPHD_KEEPER_H

#include <stdint.h>

#include "ephemera/keeper.h"

/* Use fd (a SOCK_SEQPACKET end) as the link.  0, or -1 when fd is not a socket. */
int keeper_init(int fd);
/* 1 when a keeper holds our fds. */
int keeper_active(void);
/* Copy n fds to the keeper, each with its entry's kind/arg/gen (e[i].fd is fds[i]). */
void keeper_hold(const struct eph_keeper_entry *e, int n);
void keeper_hold_one(int fd, uint32_t kind, uint32_t arg, uint32_t gen);
/* The same for a disk file, as a read-only description of it under fd's number: a copy open for
 * writing would make exec(2) of the file fail with ETXTBSY until the keeper closed it (a file
 * materialised to be run), and a new daemon reopens it through /proc for writing when it must. */
void keeper_hold_readonly(int fd, uint32_t kind, uint32_t arg, uint32_t gen);
/* fd is about to be closed (the caller closes it). */
void keeper_dropped(int fd);
/* Send the drops gathered so far. */
void keeper_flush(void);
/* Stop telling the keeper anything (the orderly exit: it needs nothing more). */
void keeper_close(void);

#endif
