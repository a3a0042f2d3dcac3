/*
 * ephemera/proto.h - the binary request/response protocol between the shim
 * (libephemera.so, in every function process) and ephemerad.
 *
 * Transport: a SOCK_SEQPACKET unix socket at $EPHEMERA_SOCK (each message is
 * one struct, boundaries kept by the kernel).  One connection per process,
 * opened lazily on the first managed path and re-opened in a fork child.
 * File descriptors travel with SCM_RIGHTS on the response.
 *
 * Only namespace changes and budget decisions go through here; reads, writes,
 * seeks and stats on in-memory files never do (see shm.h).
 *
 * The control protocol for the Tenant Manager (JSON lines, versioned) is a
 * different socket and is documented in docs/PROTOCOL.md.
 */
#ifndef EPHEMERA_PROTO_H
#define EPHEMERA_PROTO_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "ephemera/shm.h"

#define EPH_PROTO_VERSION 1u

enum eph_op {
    /* -> resp.fd = the shared region (memfd), resp.arg = its size, resp.arg2 = daemon pid,
     * resp.inode = the daemon's own fd number of the region: a process exec'd by an attached one
     * opens /proc/<pid>/<fd> itself (EPHEMERA_REGION, shim/init.c) instead of asking again. */
    EPH_OP_HELLO = 1,
    /*
     * Open-or-create path in memory.  req.flags = open(2) flags, req.mode =
     * mode already masked by the caller's umask, req.uid/gid = caller's fsuid/fsgid.
     * Results:
     *   resp.status = 0, resp.where = EPH_WHERE_MEM: resp.inode/gen name the
     *     inode (already counted in open_count: the caller owns one reference
     *     and must attach a desc or drop it), resp.fd = an O_RDWR fd of the memfd.
     *   resp.status = 0, resp.where = EPH_WHERE_DISK: not placed in memory
     *     (path exists on disk, no room, name too long, table full): the caller
     *     opens the path with the real open(2) itself.
     *   resp.status = -errno: fail the open with that errno (ENOENT for a
     *     missing parent, ENOTDIR, EEXIST with O_EXCL, EISDIR, EACCES...).
     * The daemon applies O_TRUNC to an existing in-memory file itself (size
     * 0 under the inode lock; capacity kept).  Every fd it sends is a fresh
     * open file description (reopened through /proc/self/fd), so its kernel
     * offset belongs to the caller alone.  With O_TMPFILE, path names the
     * directory and the inode has no name (nlink 0).
     */
    EPH_OP_CREATE = 2,
    /* Unlink path.  -ENOENT if not in memory (the caller then tries the disk). */
    EPH_OP_UNLINK = 3,
    /*
     * renameat2 semantics for path -> path2 with req.flags = RENAME_NOREPLACE |
     * RENAME_EXCHANGE.  The daemon handles every mix of in-memory and on-disk
     * source/target, including directories that contain in-memory files.
     * status 0 or -errno.  resp.where = EPH_WHERE_DISK means neither side is in
     * memory and the caller should call the real renameat2 itself.
     */
    EPH_OP_RENAME = 4,
    /* rmdir path: -ENOTEMPTY if an in-memory file lives below it, else the daemon rmdirs on disk. */
    EPH_OP_RMDIR = 5,
    /*
     * The caller wants inode req.inode (gen req.gen) to grow its capacity to
     * req.arg bytes and the budget has no room.  The daemon evicts other files
     * (closed first, then LRU) and then either reserves the room (status 0,
     * where=MEM; the daemon has already added the bytes to bytes_in_memory and
     * the caller must ftruncate the memfd to req.arg and store capacity) or moves
     * this file to disk (status 0, where=DISK; the caller swaps its fd).
     * In the MEM case the daemon has in fact already ftruncated the memfd and
     * stored capacity (resp.arg = the new capacity), so the caller's repeat is
     * harmless.  A DISK answer carries the disk fd (has_fd).  Never call this
     * (or any op) holding the inode lock or an inflight count: the daemon may
     * evict this very inode and waits for both.
     */
    EPH_OP_RESERVE = 6,
    /* Move every in-memory file to disk (before exec of a program that cannot load the shim). */
    EPH_OP_MATERIALISE_ALL = 7,
    /* Move one file (req.inode/gen) to disk: before link(2), or when the app wants kernel semantics we lack.
     * The response carries the disk fd (also when the file was already on disk): a shim of
     * another uid than the daemon's, which may not open /proc/<daemon>/fd, gets the disk fd of a
     * file it has open that way once the file has moved. */
    EPH_OP_EVICT = 8,
    /* Hint: inode req.inode may be freed (nlink==0 and open_count reached 0).  No response needed but one is sent. */
    EPH_OP_RELEASE = 9,
    /*
     * Register the fd table of process req.pid (the caller itself, or a child
     * it just forked): a memfd sent with SCM_RIGHTS holding struct ft_entry
     * {uint32 desc1, uint32 flags}[] indexed by fd, kept up to date by that
     * process.  Every entry with desc1 != 0 holds one reference on desc
     * desc1 - 1.  When the process dies (even by SIGKILL) the daemon drops the
     * references its last registered table still holds.  A registration from
     * the process itself replaces an older one (exec); one made on behalf of
     * another pid is ignored if that pid already registered.  The table's
     * last EPH_LEDGER_INFLIGHT_BYTES are the in-flight pages: two uint64_t
     * per thread slot, side by side (EPH_LEDGER_REF_WORD, _READ_WORD): a
     * reference the process holds and has not yet listed under an fd
     * (EPH_INFLIGHT_*), so a SIGKILL between taking a reference and listing
     * it loses nothing; and the inode it is reading (EPH_INFLIGHT_READ), so a
     * SIGKILL inside a read leaves no count of reads in flight behind.
     */
    EPH_OP_LEDGER = 10,
    /*
     * Lend the caller up to req.arg (at most EPH_POOL_MAX, and at most EPH_POOL_FIRST
     * with fds; beyond EPH_POOL_FIRST, only what the daemon has in stock) free inode slots, each
     * with a fresh memfd, so that it can create files in memory without a round
     * trip each (shim/nsfast.c).  The answer is one struct eph_pool_resp: r.arg =
     * the number n lent, e[0..n) the slots with the daemon's own fd number of
     * each memfd (which the daemon keeps: inode.mem_fd), and the n fds in one
     * SCM_RIGHTS control message, in the same order.  They share their open file
     * description with the daemon's copies (the daemon only uses positioned
     * calls on them).  A lent slot stays FREE with lent_to = the caller's pid
     * until the caller names it.  req.flags EPH_POOL_FRESH: the caller holds no
     * entry from before (a new image after exec, a fork child): slots lent
     * earlier to its pid are taken back first.  EPH_POOL_NOFDS: no fds in the
     * answer; the caller opens a slot's memfd itself, through
     * /proc/<daemon>/fd/<daemon_fd>, when it names the slot (one openat, the
     * call the kernel's create makes, in place of a received fd that had to be
     * moved above the program's numbers and later closed).  The daemon also
     * takes back the entries of processes that died.
     */
    EPH_OP_POOL = 11,
    /*
     * Give every in-memory directory (EPH_MDIR) that is path or one of its
     * ancestors a disk twin (mkdir with its mode, owner and times), top down,
     * and drop it from the region: the caller is about to do something on or
     * below it that only the kernel can (shim/nsdir.c).  req.flags below.
     * status 0 or -errno of the first mkdir that failed.
     */
    EPH_OP_DIRTWIN = 12,
};

