/*
 * guard.h - the OOM guard: while the daemon holds files it could evict, the
 * kernel is told to make an allocating function wait at its cgroup limit
 * instead of killing it (cgroup v1 oom_kill_disable, v2 memory.high).
 * The budget decides when (guard_update); the guard only talks to the
 * cgroup, and reports an OOM stall through the callback given at init.
 */
#ifndef EPHD_GUARD_H
#define EPHD_GUARD_H

#include <stdint.h>

/* Take over the guard of cgroup dir (version 1 or 2) if nobody else manages
 * it; on_oom runs from the loop when the kernel reports an OOM stall, and
 * before_arm (if set) once, just before the guard is set the first time
 * (the daemon makes its working set resident then: reserve.h). */
void guard_init(int version, const char *dir, void (*on_oom)(void), void (*before_arm)(void));
/* 1 when guard_init found a knob it may write. */
int guard_active(void);

/* The guard is set and the cgroup waits at it, read now (v1 under_oom; v2 usage above a guarding
 * memory.high, in follow mode only: preads of fds kept open, which charge nothing); the log held
 * or let go by it as at a tick.  Nothing may charge a page then, or the charge waits too (v1) or
 * is throttled for up to 2 s (v2): work that can wait (a walk, a /proc scan, a memfd made ahead)
 * asks just before it starts. */
int guard_stalled_now(void);
/* guard_stalled_now, for a daemon that is itself in the guarded cgroup (0 at once when it is
 * not, or when the guard was not set at the last reading): then every answer to a shim would
 * charge it (an accepted connection's socket, inode and file; a reply's skb, which af_unix
 * charges to the sender; an fd passed, a memfd made) and be throttled or, on v1, wait: requests
 * wait in their sockets until the stall ends (shimsrv.h).  On v2 only an overage the kernel would
 * throttle for counts (more than 1/128 of memory.high): a cgroup held at memory.high by its page
 * cache is answered. */
int guard_blocks_requests(void);
/* The cgroup's usage as the budget just read it (v2), before the tick evicts: in the daemon's own
 * mode, above the memory.high it wrote while it is in that cgroup, its own charges are throttled
 * as the function's are (`ephemera run --memory`), so that is its stall, seen and the log held as
 * in follow mode (the eviction's lines too).  Nothing in follow mode (guard_update reads it). */
void guard_usage(int64_t usage);
/* Arm the guard (want) or lift it, for a cgroup limit (-1: none) and the
 * budget's headroom. */
void guard_update(int64_t limit, uint64_t headroom, int want);
/* Follow mode (the knob is read-only here, a container's cgroup: its host
 * sets the guard): 1 or 0, whether the daemon wants the guard set now;
 * -1 when the daemon sets the guard itself (or there is none). */
int guard_wanted(void);
/* Follow mode: fn(want) runs on every change of that wish (the control
 * socket tells its subscribers); NULL to stop. */
void guard_on_want(void (*fn)(int want));
/* v1, armed by the daemon itself: lift the guard now, and for the rearm
 * delay, because the daemon needs memory that only the kernel's OOM
 * handling can give back (a file's punched bytes to restore, evict.c).
 * Nothing in follow mode (the host's watchdog bounds the stall) or on v2
 * (memory.high throttles, it does not fail the daemon's charges). */
void guard_give_way(void);

/* An eviction is waiting for memory (evict/evict_recover) and the daemon's
 * tick does not run meanwhile: in follow mode, the guard is read as the tick
 * would, so the lease's rule (guardlease.h) still ends a stall nobody outside
 * can end any more.  Nothing in the daemon's own mode (guard_give_way is its
 * way out). */
void guard_waiting(void);
/* Restore the cgroup knobs the guard changed. */
void guard_fini(void);

#endif
