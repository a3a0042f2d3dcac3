/*
 * shim/fdtable.c - the per-process fd table and mapping cache.
 *
 * ft_fds is a flat array indexed by fd, so the pass-through test on every
 * read/write is one load.  It is allocated with MAP_NORESERVE: untouched pages
 * cost nothing.  Each in-memory inode that this process has open is mapped
 * once (ft_map), with a generous virtual reservation so growth of the file
 * rarely needs a new mapping; superseded mappings stay valid until the last
 * local fd of the inode closes, because other threads may still be reading
 * through them.
 *
 * After the last local close, the mapping and a private O_CLOEXEC fd on the
 * memfd (numbered >= FT_PRIV_MIN, away from the numbers applications expect)
 * stay cached for a while, so reopening a file is a dup instead of a round
 * trip to the daemon.  At most FT_IDLE_MAX idle inodes are kept.  A cached
 * memfd keeps its pages (charged to the cgroup) even after the daemon freed
 * the inode, so the idle ones that lost their last name or left memory are
 * dropped at this process's next unlink, rename or new mapping (ft_sweep_idle).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

#include "fdtable.h"
#include "compiler.h"
#include "sys.h"
#include "init.h"
#include "rpc.h"
#include "fp_desc.h"
#include "fp_settle.h"

#define FT_MIN_RESERVE (1ull << 30)
#define FT_PRIV_MIN 512
#define FT_IDLE_MAX 64

/* Per fd: desc1 << 1 | the program's FD_CLOEXEC, for an fd that pidfd_getfd made (its kernel flag
 * is set whatever the program asked); 0: none.  Valid while the entry still names that desc. */
static _Atomic uint32_t *ft_ddesc;
static _Atomic uint32_t ft_ddesc_live; /* marks made since a walk last found none */

struct ft_hot ft_hot __attribute__((aligned(2048))); /* fdtable.h: sh_fcntl's one page */
_Atomic uint32_t ft_hwm;
struct ft_map *ft_maps;
static struct ft_old *ft_olds; /* indexed by inode slot, after the ddesc marks in ft_maps' mapping */
static uint32_t ft_idle_ino[FT_IDLE_MAX]; /* cached inodes with refs == 0, under ft_mu */
static int ft_idle;                     /* how many of ft_idle_ino are used */

static void idle_add(uint32_t inode)
{
    ft_idle_ino[ft_idle++] = inode;
}

static void idle_remove(uint32_t inode)
{
    for (int i = 0; i < ft_idle; i++)
        if (ft_idle_ino[i] == inode) {
            ft_idle_ino[i] = ft_idle_ino[--ft_idle];
            return;
        }
}
static pthread_mutex_t ft_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t ft_bytes;                 /* size of the ft_fds mapping: the table, then the in-flight page */
static _Atomic int ft_ledger_on;        /* ft_fds is a memfd the daemon holds as our ledger */
static _Atomic int ft_ledger_tried;     /* promotion started (or failed once: stay private) */
/* 1 from the start of the promotion until the daemon has answered its registration: no thread
 * takes a reference meanwhile (ledger_wait).  Stored before ft_ledger_tried, cleared after. */
static _Atomic uint32_t ft_ledger_pending;
static __thread int ft_registering;     /* this thread is the one registering the table */
static int ft_ledger_unsent = -1;       /* under ft_mu: the promoted table's memfd, still to register */
/*
 * A new image that took over references its predecessor listed (EPHEMERA_FDMAP) waits for the
 * daemon's answer to its registration, as every registration did before branch gccstart.  Its
 * table replaces the old image's, which the daemon retires (empties) only then; the old image's
 * copy of a fork child's table also comes from the parent (EPH_LEDGER_CHILD, on the parent's
 * connection).  Unanswered, the new image could drop an inherited reference and exit before the
 * daemon read either, and the parent's copy, read after the death, would give that reference back
 * a second time (killed.test.mjs's "held across exec", 1 run in 3 on a loaded machine).  A compile's
 * processes inherit no in-memory file and do not wait.
 */
static int ft_exec_inherited;
static int ft_unconfirmed = -1;         /* our copy's memfd, until we registered it ourselves */
static uint64_t ft_unconfirmed_ino;
/* Our registered table's memfd, kept above the program's numbers after it was sent, with the
 * daemon it was sent to: a daemon that dies before it reads the registration (which nobody
 * waits for) loses it, so it is sent again to the one that takes over (ledger_again). */
static int ft_kept = -1;
static pid_t ft_kept_pid;               /* whose: a fork child inherits the number, not the table */
static uint64_t ft_kept_ino;
static int ft_kept_daemon;
static int ft_kept_answered;            /* the daemon answered a registration of it (read it for sure) */

static void ledger_register(int table_fd, pid_t child, int answered);
static void ledger_keep(int fd, int daemon);

/* The promotion is over (registered, or failed: the table stays private): waiters go on. */
static void ledger_settled(void)
{
    atomic_store(&ft_ledger_pending, 0);
    eph_wake_all(&ft_ledger_pending);
}

/*
 * Another thread is making the table the ledger: wait until the daemon holds it.  A reference
 * taken before then lived only in this process (its in-flight note went to the private page that
 * the memfd's mapping then replaced, or the daemon had no table to find it in), so a SIGKILL in
 * that window lost it: one unlinked file left in memory in about 1 in 20 runs of nsconc's SIGKILL
 * case with a bystander (killed-refs).  The registration is one round trip, bounded by the RPC's
 * own wait for a restarted daemon (15 s); past 30 s we go on unlisted rather than hang.
 */
static void ledger_wait(void)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&ft_ledger_pending)) {
        eph_wait_change(&ft_ledger_pending, 1, 10 * 1000 * 1000);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 30) {
            sh_log("the fd table's registration took over 30 s: this thread's references go on unlisted");
            return;
        }
    }
}

#ifdef EPH_FAULTS
/* Test build only: EPHEMERA_LEDGER_DELAY_MS holds the promoted table back from the daemon that
 * long, this thread only (test/c/ledgerrace_test.c). */
static void ledger_test_delay(void)
{
    const char *v = getenv("EPHEMERA_LEDGER_DELAY_MS");
    long ms = v ? atol(v) : 0;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (ms > 0)
        nanosleep(&ts, NULL);
}
#else
static inline void ledger_test_delay(void) {}
#endif

void ft_lock(void) { pthread_mutex_lock(&ft_mu); }

/* fd's word for sh_fcntl (fdtable.h, struct ft_hot) from its entry. */
static uint32_t fw_of(uint32_t desc1, uint32_t flags)
{
    if (!desc1 || (flags & FT_DISK))
        return 0;
    return sh.descs[desc1 - 1].inode << FW_INODE_SHIFT | FW_MEM | (flags & FT_OWNDESC ? FW_OWNDESC : 0);
}

/* fd's word becomes w; stored only when it changes (a fork child that execs at once copies no page). */
static void fw_keep(uint32_t fd, uint32_t w)
{
    if (atomic_load_explicit(&ft_hot.fdw[fd], memory_order_relaxed) != w)
        atomic_store_explicit(&ft_hot.fdw[fd], w, memory_order_release);
}

void ft_set(int fd, uint32_t desc1, uint32_t flags)
{
    struct ft_entry *e = &ft_hot.fds[fd];
    /* desc1 != 0 is what readers test first: it is stored after the flags it comes with, and
     * cleared before the flags (the order of the stores each writer made before ft_set). */
    if (desc1) {
        e->flags = flags;
        atomic_signal_fence(memory_order_release);
        e->desc1 = desc1;
    } else {
        e->desc1 = 0;
        atomic_signal_fence(memory_order_release);
        e->flags = flags;
    }
    if ((unsigned)fd < FT_HOT_FDS)
        fw_keep((uint32_t)fd, fw_of(desc1, flags));
}

