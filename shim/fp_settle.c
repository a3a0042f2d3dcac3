/*
 * shim/fp_settle.c - a file that left memory: waiting out the move, putting
 * the disk file under the application's fd, kernel I/O on it, and the
 * identity map that keeps reporting the in-memory st_dev/st_ino.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/single_threaded.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/shm.h"

#include "fp_settle.h"
#include "sys.h"
#include "init.h"
#include "rpc.h"
#include "fdtable.h"
#include "diskbytes.h"
#include "fp_desc.h"
#include "rpc.h"

/*
 * Identity across eviction.  A file that moves to disk gets the disk file's
 * inode number, but programs compare the st_ino of an open fd with a later
 * stat of its path (SQLite refuses to write a database that "moved").  So
 * each process remembers, for the files it had open when they moved, the
 * disk identity and keeps reporting the in-memory one, on its fds and on
 * stats of the path, while it has them open.
 */
#define IDMAP_MAX 64
static struct idmap {
    uint64_t ddev, dino;   /* the disk file */
    uint64_t mdev, mino;   /* what we reported while it was in memory */
    uint32_t inode;        /* slot, to forget the entry at the last local close */
    int used;
} idmap[IDMAP_MAX] SH_COLD;
static pthread_mutex_t idmap_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int idmap_n;

static void idmap_add(int fd, struct eph_inode *ino)
{
    struct stat st;
    if (sys.fstat(fd, &st) < 0)
        return;
    pthread_mutex_lock(&idmap_mu);
    int slot = -1;
    for (int i = 0; i < IDMAP_MAX; i++) {
        if (idmap[i].used && idmap[i].ddev == (uint64_t)st.st_dev && idmap[i].dino == (uint64_t)st.st_ino) {
            slot = -2;
            break;
        }
        if (!idmap[i].used && slot == -1)
            slot = i;
    }
    if (slot >= 0) {
        idmap[slot] = (struct idmap){(uint64_t)st.st_dev, (uint64_t)st.st_ino, ino->dev, ino->ino,
                                     (uint32_t)(ino - sh.inodes), 1};
        atomic_fetch_add(&idmap_n, 1);
    }
    pthread_mutex_unlock(&idmap_mu);
}

void fp_idmap_forget(uint32_t inode)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return;
    pthread_mutex_lock(&idmap_mu);
    for (int i = 0; i < IDMAP_MAX; i++)
        if (idmap[i].used && idmap[i].inode == inode) {
            idmap[i].used = 0;
            atomic_fetch_sub(&idmap_n, 1);
        }
    pthread_mutex_unlock(&idmap_mu);
}

/*
 * link() moved an in-memory file to disk to give it a second name: this
 * process saw the in-memory identity a moment ago (git's local clone lstat()s
 * the source, links, and checks the new name has the same st_ino), so both
 * names keep it here.  No fd pins these entries (inode UINT32_MAX never
 * matches fp_idmap_forget); when the table is full the oldest of them goes.
 */
void fp_idmap_remember(uint64_t ddev, uint64_t dino, uint64_t mdev, uint64_t mino)
{
    static int next;
    pthread_mutex_lock(&idmap_mu);
    int slot = -1;
    for (int i = 0; i < IDMAP_MAX && slot < 0; i++)
        if (!idmap[i].used || (idmap[i].ddev == ddev && idmap[i].dino == dino))
            slot = i;
    for (int k = 0; k < IDMAP_MAX && slot < 0; k++) {
        int i = (next + k) % IDMAP_MAX;
        if (idmap[i].inode == UINT32_MAX) {
            slot = i;
            next = i + 1;
        }
    }
    if (slot >= 0) {
        if (!idmap[slot].used)
            atomic_fetch_add(&idmap_n, 1);
        idmap[slot] = (struct idmap){ddev, dino, mdev, mino, UINT32_MAX, 1};
    }
    pthread_mutex_unlock(&idmap_mu);
}

