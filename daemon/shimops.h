/*
 * shimops.h - the handlers of the shim protocol's requests (proto.h).
 */
#ifndef EPHD_SHIMOPS_H
#define EPHD_SHIMOPS_H

#include <sys/types.h>

#include "ephemera/proto.h"

/* Carry out request q (its version already checked, q->uid/gid already the
 * peer's where it may not claim another identity) for the process peer, which
 * sent it on the connection peer_sock;
 * fill r, and *fd with an fd to send back (not owned by the caller), or
 * leave it -1.  *in_fd is an fd that came with the request; a handler that
 * keeps it sets it to -1.  0 or -errno. */
int shimops_run(struct eph_req *q, struct eph_resp *r, int *fd, pid_t peer, int peer_sock, int *in_fd);

#endif
