/*
 * shim/nsdirfd.c - fds of directories in memory without a disk twin (nsdirfd.h, issue 15).
 *
 * Python's TemporaryDirectory cleanup (shutil.rmtree), tar c, zip -r and every walk open the
 * directories they list.  Before this, an open of a directory in memory gave it its disk twin
 * (a daemon round trip and a disk mkdir, then a disk rmdir through the daemon when it went):
 * 370 µs for a mkdir + scandir + rmdir that tmpfs does in 14.  Here the open returns a kernel fd
 * on a stand-in: one empty directory per process, made in /dev/shm and removed at once, opened
 * again for each fd ("." relative to it: one system call, a description of its own).  Being
 * removed, it can never hold a name: a call that reaches the kernel with the stand-in without the
 * shim (a raw system call, a libc function the shim does not wrap) finds a removed directory
 * (creates fail with ENOENT, getdents lists nothing), never a wrong place to write.
 *
 * The fd's entry in the fd table carries FT_MDIRFD (with FT_ROOTFD: its syncs answer at once);
 * the directory it stands for is kept here by slot and generation, not by path, so a rename of
 * the directory keeps the fd on it and a removal leaves it on a removed directory, as on tmpfs.
 * A directory that got its twin from another process (the slot is freed then) is found again on
 * disk through the twin's record in the region (include/ephemera/twinrec.h), which the stand-in's
 * hold keeps (one per stand-in fd, claimed at its open or dup, or for a fork child before the
 * fork, given back when the fd stops being one); the last path seen is kept for a stand-in
 * without a hold (none free).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/proto.h"
#include "ephemera/shm.h"
#include "ephemera/twinrec.h"

#include "nsdirfd.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "paths.h"
#include "pathnorm.h"
#include "diskbytes.h"
#include "nsdir.h"
#include "nsview.h"

#define NDF_GONE UINT32_MAX /* slot of an entry whose directory is known to be gone */

struct ndf_ent {
    uint32_t slot, gen;
    uint32_t hold; /* its hold on the twin's record (index + 1), or 0 */
    struct stat st; /* the directory's stat at the open: fstat's answer once it is removed */
    char path[EPH_PATH_MAX]; /* the last path the slot had */
};

static struct ndf_ent **ndf_tab; /* indexed by fd, ft_nfds entries, allocated at the first stand-in */
static int ndf_base = -1;        /* the removed directory the stand-ins are opened from */
static pthread_mutex_t ndf_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int ndf_used;     /* any stand-in was ever made here: the twin hooks scan */

int ndf_on(void)
{
    static int on = -1;
    return nsd_switch_on("EPHEMERA_MEMDIR_FDS", &on);
}

