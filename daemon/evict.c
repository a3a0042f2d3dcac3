/*
 * evict.c - move in-memory files to disk.
 *
 * The protocol (docs/ARCHITECTURE.md, "Eviction of a file in use"):
 *   1. take the inode lock, set MOVING, drop the lock: no size or capacity
 *      change can start any more, and new fast-path operations back off;
 *   2. wait until inflight drains (bounded, so a process killed in the
 *      middle of a memcpy cannot stall the daemon forever);
 *   3. copy the bytes to an O_TMPFILE in the file's directory and link it at
 *      the real path when complete (so the path never shows a half-written
 *      file), or keep it unnamed in its root when the file was unlinked;
 *   4. keep the disk fd as inode->disk_fd, set DISK, bump epoch, wake the
 *      waiters: every process swaps its fd to the disk file;
 *   5. only then free the memory (punch + truncate the memfd), fix the
 *      counters and drop the path from the namespace, so new opens go to
 *      the kernel.
 * Any failure before step 4 puts the file back to MEM: nothing is lost.
 */
#include "evict.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "ephemera/lock.h"
#include "guard.h"
#include "filebytes.h"
#include "keeper.h"
#include "log.h"
#include "namespace.h"
#include "reserve.h"
#include "pins.h"
#include "sys.h"

/* A call interrupted by a signal is simply made again (the copy loops retry theirs themselves). */
#define EVICT_NOINTR(call)                                                                                  \
    __extension__({                                                                                      \
        __typeof__(call) r_;                                                                             \
        while ((r_ = (call)) < 0 && errno == EINTR)                                                      \
            ;                                                                                            \
        r_;                                                                                              \
    })

#define EVICT_DRAIN_TIMEOUT_NS (500ull * 1000 * 1000)

