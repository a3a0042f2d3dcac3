/*
 * shim/sys.h - the real libc calls, one table generated from one list
 * (sys.c).  Every call the shim makes into libc for a call it also
 * interposes goes through `sys`, resolved once with dlsym(RTLD_NEXT); so a
 * test build can put a fault in front of any faultable entry (see
 * ephemera/systable.h for the list's columns and EPHEMERA_FAULTS).
 */
#ifndef SHIM_SYS_H
#define SHIM_SYS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "compiler.h"
#include "ephemera/systable.h"

struct statx;
struct dirent64;
struct statvfs;
struct statfs;

#define SYS_R EPH_SYS_REQ
#define SYS_O EPH_SYS_OPT
/* X(name, return type, parameters, forwarding arguments, need, fault class) */
#define SHIM_SYSCALLS(X)                                                                                         \
    X(open, int, (const char *, int, ...), (), SYS_R, NONE)                                                      \
    X(openat, int, (int, const char *, int, ...), (), SYS_R, NONE)                                               \
    X(close, int, (int), (), SYS_R, NONE)                                                                        \
    X(read, ssize_t, (int fd, void *b, size_t n), (fd, b, n), SYS_R, XFER)                                       \
    X(write, ssize_t, (int fd, const void *b, size_t n), (fd, b, n), SYS_R, XFER)                                \
    X(pread, ssize_t, (int fd, void *b, size_t n, off_t o), (fd, b, n, o), SYS_R, XFER)                          \
    X(pwrite, ssize_t, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o), SYS_R, XFER)                   \
    X(readv, ssize_t, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), SYS_R, XFERV)                  \
    X(writev, ssize_t, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), SYS_R, XFERV)                 \
    X(preadv, ssize_t, (int fd, const struct iovec *iov, int cnt, off_t o), (fd, iov, cnt, o), SYS_R, XFERV)     \
    X(pwritev, ssize_t, (int fd, const struct iovec *iov, int cnt, off_t o), (fd, iov, cnt, o), SYS_R, XFERV)    \
    X(preadv2, ssize_t, (int fd, const struct iovec *iov, int cnt, off_t o, int f), (fd, iov, cnt, o, f), SYS_O, \
      XFERV)                                                                                                     \
    X(pwritev2, ssize_t, (int fd, const struct iovec *iov, int cnt, off_t o, int f), (fd, iov, cnt, o, f), SYS_O, \
      XFERV)                                                                                                     \
    X(lseek, off_t, (int, off_t, int), (), SYS_R, NONE)                                                          \
    X(dup, int, (int), (), SYS_R, NONE)                                                                          \
    X(dup2, int, (int, int), (), SYS_R, NONE)                                                                    \
    X(dup3, int, (int, int, int), (), SYS_R, NONE)                                                               \
    X(fcntl, int, (int, int, ...), (), SYS_R, NONE)                                                              \
    X(ioctl, int, (int, unsigned long, ...), (), SYS_R, NONE)                                                    \
    X(isatty, int, (int), (), SYS_R, NONE)                                                                       \
    X(ftruncate, int, (int fd, off_t len), (fd, len), SYS_R, ERR)                                                \
    X(truncate, int, (const char *, off_t), (), SYS_R, NONE)                                                     \
    X(fsync, int, (int fd), (fd), SYS_R, ERR)                                                                    \
    X(fdatasync, int, (int fd), (fd), SYS_R, ERR)                                                                \
    X(syncfs, int, (int), (), SYS_R, NONE)                                                                       \
    X(sync_file_range, int, (int, off64_t, off64_t, unsigned int), (), SYS_R, NONE)                              \
    X(fallocate, int, (int fd, int mode, off_t o, off_t len), (fd, mode, o, len), SYS_R, ERR)                    \
    X(posix_fallocate, int, (int, off_t, off_t), (), SYS_R, NONE)                                                \
    X(posix_fadvise, int, (int, off_t, off_t, int), (), SYS_R, NONE)                                             \
    X(stat, int, (const char *, struct stat *), (), SYS_R, NONE)                                                 \
    X(lstat, int, (const char *, struct stat *), (), SYS_R, NONE)                                                \
    X(fstat, int, (int, struct stat *), (), SYS_R, NONE)                                                         \
    X(fstatat, int, (int, const char *, struct stat *, int), (), SYS_R, NONE)                                    \
    X(statx, int, (int, const char *, int, unsigned, struct statx *), (), SYS_O, NONE)                           \
    X(__xstat, int, (int, const char *, struct stat *), (), EPH_SYS_V("GLIBC_2.2.5"), NONE)                      \
    X(__lxstat, int, (int, const char *, struct stat *), (), EPH_SYS_V("GLIBC_2.2.5"), NONE)                     \
    X(__fxstat, int, (int, int, struct stat *), (), EPH_SYS_V("GLIBC_2.2.5"), NONE)                              \
    X(__fxstatat, int, (int, int, const char *, struct stat *, int), (), EPH_SYS_V("GLIBC_2.4"), NONE)           \
    X(statvfs, int, (const char *, struct statvfs *), (), SYS_R, NONE)                                         \
    X(fstatvfs, int, (int, struct statvfs *), (), SYS_R, NONE)                                                 \
    X(statfs, int, (const char *, struct statfs *), (), SYS_R, NONE)                                           \
    X(fstatfs, int, (int, struct statfs *), (), SYS_R, NONE)                                                   \
    X(access, int, (const char *, int), (), SYS_R, NONE)                                                         \
    X(faccessat, int, (int, const char *, int, int), (), SYS_R, NONE)                                            \
    X(euidaccess, int, (const char *, int), (), SYS_R, NONE)                                                     \
    X(unlink, int, (const char *), (), SYS_R, NONE)                                                              \
    X(unlinkat, int, (int, const char *, int), (), SYS_R, NONE)                                                  \
    X(remove, int, (const char *), (), SYS_R, NONE)                                                              \
    X(rename, int, (const char *, const char *), (), SYS_R, NONE)                                                \
    X(renameat, int, (int, const char *, int, const char *), (), SYS_R, NONE)                                    \
    X(renameat2, int, (int, const char *, int, const char *, unsigned), (), SYS_O, NONE)                         \
    X(mkdir, int, (const char *, mode_t), (), SYS_R, NONE)                                                       \
    X(mkdirat, int, (int, const char *, mode_t), (), SYS_R, NONE)                                                \
    X(rmdir, int, (const char *), (), SYS_R, NONE)                                                               \
    X(link, int, (const char *, const char *), (), SYS_R, NONE)                                                  \
    X(linkat, int, (int, const char *, int, const char *, int), (), SYS_R, NONE)                                 \
    X(symlink, int, (const char *, const char *), (), SYS_R, NONE)                                               \
    X(symlinkat, int, (const char *, int, const char *), (), SYS_R, NONE)                                        \
    X(mknodat, int, (int, const char *, mode_t, dev_t), (), SYS_O, NONE)                                         \
    X(bind, int, (int, const struct sockaddr *, socklen_t), (), SYS_R, NONE)                                     \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int), (), SYS_R, NONE)                                      \
    X(sendmmsg, int, (int, struct mmsghdr *, unsigned int, int), (), SYS_R, NONE)                               \
    X(readlink, ssize_t, (const char *, char *, size_t), (), SYS_R, NONE)                                        \
    X(readlinkat, ssize_t, (int, const char *, char *, size_t), (), SYS_R, NONE)                                 \
    X(chmod, int, (const char *, mode_t), (), SYS_R, NONE)                                                       \
    X(fchmod, int, (int, mode_t), (), SYS_R, NONE)                                                               \
    X(fchmodat, int, (int, const char *, mode_t, int), (), SYS_R, NONE)                                          \
    X(chown, int, (const char *, uid_t, gid_t), (), SYS_R, NONE)                                                 \
    X(lchown, int, (const char *, uid_t, gid_t), (), SYS_R, NONE)                                                \
    X(fchown, int, (int, uid_t, gid_t), (), SYS_R, NONE)                                                         \
    X(fchownat, int, (int, const char *, uid_t, gid_t, int), (), SYS_R, NONE)                                    \
    X(utimensat, int, (int, const char *, const struct timespec *, int), (), SYS_R, NONE)                        \
    X(futimens, int, (int, const struct timespec *), (), SYS_R, NONE)                                            \
    X(utimes, int, (const char *, const struct timeval *), (), SYS_R, NONE)                                      \
    X(utime, int, (const char *, const void *), (), SYS_R, NONE)                                                 \
    X(chdir, int, (const char *), (), SYS_R, NONE)                                                               \
    X(fchdir, int, (int), (), SYS_R, NONE)                                                                       \
    X(opendir, DIR *, (const char *), (), SYS_R, NONE)                                                           \
    X(fdopendir, DIR *, (int), (), SYS_R, NONE)                                                                  \
    X(readdir, struct dirent *, (DIR *), (), SYS_R, NONE)                                                        \
    X(readdir64, struct dirent64 *, (DIR *), (), SYS_R, NONE)                                                    \
    X(readdir_r, int, (DIR *, struct dirent *, struct dirent **), (), SYS_R, NONE)                               \
    X(closedir, int, (DIR *), (), SYS_R, NONE)                                                                   \
    X(rewinddir, void, (DIR *), (), SYS_R, NONE)                                                                 \
    X(telldir, long, (DIR *), (), SYS_R, NONE)                                                                   \
    X(seekdir, void, (DIR *, long), (), SYS_R, NONE)                                                             \
    X(dirfd, int, (DIR *), (), SYS_R, NONE)                                                                      \
    X(getdents64, ssize_t, (int, void *, size_t), (), SYS_O, NONE)                                               \
    X(fopen, FILE *, (const char *, const char *), (), SYS_R, NONE)                                              \
    X(fdopen, FILE *, (int, const char *), (), SYS_R, NONE)                                                      \
    X(freopen, FILE *, (const char *, const char *, FILE *), (), SYS_R, NONE)                                    \
    X(fork, pid_t, (void), (), SYS_R, NONE)                                                                      \
    X(vfork, pid_t, (void), (), SYS_O, NONE)                                                                     \
    X(execve, int, (const char *, char *const[], char *const[]), (), SYS_R, NONE)                                \
    X(execvpe, int, (const char *, char *const[], char *const[]), (), SYS_R, NONE)                               \
    X(fexecve, int, (int, char *const[], char *const[]), (), SYS_R, NONE)                                        \
    X(posix_spawn, int, (pid_t *, const char *, const void *, const void *, char *const[], char *const[]), (),   \
      SYS_R, NONE)                                                                                               \
    X(posix_spawnp, int, (pid_t *, const char *, const void *, const void *, char *const[], char *const[]),      \
      (), SYS_R, NONE)                                                                                           \
    X(mmap, void *, (void *, size_t, int, int, int, off_t), (), SYS_R, NONE)                                     \
    X(sendfile, ssize_t, (int fd, int in, off_t *o, size_t n), (fd, in, o, n), SYS_R, XFER)                      \
    X(copy_file_range, ssize_t, (int in, off_t *io, int fd, off_t *oo, size_t n, unsigned f),                    \
      (in, io, fd, oo, n, f), SYS_O, XFER)                                                                       \
    X(splice, ssize_t, (int, off_t *, int, off_t *, size_t, unsigned), (), SYS_R, NONE)                          \
    X(close_range, int, (unsigned, unsigned, int), (), SYS_O, NONE)                                              \
    X(syscall, long, (long, ...), (), SYS_R, NONE)                                                               \
    X(glob, int, (const char *, int, int (*)(const char *, int), void *), (), SYS_O, NONE) /* glob_t */          \
    X(flock, int, (int, int), (), SYS_R, NONE)                                                                   \
    X(lockf, int, (int, int, off_t), (), SYS_R, NONE)                                                            \
    X(dlopen, void *, (const char *, int), (), SYS_R, NONE)                                                      \
    X(inotify_add_watch, int, (int, const char *, uint32_t), (), SYS_R, NONE)                                    \
    X(realpath, char *, (const char *, char *), (), SYS_R, NONE)                                                 \
    X(mkostemps, int, (char *, int, int), (), SYS_R, NONE)                                                       \
    X(mkdtemp, char *, (char *), (), SYS_R, NONE)                                                                \
    X(tmpfile, FILE *, (void), (), SYS_R, NONE)                                                                  \
    X(popen, FILE *, (const char *, const char *), (), SYS_R, NONE)                                              \
    X(pclose, int, (FILE *), (), SYS_R, NONE)                                                                    \
    X(getxattr, ssize_t, (const char *, const char *, void *, size_t), (), SYS_R, NONE)                          \
    X(lgetxattr, ssize_t, (const char *, const char *, void *, size_t), (), SYS_R, NONE)                         \
    X(fgetxattr, ssize_t, (int, const char *, void *, size_t), (), SYS_R, NONE)                                  \
    X(setxattr, int, (const char *, const char *, const void *, size_t, int), (), SYS_R, NONE)                   \
    X(lsetxattr, int, (const char *, const char *, const void *, size_t, int), (), SYS_R, NONE)                  \
    X(fsetxattr, int, (int fd, const char *k, const void *v, size_t n, int f), (fd, k, v, n, f), SYS_R, ERR)     \
    X(listxattr, ssize_t, (const char *, char *, size_t), (), SYS_R, NONE)                                       \
    X(llistxattr, ssize_t, (const char *, char *, size_t), (), SYS_R, NONE)                                      \
    X(flistxattr, ssize_t, (int, char *, size_t), (), SYS_R, NONE)                                               \
    X(removexattr, int, (const char *, const char *), (), SYS_R, NONE)                                           \
    X(lremovexattr, int, (const char *, const char *), (), SYS_R, NONE)                                          \
    X(fremovexattr, int, (int, const char *), (), SYS_R, NONE)                                                   \
    X(setuid, int, (uid_t), (), SYS_R, NONE)                                                                     \
    X(setgid, int, (gid_t), (), SYS_R, NONE)                                                                     \
    X(seteuid, int, (uid_t), (), SYS_R, NONE)                                                                    \
    X(setegid, int, (gid_t), (), SYS_R, NONE)                                                                    \
    X(setreuid, int, (uid_t, uid_t), (), SYS_R, NONE)                                                            \
    X(setregid, int, (gid_t, gid_t), (), SYS_R, NONE)                                                            \
    X(setresuid, int, (uid_t, uid_t, uid_t), (), SYS_R, NONE)                                                    \
    X(setresgid, int, (gid_t, gid_t, gid_t), (), SYS_R, NONE)                                                    \
    X(unshare, int, (int), (), SYS_R, NONE)

struct sys_table {
    SHIM_SYSCALLS(EPH_SYS_MEMBER)
};

extern struct sys_table sys;
void sys_resolve(void);
#ifdef EPH_FAULTS
void sys_faults_install(void);          /* test builds: EPHEMERA_FAULTS, once, from the constructor */
#endif
/* A wrapper may run before our constructor (another library's constructor): resolve then. */
#define REAL(f) (likely(sys.f != NULL) ? sys.f : (sys_resolve(), sys.f))

#endif
