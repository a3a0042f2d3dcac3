/*
 * The keeper's copies of the daemon's fds, and what is done with them when the daemon dies
 * (keeper.h).
 */
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ephemera/nslock.h"
#include "ephemera/rescue.h"
#include "ephemera/shm.h"

void keeper_init(struct keeper *k)
{
    *k = (struct keeper){.sock = -1, .region = -1};
}

int keeper_link(struct keeper *k, int *daemon_end)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    if (k->sock >= 0) {
        keeper_pump(k); /* what the last daemon said before it died */
        close(k->sock);
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    k->sock = sv[0];
    k->eof = false;
    *daemon_end = sv[1];
    return 0;
}

static void drop(struct keeper *k, int num)
{
    if (num < 0 || num >= k->cap || k->held[num].fd < 0)
        return;
    close(k->held[num].fd);
    k->held[num].fd = -1;
    if (num == k->region)
        k->region = -1;
}

static int hold(struct keeper *k, const struct eph_keeper_entry *e, int fd)
{
    if (e->fd < 0 || e->fd > (1 << 24))
        return -1;
    if (e->fd >= k->cap) {
        int cap = k->cap ? k->cap : 256;
        while (cap <= e->fd)
            cap *= 2;
        struct keeper_held *h = realloc(k->held, sizeof *h * (size_t)cap);
        if (h == NULL)
            return -1;
        for (int i = k->cap; i < cap; i++)
            h[i].fd = -1;
        k->held = h;
        k->cap = cap;
    }
    drop(k, e->fd);
    k->held[e->fd] = (struct keeper_held){.fd = fd, .kind = e->kind, .arg = e->arg, .gen = e->gen};
    if (e->kind == EPH_KEEP_REGION)
        k->region = e->fd;
    return 0;
}

void keeper_pump(struct keeper *k)
{
    while (k->sock >= 0) {
        struct {
            struct eph_keeper_msg h;
            struct eph_keeper_entry e[EPH_KEEPER_BATCH];
        } m;
        union {
            char buf[CMSG_SPACE(sizeof(int) * EPH_KEEPER_BATCH)];
            struct cmsghdr align;
        } u;
        struct iovec iov = {&m, sizeof m};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        ssize_t r = recvmsg(k->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            k->eof = true; /* the daemon's end is closed: it exited or died */
        if (r <= 0)
            return; /* nothing more now (EAGAIN), or ever */
        int fds[EPH_KEEPER_BATCH], nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                memcpy(fds + nfds, CMSG_DATA(c), sizeof(int) * (size_t)n);
                nfds += n;
            }
        uint32_t n = m.h.n;
        bool ok = (size_t)r >= sizeof m.h && m.h.magic == EPH_KEEPER_MAGIC && n <= EPH_KEEPER_BATCH &&
                  (size_t)r == sizeof m.h + n * sizeof m.e[0] && !(mh.msg_flags & MSG_CTRUNC) &&
                  (m.h.op == EPH_KEEPER_HOLD ? nfds == (int)n : m.h.op == EPH_KEEPER_DROP && nfds == 0);
        for (uint32_t i = 0; ok && i < n; i++) {
            if (m.h.op == EPH_KEEPER_DROP)
                drop(k, m.e[i].fd);
            else if (hold(k, &m.e[i], fds[i]) < 0)
                ok = false;
            else
                fds[i] = -1;
        }
        for (int i = 0; i < nfds; i++)
            if (fds[i] >= 0 && !ok)
                close(fds[i]);
        if (!ok)
            k->broken = true;
    }
}

