/*
 * shim/nsfast.c - create, unlink and rename of in-memory files made by the
 * calling process itself, without a round trip to the daemon (issue 15).
 *
 * The namespace is still the region's path hash (shm.h); since version 2 any
 * process may change it under ns_lock, a robust process-shared mutex, with
 * every change written first as a redo record (ephemera/nslock.h).  Slots and
 * memfds come from a pool: the daemon lends a batch of free slots (EPH_POOL_FIRST,
 * growing to EPH_POOL_MAX for a process that uses them up), each with a memfd, in
 * one message (EPH_OP_POOL); the daemon keeps its
 * own copy of every memfd (inode.mem_fd) for eviction and write-back.  The pool
 * is refilled before the lock is taken, never inside it.
 *
 * Only the common cases are done here: a new name that is free on disk, in a
 * parent that is a plain directory the caller may write; an unlink of an
 * in-memory file; a rename of an in-memory file onto a free name, onto another
 * in-memory file or onto a disk name that is not a directory, within the
 * managed roots.  Everything else (names on
 * disk, directories, RENAME_EXCHANGE, a file being moved to disk, a budget
 * the placement guess says is short) returns -2 and goes to the daemon as
 * before, which decides exactly as it always did.
 *
 * The parent directory lives on disk; its stat comes from the process's
 * dircache (dircache.c), and the times a change here gives it are recorded in
 * the region's dirtouch table, which every shim's stat of the directory reads,
 * rather than written to the disk with a utimensat (docs/ARCHITECTURE.md,
 * "What is built").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/nslock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "nsfast.h"
#include "sys.h"
#include "creds.h"
#include "dircache.h"
#include "init.h"
#include "rpc.h"
#include "fdtable.h"
#include "fp_desc.h"
#include "fp_times.h"
#include "nsview.h"
#include "nsdir.h"
#include "nslink.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define NSF_POOL_FD_MIN 640 /* away from the numbers programs expect (and from fdtable's 512+) */
/* An unlinked file of at most this capacity, unopened, that we hold no fd of, is
 * left to the daemon's reclaim tick rather than released now: 64 KiB for at most
 * 20 ms, against a round trip per unlink. */
#define NSF_LAZY_RECLAIM (64u << 10)

/* ---- the pool ------------------------------------------------------------ */

struct nsf_ent {
    uint32_t inode;
    int32_t daemon_fd;
    int fd;   /* our copy of the memfd, -1 none */
    int home; /* kept from one of our own files (below): its memfd may hold that file's pages */
};

/* Room for a batch and for entries given back while another thread refilled. */
#define NSF_POOL_CAP (2 * EPH_POOL_MAX)
static struct nsf_ent nsf_pool[NSF_POOL_CAP] SH_COLD;
static int nsf_npool;
static int nsf_fresh = 1; /* the next request says we hold nothing from before */
/* How many slots the next request asks for: EPH_POOL_FIRST, doubled after every batch we
 * used up (a refill only happens when the pool is empty), up to EPH_POOL_MAX; a process
 * that makes few files pays one small batch, one that keeps making them fewer round trips. */
static int nsf_batch = EPH_POOL_FIRST;
/* A fork child's first request asks for this many: the child of a shell's redirection (`cmd >
 * file`), of tar -z (it creates the archive, then execs the compressor) or of system() makes one
 * file, and each slot lent beyond it was a memfd the daemon made again (memfd_create + fstat + the
 * keeper's copy) right after the reply, while the child, its parent and the compressor ran on the
 * machine's cores, and a slot it took back later.  A child that keeps making files doubles from
 * here (4, 8, 16, 32...): two round trips more than from EPH_POOL_FIRST by its 60th file. */
#define NSF_FORK_FIRST 4
static int nsf_refused;   /* the daemon lent nothing (table full): do not ask on every create */
/* Ask for slots without fds and open each memfd through /proc/<daemon>/fd/N when
 * it becomes a file (EPH_POOL_NOFDS); 0 once such an open was refused (another
 * user than the daemon's, without CAP_SYS_PTRACE): take fds in the batch. */
