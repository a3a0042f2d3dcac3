/*
 * ledger.c - per-process ledgers of open in-memory files (ledger.h).
 *
 * Each shimmed process registers its fd table (a memfd it keeps current; see
 * EPH_OP_LEDGER).  A pidfd tells us when the process is gone, however it
 * died; whatever its table still lists was never closed, so we drop those
 * description references here.  Without this, a function killed at its
 * timeout would keep its unlinked files' memory until the instance ends.
 */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon.h"
#include "keeper.h"
#include "log.h"
#include "loop.h"
#include "namespace.h"

struct ledger_proc {
    struct loop_ev ev;      /* the pidfd */
    pid_t pid;
    int table_fd;
    struct ledger_proc *next;
};

static struct ledger_proc *ledger_procs;
static uint64_t ledger_refs;       /* references dropped for dead processes */
static uint64_t ledger_reads;      /* counts of reads in flight dropped for dead processes */

uint64_t ledger_reads_dropped(void)
{
    return ledger_reads;
}

uint64_t ledger_dropped(void)
{
    return ledger_refs;
}

int ledger_registered(int pid)
{
    for (struct ledger_proc *p = ledger_procs; p; p = p->next)
        if (p->pid == pid)
            return 1;
    return 0;
}

/* One open_count reference on inode (gen: whose slot it was when taken). */
static void ledger_inode_unref(uint32_t inode, uint32_t gen)
{
    if (inode >= D.h->ninodes)
        return;
    struct eph_inode *in = &D.inodes[inode];
    uint32_t oc = atomic_load(&in->open_count);
    do {
        if (oc == 0)
            return;
    } while (!atomic_compare_exchange_weak(&in->open_count, &oc, oc - 1));
    if (oc != 1)
        return;
    /* The last: its own file's, or (a slot reused since, whose count held it: eph_inode_fresh) the
     * new file's, whose last close left the release to this reference. */
    uint32_t st = atomic_load(&in->state);
    if (atomic_load(&in->gen) == gen || st == EPH_MEM || st == EPH_DISK)
        ns_maybe_gc(inode);
}

void ledger_drop_ref(uint32_t inode, uint32_t gen)
{
    ledger_refs++;
    ledger_inode_unref(inode, gen);
}

static void ledger_unref(uint32_t desc)
{
    struct eph_desc *d = &eph_descs(D.h)[desc];
    /* Our reference keeps the slot from being reused until we drop it. */
    uint32_t inode = d->inode, gen = d->inode_gen;
    uint32_t r = atomic_load(&d->refs);
    do {
        if (r == 0)
            return;
    } while (!atomic_compare_exchange_weak(&d->refs, &r, r - 1));
    ledger_refs++;
    if (r != 1)
        return;
    ledger_inode_unref(inode, gen);
}

/* Where the in-flight page of a table starts (proto.h): its last page; 0 if it has none. */
static off_t ledger_inflight_off(int table_fd)
{
    struct stat st;
    if (fstat(table_fd, &st) < 0 || st.st_size < (off_t)EPH_LEDGER_INFLIGHT_BYTES)
        return 0;
    return st.st_size - (off_t)EPH_LEDGER_INFLIGHT_BYTES;
}

/*
 * The fast-path reads a dead process was inside (proto.h, EPH_INFLIGHT_READ):
 * each raised its inode's inflight count, which nothing else will lower, and
 * a truncation or an eviction of the file waits for that count.  Before the
 * process's descriptions are given back, so the inode cannot have been freed
 * and reused meanwhile (the gen check is for a table that lies).  Also for
 * the table an exec'd process replaces: exec ended its other threads.
 */
static void ledger_release_reads(int table_fd, off_t at, pid_t pid)
{
    uint64_t word[EPH_LEDGER_INFLIGHT_WORDS];
    ssize_t n = pread(table_fd, word, sizeof word, at);
    size_t have = n > 0 ? (size_t)n / sizeof word[0] : 0; /* words read: a short table has fewer */
    for (uint32_t s = 0; s < EPH_LEDGER_INFLIGHT_SLOTS; s++) {
        uint32_t i = EPH_LEDGER_READ_WORD(s);
        if (i >= have || !(word[i] & EPH_INFLIGHT_READ))
            continue;
        uint32_t inode = (uint32_t)(word[i] >> 32) & 0x0fffffffu, gen = (uint32_t)word[i];
        if (inode >= D.h->ninodes || atomic_load(&D.inodes[inode].gen) != gen)
            continue;
        _Atomic int32_t *c = &D.inodes[inode].inflight;
        int32_t v = atomic_load(c);
        do {
            if (v <= 0)
                break;
        } while (!atomic_compare_exchange_weak(c, &v, v - 1));
        if (v <= 0)
            continue;
        ledger_reads++;
        log_msg(LOG_INFO, "pid %d ended inside a read of inode %u; dropped its count of reads in flight",
                (int)pid, inode);
    }
}

