/*
 * shim/dircache.h - stats of disk directories, kept in the process (dircache.c).
 *
 * A create, unlink or rename in memory needs its parent directory's mode,
 * owner, device and inode (the permission check, set-gid, st_dev, the parent's
 * times), and the kernel's walk errors need every ancestor to be a directory.
 * Asking the kernel each time cost a stat per ancestor per call (issue 15).  A
 * directory's stat is kept while the region's dir_gen stays (every shim bumps
 * it when it renames, removes, chmods or chowns something, or asks the daemon
 * to) and for at most DC_TTL_NS, which bounds how long a change made by a
 * program without the shim goes unseen.
 */
#ifndef SHIM_DIRCACHE_H
#define SHIM_DIRCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* stat(2) of dir (follows symlinks), from the cache when it is a directory seen
 * recently: 0, or -1 with errno. */
int dc_stat(const char *dir, struct stat *st);
/* The first len bytes of dir name a directory that a kernel walk reached
 * without meeting a symlink (paths.c's path_alias also keeps one whose walk
 * ended at a missing name before any symlink), recently and with no change
 * since (1), or not known (0).  dc_canonical_seen records one, with the generation read
 * (dc_generation) before that walk, so that a change racing it is not kept. */
int dc_canonical(const char *dir, size_t len);
uint64_t dc_generation(void);
void dc_canonical_seen(const char *dir, size_t len, uint64_t gen);
/* The first len bytes of dir spell a directory through a symlink: its kernel name into real (1), seen
 * recently with no change since, or not known (0).  dc_alias_seen records one, as dc_canonical_seen. */
int dc_alias(const char *dir, size_t len, char *real); /* real: EPH_PATH_MAX bytes */
void dc_alias_seen(const char *dir, size_t len, const char *real, uint64_t gen);
/* The absolute path /proc/self/fd gives for fd (out: n >= EPH_PATH_MAX bytes for the cache):
 * 0, or -1 (no such fd, or a name that is not a path).  A directory fd named recently, with
 * no change since and still the same directory (fstat), is answered from the cache. */
int dc_fd_path(int fd, char *out, size_t n);
/* Something may have moved a directory or changed its mode or owner. */
void dc_changed(void);
/* The result of a kernel call that may have changed a directory, after dc_changed()
 * (errno is left as the call set it). */
static inline long dc_after(long r)
{
    dc_changed();
    return r;
}
/*
 * Within one intercepted call (between dc_miss_begin and dc_miss_end, on this thread), a stat of
 * a name that found nothing answers the next stat of the same name in the same call: the kernel
 * walks a path once per call, where the shim's checks (the parent a create writes into, the walk
 * that refines the ENOENT) look at a missing parent two or three times.  Never kept past the call,
 * and dropped when dir_gen moves (a twin made meanwhile).  Calls may nest (a signal handler's): a
 * begin forgets the outer call's miss, which then only costs it the stat again.
 */
void dc_miss_begin(void);
void dc_miss_end(void);
/* In a fork child: the lock may have been held by another thread. */
void dc_after_fork(void);

#endif
