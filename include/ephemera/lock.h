/*
 * ephemera/lock.h - a process-shared futex mutex and a futex wait on a word,
 * used on the shared region by both the daemon and the shim.  Header-only so
 * both binaries share one implementation.  Async-signal-safe and usable in a
 * vfork child (no allocation, raw syscalls).
 */
#ifndef EPHEMERA_LOCK_H
#define EPHEMERA_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ephemera/shm.h"

static inline long eph_futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE: the word is in memory shared between processes. */
    return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, 0);
}

static inline void eph_lock(eph_lock_t *l)
{
    uint32_t c = 0;
    if (atomic_compare_exchange_strong_explicit(&l->word, &c, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    /* Spin briefly: critical sections are a few hundred ns (a memcpy bound). */
    for (int i = 0; i < 100; i++) {
        c = 0;
        if (atomic_compare_exchange_weak_explicit(&l->word, &c, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        __builtin_ia32_pause();
    }
    if (c != 2)
        c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
    while (c != 0) {
        /* Bounded wait so a holder that died cannot hang us forever silently:
         * we keep waiting, but re-check periodically. */
        struct timespec ts = {0, 50 * 1000 * 1000};
        eph_futex(&l->word, FUTEX_WAIT, 2, &ts);
        c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
    }
}

static inline int eph_trylock(eph_lock_t *l)
{
    uint32_t c = 0;
    return atomic_compare_exchange_strong_explicit(&l->word, &c, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void eph_unlock(eph_lock_t *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
        eph_futex(&l->word, FUTEX_WAKE, 1, NULL);
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
