/*
 * ephemera/shm.h - the shared-memory region that ephemerad and every shimmed
 * process of one function instance map MAP_SHARED.
 *
 * Why shared memory: the fast path (read/write/lseek/fstat on an in-memory
 * file) must not make a syscall or a round trip to the daemon.  Everything
 * the fast path needs - file sizes, states, open file descriptions with their
 * offsets - therefore lives here.  Mutations of the *namespace* (create,
 * unlink, rename, evict) are made under one robust process-shared mutex
 * (ns_lock, include/ephemera/nslock.h) by the daemon and, for the common
 * cases (create, unlink and rename of an in-memory file), by the shim itself;
 * readers use the ns_seq seqlock and take no lock.
 *
 * Layout of the region (all offsets from the header, all page aligned):
 *   struct eph_shm_header
 *   struct eph_inode   inodes[ninodes]
 *   struct eph_desc    descs[ndescs]
 *   uint32_t           buckets[nbuckets]   (inode index + 1, 0 = empty)
 *
 * Ownership rules (who may write which field) are on each field:
 *   [D]  daemon only
 *   [S]  shim (any process), with the stated synchronisation
 *   [DS] both, with the stated synchronisation
 */
#ifndef EPHEMERA_SHM_H
#define EPHEMERA_SHM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define EPH_SHM_MAGIC 0x31534d4850455045ull /* "EPEPHMS1" */
#define EPH_SHM_VERSION 15u /* 5: eph_lock_t holds the holder's pid; 6: the journal has a second path (a rename over a linked file's name); 7: eph_inode.xattrs; 8: the header's moves_begun and twin_seq, the journal's ADD64 steps; 9: the journal's MOVETREE step and its third path (a directory in memory renamed with its subtree); 10: the header's twinrecs (where the twins of directories in memory went); 11: the header's shared list of directories in memory (mdir_list); 12: the stand-ins' holds on the twins' records (standin_holds), twinrecs sized to them and no longer a ring; 13: the journal's XTREE step (RENAME_EXCHANGE of directories in memory, with their subtrees); 14: the slots' directory hashes (dirhash_off); 15: the fd tables' in-flight words paired per thread slot (EPH_LEDGER_REF_WORD, _READ_WORD), which the daemon reads: a shim and a daemon of different builds must not share a region */
#define EPH_PATH_MAX 1024        /* longer managed paths are kept on disk */
#define EPH_DEFAULT_INODES 16384u
#define EPH_DEFAULT_DESCS 65536u
/* Set in eph_inode.ino: in-memory files report their root's st_dev, and no disk
 * file there has an inode number this high (below 2^53: exact in a double). */
#define EPH_INO_TAG (1ull << 44)

/*
 * The st_ino a file reports: its memfd's own number in the low 32 bits (shmem's
 * are 32-bit; the exec check in shim/intercept_proc.c compares those), how many
 * files the memfd served before in bits 32-43, and EPH_INO_TAG.  A reused memfd
 * thus gives every file a number no earlier file had (until 4096 reuses), as
 * tmpfs does, rather than the deleted one's.
 */
static inline uint64_t eph_file_ino(uint64_t memfd_ino, uint32_t uses)
{
    return (memfd_ino & 0xffffffffull) | (uint64_t)(uses & 0xfffu) << 32 | EPH_INO_TAG;
}

/* The st_ino of the next file on the memfd whose last file reported ino. */
static inline uint64_t eph_file_ino_next(uint64_t ino)
{
    return eph_file_ino(ino, (uint32_t)(ino >> 32) + 1);
}

/* A kernel timestamp (seconds, nanoseconds) as the nanoseconds the region keeps. */
static inline int64_t eph_ns(int64_t sec, int64_t nsec) { return sec * 1000000000 + nsec; }

/* Inode states.  Only the daemon moves a file out of MEM. */
enum eph_state {
    EPH_FREE = 0,   /* slot unused */
    EPH_MEM = 1,    /* bytes live in the memfd; fast path allowed */
    EPH_MOVING = 2, /* daemon is copying it to disk; fast path must back off and wait */
    EPH_DISK = 3,   /* bytes live in the disk file (disk_fd); processes swap their fds */
    EPH_MDIR = 4,   /* a directory that exists only here (shim/nsdir.c): no bytes, no fds, never
                     * opened; anything but mkdir, rmdir and stat of it asks the daemon to give it
                     * a disk twin first (daemon/dirtwin.c), after which the slot is freed */
    EPH_NAME = 5,   /* a further name of an in-memory file (a hard link, shim/nslink.c): the slot holds
                     * only the name (path, hash, next) and link_to/link_gen, the inode that owns the
                     * memfd, nlink and everything else; a lookup of the name gives that inode.  Its
                     * ino and mode are copies of the file's (readdir's d_ino and d_type) */
};

