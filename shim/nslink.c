/*
 * shim/nslink.c - hard links of in-memory files without moving them to disk
 * (issue 9 item 5, issue 15 item 4).
 *
 * The namespace is the region's path hash, one name per slot.  A file keeps
 * its first name in its own slot; each further name is a slot of its own in
 * state EPH_NAME that holds the name and points at the file (link_to,
 * link_gen).  A lookup of such a name answers with the file (nsview.c), so
 * open, stat, read and write through any name reach the same memfd, size and
 * times; the file's nlink counts every name, and its list (link_head,
 * link_next) finds them.  Every change is one redo record under ns_lock, as
 * for create, unlink and rename (nsfast.c).  When the file's own name goes
 * while others stay, the file's slot takes its first further name, so a
 * file with nlink > 0 always has a name of its own: eviction, write-back and
 * the daemon's path-based requests keep working on in->path, and eviction
 * links each further name to the disk file (daemon/evict.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "ephemera/lock.h"
#include "ephemera/nslock.h"
#include "ephemera/shm.h"

#include "nslink.h"
#include "sys.h"
#include "creds.h"
#include "init.h"
#include "fp_times.h"
#include "nsfast.h"
#include "nsview.h"

int nsl_link(uint32_t idx, uint32_t gen, const char *dst)
{
    struct eph_shm_header *h = sh.hdr;
    struct eph_inode *in = &sh.inodes[idx];
    struct stat st;
    struct nsf_dir pd;
    char parent[EPH_PATH_MAX];
    uint32_t pi, pg;
    if (strlen(dst) >= EPH_PATH_MAX || atomic_load(&in->state) != EPH_MEM)
        return -2;
    uint32_t slot;
    int32_t dfd;
    int fd;
    if (nsf_take_slot(&slot, &dfd, &fd) < 0)
        return -2;
    eph_ns_stall("link-look"); /* fault builds: each try stops here (test/c/linklook_test.c) */
    if (nsf_hold() < 0) {
        nsf_give_slot(slot, dfd, fd, 1);
        return -1;
    }
    struct eph_inode *si = &sh.inodes[slot];
    if (slot >= h->ninodes || atomic_load(&si->state) != EPH_FREE || si->mem_fd != dfd) {
        /* not the free slot that was lent (a child sharing our pool used it): dropped */
        nsf_unhold();
        nsf_give_slot(slot, dfd, fd, 0);
        return -2;
    }
    /* The parent is looked at under the lock: every removal or rename of a directory (the
     * shims' and the daemon's) happens under it, so what we see stays true until the record.
     * A look before the lock had to be checked again under it (dirs_gone), and in a root where
     * another process makes and removes directories all the time it kept failing: after a
     * bounded number of tries the link moved its file to disk (hardlinks.test.mjs "links while
     * another process removes directories", once in a fresh-clone make test under load). */
    nsf_parent(dst, parent);
    uint32_t nl = atomic_load(&in->nlink);
    if (nsv_lookup(parent, &pi, &pg) == 0 || nsf_dir_writable_by_caller(dst, -1, &pd) < 0 ||
        (uint64_t)pd.st.st_dev != in->dev || eph_chain_lookup(h, dst) >= 0 || atomic_load(&in->gen) != gen ||
        atomic_load(&in->state) != EPH_MEM || nl == 0) {
        nsf_unhold();
        nsf_give_slot(slot, dfd, fd, 1);
        return -2;
    }
    /* The disk under the lock, as link_impl's kernel link and nsf_rename look:
     * a disk name made meanwhile cannot end up hidden under ours. */
    int lr = pd.midx >= 0 ? -1 : sys.lstat(dst, &st), le = pd.midx >= 0 ? ENOENT : errno; /* in memory: nothing on disk */
    if (lr == 0 || le != ENOENT) {
        nsf_unhold();
        nsf_give_slot(slot, dfd, fd, 1);
        if (lr < 0)
            return -2; /* the kernel has something else to say about the path */
        errno = EEXIST;
        return -1;
    }
    /* The slot is FREE and chained nowhere: invisible until the record applies. */
    eph_inode_fresh(si, 0, sh_lru_ns());
    si->ino = in->ino;
    si->dev = in->dev;
    si->mode = in->mode;
    si->uid = in->uid;
    si->gid = in->gid;
    si->link_to = idx;
    si->link_gen = gen;
    si->link_next = in->link_head;
    int64_t now = fp_fine_stamp();
    eph_j_begin(h);
    memcpy(h->journal.path, dst, strlen(dst) + 1);
    eph_j_add(h, EPH_JOP_INSERT, slot, 0);
    eph_j_set32(h, &si->lent_to, 0);
    eph_j_set32(h, &in->link_head, slot + 1);
    eph_j_set32(h, &in->nlink, nl + 1);
    eph_j_set64(h, &in->ctime_ns, (uint64_t)now); /* a link changes the file's ctime, as tmpfs's */
    eph_j_set32(h, &si->state, EPH_NAME);
    nsf_j_dir(h, &pd, 1, now);
    eph_j_commit(h);
    int full = nsf_touch(&pd, now);
    nsf_unhold();
    nsf_give_slot(slot, dfd, fd, 0); /* the name slot needs no memfd of ours */
    if (full)
        nsf_touch_kernel(dst);
    return 0;
}
