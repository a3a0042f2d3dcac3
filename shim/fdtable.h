/*
 * shim/fdtable.h - the per-process fd table and mapping cache (fdtable.c):
 * which fds are the shim's, and this process's mapping of each memfd.
 */
#ifndef SHIM_FDTABLE_H
#define SHIM_FDTABLE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "compiler.h"
#include "vforkchild.h"
#include "ephemera/proto.h"

struct ft_entry {
    uint32_t desc1;                     /* desc index + 1; 0 = fd not managed */
    uint32_t flags;                     /* FT_DISK once swapped to the disk file */
};
#define FT_DISK 1u                      /* the fd was swapped to the evicted file's disk copy */
#define FT_PRIV 2u                      /* desc1 == 0: one of our own cached memfd fds */
#define FT_PRIV_SHIFT 2                 /* ...whose inode index is flags >> FT_PRIV_SHIFT */
/*
 * The rest of flags, for an fd that is not FT_PRIV (one 32-bit word: the daemon
 * reads the table as pairs of words, EPH_OP_LEDGER, and exec passes flags on as
 * one number in EPHEMERA_FDMAP):
 *   bit 31        FT_SIZED: a file on disk whose size changes are counted (diskbytes.h):
 *                 desc1 == 0, a kernel fd on a managed path; or with FT_DISK, a moved
 *                 file's fd.  No reference stands behind the mark.
 *   bits 2..11    FT_SLOT: the slot of its file, a guess checked against the file's identity.
 *   bits 12..30   FT_DISK: the low 19 bits of the disk file's st_ino (ft_disk_same).
 *   bit 30        desc1 == 0, not FT_PRIV: FT_ROOTFD, a kernel fd that this process opened
 *                 through open() on a managed path (a directory of a root, a file the kernel
 *                 serves there).  Its syncs answer at once (ft_scratch).  Cleared with the
 *                 FT_SIZED mark wherever the app closes or replaces the fd, or hands it to
 *                 libc (fdopen, fdopendir), so a mark never outlives its file.
 */
#define FT_SIZED (1u << 31)
#define FT_ROOTFD (1u << 30)
/*
 *   bit 29        desc1 == 0, not FT_PRIV, always with FT_ROOTFD: FT_MDIRFD, a stand-in fd for a
 *                 directory in memory (nsdirfd.c: an fd of an empty, removed directory; the
 *                 directory it stands for is in nsdirfd.c's table under the same number).
 *                 Set only by nsdirfd.c; cleared with FT_ROOTFD (db_forget, ft_unmark_root).
 */
#define FT_MDIRFD (1u << 29)
/*
 *   bit 12        desc1 != 0, not FT_DISK (where the disk inode bits start): FT_OWNDESC, the fd's
 *                 kernel open file description is its desc's alone in this process: no fd of
 *                 another desc and no private fd of ours refers to it (io_own_description made
 *                 or checked it so), so an OFD lock or flock on it needs nothing more.  Only
 *                 io_own_description sets it; every other writer of the entry drops it: an
 *                 install (a reused number), ft_install_dup (a dup: checked again at its first
 *                 lock), ft_forget, ft_mark_disk; exec does not hand it on.  Nothing of ours makes
 *                 a private fd out of such an fd (ft_map_grow opens the memfd again).
 */
#define FT_OWNDESC (1u << 12)
/*
 *   bit 13        desc1 != 0, not FT_DISK: FT_INHERITED, the fd's description was open here at a
 *                 fork (either side), or came with an exec: another process may hold it, and the
 *                 locks taken through it, by right.  io_own_description keeps such a description
 *                 and moves whatever else of this process shares it.  Copied by a dup; dropped
 *                 like FT_OWNDESC otherwise.
 */
