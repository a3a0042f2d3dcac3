/*
 * shimsrv.h - the SOCK_SEQPACKET server for the shim protocol (proto.h):
 * connections and datagrams; shimops.c handles the requests.
 */
#ifndef EPHD_SHIMSRV_H
#define EPHD_SHIMSRV_H

#include <stddef.h>
#include <stdint.h>

int shim_listen(const char *path, char *err, size_t errlen);
void shim_close(void);
/* Open shim connections now, and connections accepted since start. */
int shim_nconns(void);
uint64_t shim_accepts(void);
/*
 * While the OOM guard's stall holds the daemon's own cgroup (guard_blocks_requests), the server
 * answers nothing: every answer charges the cgroup (the accepted socket, its inode and file, the
 * epoll entry; the reply's skb, which af_unix charges to its sender; the fds passed; a memfd made
 * for a create or the pool's restock; a lookup's dentry) and would be throttled for up to 2 s
 * (v2) or wait for memory (v1), the daemon that must end the stall with it.  A connection with a
 * request then, and the listener with a new one, are taken off the loop (epoll_ctl DEL, which
 * frees its entry); the request waits in its socket, and the shim in its bounded, logged wait
 * (shim/rpc.c), until shim_resume puts them back after the stall, which the guard's own bound
 * ends (the host's watchdog and the lease in follow mode, eviction in the daemon's own). */
int shim_paused(void);
void shim_resume(void);

#endif
