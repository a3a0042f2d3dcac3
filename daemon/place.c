/*
 * place.c - predicting whether a new file will fit.
 *
 * The shim cannot tell how large a file will become when it is created, so
 * every new file used to start in memory and, if it outgrew the budget, was
 * copied to disk half-written (RESERVE).  Under a tight limit that copy is
 * pure loss: the file ends on disk anyway, after being written twice.
 *
 * Functions tend to write files of similar sizes (the same code runs with
 * the same kind of input), so the best cheap guess for the next file is the
 * largest of the last few files created, read back at the moment of the
 * next create: a file that has been growing since shows its full size.  If
 * that guess exceeds the room left for a growing file - the budget minus
 * the files that growth would not push out (busy or pinned ones, see
 * evict_busy_bytes) - the new file starts on disk, as paper §5.2.1 asks for
 * a file that does not fit.
 *
 * A wrong guess costs little either way: a file sent to disk that would have
 * fit runs at disk speed (never slower than without Ephemera), and a file
 * kept in memory that does not fit is copied once, as before.  The guess
 * forgets: files the prediction sent to disk join the recent set with their
 * real sizes, so once the function switches to small files, at most
 * PLACE_RECENT creates later they are placed in memory again.
 */
#include "place.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "evict.h"
#include "log.h"
#include "namespace.h"

/*
 * The recent creates live in the region (place_recent, under ns_lock), since
 * shims create files there too: an in-memory file as its inode and gen, one
 * placed on disk as EPH_PLACE_DISK with its path kept by the daemon at the same
 * index (ns_recent_path: an eviction turns an entry into a disk one).
 * A shim creates in memory itself only while no recent file went to disk and
 * the cheap test below passes; otherwise it asks the daemon (shim/nsfast.c).
 */
static uint64_t place_disk;

void place_note(int64_t idx, uint32_t gen, const char *path)
{
    struct eph_shm_header *h = D.h;
    uint32_t k = atomic_load(&h->place_next) % EPH_PLACE_RECENT;
    atomic_store(&h->place_next, (k + 1) % EPH_PLACE_RECENT);
    snprintf(ns_recent_path(k), EPH_PATH_MAX, "%s", path ? path : "");
    atomic_store(&h->place_recent[k], idx >= 0 ? ((uint64_t)(idx + 1) | (uint64_t)gen << 32) : EPH_PLACE_DISK);
}

/* Entry k's size now: from the inode while it lives (in memory, or moved to
 * disk with our fd), else from the path if it went to disk, else 0 (the file
 * was deleted). */
static uint64_t place_size(uint32_t k)
{
    struct stat st;
    uint64_t v = atomic_load(&D.h->place_recent[k]);
    if (v == 0)
        return 0;
    if (v != EPH_PLACE_DISK) {
        uint32_t idx = (uint32_t)(v & 0xffffffffu) - 1, gen = (uint32_t)(v >> 32);
        if (!ns_valid(idx, gen))
            return 0;
        struct eph_inode *in = &D.inodes[idx];
        if (atomic_load(&in->state) == EPH_DISK && in->disk_fd >= 0)
            return fstat(in->disk_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        return atomic_load(&in->size);
    }
    const char *p = ns_recent_path(k);
    if (p[0] && stat(p, &st) == 0 && S_ISREG(st.st_mode))
        return (uint64_t)st.st_size;
    return 0;
}

int place_predict_disk(const char *path)
{
    uint64_t budget = atomic_load(&D.h->budget);
    if (budget == 0) {
        place_note(-1, 0, path);
        return 1;
    }
    uint64_t guess = 0;
    for (uint32_t i = 0; i < EPH_PLACE_RECENT; i++) {
        uint64_t s = place_size(i);
        if (s > guess)
            guess = s;
    }
    if (guess == 0)
        return 0;
    uint64_t ours = atomic_load(&D.h->c.bytes_in_memory);
    /* Cheap test first: with this much free the file fits whatever moves. */
    if (ours < budget && guess <= budget - ours)
        return 0;
    uint64_t busy = evict_busy_bytes();
    uint64_t room = busy < budget ? budget - busy : 0;
    if (guess <= room)
        return 0;
    place_disk++;
    log_msg(LOG_INFO, "%s: placed on disk: recent files reach %llu bytes, room for a growing file %llu",
            path, (unsigned long long)guess, (unsigned long long)room);
    place_note(-1, 0, path);
    return 1;
}

uint64_t place_predicted(void)
{
    return place_disk;
}
