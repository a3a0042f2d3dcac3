/*
 * ephemera/systable.h - a table of the real system calls a component makes,
 * generated from one X-macro list, and the fault injection that tests put in
 * front of chosen entries.  The idea is SQLite's os_unix.c aSyscall[]: every
 * call into the kernel goes through one table, so a test can replace an entry.
 * Header-only, so the shim and the daemon share one implementation.
 *
 * A component writes its list once:
 *
 *   #define MY_SYSCALLS(X) \
 *       X(write, ssize_t, (int fd, const void *b, size_t n), (fd, b, n), EPH_SYS_REQ, XFER) \
 *       X(fsync, int, (int fd), (fd), EPH_SYS_REQ, ERR) \
 *       X(statx, int, (int d, const char *p, int f, unsigned m, struct statx *s), (), EPH_SYS_OPT, NONE)
 *
 * Columns: the symbol; its return type; its parameters (named where the entry
 * can be faulted: the fd is called `fd` and the byte count `n`, or the vector
 * `iov` and `cnt`); the argument list that forwards them (`()` when not
 * faulted); EPH_SYS_REQ, EPH_SYS_OPT (may be absent from this libc) or
 * EPH_SYS_V("GLIBC_x.y") (a versioned compat symbol); and the fault class:
 *   NONE   never faulted (variadic calls, calls without an fd);
 *   ERR    can fail with an error (fd-based, returns -1);
 *   XFER   can also transfer fewer bytes than asked (`n`);
 *   XFERV  the same for a vector (`iov`, `cnt`).
 * Then:
 *
 *   struct my_table { MY_SYSCALLS(EPH_SYS_MEMBER) };
 *   #define MY_SYM(name, ret, params, args, need, fault) EPH_SYS_SYM_ENTRY(struct my_table, name, need)
 *   static const struct eph_sys_sym my_syms[] = { MY_SYSCALLS(MY_SYM) };
 *
 * and fills it with eph_systable_resolve(&table, my_syms, n, RTLD_NEXT) (the
 * shim, which interposes libc).  A component that interposes nothing (the
 * daemon, daemon/sys.h) can instead initialise the table with libc's own
 * functions, a `static const` in production so the calls compile direct.
 *
 * Fault injection is for test builds only: a component compiles the wrappers
 * (EPH_FAULT_WRAPPERS) and the install step when EPH_FAULTS is defined, and
 * its production build has none of it, so the hot path is exactly one
 * indirect call either way and nothing is exported.  In a test build the
 * rules come from one environment variable, read once at start:
 *
 *   EPHEMERA_FAULTS="rule[,rule...]"
 *   rule = CALL:EFFECT[:on=mem|disk|any][:after=N][:times=N]
 *   EFFECT = ENOSPC | EIO | EINTR | EDQUOT | EFBIG | ENOMEM | short
 *
 * after=N lets N matching calls through first (default 0); times=N faults N
 * calls then stops (default: every later call).  on= chooses by what the fd
 * is: mem (the component says which fds hold in-memory files: for the shim,
 * the daemon's file memfds), disk (anything else), any.
 * short transfers half of what was asked (at least 1 byte when 2 or more were
 * asked; a 1-byte request fails with EIO instead: a short transfer of one
 * byte is none).  Counting is per process.
 */
#ifndef EPHEMERA_SYSTABLE_H
#define EPHEMERA_SYSTABLE_H

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

struct eph_sys_sym {
    const char *name;
    size_t off;                         /* of the entry in the component's table */
    int optional;                       /* absent from this libc: the entry stays NULL */
    const char *version;                /* dlvsym version, or NULL for dlsym */
};

#define EPH_SYS_REQ .optional = 0
#define EPH_SYS_OPT .optional = 1
#define EPH_SYS_V(v) .optional = 1, .version = v

#define EPH_SYS_MEMBER(name, ret, params, args, need, fault) ret(*name) params;
/* The X-macro's arity is fixed, so the component names its table type in a one-line macro:
 *   #define MY_SYM(name, ret, params, args, need, fault) EPH_SYS_SYM_ENTRY(struct my_table, name, need) */
#define EPH_SYS_SYM_ENTRY(T, fn, ...) {.name = #fn, .off = offsetof(T, fn), __VA_ARGS__},

