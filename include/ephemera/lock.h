/*
 * ephemera/lock.h - a process-shared futex mutex and a futex wait on a word,
 * used on the shared region by both the daemon and the shim.  Header-only so
 * both binaries share one implementation.  Async-signal-safe and usable in a
 * vfork child (no allocation, raw syscalls).
 *
 * The word is 0 when free, else the holder's pid, with EPH_LOCK_WAITERS set
 * once someone sleeps on it.  A holder killed inside its critical section
 * (SIGKILL takes the whole process) leaves its pid behind: a waiter whose
 * timed wait keeps finding the same word asks the kernel whether that process
 * still exists and, once it is gone, takes the lock over with a
 * compare-and-swap.  eph_lock then returns 1 (EPH_LOCK_RECOVERED), after the
 * binary's eph_lock_recovered hook repaired what the lock protects.
 * See docs/ARCHITECTURE.md, "Locks that survive their holder".
 */
#ifndef EPHEMERA_LOCK_H
#define EPHEMERA_LOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#ifdef EPH_FAULTS
#include <stdlib.h>
#include <string.h>
#endif
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/shm.h"

#define EPH_LOCK_WAITERS 0x80000000u /* someone sleeps on the word: unlock wakes one */
#define EPH_LOCK_OWNER 0x7fffffffu   /* the holder's pid (pid_max is at most 2^22) */
#define EPH_LOCK_RECOVERED 1         /* eph_lock: taken over from a holder that died */

/*
 * This process's pid, as the lock words record it: set by eph_lock_self_init
 * at start and in every fork child (one load in the fast path; glibc no longer
 * caches getpid).  0 (never set, or a program that never calls it): each lock
 * asks the kernel.  One copy per binary (weak), hidden from other libraries.
 */
__attribute__((weak, visibility("hidden"))) uint32_t eph_lock_pid;

/*
 * The binary's repair of what lock l protects, called by the locker that just
 * took l over from dead_pid, with l held.  Weak: a binary that defines none
 * (the tests) repairs nothing.
 */
void eph_lock_recovered(eph_lock_t *l, uint32_t dead_pid) __attribute__((weak, visibility("hidden")));

/*
 * The binary's report of a long wait: l has been held by live process owner
 * for about seconds s (called every EPH_LOCK_REPORT_S while the wait lasts).
 * A live holder is never taken over by a shim (a stopped writer would resume
 * and break the exclusion), so its wait is bounded by the holder's life; this
 * says who to look at.  Weak: a binary that defines none reports nothing.
 */
void eph_lock_waiting(eph_lock_t *l, uint32_t owner, unsigned s) __attribute__((weak, visibility("hidden")));
#ifndef EPH_LOCK_REPORT_S /* a test may define it shorter */
#define EPH_LOCK_REPORT_S 10
#endif

static inline long eph_futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE: the word is in memory shared between processes. */
    return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, 0);
}

/* getpid(), not syscall(SYS_getpid): in the shim, syscall() is its own exported wrapper, whose code
 * page and lazy binding every process paid at start (docs/ARCHITECTURE.md, branch symtab). */
static inline void eph_lock_self_init(void)
{
    eph_lock_pid = (uint32_t)getpid();
}

static inline uint32_t eph_lock_self(void)
{
    uint32_t me = eph_lock_pid;
    return me ? me : (uint32_t)getpid();
}

/*
 * 1 if process pid has exited: it no longer exists, or is a zombie nobody has
 * reaped yet (a pidfd polls readable once the whole thread group is gone; kill
 * would still find the zombie, and the waiter may be the very parent that
 * would reap it).  Without pidfds (Linux < 5.3): kill's ESRCH.  Raw syscalls:
 * the shim interposes close and poll.
 */
static inline int eph_pid_gone(uint32_t pid)
{
    if (pid == 0)
        return 0;
    int e = errno;
    long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
    int gone;
    if (fd >= 0) {
        struct pollfd p = {(int)fd, POLLIN, 0};
        struct timespec zero = {0, 0};
        gone = syscall(SYS_ppoll, &p, 1, &zero, NULL, 0) == 1;
        syscall(SYS_close, (int)fd);
    } else if (errno == ESRCH) {
        gone = 1;
    } else {
        gone = syscall(SYS_kill, (pid_t)pid, 0) < 0 && errno == ESRCH;
    }
    errno = e;
    return gone;
}

/*
 * Take l over if it still holds seen (owner and waiters bit) and that owner
 * has exited.  1: l is ours now, and what it protects was repaired.
 */
static inline int eph_lock_take_dead(eph_lock_t *l, uint32_t seen, uint32_t me)
{
    uint32_t owner = seen & EPH_LOCK_OWNER;
    if (owner == 0 || owner == me || !eph_pid_gone(owner))
        return 0;
    /* Keep the waiters bit: others may sleep on the word, and our unlock must wake them. */
    if (!atomic_compare_exchange_strong_explicit(&l->word, &seen, me | EPH_LOCK_WAITERS, memory_order_acquire,
                                                 memory_order_relaxed))
        return 0;
    if (eph_lock_recovered)
        eph_lock_recovered(l, owner);
    return 1;
}

