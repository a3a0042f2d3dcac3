/*
 * takeover.c - take over the region of a daemon that died (takeover.h).
 *
 * What the dead daemon kept in its own memory is rebuilt from the region: the free slots, each
 * file's root, the counters.  What it kept in fds, the keeper gave back at the same numbers.
 * What it was doing when it died is undone or finished: a namespace change (ns_lock's journal,
 * recovered by the first nsl_enter), an eviction (the file goes back to MEM with the bytes the
 * copy had already punched out of its memfd copied back from the disk file; a link the eviction
 * had made is removed), an eviction past its DISK step (its name leaves the namespace, as
 * evict_commit would have done), an inode lock it held (taken over after 1 s, as for any dead
 * holder).
 */
#include "takeover.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "ephemera/lock.h"
#include "ephemera/rescue.h"
#include "keeper.h"
#include "ledger.h"
#include "log.h"
#include "namespace.h"

static struct eph_keeper_entry *tk_entries;
static size_t tk_n;
static int32_t tk_old_pid;

int takeover_manifest(int mfd, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(mfd, &st) < 0 || st.st_size % (off_t)sizeof *tk_entries) {
        snprintf(err, errlen, "--takeover-manifest: fd %d is not a manifest (%s)", mfd,
                 errno ? strerror(errno) : "its size is not a whole number of entries");
        return -1;
    }
    tk_n = (size_t)st.st_size / sizeof *tk_entries;
    tk_entries = calloc(tk_n ? tk_n : 1, sizeof *tk_entries);
    if (!tk_entries || pread(mfd, tk_entries, (size_t)st.st_size, 0) != st.st_size) {
        snprintf(err, errlen, "--takeover-manifest: reading %zu entries: %s", tk_n,
                 tk_entries ? strerror(errno) : "out of memory");
        return -1;
    }
    close(mfd);
    int region = -1;
    for (size_t i = 0; i < tk_n; i++)
        if (tk_entries[i].kind == EPH_KEEP_REGION)
            region = tk_entries[i].fd;
    if (region < 0 || fcntl(region, F_GETFD) < 0) {
        snprintf(err, errlen, "--takeover-manifest: no region among its %zu entries", tk_n);
        return -1;
    }
    return region;
}