/* The removed directory, made once (under ndf_mu): an fd, or -1. */
static int ndf_make_base(void)
{
    if (ndf_base >= 0 && ft_mdirfd(ndf_base))
        return ndf_base;
    static const char *const where[] = {"/dev/shm", "/tmp"};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    for (unsigned i = 0; i < sizeof where / sizeof where[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/.ephemera-standin-%d-%lx", where[i], (int)getpid(), (unsigned long)ts.tv_nsec);
        if (sys.mkdir(p, 0500) < 0)
            continue;
        int fd = sys.open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        sys.rmdir(p);
        if (fd < 0)
            continue;
        /* High, out of the program's way; marked, so that a close or dup2 over it is seen. */
        int hi = sys.fcntl(fd, F_DUPFD_CLOEXEC, 700);
        if (hi >= 0) {
            sys.close(fd);
            fd = hi;
        }
        if (!ft_fds || (unsigned)fd >= ft_nfds) {
            sys.close(fd);
            return -1;
        }
        ft_lock();
        ft_set(fd, 0, FT_ROOTFD | FT_MDIRFD);
        if ((uint32_t)fd + 1 > atomic_load(&ft_hwm))
            atomic_store(&ft_hwm, (uint32_t)fd + 1);
        ft_unlock();
        ndf_base = fd;
        return fd;
    }
    return -1;
}

/* Under ndf_mu: e's hold given back (its fd is no stand-in now, or no longer needs the record). */
static void ndf_unhold(struct ndf_ent *e)
{
    if (e && e->hold && sh.hdr)
        eph_hold_give(sh.hdr, e->hold, eph_lock_self());
    if (e)
        e->hold = 0;
}

/* A hold on the record of slot/gen for this process: index + 1, or 0 (none free).  The lowest free
 * one: holds_hwm, which bounds the daemon's look at them at each twin, stays low. */
static uint32_t ndf_claim(uint32_t slot, uint32_t gen)
{
    return sh.hdr ? eph_hold_claim(sh.hdr, eph_lock_self(), slot, gen, 0) : 0;
}

static struct ndf_ent *ndf_get(int fd)
{
    if (!ndf_tab) {
        ndf_tab = calloc(ft_nfds, sizeof *ndf_tab);
        if (!ndf_tab)
            return NULL;
        /* The first stand-in of this image: holds under our pid are an earlier image's (exec
         * settled or closed its stand-ins; a fork child inherits the table, so never comes here). */
        struct eph_shm_header *h = sh.hdr;
        uint32_t me = eph_lock_self(), hw = h ? atomic_load(&h->holds_hwm) : 0;
        for (uint32_t k = 0; k < hw && k < EPH_STANDIN_HOLDS; k++)
            if (atomic_load_explicit(&h->standin_holds[k].pid, memory_order_relaxed) == me)
                eph_hold_give(h, k + 1, me);
    }
    if (!ndf_tab[fd])
        ndf_tab[fd] = calloc(1, sizeof **ndf_tab);
    return ndf_tab[fd];
}

/* Under ndf_mu: the directory e stands for, at its current path (copied to out): 1; 0: gone;
 * -1: cannot tell (the namespace kept changing). */
static int ndf_current(struct ndf_ent *e, char out[EPH_PATH_MAX])
{
    struct eph_shm_header *h = sh.hdr;
    if (e->slot == NDF_GONE || !h)
        return 0;
    for (unsigned tries = 0; nsv_backoff(tries) == 0; tries++) {
        uint64_t s1 = atomic_load_explicit(&h->ns_seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        struct eph_inode *in = &sh.inodes[e->slot];
        int live = atomic_load(&in->state) == EPH_MDIR && atomic_load(&in->gen) == e->gen;
        size_t len = strnlen(in->path, EPH_PATH_MAX - 1);
        memcpy(out, in->path, len);
        out[len] = '\0';
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&h->ns_seq, memory_order_relaxed) != s1)
            continue;
        if (!live || !out[0])
            return 0;
        memcpy(e->path, out, len + 1);
        return 1;
    }
    return -1;
}

int ndf_open(const char *abs, uint32_t idx, uint32_t gen, int flags)
{
    struct stat st;
    if (!ndf_on() || sh_busy || !ft_fds)
        return -2;
    /* The kernel's checks: read permission on the directory (none for O_PATH), search on the way. */
    if (nsd_allows(abs, (flags & O_PATH) ? 0 : R_OK) != 1 || nsd_stat(abs, &st) < 0)
        return -2;
    pthread_mutex_lock(&ndf_mu);
    /* The hold first, then the slot read live (ndf_current): a twin after that read keeps the
     * record for us; one before it leaves the slot gone, and the open goes the old way. */
    struct ndf_ent probe = {.slot = idx, .gen = gen};
    char now[EPH_PATH_MAX];
    uint32_t hold = ndf_claim(idx, gen);
    if (hold && ndf_current(&probe, now) != 1) {
        eph_hold_give(sh.hdr, hold, eph_lock_self());
        hold = 0;
    }
    int base = hold ? ndf_make_base() : -1;
    int fd = base < 0 ? -1
                      : sys.openat(base, ".", flags & ~(O_ACCMODE | O_CREAT | O_TRUNC | O_NOATIME | O_DIRECT));
    struct ndf_ent *e = fd >= 0 && (unsigned)fd < ft_nfds ? ndf_get(fd) : NULL;
    if (!e) {
        if (hold)
            eph_hold_give(sh.hdr, hold, eph_lock_self());
        pthread_mutex_unlock(&ndf_mu);
        if (fd >= 0)
            sys.close(fd);
        return -2;
    }
    ndf_unhold(e); /* a stale entry's (its fd was closed past us) */
    e->slot = idx;
    e->gen = gen;
    e->hold = hold;
    e->st = st;
    snprintf(e->path, sizeof e->path, "%s", now);
    ft_lock();
    if (ft_fds[fd].desc1) /* a stale entry under the number the kernel gave us */
        ft_unlock(), ft_forget(fd), ft_lock();
    ft_set_flags(fd, FT_ROOTFD | FT_MDIRFD);
    if ((uint32_t)fd + 1 > atomic_load(&ft_hwm))
        atomic_store(&ft_hwm, (uint32_t)fd + 1);
    ft_unlock();
    atomic_store(&ndf_used, 1);
    pthread_mutex_unlock(&ndf_mu);
    return fd;
}