/* Every word from the table as it is (a fork child's, which may differ from the parent's words it
 * inherited).  Stores only where a word changes: a child that execs or exits at once copies no page. */
static void ft_hot_sync(void)
{
    uint32_t n = ft_fds ? ft_nfds : 0;
    for (uint32_t fd = 0; fd < FT_HOT_FDS; fd++)
        fw_keep(fd, fd < n ? fw_of(ft_fds[fd].desc1, ft_fds[fd].flags) : 0);
}

/*
 * A managed fd changes in two steps: the kernel's (open, dup2, close) and our
 * table's.  A fork between them gave the child a kernel fd table and a copy of
 * ours that disagree (a memfd served raw, past the file's size, or /dev/null
 * served as the file; test/c/forktable_test.c).  So each such change is a
 * reader of ft_fork_rw from before its kernel step until its table step, and
 * fork a writer from its copy of the table until the kernel has copied its fd
 * table.  Writers first, so a thread that changes fds in a loop cannot starve
 * a fork; a thread inside a change (or forking: atfork handlers may close fds
 * through us) does not take it again.
 */
static pthread_rwlock_t ft_fork_rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static __thread int ft_change_depth;

void ft_change_begin(void)
{
    if (ft_change_depth++ == 0)
        pthread_rwlock_rdlock(&ft_fork_rw);
}

void ft_change_end(void)
{
    if (--ft_change_depth == 0)
        pthread_rwlock_unlock(&ft_fork_rw);
}

void ft_fork_begin(void)
{
    if (ft_change_depth++ == 0)
        pthread_rwlock_wrlock(&ft_fork_rw);
}

void ft_fork_end(int child)
{
    if (--ft_change_depth != 0)
        return;
    if (child) {
        pthread_rwlock_t fresh = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
        memcpy(&ft_fork_rw, &fresh, sizeof fresh);
    } else {
        pthread_rwlock_unlock(&ft_fork_rw);
    }
}

/*
 * vfork (intercept_proc.c) holds ft_fork_rw as fork does, from its look at the table until the
 * kernel has copied the fds, and the child lets it go as its first step: the parent thread waits
 * in the system call until the child's exec or exit, and must not keep the other threads waiting
 * that long.  The child shares the parent thread's TCB, so glibc's unlock finds the writer's tid
 * and unlocks as the writer.  A child killed before it did (SIGKILL, the OOM killer: it has the
 * parent's size) leaves the lock with the parent thread's tid as its writer: the parent's return
 * lets it go then.  Not taken by a thread inside a change already (-1: fork instead).
 */
int ft_vfork_begin(void)
{
    if (ft_change_depth)
        return -1;
    pthread_rwlock_wrlock(&ft_fork_rw);
    return 0;
}

void ft_vfork_child_end(void)
{
    pthread_rwlock_unlock(&ft_fork_rw);
}

void ft_vfork_parent_end(void)
{
    if (atomic_load((_Atomic unsigned *)&ft_fork_rw.__data.__cur_writer) == (unsigned)gettid())
        pthread_rwlock_unlock(&ft_fork_rw);
}

/*
 * The table's registration waits for the daemon, so it is sent after ft_mu is
 * let go: a thread holding ft_mu must never wait for the daemon, which may be
 * waiting for ns_lock held by a thread of ours that waits for ft_mu (nsf_reclaim
 * looks at our cached fds under ns_lock).  That cycle froze a process and the
 * daemon with it (test/fs/nsconc.test.mjs, the SIGKILL runs, 1 in 10).
 */
void ft_unlock(void)
{
    int unsent = ft_ledger_unsent;
    if (unlikely(unsent >= 0))
        ft_ledger_unsent = -1;
    pthread_mutex_unlock(&ft_mu);
    if (unlikely(unsent >= 0)) {
        ledger_test_delay();
        ft_registering = 1;
        int daemon = sh_daemon_pid(); /* before the send: a daemon replaced meanwhile is seen as such */
        int answered = ft_exec_inherited;
        ledger_register(unsent, 0, answered);
        ft_exec_inherited = 0;
        ft_registering = 0;
        ledger_keep(unsent, daemon);
        ft_kept_answered = answered;
        ledger_settled();
    }
}

/*
 * Hand the daemon the table of child (0: our own), without waiting for an answer.  Our own
 * registration used to wait for one, a round trip in every process that takes a reference
 * (three per compile in a gcc build, each waiting for the daemon to be scheduled).  What the
 * wait bought is that the daemon holds the table before our first reference; the send gives the
 * same where it matters, because the daemon reads a connection's requests in order and reads
 * those a dead process left queued before it sees the connection close: a request of ours that
 * takes a reference (a CREATE noting it in flight) finds the table, and so does the pidfd of a
 * process killed right after the send (the connection's own, SO_PEERPIDFD, so a pid reused
 * meanwhile is not mistaken for us; daemon/ledger.c).  The one thing a send cannot give is a
 * daemon that dies with the registration unread: ledger_again sends it to the next one.
 */
static void ledger_register(int table_fd, pid_t child, int answered)
{
    struct eph_req req;
    rpc_req_init(&req, EPH_OP_LEDGER);
    if (answered) {
        struct eph_resp resp;
        int fd;
        if (rpc_call_fd(&req, &resp, &fd, table_fd) == 0 && fd >= 0)
            sys.close(fd);
        return;
    }
    req.flags = EPH_LEDGER_NOREPLY;
    if (child > 0) {
        req.flags |= EPH_LEDGER_CHILD;
        req.arg = (uint64_t)child;
    }
    rpc_send_fd(&req, table_fd);
}

/* Keep fd, our registered table (sent to daemon), above the program's numbers; closes fd. */
static void ledger_keep(int fd, int daemon)
{
    struct stat st;
    int hi = sys.fcntl(fd, F_DUPFD_CLOEXEC, 100);
    sys.close(fd);
    if (hi < 0)
        return;
    if (sys.fstat(hi, &st) != 0) {
        sys.close(hi);
        return;
    }
    pid_t me = getpid();
    ft_lock();
    struct stat old;
    /* One inherited through fork (our parent's table, unused here), if the number is still it. */
    if (ft_kept >= 0 && sys.fstat(ft_kept, &old) == 0 && old.st_ino == ft_kept_ino)
        sys.close(ft_kept);
    ft_kept = hi;
    ft_kept_pid = me;
    ft_kept_ino = st.st_ino;
    ft_kept_daemon = daemon;
    ft_kept_answered = 0;
    ft_unlock();
}

/*
 * The daemon our table went to was replaced (keeper.h: a new one took the region over).  If the
 * old one died before it read the registration, the new one never got it from the keeper, and
 * a SIGKILL would leave our references held; so before a reference is taken under the new
 * daemon, the table goes to it again.  A registration it already has (the same file) changes
 * nothing (daemon/ledger.c).  Not under ft_mu: the send may wait for the new daemon to listen.
 */