/*
 * A process-shared lock usable by the daemon and the shim.  A futex mutex
 * whose word is 0 when free, else the holder's pid | EPH_LOCK_WAITERS once
 * someone sleeps on it: a waiter takes over the lock of a holder that died.
 * Implemented in include/ephemera/lock.h so both sides share one
 * implementation.  Still 32 bits, as the 0/1/2 word before it, so the layout
 * stays; the version changed (5) all the same, since a shim of the old
 * encoding would break a new holder's exclusion (it stores 2 over a pid).
 */
typedef struct { _Atomic uint32_t word; } eph_lock_t;

struct eph_inode {
    _Atomic uint32_t state;      /* [D] enum eph_state; shim reads with acquire */
    _Atomic uint32_t epoch;      /* [D] bumped when the bytes move (MEM->DISK); futex word for waiters */
    _Atomic int32_t inflight;    /* [S] fast-path operations in progress (Dekker with state) */
    _Atomic uint32_t gen;        /* [D] bumped each time the slot is reused; guards stale references */
    eph_lock_t lock;             /* [DS] serialises size/capacity changes and MEM->MOVING */
    _Atomic uint32_t open_count; /* [S] open file descriptions (eph_desc) referring to this inode */
    _Atomic uint32_t nlink;      /* [D] 1 while named in the namespace, 0 after unlink */
    _Atomic uint32_t pinned;     /* [SD] nonzero while the app may mmap() it: never evict.  A count the
                                  * shim bumps per mapping; the daemon clears it once nobody maps it */
    int32_t mem_fd;              /* [D] memfd number inside the daemon (open via /proc/<pid>/fd/N) */
    int32_t disk_fd;             /* [D] disk file number inside the daemon, valid once state==DISK */
    _Atomic uint32_t holes;      /* [DS] 1 once a size change or punch left a hole below size: reads
                                  * then use pread (a fault through the mapping would allocate the
                                  * page, tmpfs's read does not) and st_blocks counts pages; 0 again
                                  * when the size drops to 0 */
    _Atomic uint32_t shadowed;   /* [S] nonzero once an inotify placeholder was made for a file of this
                                  * slot (shim/inotify.c): a write then looks for it.  A stale 1 after
                                  * reuse costs that look only while something is watched (fills the
                                  * padding before size: no other field moves) */
    _Atomic uint64_t size;       /* [DS] logical size; changed under lock, read lock-free */
    _Atomic uint64_t capacity;   /* [DS] kernel size (ftruncate) of the memfd, >= size; under lock */
    _Atomic uint64_t last_use;   /* [S] CLOCK_MONOTONIC_COARSE ns of the last access, for LRU */
    uint64_t ino;                /* [D] st_ino: the memfd's own (low 32 bits) | its earlier files << 32
                                  * | EPH_INO_TAG (unique on dev; eph_file_ino) */
    uint64_t dev;                /* [D] st_dev reported for the file: its root's file system */
    uint32_t mode;               /* [DS] st_mode incl. S_IFREG; chmod under lock */
    uint32_t uid, gid;           /* [DS] owner; chown under lock */
    uint32_t next;               /* [DS] next inode index + 1 in the hash chain, 0 = end; ns_lock */
    uint32_t hash;               /* [DS] eph_path_hash(path); ns_lock */
    _Atomic int32_t lent_to;     /* [DS] pid of the shim this FREE slot was lent to as a pool entry
                                  * (EPH_OP_POOL), 0 otherwise; the shim clears it when it makes the
                                  * slot a file, the daemon when it takes an unused entry back */
    _Atomic uint32_t times_seen; /* [S] a stat read the times since they last changed: the next
                                  * change within the same coarse tick takes the fine clock (multigrain,
                                  * as tmpfs; see ARCHITECTURE.md, Shim, "Times").  Stale 1 is harmless. */
    _Atomic uint32_t xattrs;     /* [S] 1 once an extended attribute was set on the memfd through the
                                  * shim: a shim then never keeps the memfd for its next file
                                  * (nsfast.c; the daemon asks flistxattr).  Version 6, in what was
                                  * padding before atime_ns: no other field moves */
    _Atomic int64_t atime_ns;    /* [S] times as ns since the epoch (CLOCK_REALTIME_COARSE) */
    _Atomic int64_t mtime_ns;
    _Atomic int64_t ctime_ns;
    int64_t btime_ns;            /* [DS] birth time */
    /* EPH_MDIR only, under ns_lock (journalled): names directly inside it (st_size is 40 + 20 per
     * entry, as tmpfs), how many of them are directories (st_nlink is 2 + that), and the disk
     * directory it was made in (its st_ino; 0 when the parent is itself in memory), whose
     * st_nlink the shim raises by one per such child. */
    uint32_t dir_entries, dir_subdirs;
    uint64_t dir_parent_ino;
    /* Hard links in memory (version 4, shim/nslink.c), under ns_lock, journalled.  A file's slot
     * keeps its first name in path; every further name is an EPH_NAME slot on the list
     * link_head -> link_next (index + 1, 0 = end), and nlink counts them all.  An EPH_NAME slot
     * names link_to, whose gen was link_gen when it was made. */
    uint32_t link_head;          /* [DS] a file's first EPH_NAME slot + 1, 0 = none */
    uint32_t link_next;          /* [DS] an EPH_NAME slot's next on its file's list */
    uint32_t link_to, link_gen;  /* [DS] an EPH_NAME slot's file */
    char path[EPH_PATH_MAX];     /* [DS] absolute normalised path; "" after unlink; ns_lock */
};