int ndf_open_path(int dirfd, const char *path, int flags)
{
    char abs[EPH_PATH_MAX];
    int t;
    uint32_t gen;
    if (!ndf_on() || sh_busy || pn_has_dotdot(path) || nsd_resolve(dirfd, path, abs, &t) <= 0)
        return -2;
    int idx = nsd_dir_slot(abs, &gen);
    return idx < 0 ? -2 : ndf_open(abs, (uint32_t)idx, gen, flags);
}

/* fd (a stand-in) now refers to the disk directory at path, if one is there (and, with ino not 0,
 * it is that one: dev, ino): 0, else -1. */
static int ndf_replace(int fd, const char *path, uint64_t dev, uint64_t ino)
{
    int fl = sys.fcntl(fd, F_GETFL), fdfl = sys.fcntl(fd, F_GETFD);
    if (fl < 0 || fdfl < 0)
        return -1;
    /* the stand-in's open flags (F_GETFL shows them), so the fd looks as the program opened it */
    int nfd = sys.open(path, (fl & ~O_ACCMODE) | O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (nfd >= 0 && (sys.fstat(nfd, &st) < 0 || !S_ISDIR(st.st_mode) ||
                     (ino && ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino)))) {
        sys.close(nfd);
        return -1;
    }
    if (nfd < 0)
        return -1;
    int r = sys.dup3(nfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
    sys.close(nfd);
    if (r < 0)
        return -1;
    ft_lock();
    if (!ft_fds[fd].desc1)
        ft_set_flags(fd, (ft_fds[fd].flags & ~FT_MDIRFD) | FT_ROOTFD);
    ft_unlock();
    return 0;
}

/*
 * Under ndf_mu: e's directory left memory (its slot is gone): fd put on its twin, wherever renames
 * by any process took it since (the twin's record, include/ephemera/twinrec.h), or, with no record
 * left (a ring: many twins since), at the last path this process saw.  0 with the path in out, or
 * -1: removed (or moved by a program without the shim).
 */
static int ndf_find_twin(int fd, struct ndf_ent *e, char out[EPH_PATH_MAX])
{
    struct eph_shm_header *h = sh.hdr;
    uint64_t dev = 0, ino = 0;
    int known = 0;
    for (unsigned tries = 0; h && tries < 8; tries++) {
        unsigned k = 0;
        uint32_t s = eph_twinrec_find(h, e->slot, e->gen, out, &dev, &ino, &k);
        if (!s)
            break;
        known = 1;
        if (ndf_replace(fd, out, dev, ino) == 0)
            return 0;
        if (eph_twinrec_seq(h, k) == s)
            break; /* not moved meanwhile: not there */
    }
    /* the last path seen: with a record, only if the twin is there (a program without the shim
     * renamed it back, say); without one, whatever directory is there, as before the records */
    if (ndf_replace(fd, e->path, known ? dev : 0, known ? ino : 0) == 0) {
        memcpy(out, e->path, strlen(e->path) + 1);
        return 0;
    }
    return -1;
}

/* Fault builds: EPHEMERA_NS_STALL=standin-look stops the process (SIGSTOP) once, just after a call
 * named a directory in memory through its stand-in, for a test to give the directory its twin
 * there (test/c/standincall_test.c). */
static void ndf_stall_look(void)
{
#ifdef EPH_FAULTS
    static int once;
    const char *s = getenv("EPHEMERA_NS_STALL");
    if (s && strcmp(s, "standin-look") == 0 && !once) {
        once = 1;
        raise(SIGSTOP);
    }
#endif
}

int ndf_path(int fd, char out[EPH_PATH_MAX])
{
    int e = errno, r = -1;
    pthread_mutex_lock(&ndf_mu);
    struct ndf_ent *ent = ndf_tab && ft_mdirfd(fd) ? ndf_tab[fd] : NULL;
    int cur = ent ? ndf_current(ent, out) : 0;
    if (cur == 1) {
        r = 0;
    } else if (cur < 0) {
        /* the namespace kept changing under the read: the path it had a moment ago */
        memcpy(out, ent->path, strlen(ent->path) + 1);
        r = 0;
    } else if (ent && cur == 0 && ent->slot != NDF_GONE) {
        /* Not in memory any more: on disk if another process gave it its twin (then this fd is
         * put on the twin), else removed (the stand-in answers as one). */
        if (ndf_find_twin(fd, ent, out) == 0) {
            memcpy(ent->path, out, strlen(out) + 1);
            r = 0;
        } else {
            ent->slot = NDF_GONE;
        }
        ndf_unhold(ent); /* on its twin now, or removed: the record is no longer needed */
    }
    pthread_mutex_unlock(&ndf_mu);
    if (cur == 1)
        ndf_stall_look();
    errno = e;
    return r;
}

int ndf_moved(int fd)
{
    if (fd < 0 || !ft_mdirfd(fd) || fd == ndf_base)
        return 0;
    char p[EPH_PATH_MAX];
    ndf_path(fd, p);
    return !ft_mdirfd(fd);
}

int ndf_stat(int fd, struct stat *st)
{
    char p[EPH_PATH_MAX];
    if (ndf_path(fd, p) == 0) {
        if (!ft_mdirfd(fd))
            return fstat(fd, st); /* put on its twin just now */
        if (nsd_stat(p, st) == 0)
            return 0;
    }
    if (!ft_mdirfd(fd))
        return fstat(fd, st);
    /* Removed: the identity it had, as tmpfs keeps it for an fd of a removed directory. */
    pthread_mutex_lock(&ndf_mu);
    struct ndf_ent *e = ndf_tab ? ndf_tab[fd] : NULL;
    if (e) {
        *st = e->st;
        st->st_nlink = 0;
        st->st_size = 40;
    }
    pthread_mutex_unlock(&ndf_mu);
    if (!e)
        return fstat(fd, st);
    return 0;
}

static void ndf_statx_of(const struct stat *st, struct statx *stx)
{
    memset(stx, 0, sizeof *stx);
    stx->stx_mask = STATX_BASIC_STATS;
    stx->stx_blksize = (uint32_t)st->st_blksize;
    stx->stx_nlink = (uint32_t)st->st_nlink;
    stx->stx_uid = st->st_uid;
    stx->stx_gid = st->st_gid;
    stx->stx_mode = (uint16_t)st->st_mode;
    stx->stx_ino = st->st_ino;
    stx->stx_size = (uint64_t)st->st_size;
    stx->stx_blocks = (uint64_t)st->st_blocks;
    stx->stx_atime = (struct statx_timestamp){st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec, 0};
    stx->stx_mtime = (struct statx_timestamp){st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec, 0};
    stx->stx_ctime = (struct statx_timestamp){st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec, 0};
    stx->stx_dev_major = major(st->st_dev);
    stx->stx_dev_minor = minor(st->st_dev);
}

int ndf_statx(int fd, unsigned mask, struct statx *stx)
{
    char p[EPH_PATH_MAX];
    if (ndf_path(fd, p) == 0 && ft_mdirfd(fd) && nsd_statx(p, stx) == 0)
        return 0;
    if (!ft_mdirfd(fd))
        return statx(fd, "", AT_EMPTY_PATH, mask, stx);
    struct stat st;
    if (ndf_stat(fd, &st) < 0)
        return -1;
    ndf_statx_of(&st, stx);
    return 0;
}

void ndf_settle(int fd)
{
    if (!ft_mdirfd(fd) || fd == ndf_base)
        return;
    int e = errno;
    char p[EPH_PATH_MAX];
    pthread_mutex_lock(&ndf_mu);
    struct ndf_ent *ent = ndf_tab ? ndf_tab[fd] : NULL;
    int cur = ent ? ndf_current(ent, p) : 0;
    if (cur < 0)
        memcpy(p, ent->path, strlen(ent->path) + 1); /* could not read it settled: the last one */
    pthread_mutex_unlock(&ndf_mu);
    if (cur != 0)
        nsd_give_twin(p); /* ndf_after_twin puts this fd (and its copies) on the twin */
    if (ft_mdirfd(fd))
        ndf_path(fd, p); /* twinned elsewhere meanwhile, or removed */
    errno = e;
}

void ndf_dup(int oldfd, int newfd)
{
    if (!ft_mdirfd(oldfd) || newfd < 0 || (unsigned)newfd >= ft_nfds)
        return;
    pthread_mutex_lock(&ndf_mu);
    if (newfd == ndf_base)
        ndf_base = -1; /* the program put its own fd there: the next stand-in makes a new base */
    struct ndf_ent *o = ndf_tab ? ndf_tab[oldfd] : NULL, *n = o && oldfd != newfd ? ndf_get(newfd) : NULL;
    if (n) {
        ndf_unhold(n); /* newfd was a stand-in itself */
        memcpy(n, o, sizeof *n);
        /* its own hold (oldfd's keeps the record meanwhile), or none: it then finds the twin
         * while oldfd lives, and by the last path seen after */
        n->hold = o->hold && o->slot != NDF_GONE ? ndf_claim(o->slot, o->gen) : 0;
    }
    pthread_mutex_unlock(&ndf_mu);
    ft_lock();
    if (!ft_fds[newfd].desc1)
        ft_set_flags(newfd, n ? FT_ROOTFD | FT_MDIRFD : 0);
    if ((uint32_t)newfd + 1 > atomic_load(&ft_hwm))
        atomic_store(&ft_hwm, (uint32_t)newfd + 1);
    ft_unlock();
}

void ndf_before_twin(void)
{
    if (!atomic_load_explicit(&ndf_used, memory_order_relaxed))
        return;
    char p[EPH_PATH_MAX];
    uint32_t hwm = atomic_load(&ft_hwm);
    pthread_mutex_lock(&ndf_mu);
    for (uint32_t fd = 0; fd < hwm; fd++)
        if (ft_mdirfd((int)fd) && (int)fd != ndf_base && ndf_tab && ndf_tab[fd])
            ndf_current(ndf_tab[fd], p); /* the last path, for after the twin */
    pthread_mutex_unlock(&ndf_mu);
}

void ndf_after_twin(void)
{
    if (!atomic_load_explicit(&ndf_used, memory_order_relaxed))
        return;
    char p[EPH_PATH_MAX];
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++)
        if (ft_mdirfd((int)fd) && (int)fd != ndf_base)
            ndf_path((int)fd, p);
}