#define FT_INHERITED (1u << 13)
#define FT_SLOT_SHIFT 2
#define FT_SLOT_MASK 0x3ffu
#define FT_DISK_INO_SHIFT 12
#define FT_DISK_INO_MASK 0x7ffffu
/* The FT_DISK_INO bits of the disk file st. */
static inline uint32_t ft_disk_ino_bits(const struct stat *st)
{
    return ((uint32_t)st->st_ino & FT_DISK_INO_MASK) << FT_DISK_INO_SHIFT;
}
/* Is st the disk file an FT_DISK entry with these flags was swapped to? (0 bits: not known, yes) */
static inline int ft_disk_same(uint32_t flags, const struct stat *st)
{
    uint32_t want = flags & (FT_DISK_INO_MASK << FT_DISK_INO_SHIFT);
    return want == 0 || want == ft_disk_ino_bits(st);
}
_Static_assert(((FT_SLOT_MASK << FT_SLOT_SHIFT) & (FT_DISK_INO_MASK << FT_DISK_INO_SHIFT)) == 0 &&
                   ((FT_SLOT_MASK << FT_SLOT_SHIFT) & (FT_DISK | FT_PRIV | FT_SIZED)) == 0 &&
                   ((FT_DISK_INO_MASK << FT_DISK_INO_SHIFT) & (FT_DISK | FT_PRIV | FT_SIZED)) == 0,
               "ft_entry.flags: the slot, the disk inode bits and the flag bits overlap");
_Static_assert((FT_MDIRFD & ((FT_SLOT_MASK << FT_SLOT_SHIFT) | FT_DISK | FT_PRIV | FT_SIZED | FT_ROOTFD)) == 0,
               "ft_entry.flags: FT_MDIRFD overlaps the slot or a flag bit of a kernel fd's entry");
/* FT_ROOTFD shares a bit with the disk inode bits, which only an fd with desc1 != 0 has. */
_Static_assert((FT_ROOTFD & ((FT_SLOT_MASK << FT_SLOT_SHIFT) | FT_DISK | FT_PRIV | FT_SIZED)) == 0,
               "ft_entry.flags: FT_ROOTFD overlaps the slot or a flag bit of a kernel fd's entry");
_Static_assert(((FT_OWNDESC | FT_INHERITED) & ~(FT_DISK_INO_MASK << FT_DISK_INO_SHIFT)) == 0,
               "ft_entry.flags: FT_OWNDESC and FT_INHERITED must be disk inode bits (unused before FT_DISK)");
/*
 * What sh_fcntl's lock path reads of the shim's own data, and nothing else of it: one 2 KiB-aligned
 * block, so one page.  Where every system call empties the TLB, each page touched between two calls costs a page
 * walk, and a page of another mapping (the fd table, which is a memfd the daemon reads, or the
 * region) about 2% of a lock + unlock pair (ARCHITECTURE.md, "The lock path: what a page costs").
 * So the path reads the fd's word here instead of its entry in the table.
 *
 * fdw[fd], for fd < FT_HOT_FDS: what sh_fcntl needs of the fd's entry, kept by ft_set, the one
 * function that writes an entry (ft_fds is a pointer to const: a store anywhere else does not
 * compile).  0 unless the fd is ours and its file in memory (desc1 != 0, no FT_DISK); then FW_MEM,
 * FW_OWNDESC for FT_OWNDESC, and the desc's inode (set at the desc's allocation; a desc is not freed
 * while an fd of ours holds it) from bit FW_INODE_SHIFT.  A fork child's words are its parent's
 * until ft_ledger_child gives the child its table and recomputes them from it (ft_hot_sync); an exec
 * starts with all 0, and its imports go through ft_set.  ARCHITECTURE.md, "The lock path without
 * the fd table's page".
 */