struct eph_desc {                /* an open file description, shared by dup and fork */
    _Atomic uint32_t refs;       /* [S] fds (in all processes) that refer to it; 0 = free slot */
    uint32_t inode;              /* [S] inode index, set at allocation */
    uint32_t inode_gen;          /* [S] inode gen at open */
    _Atomic uint32_t flags;      /* [S] O_ACCMODE|O_APPEND|O_NONBLOCK|O_DIRECT... as the app asked (F_SETFL) */
    eph_lock_t lock;             /* [S] serialises offset updates (read/write/lseek on this description) */
    uint32_t pad;
    _Atomic uint64_t offset;     /* [S] file offset */
};

struct eph_counters {            /* monotonically increasing; shim adds in batches */
    _Atomic uint64_t fast_reads;     /* reads served by memcpy without a syscall */
    _Atomic uint64_t fast_writes;    /* writes served by memcpy without a syscall */
    _Atomic uint64_t fast_seeks;     /* lseeks served without a syscall */
    _Atomic uint64_t fast_stats;     /* stat/fstat served from this region */
    _Atomic uint64_t bytes_read;     /* bytes copied by fast reads */
    _Atomic uint64_t bytes_written;  /* bytes copied by fast writes */
    _Atomic uint64_t slow_ops;       /* ops on managed fds that went to the kernel (disk state, stdio sync...) */
    _Atomic uint64_t files_created;  /* files created in memory */
    _Atomic uint64_t files_on_disk;  /* creates placed straight on disk (no room / too big) */
    _Atomic uint64_t evictions;      /* files moved memory -> disk */
    _Atomic uint64_t bytes_evicted;  /* bytes written to disk by evictions */
    _Atomic uint64_t materialisations; /* evict-all before exec of a program that cannot load the shim */
    _Atomic uint64_t files_in_memory;      /* current */
    _Atomic uint64_t files_in_memory_peak;
    _Atomic uint64_t bytes_in_memory;      /* current: sum of capacity over MEM inodes */
    _Atomic uint64_t bytes_in_memory_peak; /* since the daemon's last `peaks` reset (it keeps the
                                             * lifetime peak itself); raised at every growth */
};

/*
 * Directory times an eviction changed.  Linking the evicted file at its path
 * moves the directory's ctime and mtime, which tmpfs would not (the move is
 * ours, not the program's): `tar c` then says "file changed as we read it".
 * The daemon records the times the kernel reports after its link and those
 * it reported before; the shim shows the earlier ones for as long as the
 * kernel's are still exactly the recorded ones (any later change moves them).
 */
#define EPH_DIRTIMES 64
struct eph_dirtime {
    _Atomic uint32_t seq;        /* [D] seqlock: odd while the daemon rewrites the entry */
    uint32_t pad;
    _Atomic uint64_t dev, ino;   /* [D] the directory; ino 0 = unused */
    _Atomic int64_t kctime_ns, kmtime_ns; /* [D] the kernel's times right after the eviction's link */
    _Atomic int64_t ctime_ns, mtime_ns;   /* [D] the times shown instead */
};

