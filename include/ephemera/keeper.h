/*
 * ephemera/keeper.h - the daemon's link to its keeper (docs/PROTOCOL.md, "The keeper link").
 *
 * The keeper is the process that started ephemerad (the native launcher, build/ephemera-run).
 * It holds a copy of every fd that must outlive the daemon: the region, each memfd, the disk
 * file of each evicted (or being evicted) file, each process's ledger table.  The daemon tells
 * it over one SOCK_SEQPACKET socketpair (`--keeper-fd N`), one way, never waiting for an answer:
 *   HOLD: n entries and the same n fds in SCM_RIGHTS; the keeper keeps a copy of each, under the
 *         number the fd has in the daemon (a later HOLD of the same number replaces it);
 *   DROP: n entries, no fds: the daemon closed those numbers; the keeper closes its copies.
 * Messages arrive in order, so a number closed and reused by the daemon is dropped before it is
 * held again.  When the daemon dies, the keeper starts a new one with every copy placed at the
 * number it had in the dead daemon (the region names memfds by those numbers), and passes the
 * list of what it placed as a memfd of entries (`--takeover-manifest M`).
 */
#ifndef EPHEMERA_KEEPER_H
#define EPHEMERA_KEEPER_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define EPH_KEEPER_MAGIC 0x4b504b45u /* "EKPK" */

enum eph_keeper_op {
    EPH_KEEPER_HOLD = 1,
    EPH_KEEPER_DROP = 2,
};

enum eph_keep_kind {
    EPH_KEEP_REGION = 1, /* the shared region (one) */
    EPH_KEEP_MEM = 2,    /* a memfd: of an inode slot, lent in a pool, or in the daemon's stock */
    EPH_KEEP_DISK = 3,   /* the disk file of inode arg (generation gen): evicted, or being evicted */
    EPH_KEEP_LEDGER = 4, /* the ledger table of process arg */
};

struct eph_keeper_entry {
    int32_t fd;   /* the fd's number in the daemon */
    uint32_t kind; /* enum eph_keep_kind */
    uint32_t arg;  /* DISK: inode index; LEDGER: pid */
    uint32_t gen;  /* DISK: the inode's gen when the fd was held */
};

/* One message: the header, then n entries. */
struct eph_keeper_msg {
    uint32_t magic;
    uint32_t op; /* enum eph_keeper_op */
    uint32_t n;
    uint32_t pad;
};

/* A file in the run directory that exists while the keeper starts a new daemon: a process that is
 * not attached yet (its HELLO is refused) waits for the new daemon only while it exists. */
#define EPH_KEEPER_RESTARTING "restarting"

/* At most this many fds in one HOLD (the kernel's SCM_MAX_FD is 253) and entries in one DROP. */
#define EPH_KEEPER_BATCH 240

/* Send one message: n entries, with fds[0..n) in SCM_RIGHTS when fds is not NULL (a HOLD).
 * sendmsg's result. */
static inline ssize_t eph_keeper_send(int sock, uint32_t op, const struct eph_keeper_entry *e, int n, const int *fds,
                                      int flags)
{
    struct eph_keeper_msg h = {.magic = EPH_KEEPER_MAGIC, .op = op, .n = (uint32_t)n};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)e, sizeof *e * (size_t)n}};
    union {
        char buf[CMSG_SPACE(sizeof(int) * EPH_KEEPER_BATCH)];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    if (fds != NULL && n > 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
    }
    return sendmsg(sock, &m, flags);
}

#endif
