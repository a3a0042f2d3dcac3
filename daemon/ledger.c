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
#include <sys/epoll.h>
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
    if (r != 1 || inode >= D.h->ninodes)
        return;
    struct eph_inode *in = &D.inodes[inode];
    uint32_t oc = atomic_load(&in->open_count);
    do {
        if (oc == 0)
            return;
    } while (!atomic_compare_exchange_weak(&in->open_count, &oc, oc - 1));
    if (oc == 1 && atomic_load(&in->gen) == gen)
        ns_maybe_gc(inode);
}

static void ledger_release(int table_fd, pid_t pid)
{
    struct { uint32_t desc1, flags; } buf[512];
    uint64_t before = ledger_refs;
    off_t off = 0;
    /* Only the pages the process touched hold entries: skip the holes. */
    for (;;) {
        off_t data = lseek(table_fd, off, SEEK_DATA);
        if (data < 0)
            break;
        off_t end = lseek(table_fd, data, SEEK_HOLE);
        if (end <= data)
            break;
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
    if (ledger_refs != before)
        log_msg(LOG_INFO, "pid %d ended holding %llu open file references; dropped them", (int)pid,
                (unsigned long long)(ledger_refs - before));
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

int ledger_register(pid_t pid, int self, int *tfd)
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
            keeper_dropped(p->table_fd);
            close(p->table_fd);
            p->table_fd = *tfd;
            *tfd = -1;
            keeper_hold_one(p->table_fd, EPH_KEEP_LEDGER, (uint32_t)pid, 0);
        }
        return 0;
    }
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0) {
        if (errno != ESRCH)
            return -errno;
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