/*
 * The redo journal of the namespace change in progress (nslock.h).  The holder
 * of ns_lock records the change as a few idempotent operations (and adds to a
 * counter, each marked as it is applied, so made once), sets COMMITTED,
 * applies them inside an odd ns_seq, then sets EMPTY.  A locker that inherits
 * the lock from a dead holder (EOWNERDEAD) applies a COMMITTED record again and
 * discards any other: the namespace is then exactly before or after the change.
 */
#define EPH_JOURNAL_OPS 12
enum eph_jstate { EPH_J_EMPTY = 0, EPH_J_BUILDING = 1, EPH_J_COMMITTED = 2 };
enum eph_jkind {
    EPH_JOP_SET32 = 1,  /* *(uint32_t *)(region + off) = val */
    EPH_JOP_SET64 = 2,  /* *(uint64_t *)(region + off) = val */
    EPH_JOP_REMOVE = 3, /* take inode off its hash chain; path "", nlink 0 (no-op if already off) */
    EPH_JOP_INSERT = 4, /* name inode journal.path and chain it (no-op if already chained there) */
    EPH_JOP_INSERT2 = 5, /* the same with journal.path2 (version 6) */
    EPH_JOP_ADD64 = 6,  /* *(uint64_t *)(region + off) += val (two's complement: a negative val takes
                         * away), once: the op becomes EPH_JOP_ADDED as it is applied (nslock.h) */
    EPH_JOP_ADDED = 7,  /* an ADD64 already applied: nothing to do */
    /* Version 9: every slot named journal.path2 or below it is renamed to journal.path plus the
     * rest of its name, keeping its nlink (a directory in memory renamed with its subtree,
     * shim/nsdir.c).  val: strlen(path2) in the low 32 bits; while one slot is in flight, arg is
     * its index + 1, the high 32 bits of val its old hash and journal.path3 its new name, so a
     * redo finishes that slot first and then looks for the rest (nslock.h, eph_j_move_tree). */
    EPH_JOP_MOVETREE = 8,
    /* Version 13: one of the three steps of RENAME_EXCHANGE of two directories in memory, or of
     * one and a file in memory (shim/nsdir.c, nsd_exchange): journal.path and journal.path2 name
     * the two, and the steps move journal.path's subtree to EPH_XTREE_PARK (a prefix no name
     * has: managed names are absolute), journal.path2's to journal.path, then the parked one to
     * journal.path2.  val's low 32 bits: the step (1, 2, 3); arg, val's high half and path3 as
     * MOVETREE's slot in flight.  A step becomes EPH_JOP_XTREE_DONE as it ends, so a redo
     * skips it. */
    EPH_JOP_XTREE = 9,
    EPH_JOP_XTREE_DONE = 10, /* a step of XTREE already made: nothing to do */
};
/* The prefix an exchange parks a subtree at: no leading '/', so no managed name is at or below it;
 * one record at a time holds ns_lock, so one constant does.  Shorter than any managed name. */
#define EPH_XTREE_PARK "~"
struct eph_jop {
    uint32_t kind;
    uint32_t arg;                /* SET: region offset; REMOVE/INSERT: inode index */
    uint64_t val;
};
struct eph_journal {
    _Atomic uint32_t state;      /* enum eph_jstate */
    uint32_t n;
    int32_t holder;              /* tid of the builder, for the recovery's log line */
    uint32_t pad;
    struct eph_jop op[EPH_JOURNAL_OPS];
    char path[EPH_PATH_MAX];     /* the name an INSERT gives */
    /* The name an INSERT2 gives: a rename over the own name of a file with further names (nslink.c)
     * gives the source the target's name (path) and the target file its first further name. */
    char path2[EPH_PATH_MAX];
    /* The new name of the slot a MOVETREE step is renaming (version 9): written whole before the
     * step marks that slot in flight, so a redo never reads a name half copied. */
    char path3[EPH_PATH_MAX];
};

#define EPH_PLACE_RECENT 4
#define EPH_WATCH_DIRS 64         /* directories with an inotify shadow (shim/inotify.c) */

/*
 * A managed file the kernel serves (placed straight on disk, or moved there):
 * the bytes counted for it.  Claimed FREE -> FILLING -> LIVE; see diskbytes.h.
 */
#define EPH_DFILES 512
enum eph_dfile_state { EPH_DF_FREE = 0, EPH_DF_FILLING = 1, EPH_DF_LIVE = 2 };
struct eph_dfile {
    _Atomic uint32_t state;      /* [DS] enum eph_dfile_state */
    uint32_t pad;
    _Atomic uint64_t dev, ino;   /* [DS] the disk file, set while FILLING */
    _Atomic uint64_t size;       /* [DS] its bytes as counted in disk_bytes */
};