static __attribute__((noinline, cold, unused)) int eph_lock_wait(eph_lock_t *l, uint32_t me)
{
    uint32_t c;
    /* Spin briefly: critical sections are a few hundred ns (a memcpy bound). */
    for (int i = 0; i < 100; i++) {
        c = 0;
        if (atomic_compare_exchange_weak_explicit(&l->word, &c, me, memory_order_acquire, memory_order_relaxed))
            return 0;
        __builtin_ia32_pause();
    }
    for (unsigned slept = 0;;) {
        c = atomic_load_explicit(&l->word, memory_order_relaxed);
        if (c == 0) {
            /* We slept: others may still sleep, so our unlock wakes one (as the
             * classic 0/1/2 mutex that takes the "contended" state). */
            if (atomic_compare_exchange_strong_explicit(&l->word, &c, me | EPH_LOCK_WAITERS, memory_order_acquire,
                                                        memory_order_relaxed))
                return 0;
            continue;
        }
        if (!(c & EPH_LOCK_WAITERS) &&
            !atomic_compare_exchange_strong_explicit(&l->word, &c, c | EPH_LOCK_WAITERS, memory_order_relaxed,
                                                     memory_order_relaxed))
            continue;
        c |= EPH_LOCK_WAITERS;
        /* Bounded: a holder that stays 50 ms may have died in its section. */
        struct timespec ts = {0, 50 * 1000 * 1000};
        if (eph_futex(&l->word, FUTEX_WAIT, c, &ts) == 0 || errno != ETIMEDOUT)
            continue;
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == c && eph_lock_take_dead(l, c, me))
            return EPH_LOCK_RECOVERED;
        if (++slept % (EPH_LOCK_REPORT_S * 20) == 0 && eph_lock_waiting)
            eph_lock_waiting(l, c & EPH_LOCK_OWNER, slept / 20);
    }
}

/* Returns 0, or EPH_LOCK_RECOVERED when the holder had died (already repaired). */
static inline int eph_lock(eph_lock_t *l)
{
    uint32_t me = eph_lock_self(), c = 0;
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(&l->word, &c, me, memory_order_acquire,
                                                                 memory_order_relaxed), 1))
        return 0;
    return eph_lock_wait(l, me);
}

static inline int eph_trylock(eph_lock_t *l)
{
    uint32_t c = 0;
    return atomic_compare_exchange_strong_explicit(&l->word, &c, eph_lock_self(), memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void eph_unlock(eph_lock_t *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) & EPH_LOCK_WAITERS)
        eph_futex(&l->word, FUTEX_WAKE, 1, NULL);
}

/*
 * The repair of an inode lock taken over from a dead holder, given an fd of
 * the inode's memfd (memfd < 0: none at hand).  What a holder changes under
 * the lock (fp_io.c, fp_size.c, the daemon's evict.c) is published in an order
 * that leaves only two things behind when it dies part way: the memfd's kernel
 * size may differ from capacity (it died between an ftruncate and the store of
 * the new capacity, or between fp_grow_by_write's store and its pwrite), and a
 * punched hole may not be flagged yet.  capacity is what the budget was
 * charged for, and size <= capacity holds throughout, so the memfd is made as
 * long as capacity again (no byte below size moves) and holes set (reads then
 * check the range through the kernel; it clears again by itself).  The fd must
 * be the inode's own memfd (same st_ino), else nothing is truncated.
 * Returns 1 if the memfd's size had to be changed.
 */
static inline int eph_inode_lock_repair(struct eph_inode *in, int memfd)
{
    atomic_store_explicit(&in->holes, 1, memory_order_relaxed);
    uint32_t st = atomic_load(&in->state);
    struct stat sb;
    /* The memfd's own number is the low 32 bits of ino; bits 32-43 count its earlier files
     * (eph_file_ino), which a memfd reused by the daemon or kept by a shim has. */
    if (memfd < 0 || (st != EPH_MEM && st != EPH_MOVING) || syscall(SYS_fstat, memfd, &sb) != 0 ||
        (uint32_t)sb.st_ino != (uint32_t)in->ino)
        return 0;
    uint64_t cap = atomic_load(&in->capacity);
    if ((uint64_t)sb.st_size == cap)
        return 0;
    return syscall(SYS_ftruncate, memfd, (off_t)cap) == 0;
}

/* A test hook of the fault builds: EPHEMERA_LOCK_STALL=<point>[,<point>...] stops the
 * process (SIGSTOP) at each of those points, inside a critical section, locks held, for a
 * test to kill it there (test/c/lockkill_test.c) or to change the world meanwhile and let
 * it go on (test/c/evictattr_test.c).  Nothing in production builds. */
static inline void eph_lock_stall(const char *point)
{
#ifdef EPH_FAULTS
    const char *s = getenv("EPHEMERA_LOCK_STALL");
    size_t n = strlen(point);
    for (; s && *s; s += strcspn(s, ","), s += *s == ',')
        if (strncmp(s, point, n) == 0 && (s[n] == ',' || s[n] == 0)) {
            raise(SIGSTOP);
            return;
        }
#else
    (void)point;
#endif
}

/* Wait until *w != old, or the timeout (ns) passes.  Spurious wake-ups are fine. */
static inline void eph_wait_change(_Atomic uint32_t *w, uint32_t old, long timeout_ns)
{
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    if (atomic_load_explicit(w, memory_order_acquire) == old)
        eph_futex(w, FUTEX_WAIT, old, &ts);
}

static inline void eph_wake_all(_Atomic uint32_t *w)
{
    eph_futex(w, FUTEX_WAKE, 0x7fffffff, NULL);
}

#endif
