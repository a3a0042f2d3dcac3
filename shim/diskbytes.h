/*
 * shim/diskbytes.h - the bytes of managed files the kernel serves (placed
 * straight on disk, or moved there), counted at every size change this
 * process makes (diskbytes.c; the shared counter: include/ephemera/diskbytes.h).
 * Nothing here runs for an in-memory file.
 */
#ifndef SHIM_DISKBYTES_H
#define SHIM_DISKBYTES_H

#include <sys/types.h>

#include "compiler.h"
#include "fdtable.h"

/* In EPHEMERA_FDMAP (intercept_proc.c), the desc of a counted fd handed to the new image. */
#define DB_FDMAP_COUNTED 0xffffffffu

static inline int ft_sized(int fd)
{
    const struct ft_entry *t = ft_fds;
    return t && (unsigned)fd < ft_nfds && (t[fd].flags & FT_SIZED) && !sh_vfork_child();
}

/* fd, just opened by the kernel on a managed path: count its file from now on
 * if it is a regular file open for writing (at its size now: O_TRUNC, or a file
 * that was there before). */
void db_opened(int fd);
/* The kernel may have changed the size of fd's file (a write, an ftruncate, a
 * fallocate, a copy into it): count the size it has now.  `set`: it may have
 * shrunk (a truncate); otherwise only growth counts. */
void db_changed(int fd, int set);
/* pwrite of n bytes at off on a counted fd: whether it can grow the file
 * beyond what is counted (if not, no fstat is needed after it). */
int db_may_grow(int fd, off_t off, size_t n);

/* After a write of the kernel's on counted fd that returned r. */
static inline ssize_t db_wrote(int fd, ssize_t r)
{
    if (r > 0)
        db_changed(fd, 0);
    return r;
}

/* After a positioned write of the kernel's at off on counted fd that returned r. */
static inline ssize_t db_wrote_at(int fd, off_t off, ssize_t r)
{
    if (r > 0 && db_may_grow(fd, off, (size_t)r))
        db_changed(fd, 0);
    return r;
}
/* Before an unlink, or a rename over `abs`: remember the counted file it is
 * the last name of, and after the call succeeded stop counting it. */
struct db_victim {
    int slot;
    unsigned long long dev, ino;
};
void db_before_remove(const char *abs, struct db_victim *v);
void db_removed(const struct db_victim *v);
/* After a rename onto `abs` succeeded: v's file is gone unless abs still names it (a rename
 * between two names of one file removes nothing). */
void db_replaced(const char *abs, const struct db_victim *v);
/* After truncate(abs): count the size it has now. */
void db_path_changed(const char *abs);
/* The app closed or replaced fd (a kernel fd, not ours): forget its marks (FT_SIZED, FT_ROOTFD). */
void db_forget(int fd);
/* newfd is a dup of oldfd (neither managed): newfd is counted and marked like oldfd. */
void db_dup(int oldfd, int newfd);

#endif