/*
 * Times of a disk directory that a shim moved by creating, removing or renaming
 * an in-memory file in it (issue 15: no utimensat per create).  The kernel's own
 * times of the directory stay where they were; a shim's stat of the directory
 * shows the later of the kernel's and these, so a later change by the kernel
 * still shows.  Open addressing by ino; an entry is never removed (a directory
 * removed and its ino reused starts later than any time recorded for the old
 * one), only zeroed by a utimensat of the directory through the shim.  Written
 * under ns_lock; readers use the entry's seqlock.  Full: the shim moves the
 * kernel's times with utimensat, as before.
 */
#define EPH_DIRTOUCH 256
#define EPH_MDIR_LIST 256 /* slots of the header's mdir_list */
struct eph_dirtouch {
    _Atomic uint32_t seq;        /* [S] odd while a holder of ns_lock rewrites the entry */
    uint32_t pad;
    _Atomic uint64_t dev, ino;   /* [S] the directory; ino 0 = unused */
    _Atomic int64_t mtime_ns, ctime_ns; /* [S] the latest change made in memory */
};

/*
 * Where a directory in memory went when the daemon gave it its disk twin (version 10,
 * include/ephemera/twinrec.h).  A stand-in fd (shim/nsdirfd.c) knows its directory by slot and
 * generation, and the slot is dropped at the twin, at a moment its owner does not see; a rename
 * by another process may move the directory before or after that.  The record keeps the twin's
 * path as it is now: written under ns_lock by the twin (daemon/dirtwin.c), moved under ns_lock by
 * every rename of a disk directory through the shim or the daemon.  Version 12: a record is reused
 * only when no stand-in holds its slot and generation (struct eph_standin_hold below), so a
 * stand-in's record stays for as long as the stand-in may need it; as many records as holds.
 */
#define EPH_STANDIN_HOLDS 512
#define EPH_TWINRECS EPH_STANDIN_HOLDS
struct eph_twinrec {
    _Atomic uint32_t seq;        /* [DS] odd while a holder of ns_lock writes the record, or a kernel
                                  * rename may be moving the twin; 0: never written */
    uint32_t slot, gen;          /* [DS] the directory's slot and generation while it was in memory */
    uint32_t pad;
    uint64_t dev, ino;           /* [DS] the twin's disk identity */
    char path[EPH_PATH_MAX];     /* [DS] the twin's path now */
};

/*
 * A stand-in's hold on the record its directory's twin will have (version 12, twinrec.h).  A shim
 * claims one for each stand-in fd (shim/nsdirfd.c, ndf_open, ndf_dup, and for a fork child's copies
 * before the fork) and gives it back when the fd stops being a stand-in; the daemon reuses a record
 * only if no hold names its slot and generation.  pid: 0 free; the holder's pid, with
 * EPH_HOLD_FILLING while the claimer writes slot and gen.  A holder that dies keeps its holds until
 * a claimer that finds none free takes those of dead pids back: never wrong, only kept longer.
 */
#define EPH_HOLD_FILLING 0x80000000u
struct eph_standin_hold {
    _Atomic uint32_t pid;        /* [S] 0, or the holder (| EPH_HOLD_FILLING while filled in) */
    _Atomic uint32_t slot, gen;  /* [S] the stand-in's directory while it was in memory */
    uint32_t pad;
};