static void ledger_again(void)
{
    ft_lock();
    int fd = ft_kept, daemon = sh_daemon_pid();
    int ours = fd >= 0 && ft_kept_pid == getpid() && daemon != ft_kept_daemon;
    if (ours) {
        ft_kept_daemon = daemon;
        atomic_store(&ft_ledger_pending, 1); /* our other threads take no reference until it is sent */
    }
    ft_unlock();
    if (!ours)
        return;
    struct stat st;
    if (sys.fstat(fd, &st) == 0 && st.st_ino == ft_kept_ino) { /* else the program closed it */
        sh_log("ephemerad %d took over: registering our fd table with it", daemon);
        ft_registering = 1;
        ledger_register(fd, 0, 0);
        ft_kept_answered = 0;
        ft_registering = 0;
    }
    ledger_settled();
}

/* A memfd holding the first used entries of the table, or -1. */
static int ledger_copy(void)
{
    int mfd = memfd_create("ephemera-fdtable", MFD_CLOEXEC);
    if (mfd < 0)
        return -1;
    size_t used = (size_t)atomic_load(&ft_hwm) * sizeof(struct ft_entry);
    if (sys.ftruncate(mfd, (off_t)ft_bytes) < 0 ||
        (used && sys.pwrite(mfd, ft_fds, used, 0) != (ssize_t)used)) {
        sys.close(mfd);
        return -1;
    }
    return mfd;
}

/*
 * Under ft_lock, before a process whose table is still private takes its
 * first reference: the table becomes a registered memfd (same address, same
 * entries), so the references it records are dropped if we are killed.
 */
static void ledger_promote(void)
{
    atomic_store(&ft_ledger_pending, 1); /* before tried: a thread that sees tried waits (ft_inflight_slot) */
    ft_ledger_tried = 1;
    int mfd = ledger_copy();
    if (mfd < 0) {
        ledger_settled();
        return;
    }
    void *t = sys.mmap(ft_hot.fds, ft_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, mfd, 0);
    if (t != MAP_FAILED) {
        ft_ledger_on = 1;
        ft_ledger_unsent = mfd; /* registered by ft_unlock, once ft_mu is free; settled then */
        return;
    }
    sys.close(mfd);
    ledger_settled();
}

static inline void ledger_before_ref(void)
{
    if (unlikely(!ft_ledger_on) && !ft_ledger_tried)
        ledger_promote();
}

/*
 * In-flight references: between taking an open_count reference (open_cached,
 * nsf_create, the daemon's CREATE, a truncate by path) and listing its desc
 * under an fd, a reference lives in this thread's slot of the ledger's last
 * page (proto.h, EPH_LEDGER_INFLIGHT_BYTES), so a SIGKILL in between leaves
 * the daemon something to give back.  Slots are handed to threads from a
 * bitmap and given back at thread exit.
 */
static SH_TLS uint32_t ft_slot1;        /* this thread's slot + 1; 0: none yet */
SH_TLS _Atomic uint64_t *ft_reading;    /* its read word (fdtable.h) */
static SH_TLS _Atomic uint64_t ft_reading_unseen; /* the read word of a thread with no slot */
static _Atomic uint64_t ft_slot_used[EPH_LEDGER_INFLIGHT_SLOTS / 64];
static pthread_key_t ft_slot_key;
static pthread_once_t ft_slot_once = PTHREAD_ONCE_INIT;

/* The in-flight word at index word (proto.h: EPH_LEDGER_REF_WORD, EPH_LEDGER_READ_WORD). */
static inline _Atomic uint64_t *inflight_at(uint32_t word)
{
    return (_Atomic uint64_t *)((char *)ft_fds + (size_t)ft_nfds * sizeof(struct ft_entry)) + word;
}

static void slot_give_back(void *v)
{
    uint32_t slot = (uint32_t)(uintptr_t)v - 1;
    if (ft_fds) {
        atomic_store(inflight_at(EPH_LEDGER_REF_WORD(slot)), 0);
        atomic_store(inflight_at(EPH_LEDGER_READ_WORD(slot)), 0);
    }
    atomic_fetch_and(&ft_slot_used[slot / 64], ~(1ull << (slot % 64)));
}

static void slot_key_init(void)
{
    pthread_key_create(&ft_slot_key, slot_give_back);
}

/* Our copy of the table, registered on our own connection (ft_ledger_child). */
static void ledger_confirm(void)
{
    ft_lock();
    int fd = ft_unconfirmed;
    ft_unconfirmed = -1;
    ft_unlock();
    struct stat st;
    if (fd < 0)
        return;
    if (sys.fstat(fd, &st) != 0 || st.st_ino != ft_unconfirmed_ino)
        return; /* the program closed it and the number is another file now */
    int daemon = sh_daemon_pid();
    ledger_register(fd, 0, 0);
    ledger_keep(fd, daemon);
}

int ft_inflight_slot(void)
{
    if (unlikely(!ft_fds))
        return -1;
    if (unlikely(ft_unconfirmed >= 0))
        ledger_confirm();
    if (unlikely(ft_kept >= 0) && unlikely(sh_daemon_pid() != ft_kept_daemon))
        ledger_again();
    if (unlikely(!ft_ledger_on) && !ft_ledger_tried) {
        ft_lock();
        ledger_before_ref();
        ft_unlock();
    }
    if (unlikely(atomic_load(&ft_ledger_pending)) && !ft_registering)
        ledger_wait(); /* another thread's promotion: no reference before the daemon holds the table */
    if (likely(ft_slot1))
        return (int)ft_slot1 - 1;
    pthread_once(&ft_slot_once, slot_key_init);
    for (uint32_t w = 0; w < EPH_LEDGER_INFLIGHT_SLOTS / 64; w++) {
        uint64_t used = atomic_load(&ft_slot_used[w]);
        while (~used) {
            uint32_t b = (uint32_t)__builtin_ctzll(~used);
            if (atomic_compare_exchange_weak(&ft_slot_used[w], &used, used | (1ull << b))) {
                ft_slot1 = w * 64 + b + 1;
                atomic_store(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1)), 0);
                atomic_store(inflight_at(EPH_LEDGER_READ_WORD(ft_slot1 - 1)), 0);
                pthread_setspecific(ft_slot_key, (void *)(uintptr_t)ft_slot1);
                return (int)ft_slot1 - 1;
            }
        }
    }
    return -1; /* more threads than slots: this one's references go unlisted until installed */
}

void ft_reading_init(void)
{
    int slot = ft_inflight_slot();
    ft_reading = slot >= 0 ? inflight_at(EPH_LEDGER_READ_WORD((uint32_t)slot)) : &ft_reading_unseen;
}

void ft_inflight_inode(uint32_t inode, uint32_t gen)
{
    if (ft_slot1)
        atomic_store_explicit(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1)), EPH_INFLIGHT_INODE | (uint64_t)inode << 32 | gen,
                              memory_order_release);
}

void ft_inflight_desc(uint32_t desc, int fd)
{
    if (ft_slot1)
        atomic_store_explicit(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1)), EPH_INFLIGHT_DESC | (uint64_t)desc << 32 | (uint32_t)fd,
                              memory_order_release);
}

int ft_inflight_charge(uint64_t bytes)
{
    if (!ft_slot1 || atomic_load(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1))) != 0 || bytes / EPH_PAGE_INFLIGHT > UINT32_MAX)
        return 0;
    atomic_store_explicit(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1)), EPH_INFLIGHT_CHARGE | bytes / EPH_PAGE_INFLIGHT,
                          memory_order_release);
    return 1;
}

void ft_inflight_clear(void)
{
    if (ft_slot1)
        atomic_store_explicit(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1)), 0, memory_order_release);
}

