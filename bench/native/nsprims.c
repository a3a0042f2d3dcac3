/*
 * nsprims - the building blocks of a namespace at memory speed (issue 15's design, in
 * docs/ARCHITECTURE.md), measured side by side on this kernel in one run.
 *
 *   nsprims [--dir DIR] [--rounds N] [--scale PERCENT]
 *
 * DIR is a tmpfs directory (default /dev/shm): the kernel's own create/unlink there is the
 * reference a namespace in shared memory has to beat.  Each group of primitives is timed in rounds
 * of one lap per primitive, in rotating order (reversed every other cycle), and every lap is
 * compared with its group's reference lap of the same round: the table gives the median lap
 * (ns per operation) and the median (quartiles) of the per-round ratios, so that a burst of other
 * work on a busy machine spoils a round, not the comparison.
 *
 * Groups:
 *   birth   a 4 KiB file made, written and destroyed: tmpfs openat(O_CREAT) + write + close +
 *           unlink (reference), against memfd_create with and without a mapping, and against a
 *           memfd taken from a pool and given back emptied (ftruncate to 0);
 *   handoff an fd for a memfd another process holds: open(/proc/PID/fd/N) (reference),
 *           pidfd_getfd, a request answered with SCM_RIGHTS over a SOCK_SEQPACKET socket (today's
 *           daemon round trip), the same round trip without an fd, a request answered with 32 fds
 *           in one message (a pool refill; per fd), and an fd passed with SCM_RIGHTS to oneself
 *           (the transfer without the context switches);
 *   small   4 KiB reads and writes of a small memfd: pread (reference), pwrite, memcpy from and to a
 *           mapping, and mmap + munmap of it (what a mapping costs a file opened once);
 *   lock    an uncontended lock and unlock in MAP_SHARED memory: the project's futex lock
 *           (include/ephemera/lock.h, reference) against a PTHREAD_MUTEX_ROBUST |
 *           PTHREAD_PROCESS_SHARED mutex; and both contended by two processes.
 *
 * Then robust-mutex recovery: a child takes the mutex and is killed with SIGKILL; the time from the
 * kill until the parent's pthread_mutex_lock returns EOWNERDEAD, and what the kernel left behind
 * (the mutex usable after pthread_mutex_consistent).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/proto.h"

#define NP_SMALL 4096
#define NP_MAX_PRIMS 8

static uint64_t np_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void np_die(const char *what) {
    fprintf(stderr, "nsprims: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Everything the primitives share: the tmpfs directory, the holder process, a small memfd. */
struct np_ctx {
    int dirfd;
    pid_t holder;      /* a child that holds held_fd and answers fd requests on sock */
    int pidfd;         /* pidfd of the holder */
    int held_fd;       /* the memfd's number in the holder (same number as here before we closed it) */
    int sock;          /* SEQPACKET to the holder */
    int self[2];       /* SEQPACKET pair to ourselves */
    int small_fd;      /* a 4 KiB memfd */
    unsigned char *small_map;
    int pool[1 << 12]; /* memfds made ahead of time */
    int pool_n;
    unsigned char buf[NP_SMALL];
    eph_lock_t *elock;
    pthread_mutex_t *rmutex;
    struct np_slot *table; /* NP_SLOTS, in MAP_SHARED memory */
    uint64_t sink;
};

/*
 * A path table slot as a namespace in shared memory might keep it (linear probing, tombstones):
 * enough to time an insert and a removal under the lock, not the design's table itself.
 */
#define NP_SLOTS 4096u
struct np_slot {
    uint32_t hash;  /* 0 empty, 1 tombstone */
    uint32_t inode;
    char name[120];
};

static uint32_t np_hash(const char *p) {
    uint32_t h = eph_path_hash(p);
    return h < 2 ? h + 2 : h;
}

static void np_lock_robust(pthread_mutex_t *m) {
    int rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) pthread_mutex_consistent(m);
    else if (rc) { errno = rc; np_die("pthread_mutex_lock"); }
}

