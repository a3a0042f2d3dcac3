/*
 * shim/fp_times.c - file times and the LRU stamp: the out-of-line parts (the
 * fine clock, atime updates, size-change stamps).  The per-operation stamps
 * and the reasoning behind the clocks are in fp_times.h.
 */
#include <linux/capability.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ephemera/shm.h"

#include "fp_times.h"
#include "creds.h"
#include "compiler.h"
#include "init.h"

SH_TLS struct coarse_now fp_tl_coarse;

int64_t fp_fine_stamp(void)
{
    int64_t now = sh_now_ns();
    eph_atomic_max(&sh.hdr->time_floor, (uint64_t)now);
    return now;
}

__attribute__((noinline)) void fp_atime_update(struct eph_inode *ino, int64_t a)
{
    int64_t now = sh_now_ns();
    if (a != now)
        atomic_store_explicit(&ino->atime_ns, now, memory_order_relaxed);
}

void fp_touch_mtime(struct eph_inode *ino)
{
    int64_t now = fp_fine_stamp();
    atomic_store_explicit(&ino->mtime_ns, now, memory_order_relaxed);
    atomic_store_explicit(&ino->ctime_ns, now, memory_order_relaxed);
    if (atomic_load_explicit(&ino->times_seen, memory_order_relaxed))
        atomic_store_explicit(&ino->times_seen, 0, memory_order_relaxed);
    fp_stamp_lru(ino, fp_coarse_by_real().mono);
}

int fp_in_group(gid_t g)
{
    if (g == creds_egid())
        return 1;
    gid_t list[256];
    int n = getgroups(256, list);
    for (int i = 0; i < n; i++)
        if (list[i] == g)
            return 1;
    return 0;
}

/* capable(CAP_FSETID): in the effective set now (setuid to a user drops it). */
static int can_fsetid(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return creds_euid() == 0;
    return (d[CAP_FSETID / 32].effective >> (CAP_FSETID % 32)) & 1;
}

/*
 * The kernel's setattr_should_drop_suidgid for a write or a size change:
 * set-user-ID goes, and set-group-ID when group-executable (or when the
 * writer is not in the file's group), unless the writer has CAP_FSETID.
 */
__attribute__((noinline)) void fp_drop_setid(struct eph_inode *ino)
{
    uint32_t m = ino->mode, kill = 0;
    if (m & S_ISUID)
        kill |= S_ISUID;
    if ((m & S_ISGID) && ((m & S_IXGRP) || !fp_in_group(ino->gid)))
        kill |= S_ISGID;
    if (!kill || can_fsetid())
        return;
    ino->mode = m & ~kill;
    atomic_store_explicit(&ino->ctime_ns, fp_fine_stamp(), memory_order_relaxed);
}