int ft_init(void)
{
    struct rlimit rl;
    uint64_t n = 1u << 16;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max > n)
        n = rl.rlim_max;
    if (n > (1u << 20))
        n = 1u << 20;
    /* The table doubles as this process's ledger of description references
     * (the daemon keeps a memfd of it and, when we die, drops what it still
     * lists).  It starts private: ledger_promote turns it into that memfd
     * before the first reference, so a process that only looks pays nothing. */
    ft_bytes = n * sizeof(struct ft_entry) + EPH_LEDGER_INFLIGHT_BYTES;
    void *t = sys.mmap(NULL, ft_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED)
        return -ENOMEM;
    /* ft_maps, then the daemon's-description marks of the fds (ft_ddesc_mark): one mapping */
    size_t maps_bytes = (size_t)sh.hdr->ninodes * sizeof(struct ft_map);
    maps_bytes = (maps_bytes + 7) & ~(size_t)7;
    size_t ddesc_bytes = ((size_t)n * sizeof(uint32_t) + 7) & ~(size_t)7;
    void *m = sys.mmap(NULL, maps_bytes + ddesc_bytes + (size_t)sh.hdr->ninodes * sizeof(struct ft_old),
                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        munmap(t, ft_bytes);
        return -ENOMEM;
    }
    ft_maps = m; /* zero pages: kfd1 == 0 means no private fd, and nothing is touched */
    atomic_store(&ft_ddesc, (_Atomic uint32_t *)(void *)((char *)m + maps_bytes));
    ft_olds = (struct ft_old *)(void *)((char *)m + maps_bytes + ddesc_bytes);
    ft_inodes = sh.inodes;
    ft_hot.fds = t;
    /* ft_nfds last: sh_fcntl takes a number below it as one with an entry, without a look at ft_fds */
    atomic_thread_fence(memory_order_release);
    ft_nfds = (uint32_t)n;
    return 0;
}

static uint64_t reserve_for(uint64_t need)
{
    uint64_t r = FT_MIN_RESERVE;
    while (r < need * 2 && r < (1ull << 46))
        r <<= 1;
    return r;
}

static void map_drop_all(struct ft_map *m)
{
    if (m->kfd1) {
        int kfd = m->kfd1 - 1;
        if ((unsigned)kfd < ft_nfds)
            ft_set_flags(kfd, 0);
        sys.close(kfd);
        m->kfd1 = 0;
    }
    m->kfd_ddesc = m->kfd_from = 0;
    if (m->cached && m->refs == 0)
        idle_remove(m->inode);
    m->cached = 0;
    m->forked = 0;
    char *b = atomic_load(&m->base);
    if (b)
        munmap(b, atomic_load(&m->len));
    struct ft_old *o = &ft_olds[m->inode];
    for (int i = 0; m->nold && i < 8; i++)
        if (o->base[i]) {
            munmap(o->base[i], o->len[i]);
            o->base[i] = NULL;
        }
    m->nold = 0;
    atomic_store(&m->len, 0);
    atomic_store(&m->base, NULL);
    atomic_store(&m->filled, 0);
    atomic_store(&m->touched, 0);
    atomic_store(&m->kread, 0);
    atomic_store(&m->lazy_ops, 0);
}

/*
 * Drop the idle cached mappings of inodes that are no longer a named file in
 * memory (unlinked, replaced by a rename, moved to disk, or freed and reused).
 * Their mapping and private fd would keep the memfd's pages alive, charged to
 * the container's cgroup, after the daemon stopped counting them.
 */
static void sweep_locked(void)
{
    for (int i = 0; i < ft_idle;) {
        struct ft_map *m = &ft_maps[ft_idle_ino[i]];
        struct eph_inode *ino = &sh.inodes[ft_idle_ino[i]];
        if (atomic_load(&ino->gen) != m->gen || atomic_load(&ino->state) != EPH_MEM ||
            atomic_load(&ino->nlink) == 0)
            map_drop_all(m); /* removes entry i: the last one moves into its place */
        else
            i++;
    }
}

int ft_install(int fd, uint32_t desc, int kfd_for_map)
{
    return ft_install_priv(fd, desc, kfd_for_map, -1);
}

int ft_install_priv(int fd, uint32_t desc, int kfd_for_map, int priv)
{
    if (fd < 0 || (unsigned)fd >= ft_nfds) {
        if (priv >= 0)
            sys.close(priv);
        return -EMFILE;
    }
    struct eph_desc *d = &sh.descs[desc];
    struct eph_inode *ino = &sh.inodes[d->inode];
    struct ft_map *m = &ft_maps[d->inode];
    ft_lock();
    ledger_before_ref();
    if (m->cached && m->refs == 0 && m->gen == d->inode_gen) {
        idle_remove(d->inode); /* an idle cached mapping comes back into use */
    } else if (m->refs == 0 || m->gen != d->inode_gen) {
        if (m->refs != 0)
            sh_log("stale mapping for inode %u (gen %u vs %u)", d->inode, m->gen, d->inode_gen);
        map_drop_all(m);
        sweep_locked(); /* a new mapping: let go of the dead ones first */
        uint64_t cap = atomic_load(&ino->capacity), len = 0;
        int given = priv >= FT_PRIV_MIN ? priv : -1;
        int kfd = priv >= FT_PRIV_MIN ? priv
                : priv == FT_NO_PRIV && cap <= FT_LAZY_MAX ? -1
                : sys.fcntl(kfd_for_map, F_DUPFD_CLOEXEC, FT_PRIV_MIN);
        if (priv >= 0 && kfd != priv)
            sys.close(priv);
        priv = -1;
        void *b = NULL;
        if (cap > FT_LAZY_MAX) { /* a small file is mapped lazily (FT_LAZY_MAX) */
            len = reserve_for(cap);
            /* made through our private fd: a mapping holds the description it was made from
             * (ft_repoint_kfd) */
            b = sys.mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, kfd >= 0 ? kfd : kfd_for_map, 0);
            if (b != MAP_FAILED) /* our view: out of core dumps, and told apart from the app's (evict.c) */
                madvise(b, len, MADV_DONTDUMP);
            if (b == MAP_FAILED) {
                int e = errno;
                ft_unlock();
                if (kfd >= 0)
                    sys.close(kfd);
                return -e;
            }
        }
        m->gen = d->inode_gen;
        m->refs = 0;
        m->cached = 1;
        m->forked = 0;
        m->inode = d->inode;
        atomic_store(&m->lazy_ops, 0);
        atomic_store(&m->base, b);
        atomic_store(&m->len, len);
        m->kfd1 = kfd + 1;
        m->kfd_ddesc = 0;
        m->kfd_from = kfd >= 0 && kfd != given ? kfd_for_map + 1 : 0; /* its mark, if any, comes next */
        if (kfd >= 0 && (unsigned)kfd < ft_nfds)
            ft_set_flags(kfd, FT_PRIV | (d->inode << FT_PRIV_SHIFT));
    }
    if (priv >= 0)
        sys.close(priv);
    m->refs++;
    ft_set(fd, desc + 1, 0);
    if ((uint32_t)fd + 1 > atomic_load(&ft_hwm))
        atomic_store(&ft_hwm, (uint32_t)fd + 1);
    ft_unlock();
    return 0;
}

