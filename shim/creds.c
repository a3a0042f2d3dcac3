/*
 * shim/creds.c - the effective ids, cached until a set*id call (creds.h).
 *
 * glibc's set*id functions change the ids of every thread of the process
 * (through its SIGSETXID broadcast) and are the only way a dynamically linked
 * program changes them, short of a raw syscall (which the syscall() wrapper
 * also reports here).  The cache is one word: euid << 32 | egid, or
 * CREDS_UNKNOWN; a wrapper stores CREDS_UNKNOWN after its real call, so a
 * check that reads the word after the change returns sees the new ids.
 */
#include <errno.h>
#include <grp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "compiler.h"
#include "creds.h"
#include "vforkchild.h"
#include "sys.h"

#define CREDS_UNKNOWN UINT64_MAX

static _Atomic uint64_t creds_word = CREDS_UNKNOWN;

static uint64_t creds_now(void)
{
    uint64_t w = atomic_load_explicit(&creds_word, memory_order_acquire);
    if (unlikely(w == CREDS_UNKNOWN)) {
        w = (uint64_t)geteuid() << 32 | (uint32_t)getegid();
        /* Only over "unknown": a set*id that raced us stays unknown. */
        uint64_t expect = CREDS_UNKNOWN;
        atomic_compare_exchange_strong(&creds_word, &expect, w);
    }
    return w;
}

uid_t creds_euid(void) { return (uid_t)(creds_now() >> 32); }
gid_t creds_egid(void) { return (gid_t)(uint32_t)creds_now(); }

void creds_changed(void)
{
    if (sh_vfork_child())
        return; /* a vfork child's ids are its own; the cache is its parent's (vforkchild.h) */
    atomic_store_explicit(&creds_word, CREDS_UNKNOWN, memory_order_release);
}

/* Each wrapper: the real call, then forget, whatever it returned (a partial
 * change is still a change). */
#define CREDS_WRAP(name, params, args)      \
    SH_EXPORT int name params               \
    {                                       \
        int rc_ = REAL(name) args;          \
        int err_ = errno;                   \
        creds_changed();                    \
        errno = err_;                       \
        return rc_;                         \
    }

CREDS_WRAP(setuid, (uid_t u), (u))
CREDS_WRAP(setgid, (gid_t g), (g))
CREDS_WRAP(seteuid, (uid_t u), (u))
CREDS_WRAP(setegid, (gid_t g), (g))
CREDS_WRAP(setreuid, (uid_t r, uid_t e), (r, e))
CREDS_WRAP(setregid, (gid_t r, gid_t e), (r, e))
CREDS_WRAP(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
CREDS_WRAP(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
CREDS_WRAP(unshare, (int flags), (flags))