#define FT_HOT_FDS 248u
#define FW_MEM 1u
#define FW_OWNDESC 2u
#define FW_INODE_SHIFT 2
struct ft_hot {
    _Atomic uint32_t fdw[FT_HOT_FDS];
    struct ft_entry *fds;               /* through ft_fds (const) to read; written by ft_set only */
    uint32_t nfds;
    _Atomic int posix_locks;
    struct eph_inode *inodes;
};
extern SH_HIDDEN struct ft_hot ft_hot;
_Static_assert(sizeof(struct ft_hot) <= 2048, "struct ft_hot must fit its 2 KiB-aligned block");
#define ft_fds ((const struct ft_entry *)ft_hot.fds) /* flat array indexed by fd, NULL before init */
/* The one writer of an entry: fd's entry becomes (desc1, flags), and its word in ft_hot.fdw follows.
 * Callers hold ft_lock, or are alone (a fork child, exit).  fd < ft_nfds. */
void ft_set(int fd, uint32_t desc1, uint32_t flags);
static inline void ft_set_flags(int fd, uint32_t flags) { ft_set(fd, ft_fds[fd].desc1, flags); }
/* In a vfork child the table is the parent's, and other threads of the parent may change it while
 * the child runs: each test below says "not ours" there (vforkchild.h), checked last, once the entry
 * said yes, so the common "no" costs nothing more. */
#define ft_nfds (ft_hot.nfds)
extern _Atomic uint32_t ft_hwm;         /* 1 + highest fd ever installed: bounds scans */

static inline int ft_managed(int fd)
{
    const struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && t[fd].desc1 != 0 && !sh_vfork_child();
}

/* fd is an in-memory file's whose kernel description is its desc's alone here (FT_OWNDESC). */
static inline int ft_own_description(int fd)
{
    return (ft_fds[fd].flags & (FT_DISK | FT_OWNDESC)) == FT_OWNDESC;
}

/* A kernel fd of a managed path (not ours: desc1 == 0) carrying a mark (FT_SIZED, FT_ROOTFD). */
static inline int ft_kernel_marked(int fd)
{
    const struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && !t[fd].desc1 && !(t[fd].flags & FT_PRIV) &&
           (t[fd].flags & (FT_SIZED | FT_ROOTFD)) && !sh_vfork_child();
}

/*
 * fd's file lives in a managed root, which promises no durability (docs/ARCHITECTURE.md,
 * "Syncs in a managed root"): an fsync, fdatasync, syncfs or sync_file_range of it has
 * nothing to do.  Managed fds (in memory, or moved to the disk: FT_DISK) and kernel fds
 * opened on a managed path (FT_ROOTFD).
 */
static inline int ft_scratch(int fd)
{
    const struct ft_entry *t = ft_fds;
    if (!t || (unsigned)fd >= ft_nfds)
        return 0;
    return (t[fd].desc1 != 0 || (t[fd].flags & (FT_PRIV | FT_ROOTFD)) == FT_ROOTFD) && !sh_vfork_child();
}
/* fd is a stand-in for a directory in memory (nsdirfd.c): one load, like ft_managed. */
static inline int ft_mdirfd(int fd)
{
    const struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && !t[fd].desc1 && (t[fd].flags & (FT_PRIV | FT_MDIRFD)) == FT_MDIRFD &&
           !sh_vfork_child();
}
/* fd was just opened by the kernel on a managed path through our open(): mark it FT_ROOTFD. */
void ft_mark_root(int fd);
/* fd goes to libc, whose fclose or closedir will close it past our close(): drop FT_ROOTFD. */
void ft_unmark_root(int fd);

/* Does this process hold any managed fd (one a child could inherit)? */
static inline int ft_any_managed(void)
{
    uint32_t hwm = ft_fds && !sh_vfork_child() ? atomic_load(&ft_hwm) : 0;
    for (uint32_t fd = 0; fd < hwm; fd++)
        if (ft_fds[fd].desc1 != 0)
            return 1;
    return 0;
}

