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

/* Make [p, p + len) resident and charged now (page-aligned), without the
 * page faults of touching it: one madvise(MADV_POPULATE_WRITE), which leaves
 * the contents as they are; where the kernel lacks it (before 5.14), a
 * memset to zero, so only for memory that nobody else writes yet.  A fault
 * costs ~17 us on a shadow-paging VM against ~1.3 us a page populated
 * (docs/ARCHITECTURE.md, "Start-up on a shadow-paging VM"). */
void reserve_populate(void *p, size_t len);
/* A zeroed table of bytes that lives as long as the daemon (or until
 * reserve_table_free): its own anonymous mapping, so that its pages are
 * zero-filled by the kernel as they are first used, or all at once by
 * reserve_lock before the guard is armed, never cleared at start-up by
 * calloc.  NULL when out of memory. */
void *reserve_table(size_t bytes);
void reserve_table_free(void *p, size_t bytes);

#endif