static int nsf_procfd = 1;
static pthread_mutex_t nsf_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * Homes: the slots of files this process made and then unlinked itself while
 * nobody had them open, kept with our fd of the memfd and, for a small file,
 * its pages (docs/ARCHITECTURE.md, "A create without the /proc open").  The
 * next create takes one first: its fd is a dup of ours, and its first write
 * lands in pages that are already there.  The slot is FREE and lent to us
 * meanwhile, as a pool entry, so the daemon takes it back when we exit or ask
 * afresh.  nsf_home_mu is taken under ns_lock (nsf_unlink) and never held
 * across anything else, so it cannot close a cycle with nsf_mu (held across
 * the refill's round trip).
 */
#define NSF_HOMES 16
static struct nsf_ent nsf_homes[NSF_HOMES];
static int nsf_nhomes;
static pthread_mutex_t nsf_home_mu = PTHREAD_MUTEX_INITIALIZER;
/* Unlinks that found a file to keep but no fd of ours: that many of the next
 * creates from a batch without fds keep one (a seed), at most NSF_HOMES. */
static _Atomic int nsf_want_home;
/* Our pid as the daemon names it in lent_to (SO_PEERCRED: its pid namespace, not
 * necessarily ours), read from a slot of the last batch; 0 until then (no homes). */
static _Atomic int32_t nsf_lent_pid;

/* Under nsf_mu: a batch from the daemon, moved off the low fd numbers. */
static int nsf_refill(void)
{
    struct eph_req req;
    static struct eph_pool_resp pr;
    int fds[EPH_POOL_FIRST];
    rpc_req_init(&req, EPH_OP_POOL);
    /* fds: at most EPH_POOL_FIRST */
    req.arg = (uint64_t)(nsf_procfd || nsf_batch < EPH_POOL_FIRST ? nsf_batch : EPH_POOL_FIRST);
    req.flags = (nsf_fresh ? EPH_POOL_FRESH : 0) | (nsf_procfd ? EPH_POOL_NOFDS : 0);
    int n = rpc_call_pool(&req, &pr, fds);
    if (n <= 0) {
        nsf_refused = 1;
        return -1;
    }
    if (nsf_batch < EPH_POOL_MAX)
        nsf_batch *= 2;
    nsf_fresh = 0;
    if (pr.e[0].inode < sh.hdr->ninodes)
        atomic_store(&nsf_lent_pid, atomic_load(&sh.inodes[pr.e[0].inode].lent_to));
    if (req.flags & EPH_POOL_NOFDS) {
        for (int i = 0; i < n && i < EPH_POOL_MAX && nsf_npool < NSF_POOL_CAP; i++) /* the rest stays lent to us */
            nsf_pool[nsf_npool++] = (struct nsf_ent){pr.e[i].inode, pr.e[i].daemon_fd, -1, 0};
        return nsf_npool ? 0 : -1;
    }
    for (int i = 0; i < n && i < EPH_POOL_FIRST; i++) {
        int fd = fds[i];
        if (fd < NSF_POOL_FD_MIN) {
            int nfd = sys.fcntl(fd, F_DUPFD_CLOEXEC, NSF_POOL_FD_MIN);
            sys.close(fd);
            fd = nfd;
        }
        if (fd < 0 || nsf_npool == NSF_POOL_CAP) {
            if (fd >= 0)
                sys.close(fd);
            continue; /* the slot stays lent to us: taken back when we die or ask fresh */
        }
        /* Marked as a private fd: the program's close, dup2 or close_range over the
         * number clears the mark (fdtable.c), and we never use it after that. */
        ft_mark_priv(fd, pr.e[i].inode);
        nsf_pool[nsf_npool++] = (struct nsf_ent){pr.e[i].inode, pr.e[i].daemon_fd, fd, 0};
    }
    return nsf_npool ? 0 : -1;
}

/*
 * Slots handed to a vfork child's new image (docs/ARCHITECTURE.md, "A child's first file without
 * a pool round trip").  A compile is the driver, cc1 and as; the driver's first create takes a
 * batch, and as, exec'd by it after vfork, would wait for a batch of its own for its one output.
 * So before a real vfork (the parent's own thread, nsf_vfork_reserve) up to NSF_HAND entries
 * without fds leave the pool for a thread-local reserve; the child's exec names them in
 * EPHEMERA_POOL (nsf_exec_pool_env); the new image claims them at its first create
 * (nsf_claim_inherited): under ns_lock, a slot still FREE, lent to the giver, with the memfd that
 * was lent (mem_fd, ino), is made lent to the claimer (a journaled store), so the daemon takes it
 * back when the claimer dies, as any batch.  Nothing else changes in the region: the giver's
 * entries stay lent to the giver until claimed, so a child killed before its claim, an exec that
 * fails, or an image that never creates a file leaves them to the giver, which takes the unclaimed
 * ones back (nsf_resolve_handed) once that child is gone, or the daemon when the giver dies.
 * At most NSF_HANDOFFS handoffs are outstanding or in flight (threads that vfork at once), so at
 * most NSF_HANDOFFS * NSF_HAND slots wait on children.
 */
#define NSF_HAND 4
#define NSF_HANDOFFS 4
struct nsf_hand {
    int n;
    int32_t pid;      /* the child that exec'd with them; 0: no exec (back to the pool) */
    unsigned era;     /* nsf_era when taken: a fresh request since gave them back to the daemon */
    struct nsf_ent e[NSF_HAND];
    uint64_t ino[NSF_HAND]; /* the lent memfd's inode number, which the claim checks */
};
static SH_TLS struct nsf_hand nsf_reserve; /* the vfork caller's thread: its child shares it */
static struct nsf_hand nsf_handed[NSF_HANDOFFS]; /* under nsf_mu: outstanding handoffs (n > 0) */
static int nsf_hand_busy;  /* under nsf_mu: outstanding handoffs + reserves in flight */
static unsigned nsf_era;   /* under nsf_mu: moved by nsf_forget_lent */
/* Entries named in EPHEMERA_POOL, claimed at the first create. */
static struct nsf_hand nsf_inherited;
static int nsf_lock(void);
static int32_t nsf_inh_giver, nsf_inh_daemon;

/* Entry i of hd names the very slot that was lent to `to`: still FREE, lent to it, with the memfd
 * that was lent (its daemon fd and inode number).  Both ends of a handoff ask it: the giver of an
 * entry a child never claimed, the claimer of an entry it was handed. */
static int nsf_hand_lent(const struct nsf_hand *hd, int i, int32_t to)
{
    if (hd->e[i].inode >= sh.hdr->ninodes)
        return 0;
    const struct eph_inode *in = &sh.inodes[hd->e[i].inode];
    return atomic_load(&in->state) == EPH_FREE && atomic_load(&in->lent_to) == to && in->mem_fd == hd->e[i].daemon_fd &&
           in->ino == hd->ino[i];
}

/* Under nsf_mu: the handed entries that a child never claimed go back to the pool once it is
 * gone (no claim can come after). */
static void nsf_resolve_handed(void)
{
    int32_t me = atomic_load(&nsf_lent_pid);
    for (int h = 0; h < NSF_HANDOFFS; h++) {
        struct nsf_hand *hd = &nsf_handed[h];
        if (!hd->n)
            continue;
        int unclaimed = 0;
        for (int i = 0; i < hd->n; i++)
            unclaimed += nsf_hand_lent(hd, i, me);
        if (unclaimed && !eph_pid_gone((uint32_t)hd->pid))
            continue; /* it may still claim them */
        for (int i = 0; i < hd->n; i++)
            if (nsf_hand_lent(hd, i, me) && nsf_npool < NSF_POOL_CAP)
                nsf_pool[nsf_npool++] = hd->e[i];
        hd->n = 0;
        nsf_hand_busy--;
    }
}

void nsf_vfork_reserve(void)
{
    nsf_reserve.n = 0;
    nsf_reserve.pid = 0;
    if (!atomic_load_explicit(&sh.attached, memory_order_acquire) || atomic_load(&nsf_lent_pid) != (int32_t)eph_lock_self())
        return; /* no batch yet, or the daemon names us otherwise (another pid namespace) */
    if (pthread_mutex_trylock(&nsf_mu) != 0)
        return;
    nsf_resolve_handed();
    if (nsf_hand_busy < NSF_HANDOFFS) {
        for (int i = nsf_npool - 1; i >= 0 && nsf_reserve.n < NSF_HAND && nsf_npool > NSF_HAND; i--) {
            struct nsf_ent e = nsf_pool[i];
            if (e.fd >= 0 || e.home || e.inode >= sh.hdr->ninodes)
                continue;
            nsf_reserve.ino[nsf_reserve.n] = sh.inodes[e.inode].ino;
            nsf_reserve.e[nsf_reserve.n++] = e;
            nsf_pool[i] = nsf_pool[--nsf_npool];
        }
        if (nsf_reserve.n) {
            nsf_reserve.era = nsf_era;
            nsf_hand_busy++;
        }
    }
    pthread_mutex_unlock(&nsf_mu);
}

int nsf_exec_pool_env(char *buf, size_t cap)
{
    struct nsf_hand *r = &nsf_reserve;
    if (!r->n)
        return 0;
    int k = snprintf(buf, cap, "EPHEMERA_POOL=%d:%d", sh_daemon_pid(), (int)atomic_load(&nsf_lent_pid));
    for (int i = 0; i < r->n && k > 0 && (size_t)k < cap; i++)
        k += snprintf(buf + k, cap - (size_t)k, ",%u.%d.%llx", r->e[i].inode, r->e[i].daemon_fd,
                      (unsigned long long)r->ino[i]);
    if (k <= 0 || (size_t)k >= cap)
        return 0;
    r->pid = (int32_t)syscall(SYS_getpid); /* the child's: the parent learns it from this store */
    return 1;
}

void nsf_exec_pool_failed(void)
{
    nsf_reserve.pid = 0;
}

void nsf_vfork_done(void)
{
    struct nsf_hand *r = &nsf_reserve;
    if (!r->n)
        return;
    pthread_mutex_lock(&nsf_mu);
    if (r->era != nsf_era) {
        /* A fresh request since: the daemon took them back with the rest; neither ours nor a handoff. */
    } else if (r->pid > 0) {
        for (int h = 0; h < NSF_HANDOFFS; h++) /* a record is free: nsf_hand_busy counted this reserve */
            if (!nsf_handed[h].n) {
                nsf_handed[h] = *r;
                r->n = 0;
                break;
            }
    } else {
        for (int i = 0; i < r->n && nsf_npool < NSF_POOL_CAP; i++) /* (else they stay lent to us) */
            nsf_pool[nsf_npool++] = r->e[i];
    }
    if (r->n && r->era == nsf_era)
        nsf_hand_busy--; /* not kept as a handoff */
    pthread_mutex_unlock(&nsf_mu);
    r->n = 0;
    r->pid = 0;
}

void nsf_init_inherited(void)
{
    const char *v = getenv("EPHEMERA_POOL");
    if (!v)
        return;
    int d = 0, g = 0, k = 0;
    if (sscanf(v, "%d:%d%n", &d, &g, &k) == 2 && d > 0 && g > 0) {
        nsf_inh_daemon = d;
        nsf_inh_giver = g;
        for (const char *p = v + k; *p == ',' && nsf_inherited.n < NSF_HAND;) {
            unsigned idx;
            int dfd, m = 0;
            unsigned long long ino;
            if (sscanf(p, ",%u.%d.%llx%n", &idx, &dfd, &ino, &m) != 3 || m <= 0)
                break;
            nsf_inherited.e[nsf_inherited.n] = (struct nsf_ent){idx, dfd, -1, 0};
            nsf_inherited.ino[nsf_inherited.n++] = ino;
            p += m;
        }
    }
    unsetenv("EPHEMERA_POOL"); /* ours only: not this image's children's */
}

/* Under nsf_mu, our pool empty: the entries our parent handed us, made ours under ns_lock. */
static void nsf_claim_inherited(void)
{
    struct nsf_hand *ih = &nsf_inherited;
    int n = ih->n;
    ih->n = 0;
    int32_t me = (int32_t)getpid();
    if (!n || !nsf_fresh || nsf_inh_giver == me || nsf_inh_daemon != sh_daemon_pid() || nsf_lock() < 0)
        return;
    struct eph_shm_header *h = sh.hdr;
    int got = 0;
    eph_j_begin(h);
    for (int i = 0; i < n; i++) {
        if (!nsf_hand_lent(ih, i, nsf_inh_giver))
            continue; /* not the slot that was lent to the giver: never ours */
        eph_j_set32(h, &sh.inodes[ih->e[i].inode].lent_to, (uint32_t)me);
        nsf_pool[nsf_npool++] = ih->e[i];
        got++;
    }
    eph_j_commit(h);
    eph_ns_unlock(h);
    if (got) {
        nsf_fresh = 0; /* a fresh request would take back what we hold */
        atomic_store(&nsf_lent_pid, me);
    }
}

/* A kept home, if any (homes_ok), else a pool entry (refilled when empty). */
static int nsf_take(struct nsf_ent *e, int homes_ok)
{
    int rc = -1;
    pthread_mutex_lock(&nsf_mu);
    for (;;) {
        int got = 0;
        if (homes_ok) {
            pthread_mutex_lock(&nsf_home_mu);
            if (nsf_nhomes > 0) {
                *e = nsf_homes[--nsf_nhomes];
                got = 1;
            }
            pthread_mutex_unlock(&nsf_home_mu);
        }
        if (!got) {
            if (nsf_npool == 0 && nsf_inherited.n)
                nsf_claim_inherited();
            if (nsf_npool == 0 && !nsf_refused)
                nsf_refill();
            if (nsf_npool == 0)
                break;
            *e = nsf_pool[--nsf_npool];
        }
        /* The program closed or replaced the number: it is not ours any more (the
         * slot stays lent to us, taken back when we exit or ask fresh). */
        if (e->fd < 0 || ft_is_priv(e->fd, e->inode)) {
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&nsf_mu);
    return rc;
}

static void nsf_put_back(const struct nsf_ent *e)
{
    int kept = 0;
    if (e->home) {
        pthread_mutex_lock(&nsf_home_mu);
        if ((kept = nsf_nhomes < NSF_HOMES))
            nsf_homes[nsf_nhomes++] = *e;
        pthread_mutex_unlock(&nsf_home_mu);
    } else {
        pthread_mutex_lock(&nsf_mu);
        if ((kept = nsf_npool < NSF_POOL_CAP))
            nsf_pool[nsf_npool++] = *e;
        pthread_mutex_unlock(&nsf_mu);
    }
    if (!kept && e->fd >= 0 && ft_is_priv(e->fd, e->inode)) { /* stays lent to us, as above */
        ft_mark_priv(e->fd, UINT32_MAX);
        sys.close(e->fd);
    }
}

int nsf_take_slot(uint32_t *inode, int32_t *daemon_fd, int *fd)
{
    struct nsf_ent e;
    if (nsf_take(&e, 0) < 0) /* a directory: no home, whose memfd may hold a file's pages */
        return -1;
    *inode = e.inode;
    *daemon_fd = e.daemon_fd;
    *fd = e.fd;
    return 0;
}

void nsf_give_slot(uint32_t inode, int32_t daemon_fd, int fd, int back)
{
    if (back) {
        nsf_put_back(&(struct nsf_ent){inode, daemon_fd, fd, 0});
        return;
    }
    if (fd < 0)
        return; /* lent without an fd (EPH_POOL_NOFDS) */
    ft_mark_priv(fd, UINT32_MAX);
    sys.close(fd);
}

static void nsf_forget_entries(struct nsf_ent *v, int n)
{
    for (int i = 0; i < n; i++)
        if (v[i].fd >= 0 && ft_is_priv(v[i].fd, v[i].inode)) {
            ft_mark_priv(v[i].fd, UINT32_MAX);
            sys.close(v[i].fd);
        }
}

/* Under nsf_mu: the next request asks afresh (EPH_POOL_FRESH), and the daemon then
 * takes back every slot lent to us, homes included; none of them may be used after. */
static void nsf_forget_lent(void)
{
    memset(nsf_handed, 0, sizeof nsf_handed); /* the daemon takes back the unclaimed ones with the rest */
    nsf_hand_busy = 0;
    nsf_era++; /* and the reserves in flight */
    nsf_forget_entries(nsf_pool, nsf_npool);
    nsf_npool = 0;
    pthread_mutex_lock(&nsf_home_mu);
    nsf_forget_entries(nsf_homes, nsf_nhomes);
    nsf_nhomes = 0;
    pthread_mutex_unlock(&nsf_home_mu);
    nsf_fresh = 1;
}

void nsf_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&nsf_mu, &fresh, sizeof fresh);
    memcpy(&nsf_home_mu, &fresh, sizeof fresh);
    nsf_forget_lent();
    atomic_store(&nsf_want_home, 0);
    atomic_store(&nsf_lent_pid, 0);
    nsf_refused = 0;
    nsf_batch = NSF_FORK_FIRST; /* a child starts smaller than a new image (NSF_FORK_FIRST) */
    nsf_reserve.n = 0;          /* the parent's, lent to it (a vfork served by fork) */
    nsf_inherited.n = 0;        /* claimed by the parent image or by nobody */
    nsd_after_fork(); /* the directories' slots kept for reuse (nsdir.c) are the parent's too */
}