/* per-process view of one inode: the mapping of its memfd */
struct ft_map {
    _Atomic(char *) base;               /* current mapping (NULL if none) */
    _Atomic uint64_t len;               /* bytes reserved by that mapping */
    _Atomic uint64_t filled;            /* hint: memfd pages below this are populated (write picks memcpy or pwrite) */
    _Atomic uint64_t touched;           /* hint: this mapping (base) was copied through up to here (ft_read_cold) */
    _Atomic uint64_t kread;             /* bytes read through the kernel while cold (ft_read_cold) */
    uint32_t gen;                       /* inode gen the mapping belongs to */
    int refs;                           /* local fds using this inode, under ft_lock */
    int kfd1;                           /* private O_CLOEXEC fd on the memfd + 1, 0 = none */
    int cached;                         /* mapping valid (in use or idle) */
    /* An fd of ours of this inode was open at a fork (ft_ledger_fork_copy): kfd1, and the app's
     * fds that share its description (a reopen is a dup of it), may share one with another process.
     * Until kfd1 gets a description of its own (ft_repoint), it is not dup'ed for a reopen nor
     * kept idle past the last local close, where it would hold that description, and the OFD
     * locks on it, after the app closed its last fd. */
    int forked;
    /* kfd1 is a dup of an fd on the daemon's description (pidfd_getfd: ft_ddesc_mark), so it is on
     * that description itself, and so is every reopen dup'ed from it: ft_cached_dup says so, and
     * the open marks it as it marks the fd pidfd_getfd gave.  kfd_from: the fd kfd1 was dup'ed
     * from at its install (+ 1), whose mark tells.  Cleared with kfd1 and when it moves. */
    int kfd_ddesc, kfd_from;
    _Atomic uint32_t lazy_ops;          /* I/O served by pread/pwrite while unmapped (FT_LAZY_*) */
    uint32_t inode;
    uint32_t nold;                      /* superseded mappings in ft_olds[inode], under ft_lock */
};
/* Every file a process opens touches its ft_map: keep 51 of them a page (struct ft_old). */
_Static_assert(sizeof(struct ft_map) <= 80, "struct ft_map grew: see struct ft_old");
/*
 * The mappings a map_grow superseded, unmapped on last close.  Apart from ft_map, touched only for
 * an inode whose mapping grew: every file a process opens touches its ft_map, and an ft_map of
 * 80 bytes puts 51 inodes on a page where the 224 bytes with these inside put 18 (each first touch
 * of a page is a fault, ~10 us here: zip and unzip of 1,000 files faulted 104 times in ft_maps).
 */
struct ft_old {
    char *base[8];
    uint64_t len[8];
};

extern struct ft_map *ft_maps;          /* indexed by inode slot */

int ft_init(void);
/* Put nfd's open file description under fd, keeping fd's close-on-exec flag: dup3's result. */
int ft_dup_over(int nfd, int fd);
/* A new open file description of fd's file (an open of /proc/self/fd/N: O_RDWR, or for an app's
 * fd its kernel access mode, O_APPEND and O_NONBLOCK), as an fd numbered from min (O_CLOEXEC), or -1. */
int ft_reopen(int fd, int min, int app);
/* Under ft_lock: give fd a new description of its own file.  One of our private fds moves alone;
 * a managed fd moves with every in-memory fd here of its desc, which then carry FT_OWNDESC if own.
 * 0, or -1 if the open failed (nothing moved). */
int ft_repoint(int fd, int own);
/* Under ft_lock: m's private fd moves to a new description, and m's mappings, made through it (each
 * holds the description it was made from, as an fd does), are made again through it.  0, or -1. */
int ft_repoint_kfd(struct ft_map *m);
/*
 * An fd that pidfd_getfd took from the daemon (nsf_daemon_fd) shares the daemon's own open file
 * description, and its kernel close-on-exec flag is set whatever the program asked.  The mark keeps
 * the program's flag (F_GETFD, F_SETFD, FIOCLEX answer from it) until the fd needs what only a
 * description of its own gives: a lock (io_own_description), a fork, an exec that keeps it, a dup.
 * Then ft_ddesc_own reopens it (/proc/self/fd/N, as the open that pidfd_getfd stood for would have
 * made) under the same number with the program's flag.  ARCHITECTURE.md, "Opening the daemon's
 * memfd by pidfd".
 */