int ft_install_inherited(int fd, uint32_t desc)
{
    struct eph_desc *d = &sh.descs[desc];
    int priv = -1, fresh = ft_cached_fd(d->inode, d->inode_gen) < 0;
    if (fresh)
        priv = ft_reopen(fd, FT_PRIV_MIN, 0);
    int r = ft_install_priv(fd, desc, fd, priv); /* priv -1: a dup of fd after all */
    if (r == 0) {
        ft_lock();
        ft_set_flags(fd, ft_fds[fd].flags | FT_INHERITED);
        if (fresh && priv < 0) /* that dup shares the inherited description with the processes it came from */
            ft_maps[d->inode].forked = 1;
        ft_unlock();
    }
    return r;
}

int ft_install_disk(int fd, uint32_t desc, uint32_t flags)
{
    if (fd < 0 || (unsigned)fd >= ft_nfds)
        return -EMFILE;
    ft_lock();
    ledger_before_ref();
    ft_set(fd, desc + 1, FT_DISK | (flags & ~(uint32_t)(FT_DISK | FT_PRIV)));
    if ((uint32_t)fd + 1 > atomic_load(&ft_hwm))
        atomic_store(&ft_hwm, (uint32_t)fd + 1);
    ft_unlock();
    return 0;
}

/*
 * Both sides of a fork (the table is marked before it is copied for the child): every in-memory
 * fd open here is FT_INHERITED, and its file's mapping forked (ft_map), so that neither process
 * keeps an idle private fd on a description the other's fds may hold, and OFD locks on it end at
 * the last close, as on tmpfs.  Only stores where the mark changes.
 */
static void fork_mark(void)
{
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t fd = 0; fd < hwm; fd++) {
        struct ft_entry e = ft_fds[fd];
        if (!e.desc1 || (e.flags & FT_DISK))
            continue;
        struct ft_map *m = &ft_maps[sh.descs[e.desc1 - 1].inode];
        if (!m->forked)
            m->forked = 1;
        if (!(e.flags & FT_INHERITED))
            ft_set_flags((int)fd, e.flags | FT_INHERITED);
    }
}

/*
 * A forked child must not write into its parent's table (a shared mapping),
 * so the parent prepares the child's while it takes the child's references,
 * both under ft_lock: the copy lists exactly the references taken.  With no
 * reference to hand over (FT_LEDGER_NONE), the child takes a private copy and
 * registers one only if it ever takes a reference itself.  When no memfd copy
 * can be made (at the fd limit, short of memory), the entries are kept in
 * private memory instead: the child must start from the table as it was at
 * the fork, not from the shared one the parent goes on changing.
 */
void ft_ledger_fork_copy(struct ft_fork *f)
{
    f->snap = NULL;
    f->used = 0;
    f->ino = 0;
    fork_mark();
    if (!ft_any_managed()) {
        f->fd = FT_LEDGER_NONE;
        return;
    }
    f->fd = ledger_copy();
    struct stat st;
    if (f->fd >= 0 && sys.fstat(f->fd, &st) == 0)
        f->ino = st.st_ino;
    if (f->fd >= 0)
        return;
    f->used = (size_t)atomic_load(&ft_hwm) * sizeof(struct ft_entry);
    void *p = sys.mmap(NULL, f->used, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return; /* the child then gets an empty table: no fd of ours is served as another's */
    memcpy(p, ft_fds, f->used);
    f->snap = p;
}

static int ft_child_unlisted;           /* the child's references came with no ledger: list them at once */

static void ledger_child_table(struct ft_fork *f)
{
    int copy_fd = f->fd;
    if (!ft_ledger_on && copy_fd == FT_LEDGER_NONE) {
        if (ft_ledger_tried)
            ft_ledger_tried = 0; /* the parent's table was private: fork gave us our own copy already */
        return;
    }
    void *t = MAP_FAILED;
    if (copy_fd >= 0) {
        t = sys.mmap(ft_hot.fds, ft_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
                     copy_fd, 0);
        if (ft_unconfirmed >= 0) /* our parent's, never confirmed: its number is ours to close */
            sys.close(ft_unconfirmed);
        ft_unconfirmed = -1;
        /* The parent registers it for us, but on its own connection: a CREATE of ours
         * may reach the daemon first, and the reference it notes in flight would be
         * written nowhere.  We send it ourselves, on ours, before our first reference. */
        if (t != MAP_FAILED) {
            ft_unconfirmed = copy_fd;
            ft_unconfirmed_ino = f->ino;
        } else {
            sys.close(copy_fd);
        }
    }
    /* Stores only where the value changes: a child that execs or exits at
     * once then copies none of our pages (fork+_exit loops). */
    if (ft_ledger_on != (t != MAP_FAILED))
        ft_ledger_on = t != MAP_FAILED;
    if (ft_ledger_tried)
        ft_ledger_tried = 0;
    if (ft_ledger_on || !ft_fds)
        return;
    /* Until it is replaced here, ft_fds is still the parent's shared table, which
     * the parent goes on changing now that fork has returned to it: an fd it opens
     * meanwhile must not become ours (we hold no reference on it, and our fd of
     * that number, if any, is another file).  With no reference handed over, the
     * parent listed none under ft_lock: start from an empty table; else from the
     * entries it kept at the fork. */
    static struct { uint32_t fd, flags; } sized[256] SH_COLD;
    uint32_t n = 0;
    if (!f->snap) {
        /* The marks of counted disk files (FT_SIZED, desc1 0) hold no reference: they come
         * along into an empty table.  One the parent changes meanwhile is checked against
         * the file at its use.  (A snapshot holds them already.) */
        uint32_t hwm = atomic_load(&ft_hwm);
        for (uint32_t fd = 0; fd < hwm && n < 256; fd++)
            if (!ft_fds[fd].desc1 && (ft_fds[fd].flags & FT_SIZED)) /* not FT_ROOTFD: checked at no use */
                sized[n].fd = fd, sized[n++].flags = ft_fds[fd].flags & ~FT_ROOTFD;
            else if (!ft_fds[fd].desc1 && (ft_fds[fd].flags & (FT_PRIV | FT_MDIRFD)) == FT_MDIRFD)
                sized[n].fd = fd, sized[n++].flags = ft_fds[fd].flags; /* a stand-in: its fd came along */
    }
    sys.mmap(ft_hot.fds, ft_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
             -1, 0);
    for (uint32_t i = 0; i < n; i++)
        ft_set_flags((int)sized[i].fd, sized[i].flags);
    if (copy_fd == FT_LEDGER_NONE)
        return;
    if (f->snap) {
        memcpy(ft_hot.fds, f->snap, f->used);
        munmap(f->snap, f->used);
    }
    ft_child_unlisted = 1;
}

/* The child's table, then the lock path's words from it (ft_hot_sync: the table may now differ
 * from the parent's at the fork, whose words the child's memory holds). */
void ft_ledger_child(struct ft_fork *f)
{
    ledger_child_table(f);
    ft_hot_sync();
}

void ft_ledger_child_late(void)
{
    if (likely(!ft_child_unlisted))
        return;
    ft_child_unlisted = 0;
    ft_lock();
    ledger_before_ref(); /* registered by ft_unlock */
    ft_unlock();
}

/*
 * A new image whose predecessor left references (EPHEMERA_FDMAP): the old
 * image's table is still registered under our pid and lists them, so ours
 * must replace it before any of them is dropped or taken over.
 */
void ft_ledger_exec(void)
{
    ft_lock();
    ft_exec_inherited = 1; /* the registration below waits for its answer */
    ledger_before_ref();
    ft_unlock();
}

/*
 * Just before exec: the new image's table replaces ours only if the daemon reads ours first.  Ours
 * went unanswered, and the new image's comes on a new connection, which nothing orders after ours:
 * read second, ours would replace the new image's table, and what ours lists (handed on through
 * EPHEMERA_FDMAP) would be given back a second time when the process dies.  So a process that sent
 * its own table unanswered asks once, answered, before it execs (a registration of the same file,
 * which changes nothing); a fork child about to exec sent none of its own (a compiler driver's).
 */
void ft_ledger_before_exec(void)
{
    if (likely(ft_kept < 0) || ft_kept_answered || ft_kept_pid != getpid())
        return;
    struct stat st;
    if (sys.fstat(ft_kept, &st) != 0 || st.st_ino != ft_kept_ino)
        return;
    ledger_register(ft_kept, 0, 1);
    ft_kept_answered = 1;
}

void ft_ledger_parent(struct ft_fork *f, pid_t child)
{
    if (f->snap)
        munmap(f->snap, f->used);
    if (f->fd < 0)
        return;
    if (child > 0)
        ledger_register(f->fd, child, 0);
    sys.close(f->fd);
}

/* Only if another thread held it at fork: an unwritten page stays shared with the parent. */
void ft_after_fork_child(void)
{
    if (unlikely(ft_ledger_unsent >= 0)) {
        /* another thread was promoting the parent's table at fork: that one is not ours */
        sys.close(ft_ledger_unsent);
        ft_ledger_unsent = -1;
    }
    if (unlikely(atomic_load(&ft_ledger_pending)))
        atomic_store(&ft_ledger_pending, 0); /* nor is its registration: nobody here would end the wait */
    if (ft_mu.__data.__lock) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        memcpy(&ft_mu, &fresh, sizeof fresh);
    }
}

