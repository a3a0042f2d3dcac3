/*
 * region.c - lay out and create the shared region.
 *
 * The region is sized for the configured number of inodes and descriptions
 * up front (a memfd cannot move under the processes that mapped it), but it
 * costs only the pages actually touched: inode slots are used from the
 * bottom (inode_hwm bounds every scan) and the memfd is sparse.
 */
#include "region.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "reserve.h"
#include "ephemera/nslock.h"

static size_t region_align(size_t v, size_t a)
{
    return (v + a - 1) & ~(a - 1);
}

int region_create(uint32_t ninodes, uint32_t ndescs, char *err, size_t errlen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint32_t nbuckets = 1;
    while (nbuckets < ninodes * 2)
        nbuckets <<= 1;

    size_t inodes_off = region_align(sizeof(struct eph_shm_header), page);
    size_t descs_off = region_align(inodes_off + (size_t)ninodes * sizeof(struct eph_inode), page);
    size_t buckets_off = region_align(descs_off + (size_t)ndescs * sizeof(struct eph_desc), page);
    size_t dirhash_off = region_align(buckets_off + (size_t)nbuckets * sizeof(uint32_t), page);
    size_t total = region_align(dirhash_off + (size_t)ninodes * sizeof(uint32_t), page);

    int fd = memfd_create("ephemera-region", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "memfd_create(region): %s", strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)total) < 0) {
        snprintf(err, errlen, "ftruncate(region, %zu): %s", total, strerror(errno));
        goto err;
    }
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "mmap(region, %zu): %s", total, strerror(errno));
        goto err;
    }
    struct eph_shm_header *h = p;
    /* The header's fields the daemon reads on its ticks resident now, not at their first read
     * (holds_hwm, on a page nothing else touches, at the first 1 s tick): a fresh page of shared
     * memory is charged to the daemon's cgroup, and if that cgroup waits above memory.high at the
     * guard then, the kernel throttles the daemon for up to 2 s.  All of it but the twin
     * records' table (528 KiB, read only as far as records were written): ~12 pages. */
    size_t tr0 = offsetof(struct eph_shm_header, twinrecs), tr1 = tr0 + sizeof h->twinrecs;
    tr0 = region_align(tr0, page);
    tr1 &= ~(page - 1);
    reserve_populate(p, tr0);
    reserve_populate((char *)p + tr1, inodes_off - tr1);
    h->version = EPH_SHM_VERSION;
    h->header_size = sizeof *h;
    h->ninodes = ninodes;
    h->ndescs = ndescs;
    h->nbuckets = nbuckets;
    h->daemon_pid = (int32_t)getpid();
    h->inodes_off = inodes_off;
    h->descs_off = descs_off;
    h->buckets_off = buckets_off;
    h->dirhash_off = dirhash_off;
    h->total_size = total;
    atomic_store(&h->grow_step_max, 64ull << 20);
    int e = eph_ns_lock_init(h);
    if (e) {
        snprintf(err, errlen, "pthread_mutex_init(namespace lock, robust, shared): %s", strerror(e));
        munmap(p, total);
        goto err;
    }
    /* Every lookup reads a bucket: make the table resident now, not in an
     * OOM stall (reserve.h), with one madvise rather than a fault a page. */
    reserve_populate((char *)p + buckets_off, total - buckets_off);
    /* The magic goes last: a shim that maps a half-initialised region sees
     * no magic and refuses it. */
    atomic_thread_fence(memory_order_release);
    h->magic = EPH_SHM_MAGIC;

    D.h = h;
    D.inodes = eph_inodes(h);
    D.region_fd = fd;
    D.region_size = total;
    return 0;
err:
    close(fd);
    return -1;
}

int region_adopt(int fd, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "--takeover: the region (fd %d): %s", fd, strerror(errno));
        return -1;
    }
    size_t total = (size_t)st.st_size;
    if (total < sizeof(struct eph_shm_header)) {
        snprintf(err, errlen, "--takeover: fd %d is %zu bytes, too small for a region", fd, total);
        return -1;
    }
    struct eph_shm_header *h = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        snprintf(err, errlen, "--takeover: mmap(region, %zu): %s", total, strerror(errno));
        return -1;
    }
    if (h->magic != EPH_SHM_MAGIC || h->version != EPH_SHM_VERSION || h->header_size != sizeof *h ||
        h->total_size != total || h->inodes_off + (uint64_t)h->ninodes * sizeof(struct eph_inode) > total ||
        h->buckets_off + (uint64_t)h->nbuckets * sizeof(uint32_t) > total ||
        h->dirhash_off + (uint64_t)h->ninodes * sizeof(uint32_t) > total) {
        snprintf(err, errlen,
                 "--takeover: fd %d is not a region of this build (magic %#llx version %u header %u bytes, "
                 "size %llu of %zu); was the daemon rebuilt while the run went on?",
                 fd, (unsigned long long)h->magic, h->version, h->header_size, (unsigned long long)h->total_size,
                 total);
        munmap(h, total);
        return -1;
    }
    D.h = h;
    D.inodes = eph_inodes(h);
    D.region_fd = fd;
    D.region_size = total;
    return 0;
}

void region_destroy(void)
{
    if (D.h)
        munmap(D.h, D.region_size);
    if (D.region_fd >= 0)
        close(D.region_fd);
    D.h = NULL;
    D.region_fd = -1;
}