#define EPH_DIRTWIN_ALL 1u /* every in-memory directory, not only those on req.path */
#define EPH_DIRTWIN_OFF 2u /* and mkdir stays on disk from now on (mdirs_off) */

/* A pool answer lends at most EPH_POOL_MAX slots; a first request, and any request with
 * fds (without EPH_POOL_NOFDS), at most EPH_POOL_FIRST.  A shim that used a whole batch up
 * asks for twice as many next time (shim/nsfast.c), and the daemon lends beyond
 * EPH_POOL_FIRST only from its stock of memfds made ahead and while free slots are plenty. */
#define EPH_POOL_MAX 128
#define EPH_POOL_FIRST 32
#define EPH_POOL_FRESH 1u
#define EPH_POOL_NOFDS 2u

struct eph_pool_entry {
    uint32_t inode;
    int32_t daemon_fd;
};

/* The ledger's in-flight page (EPH_OP_LEDGER).  A slot is 0, or
 * EPH_INFLIGHT_INODE | inode << 32 | gen: one open_count reference on the
 * inode, held for sure (written after the reference is taken: a death in
 * between leaks it rather than dropping one that is not ours), or
 * EPH_INFLIGHT_DESC | desc << 32 | fd: the reference moved into a desc that
 * is being listed under fd (already given back if the entry at fd lists it),
 * or EPH_INFLIGHT_CHARGE | pages: budget charged and not yet in a capacity.
 * EPH_OP_CREATE's req.inflight1 = the caller thread's slot + 1 (0: none):
 * a reference the daemon takes for the caller is written there before the
 * answer is sent.
 * Each slot has a second word, right after it (EPH_LEDGER_READ_WORD, so that
 * a thread's two words share a page: one page of the table fewer in every
 * process that reads an in-memory file): 0, or EPH_INFLIGHT_READ | inode << 32 |
 * gen while that thread is inside a fast-path read of the inode with the
 * inode's inflight count raised (shim/fp_io.c).  Written after the count is
 * raised and cleared before it drops, so a death in between leaks a count
 * rather than dropping one that is not ours; the daemon drops the count of
 * each such word of a dead process (daemon/ledger.c). */