/* 1 if it gave up waiting: a holder may still be inside its copy. */
static int evict_drain(uint32_t idx, struct eph_inode *in)
{
    uint64_t start = ephd_mono_ns();
    for (unsigned spins = 0; atomic_load(&in->inflight) > 0; spins++) {
        if (spins < 200) {
            __builtin_ia32_pause();
            continue;
        }
        if (ephd_mono_ns() - start > EVICT_DRAIN_TIMEOUT_NS) {
            /* A process is stopped or starved inside a fast-path read (one
             * that died there had its count dropped by ledger.c as soon as
             * the kernel said so), or died in the instruction between its
             * count and its ledger's read word.  Readers change no bytes; a
             * live one sees the state or epoch moved when it resumes and
             * reads again from the disk file (shim/fp_io.c, copy_overtaken
             * and io_again), so moving on loses nothing.  The count is left
             * as it is: the live reader lowers it itself when it resumes,
             * and zeroing it here would take that one below zero. */
            log_msg(LOG_WARN,
                    "inode %u: inflight stuck at %d for 500 ms; evicting anyway (a stalled reader will read "
                    "again from disk when it resumes)",
                    idx, (int)atomic_load(&in->inflight));
            return 1;
        }
        struct timespec ts = {0, 20 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

#define EVICT_CHUNK (4u << 20)

#define EVICT_BOUNCE (256u << 10) /* small: it is resident in every instance */

static int evict_sync_mode; /* evict_set_sync(): write through, free as we go */
static char *evict_bounce;  /* aligned, touched once: charged before any pressure */
static uint64_t *evict_retry_at; /* per inode: failed eviction, do not pick before (mono ns) */

static size_t evict_test_bytes;
/* An eviction that failed for want of kernel memory is retried this soon;
 * for this long after the first of a run of such failures, files backing
 * off still count as evictable (then the guard is lifted even without a
 * watchdog: bounded). */
#define EVICT_NOMEM_RETRY_NS (20ull * 1000 * 1000)
#define EVICT_NOMEM_HOLD_NS (10000ull * 1000 * 1000)
static uint64_t evict_nomem_since; /* first ENOMEM since the last eviction that worked, or 0 */ /* evict_test_alloc(): bytes allocated in each eviction */

static size_t evict_retry_bytes;

int evict_init(char *err, size_t errlen)
{
    /* Allocated here, not on first use: the eviction path allocates nothing. */
    evict_retry_bytes = (size_t)D.h->ninodes * sizeof *evict_retry_at;
    evict_retry_at = reserve_table(evict_retry_bytes);
    if (!evict_retry_at) {
        snprintf(err, errlen, "mmap(eviction back-off table, %u): out of memory", D.h->ninodes);
        return -1;
    }
    return 0;
}

void evict_test_alloc(size_t bytes)
{
    evict_test_bytes = bytes;
}

void evict_test_touch(void)
{
    if (!evict_test_bytes)
        return;
    /* Test only (EPHEMERAD_TEST_EVICT_ALLOC): an allocation, touched, as a
     * careless change might add one to the wake-up or eviction path. */
    char *p = malloc(evict_test_bytes);
    if (p) {
        memset(p, 0xa5, evict_test_bytes);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
}

size_t evict_test_alloc_bytes(void)
{
    return evict_test_bytes;
}

void evict_set_sync(int on)
{
    evict_sync_mode = on;
    if (on && !evict_bounce) {
        void *p = NULL;
        if (posix_memalign(&p, 4096, EVICT_BOUNCE) == 0) {
            reserve_populate(p, EVICT_BOUNCE);
            evict_bounce = p;
        }
    }
}

void evict_fini(void)
{
    free(evict_bounce);
    evict_bounce = NULL;
    reserve_table_free(evict_retry_at, evict_retry_bytes);
    evict_retry_at = NULL;
}

/*
 * The memory-neutral copy: read a chunk of the memfd into the bounce buffer
 * (no new charge), write it with O_DIRECT (no page cache, so no charge
 * either), then punch it out of the memfd.  Every step frees or keeps
 * memory, never takes any, so it works even when the cgroup is at its limit
 * and every allocation in it would block (the OOM guard in budget.c relies
 * on this).  -EINVAL when the file system refuses O_DIRECT: the caller then
 * uses the buffered copy.
 */
static int evict_copy_direct(int src, int dst, off_t data, off_t hole, off_t *freed_upto)
{
    for (off_t off = data & ~(off_t)4095; off < hole;) {
        size_t len = (size_t)(hole - off) < EVICT_BOUNCE ? (size_t)(hole - off) : EVICT_BOUNCE;
        size_t alen = (len + 4095) & ~(size_t)4095;
        /* A short read is read on, not taken for the end: the chunk is
         * punched below, so bytes we did not read would be gone.  Only the
         * memfd's end stops it (the file reads as zeros past it). */
        size_t r = 0;
        while (r < alen) {
            ssize_t k = EVICT_NOINTR(dsys.pread(src, evict_bounce + r, alen - r, off + (off_t)r));
            if (k < 0)
                return -errno;
            if (k == 0)
                break;
            r += (size_t)k;
        }
        if (r < alen)
            memset(evict_bounce + r, 0, alen - r);
        for (size_t w = 0; w < alen;) {
            ssize_t k = dsys.pwrite(dst, evict_bounce + w, alen - w, off + (off_t)w);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            w += (size_t)k;
        }
        dsys.fallocate(src, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)alen);
        off += (off_t)alen;
        *freed_upto = off;
    }
    return 0;
}

/* Copy [off, off+len) from src to dst: sendfile, or read/write where the
 * kernel refuses sendfile for this pair of files.  A short transfer or EINTR
 * just goes on; any other error (ENOSPC, EIO...) is the answer: the
 * read/write fallback would only meet it again. */
static int evict_copy_range(int src, int dst, off_t off, size_t len)
{
    static char buf[64 * 1024];
    off_t in_off = off, end = off + (off_t)len;
    int refused = 0; /* sendfile is not for this pair: read/write to the end */
    if (lseek(dst, off, SEEK_SET) < 0)
        return -errno;
    while (in_off < end) {
        ssize_t n = refused ? -1 : dsys.sendfile(dst, src, &in_off, (size_t)(end - in_off));
        if (n > 0)
            continue;
        if (n < 0 && !refused && errno == EINTR)
            continue;
        if (n == 0)
            return -EIO; /* the memfd is shorter than its size: cannot happen */
        if (!refused && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EXDEV)
            return -errno;
        refused = 1;
        size_t want = (size_t)(end - in_off) < sizeof buf ? (size_t)(end - in_off) : sizeof buf;
        ssize_t r = EVICT_NOINTR(dsys.pread(src, buf, want, in_off));
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        for (ssize_t w = 0; w < r;) {
            ssize_t k = dsys.pwrite(dst, buf + w, (size_t)(r - w), in_off + w);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            w += k;
        }
        in_off += r;
    }
    return 0;
}

/*
 * Copy [0, size) from the memfd src to dst, skipping holes.
 *
 * In sync mode (a cgroup limit is in force, or a shrink must really free
 * memory) each 4 MiB chunk is written through to the disk, dropped from the
 * page cache and punched out of the memfd before the next one: copying a
 * file into the page cache of the same cgroup would otherwise need as much
 * memory again, at the moment memory is short.  No process reads the memfd
 * while the inode is MOVING, so punching early is invisible.  *freed_upto
 * tells the caller how much was punched, to restore it on failure.
 */
/*
 * The extended attributes the shim stored on the memfd (user.*, trusted.*,
 * security.*) go with the bytes.  A destination file system without them
 * (ENOTSUP) or a name it refuses is logged: the bytes must move regardless.
 */
static void evict_copy_xattrs(int src, int dst, const char *what)
{
    char names[4096], *list = names, *big = NULL;
    ssize_t n = flistxattr(src, names, sizeof names);
    if (n < 0 && errno == ERANGE && (n = flistxattr(src, NULL, 0)) > 0 && (big = malloc((size_t)n)))
        n = flistxattr(src, list = big, (size_t)n);
    if (n < 0)
        log_msg(LOG_WARN, "evict %s: flistxattr: %s", what, strerror(errno));
    char small[512], *val = small;
    size_t cap = sizeof small;
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
        const char *name = list + i;
        ssize_t v = fgetxattr(src, name, val, cap);
        if (v < 0 && errno == ERANGE && (v = fgetxattr(src, name, NULL, 0)) >= 0) {
            char *nv = realloc(val == small ? NULL : val, (size_t)v + 1);
            if (!nv) {
                v = -1;
            } else {
                val = nv;
                cap = (size_t)v + 1;
                v = fgetxattr(src, name, val, cap);
            }
        }
        if (v < 0 || fsetxattr(dst, name, val, (size_t)v, 0) < 0)
            log_msg(LOG_WARN, "evict %s: extended attribute %s not copied: %s", what, name, strerror(errno));
    }
    if (val != small)
        free(val);
    free(big);
}

static int evict_copy(int src, int dst, uint64_t size, int sync, off_t *freed_upto)
{
    off_t pos = 0;
    *freed_upto = 0;
    int fl = fcntl(dst, F_GETFL);
    int direct = sync && evict_bounce && fl >= 0 && fcntl(dst, F_SETFL, fl | O_DIRECT) == 0;
    while ((uint64_t)pos < size) {
        off_t data = lseek(src, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                break; /* only a hole remains */
            data = pos; /* SEEK_DATA unsupported: copy everything */
        }
        if ((uint64_t)data >= size)
            break;
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0 || (uint64_t)hole > size)
            hole = (off_t)size;
        if (direct) {
            int e = evict_copy_direct(src, dst, data, hole, freed_upto);
            if (e == -EINVAL && *freed_upto <= data) {
                /* O_DIRECT accepted by open but refused on write: buffered. */
                fcntl(dst, F_SETFL, fl);
                direct = 0;
            } else if (e < 0) {
                fcntl(dst, F_SETFL, fl);
                return e;
            } else {
                pos = hole;
                continue;
            }
        }
        for (off_t off = data; off < hole;) {
            size_t len = (size_t)(hole - off) < EVICT_CHUNK ? (size_t)(hole - off) : EVICT_CHUNK;
            int e = evict_copy_range(src, dst, off, len);
            if (e < 0)
                return e;
            if (sync) {
                if (EVICT_NOINTR(dsys.sync_file_range(dst, off, (off_t)len,
                                                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                          SYNC_FILE_RANGE_WAIT_AFTER)) < 0)
                    return -errno;
                posix_fadvise(dst, off, (off_t)len, POSIX_FADV_DONTNEED);
                dsys.fallocate(src, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, (off_t)len);
                *freed_upto = off + (off_t)len;
            }
            off += (off_t)len;
        }
        pos = hole;
    }
    /* The disk fd is handed to processes: no O_DIRECT on it. */
    if (direct)
        fcntl(dst, F_SETFL, fl);
    if (EVICT_NOINTR(dsys.ftruncate(dst, (off_t)size)) < 0)
        return -errno;
    return 0;
}

/*
 * After a failed sync copy: bring the punched part [0, upto) back into the
 * memfd from the disk file, data segments only (holes stay holes), resuming
 * at *done.  The disk file is read with O_DIRECT where it allows it (no page
 * cache to charge); the memfd's pages are charged again, which at a v1
 * cgroup's limit with the guard set fails with ENOMEM: the caller waits and
 * calls again (evict_recover).  0 when all is back, or -errno.
 */
static int evict_restore(int memfd, int dst, off_t upto, off_t *done)
{
    static char small[64 * 1024];
    char *buf = evict_bounce ? evict_bounce : small;
    size_t cap = evict_bounce ? EVICT_BOUNCE : sizeof small;
    int fl = fcntl(dst, F_GETFL);
    int direct = evict_bounce && fl >= 0 && fcntl(dst, F_SETFL, fl | O_DIRECT) == 0;
    int e = 0;
    while (*done < upto) {
        off_t data = lseek(dst, *done, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* only holes remain: nothing was punched there */
        if (data < 0)
            data = *done;
        if (data >= upto)
            break;
        data &= ~(off_t)4095;
        size_t want = (size_t)(upto - data) < cap ? (size_t)(upto - data) : cap;
        want = (want + 4095) & ~(size_t)4095;
        ssize_t r = EVICT_NOINTR(dsys.pread(dst, buf, want, data));
        if (r < 0 && errno == EINVAL && direct) {
            fcntl(dst, F_SETFL, fl); /* O_DIRECT refused on read: through the page cache */
            direct = 0;
            continue;
        }
        if (r < 0) {
            e = -errno;
            break;
        }
        if (r == 0)
            break; /* the disk file ends: the rest was never data */
        if (r > upto - data)
            r = upto - data; /* past upto the memfd still holds its own bytes */
        for (ssize_t w = 0; w < r;) {
            ssize_t k = dsys.pwrite(memfd, buf + w, (size_t)(r - w), data + w);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                e = k < 0 ? -errno : -EIO;
                *done = data + w;
                goto out;
            }
            w += k;
        }
        if (!direct)
            posix_fadvise(dst, data, r, POSIX_FADV_DONTNEED);
        *done = data + r;
    }
out:
    if (direct)
        fcntl(dst, F_SETFL, fl);
    return e;
}

/* A staging name beside path, for file systems without O_TMPFILE. */
static void evict_staging_name(char *buf, size_t n, const char *path, uint32_t idx)
{
    const char *slash = strrchr(path, '/');
    snprintf(buf, n, "%.*s/.ephemera-%d-%u-%u", (int)(slash - path), path, (int)D.pid, idx,
             atomic_load(&D.inodes[idx].gen));
}

/* Give the O_TMPFILE fd a name.  0 or -errno. */
static int evict_link(int fd, const char *path)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    if (EVICT_NOINTR(dsys.linkat(AT_FDCWD, p, AT_FDCWD, path, AT_SYMLINK_FOLLOW)) == 0)
        return 0;
    if (errno != ENOENT || access("/proc/self/fd", F_OK) == 0)
        return -errno;
    /* No /proc: the privileged way. */
    return EVICT_NOINTR(dsys.linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH)) == 0 ? 0 : -errno;
}

