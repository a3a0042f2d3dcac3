/*
 * shim/nsdirfd.h - fds of directories in memory without a disk twin (nsdirfd.c).
 *
 * An open of a directory that lives only in the region (EPH_MDIR, nsdir.c) for reading or as
 * O_PATH returns a real kernel fd on a stand-in (an empty directory this process made and
 * removed) and marks it FT_MDIRFD; the directory it stands for (slot and generation) is kept
 * here under the same number.  fstat, fdopendir + readdir and every *at call relative to it are
 * served as the directory's; anything else the shim sees on it first gives the directory its
 * twin and puts an fd of the twin in place of the stand-in (ndf_settle), which is the old path.
 */
#ifndef SHIM_NSDIRFD_H
#define SHIM_NSDIRFD_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>

#include "ephemera/proto.h"

#include "fdtable.h"

struct statx;

/* Stand-ins are in use (on unless EPHEMERA_MEMDIR_FDS=0, read once per process). */
int ndf_on(void);
/* Open abs, the directory in memory of slot idx (generation gen) that path_resolve found, with
 * the caller's flags (read-only, no O_CREAT): the stand-in fd, or -2 (not served here: the
 * caller goes the old way, which makes the twin). */
int ndf_open(const char *abs, uint32_t idx, uint32_t gen, int flags);
/* The same from (dirfd, path), resolved here without a twin: fd, or -2. */
int ndf_open_path(int dirfd, const char *path, int flags);
/* The path of the directory fd stands for (its current name: a rename keeps the fd on it): 0,
 * or -1 when it is gone (the kernel then answers on the stand-in, a removed directory). */
int ndf_path(int fd, char out[EPH_PATH_MAX]);
/* After a kernel call relative to fd failed with ENOENT: 1 if fd was a stand-in whose directory
 * got its disk twin since the call named it (the daemon's, for an eviction, at a moment the call
 * does not see): fd is now an fd of the twin and the call, which met the removed stand-in and did
 * nothing, is to be made again.  0 otherwise (the ENOENT is the call's answer).  errno kept. */
int ndf_moved(int fd);
/* fstat / statx of a stand-in: the directory's identity as stat of its path gives. */
int ndf_stat(int fd, struct stat *st);
int ndf_statx(int fd, unsigned mask, struct statx *stx);
/* Before a call the shim does not serve on fd: the twin, and fd becomes an fd of it (same
 * number, same close-on-exec and status flags).  Nothing for other fds; errno kept. */
void ndf_settle(int fd);
static inline void ndf_settle_if(int fd)
{
    if (__builtin_expect(ft_mdirfd(fd), 0))
        ndf_settle(fd);
}
/* newfd is now a copy of oldfd (dup, dup2, dup3, F_DUPFD): the mark and the directory too. */
void ndf_dup(int oldfd, int newfd);
/* Around a twin this process asks for (nsdir.c): stand-ins of directories that got theirs are
 * put on them in place. */
void ndf_before_twin(void);
void ndf_after_twin(void);
/* Before exec: every stand-in the new image keeps (no FD_CLOEXEC) is settled, so the image,
 * which knows nothing of the marks, holds real fds of the directories. */
void ndf_before_exec(void);
/* Before a sendmsg that carries fds (SCM_RIGHTS) to another process: every stand-in among them is
 * settled, so the receiver, which cannot know what a removed directory stands for, gets a real fd
 * of the directory (its twin).  msg was checked readable by the caller. */
struct msghdr;
void ndf_before_send(const struct msghdr *msg);
/* fd stops being a stand-in (close, close_range, a dup2 over it, closedir): its hold on the twin's
 * record given back.  Nothing for other fds. */
void ndf_forget(int fd);
static inline void ndf_forget_if(int fd)
{
    if (__builtin_expect(ft_mdirfd(fd), 0))
        ndf_forget(fd);
}
/* Around fork (intercept_proc.c): holds for the child's copies of the stand-ins, claimed before,
 * passed to the child after (pid), or given back (pid < 0). */
void ndf_fork_prepare(void);
void ndf_fork_parent(pid_t pid);
/* In a fork child: the lock may have been held by another thread; the stand-ins' holds are the
 * ones ndf_fork_prepare claimed. */
void ndf_after_fork(void);

#endif