void fp_idmap_translate(struct stat *st)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return;
    pthread_mutex_lock(&idmap_mu);
    for (int i = 0; i < IDMAP_MAX; i++)
        if (idmap[i].used && idmap[i].ddev == (uint64_t)st->st_dev && idmap[i].dino == (uint64_t)st->st_ino) {
            st->st_dev = (dev_t)idmap[i].mdev;
            st->st_ino = (ino_t)idmap[i].mino;
            break;
        }
    pthread_mutex_unlock(&idmap_mu);
}

uint64_t fp_idmap_ino(uint64_t ddev, uint64_t dino)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return dino;
    struct stat st;
    st.st_dev = (dev_t)ddev;
    st.st_ino = (ino_t)dino;
    fp_idmap_translate(&st);
    /* (a file that moved within its file system keeps its st_dev: only the number is shown) */
    return (uint64_t)st.st_ino;
}

void fp_idmap_translate_x(struct statx *stx)
{
    if (!atomic_load_explicit(&idmap_n, memory_order_relaxed))
        return;
    struct stat st;
    st.st_dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
    st.st_ino = (ino_t)stx->stx_ino;
    fp_idmap_translate(&st);
    stx->stx_dev_major = major(st.st_dev);
    stx->stx_dev_minor = minor(st.st_dev);
    stx->stx_ino = st.st_ino;
}

static inline int fd_moved(uint32_t fd)
{
    struct ft_entry e = ft_fds[fd];
    return e.desc1 && !(e.flags & FT_DISK) &&
           atomic_load_explicit(&sh.inodes[sh.descs[e.desc1 - 1].inode].state, memory_order_relaxed) != EPH_MEM;
}

/* moves_begun when every fd of ours was last seen in memory or settled; a new image looks once. */
static _Atomic uint64_t settled_at = UINT64_MAX;

/*
 * Before a stat of a disk path: swap any of our fds whose file has moved, so
 * its identity is known.  The look runs over every fd number up to the
 * table's high-water mark, which the shim's own fds (pool memfds from 640)
 * put above 600 in most processes: 640 loads on each stat that reaches the
 * kernel, 23M instructions of unzip's 132M.  It is skipped while no eviction
 * began since the last look that left nothing unsettled.  The daemon bumps
 * moves_begun after the file's MOVING and before its DISK: a stat whose path
 * can show the disk file (DISK) reads the bump, and an fd opened after a look
 * that read it cannot be on that file in memory (an open checks MEM after
 * taking its reference, intercept_open.c, and goes to the disk otherwise).
 * That holds within one thread; with several, an open that checked MEM just
 * before the eviction could list its fd after another thread's look passed
 * its number, so a process that ever started a thread looks every time, as
 * before.  (A signal handler's stat inside the main flow's open is the same
 * window: one eviction's identity then waits for the next eviction's look.)
 */
void fp_settle_moved(void)
{
    if (!ft_fds)
        return;
    uint64_t moves = atomic_load(&sh.hdr->moves_begun);
    if (__libc_single_threaded && moves == atomic_load_explicit(&settled_at, memory_order_relaxed))
        return;
    int left = 0;
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        if (fd_moved(fd)) {
            fp_settle((int)fd);
            left += fd_moved(fd); /* not settled (an error): look again at the next stat */
        }
    }
    if (!left)
        atomic_store_explicit(&settled_at, moves, memory_order_relaxed);
}

/*
 * A file for a call that has no fd on it (chmod, chown, utimensat and the
 * xattr calls by path, shim/intercept_names.c), reached through the daemon's
 * fd.  Its number alone does not name the file for long: when nobody has the
 * file open the daemon frees the slot right after a move (daemon/evict.c,
 * evict_commit, then ns_maybe_gc) or an unlink, closes the fd or gives the
 * memfd to its next file, and the number and the slot to other files.  So the
 * file is held, an fd of our own opened through the number, and kept only
 * if the slot still shows the same file in the same state afterwards.  That
 * suffices: the daemon moves gen before it closes or recycles a freed slot's
 * fds (ns_free defers them to the end of its namespace lock), and never
 * changes the fds of a live slot.  An open of a disk file refused to another
 * uid than the daemon's goes over the socket, where the daemon checks gen
 * itself (as swap_to_disk).
 */