/* The directory of an absolute path ("/" for "/name"). */
static void evict_dir_of(const char *path, char *dir, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(dir, n, "%.*s", slash ? (int)(slash - path) : 0, path);
    if (!dir[0])
        snprintf(dir, n, "/");
}

/* stat of path's directory, its name left in dir.  1 if it could be read. */
static int evict_dir_stat(const char *path, char *dir, size_t n, struct stat *st)
{
    evict_dir_of(path, dir, n);
    return stat(dir, st) == 0;
}

/*
 * Our link (or staging rename) in dir moved its ctime and mtime; tmpfs's
 * would not have moved.  Record the new kernel times and the ones to show
 * instead (struct eph_dirtime).  A directory we evicted into before and that
 * has not changed since keeps the times it showed then.
 */
void evict_hide_dir_times(const char *dir, const struct stat *before)
{
    struct stat now;
    if (stat(dir, &now) < 0 || now.st_dev != before->st_dev || now.st_ino != before->st_ino)
        return;
    struct eph_shm_header *h = D.h;
    int64_t c = eph_ns(before->st_ctim.tv_sec, before->st_ctim.tv_nsec), m = eph_ns(before->st_mtim.tv_sec, before->st_mtim.tv_nsec);
    uint32_t used = atomic_load(&h->dirtimes_used);
    struct eph_dirtime *e = NULL;
    for (uint32_t i = 0; i < used && !e; i++)
        if (atomic_load(&h->dirtimes[i].ino) == now.st_ino && atomic_load(&h->dirtimes[i].dev) == now.st_dev)
            e = &h->dirtimes[i];
    if (e && atomic_load(&e->kctime_ns) == c && atomic_load(&e->kmtime_ns) == m) {
        c = atomic_load(&e->ctime_ns);
        m = atomic_load(&e->mtime_ns);
    }
    static uint32_t next; /* round robin once the table is full */
    if (!e)
        e = &h->dirtimes[used < EPH_DIRTIMES ? used : next++ % EPH_DIRTIMES];
    atomic_fetch_add(&e->seq, 1);
    atomic_store(&e->dev, (uint64_t)now.st_dev);
    atomic_store(&e->ino, (uint64_t)now.st_ino);
    atomic_store(&e->kctime_ns, eph_ns(now.st_ctim.tv_sec, now.st_ctim.tv_nsec));
    atomic_store(&e->kmtime_ns, eph_ns(now.st_mtim.tv_sec, now.st_mtim.tv_nsec));
    atomic_store(&e->ctime_ns, c);
    atomic_store(&e->mtime_ns, m);
    atomic_fetch_add(&e->seq, 1);
    if (used < EPH_DIRTIMES && e == &h->dirtimes[used])
        atomic_store(&h->dirtimes_used, used + 1);
}