/*
 * The references a dead process held in flight (proto.h, EPH_INFLIGHT_*):
 * taken and not yet listed under an fd.  A desc already listed at its fd was
 * given back with the table.
 */
static void ledger_release_inflight(int table_fd, off_t at)
{
    uint64_t word[EPH_LEDGER_INFLIGHT_WORDS];
    ssize_t n = pread(table_fd, word, sizeof word, at);
    size_t have = n > 0 ? (size_t)n / sizeof word[0] : 0;
    for (uint32_t s = 0; s < EPH_LEDGER_INFLIGHT_SLOTS; s++) {
        uint32_t i = EPH_LEDGER_REF_WORD(s);
        if (i >= have)
            break;
        uint64_t v = word[i];
        uint32_t hi = (uint32_t)(v >> 32) & 0x1fffffffu, lo = (uint32_t)v; /* below the type bits */
        if (v & EPH_INFLIGHT_INODE) {
            ledger_refs++;
            ledger_inode_unref(hi, lo);
        } else if (v & EPH_INFLIGHT_CHARGE) {
            uint64_t bytes = (uint64_t)lo * EPH_PAGE_INFLIGHT, cur = atomic_load(&D.h->c.bytes_in_memory);
            do {
                if (cur < bytes)
                    bytes = cur;
            } while (!atomic_compare_exchange_weak(&D.h->c.bytes_in_memory, &cur, cur - bytes));
        } else if ((v & EPH_INFLIGHT_DESC) && hi < D.h->ndescs) {
            struct { uint32_t desc1, flags; } e = {0, 0};
            if ((off_t)lo * (off_t)sizeof e >= at ||
                pread(table_fd, &e, sizeof e, (off_t)lo * (off_t)sizeof e) != (ssize_t)sizeof e || e.desc1 != hi + 1)
                ledger_unref(hi);
        }
    }
}

/*
 * A table given back, or replaced by its process's new image, lists nothing
 * any more: empty it, so that another registration of the same table gives
 * nothing back a second time.  A fork child's table comes twice, from the
 * parent (EPH_LEDGER_CHILD, on the parent's connection) and from the child
 * itself before its first reference (on its own), and nothing orders two
 * connections: when the daemon reads the second after the child is gone
 * (busy for a few ms while a short child ran, exited and was reaped), that
 * one finds no ledger of the pid and gives the table back again.  Each
 * reference the child held was then dropped twice, its parent's with it:
 * an exec'd child's flock on the fd its parent locked met EAGAIN (its shim
 * saw a desc with no other holder and gave the fd a description of its
 * own), and an unlinked file could be freed while the parent read it.  The
 * mark lives in the file, not here, so a table the keeper hands a new
 * daemon keeps it too.
 */
static void ledger_retire(int table_fd, pid_t pid)
{
    /* Zeroed, not truncated: a process that still maps it (a fork child of the
     * dead one, for the few instructions until it replaces its table) reads
     * zeros rather than dying of SIGBUS. */
    struct stat st;
    if (fstat(table_fd, &st) == 0 && st.st_size > 0 &&
        fallocate(table_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, st.st_size) < 0)
        log_msg(LOG_WARN, "pid %d: emptying its ledger after giving it back: %s", (int)pid, strerror(errno));
}

static void ledger_release(int table_fd, pid_t pid)
{
    struct { uint32_t desc1, flags; } buf[512];
    uint64_t before = ledger_refs;
    off_t off = 0, inflight = ledger_inflight_off(table_fd);
    if (inflight)
        ledger_release_reads(table_fd, inflight, pid);
    /* Only the pages the process touched hold entries: skip the holes. */
    for (;;) {
        off_t data = lseek(table_fd, off, SEEK_DATA);
        if (data < 0 || (inflight && data >= inflight))
            break;
        off_t end = lseek(table_fd, data, SEEK_HOLE);
        if (end <= data)
            break;
        if (inflight && end > inflight)
            end = inflight;
        for (off_t p = data & ~(off_t)(sizeof buf[0] - 1); p < end;) {
            size_t want = sizeof buf;
            if ((off_t)want > end - p)
                want = (size_t)(end - p);
            ssize_t n = pread(table_fd, buf, want, p);
            if (n <= 0)
                break;
            for (size_t i = 0; i < (size_t)n / sizeof buf[0]; i++)
                if (buf[i].desc1 && buf[i].desc1 <= D.h->ndescs)
                    ledger_unref(buf[i].desc1 - 1);
            p += n;
        }
        off = end;
    }
    if (inflight)
        ledger_release_inflight(table_fd, inflight);
    ledger_retire(table_fd, pid);
    if (ledger_refs != before)
        log_msg(LOG_INFO, "pid %d ended holding %llu open file references; dropped them", (int)pid,
                (unsigned long long)(ledger_refs - before));
}

/* The daemon took an open_count reference on inode for pid's thread in slot
 * (EPH_OP_CREATE): it is in flight until that thread lists it. */