/* Insert name (absent) under the robust lock; returns its slot. */
static uint32_t np_table_insert(struct np_ctx *c, const char *name, uint32_t inode) {
    uint32_t h = np_hash(name), i = h & (NP_SLOTS - 1), first_free = UINT32_MAX;
    np_lock_robust(c->rmutex);
    for (;; i = (i + 1) & (NP_SLOTS - 1)) {
        struct np_slot *s = &c->table[i];
        if (s->hash == 0) break;
        if (s->hash == 1 && first_free == UINT32_MAX) first_free = i;
        if (s->hash == h && !strcmp(s->name, name)) { errno = EEXIST; np_die("table insert"); }
    }
    if (first_free != UINT32_MAX) i = first_free;
    struct np_slot *s = &c->table[i];
    s->inode = inode;
    strcpy(s->name, name);
    atomic_thread_fence(memory_order_release);
    s->hash = h;
    pthread_mutex_unlock(c->rmutex);
    return i;
}

static void np_table_remove(struct np_ctx *c, const char *name) {
    uint32_t h = np_hash(name), i = h & (NP_SLOTS - 1);
    np_lock_robust(c->rmutex);
    for (;; i = (i + 1) & (NP_SLOTS - 1)) {
        struct np_slot *s = &c->table[i];
        if (s->hash == 0) { errno = ENOENT; np_die("table remove"); }
        if (s->hash == h && !strcmp(s->name, name)) {
            s->hash = 1;
            break;
        }
    }
    pthread_mutex_unlock(c->rmutex);
}

typedef void (*np_fn)(struct np_ctx *, uint64_t n);

struct np_prim {
    const char *name;
    np_fn fn;
    uint64_t ops;     /* per lap at 100% */
    uint64_t quantum; /* a lap's operations are a multiple of this (0: any) */
};

/* --- birth: a 4 KiB file made, written, destroyed --- */
static void np_tmpfs_create(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = openat(c->dirfd, "nsprims-f", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) np_die("openat O_CREAT");
        if (write(fd, c->buf, NP_SMALL) != NP_SMALL) np_die("write");
        close(fd);
        if (unlinkat(c->dirfd, "nsprims-f", 0) < 0) np_die("unlinkat");
    }
}

static void np_memfd_mapped(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = memfd_create("nsprims", MFD_CLOEXEC);
        if (fd < 0) np_die("memfd_create");
        if (ftruncate(fd, NP_SMALL) < 0) np_die("ftruncate");
        unsigned char *p = mmap(NULL, NP_SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) np_die("mmap");
        memcpy(p, c->buf, NP_SMALL);
        munmap(p, NP_SMALL);
        close(fd);
    }
}

static void np_memfd_pwrite(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = memfd_create("nsprims", MFD_CLOEXEC);
        if (fd < 0) np_die("memfd_create");
        if (pwrite(fd, c->buf, NP_SMALL, 0) != NP_SMALL) np_die("pwrite");
        close(fd);
    }
}

/* A pooled memfd: write into it, then empty it (ftruncate 0 frees its pages) and put it back. */
static void np_pool_pwrite(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = c->pool[i % (uint64_t)c->pool_n];
        if (pwrite(fd, c->buf, NP_SMALL, 0) != NP_SMALL) np_die("pwrite (pool)");
        if (ftruncate(fd, 0) < 0) np_die("ftruncate (pool)");
    }
}

/*
 * The design's path for the same work, in one process: the name inserted in a shared table under
 * the robust lock, a pooled memfd given a program fd number (F_DUPFD from 0, as open(2) would
 * number it), 4 KiB written with pwrite (no mapping for a small file), closed, the name removed
 * under the lock, and the memory given back (ftruncate 0: the background reclaim's work, counted
 * here because on 2 cores background work is not free).
 */
static void np_design_create(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int pooled = c->pool[i % (uint64_t)c->pool_n];
        np_table_insert(c, "/tmp/some/dir/nsprims-f", (uint32_t)i);
        int fd = fcntl(pooled, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) np_die("F_DUPFD");
        if (pwrite(fd, c->buf, NP_SMALL, 0) != NP_SMALL) np_die("pwrite (design)");
        close(fd);
        np_table_remove(c, "/tmp/some/dir/nsprims-f");
        if (ftruncate(pooled, 0) < 0) np_die("ftruncate (design)");
    }
}

/* --- handoff: an fd for a memfd another process holds --- */
static void np_proc_open(struct np_ctx *c, uint64_t n) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)c->holder, c->held_fd);
    for (uint64_t i = 0; i < n; i++) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) np_die("open /proc/PID/fd/N");
        close(fd);
    }
}