/* Destination for a file that has no name any more: an anonymous file on
 * the root's file system. */
static int evict_open_anon(uint32_t idx)
{
    /* A file a shim created has no root recorded (a slot lent by the pool):
     * its path names it while it has one. */
    int r = D.inodes[idx].path[0] ? ephd_root_of(D.inodes[idx].path) : -1;
    const char *root = D.roots[r >= 0 ? r : D.inode_root[idx] < D.nroots ? D.inode_root[idx] : 0];
    int fd = dsys.open(root, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd >= 0 ? fd : -errno;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.ephemera-%d-%u", root, (int)D.pid, idx);
    fd = dsys.open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    unlink(tmp);
    return fd;
}

/*
 * Does some description hold a flock() on the memfd?  There is no query for
 * flock (taking one to test would make a program's LOCK_NB fail at that
 * instant), so the kernel's list is read: "N: FLOCK ADVISORY WRITE pid
 * maj:min:ino ...".  Only when an eviction is about to happen.
 */
static int evict_flocked(int memfd)
{
    unsigned maj, min;
    unsigned long long ino;
    if (pins_memfd_id(memfd, &maj, &min, &ino) < 0)
        return 0;
    char want[64];
    snprintf(want, sizeof want, " %02x:%02x:%llu ", maj, min, ino);
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    char line[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, " FLOCK ") && strstr(line, want);
    fclose(f);
    return found;
}

/*
 * Does anyone hold a record lock (fcntl F_SETLK or OFD) on the memfd?  Such a
 * lock lives on the memfd's kernel inode: it would not follow the file to
 * disk, and another process would then get the same lock on the disk file.
 * Asked after the drain: the shim rechecks the state after taking a lock
 * (with inflight raised), so a lock taken later sees MOVING and is taken
 * again on the disk file.  flock() locks (evict_flocked) likewise.
 */
static int evict_locked(int memfd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0, .l_pid = 0};
    return (fcntl(memfd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) || evict_flocked(memfd);
}

/* One eviction in progress: what its steps hand to each other. */
struct evict_job {
    uint32_t idx, gen;        /* the file chosen: its slot, and its generation when chosen */
    struct eph_inode *in;
    int flags;
    int pinned;               /* an app maps it: its pages stay, no write-through */
    int stalled;              /* a holder may still be inside its copy */
    uint64_t size, t0;
    int dfd;                  /* the disk file, -1 until opened */
    int unnamed;              /* dfd is an O_TMPFILE to be linked at in->path */
    int sync;                 /* written through, freeing memory as it goes */
    off_t freed;              /* bytes punched out of the memfd so far */
    int copied;               /* every byte is in dfd, with its length: only the name is missing */
    off_t restored;           /* of [0, freed), brought back into the memfd so far */
    char tmp[EPH_PATH_MAX + 64]; /* staging name to rename into place, or "" */
    char dir[EPH_PATH_MAX];   /* the directory our link or rename changes */
    struct stat dir_before;
    int dir_known;
};

/* Step 1: set MOVING and let the fast paths drain.  0, -EBUSY for a pinned
 * file without EVICT_FORCE, or -ESTALE when the file chosen is no longer in
 * the slot (nothing changed then). */
static int evict_begin(struct evict_job *j)
{
    struct eph_inode *in = j->in;
    j->pinned = atomic_load(&in->pinned) != 0;
    if (j->pinned && !(j->flags & EVICT_FORCE))
        return -EBUSY;
    j->stalled = ns_lock(j->idx);
    /* The state was seen without the lock: meanwhile a shim may have unlinked the file and
     * kept its slot as a home, FREE with its pages, or made it a new file (shim/nsfast.c,
     * nsf_keep_home, under this lock).  Moving that slot would take its capacity out of
     * bytes_in_memory a second time (nsconc seed 20261206 under load: 2^64 - 45056 at exit). */
    if (atomic_load(&in->state) != EPH_MEM || atomic_load(&in->gen) != j->gen) {
        eph_unlock(&in->lock);
        return -ESTALE;
    }
    /* Again under the lock: the shim pins (an app mmap) under it, and must
     * then be sure its mapping of the memfd stays valid. */
    j->pinned = atomic_load(&in->pinned) != 0;
    if (j->pinned && !(j->flags & EVICT_FORCE)) {
        eph_unlock(&in->lock);
        return -EBUSY;
    }
    atomic_store(&in->state, EPH_MOVING); /* seq_cst: Dekker with inflight */
    atomic_fetch_add(&D.h->moves_begun, 1); /* after MOVING, before DISK: shim/fp_settle.c */
    eph_unlock(&in->lock);
    eph_lock_stall("evict-moving"); /* fault builds: stop with the file MOVING (test/c/movekill_test.c) */
    evict_test_touch();
    j->t0 = ephd_mono_ns();
    j->stalled |= evict_drain(j->idx, in);
    j->size = atomic_load(&in->size);
    return 0;
}

/* Step 2: the disk file.  Preferably an unnamed file in the file's
 * directory, linked in place when complete (no reader ever sees a
 * half-written file or a staging name); else a staging name beside it; an
 * anonymous file in the root when the file has no name or its directory
 * vanished.  0 or -errno. */
static int evict_open_dest(struct evict_job *j)
{
    struct eph_inode *in = j->in;
    if (in->path[0]) {
        evict_dir_of(in->path, j->tmp, sizeof j->tmp);
        j->dfd = dsys.open(j->tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (j->dfd < 0 && (errno == ENOENT || errno == ENOTDIR) && nsl_enter() == 0) {
            /* The path was read without the namespace lock: a shim's rename of a directory above
             * the file (on disk, or in memory, shim/nsdir.c) may have moved it and its names since.
             * Under the lock the name is current; only a directory gone under it is really gone
             * (memdir_rename's race lost files: "keeping it anonymous" under a renamed parent). */
            evict_dir_of(in->path, j->tmp, sizeof j->tmp);
            j->dfd = in->path[0] ? dsys.open(j->tmp, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) : -1;
            int e = errno;
            nsl_exit();
            errno = j->dfd < 0 && !in->path[0] ? ENOENT : e;
        }
        if (j->dfd >= 0) {
            j->unnamed = 1;
            j->tmp[0] = 0;
        } else if (errno == ENOENT || errno == ENOTDIR) {
            j->tmp[0] = 0; /* the directory is gone: handled below */
        } else {
            evict_staging_name(j->tmp, sizeof j->tmp, in->path, j->idx);
            j->dir_known = evict_dir_stat(in->path, j->dir, sizeof j->dir, &j->dir_before);
            j->dfd = dsys.open(j->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        }
        if (j->dfd < 0 && errno != ENOENT && errno != ENOTDIR) {
            int e = -errno;
            log_msg(LOG_ERR, "evict %s: open(%s): %s", in->path, j->tmp, strerror(-e));
            j->tmp[0] = 0;
            return e;
        }
        if (j->dfd < 0) {
            /* The directory vanished under us (removed by a program
             * without the shim): the name is gone, the bytes must not be. */
            log_msg(LOG_WARN, "evict %s: open(%s): %s; keeping it anonymous", in->path, j->tmp,
                    strerror(errno));
            j->tmp[0] = 0;
        }
    }
    if (j->dfd < 0)
        j->dfd = evict_open_anon(j->idx);
    if (j->dfd < 0) {
        int e = j->dfd;
        log_msg(LOG_ERR, "evict inode %u: no destination: %s", j->idx, strerror(-e));
        return e;
    }
    return 0;
}

/* Step 3: the bytes, then owner, mode, extended attributes and times.
 * 0, or -errno with the punched part of the memfd restored. */
static int evict_write(struct evict_job *j)
{
    struct eph_inode *in = j->in;
    j->sync = (evict_sync_mode || (j->flags & EVICT_DROP_CACHE)) && !j->pinned;
    int e = evict_copy(in->mem_fd, j->dfd, j->size, j->sync, &j->freed);
    if (e < 0) {
        log_msg(LOG_ERR, "evict inode %u (%s): copy of %llu bytes: %s", j->idx, in->path,
                (unsigned long long)j->size, strerror(-e));
        return e;
    }
    if (fchown(j->dfd, in->uid, in->gid) < 0 && errno != EPERM)
        log_msg(LOG_WARN, "evict %s: fchown: %s", in->path, strerror(errno));
    /* After fchown: chown clears set-id bits. */
    if (fchmod(j->dfd, in->mode & 07777) < 0)
        log_msg(LOG_WARN, "evict %s: fchmod: %s", in->path, strerror(errno));
    evict_copy_xattrs(in->mem_fd, j->dfd, in->path);
    struct timespec ts[2] = {
        {atomic_load(&in->atime_ns) / 1000000000, atomic_load(&in->atime_ns) % 1000000000},
        {atomic_load(&in->mtime_ns) / 1000000000, atomic_load(&in->mtime_ns) % 1000000000},
    };
    futimens(j->dfd, ts);
    j->copied = 1;
    return 0;
}

static int evict_link_names(struct evict_job *j);

/* Step 4: the complete file takes the in-memory file's name (link of the
 * unnamed file, or rename of the staging name), with the directory's times
 * kept as tmpfs would show them.  0, or -errno (the memfd may lack what was
 * punched: evict_recover). */
static int evict_name(struct evict_job *j)
{
    struct eph_inode *in = j->in;
    int e = 0;
    if (j->unnamed && !in->path[0])
        return 0; /* a shim unlinked it during the copy: it stays anonymous on disk */
    if (j->unnamed)
        j->dir_known = evict_dir_stat(in->path, j->dir, sizeof j->dir, &j->dir_before);
    if (j->unnamed && (e = evict_link(j->dfd, in->path)) == -EEXIST) {
        /* A program without the shim made an entry under the in-memory
         * name: ours replaces it, through a staging link and rename. */
        evict_staging_name(j->tmp, sizeof j->tmp, in->path, j->idx);
        unlink(j->tmp);
        e = evict_link(j->dfd, j->tmp);
    }
    if (j->unnamed && e < 0) {
        j->tmp[0] = 0;
        log_msg(LOG_ERR, "evict: linking %s: %s", in->path, strerror(-e));
        return e;
    }
    if (j->tmp[0] && dsys.rename(j->tmp, in->path) < 0) {
        e = -errno;
        log_msg(LOG_ERR, "evict: rename(%s, %s): %s", j->tmp, in->path, strerror(-e));
        return e;
    }
    if (j->dir_known)
        evict_hide_dir_times(j->dir, &j->dir_before);
    return in->link_head ? evict_link_names(j) : 0;
}

/*
 * Step 4 for a file with further names (EPH_NAME slots, shim/nslink.c): each
 * becomes a hard link of the disk file just named at in->path, so all names
 * end on disk as names of one file, as they were of one inode in memory.  A
 * name whose directory a program without the shim removed is gone (logged),
 * as the file's own would be.  0, or -errno with every link made here and the
 * file's own disk name taken back (the file stays in memory, all its names
 * with it).
 */
static int evict_link_names(struct evict_job *j)
{
    struct eph_inode *in = j->in;
    uint32_t steps = 0;
    for (uint32_t x = in->link_head; x && x <= D.h->ninodes && steps < D.h->ninodes;
         x = D.inodes[x - 1].link_next, steps++) {
        const char *p = D.inodes[x - 1].path;
        if (!p[0])
            continue;
        char dir[EPH_PATH_MAX];
        struct stat before;
        int known = evict_dir_stat(p, dir, sizeof dir, &before);
        int r = EVICT_NOINTR(dsys.linkat(AT_FDCWD, in->path, AT_FDCWD, p, 0));
        if (r < 0 && errno == EEXIST) {
            /* a program without the shim made an entry there: ours replaces it */
            char tmp[EPH_PATH_MAX + 64];
            evict_staging_name(tmp, sizeof tmp, p, x - 1);
            unlink(tmp);
            r = EVICT_NOINTR(dsys.linkat(AT_FDCWD, in->path, AT_FDCWD, tmp, 0));
            if (r == 0 && (r = dsys.rename(tmp, p)) < 0) {
                int e = errno;
                unlink(tmp);
                errno = e;
            }
        }
        if (r < 0 && (errno == ENOENT || errno == ENOTDIR)) {
            log_msg(LOG_WARN, "evict %s: its name %s: %s (its directory went); the name is gone", in->path, p,
                    strerror(errno));
            continue;
        }
        if (r < 0) {
            int e = -errno;
            log_msg(LOG_ERR, "evict: linking %s as %s: %s", in->path, p, strerror(-e));
            for (uint32_t y = in->link_head, k = 0; y && y != x && k < steps; y = D.inodes[y - 1].link_next, k++)
                unlink(D.inodes[y - 1].path);
            unlink(in->path);
            return e;
        }
        if (known)
            evict_hide_dir_times(dir, &before);
    }
    return 0;
}

/* Step 5, for a file with further names: they leave the namespace with its own
 * (inside the caller's write section); the daemon frees their slots after. */
static void evict_drop_names(struct eph_inode *in, uint32_t *freed, uint32_t *nfreed, uint32_t max)
{
    uint32_t steps = 0;
    for (uint32_t x = in->link_head; x && x <= D.h->ninodes && steps < D.h->ninodes; steps++) {
        uint32_t next = D.inodes[x - 1].link_next;
        ns_remove(x - 1);
        if (*nfreed < max)
            freed[(*nfreed)++] = x - 1;
        x = next;
    }
    in->link_head = 0;
}

/* Step 5: DISK, every process swaps to the disk file; then the memory is
 * freed, the counters fixed and the name leaves the namespace. */
static void evict_commit(struct evict_job *j)
{
    struct eph_inode *in = j->in;
    /* Without write-through, start writeback now, without waiting: clean
     * pages are what the kernel can reclaim when the function needs memory
     * back. */
    if (!j->sync)
        dsys.sync_file_range(j->dfd, 0, 0, SYNC_FILE_RANGE_WRITE);

    in->disk_fd = j->dfd;
    ns_lock(j->idx);
    atomic_store(&in->state, EPH_DISK);
    atomic_fetch_add(&in->epoch, 1);
    eph_unlock(&in->lock);
    eph_wake_all(&in->epoch);

    uint64_t cap = atomic_load(&in->capacity);
    if (!j->pinned && !(j->flags & EVICT_KEEP_PAGES)) {
        dsys.fallocate(in->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)cap);
        /* A stalled holder's copy through its mapping would SIGBUS past a
         * shrunk size; at the old size it lands in fresh pages, and the
         * holder then redoes it on disk and punches them (shim/fp_io.c,
         * io_again and overtaken_pages_free). */
        if (!j->stalled && EVICT_NOINTR(dsys.ftruncate(in->mem_fd, 0)) < 0)
            log_msg(LOG_WARN, "evict inode %u: ftruncate(memfd, 0): %s", j->idx, strerror(errno));
        atomic_store(&in->capacity, 0);
    }
    struct eph_counters *c = &D.h->c;
    atomic_fetch_sub(&c->files_in_memory, 1);
    atomic_fetch_sub(&c->bytes_in_memory, cap);
    atomic_fetch_add(&c->evictions, 1);
    atomic_fetch_add(&c->bytes_evicted, j->size);
    if (in->path[0])
        fbytes_count_moved(j->dfd); /* after its memory left bytes_in_memory: never counted twice */
    log_msg(LOG_INFO, "evicted inode %u %s (%llu bytes, open %u, %s, %.1f ms)", j->idx,
            in->path[0] ? in->path : "(unlinked)", (unsigned long long)j->size,
            atomic_load(&in->open_count), j->sync ? "written through" : "via page cache",
            (double)(ephd_mono_ns() - j->t0) / 1e6);
    uint32_t names[64], nnames = 0;
    if (in->path[0]) {
        ns_recent_evicted(j->idx, atomic_load(&in->gen), in->path);
        ns_write_begin();
        ns_remove(j->idx);
        evict_drop_names(in, names, &nnames, 64);
        ns_write_end();
    }
    for (uint32_t k = 0; k < nnames; k++)
        ns_maybe_gc(names[k]);
    if (nnames == 64)
        atomic_store(&D.h->reclaim_pending, 1); /* more names than we noted: the next reclaim frees them */
    ns_maybe_gc(j->idx);
}

/* A step failed before step 5: the file goes back to MEM, intact. */
static int evict_abort(struct evict_job *j, int e)
{
    struct eph_inode *in = j->in;
    if (j->dfd >= 0) {
        keeper_dropped(j->dfd);
        close(j->dfd);
    }
    if (j->tmp[0])
        unlink(j->tmp);
    ns_lock(j->idx);
    atomic_store(&in->state, EPH_MEM);
    atomic_fetch_add(&in->epoch, 1);
    eph_unlock(&in->lock);
    eph_wake_all(&in->epoch);
    return e;
}

static uint64_t evict_failed; /* evictions that failed: the file stayed in memory */

/* Steps 4 and 5 under the namespace lock: a shim's rename or unlink of the
 * file lands before or after, never in between.  0, or -errno with nothing
 * committed. */
static int evict_name_and_commit(struct evict_job *j)
{
    int e = nsl_enter();
    if (e < 0)
        return e;
    if ((e = evict_name(j)) == 0)
        evict_commit(j);
    /* The file's names are on disk now (its own may already be out of the namespace): a shim's
     * create in memory that looked at the disk before this must not insert over one of them
     * (shim/nsfast.c, nsf_create; bug hidden-create).  Moved even when a link failed part way. */
    atomic_fetch_add(&D.h->disk_names, 1);
    nsl_exit();
    return e;
}

/* How long a failed move may wait for the disk or for memory before it
 * gives up on the punched bytes, and after how long of ENOMEM the daemon
 * lifts its own OOM guard to get memory (see evict_recover). */
#define EVICT_RECOVER_NS (10000ull * 1000 * 1000)
#define EVICT_RECOVER_GIVE_WAY_NS (1000ull * 1000 * 1000)

/*
 * The copy or the naming failed after the write-through copy had punched
 * [0, freed) out of the memfd: those bytes are now only in the disk file.
 * Putting the file back to MEM as it is would publish holes, later written
 * back as zeros (the right length, the wrong bytes: the guard test's
 * "bytes differ on disk").  The failure that gets here under memory
 * pressure is ENOMEM from the link (a dentry is charged to the cgroup) at a
 * v1 limit with oom_kill_disable set, where charging the memfd's pages
 * back fails with ENOMEM too.  So both ways out are tried in turn until one
 * works: forward (the copy was complete: name it again and commit, which
 * frees memory) or back (restore the punched part into the memfd, resumed
 * where it stopped).  Waiting for memory is bounded: after a second the
 * daemon lifts its own guard, so the kernel's OOM handling frees memory (as
 * on disk); in follow mode the host's watchdog lifts it, or, with the host's
 * lease gone, the lease's rule kills as the kernel would, and that rule is
 * run from this loop since the tick waits for it (a 10 s stall and lost bytes
 * in node-e2e before); after EVICT_RECOVER_NS it gives up and says which bytes
 * are lost.  0 when the move completed after all; else e, the file's bytes
 * back in the memfd.
 */
static int evict_recover(struct evict_job *j, int e)
{
    uint64_t start = ephd_mono_ns();
    int gave_way = 0;
    for (unsigned tries = 1;; tries++) {
        if (j->copied && evict_name_and_commit(j) == 0) {
            log_msg(LOG_WARN, "evict inode %u: moved on retry %u (the first try failed: %s); no byte lost",
                    j->idx, tries, strerror(-e));
            return 0;
        }
        int r = evict_restore(j->in->mem_fd, j->dfd, j->freed, &j->restored);
        if (r == 0) {
            log_msg(LOG_WARN, "evict inode %u: %lld punched bytes restored to memory on retry %u (the move failed: %s); "
                    "the file stays in memory, intact",
                    j->idx, (long long)j->freed, tries, strerror(-e));
            return e;
        }
        uint64_t waited = ephd_mono_ns() - start;
        if (waited > EVICT_RECOVER_NS) {
            log_msg(LOG_ERR, "evict inode %u (%s): bytes %lld..%lld are only in the failed disk copy and could "
                    "not be restored in %llu s (%s); they are LOST",
                    j->idx, j->in->path, (long long)j->restored, (long long)j->freed,
                    (unsigned long long)(EVICT_RECOVER_NS / 1000000000ull), strerror(-r));
            return e;
        }
        if (r == -ENOMEM && !gave_way && waited > EVICT_RECOVER_GIVE_WAY_NS) {
            guard_give_way();
            gave_way = 1;
        }
        /* Follow mode: the host lifts the guard, or, with its lease gone, our own rule kills
         * the victim after its bound; that rule runs on the tick, which waits for us. */
        guard_waiting();
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/*
 * Every name of the file sits in a disk directory before the move: a file made
 * in a directory that is still only in memory (shim/nsdir.c, nsfast.c) gets
 * the twin chain of each of its names' directories first, parents first, as
 * any other call that needs the directory on disk does (dirtwin.c).  0 or -errno.
 */
static int (*evict_settle)(const char *dir); /* dt_settle, passed in: dirtwin.c calls us */

void evict_set_settle(int (*settle)(const char *dir))
{
    evict_settle = settle;
}

static int evict_settle_dirs(struct evict_job *j)
{
    if (!evict_settle || atomic_load(&D.h->mdirs_live) == 0)
        return 0;
    int e = nsl_enter();
    if (e < 0)
        return e;
    char dir[EPH_PATH_MAX];
    if (j->in->path[0]) {
        evict_dir_of(j->in->path, dir, sizeof dir);
        e = evict_settle(dir);
    }
    uint32_t steps = 0;
    for (uint32_t x = j->in->link_head; e == 0 && x && x <= D.h->ninodes && steps < D.h->ninodes;
         x = D.inodes[x - 1].link_next, steps++)
        if (D.inodes[x - 1].path[0]) {
            evict_dir_of(D.inodes[x - 1].path, dir, sizeof dir);
            e = evict_settle(dir);
        }
    nsl_exit();
    if (e < 0)
        log_msg(LOG_ERR, "evict inode %u (%s): the disk twin of its directory: %s", j->idx, j->in->path, strerror(-e));
    return e;
}

int evict_inode(uint32_t idx, int flags)
{
    struct evict_job j = {.idx = idx, .in = &D.inodes[idx], .flags = flags, .dfd = -1};
    j.gen = atomic_load(&j.in->gen);
    uint32_t st = atomic_load(&j.in->state);
    if (st == EPH_DISK)
        return 0;
    if (st != EPH_MEM)
        return -ESTALE;
    eph_lock_stall("evict-chosen"); /* fault builds: stop between the look and the lock (test/c/evicthome_test.c) */
    int e = evict_settle_dirs(&j);
    if (e < 0)
        return e;
    e = evict_begin(&j);
    if (e < 0)
        return e;
    if (!(flags & EVICT_FORCE) && evict_locked(j.in->mem_fd))
        return evict_abort(&j, -EBUSY);
    /* The keeper holds the disk file from the start: the copy punches the memfd as it goes, so a
     * daemon killed in the middle leaves part of the bytes only there (takeover.c restores them). */
    if ((e = evict_open_dest(&j)) == 0) {
        keeper_hold_readonly(j.dfd, EPH_KEEP_DISK, idx, atomic_load(&j.in->gen));
        if ((e = evict_write(&j)) == 0)
            e = evict_name_and_commit(&j);
    }
    if (e < 0 && j.freed)
        e = evict_recover(&j, e);
    if (e < 0) {
        evict_failed++;
        return evict_abort(&j, e);
    }
    return 0;
}

/* May LRU eviction take inode i now?  In memory, not pinned, not empty
 * (an empty file frees nothing), not backing off after a failure. */
static int evict_candidate(uint32_t i, struct eph_inode *in, uint64_t now)
{
    return atomic_load(&in->state) == EPH_MEM && !atomic_load(&in->pinned) &&
           atomic_load(&in->capacity) != 0 && !(evict_retry_at && evict_retry_at[i] > now);
}

/*
 * LRU victim: closed files first, then the oldest last_use.  With
 * EVICT_SPARE_BUSY (room for a growing file), open files used within
 * EVICT_BUSY_NS are not candidates: swapping a hot file out for another hot
 * file only moves the disk traffic around and costs a copy each time (two
 * files that do not fit together would push each other out in turn).
 */
static int evict_pick(int64_t exclude, int flags)
{
    uint64_t now = ephd_mono_ns();
    uint64_t busy_since = (flags & EVICT_SPARE_BUSY) && now > EVICT_BUSY_NS ? now - EVICT_BUSY_NS : 0;
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    int best = -1, best_open = 1;
    uint64_t best_use = UINT64_MAX;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if ((int64_t)i == exclude || !evict_candidate(i, in, now))
            continue;
        int open = atomic_load(&in->open_count) != 0;
        uint64_t use = atomic_load(&in->last_use);
        if (open && busy_since && use > busy_since)
            continue;
        if (open < best_open || (open == best_open && use < best_use)) {
            best = (int)i;
            best_open = open;
            best_use = use;
        }
    }
    return best;
}

uint64_t evict_busy_bytes(void)
{
    uint64_t now = ephd_mono_ns();
    uint64_t busy_since = now > EVICT_BUSY_NS ? now - EVICT_BUSY_NS : 0;
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (atomic_load(&in->state) != EPH_MEM)
            continue;
        if (evict_candidate(i, in, now) &&
            !(atomic_load(&in->open_count) != 0 && atomic_load(&in->last_use) > busy_since))
            continue;
        sum += atomic_load(&in->capacity);
    }
    return sum;
}

static int evict_until(uint64_t target, uint64_t need, int64_t exclude, int flags)
{
    if (!evict_retry_at)
        return -1;
    /* Bounded: each round evicts one file or gives up. */
    uint32_t rounds = atomic_load(&D.h->inode_hwm) + 1;
    if (atomic_load(&D.h->c.bytes_in_memory) + need > target)
        pins_release_unmapped();
    while (atomic_load(&D.h->c.bytes_in_memory) + need > target) {
        if (rounds-- == 0)
            return -1;
        int v = evict_pick(exclude, flags);
        if (v < 0)
            return -1;
        int r = evict_inode((uint32_t)v, flags & ~EVICT_SPARE_BUSY);
        if (r == 0)
            evict_nomem_since = 0;
        if (r == -EBUSY) {
            /* Record-locked: the next candidate now, this one again soon (locks are short). */
            evict_retry_at[v] = ephd_mono_ns() + 100000000ull;
            log_msg(LOG_INFO, "inode %d is record-locked; evicting another file", v);
        } else if (r == -ENOMEM) {
            /* The kernel had no memory for the move (an inode, a dentry)
             * because the cgroup is at its limit: the file stays intact in
             * memory, is tried again at the next tick, and still counts as
             * evictable, so the guard holds the function while the
             * watchdog outside grants the room (src/guard/). */
            uint64_t now = ephd_mono_ns();
            evict_retry_at[v] = now + EVICT_NOMEM_RETRY_NS;
            if (!evict_nomem_since)
                evict_nomem_since = now;
            log_msg(LOG_WARN, "inode %d: no memory to move it now; trying again", v);
        } else if (r < 0) {
            /* Could not write it out (disk full, an I/O error): it stays
             * intact in memory and is skipped for a second. */
            evict_retry_at[v] = ephd_mono_ns() + 1000000000ull;
            log_msg(LOG_ERR, "inode %d cannot be evicted now; keeping it in memory", v);
        }
    }
    return 0;
}

int evict_make_room(uint64_t need, int64_t exclude, int flags)
{
    return evict_until(atomic_load(&D.h->budget), need, exclude, flags);
}

int evict_down_to(uint64_t target, int flags)
{
    return evict_until(target, 0, -1, flags);
}

int evict_all(int flags, int named_only)
{
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    int n = 0;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (atomic_load(&in->state) != EPH_MEM || (named_only && !in->path[0]))
            continue;
        if (evict_inode(i, flags) == 0)
            n++;
    }
    return n;
}

static uint64_t evict_unwritten;

int evict_writeback(void)
{
    int n = evict_all(EVICT_FORCE | EVICT_KEEP_PAGES, 1), left = 0;
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    for (int pass = 0; pass < 2; pass++) {
        left = 0;
        for (uint32_t i = 0; i < hwm; i++) {
            struct eph_inode *in = &D.inodes[i];
            if (atomic_load(&in->state) != EPH_MEM || !in->path[0])
                continue;
            if (pass == 0 && evict_inode(i, EVICT_FORCE | EVICT_KEEP_PAGES) == 0) {
                n++;
                continue;
            }
            left++;
            if (pass == 1)
                log_msg(LOG_ERR, "shutdown: %s (%llu bytes) could not be written back to disk (see the error "
                        "above); it is lost when the daemon exits",
                        in->path, (unsigned long long)atomic_load(&in->size));
        }
        if (!left)
            break;
    }
    evict_unwritten = (uint64_t)left;
    log_msg(left ? LOG_ERR : LOG_INFO, "shutdown: wrote %d in-memory files back to disk, %d could not be written",
            n, left);
    return left;
}

uint64_t evict_failures(void)
{
    return evict_failed;
}

uint64_t evict_writeback_failed(void)
{
    return evict_unwritten;
}

int evict_below(const char *dir, int flags)
{
    size_t n = strlen(dir);
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    int k = 0;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (atomic_load(&in->state) == EPH_MEM && strncmp(in->path, dir, n) == 0 &&
            in->path[n] == '/' && evict_inode(i, flags) == 0)
            k++;
    }
    return k;
}