int fp_hold(struct eph_inode *ino, uint32_t gen, uint32_t state)
{
    if (atomic_load(&ino->state) != state || atomic_load(&ino->gen) != gen)
        return -1;
    int n = state == EPH_DISK ? ino->disk_fd : ino->mem_fd;
    int fd = n >= 0 ? rpc_open_daemon_fd(n, O_PATH | O_CLOEXEC) : -1;
    if (fd < 0 && state == EPH_DISK && (errno == EACCES || errno == EPERM))
        fd = rpc_disk_fd((uint32_t)(ino - sh.inodes), gen);
    if (fd >= 0 && (atomic_load(&ino->state) != state || atomic_load(&ino->gen) != gen)) {
        sys.close(fd);
        fd = -1;
    }
    return fd < 0 ? -1 : fd;
}

/* The daemon moved the file to disk: put its disk fd under our fd number. */
static int swap_to_disk(int fd, struct eph_inode *ino)
{
    if (ft_fds[fd].flags & FT_DISK)
        return 1;
    int nfd = rpc_open_daemon_fd(ino->disk_fd, O_RDWR | O_CLOEXEC);
    if (nfd < 0 && (errno == EACCES || errno == EPERM)) {
        /* Another uid than the daemon's: the kernel refuses it the daemon's
         * fds (ptrace access), but it holds this file open, so the daemon
         * sends the disk fd over the socket. */
        nfd = rpc_disk_fd((uint32_t)(ino - sh.inodes), atomic_load(&ino->gen));
        if (nfd < 0)
            errno = -nfd;
    }
    if (nfd < 0) {
        sh_log("cannot open evicted file /proc/%d/fd/%d: %s", sh_daemon_pid(), ino->disk_fd, strerror(errno));
        return -EIO;
    }
    sh_log("fd %d: inode %u moved to disk; now on the daemon's fd %d", fd, (unsigned)(ino - sh.inodes), ino->disk_fd);
    ft_lock();
    int r = 1;
    if (!(ft_fds[fd].flags & FT_DISK) && ft_dup_over(nfd, fd) < 0)
        r = -errno;
    ft_unlock();
    sys.close(nfd);
    if (r == 1) {
        ft_mark_disk(fd);
        idmap_add(fd, ino);
    }
    return r;
}

/*
 * One slice (20 ms) of the wait for a move to disk: 0 to look again, -EIO
 * when the daemon that set MOVING is gone for good.  A move takes as long as
 * its copy (seconds for a large file on a slow disk), so the wait is bounded
 * by the mover's life, not by a time: once a second the kernel is asked
 * whether the daemon still exists.  A dead one's keeper starts a new daemon,
 * which puts a file it was moving back in memory (daemon/takeover.c,
 * tk_unmove) and wakes us; rpc_daemon_replaced waits up to 15 s for it.
 * With no keeper, or none in time, nobody will ever lower MOVING: the
 * caller gets EIO rather than a wait without end.
 */
static int fp_moving_slice(struct eph_inode *ino, uint32_t e, unsigned *slices)
{
    eph_wait_change(&ino->epoch, e, 20 * 1000 * 1000);
    if (++*slices % 50)
        return 0;
    int pid = sh_daemon_pid();
    if (!eph_pid_gone((uint32_t)pid) || rpc_daemon_replaced(pid) ||
        atomic_load(&ino->state) != EPH_MOVING || atomic_load(&ino->epoch) != e)
        return 0;
    sh_log("inode %u: ephemerad %d died while it moved the file to disk, and no new daemon took over; giving up "
           "with EIO",
           (unsigned)(ino - sh.inodes), pid);
    return -EIO;
}