/* Called with ft_mu held. */
static void map_unref(uint32_t inode)
{
    struct ft_map *m = &ft_maps[inode];
    if (m->refs > 0 && --m->refs == 0) {
        struct eph_inode *ino = &sh.inodes[inode];
        if (ft_idle < FT_IDLE_MAX && m->kfd1 && !m->forked && atomic_load(&ino->state) == EPH_MEM &&
            atomic_load(&ino->nlink) > 0 && atomic_load(&ino->gen) == m->gen)
            idle_add(inode);
        else
            map_drop_all(m);
    }
}

void ft_sweep_idle(void)
{
    ft_lock();
    sweep_locked();
    ft_unlock();
}

void ft_mark_priv(int fd, uint32_t inode)
{
    if (fd < 0 || (unsigned)fd >= ft_nfds || sh_vfork_child())
        return;
    ft_lock();
    ft_set(fd, 0, inode == UINT32_MAX ? 0 : FT_PRIV | (inode << FT_PRIV_SHIFT));
    if (inode != UINT32_MAX && (uint32_t)fd + 1 > atomic_load(&ft_hwm))
        atomic_store(&ft_hwm, (uint32_t)fd + 1);
    ft_unlock();
}

void ft_mark_root(int fd)
{
    if (fd < 0 || !ft_fds || (unsigned)fd >= ft_nfds || sh_vfork_child())
        return;
    ft_lock();
    if (!ft_fds[fd].desc1 && !(ft_fds[fd].flags & FT_PRIV)) {
        ft_set_flags(fd, ft_fds[fd].flags | FT_ROOTFD);
        if ((uint32_t)fd + 1 > atomic_load(&ft_hwm)) /* close_range scans up to it */
            atomic_store(&ft_hwm, (uint32_t)fd + 1);
    }
    ft_unlock();
}

void ft_unmark_root(int fd)
{
    if (!ft_kernel_marked(fd))
        return;
    ft_lock();
    if (ft_kernel_marked(fd))
        ft_set_flags(fd, ft_fds[fd].flags & ~(FT_ROOTFD | FT_MDIRFD));
    ft_unlock();
}

int ft_is_priv(int fd, uint32_t inode)
{
    return fd >= 0 && (unsigned)fd < ft_nfds && !ft_fds[fd].desc1 &&
           ft_fds[fd].flags == (FT_PRIV | (inode << FT_PRIV_SHIFT));
}

/* A private fd of ours is being closed or replaced by the application. */
void ft_priv_lost(int fd)
{
    if (sh_vfork_child())
        return; /* the child's copy of our private fd: ours stays open in the parent */
    ft_lock();
    if ((unsigned)fd < ft_nfds && (ft_fds[fd].flags & FT_PRIV)) {
        uint32_t inode = ft_fds[fd].flags >> FT_PRIV_SHIFT;
        ft_set_flags(fd, 0);
        /* inode may be a mark that names no slot (nsfast.c's fd directory) */
        if (inode < sh.hdr->ninodes && ft_maps[inode].kfd1 == fd + 1) {
            struct ft_map *m = &ft_maps[inode];
            m->kfd1 = 0; /* the caller's close takes the fd itself */
            m->kfd_ddesc = m->kfd_from = 0;
            if (m->refs == 0)
                map_drop_all(m);
        }
    }
    ft_unlock();
}

int ft_cached_fd(uint32_t inode, uint32_t gen)
{
    struct ft_map *m = &ft_maps[inode];
    ft_lock();
    int fd = m->cached && m->gen == gen && m->kfd1 ? m->kfd1 - 1 : -1;
    ft_unlock();
    return fd;
}

int ft_idle_room(void)
{
    ft_lock();
    int room = ft_idle < FT_IDLE_MAX;
    ft_unlock();
    return room;
}

int ft_take_idle_fd(uint32_t inode, uint32_t gen)
{
    struct ft_map *m = &ft_maps[inode];
    int fd = -1;
    ft_lock();
    if (m->cached && m->refs == 0 && m->gen == gen && m->kfd1) {
        fd = m->kfd1 - 1;
        m->kfd1 = 0; /* map_drop_all leaves it open, with its mark */
        m->kfd_ddesc = m->kfd_from = 0;
        map_drop_all(m);
    }
    ft_unlock();
    return fd;
}

/*
 * Reopen of a cached inode: a new kernel fd on its memfd, numbered like
 * open(2) would, or -1 if nothing usable is cached.
 */