void ledger_note_inflight(pid_t pid, uint32_t slot, uint32_t inode, uint32_t gen)
{
    if (slot >= EPH_LEDGER_INFLIGHT_SLOTS)
        return;
    for (struct ledger_proc *p = ledger_procs; p; p = p->next)
        if (p->pid == pid) {
            off_t at = ledger_inflight_off(p->table_fd);
            uint64_t v = EPH_INFLIGHT_INODE | (uint64_t)inode << 32 | gen;
            if (at && pwrite(p->table_fd, &v, sizeof v, at + (off_t)EPH_LEDGER_REF_WORD(slot) * (off_t)sizeof v) !=
                          (ssize_t)sizeof v)
                log_msg(LOG_WARN, "pid %d: noting an open reference in its ledger: %s", (int)pid, strerror(errno));
            return;
        }
}

static void ledger_forget(struct ledger_proc *p)
{
    for (struct ledger_proc **pp = &ledger_procs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    loop_del(&p->ev);
    close(p->ev.fd);
    keeper_dropped(p->table_fd);
    close(p->table_fd);
    free(p);
}

static void ledger_on_exit(struct loop_ev *ev, uint32_t events)
{
    (void)events;
    struct ledger_proc *p = (struct ledger_proc *)ev;
    ledger_release(p->table_fd, p->pid);
    ledger_forget(p);
}

#if !defined(SO_PEERPIDFD) && (defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || \
                                defined(__arm__) || defined(__riscv))
#define SO_PEERPIDFD 77 /* Linux 6.5, asm-generic's number; older headers lack it */
#endif

/*
 * A pidfd of the process whose table this is, or -errno (-ESRCH: it is gone).  A process's own
 * registration is not waited for (the shim sends it and goes on), so it may be read here after
 * the process died and its pid went to another: the connection's own pidfd (SO_PEERPIDFD, taken
 * by the kernel at connect) names the process that sent it whatever became of the number, and
 * on 6.17 and later even once it was reaped (a pidfd that polls as exited).  Older kernels say
 * EINVAL or ESRCH for a reaped peer (gone), or ENOPROTOOPT before 6.5 (then pidfd_open).
 */
static int ledger_pidfd(pid_t pid, int peer_sock)
{
#ifdef SO_PEERPIDFD
    if (peer_sock >= 0) {
        int pfd = -1;
        socklen_t len = sizeof pfd;
        if (getsockopt(peer_sock, SOL_SOCKET, SO_PEERPIDFD, &pfd, &len) == 0 && pfd >= 0)
            return pfd;
        if (errno == ESRCH || errno == EINVAL)
            return -ESRCH;
    }
#else
    (void)peer_sock;
#endif
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    return pfd < 0 ? -errno : pfd;
}

int ledger_register(pid_t pid, int self, int *tfd, int peer_sock)
{
    if (*tfd < 0 || pid <= 0)
        return -EINVAL;
    struct ledger_proc *p = ledger_procs;
    while (p && p->pid != pid)
        p = p->next;
    if (p) {
        /* A new image after exec replaces the old table; a parent's late
         * registration of a child that registered itself is stale. */
        if (self) {
            struct stat a, b;
            /* the parent's copy of a child's table comes again from the child: the same file */
            if (fstat(p->table_fd, &a) != 0 || fstat(*tfd, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
                /* exec ended the old image's other threads wherever they were, reads included */
                off_t at = ledger_inflight_off(p->table_fd);
                if (at)
                    ledger_release_reads(p->table_fd, at, pid);
                ledger_retire(p->table_fd, pid); /* the new image lists what it inherited */
            }
            keeper_dropped(p->table_fd);
            close(p->table_fd);
            p->table_fd = *tfd;
            *tfd = -1;
            keeper_hold_one(p->table_fd, EPH_KEEP_LEDGER, (uint32_t)pid, 0);
        }
        return 0;
    }
    int pfd = ledger_pidfd(pid, peer_sock);
    if (pfd < 0) {
        if (pfd != -ESRCH)
            return pfd;
        ledger_release(*tfd, pid); /* already gone (and reaped) */
        return 0;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        close(pfd);
        return -ENOMEM;
    }
    fcntl(pfd, F_SETFD, FD_CLOEXEC);
    p->ev.fd = pfd;
    p->ev.fn = ledger_on_exit;
    p->pid = pid;
    p->table_fd = *tfd;
    if (loop_add(&p->ev, EPOLLIN) < 0) {
        int e = errno;
        close(pfd);
        free(p);
        return -e;
    }
    *tfd = -1;
    p->next = ledger_procs;
    ledger_procs = p;
    keeper_hold_one(p->table_fd, EPH_KEEP_LEDGER, (uint32_t)pid, 0);
    return 0;
}

void ledger_close(void)
{
    while (ledger_procs)
        ledger_forget(ledger_procs);
}