/* ---- the daemon's fd directory ---------------------------------------------- */

/*
 * A memfd of the daemon is opened as /proc/<daemon>/fd/N: one openat, as the
 * kernel's open, with a description of its own.  The walk of "/proc", the pid
 * and "fd" was a third of that call's time (perf, BENCHMARKS.md), so the
 * directory is kept open (O_PATH, close-on-exec, above the numbers programs
 * use, marked private in the fd table so that a program's close, dup2 or
 * close_range over the number is seen) and only "N" is looked up.  Anything
 * unexpected (no mark, another daemon, a failed open through it) takes the
 * full path, whose answer is authoritative.
 */
#define NSF_FDDIR_MARK ((1u << 30) - 1) /* an inode index no region has (ft_mark_priv) */
static _Atomic int nsf_fddir = -1;
static _Atomic int nsf_fddir_pid;
static _Atomic int nsf_fddir_failed; /* the daemon's pid for which it could not be kept: not tried again */

/*
 * Keep fd (just opened for daemon pid; -1: it could not be) as *kept: above the numbers programs
 * use, close-on-exec, marked private in the fd table so that a program's close, dup2 or close_range
 * over the number is seen.  Another daemon's fd kept before is closed (a thread still using it
 * fails and takes the full path).  Returns fd, or -1 with *failed = pid: not tried again for it.
 */