void ft_ddesc_mark(int fd, int cloexec);
int ft_ddesc_cloexec(int fd); /* the program's flag (0, 1) of a marked fd; -1: not marked */
void ft_ddesc_set_cloexec(int fd, int cloexec);
/* Every fd of fd's desc still on the daemon's description moves to one new description, and loses
 * FT_OWNDESC and FT_INHERITED (nobody else holds it).  0: fd is not (or no longer) on the daemon's
 * description; -1: the reopen failed and it still is, marked, close-on-exec in the kernel.  A marked
 * fd never carries FT_OWNDESC (io_own_description sets it only after this returned 0): an OFD lock
 * or flock through the daemon's description would be every program's that took it. */
int ft_ddesc_own(int fd);
/* After a dup of a marked fd that stayed on the daemon's description (a POSIX lock, or a failed
 * reopen): the copy is marked too, with its own flag, so that its first lock moves both. */
void ft_ddesc_dup(int oldfd, int newfd);
/* The reopen replaces the fd, and the kernel drops a process's POSIX locks on a file at the close
 * of any fd of it: once the process took one (ft_posix_locks, set by fcntl's F_SETLK(W) and lockf
 * through the shim) a dup and a fork keep the daemon's description, and an exec only gets the
 * program's flag back.  A lock of the description itself (flock, OFD) still reopens first. */
#define ft_posix_locks (ft_hot.posix_locks)
/* sh.inodes, copied by ft_init before it publishes ft_fds, beside ft_hot.fdw: the lock path
 * then reads no page of the shim's data but that one (sh is on another). */
#define ft_inodes (ft_hot.inodes)
void ft_ddesc_own_unlocked(int fd);
void ft_ddesc_own_all(int inheritable_only); /* fork (0), exec (1: those it keeps) */
static inline struct ft_map *ft_map_of(uint32_t inode) { return &ft_maps[inode]; }
/* Install fd -> desc (new reference already held on desc); maps the memfd on first use. */
int ft_install(int fd, uint32_t desc, int kfd_for_map);
/* ft_install, and priv (an fd of the same memfd, >= 512) becomes this process's private fd of
 * the inode instead of a dup of kfd_for_map; priv is consumed (closed if not needed). */
int ft_install_priv(int fd, uint32_t desc, int kfd_for_map, int priv);
/* priv for ft_install_priv: keep no private fd of a file too small to map (FT_LAZY_MAX):
 * a reopen opens the memfd again, as the kernel's open would, rather than dup a
 * private fd that another call made and a third closes. */
#define FT_NO_PRIV (-2)

/*
 * Small files need no mapping (docs/ARCHITECTURE.md: mmap + first touch + munmap
 * costs as much as 12-15 preads of 4 KiB).  A file installed while its capacity
 * is at most FT_LAZY_MAX is not mapped: its reads and writes use pread/pwrite
 * on the memfd, as tmpfs's would, until it grows past FT_LAZY_MAX or this
 * process has made FT_LAZY_OPS such calls on it; then the first access maps it.
 */
#define FT_LAZY_MAX (64u << 10)
#define FT_LAZY_OPS 16u
static inline int ft_lazy(struct ft_map *m, uint64_t end)
{
    return atomic_load_explicit(&m->len, memory_order_acquire) < end && end <= FT_LAZY_MAX &&
           atomic_fetch_add_explicit(&m->lazy_ops, 1, memory_order_relaxed) < FT_LAZY_OPS;
}
/*
 * A read of pages this process never copied through its mapping costs a page fault per 64 KiB
 * (the kernel's fault-around), and on this VM each new page-table entry is dear (the hypervisor
 * mirrors it); the kernel's pread copies the same bytes through its own mapping of the pages, as
 * tmpfs's read does.  So a read that ends past `touched` goes through the kernel while this process
 * has read fewer bytes of the file that way than the file holds: a file read once (sort's merge
 * input, tar's and zip's reads of files another process wrote) costs one call per read, as on
 * tmpfs, and never faults; a file read again (a second pass, random reads of a file read before)
 * is mapped and copied by memcpy, as before.  Only a choice of copy: both give the same bytes.
 * ARCHITECTURE.md, "Reads of pages not yet mapped".
 */