static void np_pidfd_getfd(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int fd = (int)syscall(SYS_pidfd_getfd, c->pidfd, c->held_fd, 0);
        if (fd < 0) np_die("pidfd_getfd");
        close(fd);
    }
}

/* One request to the holder; with want_fd its answer carries the memfd. */
static void np_round_trip(struct np_ctx *c, uint64_t n, uint32_t want_fd) {
    for (uint64_t i = 0; i < n; i++) {
        if (send(c->sock, &want_fd, sizeof want_fd, 0) != sizeof want_fd) np_die("send");
        uint32_t reply;
        struct iovec iov = {&reply, sizeof reply};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        union eph_fd_cmsg u;
        eph_msg_control(&m, &u);
        if (recvmsg(c->sock, &m, MSG_CMSG_CLOEXEC) != sizeof reply) np_die("recvmsg");
        int fd = eph_msg_fd(&m);
        if (want_fd && fd < 0) {
            errno = EPROTO;
            np_die("no fd in the holder's answer");
        }
        if (fd >= 0) close(fd);
    }
}

static void np_scm_round_trip(struct np_ctx *c, uint64_t n) { np_round_trip(c, n, 1); }

/* A pool refill: one request answered with NP_BATCH fds in one message; n counts fds. */
#define NP_BATCH 32
static void np_scm_batch(struct np_ctx *c, uint64_t n) {
    for (uint64_t done = 0; done < n; done += NP_BATCH) {
        uint32_t want = NP_BATCH;
        if (send(c->sock, &want, sizeof want, 0) != sizeof want) np_die("send (batch)");
        uint32_t reply;
        struct iovec iov = {&reply, sizeof reply};
        union { char buf[CMSG_SPACE(NP_BATCH * sizeof(int))]; struct cmsghdr align; } u;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        if (recvmsg(c->sock, &m, MSG_CMSG_CLOEXEC) != sizeof reply) np_die("recvmsg (batch)");
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        if (!h || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(NP_BATCH * sizeof(int)) || (m.msg_flags & MSG_CTRUNC)) {
            errno = EPROTO;
            np_die("the batch did not carry all its fds");
        }
        int fds[NP_BATCH];
        memcpy(fds, CMSG_DATA(h), sizeof fds);
        for (int i = 0; i < NP_BATCH; i++) close(fds[i]);
    }
}
static void np_bare_round_trip(struct np_ctx *c, uint64_t n) { np_round_trip(c, n, 0); }

static void np_scm_self(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint32_t x = 1;
        struct iovec iov = {&x, sizeof x};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        union eph_fd_cmsg u;
        eph_msg_attach_fd(&m, &u, c->small_fd);
        if (sendmsg(c->self[0], &m, 0) != sizeof x) np_die("sendmsg (self)");
        struct msghdr r = {.msg_iov = &iov, .msg_iovlen = 1};
        eph_msg_control(&r, &u);
        if (recvmsg(c->self[1], &r, MSG_CMSG_CLOEXEC) != sizeof x) np_die("recvmsg (self)");
        int fd = eph_msg_fd(&r);
        if (fd < 0) np_die("no fd (self)");
        close(fd);
    }
}

/* --- small: 4 KiB I/O on a small memfd --- */
static void np_pread(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (pread(c->small_fd, c->buf, NP_SMALL, 0) != NP_SMALL) np_die("pread");
        c->sink += c->buf[7];
    }
}

static void np_pwrite(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        if (pwrite(c->small_fd, c->buf, NP_SMALL, 0) != NP_SMALL) np_die("pwrite");
}

static void np_map_read(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        memcpy(c->buf, c->small_map, NP_SMALL);
        __asm__ volatile("" ::: "memory");
        c->sink += c->buf[7];
    }
}

static void np_map_write(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        memcpy(c->small_map, c->buf, NP_SMALL);
        __asm__ volatile("" ::: "memory");
    }
}

static void np_mmap_munmap(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        unsigned char *p = mmap(NULL, NP_SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, c->small_fd, 0);
        if (p == MAP_FAILED) np_die("mmap");
        c->sink += p[7]; /* fault the page in, as the first read through it would */
        munmap(p, NP_SMALL);
    }
}

/* --- lock: uncontended --- */
static void np_eph_lock(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        eph_lock(c->elock);
        c->sink++;
        eph_unlock(c->elock);
    }
}