int ft_cached_dup(uint32_t inode, uint32_t gen, int cloexec, int *ddesc)
{
    struct ft_map *m = &ft_maps[inode];
    int fd = -1;
    ft_lock();
    *ddesc = m->kfd_ddesc;
    if (m->cached && m->gen == gen && m->kfd1) /* on the daemon's description: flagged as pidfd_getfd's */
        fd = sys.fcntl(m->kfd1 - 1, cloexec || m->kfd_ddesc ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    ft_unlock();
    return fd;
}

/* ---- fds on the daemon's own description (nsfast.c, nsf_daemon_fd) ---------------------------- */


void ft_ddesc_mark(int fd, int cloexec)
{
    if (!ft_fds || fd < 0 || (unsigned)fd >= ft_nfds || !ft_fds[fd].desc1)
        return;
    _Atomic uint32_t *t = atomic_load(&ft_ddesc);
    if (!t)
        return;
    atomic_store_explicit(&t[fd], ft_fds[fd].desc1 << 1 | (cloexec ? 1u : 0u), memory_order_relaxed);
    atomic_fetch_add(&ft_ddesc_live, 1);
    struct ft_map *m = &ft_maps[sh.descs[ft_fds[fd].desc1 - 1].inode];
    if (!(ft_fds[fd].flags & FT_DISK) && m->kfd_from == fd + 1 && !m->kfd_ddesc) {
        ft_lock();
        if (m->kfd1 && m->kfd_from == fd + 1)
            m->kfd_ddesc = 1; /* the private fd ft_install_priv dup'ed from it */
        ft_unlock();
    }
}

static void ft_ddesc_clear(int fd)
{
    _Atomic uint32_t *t = atomic_load_explicit(&ft_ddesc, memory_order_relaxed);
    if (t && fd >= 0 && (unsigned)fd < ft_nfds)
        atomic_store_explicit(&t[fd], 0, memory_order_relaxed);
}

int ft_ddesc_cloexec(int fd)
{
    _Atomic uint32_t *t = atomic_load_explicit(&ft_ddesc, memory_order_relaxed);
    if (!t || fd < 0 || (unsigned)fd >= ft_nfds)
        return -1;
    uint32_t v = atomic_load_explicit(&t[fd], memory_order_relaxed);
    if (!v || (v >> 1) != ft_fds[fd].desc1 || (ft_fds[fd].flags & FT_DISK))
        return -1;
    return (int)(v & 1);
}

void ft_ddesc_set_cloexec(int fd, int cloexec)
{
    if (ft_ddesc_cloexec(fd) >= 0)
        ft_ddesc_mark(fd, cloexec);
}

/* Under ft_lock: g onto nfd's description, a description nobody else holds (ft_repoint's marks). */
static void ddesc_move(int nfd, int g)
{
    if (ft_dup_over(nfd, g) >= 0)
        ft_set_flags(g, ft_fds[g].flags & ~(FT_OWNDESC | FT_INHERITED));
}

int ft_ddesc_own(int fd)
{
    int view = ft_ddesc_cloexec(fd);
    if (view < 0)
        return 0;
    char p[32] = "/proc/self/fd/", *q = p + sizeof p;
    *--q = '\0';
    unsigned v = (unsigned)fd;
    do
        *--q = (char)('0' + v % 10);
    while (v /= 10);
    memmove(p + 14, q, (size_t)(p + sizeof p - q));
    int nfd = sys.open(p, O_RDWR | O_CLOEXEC);
    if (nfd < 0)
        return -1; /* the mark stays: the next lock, dup, fork or exec tries again */
    ft_lock();
    /* Looked at again under the lock: another thread may have closed fd meanwhile (a fork's walk
     * runs with every fd change held off, ft_fork_begin; a lock or dup racing a close does not). */
    if (ft_ddesc_cloexec(fd) < 0) {
        ft_unlock();
        sys.close(nfd);
        return 0;
    }
    uint32_t desc1 = ft_fds[fd].desc1;
    ddesc_move(nfd, fd);
    /* Its dups made while it stayed (ft_ddesc_dup) share the daemon's description with it: they move
     * with it, as every fd of one desc shares one description (ft_repoint).  A desc nobody else
     * holds has no dup to look for. */
    if (atomic_load(&sh.descs[desc1 - 1].refs) > 1) {
        uint32_t hwm = atomic_load(&ft_hwm);
        for (uint32_t g = 0; g < hwm && g < ft_nfds; g++)
            if ((int)g != fd && ft_fds[g].desc1 == desc1 && ft_ddesc_cloexec((int)g) >= 0)
                ddesc_move(nfd, (int)g);
    }
    ft_unlock();
    sys.close(nfd);
    return 0;
}

void ft_ddesc_dup(int oldfd, int newfd)
{
    if (ft_ddesc_cloexec(oldfd) < 0 || !ft_managed(newfd))
        return;
    /* The copy's own flag, as its dup call set it; the kernel's is then set, as pidfd_getfd's is
     * (an exec closes a marked fd whose program flag is set, and ft_ddesc_own_all keeps the others). */
    int fl = sys.fcntl(newfd, F_GETFD);
    if (fl < 0 || (!(fl & FD_CLOEXEC) && sys.fcntl(newfd, F_SETFD, FD_CLOEXEC) < 0))
        return;
    ft_ddesc_mark(newfd, (fl & FD_CLOEXEC) != 0);
}


void ft_ddesc_own_unlocked(int fd)
{
    if (!atomic_load_explicit(&ft_posix_locks, memory_order_relaxed))
        ft_ddesc_own(fd);
}

void ft_ddesc_own_all(int inheritable_only)
{
    if (!atomic_load_explicit(&ft_ddesc, memory_order_relaxed) || !atomic_load_explicit(&ft_ddesc_live, memory_order_relaxed))
        return;
    if (atomic_load_explicit(&ft_posix_locks, memory_order_relaxed)) {
        /* A reopen under the number would close the fd, and a close drops every POSIX lock
         * the process holds on the file: the exec's fds only get the program's flag back, and a
         * fork child shares the daemon's description (fdtable.h). */
        if (!inheritable_only)
            return;
        uint32_t hwm = atomic_load(&ft_hwm);
        for (uint32_t fd = 0; fd < hwm && fd < ft_nfds; fd++)
            if (ft_ddesc_cloexec((int)fd) == 0 && sys.fcntl((int)fd, F_SETFD, 0) == 0)
                ft_ddesc_clear((int)fd);
        return;
    }
    uint32_t live = atomic_load(&ft_ddesc_live), hwm = atomic_load(&ft_hwm);
    int left = 0;
    for (uint32_t fd = 0; fd < hwm && fd < ft_nfds; fd++) {
        int view = ft_ddesc_cloexec((int)fd);
        if (view < 0)
            continue;
        if (inheritable_only && view) {
            left = 1; /* closed by the exec, as the program asked */
            continue;
        }
        if (ft_ddesc_own((int)fd) == 0)
            continue;
        /* The description stays shared; the program's flag at least is right for the exec (a
         * fork child keeps the mark and tries again where it needs to). */
        if (inheritable_only && sys.fcntl((int)fd, F_SETFD, 0) == 0)
            ft_ddesc_clear((int)fd);
        else
            left = 1;
    }
    if (!left) /* none left: later calls skip the walk (unless a mark was made meanwhile) */
        atomic_compare_exchange_strong(&ft_ddesc_live, &live, 0);
}

/* Put nfd's open file description under fd, keeping fd's close-on-exec flag (the program's,
 * for an fd on the daemon's description, which then no longer is). */
int ft_dup_over(int nfd, int fd)
{
    int fl = sys.fcntl(fd, F_GETFD), view = ft_ddesc_cloexec(fd);
    int cl = view >= 0 ? view : fl >= 0 && (fl & FD_CLOEXEC);
    int r = sys.dup3(nfd, fd, cl ? O_CLOEXEC : 0);
    if (r >= 0)
        ft_ddesc_clear(fd);
    return r;
}

int ft_reopen(int fd, int min, int app)
{
    char p[32];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    int kfl = app ? sys.fcntl(fd, F_GETFL) : -1; /* a memfd is 0777: any user may open it again */
    int k = sys.open(p, (kfl >= 0 ? kfl & (O_ACCMODE | O_APPEND | O_NONBLOCK) : O_RDWR) | O_CLOEXEC);
    if (k < 0 || k >= min)
        return k;
    int n = sys.fcntl(k, F_DUPFD_CLOEXEC, min);
    sys.close(k);
    return n;
}

/* A mapping of ours made again over itself through the private fd (same address, same pages). */
static int remap(char *b, uint64_t len, int kfd)
{
    if (!b)
        return 0;
    void *r = sys.mmap(b, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, kfd, 0);
    if (r == MAP_FAILED)
        return -1;
    madvise(b, len, MADV_DONTDUMP);
    return 0;
}

int ft_repoint_kfd(struct ft_map *m)
{
    int kfd = m->kfd1 - 1;
    if (kfd < 0 || ft_repoint(kfd, 0) < 0)
        return -1;
    int r = remap(atomic_load(&m->base), atomic_load(&m->len), kfd);
    struct ft_old *o = &ft_olds[m->inode];
    for (int i = 0; m->nold && i < 8; i++)
        r |= remap(o->base[i], o->len[i], kfd);
    m->kfd_ddesc = 0; /* moved: a description of its own */
    if (r == 0)
        m->forked = 0;
    return r;
}

int ft_repoint(int fd, int own)
{
    uint32_t desc1 = (unsigned)fd < ft_nfds ? ft_fds[fd].desc1 : 0; /* (a private fd may lie past the table) */
    int nfd = ft_reopen(fd, 0, desc1 != 0);
    if (nfd < 0)
        return -1;
    if (!desc1 && ft_dup_over(nfd, fd) < 0) {
        sys.close(nfd);
        return -1;
    }
    uint32_t hwm = atomic_load(&ft_hwm);
    for (uint32_t g = 0; desc1 && g < hwm; g++) {
        if (ft_fds[g].desc1 != desc1 || (ft_fds[g].flags & FT_DISK))
            continue;
        ft_set_flags((int)g, ft_fds[g].flags & ~(FT_OWNDESC | FT_INHERITED)); /* a description nobody else holds */
        if (ft_dup_over(nfd, (int)g) >= 0 && own)
            ft_set_flags((int)g, ft_fds[g].flags | FT_OWNDESC);
    }
    sys.close(nfd);
    return 0;
}

void (*_Atomic ft_forget_hook)(uint32_t desc1);

void ft_forget(int fd)
{
    if (sh_vfork_child())
        return; /* the entry is the parent's (vforkchild.h) */
    ft_lock();
    struct ft_entry e = ft_fds[fd];
    /* The reference goes in flight before it leaves the entry (unless this
     * thread's slot is busy with a reference of its own): a SIGKILL before the
     * desc's count drops then loses nothing. */
    int track = e.desc1 && ft_slot1 && atomic_load(inflight_at(EPH_LEDGER_REF_WORD(ft_slot1 - 1))) == 0;
    if (track)
        ft_inflight_desc(e.desc1 - 1, fd);
    ft_set(fd, 0, 0);
    ft_ddesc_clear(fd);
    if (e.desc1 && !(e.flags & FT_DISK))
        map_unref(sh.descs[e.desc1 - 1].inode);
    uint32_t inode = e.desc1 ? sh.descs[e.desc1 - 1].inode : 0;
    int last_disk = 0;
    if (e.desc1 && (e.flags & FT_DISK)) {
        /* the moved file's identity is kept while any local fd still names it */
        last_disk = 1;
        uint32_t hwm = atomic_load(&ft_hwm);
        for (uint32_t i = 0; i < hwm && last_disk; i++)
            if (ft_fds[i].desc1 && sh.descs[ft_fds[i].desc1 - 1].inode == inode)
                last_disk = 0;
    }
    ft_unlock();
    if (last_disk)
        fp_idmap_forget(inode);
    void (*hook)(uint32_t) = atomic_load_explicit(&ft_forget_hook, memory_order_relaxed);
    if (e.desc1 && hook)
        hook(e.desc1);
    if (track)
        ft_inflight_clear(); /* just before the count drops: a death in between leaks, never drops twice */
    if (e.desc1)
        fp_desc_unref(e.desc1 - 1);
}

/* After a swap to the disk file: the fd no longer uses the mapping. */
void ft_mark_disk(int fd)
{
    struct stat st; /* the disk file's identity goes with the entry (ft_disk_same) */
    uint32_t ino = sys.fstat(fd, &st) == 0 ? ft_disk_ino_bits(&st) : 0;
    ft_lock();
    if (ft_fds[fd].desc1 && !(ft_fds[fd].flags & FT_DISK)) {
        ft_set_flags(fd, (ft_fds[fd].flags & ~(FT_OWNDESC | FT_INHERITED)) | FT_DISK | ino);
        map_unref(sh.descs[ft_fds[fd].desc1 - 1].inode);
    }
    ft_unlock();
}

/* A dup of a managed fd: same desc, one more reference, one more map user. */
int ft_install_dup(int newfd, int oldfd)
{
    if ((unsigned)newfd >= ft_nfds)
        return -EMFILE;
    ft_lock();
    ledger_before_ref();
    struct ft_entry e = ft_fds[oldfd];
    if (!e.desc1) {
        ft_unlock();
        return -EBADF;
    }
    fp_desc_ref(e.desc1 - 1);
    if (!(e.flags & FT_DISK)) {
        ft_maps[sh.descs[e.desc1 - 1].inode].refs++;
        e.flags &= ~FT_OWNDESC; /* checked again at its first lock (a dup racing the lock's move) */
    }
    ft_set(newfd, e.desc1, e.flags);
    if ((uint32_t)newfd + 1 > atomic_load(&ft_hwm))
        atomic_store(&ft_hwm, (uint32_t)newfd + 1);
    ft_unlock();
    return 0;
}

char *ft_map_grow(struct ft_map *m, int fd, uint64_t need)
{
    ft_lock();
    /* A file installed small keeps no private fd (FT_NO_PRIV); mapped now, it is worth the
     * cache of the idle ones again: the mapping outlives its last close for a fast reopen. */
    if (!m->kfd1 && m->cached) {
        /* Not a dup of an fd whose description is its own (its OFD locks and flocks would outlive
         * its close in ours): a description of our own then (this once, where a lock asked). */
        int k = ft_own_description(fd) ? ft_reopen(fd, FT_PRIV_MIN, 0) : sys.fcntl(fd, F_DUPFD_CLOEXEC, FT_PRIV_MIN);
        if (k >= 0 && (unsigned)k < ft_nfds) {
            m->kfd1 = k + 1;
            m->kfd_ddesc = !ft_own_description(fd) && ft_ddesc_cloexec(fd) >= 0; /* a dup of the daemon's */
            m->kfd_from = 0;
            ft_set_flags(k, FT_PRIV | (m->inode << FT_PRIV_SHIFT));
        } else if (k >= 0) {
            sys.close(k);
        }
    }
    char *b = atomic_load(&m->base);
    if (atomic_load(&m->len) < need) {
        uint64_t len = reserve_for(need);
        int via = m->kfd1 ? m->kfd1 - 1 : fd; /* as in ft_install_priv */
        void *nb = sys.mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, via, 0);
        if (nb != MAP_FAILED) /* as in ft_map */
            madvise(nb, len, MADV_DONTDUMP);
        if (nb == MAP_FAILED) {
            ft_unlock();
            return NULL;
        }
        struct ft_old *o = &ft_olds[m->inode];
        int slot = -1;
        for (int i = 0; b && i < 8 && slot < 0; i++)
            if (!m->nold || !o->base[i])
                slot = i;
        if (slot >= 0) {
            if (!m->nold) /* a first: whatever a dropped map left here is stale */
                memset(o, 0, sizeof *o);
            o->base[slot] = b;
            o->len[slot] = atomic_load(&m->len);
            m->nold++;
        }
        atomic_store(&m->touched, 0); /* the new mapping has no page-table entries yet */
        /* base before len: a reader that sees the new len must see the new base */
        atomic_store_explicit(&m->base, nb, memory_order_release);
        atomic_store_explicit(&m->len, len, memory_order_release);
        b = nb;
    }
    ft_unlock();
    return b;
}
