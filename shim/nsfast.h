/*
 * shim/nsfast.h - namespace changes made in the calling process (nsfast.c):
 * create, unlink and rename of in-memory files under the region's ns_lock,
 * with memfds and slots from a pool the daemon lends in batches.
 */
#ifndef SHIM_NSFAST_H
#define SHIM_NSFAST_H

#include <sys/types.h>

#include "compiler.h"

/*
 * Create abs (absolute, canonical, managed, not in memory) as a new in-memory
 * file for open(2) with flags and mode (umask applied by the caller); absent:
 * the caller's lstat of abs just found nothing there.
 * Returns the program's fd (holding one open_count reference on *inode of
 * generation *gen, which the caller attaches a description to; *priv is
 * our pool fd of the memfd, for the caller's fd table to keep or close), -1 with errno (EIO: the lock stayed held 5 s), or
 * -2: not a case done here (the name exists on disk, the parent is not a
 * plain writable directory, placement wants the daemon, no pool entry...):
 * ask the daemon as before.
 */
#include <stdint.h>

/* disk_seen: nsf_disk_names() read before the caller's look at the disk (path_canon's lstat). */
int nsf_create(const char *abs, int flags, mode_t mode, int absent, uint32_t disk_seen, uint32_t *inode, uint32_t *gen,
               int *priv);

/* Unlink in-memory file abs (found by the caller as inode idx of gen).
 * 0, -1 with errno, or -2: ask the daemon. */
int nsf_unlink(const char *abs, uint32_t idx, uint32_t gen);

/* Rename in-memory file a to b (free, another in-memory file, or a disk name that
 * is not a directory, which the kernel unlinks under the lock), flags 0
 * or RENAME_NOREPLACE; the caller made the kernel's checks of both paths.
 * 0, -1 with errno, or -2: ask the daemon. */
int nsf_rename(const char *a, const char *b, unsigned flags);

/* A pool entry for a directory (nsdir.c): its slot, the daemon's fd number of its
 * memfd and ours (-1 when the pool lends slots without fds, EPH_POOL_NOFDS).  -1: none.
 * Given back with back=1 if unused, else our fd (if any) is closed. */
int nsf_take_slot(uint32_t *inode, int32_t *daemon_fd, int *fd);
void nsf_give_slot(uint32_t inode, int32_t daemon_fd, int fd, int back);

/* rpc_open_daemon_fd (the daemon's fd number n, as /proc/<daemon>/fd/n), through
 * a directory fd kept open: one lookup instead of four.  The fd, or -1 with errno. */
int nsf_open_daemon_fd(int n, int flags);
/* The daemon's memfd n for the program (O_RDWR): by pidfd_getfd, which sets nsf_ddesc_took (the fd
 * is on the daemon's description, close-on-exec: ft_ddesc_mark), or the /proc way. */
int nsf_daemon_fd(int n, int cloexec);
extern SH_TLS int nsf_ddesc_took;

/* In a fork child: the parent's pool entries are not ours. */
int nsf_hold(void);
extern SH_TLS int nsf_held; /* between nsf_hold and nsf_unhold: nobody may ask the daemon */

void nsf_unhold(void);
/* Between nsf_hold and nsf_unhold, after a kernel call that made a name under a root. */
void nsf_disk_named(void);
/* The count nsf_disk_named moves (0 when not attached). */
uint32_t nsf_disk_names(void);

void nsf_after_fork(void);

/* A vfork child's first file without a pool round trip (nsfast.c, "Slots handed"): before a real
 * vfork (the parent), the child's exec (EPHEMERA_POOL into buf: 1 when written), its failure, the
 * parent's return; and a new image's reading of the variable. */
void nsf_vfork_reserve(void);
int nsf_exec_pool_env(char *buf, size_t cap);
void nsf_exec_pool_failed(void);
void nsf_vfork_done(void);
void nsf_init_inherited(void);

#include <sys/stat.h>
/*
 * The directory a name is added to or removed from: on disk (its stat, from the dircache) or in
 * memory (shim/nsdir.c: its slot, whose count and times the change's record moves).
 */
struct nsf_dir {
    struct stat st;
    int32_t midx; /* -1: on disk */
    uint32_t mgen;
};
/* May the caller add a name (file_uid -1) or remove one owned by file_uid in abs's parent: 0 with
 * *pd, or -2 (the daemon answers). */
int nsf_dir_writable_by_caller(const char *abs, long long file_uid, struct nsf_dir *pd);
/* Under ns_lock: the parent of abs that pd describes is still that directory. */
int nsf_dir_same(const char *abs, const struct nsf_dir *pd);
/* Into the open record: a name added (1), removed (-1) or replaced (0) in pd; 0 or 2-3 operations. */
void nsf_j_dir(struct eph_shm_header *h, const struct nsf_dir *pd, int d, int64_t now);
/* After the record, under the lock: a disk parent's times (dirtouch); 1 when the table is full. */
int nsf_touch(const struct nsf_dir *pd, int64_t now);

/* The parent directory of absolute path abs ("/" for a name in the root). */
void nsf_parent(const char *abs, char *out);

/* Under ns_lock: a name was added to or removed from disk directory (dev, ino)
 * at now; its times show it from the region (struct eph_dirtouch).  0, or -1:
 * the table is full, and the caller calls nsf_touch_kernel(abs of the name)
 * after the unlock. */
int nsf_touch_dir(uint64_t dev, uint64_t ino, int64_t now);
void nsf_touch_kernel(const char *abs);

/* A utimensat of directory (dev, ino) through the shim: the times recorded for
 * it in the region give way to the ones the program set. */
void nsf_dir_untouch(uint64_t dev, uint64_t ino);

#endif
