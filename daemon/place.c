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

#define PLACE_RECENT 4

struct place_entry {
    int64_t idx; /* in-memory inode, or -1 */
    uint32_t gen;
    char path[EPH_PATH_MAX];
};

static struct place_entry place_ring[PLACE_RECENT];
static unsigned place_next, place_count;
static uint64_t place_disk;

void place_note(int64_t idx, uint32_t gen, const char *path)
{
    struct place_entry *e = &place_ring[place_next];
    place_next = (place_next + 1) % PLACE_RECENT;
    if (place_count < PLACE_RECENT)
        place_count++;
    e->idx = idx;
    e->gen = gen;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
}

/* The entry's size now: from the inode while the daemon still tracks it
 * (in memory, or moved to disk with our fd), else from the path. */
static uint64_t place_size(const struct place_entry *e)
{
    struct stat st;
    if (e->idx >= 0 && ns_valid((uint32_t)e->idx, e->gen)) {
        struct eph_inode *in = &D.inodes[e->idx];
        if (atomic_load(&in->state) == EPH_DISK && in->disk_fd >= 0)
            return fstat(in->disk_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        return atomic_load(&in->size);
    }
    if (e->path[0] && stat(e->path, &st) == 0 && S_ISREG(st.st_mode))
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
    for (unsigned i = 0; i < place_count; i++) {
        uint64_t s = place_size(&place_ring[i]);
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