struct eph_shm_header {
    uint64_t magic;              /* EPH_SHM_MAGIC */
    uint32_t version;            /* EPH_SHM_VERSION */
    uint32_t header_size;        /* sizeof(struct eph_shm_header), checked by the shim */
    uint32_t ninodes;
    uint32_t ndescs;
    uint32_t nbuckets;           /* power of two */
    _Atomic int32_t daemon_pid;  /* [D] the daemon that serves the region now: a new one writes its own
                                  * pid when it takes the region over (shims name its fds through it) */
    uint64_t inodes_off;         /* byte offsets of the arrays from the header */
    uint64_t descs_off;
    uint64_t buckets_off;
    uint64_t total_size;         /* size of the whole region */
    _Atomic uint64_t ns_seq;     /* [DS] seqlock over buckets/next/path: odd while a holder of
                                  * ns_lock applies a change */
    _Atomic uint32_t inode_hwm;  /* [D] 1 + highest inode index ever used (bounds scans) */
    _Atomic uint32_t desc_hint;  /* [S] where to start looking for a free desc */
    _Atomic uint64_t budget;     /* [D] bytes the in-memory files may occupy now */
    _Atomic uint64_t grow_step_max; /* [D] largest single capacity step (bytes) */
    struct eph_counters c;
    _Atomic uint64_t time_floor; /* [DS] latest fine-grained file time handed out: a coarse stamp is
                                  * raised to it, so a later change never looks older (multigrain floor) */
    _Atomic uint32_t dirtimes_used; /* [D] entries of dirtimes ever filled (0: nothing to look up) */
    struct eph_dirtime dirtimes[EPH_DIRTIMES]; /* [D] */
    /* ---- version 2: namespace changes by any process ---- */
    pthread_mutex_t ns_lock;     /* [DS] ROBUST | PSHARED: every change of chains, paths, nlink */
    struct eph_journal journal;  /* [DS] under ns_lock */
    _Atomic uint32_t reclaim_pending; /* [S] 1: a shim unlinked a file nobody has open; the daemon
                                  * frees such files (ns_reclaim) at its next request or tick */
    _Atomic uint32_t ns_recoveries; /* [DS] times a locker recovered ns_lock from a dead holder */
    _Atomic uint32_t ns_unchecked;  /* [DS] 1 after a recovery until the daemon ran ns_check() */
    _Atomic uint32_t place_next;    /* [DS] next slot of place_recent; under ns_lock */
    /* The last files created, as inode index + 1 | gen << 32, or EPH_PLACE_DISK for one placed on
     * disk: the daemon's placement guess (daemon/place.c) reads their sizes; a shim creates in
     * memory itself only while none of them went to disk and the largest fits. */
    _Atomic uint64_t place_recent[EPH_PLACE_RECENT]; /* [DS] under ns_lock */
    _Atomic uint64_t shim_creates;  /* [S] files the shims created without the daemon */
    _Atomic uint64_t shim_unlinks;  /* [S] unlinks and renames the shims made without the daemon */
    /* ---- inotify for in-memory files (shim/inotify.c, ARCHITECTURE.md "inotify") ---- */
    /* [S] entries of watch_dirs ever filled; 0 while nothing under the roots was ever watched.  The
     * write path loads it after each write: alone on its cache line, written only when a directory
     * gets its shadow, so with nothing watched it stays shared in every core's cache. */
    _Alignas(64) _Atomic uint32_t watch_used;
    uint32_t watch_pad[15];
    _Atomic uint64_t watch_dirs[EPH_WATCH_DIRS]; /* [S] 64-bit hash of each shadowed directory's path */
    /* ---- file bytes on disk, counted at every size change (include/ephemera/diskbytes.h) ---- */
    _Atomic uint64_t disk_bytes;    /* [DS] sum of dfiles[].size: the managed files on disk we count */
    _Atomic uint64_t counted_peak;  /* [DS] highest bytes_in_memory + disk_bytes at a growth of either
                                     * while disk_bytes > 0, since the daemon's last `peaks` reset */
    _Atomic uint32_t dfiles_hwm;    /* [DS] 1 + highest dfiles slot ever claimed (bounds scans) */
    uint32_t dfiles_pad;
    struct eph_dfile dfiles[EPH_DFILES]; /* [DS] */
    /* Bumped by every change a shim makes, or asks the daemon to make, that may move a directory
     * or change its mode or owner (rename, rmdir, chmod, chown, xattrs, unlink of a disk name):
     * the stats of disk directories a shim keeps (shim/dircache.c) hold while it stays.  The
     * daemon bumps it too, under ns_lock, when it removes or renames for a shim: the caller's own
     * bump comes after the reply, and never if it is killed first. */
    _Atomic uint64_t dir_gen;       /* [DS] */
    _Atomic uint32_t dirtouch_used; /* [S] entries of dirtouch in use (0: nothing to look up) */
    _Atomic uint32_t disk_names;    /* [DS] bumped under ns_lock after a kernel call made a name under
                                     * a root: a shim's open with O_CREAT, link or rename, the daemon's
                                     * eviction: a create in memory that looked at the disk before the
                                     * lock asks the daemon instead if it moved (shim/nsfast.c,
                                     * nsf_create) */
    struct eph_dirtouch dirtouch[EPH_DIRTOUCH]; /* [S] under ns_lock */
    /* ---- version 3: directories in memory (shim/nsdir.c, daemon/dirtwin.c) ---- */
    _Atomic uint32_t mdirs_live;    /* [DS] EPH_MDIR inodes named now; 0: nobody need look for them.
                                     * Under ns_lock, journalled */
    _Atomic uint32_t mdirs_off;     /* [DS] not 0: mkdir goes to disk, since a walk through a symlink
                                     * must never miss an in-memory directory.  EPH_MDIRS_ALWAYS:
                                     * for good (a root held a symlink at the start, a program
                                     * without the shim ran, a symlink got a second name); the
                                     * low bits (EPH_MDIRS_SYMLINKS): symlinks the shims made under
                                     * a root that still exist, counted up under ns_lock before
                                     * each is made and down after its unlink (shim/nsdir.c) */
    _Atomic uint64_t shim_mkdirs;   /* [S] directories made (and removed) in memory; added in the
                                     * mkdir's record (EPH_JOP_ADD64) after the slot's state: every
                                     * slot that becomes EPH_MDIR moves it (shim/nsdir.c,
                                     * nsd_children_of keeps its list of them by it) */
    _Atomic uint64_t dir_twins;     /* [D] in-memory directories given a disk twin */
    _Atomic uint32_t dirs_gone;     /* [DS] bumped under ns_lock after any directory was removed or
                                     * renamed: a change that read it, then saw its parent, then
                                     * took the lock, asks the daemon instead if it moved */
    /* ---- the keeper (include/ephemera/keeper.h): a daemon that dies is replaced ---- */
    _Atomic int32_t keeper_pid;     /* [D] the process that holds the region's fds and restarts the
                                  * daemon (the daemon's parent when started with --keeper-fd), or 0 */
    _Atomic uint32_t daemon_down;   /* [KD] EPH_DAEMON_UP; the keeper sets RESTARTING when it sees the daemon
                                  * die and GONE when no new one could start; the new daemon sets UP once
                                  * it listens.  A shim whose request failed waits on it (bounded). */
    _Atomic uint32_t takeovers;     /* [D] times a new daemon took the region over */
    /* [D] bumped by every eviction after the file is MOVING and before it is DISK: a shim whose
     * last look at its fds saw the same count has no fd whose file left memory since, so a stat
     * that reaches the kernel skips the look (shim/fp_settle.c, fp_settle_moved) */
    _Atomic uint64_t moves_begun;
    /* [D] odd while the daemon gives an in-memory directory its disk twin (from before its mkdir
     * to after the slot left the hash): a disk directory's st_nlink, the kernel's count plus its
     * subdirectories in memory (shim/nsdir.c, nsd_disk_dir), is read again when it moved, since
     * meanwhile the twin may be counted twice, or not at all */
    _Atomic uint32_t twin_seq;
    /* [S] version 9: directories in memory renamed in memory, with their subtrees (shim/nsdir.c,
     * nsd_rename_dir), rather than given their disk twins first */
    _Atomic uint32_t pad_v9;
    _Atomic uint64_t shim_dir_renames;
    /* ---- version 10: where the twins went (struct eph_twinrec above) ---- */
    _Atomic uint32_t twinrec_next;  /* [D] under ns_lock: where the next twin looks first when every
                                     * record is held (cannot happen: as many records as holds) */
    uint32_t twinrec_pad;
    struct eph_twinrec twinrecs[EPH_TWINRECS]; /* [DS] */
    /* [S] version 11: the slots that are EPH_MDIR, as a shim found them, shared so that each new
     * process need not read every slot to find them (shim/nsdir.c, nsd_children_of: the st_nlink
     * of a disk directory).  A cache, never the truth: complete for shim_mkdirs == mdir_list_made
     * and takeovers == mdir_list_takeovers (a slot becomes EPH_MDIR only in nsd_mkdir's record,
     * which moves shim_mkdirs); a listed slot is read live.  Written by a shim after its walk of
     * the slots and by nsd_mkdir (under ns_lock) appending its slot, each between an odd and an
     * even mdir_list_seq taken by compare-and-swap; readers copy it and check the seq.  A writer
     * killed while it was odd leaves it odd: every process then walks, as before version 11. */
    _Atomic uint32_t mdir_list_seq;
    _Atomic uint32_t mdir_list_n;
    _Atomic uint64_t mdir_list_made;
    _Atomic uint32_t mdir_list_takeovers;
    _Atomic uint32_t mdir_walks; /* [S] walks of every slot for them (the stats' dir_slot_walks) */
    _Atomic uint32_t mdir_list[EPH_MDIR_LIST];
    /* ---- version 12: records kept while a stand-in holds them (struct eph_standin_hold) ---- */
    _Atomic uint32_t twinrec_hwm;   /* [D] 1 + highest record ever filled: bounds the readers' scans */
    _Atomic uint32_t holds_hwm;     /* [S] 1 + highest hold ever claimed: bounds the daemon's scan */
    struct eph_standin_hold standin_holds[EPH_STANDIN_HOLDS]; /* [S] */
    /* [DS] version 14: the offset of an array of one uint32_t per slot, the hash of the directory
     * part of the slot's path (eph_dir_hash; 0 once the slot has no name), written with the path
     * itself (eph_chain_name, eph_chain_remove: under ns_lock and an odd ns_seq).  A listing
     * (shim/intercept_dir.c) reads these 4 bytes a slot and the slot itself only where they match
     * the directory, instead of two cache lines of every slot up to the high-water mark. */
    uint64_t dirhash_off;
};
#define EPH_MDIRS_ALWAYS 0x80000000u
#define EPH_MDIRS_SYMLINKS 0x7fffffffu
enum eph_daemon_down { EPH_DAEMON_UP = 0, EPH_DAEMON_RESTARTING = 1, EPH_DAEMON_GONE = 2 };

