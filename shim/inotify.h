/*
 * shim/inotify.h - inotify for in-memory files (inotify.c).
 *
 * The kernel never sees an in-memory file's name nor its writes, so it raises
 * no event for them.  A watch on an in-memory file, or on a directory under a
 * root, is redirected to a shadow: a real directory in the daemon's run
 * directory holding one empty placeholder per in-memory file of the watched
 * directory.  The process that changes a file through the shim repeats the
 * same call on the placeholder (open, write, truncate, close, unlink, rename,
 * mkdir, rmdir), so the kernel itself raises exactly the events, names,
 * cookies and self events it would have raised on tmpfs, into a real inotify
 * fd that the watcher reads, polls and epolls as usual.
 */
#ifndef SHIM_INOTIFY_H
#define SHIM_INOTIFY_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "compiler.h"
#include "init.h"

/*
 * Has any directory under the roots a shadow?  With nothing watched this is
 * the only cost a hook adds: one load of a shared word that nobody writes.
 */
static inline int ino_on(void)
{
    struct eph_shm_header *h = sh.hdr;
    return unlikely(h != NULL && atomic_load_explicit(&h->watch_used, memory_order_relaxed) != 0);
}

/* inotify_add_watch of a managed path: the watch lands on the shadow. */
int ino_add_watch(int ifd, const char *path, uint32_t mask);
/* An open of an in-memory file by the name abs (NULL: its own name) succeeded on fd (and created
 * it if flags has O_CREAT and the name was new): the same open on that name's placeholder, if it
 * has one.  Returns fd, errno untouched. */
int ino_opened(int fd, int flags, const char *abs);
/* A write (trunc 0) or a size change (trunc 1) through fd succeeded. */
void ino_wrote(int fd, int trunc);
/* Name changes that succeeded, by the absolute path the call resolved (dirfd/path when the
 * caller has not resolved one). */
void ino_truncated(int dirfd, const char *path);
void ino_unlinked(const char *abs);
void ino_renamed(const char *a, const char *b);
void ino_mkdir(int dirfd, const char *path);
/* A link of in-memory file idx was made in memory at abs (shim/nslink.c): IN_CREATE for the new
 * name, IN_ATTRIB for the file's watches, as the kernel's link gives on tmpfs. */
void ino_linked(uint32_t idx, const char *abs);
/* The same for a directory made in memory (shim/nsdir.c), by the path it resolved: a
 * resolve here would give it a disk twin. */
void ino_mkdir_abs(const char *abs);
void ino_rmdir(const char *abs);
/* chmod (mode != -1), chown (u or g != -1) or utimensat (times: ts, NULL meaning now) of an
 * in-memory file succeeded: the same call on its placeholder (IN_ATTRIB, or what the kernel
 * makes of those times). */
struct eph_inode;
struct timespec;
void ino_attr(struct eph_inode *ino, mode_t mode, uid_t u, gid_t g, const struct timespec *ts, int times);

#endif