static void np_robust_lock(struct np_ctx *c, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        int rc = pthread_mutex_lock(c->rmutex);
        if (rc == EOWNERDEAD) pthread_mutex_consistent(c->rmutex);
        else if (rc) { errno = rc; np_die("pthread_mutex_lock"); }
        c->sink++;
        pthread_mutex_unlock(c->rmutex);
    }
}

struct np_group {
    const char *name;
    const char *what;
    struct np_prim prims[NP_MAX_PRIMS]; /* prims[0] is the reference */
};

static const struct np_group np_groups[] = {
    {"birth", "a 4 KiB file made, written, destroyed",
     {{"tmpfs openat(O_CREAT)+write+close+unlink", np_tmpfs_create, 200, 0},
      {"memfd_create+ftruncate+mmap+memcpy+munmap+close", np_memfd_mapped, 200, 0},
      {"memfd_create+pwrite+close", np_memfd_pwrite, 200, 0},
      {"pooled memfd: pwrite+ftruncate(0)", np_pool_pwrite, 200, 0},
      {"design: table insert+F_DUPFD pooled memfd+pwrite+close+table remove+ftruncate(0)", np_design_create, 200, 0}}},
    {"handoff", "an fd for a memfd another process holds",
     {{"open(/proc/PID/fd/N)+close", np_proc_open, 200, 0},
      {"pidfd_getfd+close", np_pidfd_getfd, 200, 0},
      {"SEQPACKET request, answer with SCM_RIGHTS, close", np_scm_round_trip, 200, 0},
      {"SEQPACKET request and answer, no fd", np_bare_round_trip, 200, 0},
      {"a batch of 32 fds in one SCM_RIGHTS answer, per fd (close included)", np_scm_batch, 640, NP_BATCH},
      {"SCM_RIGHTS to oneself, close", np_scm_self, 200, 0}}},
    {"small", "4 KiB I/O on a 4 KiB memfd",
     {{"pread 4 KiB", np_pread, 2000, 0},
      {"pwrite 4 KiB", np_pwrite, 2000, 0},
      {"memcpy 4 KiB from a mapping", np_map_read, 2000, 0},
      {"memcpy 4 KiB to a mapping", np_map_write, 2000, 0},
      {"mmap+first touch+munmap", np_mmap_munmap, 500, 0}}},
    {"lock", "uncontended lock+unlock in MAP_SHARED memory",
     {{"eph_lock+eph_unlock (lock.h)", np_eph_lock, 20000, 0},
      {"robust pshared pthread_mutex lock+unlock", np_robust_lock, 20000, 0}}},
};