#define EPH_PLACE_DISK (~0ull)

/*
 * A FREE slot, on no chain, made ready to become a new file or directory: a new
 * generation, no lock, pins, holes, bytes or links, open_count more references,
 * last used at lru_ns.  Its identity, times and state are the caller's to set.
 * Returns the new generation.  open_count is added, never stored: a FREE slot's
 * count is the references still to be given back by callers that took one on
 * the file it held just as that file was freed (fp_call_ref, open_cached: they
 * give it back when they see the generation moved on, fp_inode_release).  A
 * store would erase such a reference, and its late release would then take
 * one from the new file, leaving it unopened in the daemon's eyes while a
 * process still reads and writes it.
 */
static inline uint32_t eph_inode_fresh(struct eph_inode *in, uint32_t open_count, uint64_t lru_ns)
{
    uint32_t gen = atomic_load(&in->gen) + 1;
    atomic_store(&in->gen, gen);
    atomic_store(&in->epoch, 0);
    atomic_store(&in->inflight, 0);
    atomic_store(&in->lock.word, 0);
    atomic_fetch_add(&in->open_count, open_count);
    atomic_store(&in->nlink, 0);
    atomic_store(&in->pinned, 0);
    atomic_store(&in->holes, 0);
    atomic_store(&in->xattrs, 0); /* every memfd a file starts on carries none (nsfast.c, the daemon's stock) */
    in->disk_fd = -1;
    atomic_store(&in->size, 0);
    atomic_store(&in->capacity, 0);
    atomic_store(&in->last_use, lru_ns);
    in->link_head = in->link_next = in->link_to = in->link_gen = 0;
    return gen;
}