/*
 * Called without locks when the inode is not in MEM: wait out a move, then
 * swap.  Returns 0 if the file is back in MEM (not expected, but harmless),
 * 1 if fd now refers to the disk file, or -errno.
 */
int fp_settle(int fd)
{
    struct eph_desc *d = fp_desc(fd);
    struct eph_inode *ino = fp_inode_of(d);
    if (ft_fds[fd].flags & FT_DISK)
        return 1;
    for (unsigned slices = 0;;) {
        uint32_t e = atomic_load_explicit(&ino->epoch, memory_order_acquire);
        uint32_t st = atomic_load_explicit(&ino->state, memory_order_acquire);
        if (st == EPH_MEM)
            return 0;
        if (st == EPH_DISK)
            return swap_to_disk(fd, ino);
        if (st != EPH_MOVING)
            return -EIO;
        int r = fp_moving_slice(ino, e, &slices);
        if (r < 0)
            return r;
    }
}

/* ---- kernel I/O on an evicted file ------------------------------------- */

ssize_t fp_disk_io(int fd, const struct iovec *iov, int cnt, off_t pos, int is_write)
{
    struct eph_desc *d = fp_desc(fd);
    ssize_t r;
    sh_tc.slow++;
    if (pos >= 0 && !is_write)
        return sys.preadv(fd, iov, cnt, pos);
    eph_lock(&d->lock);
    if (is_write && (atomic_load(&d->flags) & O_APPEND)) {
        /* Appenders in other descriptions race with us: let the kernel append
         * atomically (the disk fd carries O_APPEND), then read back where it put us. */
        int kfl = sys.fcntl(fd, F_GETFL);
        if (kfl >= 0 && !(kfl & O_APPEND))
            sys.fcntl(fd, F_SETFL, kfl | O_APPEND);
        r = sys.writev(fd, iov, cnt);
        /* An empty write appends nothing and leaves the offset alone (the
         * kernel fd's own position is stale: it is not the shared offset). */
        if (r > 0) {
            off_t end = sys.lseek(fd, 0, SEEK_CUR);
            if (end >= 0 && pos < 0)
                atomic_store(&d->offset, (uint64_t)end);
        }
        eph_unlock(&d->lock);
        return db_wrote(fd, r);
    }
    if (is_write) {
        /* pwrite on an O_APPEND kernel fd appends: drop a flag left by an earlier append */
        int kfl = sys.fcntl(fd, F_GETFL);
        if (kfl >= 0 && (kfl & O_APPEND))
            sys.fcntl(fd, F_SETFL, kfl & ~O_APPEND);
    }
    uint64_t off = pos >= 0 ? (uint64_t)pos : atomic_load(&d->offset);
    r = is_write ? sys.pwritev(fd, iov, cnt, (off_t)off) : sys.preadv(fd, iov, cnt, (off_t)off);
    if (r > 0 && pos < 0)
        atomic_store(&d->offset, off + (uint64_t)r);
    eph_unlock(&d->lock);
    return is_write ? db_wrote_at(fd, (off_t)off, r) : r;
}

/*
 * Wait while the daemon moves the file to disk.  Mid-move the disk file is
 * not linked at the path yet, so a caller that falls back to the kernel on the
 * path when the file left memory would get ENOENT; after it, it will not.
 */
void fp_wait_moving(struct eph_inode *ino, uint32_t gen)
{
    for (unsigned slices = 0;;) {
        uint32_t e = atomic_load_explicit(&ino->epoch, memory_order_acquire);
        if (atomic_load(&ino->gen) != gen || atomic_load(&ino->state) != EPH_MOVING)
            return;
        if (fp_moving_slice(ino, e, &slices) < 0)
            return; /* still MOVING: the caller takes it as not in memory */
    }
}