void ndf_before_exec(void)
{
    if (!atomic_load_explicit(&ndf_used, memory_order_relaxed))
        return;
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        if (!ft_mdirfd((int)fd) || (int)fd == ndf_base)
            continue;
        int fdfl = sys.fcntl((int)fd, F_GETFD);
        if (fdfl >= 0 && !(fdfl & FD_CLOEXEC))
            ndf_settle((int)fd);
    }
}

void ndf_before_send(const struct msghdr *msg)
{
    if (!atomic_load_explicit(&ndf_used, memory_order_relaxed))
        return;
    struct msghdr m = *msg; /* (CMSG_NXTHDR takes no const) */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t k = 0; k < n; k++) {
            int fd;
            memcpy(&fd, data + k * sizeof fd, sizeof fd);
            ndf_settle_if(fd);
        }
    }
}

void ndf_forget(int fd)
{
    if (fd < 0 || (unsigned)fd >= ft_nfds || sh_vfork_child())
        return;
    pthread_mutex_lock(&ndf_mu);
    ndf_unhold(ndf_tab ? ndf_tab[fd] : NULL);
    pthread_mutex_unlock(&ndf_mu);
}

/*
 * Holds for a fork child's copies of the stand-ins, claimed by the parent before the fork (under
 * our pid: kept even if the parent closes its own at once), passed to the child's pid after it
 * (or given back if the fork failed).  The child takes them as its stand-ins' own.
 */