static inline struct eph_inode *eph_inodes(struct eph_shm_header *h)
{
    return (struct eph_inode *)((char *)h + h->inodes_off);
}
static inline struct eph_desc *eph_descs(struct eph_shm_header *h)
{
    return (struct eph_desc *)((char *)h + h->descs_off);
}
static inline _Atomic uint32_t *eph_buckets(struct eph_shm_header *h)
{
    return (_Atomic uint32_t *)((char *)h + h->buckets_off);
}
static inline _Atomic uint32_t *eph_dirhashes(struct eph_shm_header *h)
{
    return (_Atomic uint32_t *)((char *)h + h->dirhash_off);
}

/* FNV-1a; both sides must hash identically. */
static inline uint32_t eph_path_hash(const char *p)
{
    uint32_t x = 2166136261u;
    while (*p) {
        x ^= (unsigned char)*p++;
        x *= 16777619u;
    }
    return x;
}

/* eph_path_hash of p's directory part: up to its last '/' ("/" for a name at the top), so that
 * every name directly inside a directory d has eph_dir_hash == eph_path_hash(d). */
static inline uint32_t eph_dir_hash(const char *p)
{
    uint32_t x = 2166136261u, at = 0;
    int seen = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '/' && q != p) {
            at = x;
            seen = 1;
        }
        x ^= (unsigned char)*q;
        x *= 16777619u;
    }
    return seen ? at : eph_path_hash("/");
}

/* Atomically raise *peak to at least v. */
static inline void eph_atomic_max(_Atomic uint64_t *peak, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(peak, memory_order_relaxed);
    while (cur < v &&
           !atomic_compare_exchange_weak_explicit(peak, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

#endif