static inline int ft_read_cold(struct ft_map *m, uint64_t end, uint64_t size, size_t n)
{
    if (end <= atomic_load_explicit(&m->touched, memory_order_relaxed))
        return 0;
    uint64_t k = atomic_load_explicit(&m->kread, memory_order_relaxed);
    if (k >= size)
        return 0;
    atomic_store_explicit(&m->kread, k + n, memory_order_relaxed);
    return 1;
}
/* A copy through the mapping reached end: its pages are in this process's page tables now. */
static inline void ft_map_touched(struct ft_map *m, uint64_t end)
{
    if (end > atomic_load_explicit(&m->touched, memory_order_relaxed))
        atomic_store_explicit(&m->touched, end, memory_order_relaxed);
}
/* Install an fd inherited through exec (the fd of desc on its memfd).  The private fd on the
 * memfd is opened again, not a dup of fd: the inherited description belongs to fd and the
 * processes it came from, and a reopen here, which dups the private fd, must not share it
 * (io_own_description tells the two apart by the private fd's description). */
int ft_install_inherited(int fd, uint32_t desc);
/* Install an fd that already refers to the evicted file's disk copy. */
int ft_install_disk(int fd, uint32_t desc, uint32_t flags); /* flags: FT_DISK and the disk identity */
void ft_after_fork_child(void);
/* Fork: a copy of the fd table for the child (before fork, under ft_lock), adopted by the
 * child and registered with the daemon by the parent (see EPH_OP_LEDGER). */
#define FT_LEDGER_NONE (-2)             /* ft_fork.fd: no reference to hand over */
struct ft_fork {
    int fd;                             /* a memfd copy of the table, -1 if none could be made, or FT_LEDGER_NONE */
    struct ft_entry *snap;              /* fd == -1: the entries at the fork, in private memory */
    size_t used;                        /* bytes of snap */
    uint64_t ino;                       /* fd's inode number, to know it again in the child */
};
void ft_ledger_fork_copy(struct ft_fork *f);
void ft_ledger_child(struct ft_fork *f);
void ft_ledger_child_late(void);        /* after the child's locks are reset: a table of its own, if it has none */
void ft_ledger_parent(struct ft_fork *f, pid_t child);
void ft_ledger_exec(void);         /* a new image with inherited references: replace the old image's ledger first */
void ft_ledger_before_exec(void);  /* our own table sent unanswered: have the daemon read it before the new image's */
/* In-flight references (fdtable.c; proto.h EPH_LEDGER_INFLIGHT_BYTES), in this order: the slot
 * (the ledger made first, and registered: it waits while another thread registers it) before a
 * reference is taken; _inode right after it is taken; _desc once it is held by a desc bound for
 * fd; _clear once the desc is listed under fd, or just before the reference is given back.
 * ft_inflight_slot: the slot, -1 if none.  Called holding none of ft_mu, rpc_mu, nsf_mu and the
 * region's locks (the registering thread needs them). */
int ft_inflight_slot(void);
void ft_inflight_inode(uint32_t inode, uint32_t gen);
void ft_inflight_desc(uint32_t desc, int fd);
void ft_inflight_clear(void);
/* A budget charge of bytes (whole pages) not yet counted in a capacity; 1 if noted (the slot was free). */
int ft_inflight_charge(uint64_t bytes);
/*
 * Reads in flight (proto.h, EPH_INFLIGHT_READ): this thread's read word in the
 * ledger, NULL until ft_reading_init (a thread's first read, before it raises
 * any count) gives it one, or a word of its own that nobody sees when the
 * thread has no slot.  ft_read_mark right after the inode's inflight count is
 * raised, ft_read_unmark right before it drops: a SIGKILL in between leaves
 * the word, and the daemon drops the count for the dead process.
 */
