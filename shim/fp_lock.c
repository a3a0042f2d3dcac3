/*
 * shim/fp_lock.c - what the shim repairs when it takes a lock of the region
 * over from a process that died holding it (include/ephemera/lock.h calls
 * eph_lock_recovered with the lock held).  Recovery is rare: it may open and
 * log.  See docs/ARCHITECTURE.md, "Locks that survive their holder".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ephemera/lock.h"
#include "ephemera/shm.h"

#include "init.h"

void eph_lock_recovered(eph_lock_t *l, uint32_t dead_pid)
{
    if (!atomic_load(&sh.attached))
        return;
    uintptr_t a = (uintptr_t)l, base = (uintptr_t)sh.inodes;
    if (a < base || a >= base + (uintptr_t)sh.hdr->ninodes * sizeof(struct eph_inode)) {
        /* A description's lock guards its offset: one store, old or new, both valid. */
        sh_log("took a description lock over from process %u, which died holding it", dead_pid);
        return;
    }
    uint32_t idx = (uint32_t)((a - base) / sizeof(struct eph_inode));
    struct eph_inode *in = &sh.inodes[idx];
    /* The memfd through the daemon, as an open does (our own fds may be read-only).
     * Raw syscalls: this runs inside our own interposed calls. */
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", sh_daemon_pid(), in->mem_fd);
    long fd = syscall(SYS_openat, AT_FDCWD, p, O_RDWR | O_CLOEXEC);
    int fixed = eph_inode_lock_repair(in, (int)fd);
    if (fd >= 0)
        syscall(SYS_close, (int)fd);
    sh_log("inode %u: took its lock over from process %u, which died holding it%s", idx, dead_pid,
           fixed ? "; its memfd is as long as its capacity again" : "");
}