static int np_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double np_q(double *xs, int n, double q) {
    qsort(xs, (size_t)n, sizeof xs[0], np_cmp);
    double pos = (n - 1) * q;
    int lo = (int)pos;
    int hi = lo + 1 < n ? lo + 1 : lo;
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

static void np_group(struct np_ctx *c, const struct np_group *g, int rounds, unsigned scale) {
    int np = 0;
    while (np < NP_MAX_PRIMS && g->prims[np].name) np++;
    double *lap = calloc((size_t)(np * rounds), sizeof *lap);
    double *ratio = calloc((size_t)rounds, sizeof *ratio), *own = calloc((size_t)rounds, sizeof *own);
    if (!lap || !ratio || !own) np_die("calloc");
    for (int j = 0; j < np; j++) g->prims[j].fn(c, 1 + g->prims[j].ops / 20); /* warm-up, untimed */
    for (int r = 0; r < rounds; r++) {
        int backwards = (r / np) % 2;
        for (int k = 0; k < np; k++) {
            int j = (r + (backwards ? np - k : k)) % np;
            uint64_t n = g->prims[j].ops * scale / 100, q = g->prims[j].quantum;
            if (n == 0) n = 1;
            if (q) n = (n + q - 1) / q * q;
            uint64_t t0 = np_now();
            g->prims[j].fn(c, n);
            lap[j * rounds + r] = (double)(np_now() - t0) / (double)n;
        }
    }
    printf("\n%s: %s (%d rounds)\n\n", g->name, g->what, rounds);
    printf("| primitive | median ns/op | ÷ %s, median (q1–q3) of per-round ratios |\n| --- | --- | --- |\n", g->prims[0].name);
    for (int j = 0; j < np; j++) {
        for (int r = 0; r < rounds; r++) ratio[r] = lap[j * rounds + r] / lap[r];
        double q1 = np_q(ratio, rounds, 0.25), q2 = np_q(ratio, rounds, 0.5), q3 = np_q(ratio, rounds, 0.75);
        memcpy(own, &lap[j * rounds], (size_t)rounds * sizeof *own); /* np_q sorts: keep lap in round order */
        double med = np_q(own, rounds, 0.5);
        printf("| %s | %.0f | %.3f× (%.3f–%.3f) |\n", g->prims[j].name, med, q2, q1, q3);
    }
    free(lap);
    free(ratio);
    free(own);
}

/* The holder: answers each request with the memfd (or without), until the socket closes. */
static void np_holder_loop(int sock, int memfd) {
    for (;;) {
        uint32_t want;
        ssize_t r = recv(sock, &want, sizeof want, 0);
        if (r <= 0) _exit(0);
        uint32_t reply = 0;
        struct iovec iov = {&reply, sizeof reply};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        union eph_fd_cmsg u;
        union { char buf[CMSG_SPACE(NP_BATCH * sizeof(int))]; struct cmsghdr align; } ub;
        if (want == NP_BATCH) {
            int fds[NP_BATCH];
            for (int i = 0; i < NP_BATCH; i++) fds[i] = memfd;
            memset(&ub, 0, sizeof ub);
            m.msg_control = ub.buf;
            m.msg_controllen = sizeof ub.buf;
            struct cmsghdr *h = CMSG_FIRSTHDR(&m);
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_RIGHTS;
            h->cmsg_len = CMSG_LEN(sizeof fds);
            memcpy(CMSG_DATA(h), fds, sizeof fds);
        } else if (want) {
            eph_msg_attach_fd(&m, &u, memfd);
        }
        if (sendmsg(sock, &m, 0) != sizeof reply) _exit(1);
    }
}

/* Two processes, each taking the lock `per` times: ns per lock+unlock pair over both. */
static double np_contended(struct np_ctx *c, int robust, uint64_t per) {
    _Atomic uint32_t *go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (go == MAP_FAILED) np_die("mmap");
    pid_t kid = fork();
    if (kid < 0) np_die("fork");
    if (kid == 0) {
        eph_lock_self_init();
        while (!atomic_load(go)) __builtin_ia32_pause();
        if (robust) np_robust_lock(c, per);
        else np_eph_lock(c, per);
        _exit(0);
    }
    uint64_t t0 = np_now();
    atomic_store(go, 1);
    if (robust) np_robust_lock(c, per);
    else np_eph_lock(c, per);
    waitpid(kid, NULL, 0);
    double ns = (double)(np_now() - t0) / (double)(2 * per);
    munmap(go, 4096);
    return ns;
}

/*
 * A holder killed inside the robust mutex: the child locks and reports, the parent kills it
 * and takes the lock.  Returns the median ns from the kill to EOWNERDEAD over `times` trials.
 */
static double np_owner_dead(struct np_ctx *c, int times, int *all_eownerdead, int *usable) {
    double *ns = calloc((size_t)times, sizeof *ns);
    if (!ns) np_die("calloc");
    *all_eownerdead = 1;
    *usable = 1;
    for (int t = 0; t < times; t++) {
        int p[2];
        if (pipe(p) < 0) np_die("pipe");
        pid_t kid = fork();
        if (kid < 0) np_die("fork");
        if (kid == 0) {
            close(p[0]);
            if (pthread_mutex_lock(c->rmutex) == EOWNERDEAD) pthread_mutex_consistent(c->rmutex);
            if (write(p[1], "L", 1) != 1) _exit(1);
            pause();
            _exit(0);
        }
        close(p[1]);
        char b;
        if (read(p[0], &b, 1) != 1) np_die("read (child locked)");
        close(p[0]);
        uint64_t t0 = np_now();
        kill(kid, SIGKILL);
        int rc = pthread_mutex_lock(c->rmutex);
        ns[t] = (double)(np_now() - t0);
        if (rc != EOWNERDEAD) *all_eownerdead = 0;
        if (rc == EOWNERDEAD && pthread_mutex_consistent(c->rmutex) != 0) *usable = 0;
        if (pthread_mutex_unlock(c->rmutex) != 0) *usable = 0;
        if (pthread_mutex_lock(c->rmutex) != 0) *usable = 0; /* consistent again: a plain lock */
        pthread_mutex_unlock(c->rmutex);
        waitpid(kid, NULL, 0);
    }
    double med = np_q(ns, times, 0.5);
    free(ns);
    return med;
}

int main(int argc, char **argv) {
    const char *dir = "/dev/shm";
    int rounds = 30;
    unsigned scale = 100;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--dir")) dir = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--rounds")) rounds = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--scale")) scale = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: nsprims [--dir TMPFS_DIR] [--rounds N] [--scale PERCENT]\n");
            return 2;
        }
    }
    if (rounds < 4 || scale == 0 || scale > 1000) {
        fprintf(stderr, "nsprims: --rounds must be >= 4 and --scale 1-1000\n");
        return 2;
    }
    static struct np_ctx c;
    eph_lock_self_init(); /* the pid eph_lock's words carry, as the shim and the daemon set it */
    memset(c.buf, 0xA5, sizeof c.buf);
    c.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c.dirfd < 0) np_die(dir);

    int memfd = memfd_create("nsprims-held", 0);
    if (memfd < 0 || ftruncate(memfd, NP_SMALL) < 0) np_die("memfd_create (held)");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) np_die("socketpair");
    c.holder = fork();
    if (c.holder < 0) np_die("fork");
    if (c.holder == 0) {
        close(sv[0]);
        np_holder_loop(sv[1], memfd);
    }
    close(sv[1]);
    c.sock = sv[0];
    c.held_fd = memfd;
    c.pidfd = (int)syscall(SYS_pidfd_open, c.holder, 0);
    if (c.pidfd < 0) np_die("pidfd_open");
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c.self) < 0) np_die("socketpair (self)");

    c.small_fd = memfd_create("nsprims-small", MFD_CLOEXEC);
    if (c.small_fd < 0 || pwrite(c.small_fd, c.buf, NP_SMALL, 0) != NP_SMALL) np_die("small memfd");
    c.small_map = mmap(NULL, NP_SMALL, PROT_READ | PROT_WRITE, MAP_SHARED, c.small_fd, 0);
    if (c.small_map == MAP_FAILED) np_die("mmap small");
    c.pool_n = 256;
    for (int i = 0; i < c.pool_n; i++) {
        c.pool[i] = memfd_create("nsprims-pool", MFD_CLOEXEC);
        if (c.pool[i] < 0) np_die("memfd_create (pool)");
    }

    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) np_die("mmap shared");
    c.table = mmap(NULL, NP_SLOTS * sizeof *c.table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c.table == MAP_FAILED) np_die("mmap table");
    c.elock = (eph_lock_t *)shared;
    c.rmutex = (pthread_mutex_t *)(shared + 64);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(c.rmutex, &a) != 0) np_die("pthread_mutex_init");

    printf("nsprims: dir %s, %d rounds, scale %u%%, kernel ", dir, rounds, scale);
    fflush(stdout);
    if (system("uname -r") != 0) printf("?\n");
    for (size_t g = 0; g < sizeof np_groups / sizeof np_groups[0]; g++) np_group(&c, &np_groups[g], rounds, scale);

    uint64_t per = 200000ull * scale / 100;
    double ce = np_contended(&c, 0, per), cr = np_contended(&c, 1, per);
    printf("\ncontended: two processes, %" PRIu64 " lock+unlock each\n\n| lock | ns per lock+unlock |\n| --- | --- |\n", per);
    printf("| eph_lock (lock.h) | %.0f |\n| robust pshared pthread_mutex | %.0f |\n", ce, cr);

    int eod, usable, trials = (int)(50 * scale / 100) + 1;
    double dead = np_owner_dead(&c, trials, &eod, &usable);
    printf("\nrobust mutex, holder killed with SIGKILL while holding it (%d trials): kill -> EOWNERDEAD in a median %.0f µs; "
           "EOWNERDEAD every time: %s; usable after pthread_mutex_consistent: %s\n",
           trials, dead / 1000, eod ? "yes" : "NO", usable ? "yes" : "NO");

    close(c.sock); /* the holder exits */
    waitpid(c.holder, NULL, 0);
    printf("(checksum %" PRIu64 ")\n", c.sink);
    return eod && usable ? 0 : 1;
}