static int tk_open(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

/* The disk file of inode idx's eviction in progress, from the manifest, or -1. */
static struct eph_keeper_entry *tk_moving_fd(uint32_t idx, uint32_t gen)
{
    struct eph_keeper_entry *found = NULL;
    for (size_t i = 0; i < tk_n; i++)
        if (tk_entries[i].kind == EPH_KEEP_DISK && tk_entries[i].arg == idx && tk_entries[i].gen == gen &&
            tk_open(tk_entries[i].fd))
            found = &tk_entries[i];
    return found;
}

/* Remove name if it is a link to dfd's file (one the eviction made before the daemon died). */
static void tk_unlink_if_ours(const char *name, int dfd)
{
    struct stat a, b;
    if (lstat(name, &a) == 0 && fstat(dfd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        if (unlink(name) == 0)
            log_msg(LOG_INFO, "takeover: removed %s, the unfinished eviction's link", name);
    }
}

/* A file the dead daemon was evicting: back to MEM, whole. */
static void tk_unmove(uint32_t idx, struct eph_inode *in)
{
    uint64_t size = atomic_load(&in->size);
    struct eph_keeper_entry *held = tk_moving_fd(idx, atomic_load(&in->gen));
    int dfd = held ? held->fd : -1;
    if (held) {
        held->fd = -1; /* closed here, not by takeover_adopt_fds */
        int e = eph_rescue_merge(in->mem_fd, dfd, size);
        if (e < 0)
            log_msg(LOG_ERR, "takeover: inode %u (%s): restoring its bytes from the eviction's disk file: %s", idx,
                    in->path[0] ? in->path : "unlinked", strerror(-e));
        if (in->path[0]) {
            tk_unlink_if_ours(in->path, dfd);
            char staging[EPH_PATH_MAX + 64];
            const char *slash = strrchr(in->path, '/');
            snprintf(staging, sizeof staging, "%.*s/.ephemera-%d-%u-%u", (int)(slash - in->path), in->path,
                     (int)tk_old_pid, idx, atomic_load(&in->gen));
            tk_unlink_if_ours(staging, dfd);
        }
        keeper_dropped(dfd);
        close(dfd);
    }
    log_msg(LOG_INFO, "takeover: inode %u (%s, %llu bytes) was being evicted; back in memory", idx,
            in->path[0] ? in->path : "unlinked", (unsigned long long)size);
    atomic_store(&in->state, EPH_MEM);
    atomic_fetch_add(&in->epoch, 1);
    eph_wake_all(&in->epoch);
}

void takeover_repair(void)
{
    struct eph_shm_header *h = D.h;
    tk_old_pid = atomic_load(&h->daemon_pid);
    /* A lock the dead daemon held is recovered here (nsl_enter logs it and runs ns_check). */
    int locked = nsl_enter() == 0;
    if (!locked)
        log_msg(LOG_ERR, "takeover: the namespace lock is held by a stopped process; repairing without it");
    uint32_t hwm = atomic_load(&h->inode_hwm);
    uint64_t files = 0, bytes = 0, disk = 0, moving = 0, lost = 0;
    for (uint32_t i = 0; i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        uint32_t st = atomic_load(&in->state);
        if (st == EPH_FREE) {
            /* Free, lent to nobody, yet with a memfd: with the lock held no shim is inside a
             * record, so the dead daemon was killed inside a lend or a create of its own before
             * the slot was lent or a file.  The memfd goes with the rest of its stock. */
            if (locked && in->mem_fd >= 0 && !atomic_load(&in->lent_to))
                in->mem_fd = -1;
            continue;
        }
        if (atomic_load(&in->lock.word) != 0) {
            ns_lock(i);
            eph_unlock(&in->lock);
        }
        if (st != EPH_DISK && !tk_open(in->mem_fd)) {
            lost++;
            log_msg(LOG_ERR, "takeover: inode %u (%s): its memfd %d was not handed over; its bytes are lost", i,
                    in->path[0] ? in->path : "unlinked", in->mem_fd);
            continue;
        }
        if (st == EPH_NAME)
            continue; /* a further name of a file (shim/nslink.c): no bytes of its own */
        if (st == EPH_MOVING) {
            tk_unmove(i, in);
            moving++;
            st = EPH_MEM;
        }
        if (st == EPH_DISK) {
            disk++;
            if (in->path[0]) { /* killed between DISK and the end of evict_commit */
                ns_write_begin();
                ns_remove(i);
                ns_write_end();
            }
            continue;
        }
        files++;
        bytes += atomic_load(&in->capacity);
    }
    struct eph_counters *c = &h->c;
    atomic_store(&c->files_in_memory, files);
    atomic_store(&c->bytes_in_memory, bytes);
    eph_atomic_max(&c->files_in_memory_peak, files);
    eph_atomic_max(&c->bytes_in_memory_peak, bytes);
    /* Which slots are free is read under the lock: a shim's create from a lent slot clears
     * lent_to before it sets the state, so outside it a slot can look free and lent to nobody
     * while it becomes a file (ns_adopt_slots leaves such a slot alone when we have no lock). */
    ns_adopt_slots();
    if (locked)
        nsl_exit();
    atomic_fetch_add(&h->takeovers, 1);
    if (atomic_load(&h->twin_seq) & 1)
        atomic_fetch_add(&h->twin_seq, 1); /* the dead daemon was giving a directory its twin: done or not, it is over */
    log_msg(lost ? LOG_ERR : LOG_INFO,
            "takeover of the region of pid %d: %llu files in memory (%llu bytes), %llu on disk, %llu evictions undone, "
            "%llu lost",
            (int)tk_old_pid, (unsigned long long)files, (unsigned long long)bytes, (unsigned long long)disk,
            (unsigned long long)moving, (unsigned long long)lost);
    ns_check_and_log("after the takeover");
}

void takeover_adopt_fds(void)
{
    int maxfd = 0;
    for (size_t i = 0; i < tk_n; i++)
        if (tk_entries[i].fd > maxfd)
            maxfd = tk_entries[i].fd;
    uint8_t *named = calloc((size_t)maxfd + 1, 1);
    uint32_t hwm = atomic_load(&D.h->inode_hwm);
    /* Every slot's memfd is named, whatever its state: a freed slot has none (ns_free), and the
     * one state pair that says "free and lent to nobody" while a memfd is in use is a shim's
     * create from a lent slot half applied (lent_to cleared, state not yet MEM), which shims make
     * without us at any time, the lock no help when its holder is stopped.  Closing that memfd
     * here lost the file: the keeper dropped its copy, and CREATE answered with a closed fd. */
    for (uint32_t i = 0; named && i < hwm; i++) {
        struct eph_inode *in = &D.inodes[i];
        uint32_t st = atomic_load(&in->state);
        if (in->mem_fd >= 0 && in->mem_fd <= maxfd)
            named[in->mem_fd] = 1;
        if (st == EPH_DISK && in->disk_fd >= 0 && in->disk_fd <= maxfd)
            named[in->disk_fd] = 1;
    }
    /* And the stock's: a file freed since the takeover began (the collection of unlinked,
     * unopened files that ns_check runs after takeover_repair: files shims unlinked while no
     * daemon ran) left its memfd there, for the next file.  Closed here, it became that file's
     * closed fd (a CREATE answered with EBADF), or a number the kernel gave to the next fd we
     * opened, whose bytes the next file then shared. */
    int nstock = 0;
    const int *stock = ns_stock_fds(&nstock);
    for (int k = 0; named && k < nstock; k++)
        if (stock[k] >= 0 && stock[k] <= maxfd)
            named[stock[k]] = 1;
    int ledgers = 0, closed = 0;
    for (size_t i = 0; i < tk_n; i++) {
        struct eph_keeper_entry *e = &tk_entries[i];
        if (e->kind == EPH_KEEP_REGION || e->fd < 0 || !tk_open(e->fd))
            continue;
        if (e->kind == EPH_KEEP_LEDGER) {
            int fd = e->fd;
            if (ledger_register((pid_t)e->arg, 1, &fd, -1) == 0)
                ledgers++;
            if (fd >= 0) {
                keeper_dropped(fd);
                close(fd);
            }
            continue;
        }
        if (named && named[e->fd])
            continue;
        keeper_dropped(e->fd);
        close(e->fd);
        closed++;
    }
    keeper_flush();
    free(named);
    free(tk_entries);
    tk_entries = NULL;
    tk_n = 0;
    log_msg(LOG_INFO, "takeover: %d ledgers adopted, %d fds that nothing names any more closed", ledgers, closed);
}