#define EPH_LEDGER_INFLIGHT_SLOTS 512u
#define EPH_LEDGER_INFLIGHT_BYTES (2u * EPH_LEDGER_INFLIGHT_SLOTS * 8u)
#define EPH_LEDGER_INFLIGHT_WORDS (2u * EPH_LEDGER_INFLIGHT_SLOTS)
/* The words of thread slot s, counted from the start of the in-flight pages. */
#define EPH_LEDGER_REF_WORD(s) (2u * (s))
#define EPH_LEDGER_READ_WORD(s) (2u * (s) + 1u)
#define EPH_INFLIGHT_READ (1ull << 60)
#define EPH_INFLIGHT_INODE (1ull << 63)
#define EPH_INFLIGHT_DESC (1ull << 62)
/* | pages: a budget charge (bytes_in_memory) no capacity counts yet (a grow's ftruncate) */
#define EPH_INFLIGHT_CHARGE (1ull << 61)
#define EPH_PAGE_INFLIGHT 4096u

/* EPH_OP_LEDGER req.flags */
#define EPH_LEDGER_CHILD 1u   /* req.arg is the pid of a child the caller just forked */
#define EPH_LEDGER_NOREPLY 2u /* send no response (the caller does not wait) */

enum eph_where {
    EPH_WHERE_NONE = 0,
    EPH_WHERE_MEM = 1,
    EPH_WHERE_DISK = 2,
};

struct eph_req {
    uint32_t version;  /* EPH_PROTO_VERSION */
    uint32_t op;       /* enum eph_op */
    int32_t flags;     /* open/rename flags */
    uint32_t mode;     /* create mode, umask applied */
    uint32_t uid, gid; /* caller's fsuid/fsgid (daemon may run as someone else) */
    uint32_t inode;    /* for RESERVE/EVICT/RELEASE */
    uint32_t gen;
    int32_t pid;       /* caller pid, for logs */
    uint32_t inflight1; /* CREATE: the caller's in-flight slot + 1 (EPH_LEDGER_INFLIGHT_BYTES) */
    uint64_t arg;      /* RESERVE: wanted capacity */
    char path[EPH_PATH_MAX];  /* absolute, normalised */
    char path2[EPH_PATH_MAX]; /* RENAME target */
};

struct eph_resp {
    uint32_t version;
    uint32_t op;       /* echo of the request op */
    int32_t status;    /* 0 or -errno */
    uint32_t where;    /* enum eph_where */
    uint32_t inode;
    uint32_t gen;
    uint64_t arg;      /* op-specific */
    uint64_t arg2;
    /* resp carries at most one fd via SCM_RIGHTS; has_fd says whether it does */
    uint32_t has_fd;
    uint32_t pad;
};

struct eph_pool_resp {
    struct eph_resp r;
    struct eph_pool_entry e[EPH_POOL_MAX];
};

/* Control buffer for a pool answer's fds. */
union eph_pool_cmsg {
    char buf[CMSG_SPACE(sizeof(int) * EPH_POOL_FIRST)];
    struct cmsghdr align;
};

/*
 * At most one fd rides with a message (except the pool's answer), either way (SCM_RIGHTS).  Both ends
 * build and read it with these, so the control-message layout lives here.
 */
union eph_fd_cmsg {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
};

/* Give m a control buffer that can receive one fd. */
static inline void eph_msg_control(struct msghdr *m, union eph_fd_cmsg *u)
{
    memset(u, 0, sizeof *u);
    m->msg_control = u->buf;
    m->msg_controllen = sizeof u->buf;
}

/* Attach fd to the message m is about to send. */
static inline void eph_msg_attach_fd(struct msghdr *m, union eph_fd_cmsg *u, int fd)
{
    eph_msg_control(m, u);
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
}

/* The fd a received message carried, or -1. */
static inline int eph_msg_fd(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    }
    return -1;
}

#endif