static struct {
    int fd;
    uint32_t hold, slot, gen;
} ndf_fk[EPH_STANDIN_HOLDS];
static uint32_t ndf_nfk;
static int ndf_fork_held; /* ndf_fork_mu taken by ndf_fork_prepare */
static pthread_mutex_t ndf_fork_mu = PTHREAD_MUTEX_INITIALIZER;

void ndf_fork_prepare(void)
{
    if (!atomic_load_explicit(&ndf_used, memory_order_relaxed))
        return;
    pthread_mutex_lock(&ndf_fork_mu); /* to ndf_fork_parent: one fork's list at a time */
    ndf_fork_held = 1;
    ndf_nfk = 0;
    uint32_t hwm = atomic_load(&ft_hwm);
    pthread_mutex_lock(&ndf_mu);
    for (uint32_t fd = 0; fd < hwm && ndf_nfk < EPH_STANDIN_HOLDS; fd++) {
        struct ndf_ent *e = ndf_tab && ft_mdirfd((int)fd) && (int)fd != ndf_base ? ndf_tab[fd] : NULL;
        uint32_t k = e && e->hold && e->slot != NDF_GONE ? ndf_claim(e->slot, e->gen) : 0;
        if (k) {
            ndf_fk[ndf_nfk].fd = (int)fd;
            ndf_fk[ndf_nfk].slot = e->slot;
            ndf_fk[ndf_nfk].gen = e->gen;
            ndf_fk[ndf_nfk++].hold = k;
        }
    }
    pthread_mutex_unlock(&ndf_mu);
}

