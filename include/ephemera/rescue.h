/*
 * ephemera/rescue.h - the bytes of a file whose daemon died, for the daemon that takes its region
 * over (daemon/takeover.c) and for the keeper that writes the files back itself when no daemon can
 * be started again (launcher/keeper.c).  Header-only, so both use one implementation.
 *
 * A file in memory is its memfd.  A file that was being evicted (MOVING) may be split: the
 * write-through copy punches each chunk out of the memfd once it is on disk (daemon/evict.c), so
 * below the point the copy had reached, the bytes are in the disk file and the memfd has holes.
 */
#ifndef EPHEMERA_RESCUE_H
#define EPHEMERA_RESCUE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

/* Copy [off, end) from src to dst at the same offsets.  0 or -errno. */
static inline int eph_rescue_copy_range(int src, int dst, off_t off, off_t end)
{
    char buf[64 * 1024];
    while (off < end) {
        size_t want = (size_t)(end - off) < sizeof buf ? (size_t)(end - off) : sizeof buf;
        ssize_t r = pread(src, buf, want, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        for (ssize_t w = 0; w < r;) {
            ssize_t k = pwrite(dst, buf + w, (size_t)(r - w), off + w);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return k < 0 ? -errno : -EIO;
            w += k;
        }
        off += r;
    }
    return 0;
}

/* The next data at or after pos below size, as [*data, *hole); 0 when there is none. */
static inline int eph_rescue_next_data(int fd, off_t pos, off_t size, off_t *data, off_t *hole)
{
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0 && errno != ENXIO)
        d = pos; /* no SEEK_DATA: everything is data */
    if (d < 0 || d >= size)
        return 0;
    off_t h = lseek(fd, d, SEEK_HOLE);
    *data = d;
    *hole = h < 0 || h > size ? size : h;
    return 1;
}

/* Put back into memfd what only the disk file dfd holds: every range below size where the disk
 * file has data and the memfd a hole.  0 or -errno. */
static inline int eph_rescue_merge(int memfd, int dfd, uint64_t size)
{
    /* The copy may have died with O_DIRECT set on the disk file's description. */
    int fl = fcntl(dfd, F_GETFL);
    if (fl >= 0 && (fl & O_DIRECT))
        fcntl(dfd, F_SETFL, fl & ~O_DIRECT);
    off_t end = (off_t)size, data, hole;
    for (off_t pos = 0; eph_rescue_next_data(dfd, pos, end, &data, &hole); pos = hole) {
        for (off_t p = data; p < hole;) {
            off_t mh = lseek(memfd, p, SEEK_HOLE);
            if (mh < 0)
                mh = p;
            if (mh >= hole)
                break;
            off_t md = lseek(memfd, mh, SEEK_DATA);
            if (md < 0 || md > hole)
                md = hole;
            int e = eph_rescue_copy_range(dfd, memfd, mh, md);
            if (e < 0)
                return e;
            p = md;
        }
    }
    return 0;
}

/* The file's bytes [0, size) from src into dst (holes stay holes), dst cut to size.  0 or -errno. */
static inline int eph_rescue_copy(int src, int dst, uint64_t size)
{
    off_t end = (off_t)size, data, hole;
    for (off_t pos = 0; eph_rescue_next_data(src, pos, end, &data, &hole); pos = hole) {
        int e = eph_rescue_copy_range(src, dst, data, hole);
        if (e < 0)
            return e;
    }
    return ftruncate(dst, end) < 0 ? -errno : 0;
}

#endif
