/*
 * shim/rpc.h - the daemon client (rpc.c): requests over the control socket.
 */
#ifndef SHIM_RPC_H
#define SHIM_RPC_H

#include <stdint.h>

#include "ephemera/proto.h"

/* Send req (version/pid filled in), wait for resp; *fd_out gets a received fd or -1. */
int rpc_call(struct eph_req *req, struct eph_resp *resp, int *fd_out);
/* A request about one inode (RELEASE, EVICT): the daemon's status; 0 if it could not be asked (logged). */
int rpc_inode_call(uint32_t op, uint32_t inode, uint32_t gen);
/*
 * The disk fd of an inode that left memory (EPH_OP_EVICT on a file already on
 * disk), received over the socket: for a process that may not open the
 * daemon's fds through /proc/<daemon>/fd (another uid: ptrace access is
 * refused).  A fresh O_RDWR open file description, or -errno.
 */
int rpc_disk_fd(uint32_t inode, uint32_t gen);
int rpc_call_fd(struct eph_req *req, struct eph_resp *resp, int *fd_out, int send_fd); /* also sends send_fd */
void rpc_send_fd(struct eph_req *req, int send_fd); /* a request the daemon does not answer */
void rpc_after_fork(void);
/* EPH_OP_POOL: entries lent (fds[i] is resp->e[i]'s memfd), or -errno. */
int rpc_call_pool(struct eph_req *req, struct eph_pool_resp *resp, int *fds);
void rpc_req_init(struct eph_req *req, uint32_t op);
/* Something of daemon pid's could not be reached (a /proc/<pid>/fd path): 1 once a new daemon
 * took its region over (ask again), 0 if pid still runs or no new one comes (bounded wait). */
int rpc_daemon_replaced(int pid);
/* open(2) of the daemon's fd n through /proc/<daemon>/fd/n; when that names nothing (ENOENT: the
 * daemon died), made once more under the daemon that took the region over.  An fd, or -1/errno. */
int rpc_open_daemon_fd(int n, int flags);

#endif