/*
 * Resolve every entry through handle (RTLD_NEXT or RTLD_DEFAULT).  Returns
 * NULL, or the name of a required symbol that is missing.  Never calls back
 * into an interposing library (dlsym does not).  With found (n entries), an
 * entry already found elsewhere (the shim's one walk, shim/symres.h) is taken
 * as it is and only the NULL ones are asked of dlsym.
 */
static inline const char *eph_systable_resolve_from(void *table, const struct eph_sys_sym *syms, size_t n,
                                                    void *handle, void *const *found)
{
    for (size_t i = 0; i < n; i++) {
        void *p = found && found[i] ? found[i]
                  : syms[i].version ? dlvsym(handle, syms[i].name, syms[i].version)
                                    : dlsym(handle, syms[i].name);
        if (!p && !syms[i].optional)
            return syms[i].name;
        memcpy((char *)table + syms[i].off, &p, sizeof p);
    }
    return NULL;
}

static inline const char *eph_systable_resolve(void *table, const struct eph_sys_sym *syms, size_t n, void *handle)
{
    return eph_systable_resolve_from(table, syms, n, handle, NULL);
}

/* ---- fault injection (test builds) ------------------------------------- */

enum { EPH_FAULT_ON_ANY, EPH_FAULT_ON_MEM, EPH_FAULT_ON_DISK };
#define EPH_FAULT_SHORT (-1)            /* eph_fault.err: transfer half instead of failing */
#define EPH_FAULT_MAX 16

struct eph_fault {
    char call[32];
    int err;                            /* errno to fail with, or EPH_FAULT_SHORT */
    int on;                             /* EPH_FAULT_ON_* */
    unsigned after, times;              /* times 0: no limit */
    _Atomic unsigned seen;              /* matching calls so far */
};

struct eph_faults {
    struct eph_fault rule[EPH_FAULT_MAX];
    int n;
    int (*fd_is_mem)(int fd);           /* the component's test of on=mem (a memfd) */
};

/* The test of on=mem for eph_faults.fd_is_mem: fd is a memfd of the daemon's that holds a file
 * ("ephemera"; not the region, "ephemera-region", nor the shim's fd-table ledger), by its link in
 * /proc/self/fd read with the component's own readlink (the shim's: its unfaulted entry). */
static inline int eph_fault_fd_is_mem(int fd, ssize_t (*readlink_fn)(const char *, char *, size_t))
{
    static const char want[] = "/memfd:ephemera (deleted)";
    char p[64], t[sizeof want];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink_fn(p, t, sizeof t);
    return n == (ssize_t)sizeof want - 1 && memcmp(t, want, sizeof want - 1) == 0;
}

static inline int eph_fault_errno(const char *s, size_t len)
{
    static const struct { const char *name; int err; } names[] = {
        {"ENOSPC", ENOSPC}, {"EIO", EIO}, {"EINTR", EINTR}, {"EDQUOT", EDQUOT}, {"EFBIG", EFBIG},
        {"ENOMEM", ENOMEM},
        {"short", EPH_FAULT_SHORT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0)
            return names[i].err;
    return 0;
}

static inline int eph_fault_number(const char *s, size_t len, unsigned *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = (unsigned)v;
    return 0;
}

/* One "key=value" or bare field of a rule; field 0 is the call, 1 the effect. */
static inline int eph_fault_field(struct eph_fault *f, int idx, const char *s, size_t len)
{
    if (idx == 0) {
        if (len == 0 || len >= sizeof f->call)
            return -1;
        memcpy(f->call, s, len);
        f->call[len] = '\0';
        return 0;
    }
    if (idx == 1)
        return (f->err = eph_fault_errno(s, len)) == 0 ? -1 : 0;
    if (len > 3 && memcmp(s, "on=", 3) == 0) {
        s += 3, len -= 3;
        if (len == 3 && memcmp(s, "mem", 3) == 0)
            f->on = EPH_FAULT_ON_MEM;
        else if (len == 4 && memcmp(s, "disk", 4) == 0)
            f->on = EPH_FAULT_ON_DISK;
        else if (len == 3 && memcmp(s, "any", 3) == 0)
            f->on = EPH_FAULT_ON_ANY;
        else
            return -1;
        return 0;
    }
    if (len > 6 && memcmp(s, "after=", 6) == 0)
        return eph_fault_number(s + 6, len - 6, &f->after);
    if (len > 6 && memcmp(s, "times=", 6) == 0)
        return eph_fault_number(s + 6, len - 6, &f->times);
    return -1;
}

/*
 * Parse an EPHEMERA_FAULTS value into fs (pure: no allocation, no I/O).
 * Returns the number of rules, or -1 with *bad pointing at the rule that
 * could not be read.
 */
static inline int eph_faults_parse(const char *spec, struct eph_faults *fs, const char **bad)
{
    fs->n = 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t rlen = end ? (size_t)(end - p) : strlen(p);
        if (fs->n == EPH_FAULT_MAX) {
            *bad = p;
            return -1;
        }
        struct eph_fault *f = &fs->rule[fs->n];
        memset(f, 0, sizeof *f);
        int idx = 0;
        for (size_t i = 0; i <= rlen; idx++) {
            size_t j = i;
            while (j < rlen && p[j] != ':')
                j++;
            if (eph_fault_field(f, idx, p + i, j - i) < 0) {
                *bad = p;
                return -1;
            }
            i = j + 1;
        }
        if (idx < 2) {
            *bad = p;
            return -1;
        }
        fs->n++;
        p += rlen;
        if (*p == ',')
            p++;
    }
    return fs->n;
}