static int nsf_keep(int fd, uint32_t mark, _Atomic int *kept, _Atomic int *kept_pid, _Atomic int *failed, int pid)
{
    if (fd >= 0 && fd < NSF_POOL_FD_MIN) {
        int nfd = sys.fcntl(fd, F_DUPFD_CLOEXEC, NSF_POOL_FD_MIN); /* fails under a low RLIMIT_NOFILE */
        sys.close(fd);
        fd = nfd;
    }
    if (fd >= 0) {
        ft_mark_priv(fd, mark);
        if (!ft_is_priv(fd, mark)) { /* beyond the fd table: not kept */
            sys.close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        /* Every open goes the full way for this daemon, at no more calls than before. */
        atomic_store(failed, pid);
        return -1;
    }
    pthread_mutex_lock(&nsf_mu);
    int old = atomic_exchange(kept, fd);
    atomic_store(kept_pid, pid);
    if (old >= 0 && old != fd && ft_is_priv(old, mark)) { /* (a closefrom may have given fd its number) */
        ft_mark_priv(old, UINT32_MAX);
        sys.close(old);
    }
    pthread_mutex_unlock(&nsf_mu);
    return fd;
}

/* The fd kept for daemon pid (>= 0), -1 (it could not be kept for this daemon), or -2 (open one). */
static int nsf_kept(_Atomic int *kept, _Atomic int *kept_pid, _Atomic int *failed, uint32_t mark, int pid)
{
    int d = atomic_load(kept);
    if (d >= 0 && atomic_load(kept_pid) == pid && ft_is_priv(d, mark))
        return d;
    return atomic_load(failed) == pid || pid <= 0 ? -1 : -2;
}

static int nsf_fddir_get(int pid)
{
    int d = nsf_kept(&nsf_fddir, &nsf_fddir_pid, &nsf_fddir_failed, NSF_FDDIR_MARK, pid);
    if (d != -2)
        return d;
    char p[48];
    snprintf(p, sizeof p, "/proc/%d/fd", pid);
    return nsf_keep(sys.open(p, O_PATH | O_DIRECTORY | O_CLOEXEC), NSF_FDDIR_MARK, &nsf_fddir, &nsf_fddir_pid,
                    &nsf_fddir_failed, pid);
}

int nsf_open_daemon_fd(int n, int flags)
{
    int pid = sh_daemon_pid();
    int d = nsf_fddir_get(pid);
    if (d >= 0 && n >= 0) {
        char name[16], *q = name + sizeof name;
        *--q = 0;
        unsigned v = (unsigned)n;
        do
            *--q = (char)('0' + v % 10);
        while (v /= 10);
        int fd = sys.openat(d, q, flags);
        if (fd >= 0)
            return fd;
    }
    return rpc_open_daemon_fd(n, flags);
}

/*
 * The daemon's memfd by pidfd_getfd: the file the daemon holds, at the number open(2) gives, in one
 * call that walks nothing.  The /proc open above makes the kernel instantiate a /proc inode and
 * dentry for each memfd number and check ptrace access on the way (5.8 us a first open here, against
 * 1.6 for pidfd_getfd with its close: BENCHMARKS.md, "zipcost"), and every file unzip creates or zip
 * reads is a memfd opened for the first time.  The fd shares the daemon's own description and is
 * close-on-exec whatever the program asked; the fd table marks it (ft_ddesc_mark) and gives it a
 * description of its own, with the program's flag, when it needs one (fdtable.h).  The pidfd is kept
 * as the fd directory is; a daemon that refuses (another user's, or a seccomp profile without the
 * call) sends every open the /proc way for that daemon, as before.
 */
#define NSF_PIDFD_MARK ((1u << 30) - 2) /* an inode index no region has (ft_mark_priv) */
static _Atomic int nsf_pidfd = -1;
static _Atomic int nsf_pidfd_pid;
static _Atomic int nsf_pidfd_failed;
SH_TLS int nsf_ddesc_took;

static int nsf_pidfd_get(int pid)
{
    int d = nsf_kept(&nsf_pidfd, &nsf_pidfd_pid, &nsf_pidfd_failed, NSF_PIDFD_MARK, pid);
    if (d != -2)
        return d;
    return nsf_keep((int)sys.syscall(SYS_pidfd_open, pid, 0), NSF_PIDFD_MARK, &nsf_pidfd, &nsf_pidfd_pid, &nsf_pidfd_failed,
                    pid);
}

int nsf_daemon_fd(int n, int cloexec)
{
    nsf_ddesc_took = 0;
    int pid = sh_daemon_pid(), p = n >= 0 ? nsf_pidfd_get(pid) : -1;
    if (p >= 0) {
        int fd = (int)sys.syscall(SYS_pidfd_getfd, p, n, 0);
        if (fd >= 0) {
            nsf_ddesc_took = 1;
            return fd;
        }
        if (errno == EMFILE || errno == ENFILE)
            return -1; /* what the kernel's open would say */
        if (errno != EBADF && errno != ESRCH)
            atomic_store(&nsf_pidfd_failed, pid); /* refused: the /proc way for this daemon */
    }
    return nsf_open_daemon_fd(n, O_RDWR | (cloexec ? O_CLOEXEC : 0));
}

/* ---- the lock ------------------------------------------------------------- */

static int nsf_lock(void)
{
    int from = 0, redone = 0, holder = 0;
    int e = eph_ns_lock(sh.hdr, &from, &redone, &holder);
    if (e < 0) {
        sh_log("namespace lock held by tid %d for 5 s (a stopped process?): EIO", holder);
        return e;
    }
    if (from)
        sh_log("namespace lock recovered from tid %d (its change %s)", from, redone ? "redone" : "discarded");
    return 0;
}

/* The lock around a kernel call that makes a disk name under a managed root
 * (link_impl): every namespace change, the daemon's and the shims', looks at the
 * disk and inserts under ns_lock, so a disk name made while we hold it cannot
 * slip between another's look and its insert.  0, or -1 with errno EIO. */
SH_TLS int nsf_held;

int nsf_hold(void)
{
    if (nsf_lock() < 0) {
        errno = EIO;
        return -1;
    }
    nsf_held = 1;
    return 0;
}

void nsf_unhold(void)
{
    nsf_held = 0;
    eph_ns_unlock(sh.hdr);
}

void nsf_disk_named(void)
{
    atomic_fetch_add(&sh.hdr->disk_names, 1);
}

uint32_t nsf_disk_names(void)
{
    return atomic_load(&sh.attached) ? atomic_load(&sh.hdr->disk_names) : 0;
}

/* ---- checks the daemon made on our behalf -------------------------------- */

void nsf_parent(const char *abs, char *out)
{
    const char *s = strrchr(abs, '/');
    size_t n = s && s != abs ? (size_t)(s - abs) : 1;
    memcpy(out, abs, n);
    out[n] = 0;
}

/* The daemon's shim_may: mode bits against the caller's effective ids. */
static int nsf_may(const struct stat *st, uid_t uid, gid_t gid, int want)
{
    if (uid == 0)
        return 1;
    unsigned bits = uid == st->st_uid ? (st->st_mode >> 6) & 7 : gid == st->st_gid ? (st->st_mode >> 3) & 7 : st->st_mode & 7;
    return (bits & (unsigned)want) == (unsigned)want;
}

/* The caller's effective ids, once per operation (the daemon got them in the request). */
struct nsf_ids {
    uid_t uid;
    gid_t gid;
};

static struct nsf_ids nsf_ids(void)
{
    return (struct nsf_ids){creds_euid(), creds_egid()};
}

/* May we add or remove (owner file_uid, -1 for a new name) in abs's parent?
 * 0, or -2 for anything the daemon should answer (its errno included). */
static int nsf_dir_writable(const char *abs, long long file_uid, struct nsf_ids id, struct nsf_dir *pd)
{
    char parent[EPH_PATH_MAX];
    struct stat st;
    uint32_t mi, mg;
    nsf_parent(abs, parent);
    pd->midx = -1;
    if (nsd_mem_parent(abs, &mi, &mg)) {
        struct eph_inode *p = &sh.inodes[mi];
        memset(&st, 0, sizeof st);
        st.st_mode = p->mode;
        st.st_uid = p->uid;
        st.st_gid = p->gid;
        st.st_dev = p->dev;
        if (atomic_load(&p->gen) != mg || atomic_load(&p->state) != EPH_MDIR || !nsv_parent_searchable(parent))
            return -2;
        pd->midx = (int32_t)mi;
        pd->mgen = mg;
    } else if (dc_stat(parent, &st) < 0 || !S_ISDIR(st.st_mode)) {
        return -2;
    }
    uid_t uid = id.uid;
    if (!nsf_may(&st, uid, id.gid, W_OK | X_OK))
        return -2;
    if (file_uid >= 0 && uid != 0 && (st.st_mode & S_ISVTX) && uid != (uid_t)file_uid && uid != st.st_uid)
        return -2;
    pd->st = st;
    return 0;
}

int nsf_dir_writable_by_caller(const char *abs, long long file_uid, struct nsf_dir *pd)
{
    return nsf_dir_writable(abs, file_uid, nsf_ids(), pd);
}

/* Under ns_lock: the parent of abs that pd describes is still that directory (in memory: the
 * same slot; on disk the callers compare dirs_gone). */
int nsf_dir_same(const char *abs, const struct nsf_dir *pd)
{
    if (pd->midx < 0)
        return 1;
    char parent[EPH_PATH_MAX];
    struct eph_inode *p = &sh.inodes[pd->midx];
    nsf_parent(abs, parent);
    return eph_chain_lookup(sh.hdr, parent) == pd->midx && atomic_load(&p->gen) == pd->mgen &&
           atomic_load(&p->state) == EPH_MDIR;
}

/* How many operations nsf_j_dir adds to a record. */
static uint32_t nsf_dir_ops(const struct nsf_dir *pd, int d)
{
    return pd->midx < 0 ? 0 : 2u + (d != 0);
}

/* Into the open record: a name added (d 1), removed (-1) or replaced (0) in an in-memory
 * directory moves its count (st_size) and its times, as tmpfs's do. */
void nsf_j_dir(struct eph_shm_header *h, const struct nsf_dir *pd, int d, int64_t now)
{
    if (pd->midx < 0)
        return;
    struct eph_inode *p = &sh.inodes[pd->midx];
    if (d)
        eph_j_set32(h, &p->dir_entries, p->dir_entries + (uint32_t)d);
    eph_j_set64(h, &p->mtime_ns, (uint64_t)now);
    eph_j_set64(h, &p->ctime_ns, (uint64_t)now);
}

/* After the record, under the lock: a disk parent's times go to the dirtouch table.  1 when it
 * is full (the caller then moves the kernel's times after the unlock). */
int nsf_touch(const struct nsf_dir *pd, int64_t now)
{
    return pd->midx < 0 && nsf_touch_dir(pd->st.st_dev, pd->st.st_ino, now) < 0;
}

/*
 * Under ns_lock: a name in disk directory (dev, ino) was added or removed at
 * now, by a file's create, unlink or rename here or a directory's mkdir or
 * rmdir in nsdir.c.  Recorded in the region (struct eph_dirtouch), where every
 * shim's stat of the directory finds it, instead of a utimensat of the disk
 * directory: the disk does not see the in-memory names either.  0, or -1 when
 * the table is full (the caller then moves the kernel's times after the
 * unlock, nsf_touch_kernel).
 */
int nsf_touch_dir(uint64_t dev, uint64_t ino, int64_t now)
{
    struct eph_shm_header *h = sh.hdr;
    if (ino == 0)
        return -1;
    uint32_t i0 = nsv_dirtouch_slot(ino);
    for (uint32_t k = 0; k < EPH_DIRTOUCH; k++) {
        struct eph_dirtouch *e = &h->dirtouch[(i0 + k) % EPH_DIRTOUCH];
        uint64_t ei = atomic_load(&e->ino);
        if (ei != 0 && (ei != ino || atomic_load(&e->dev) != dev))
            continue;
        /* Odd while we write; even after, also if a holder died between the two. */
        uint32_t s = atomic_load(&e->seq) | 1;
        atomic_store(&e->seq, s);
        if (ei == 0) {
            atomic_store(&e->dev, dev);
            atomic_store(&e->ino, ino);
        }
        atomic_store(&e->mtime_ns, now);
        atomic_store(&e->ctime_ns, now);
        atomic_store(&e->seq, s + 1);
        if (ei == 0)
            atomic_fetch_add(&h->dirtouch_used, 1);
        return 0;
    }
    return -1;
}

/* The table is full: move the disk directory's own times, as the daemon did. */
void nsf_touch_kernel(const char *abs)
{
    char parent[EPH_PATH_MAX];
    nsf_parent(abs, parent);
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    sys.utimensat(AT_FDCWD, parent, ts, 0);
}

void nsf_dir_untouch(uint64_t dev, uint64_t ino)
{
    struct eph_shm_header *h = sh.hdr;
    if (nsf_lock() < 0)
        return;
    uint32_t i0 = nsv_dirtouch_slot(ino);
    for (uint32_t k = 0; k < EPH_DIRTOUCH; k++) {
        struct eph_dirtouch *e = &h->dirtouch[(i0 + k) % EPH_DIRTOUCH];
        uint64_t ei = atomic_load(&e->ino);
        if (ei == 0)
            break;
        if (ei != ino || atomic_load(&e->dev) != dev)
            continue;
        uint32_t s = atomic_load(&e->seq) | 1;
        atomic_store(&e->seq, s);
        atomic_store(&e->mtime_ns, 0);
        atomic_store(&e->ctime_ns, 0);
        atomic_store(&e->seq, s + 1);
        break;
    }
    eph_ns_unlock(h);
}

/*
 * The daemon's placement guess (daemon/place.c), its cheap half: a new file
 * starts in memory when no recent create went to disk and the largest recent
 * file fits in what the budget has left.  Anything else asks the daemon.
 */
static int nsf_place_ok(void)
{
    struct eph_shm_header *h = sh.hdr;
    uint64_t budget = atomic_load(&h->budget), guess = 0;
    if (budget == 0)
        return 0;
    for (int k = 0; k < EPH_PLACE_RECENT; k++) {
        uint64_t v = atomic_load(&h->place_recent[k]);
        if (v == 0)
            continue;
        if (v == EPH_PLACE_DISK)
            return 0;
        uint32_t idx = (uint32_t)(v & 0xffffffffu) - 1, gen = (uint32_t)(v >> 32);
        if (idx >= h->ninodes)
            return 0;
        struct eph_inode *in = &sh.inodes[idx];
        uint32_t st = atomic_load(&in->state);
        if (atomic_load(&in->gen) != gen || st == EPH_FREE)
            continue; /* gone: the daemon counts it as 0 too */
        if (st != EPH_MEM)
            return 0;
        uint64_t s = atomic_load(&in->size);
        if (s > guess)
            guess = s;
    }
    if (guess == 0)
        return 1;
    uint64_t ours = atomic_load(&h->c.bytes_in_memory);
    return ours < budget && guess <= budget - ours;
}

/* ---- create --------------------------------------------------------------- */

/* A seed for a home: our own fd of the memfd that the program's kfd opened, kept with the
 * file so that its unlink can keep the slot (nsf_keep_home).  The fd, or -1. */
static int nsf_seed(int kfd, uint32_t inode)
{
    int fd = sys.fcntl(kfd, F_DUPFD_CLOEXEC, NSF_POOL_FD_MIN);
    if (fd < 0)
        return -1;
    ft_mark_priv(fd, inode);
    if (!ft_is_priv(fd, inode)) { /* beyond the fd table */
        sys.close(fd);
        return -1;
    }
    atomic_fetch_sub_explicit(&nsf_want_home, 1, memory_order_relaxed);
    return fd;
}

int nsf_create(const char *abs, int flags, mode_t mode, int absent, uint32_t disk_seen, uint32_t *inode_out,
               uint32_t *gen_out, int *priv)
{
    struct eph_shm_header *h = sh.hdr;
    struct stat st;
    struct nsf_dir pd;
    char parent[EPH_PATH_MAX];
    uint32_t i, g;
    if (strlen(abs) >= EPH_PATH_MAX || !nsf_place_ok())
        return -2;
    /* The name must be free on disk (else the kernel's open is the answer)
     * and its parent a directory we may write, not an in-memory file.  In a
     * directory in memory nothing is on disk: no look there. */
    nsf_parent(abs, parent);
    struct nsf_ids id = nsf_ids();
    uint32_t gone = atomic_load(&h->dirs_gone); /* the parent is looked at before the lock */
    if (nsv_lookup(parent, &i, &g) == 0)
        return -2;
    if (nsf_dir_writable(abs, -1, id, &pd) < 0) {
        struct stat pst;
        if (nsd_files_in_memory() && !nsd_is_dir(parent) && dc_stat(parent, &pst) < 0 && errno == ENOENT) {
            /* No such directory, on disk or in memory: the kernel's ENOENT, without asking the
             * daemon (git opens objects/xx/tmp_obj_* before it makes objects/xx).  The stat that
             * nsf_dir_writable just made of it answers, within this call (dc_miss_begin). */
            errno = ENOENT;
            return -1;
        }
        return -2;
    }
    if (!absent && pd.midx < 0 && (sys.lstat(abs, &st) == 0 || errno != ENOENT))
        return -2;
    const struct stat pst = pd.st;
    struct nsf_ent e;
    if (nsf_take(&e, 1) < 0)
        return -2;
    int cloexec = (flags & O_CLOEXEC) != 0;
    int kfd;
    if (e.fd < 0) {
        /* The program's fd: a description of its own on the daemon's memfd, at the
         * number open(2) gives, made by the one call open(2) makes. */
        kfd = nsf_daemon_fd(e.daemon_fd, cloexec);
        if (kfd < 0 && errno != EMFILE && errno != ENFILE) {
            /* Not ours to open (another user): batches with fds from now on. */
            pthread_mutex_lock(&nsf_mu);
            nsf_procfd = 0;
            nsf_forget_lent();
            pthread_mutex_unlock(&nsf_mu);
            return -2;
        }
        /* A seed only where the fd table can keep it after the program's close: else
         * the close would drop it again, two calls for nothing. */
        if (kfd >= 0 && atomic_load_explicit(&nsf_want_home, memory_order_relaxed) > 0 && ft_idle_room())
            e.fd = nsf_seed(kfd, e.inode);
    } else {
        /* A home or a batch with fds: the program's fd is a duplicate of ours.  Its
         * description is shared with our fd, as a reopen's is (open_cached); the
         * shim keeps the offset and the flags per description itself (eph_desc),
         * and gives an fd a description of its own before a lock that needs one
         * (io_own_description). */
        kfd = sys.fcntl(e.fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    }
    if (kfd < 0) {
        int err = errno;
        if (err == EBADF) {
            /* The program closed our pool fds: ask for a fresh pool next time. */
            pthread_mutex_lock(&nsf_mu);
            nsf_forget_lent();
            pthread_mutex_unlock(&nsf_mu);
            return -2;
        }
        nsf_put_back(&e);
        errno = err;
        return -1; /* EMFILE: what the kernel's open would say */
    }
    if (nsf_lock() < 0) {
        sys.close(kfd);
        nsf_put_back(&e);
        errno = EIO;
        return -1;
    }
    struct eph_inode *in = &sh.inodes[e.inode];
    if (e.inode >= h->ninodes || atomic_load(&in->state) != EPH_FREE || in->mem_fd != e.daemon_fd ||
        (e.home && atomic_load(&in->lent_to) != atomic_load(&nsf_lent_pid))) {
        /* Not the free slot that was lent: another process made it a file (a child
         * forked past our fork wrapper shares our pool).  The entry is dropped. */
        eph_ns_unlock(h);
        sys.close(kfd);
        if (e.fd >= 0) {
            ft_mark_priv(e.fd, UINT32_MAX);
            sys.close(e.fd);
        }
        return -2;
    }
    if (eph_chain_lookup(h, abs) >= 0 || atomic_load(&h->dirs_gone) != gone || !nsf_dir_same(abs, &pd) ||
        atomic_load(&h->disk_names) != disk_seen) {
        /* Someone named it meanwhile, or a directory went (ours?), or the parent changed, or a
         * shim made a disk name since our look at the disk (which was made before the lock, to
         * save a call; it may be this very name: ours would hide it): the daemon decides,
         * looking under the lock. */
        eph_ns_unlock(h);
        sys.close(kfd);
        nsf_put_back(&e);
        return -2;
    }
    /* The slot is FREE and chained nowhere: invisible until the record applies. */
    int64_t now = fp_fine_stamp();
    /* A home's pages stay, as the stale tail of an O_TRUNC open does (ARCHITECTURE.md): bytes
     * in [size, capacity) are never shown, and the memfd stays as long as capacity. */
    uint64_t keep = e.home ? atomic_load(&in->capacity) : 0;
    uint32_t gen = eph_inode_fresh(in, 1, sh_lru_ns()); /* open_count 1: the caller's reference, as CREATE gives it */
    struct eph_counters *c = &h->c;
    if (keep)
        atomic_store(&in->capacity, keep); /* not counted while FREE: the record below counts it */
    ft_inflight_inode(e.inode, gen); /* in the caller's ledger at once (fdtable.c) */
    in->dev = pst.st_dev;
    in->mode = S_IFREG | (mode & 07777);
    in->uid = id.uid;
    in->gid = (pst.st_mode & S_ISGID) ? pst.st_gid : id.gid;
    atomic_store(&in->times_seen, 0);
    atomic_store(&in->atime_ns, now);
    atomic_store(&in->mtime_ns, now);
    atomic_store(&in->ctime_ns, now);
    in->btime_ns = now;
    uint32_t k = atomic_load(&h->place_next) % EPH_PLACE_RECENT;

    eph_j_begin(h);
    memcpy(h->journal.path, abs, strlen(abs) + 1);
    /* A home's pages are counted again by the record that makes the slot a file, once, first
     * (before the file is MEM, as a grow charges before it stores its capacity): killed before
     * the commit, neither; after it, both (ARCHITECTURE.md, "The count across a kill"). */
    if (keep)
        eph_j_add64(h, &c->bytes_in_memory, (int64_t)keep);
    eph_j_add(h, EPH_JOP_INSERT, e.inode, 0);
    eph_j_set32(h, &in->lent_to, 0);
    eph_j_set64(h, &h->place_recent[k], (uint64_t)(e.inode + 1) | (uint64_t)gen << 32);
    eph_j_set32(h, &h->place_next, (k + 1) % EPH_PLACE_RECENT);
    eph_j_set32(h, &in->state, EPH_MEM);
    nsf_j_dir(h, &pd, 1, now);
    eph_j_commit_as(h, keep ? "home" : NULL); /* EPHEMERA_NS_STALL=home-<point> stops here only */

    if (keep)
        eph_atomic_max(&c->bytes_in_memory_peak, atomic_load(&c->bytes_in_memory));
    atomic_fetch_add(&c->files_created, 1);
    eph_atomic_max(&c->files_in_memory_peak, atomic_fetch_add(&c->files_in_memory, 1) + 1);
    atomic_fetch_add(&h->shim_creates, 1);
    int full = nsf_touch(&pd, now);
    eph_ns_unlock(h);

    if (full)
        nsf_touch_kernel(abs);
    *priv = e.fd >= 0 ? e.fd : FT_NO_PRIV;
    *inode_out = e.inode;
    *gen_out = gen;
    return kfd;
}

/* ---- unlink and rename ------------------------------------------------------ */

/*
 * Under ns_lock, after a name left inode `in` (nlink now 0; stored before
 * open_count is read: the Dekker pair of fp_inode_release).  If nobody has it
 * open or mapped, its pages go back now, as the daemon's unlink gave them back
 * (a program deleting a file expects its memory charge to drop at once): through
 * our own fd of the memfd when we have one (ftruncate to 0; the slot stays for
 * the daemon to free in its loop, with reclaim_pending), else by asking the
 * daemon (returns 1: RELEASE after the unlock).  0 otherwise.
 */
static int nsf_reclaim(uint32_t idx, uint32_t gen)
{
    struct eph_inode *in = &sh.inodes[idx];
    if (atomic_load(&in->open_count) != 0)
        return 0;
    atomic_store(&sh.hdr->reclaim_pending, 1);
    uint64_t cap = atomic_load(&in->capacity);
    if (cap == 0)
        return 0;
    int fd = ft_cached_fd(idx, gen);
    /* A small file we hold no fd of: the daemon frees it within its 20 ms reclaim
     * tick (or at its next request), and no system call is made here. */
    if (fd < 0 && cap <= NSF_LAZY_RECLAIM)
        return 0;
    if (fd < 0)
        return 1;
    eph_lock(&in->lock);
    /* Not while a program maps it (pinned): a mapping outlives the last close and
     * the name, and its pages must stay; the daemon frees it when it is unmapped. */
    if (atomic_load(&in->state) == EPH_MEM && !atomic_load(&in->pinned) && sys.ftruncate(fd, 0) == 0) {
        atomic_store(&in->size, 0);
        uint64_t cap = atomic_exchange(&in->capacity, 0);
        atomic_fetch_sub(&sh.hdr->c.bytes_in_memory, cap);
    }
    eph_unlock(&in->lock);
    return 0;
}

/*
 * Under ns_lock, just after the last name of file idx (of gen) went, committed
 * (nlink 0 is stored before open_count is read: the Dekker pair of
 * fp_inode_release, as in nsf_reclaim): if nobody has it open or mapped, no
 * extended attribute was set on its memfd, and this process holds an idle fd
 * of that memfd, the slot becomes a home of ours (FREE, lent to us) instead of
 * waiting for the daemon's reclaim.  A small file keeps its pages (capacity
 * stays on the FREE slot, out of bytes_in_memory until the next file counts it
 * again); a bigger one is emptied now, as nsf_reclaim would.  1 when kept; 0:
 * nsf_reclaim decides as before.
 */
static int nsf_keep_home(uint32_t idx, uint32_t gen)
{
    struct eph_shm_header *h = sh.hdr;
    struct eph_inode *in = &sh.inodes[idx];
    int32_t me = atomic_load(&nsf_lent_pid);
    if (!me || atomic_load(&in->open_count) != 0 || atomic_load(&in->xattrs) || in->link_head ||
        atomic_load(&in->gen) != gen || atomic_load(&in->state) != EPH_MEM || atomic_load(&in->pinned))
        return 0;
    pthread_mutex_lock(&nsf_home_mu);
    int room = nsf_nhomes < NSF_HOMES;
    pthread_mutex_unlock(&nsf_home_mu);
    if (!room)
        return 0;
    int fd = ft_take_idle_fd(idx, gen);
    if (fd < 0) {
        /* Ours to keep but for an fd: the next create from a batch keeps one (nsf_seed). */
        if (atomic_load(&in->capacity) <= NSF_LAZY_RECLAIM &&
            atomic_load_explicit(&nsf_want_home, memory_order_relaxed) < NSF_HOMES)
            atomic_fetch_add_explicit(&nsf_want_home, 1, memory_order_relaxed);
        return 0;
    }
    eph_lock(&in->lock);
    /* Under the inode lock: the daemon starts a move (MEM -> MOVING) and a program's
     * mapping pins the file only under it. */
    uint64_t cap = atomic_load(&in->capacity), left = cap;
    int ok = atomic_load(&in->state) == EPH_MEM && !atomic_load(&in->pinned);
    if (ok && cap > NSF_LAZY_RECLAIM) {
        ok = sys.ftruncate(fd, 0) == 0;
        /* Out of the count with its capacity, as nsf_reclaim does: a file stays MEM (counted)
         * until the record commits, and a kill before then leaves it MEM with capacity 0. */
        if (ok)
            atomic_fetch_sub(&h->c.bytes_in_memory, atomic_exchange(&in->capacity, left = 0));
        eph_ns_stall("home-emptied");
    }
    if (ok) {
        atomic_store(&h->reclaim_pending, 1); /* killed before the commit: the daemon frees it */
        eph_j_begin(h);
        /* The pages the FREE slot keeps leave the count in the record that makes it FREE, once
         * (a kill before the commit leaves a MEM file the daemon frees, counted until then). */
        eph_j_add64(h, &h->c.bytes_in_memory, -(int64_t)left);
        eph_j_set64(h, &in->ino, eph_file_ino_next(in->ino));
        eph_j_set64(h, &in->size, 0);
        eph_j_set32(h, &in->gen, gen + 1); /* before the slot is reusable, as ns_free */
        eph_j_set32(h, &in->lent_to, (uint32_t)me);
        eph_j_set32(h, &in->state, EPH_FREE);
        eph_j_commit_as(h, "home");
    }
    eph_unlock(&in->lock);
    if (!ok) {
        ft_mark_priv(fd, UINT32_MAX);
        sys.close(fd);
        return 0;
    }
    atomic_fetch_sub(&h->c.files_in_memory, 1);
    /* Filled meanwhile by a create's put-back: the slot stays lent to us unused, its pages
     * freed with the memfd when the daemon takes it back (ns_pool_return). */
    nsf_put_back(&(struct nsf_ent){idx, in->mem_fd, fd, 1});
    return 1;
}

int nsf_unlink(const char *abs, uint32_t idx, uint32_t gen)
{
    struct eph_shm_header *h = sh.hdr;
    struct eph_inode *in = &sh.inodes[idx];
    struct nsf_dir pd;
    if (atomic_load(&in->state) != EPH_MEM || nsf_dir_writable(abs, in->uid, nsf_ids(), &pd) < 0)
        return -2;
    if (nsf_lock() < 0) {
        errno = EIO;
        return -1;
    }
    /* The name: the file's own slot, or one of its further names (nslink.c). */
    int n = eph_chain_lookup(h, abs);
    if (!eph_names(h, n, idx) || atomic_load(&in->gen) != gen || atomic_load(&in->state) != EPH_MEM ||
        !nsf_dir_same(abs, &pd)) {
        eph_ns_unlock(h);
        return -2;
    }
    int64_t now = fp_fine_stamp();
    eph_j_begin(h);
    int dropped = eph_j_drop_name(h, (uint32_t)n, idx, 1);
    eph_j_set64(h, &in->ctime_ns, (uint64_t)now);
    nsf_j_dir(h, &pd, -1, now); /* at most 5 + 1 + 3 operations */
    eph_j_commit(h);
    if (dropped > 0)
        atomic_store(&h->reclaim_pending, 1); /* the daemon frees the name's slot */
    int release = atomic_load(&in->nlink) == 0 && !nsf_keep_home(idx, gen) && nsf_reclaim(idx, gen);
    atomic_fetch_add(&h->shim_unlinks, 1);
    int full = nsf_touch(&pd, now);
    eph_ns_unlock(h);
    if (release)
        rpc_inode_call(EPH_OP_RELEASE, idx, gen);
    if (full)
        nsf_touch_kernel(abs);
    return 0;
}

int nsf_rename(const char *a, const char *b, unsigned flags)
{
    struct eph_shm_header *h = sh.hdr;
    uint32_t s, sg, d = 0, dg = 0;
    struct stat st;
    if ((flags & ~(unsigned)RENAME_NOREPLACE) || strlen(b) >= EPH_PATH_MAX || strcmp(a, b) == 0)
        return -2;
    if (nsv_lookup(a, &s, &sg) < 0)
        return -2;
    int dmem = nsv_lookup(b, &d, &dg) == 0;
    if (dmem && (flags & RENAME_NOREPLACE)) {
        errno = EEXIST;
        return -1;
    }
    struct eph_inode *si = &sh.inodes[s], *di = &sh.inodes[d];
    if (atomic_load(&si->state) != EPH_MEM || (dmem && atomic_load(&di->state) != EPH_MEM))
        return -2;
    struct nsf_ids id = nsf_ids();
    uint32_t gone = atomic_load(&h->dirs_gone); /* the parents are looked at before the lock */
    struct nsf_dir pa, pb;
    if (nsf_dir_writable(a, si->uid, id, &pa) < 0 || nsf_dir_writable(b, dmem ? (long long)di->uid : -1, id, &pb) < 0)
        return -2;
    /* Which directories' counts move: one directory in memory holding both names, or each. */
    int same = pa.midx >= 0 ? pa.midx == pb.midx
                            : pb.midx < 0 && pa.st.st_dev == pb.st.st_dev && pa.st.st_ino == pb.st.st_ino;
    int da = same ? (dmem ? -1 : 0) : -1, db = dmem ? 0 : 1;
    /* The record: the target's name (at most 3) and its ctime, the move (4), the directories. */
    if ((dmem ? 4u : 0u) + 4u + nsf_dir_ops(&pa, da) + (same ? 0u : nsf_dir_ops(&pb, db)) > EPH_JOURNAL_OPS)
        return -2;
    if (nsf_lock() < 0) {
        errno = EIO;
        return -1;
    }
    /* Each name: the file's own slot or one of its further names (nslink.c). */
    int na = eph_chain_lookup(h, a), nb = eph_chain_lookup(h, b);
    if (!eph_names(h, na, s) || atomic_load(&si->gen) != sg || atomic_load(&si->state) != EPH_MEM ||
        atomic_load(&h->dirs_gone) != gone || (dmem ? !eph_names(h, nb, d) : nb != -1) ||
        (dmem && (atomic_load(&di->gen) != dg || atomic_load(&di->state) != EPH_MEM)) || !nsf_dir_same(a, &pa) ||
        !nsf_dir_same(b, &pb)) {
        eph_ns_unlock(h);
        return -2;
    }
    if (dmem && d == s) {
        /* Two names of one file: rename does nothing and succeeds (POSIX, and the kernel). */
        eph_ns_unlock(h);
        return 0;
    }
    /* A name on disk, looked at under the lock, as a kernel link() onto a managed
     * name is made under it (link_impl): one made just before our insert would
     * otherwise stay on disk, hidden under ours.  A directory there goes to the
     * daemon; anything else is unlinked by the kernel here, still under the lock
     * and as the caller (so the kernel makes its own checks: the sticky bit, a
     * read-only mount), and the name then goes to memory in the same section, as
     * the daemon's op_rename does.  One that vanished meanwhile is simply gone. */
    int disk_gone = 0;
    if (!dmem && pb.midx >= 0) {
        /* in a directory in memory nothing is on disk */
    } else if (!dmem && sys.lstat(b, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            eph_ns_unlock(h);
            return -2;
        }
        if (flags & RENAME_NOREPLACE) {
            eph_ns_unlock(h);
            errno = EEXIST;
            return -1;
        }
        if (sys.unlink(b) < 0 && errno != ENOENT) {
            int e = errno;
            eph_ns_unlock(h);
            errno = e;
            return -1;
        }
        disk_gone = 1;
    } else if (!dmem && errno != ENOENT) {
        eph_ns_unlock(h);
        return -2;
    }
    int64_t now = fp_fine_stamp();
    eph_j_begin(h);
    memcpy(h->journal.path, b, strlen(b) + 1);
    /* Name slots move, not files: the target's own name while it has further names hands
     * the file its first further name in the same record (journal.path2, nslink.c). */
    int dropped = eph_j_rename(h, (uint32_t)na, s, dmem ? nb : -1, d);
    if (dmem)
        eph_j_set64(h, &di->ctime_ns, (uint64_t)now);
    eph_j_set64(h, &si->ctime_ns, (uint64_t)now);
    nsf_j_dir(h, &pa, da, now);
    if (!same)
        nsf_j_dir(h, &pb, db, now);
    eph_j_commit(h);
    if (dropped > 0)
        atomic_store(&h->reclaim_pending, 1);
    int release = dmem && atomic_load(&di->nlink) == 0 && !nsf_keep_home(d, dg) && nsf_reclaim(d, dg);
    atomic_fetch_add(&h->shim_unlinks, 1);
    int full_a = nsf_touch(&pa, now), full_b = !same && nsf_touch(&pb, now);
    eph_ns_unlock(h);
    if (release)
        rpc_inode_call(EPH_OP_RELEASE, d, dg);
    if (full_a)
        nsf_touch_kernel(a);
    if (full_b)
        nsf_touch_kernel(b);
    if (disk_gone)
        dc_changed(); /* it may have been a symlink on a path the dircache holds */
    return 0;
}