extern SH_TLS _Atomic uint64_t *ft_reading;
void ft_reading_init(void);
static inline void ft_read_mark(uint32_t inode, uint32_t gen)
{
    atomic_store_explicit(ft_reading, EPH_INFLIGHT_READ | (uint64_t)inode << 32 | gen, memory_order_relaxed);
}
static inline void ft_read_unmark(void)
{
    atomic_store_explicit(ft_reading, 0, memory_order_relaxed);
}
void ft_priv_lost(int fd);
/* Drop cached mappings of inodes that left memory or lost their last name (their pages). */
void ft_sweep_idle(void);
/* *ddesc: the fd shares the daemon's description (kfd_ddesc), close-on-exec whatever cloexec asked. */
int ft_cached_dup(uint32_t inode, uint32_t gen, int cloexec, int *ddesc);
/* This process's private fd on inode's memfd (gen), or -1. */
int ft_cached_fd(uint32_t inode, uint32_t gen);
/* That private fd taken out of the cache when no fd of this process uses the inode (idle):
 * the mapping goes, the fd stays open and marked private of inode, now the caller's.  -1: none. */
int ft_take_idle_fd(uint32_t inode, uint32_t gen);
/* Is there room in the cache for one more closed file's private fd (else its last close drops it)? */
int ft_idle_room(void);
/* Record fd as a private fd of inode (a pool entry, nsfast.c: the application's close,
 * dup2 or close_range over it then clears the mark); UINT32_MAX: forget the mark. */
void ft_mark_priv(int fd, uint32_t inode);
/* 1 while fd still carries the mark of a private fd of inode. */
int ft_is_priv(int fd, uint32_t inode);
/* The fd is managed or one of our private fds: close/dup2 must look. */
static inline int ft_touched(int fd)
{
    const struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && (t[fd].desc1 | t[fd].flags) != 0 && !sh_vfork_child();
}
/* Forget fd locally and drop its desc reference (does not close the kernel fd). */
void ft_forget(int fd);
/* While set, ft_forget calls it with the forgotten fd's desc + 1 after dropping the entry:
 * inotify.c sets it once this process holds a placeholder fd, whose last close it decides
 * (a callback, so that the fd table does not call up into inotify). */
extern void (*_Atomic ft_forget_hook)(uint32_t desc1);
/* Grow the local mapping so it covers at least need bytes. */
char *ft_map_grow(struct ft_map *m, int fd, uint64_t need);
/* The mapping covering [0, need): every fast read and write asks, so the common case is inline. */
static inline char *ft_map_covering(struct ft_map *m, int fd, uint64_t need)
{
    if (likely(atomic_load_explicit(&m->len, memory_order_acquire) >= need))
        return atomic_load_explicit(&m->base, memory_order_acquire);
    return ft_map_grow(m, fd, need);
}
void ft_mark_disk(int fd);
int ft_install_dup(int newfd, int oldfd);
void ft_lock(void);
void ft_unlock(void);
/* Around a change of a managed fd, from its kernel step to its table step (fork waits);
 * and around fork, from the table's copy until the kernel copied its fds (fdtable.c). */
void ft_change_begin(void);
void ft_change_end(void);
void ft_fork_begin(void);
void ft_fork_end(int child);
/* The same hold for vfork: taken by the parent (0, or -1: this thread is inside a change: fork),
 * let go by the child once the kernel copied the fds, or by the parent if the child never did. */
int ft_vfork_begin(void);
void ft_vfork_child_end(void);
void ft_vfork_parent_end(void);

#endif