/* The rule that faults this call of `call` on fd (-1: no fd), or NULL: it goes through. */
static inline struct eph_fault *eph_fault_check(struct eph_faults *fs, const char *call, int fd)
{
    for (int i = 0; i < fs->n; i++) {
        struct eph_fault *f = &fs->rule[i];
        if (strcmp(f->call, call) != 0)
            continue;
        if (f->on != EPH_FAULT_ON_ANY) {
            int mem = fd >= 0 && fs->fd_is_mem && fs->fd_is_mem(fd);
            if (mem != (f->on == EPH_FAULT_ON_MEM))
                continue;
        }
        unsigned k = atomic_fetch_add(&f->seen, 1);
        if (k < f->after || (f->times && k - f->after >= f->times))
            continue;
        return f;
    }
    return NULL;
}

/*
 * Wrappers, one per faultable entry, generated from the same list.  Before
 * expanding MY_SYSCALLS(EPH_FAULT_WRAPPER), the component defines
 * EPH_FAULT_TABLE (its struct eph_faults) and EPH_FAULT_ORIG (a copy of its
 * table taken before the swap: the wrappers call through it).
 */
#define EPH_FAULT_WRAPPER(name, ret, params, args, need, fault) EPH_FAULT_GEN_##fault(name, ret, params, args)
#define EPH_FAULT_GEN_NONE(name, ret, params, args)
#define EPH_FAULT_GEN_ERR(name, ret, params, args)                                     \
    static ret eph_fault_##name params                                                \
    {                                                                                 \
        struct eph_fault *f_ = eph_fault_check(&EPH_FAULT_TABLE, #name, fd);          \
        if (f_) {                                                                     \
            errno = f_->err == EPH_FAULT_SHORT ? EIO : f_->err;                       \
            return -1;                                                                \
        }                                                                             \
        return EPH_FAULT_ORIG.name args;                                              \
    }
#define EPH_FAULT_GEN_XFER(name, ret, params, args)                                    \
    static ret eph_fault_##name params                                                \
    {                                                                                 \
        struct eph_fault *f_ = eph_fault_check(&EPH_FAULT_TABLE, #name, fd);          \
        if (f_ && (f_->err != EPH_FAULT_SHORT || n < 2)) {                            \
            errno = f_->err == EPH_FAULT_SHORT ? EIO : f_->err;                       \
            return -1;                                                                \
        }                                                                             \
        if (f_)                                                                       \
            n /= 2;                                                                   \
        return EPH_FAULT_ORIG.name args;                                              \
    }
#define EPH_FAULT_GEN_XFERV(name, ret, params, args)                                   \
    static ret eph_fault_##name params                                                \
    {                                                                                 \
        struct eph_fault *f_ = eph_fault_check(&EPH_FAULT_TABLE, #name, fd);          \
        struct iovec half_[1];                                                        \
        if (f_) {                                                                     \
            size_t t_ = 0;                                                            \
            for (int i_ = 0; i_ < cnt; i_++)                                          \
                t_ += iov[i_].iov_len;                                                \
            if (f_->err != EPH_FAULT_SHORT || t_ < 2) {                               \
                errno = f_->err == EPH_FAULT_SHORT ? EIO : f_->err;                   \
                return -1;                                                            \
            }                                                                         \
            /* half of the total, from the first buffers: one iovec suffices */       \
            int i_ = 0;                                                               \
            while (iov[i_].iov_len == 0)                                              \
                i_++;                                                                 \
            half_[0].iov_base = iov[i_].iov_base;                                     \
            half_[0].iov_len = iov[i_].iov_len < t_ / 2 ? iov[i_].iov_len : t_ / 2;   \
            iov = half_;                                                              \
            cnt = 1;                                                                  \
        }                                                                             \
        return EPH_FAULT_ORIG.name args;                                              \
    }

/* The names of the faultable entries, for checking rules: MY_SYSCALLS(EPH_FAULT_NAME) NULL. */
#define EPH_FAULT_NAME(name, ret, params, args, need, fault) EPH_FAULT_NAME_##fault(name)
#define EPH_FAULT_NAME_NONE(name)
#define EPH_FAULT_NAME_ERR(name) #name,
#define EPH_FAULT_NAME_XFER(name) #name,
#define EPH_FAULT_NAME_XFERV(name) #name,

/* The first rule whose call is not among names (NULL-terminated), or NULL. */
static inline const struct eph_fault *eph_faults_unknown(const struct eph_faults *fs, const char *const *names)
{
    for (int i = 0; i < fs->n; i++) {
        const char *const *k = names;
        while (*k && strcmp(*k, fs->rule[i].call) != 0)
            k++;
        if (!*k)
            return &fs->rule[i];
    }
    return NULL;
}

/* Point every faultable entry at its wrapper (after the original was copied):
 * define EPH_FAULT_INSTALL_TARGET as the live table, expand MY_SYSCALLS(EPH_FAULT_SWAP). */
#define EPH_FAULT_SWAP(name, ret, params, args, need, fault) EPH_FAULT_SWAP_##fault(name)
#define EPH_FAULT_SWAP_NONE(name)
#define EPH_FAULT_SWAP_ERR(name) EPH_FAULT_INSTALL_TARGET.name = eph_fault_##name;
#define EPH_FAULT_SWAP_XFER(name) EPH_FAULT_INSTALL_TARGET.name = eph_fault_##name;
#define EPH_FAULT_SWAP_XFERV(name) EPH_FAULT_INSTALL_TARGET.name = eph_fault_##name;

/* Point the entries of `live` that some rule of `rules` names at their wrappers; the others stay
 * the real call.  LIST is the component's X-macro list, TYPE its table's struct: the one install
 * step of the shim's and the daemon's fault builds. */
#define EPH_FAULT_INSTALL(LIST, TYPE, live, rules)                                     \
    do {                                                                               \
        TYPE *eph_live_ = &(live);                                                     \
        TYPE eph_wrapped_ = (live);                                                    \
        const struct eph_faults *eph_rules_ = &(rules);                                \
        LIST(EPH_FAULT_WRAP_ONE)                                                       \
        LIST(EPH_FAULT_PICK_ONE)                                                       \
    } while (0)
#define EPH_FAULT_WRAP_ONE(name, ret, params, args, need, fault) EPH_FAULT_WRAP_##fault(name)
#define EPH_FAULT_WRAP_NONE(name)
#define EPH_FAULT_WRAP_ERR(name) eph_wrapped_.name = eph_fault_##name;
#define EPH_FAULT_WRAP_XFER(name) eph_wrapped_.name = eph_fault_##name;
#define EPH_FAULT_WRAP_XFERV(name) eph_wrapped_.name = eph_fault_##name;
#define EPH_FAULT_PICK_ONE(name, ret, params, args, need, fault)                       \
    for (int eph_i_ = 0; eph_i_ < eph_rules_->n; eph_i_++)                             \
        if (strcmp(eph_rules_->rule[eph_i_].call, #name) == 0)                         \
            eph_live_->name = eph_wrapped_.name;

#endif