int keeper_manifest(const struct keeper *k)
{
    int fd = memfd_create("ephemera-manifest", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (int i = 0; i < k->cap; i++) {
        if (k->held[i].fd < 0)
            continue;
        struct eph_keeper_entry e = {.fd = i, .kind = k->held[i].kind, .arg = k->held[i].arg, .gen = k->held[i].gen};
        if (write(fd, &e, sizeof e) != (ssize_t)sizeof e) {
            int err = errno ? errno : EIO;
            close(fd);
            return -err;
        }
    }
    return fd;
}

int keeper_plan(const struct keeper *k, const int *extra, int *extra_at, int nextra, struct keeper_plan *p)
{
    int held = 0;
    for (int i = 0; i < k->cap; i++)
        held += k->held[i].fd >= 0;
    *p = (struct keeper_plan){0};
    size_t n = (size_t)held + (size_t)nextra;
    p->src = malloc(sizeof(int) * (n ? n : 1));
    p->dst = malloc(sizeof(int) * (n ? n : 1));
    p->tmp = malloc(sizeof(int) * (n ? n : 1));
    if (p->src == NULL || p->dst == NULL || p->tmp == NULL) {
        keeper_plan_free(p);
        return -ENOMEM;
    }
    int high = 3;
    for (int i = 0; i < k->cap; i++) {
        if (k->held[i].fd < 0)
            continue;
        p->src[p->n] = k->held[i].fd;
        p->dst[p->n++] = i;
        if (i >= high)
            high = i + 1;
        if (k->held[i].fd >= high)
            high = k->held[i].fd + 1;
    }
    /* The extras take the lowest numbers from 3 up that no held fd needs. */
    int next = 3;
    for (int j = 0; j < nextra; j++) {
        while (next < k->cap && k->held[next].fd >= 0)
            next++;
        extra_at[j] = next++;
        p->src[p->n] = extra[j];
        p->dst[p->n++] = extra_at[j];
        if (extra_at[j] >= high)
            high = extra_at[j] + 1;
        if (extra[j] >= high)
            high = extra[j] + 1;
    }
    p->high = high;
    return 0;
}

int keeper_place(const struct keeper_plan *p, int *keep)
{
    /* First every fd above all the numbers involved, then each down to its number: no dup2 can
     * then overwrite an fd that is still to be moved, nor *keep (the child's own, moved up too). */
    if ((*keep = fcntl(*keep, F_DUPFD_CLOEXEC, p->high)) < 0)
        return -errno;
    for (int i = 0; i < p->n; i++)
        if ((p->tmp[i] = fcntl(p->src[i], F_DUPFD_CLOEXEC, p->high)) < 0)
            return -errno;
    for (int i = 0; i < p->n; i++)
        if (dup2(p->tmp[i], p->dst[i]) < 0)
            return -errno;
    return 0;
}

void keeper_plan_free(struct keeper_plan *p)
{
    free(p->src);
    free(p->dst);
    free(p->tmp);
    *p = (struct keeper_plan){0};
}

/* Our copy of the daemon's fd number num of the given kind, or -1. */
static int copy_of(const struct keeper *k, int num, uint32_t kind)
{
    if (num < 0 || num >= k->cap || k->held[num].fd < 0 || k->held[num].kind != kind)
        return -1;
    return k->held[num].fd;
}

static struct eph_shm_header *map_region(const struct keeper *k, size_t *size)
{
    int fd = copy_of(k, k->region, EPH_KEEP_REGION);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct eph_shm_header))
        return NULL;
    struct eph_shm_header *h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED)
        return NULL;
    if (h->magic != EPH_SHM_MAGIC || h->version != EPH_SHM_VERSION || h->header_size != sizeof *h ||
        h->total_size != (uint64_t)st.st_size) {
        munmap(h, (size_t)st.st_size);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return h;
}

int keeper_note(const struct keeper *k, uint32_t down, struct keeper_files *f)
{
    size_t size;
    struct eph_shm_header *h = map_region(k, &size);
    *f = (struct keeper_files){0};
    if (h == NULL)
        return -ENOENT;
    atomic_store(&h->daemon_down, down);
    struct eph_inode *in = eph_inodes(h);
    uint32_t hwm = atomic_load(&h->inode_hwm);
    for (uint32_t i = 0; i < hwm && i < h->ninodes; i++) {
        uint32_t st = atomic_load(&in[i].state);
        if (st == EPH_FREE)
            continue;
        f->files++;
        f->in_mem += st != EPH_DISK;
    }
    /* Unmapped again: the daemon's sweep of leaked open counts waits while any other process maps it. */
    munmap(h, size);
    return 0;
}

/* The disk file of inode idx's unfinished eviction, or -1. */
static int moving_copy(const struct keeper *k, uint32_t idx, uint32_t gen)
{
    int fd = -1;
    for (int i = 0; i < k->cap; i++)
        if (k->held[i].fd >= 0 && k->held[i].kind == EPH_KEEP_DISK && k->held[i].arg == idx && k->held[i].gen == gen)
            fd = k->held[i].fd;
    return fd;
}