void ndf_fork_parent(pid_t pid)
{
    if (!ndf_fork_held)
        return;
    uint32_t me = eph_lock_self();
    for (uint32_t i = 0; i < ndf_nfk; i++) {
        if (pid > 0)
            eph_hold_pass(sh.hdr, ndf_fk[i].hold, me, (uint32_t)pid);
        else
            eph_hold_give(sh.hdr, ndf_fk[i].hold, me);
    }
    ndf_nfk = 0;
    ndf_fork_held = 0;
    pthread_mutex_unlock(&ndf_fork_mu);
}

void ndf_after_fork(void)
{
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&ndf_mu, &fresh, sizeof fresh);
    memcpy(&ndf_fork_mu, &fresh, sizeof fresh);
    ndf_fork_held = 0;
    if (!ndf_tab)
        return;
    /* The parent's holds are the parent's: ours are the ones it claimed for us. */
    for (uint32_t fd = 0, hwm = atomic_load(&ft_hwm); fd < hwm && fd < ft_nfds; fd++)
        if (ndf_tab[fd])
            ndf_tab[fd]->hold = 0;
    /* The marks came along in a table the parent shares until the copy (fdtable.c,
     * ft_after_fork_child): one its close cleared first is set again, if the kernel's fd here is
     * still on our removed directory. */
    struct stat bst, st;
    int have_base = ndf_nfk && ndf_base >= 0 && sys.fstat(ndf_base, &bst) == 0;
    for (uint32_t i = 0; i < ndf_nfk; i++) {
        int fd = ndf_fk[i].fd;
        if (!ndf_tab[fd] || ndf_tab[fd]->slot != ndf_fk[i].slot || ndf_tab[fd]->gen != ndf_fk[i].gen)
            continue; /* closed and opened again by another thread meanwhile: the hold goes with us */
        ndf_tab[fd]->hold = ndf_fk[i].hold;
        if (ft_mdirfd(fd) || !have_base || sys.fstat(fd, &st) < 0 || st.st_dev != bst.st_dev ||
            st.st_ino != bst.st_ino)
            continue;
        ft_lock();
        if (!ft_fds[fd].desc1 && !(ft_fds[fd].flags & FT_PRIV))
            ft_set_flags(fd, FT_ROOTFD | FT_MDIRFD);
        ft_unlock();
    }
    ndf_nfk = 0;
}
