/*
 * shim/fp_lock.c - what the shim repairs when it takes a lock of the region
 * over from a process that died holding it (include/ephemera/lock.h calls
 * eph_lock_recovered with the lock held).  Recovery is rare: it may open and
 * log.  And what it says when a live holder keeps one long (eph_lock_waiting).
 * See docs/ARCHITECTURE.md, "Locks that survive their holder".
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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

/* A live holder kept a lock of the region for s seconds: say which, and whose (its state tells a
 * stopped process, T, from a starved one). */
void eph_lock_waiting(eph_lock_t *l, uint32_t owner, unsigned s)
{
    if (!atomic_load(&sh.attached))
        return;
    uintptr_t a = (uintptr_t)l, base = (uintptr_t)sh.inodes;
    int inode = a >= base && a < base + (uintptr_t)sh.hdr->ninodes * sizeof(struct eph_inode)
                    ? (int)((a - base) / sizeof(struct eph_inode))
                    : -1;
    char p[64], st[512] = "";
    snprintf(p, sizeof p, "/proc/%u/stat", owner);
    long fd = syscall(SYS_openat, AT_FDCWD, p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        long n = syscall(SYS_read, (int)fd, st, sizeof st - 1);
        st[n > 0 ? n : 0] = 0;
        syscall(SYS_close, (int)fd);
    }
    const char *paren = strrchr(st, ')');
    char state = paren && paren[1] == ' ' ? paren[2] : '?';
    if (inode >= 0)
        sh_log("waited %u s for the lock of inode %d, held by live process %u (state %c); waiting on until it "
               "releases it or dies",
               s, inode, owner, state);
    else
        sh_log("waited %u s for a description lock held by live process %u (state %c); waiting on until it "
               "releases it or dies",
               s, owner, state);
}