static int write_one(const struct keeper *k, uint32_t idx, struct eph_inode *in)
{
    int mem = copy_of(k, in->mem_fd, EPH_KEEP_MEM);
    if (mem < 0)
        return -EBADF;
    uint64_t size = atomic_load(&in->size);
    if (atomic_load(&in->state) == EPH_MOVING) {
        int dfd = moving_copy(k, idx, atomic_load(&in->gen));
        int e = dfd >= 0 ? eph_rescue_merge(mem, dfd, size) : 0;
        if (e < 0)
            return e;
    }
    int out = open(in->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return -errno;
    int e = eph_rescue_copy(mem, out, size);
    if (e == 0) {
        if (fchown(out, in->uid, in->gid) < 0) { /* another owner needs root: the bytes matter more */
        }
        fchmod(out, in->mode & 07777);
        struct timespec ts[2] = {
            {atomic_load(&in->atime_ns) / 1000000000, atomic_load(&in->atime_ns) % 1000000000},
            {atomic_load(&in->mtime_ns) / 1000000000, atomic_load(&in->mtime_ns) % 1000000000},
        };
        futimens(out, ts);
    }
    if (close(out) < 0 && e == 0)
        e = -errno;
    return e;
}

/* Directories made in memory (EPH_MDIR) are made on disk first, parents before children (shorter
 * paths first), so that a file deep in them lands at its path; one already there is kept. */
static void write_dirs(struct eph_inode *in, uint32_t hwm, struct jbuf *why)
{
    for (size_t len = 1; len < EPH_PATH_MAX; len++) {
        int more = 0;
        for (uint32_t i = 0; i < hwm; i++) {
            if (atomic_load(&in[i].state) != EPH_MDIR || !in[i].path[0])
                continue;
            size_t n = strnlen(in[i].path, EPH_PATH_MAX);
            more |= n > len;
            if (n != len)
                continue;
            if (mkdir(in[i].path, 0700) < 0 && errno != EEXIST) {
                jb_printf(why, "%s (a directory made in memory): mkdir: %s\n", in[i].path, strerror(errno));
                continue;
            }
            if (lchown(in[i].path, in[i].uid, in[i].gid) < 0) { /* another owner needs root */
            }
            chmod(in[i].path, in[i].mode & 07777);
        }
        if (!more)
            return;
    }
}

int keeper_writeback(const struct keeper *k, int *failed, struct jbuf *why)
{
    size_t size;
    *failed = 0;
    struct eph_shm_header *h = map_region(k, &size);
    if (h == NULL) {
        *failed = 1;
        jb_puts(why, "the region was never handed to the keeper, so the files in memory cannot be found\n");
        return 0;
    }
    /* A change the dead daemon left half made is finished or undone first (robust lock). */
    int locked = eph_ns_lock(h, NULL, NULL, NULL) == 0;
    struct eph_inode *in = eph_inodes(h);
    uint32_t hwm = atomic_load(&h->inode_hwm);
    int written = 0;
    write_dirs(in, hwm < h->ninodes ? hwm : h->ninodes, why);
    for (uint32_t i = 0; i < hwm && i < h->ninodes; i++) {
        uint32_t st = atomic_load(&in[i].state);
        if ((st != EPH_MEM && st != EPH_MOVING) || !in[i].path[0])
            continue;
        int e = write_one(k, i, &in[i]);
        if (e == 0) {
            written++;
            continue;
        }
        (*failed)++;
        jb_printf(why, "%s (%llu bytes): %s\n", in[i].path, (unsigned long long)atomic_load(&in[i].size),
                  e == -EBADF ? "its memfd was never handed to the keeper" : strerror(-e));
    }
    if (locked)
        eph_ns_unlock(h);
    munmap(h, size);
    return written;
}

void keeper_fini(struct keeper *k)
{
    for (int i = 0; i < k->cap; i++)
        if (k->held[i].fd >= 0)
            close(k->held[i].fd);
    free(k->held);
    if (k->sock >= 0)
        close(k->sock);
    keeper_init(k);
}