int evict_has_evictable(void)
{
    if (atomic_load(&D.h->c.bytes_in_memory) == 0)
        return 0;
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    uint64_t now = ephd_mono_ns();
    /* After an ENOMEM a file backing off is still evictable: it waits for
     * room, not for a fault to go away. */
    uint64_t t = evict_nomem_since && now - evict_nomem_since < EVICT_NOMEM_HOLD_NS ? UINT64_MAX : now;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        if (evict_candidate(i, in, t))
            return 1;
    }
    return 0;
}

int evict_linked(const char *path)
{
    int idx = ns_lookup(path); /* the file, also through a further name */
    if (idx < 0 || !D.inodes[idx].link_head)
        return 0;
    uint32_t t = (uint32_t)idx;
    if (atomic_load(&D.inodes[t].state) != EPH_MEM)
        return -EAGAIN;
    int flags = EVICT_FORCE;
    if (atomic_load(&D.inodes[t].pinned))
        flags |= EVICT_KEEP_PAGES;
    int e = evict_inode(t, flags);
    if (e == 0 && D.inodes[t].link_head)
        e = -EAGAIN; /* never: a committed eviction takes every name */
    if (e < 0)
        log_msg(LOG_WARN, "%s: a name of a file with several; moving it to disk first failed: %s", path, strerror(-e));
    return e;
}
