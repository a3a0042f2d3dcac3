/*
 * reserve.h - the daemon's working set, made resident before the OOM guard
 * is armed: under cgroup v1 with oom_kill_disable, any page the daemon
 * faults in while its cgroup is at the limit puts it to sleep until memory
 * is freed - and freeing memory is its own job.  So the pages it will touch
 * on the wake-up and eviction paths are faulted in (stack, a heap reserve
 * that malloc keeps) and locked (mlock) just before the guard is first set.
 *
 * Not in the ASan build: locking would fault in the shadow memory.  There,
 * and wherever mlock is refused (no CAP_IPC_LOCK and a small
 * RLIMIT_MEMLOCK), the guarantee is the watchdog outside the cgroup
 * (src/guard/), which lifts the guard when a stall lasts too long.
 */
#ifndef EPHD_RESERVE_H
#define EPHD_RESERVE_H

#include <stddef.h>

/* Before the first allocation of any size: keep malloc from returning
 * memory to the kernel and from serving large blocks with fresh mmaps. */
void reserve_heap_policy(void);
/* Fault in heap_bytes of heap and the top of the stack, then lock every
 * page mapped so far except [skip, skip + skip_len) (the shared region,
 * which is made resident only as far as it is used).  Returns words for the
 * log: "locked", "faulted in (ASan build: not locked ...)", or why locking
 * failed. */
const char *reserve_lock(size_t heap_bytes, const void *skip, size_t skip_len);

#endif
