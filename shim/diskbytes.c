/*
 * shim/diskbytes.c - counting the bytes of managed files on disk
 * (diskbytes.h).  The kernel holds the size; this process learns it with an
 * fstat after each call that may change it, and moves its file's slot by the
 * difference.  A pwrite inside what is already counted needs no fstat, so a
 * program rewriting a disk file in place pays nothing here.
 *
 * A fork child keeps the marks (fdtable.c copies them into a table that
 * starts empty); a counted descriptor that survives an exec is handed to the
 * new image in EPHEMERA_FDMAP (desc DB_FDMAP_COUNTED), which counts it again
 * from its fstat.  What is not counted (the daemon's walks still sample it):
 * writes by a process without the shim or through a descriptor posix_spawn
 * passed natively, growth through a shared mapping past an ftruncate this
 * process did not make, and the bytes of a file unlinked while still open
 * (counted as gone at the unlink, as the walk would).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "ephemera/diskbytes.h"
#include "ephemera/shm.h"

#include "diskbytes.h"
#include "sys.h"
#include "init.h"

static int db_slot_guess(int fd)
{
    return (int)((ft_fds[fd].flags >> FT_SLOT_SHIFT) & FT_SLOT_MASK);
}

static void db_mark(int fd, int slot)
{
    ft_lock();
    /* a moved file's fd keeps FT_DISK and its disk identity (ft_disk_same) */
    uint32_t keep = ft_fds[fd].desc1 ? (ft_fds[fd].flags & (FT_DISK | FT_DISK_INO_MASK << FT_DISK_INO_SHIFT))
                                     : (ft_fds[fd].flags & FT_ROOTFD);
    ft_set_flags(fd, keep | FT_SIZED | ((uint32_t)slot << FT_SLOT_SHIFT));
    if ((uint32_t)fd + 1 > atomic_load(&ft_hwm)) /* exec hands the marks on (intercept_proc.c) */
        atomic_store(&ft_hwm, (uint32_t)fd + 1);
    ft_unlock();
}

void db_opened(int fd)
{
    struct stat st;
    int e = errno;
    if (fd < 0 || !ft_fds || (unsigned)fd >= ft_nfds || ft_fds[fd].desc1 || sh_vfork_child())
        return;
    int acc = sys.fcntl(fd, F_GETFL);
    if (acc >= 0 && (acc & O_ACCMODE) != O_RDONLY && !(acc & O_PATH) && sys.fstat(fd, &st) == 0 &&
        S_ISREG(st.st_mode) && st.st_nlink > 0) {
        int slot = eph_db_add(sh.hdr, (uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size);
        if (slot >= 0)
            db_mark(fd, slot);
    }
    errno = e;
}

/*
 * A kernel fd on a managed path is counted once marked at its open.  A moved
 * file's fd (FT_DISK) learns its slot here at its first change: the daemon
 * counted the file when it moved it; FT_SLOT_MASK marks one it does not count.
 */
void db_changed(int fd, int set)
{
    struct stat st;
    uint32_t fl = ft_fds[fd].flags;
    int moved = ft_fds[fd].desc1 && (fl & FT_DISK);
    if (!(fl & FT_SIZED) && !moved)
        return;
    int slot = (fl & FT_SIZED) ? db_slot_guess(fd) : -1;
    if (slot == (int)FT_SLOT_MASK)
        return;
    int e = errno;
    if (sys.fstat(fd, &st) < 0) {
        errno = e;
        return;
    }
    uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
    if (!eph_db_is(sh.hdr, slot, dev, ino)) {
        /* Another slot since (the daemon's check dropped it and a later open re-added
         * it), or none: a file unlinked, or one no open by a managed name counted. */
        slot = eph_db_find(sh.hdr, dev, ino);
        db_mark(fd, slot >= 0 ? slot : (int)FT_SLOT_MASK);
        if (slot < 0) {
            errno = e;
            return;
        }
    }
    eph_db_resize(sh.hdr, slot, (uint64_t)st.st_size, set);
    errno = e;
}

int db_may_grow(int fd, off_t off, size_t n)
{
    if (!(ft_fds[fd].flags & FT_SIZED))
        return 1;
    int slot = db_slot_guess(fd);
    if (off < 0 || slot >= EPH_DFILES)
        return 1;
    struct eph_dfile *f = &sh.hdr->dfiles[slot];
    return atomic_load_explicit(&f->state, memory_order_acquire) != EPH_DF_LIVE ||
           (uint64_t)off + n > atomic_load_explicit(&f->size, memory_order_relaxed);
}

void db_before_remove(const char *abs, struct db_victim *v)
{
    struct stat st;
    int e = errno;
    v->slot = -1;
    if (!sh.hdr || atomic_load_explicit(&sh.hdr->dfiles_hwm, memory_order_relaxed) == 0 ||
        sys.lstat(abs, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        errno = e;
        return;
    }
    v->dev = (unsigned long long)st.st_dev;
    v->ino = (unsigned long long)st.st_ino;
    v->slot = eph_db_find(sh.hdr, v->dev, v->ino);
    errno = e;
}

void db_removed(const struct db_victim *v)
{
    if (v->slot >= 0 && eph_db_is(sh.hdr, v->slot, v->dev, v->ino))
        eph_db_drop(sh.hdr, v->slot);
}

void db_replaced(const char *abs, const struct db_victim *v)
{
    struct stat now;
    int e = errno;
    if (v->slot >= 0 && (sys.lstat(abs, &now) < 0 || (unsigned long long)now.st_ino != v->ino ||
                         (unsigned long long)now.st_dev != v->dev))
        db_removed(v);
    errno = e;
}

void db_path_changed(const char *abs)
{
    struct stat st;
    int e = errno;
    if (sh.hdr && atomic_load_explicit(&sh.hdr->dfiles_hwm, memory_order_relaxed) != 0 &&
        sys.stat(abs, &st) == 0 && S_ISREG(st.st_mode)) {
        int slot = eph_db_find(sh.hdr, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
        if (slot >= 0)
            eph_db_resize(sh.hdr, slot, (uint64_t)st.st_size, 1);
    }
    errno = e;
}

void db_forget(int fd)
{
    if (!ft_kernel_marked(fd))
        return;
    ft_lock();
    if (ft_kernel_marked(fd))
        ft_set_flags(fd, 0); /* FT_SIZED and FT_ROOTFD: the fd is no longer the file they name */
    ft_unlock();
}

void db_dup(int oldfd, int newfd)
{
    if (!ft_kernel_marked(oldfd) || (unsigned)newfd >= ft_nfds)
        return;
    ft_lock();
    if (!ft_fds[oldfd].desc1 && !ft_fds[newfd].desc1)
        ft_set_flags(newfd, ft_fds[oldfd].flags);
    ft_unlock();
}
