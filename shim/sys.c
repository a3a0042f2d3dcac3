/*
 * shim/sys.c - the table of real libc calls (sys.h), resolved once, and in
 * test builds (-DEPH_FAULTS) the faults that EPHEMERA_FAULTS puts in front of
 * its entries.
 *
 * The constructor (init.c) resolves every symbol eagerly, in one walk over
 * the symbol tables of the objects after ours (symres.c), with dlsym only for
 * what that walk leaves.  Wrappers called
 * before it (by an earlier library's constructor) resolve on demand, because
 * sys_resolve is idempotent and never calls back into the shim.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys.h"
#include "symres.h"
#include "libcsyms.h" /* written at build time by shim/gen/libcsyms.c (Makefile) */

SH_STARTDATA struct sys_table sys;
SH_STARTDATA static _Atomic int sys_resolved;

/* The names to look up are an automatic array of sys_resolve, built by its code from the string
 * literals' %rip-relative addresses: as a static array it was 4.3 KiB of pointers in .data.rel.ro,
 * 140 relocations that the loader wrote in every process, a page of copy-on-write more each time
 * ("The shim's pages in every process (branch shimload)" in docs/ARCHITECTURE.md). */
#define SYS_SYM(name, ret, params, args, need, fault) EPH_SYS_SYM_ENTRY(struct sys_table, name, need)

/* Without the real call we cannot even pass through: say so and stop. */
static __attribute__((noreturn)) void sys_missing(const char *name)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg, "libephemera: cannot resolve the libc symbol %s; aborting\n", name);
    ssize_t r = syscall(SYS_write, 2, msg, (size_t)n);
    (void)r;
    abort();
}

/* The baked table is of this list: same length, same names (a stale build/gen/libcsyms.h does not compile). */
#define SYS_NAME(name, ret, params, args, need, fault) " " #name
_Static_assert(sizeof(LIBCSYMS_NAMES) == sizeof("" SHIM_SYSCALLS(SYS_NAME)), "build/gen/libcsyms.h is of another list");
#define SYS_ONE(name, ret, params, args, need, fault) +1
enum { NSYMS = 0 SHIM_SYSCALLS(SYS_ONE) };
_Static_assert(NSYMS == LIBCSYMS_N, "build/gen/libcsyms.h is of another list");
/* The table is an array of pointers in the list's order: the walk fills it in place. */
_Static_assert(sizeof(struct sys_table) == NSYMS * sizeof(void *), "struct sys_table is not an array of pointers");

/* What the walk left (versioned names an object before libc may define, names libc lacks, another
 * libc whose walk failed): dlsym and dlvsym, with the list of names built here, off the common path. */
static __attribute__((noinline)) void sys_resolve_rest(void **slots)
{
    const struct eph_sys_sym sys_syms[] = {SHIM_SYSCALLS(SYS_SYM)};
    _Static_assert(sizeof sys_syms / sizeof sys_syms[0] == NSYMS, "the list's length");
    const char *missing = eph_systable_resolve_from(&sys, sys_syms, NSYMS, RTLD_NEXT, slots);
    if (missing)
        sys_missing(missing);
}

SH_START void sys_resolve(void)
{
    if (atomic_load_explicit(&sys_resolved, memory_order_acquire))
        return;
    /* One walk, with libc's answers from the build's table when it is this libc (else libc's own
     * tables), the names from that table too: no list to build in the common case. */
    void **slots = (void **)(void *)&sys;
    const struct symres_bake bake = libcsyms_bake();
    if (symres_next_baked((const void *)sys_resolve, NULL, NSYMS, slots, &bake, NULL) < NSYMS)
        sys_resolve_rest(slots);
    atomic_store_explicit(&sys_resolved, 1, memory_order_release);
}

#ifdef EPH_FAULTS
/*
 * Test build only.  The rules are read once, by the constructor (init.c:
 * not at the first resolution, which a sanitizer's start-up can trigger
 * before the environment is readable); each faultable entry named by a rule is pointed at its wrapper, which calls
 * the original through sys_orig.  Nothing of this is in the production
 * library (test/shim-exports.txt), and an entry no rule names is untouched.
 */
static struct sys_table sys_orig;
static struct eph_faults sys_faults;

/* on=mem: a memfd of the daemon's that holds a file. */
static int sys_fd_is_mem(int fd)
{
    return eph_fault_fd_is_mem(fd, sys_orig.readlink);
}

#define EPH_FAULT_TABLE sys_faults
#define EPH_FAULT_ORIG sys_orig
SHIM_SYSCALLS(EPH_FAULT_WRAPPER)

static const char *const sys_faultable[] = {SHIM_SYSCALLS(EPH_FAULT_NAME) NULL};

/* A test asked for something this build cannot do: say what and stop, rather than run without it. */
static __attribute__((noreturn)) void sys_faults_bad(const char *what, const char *rule)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "libephemera: EPHEMERA_FAULTS: %s at \"%.80s\"; expected "
                     "CALL:ENOSPC|EIO|EINTR|EDQUOT|EFBIG|ENOMEM|short[:on=mem|disk|any][:after=N][:times=N] with CALL "
                     "one of the table's faultable entries (shim/sys.h: fault class ERR, XFER or XFERV)\n",
                     what, rule);
    ssize_t r = syscall(SYS_write, 2, msg, (size_t)n);
    (void)r;
    abort();
}

void sys_faults_install(void)
{
    const char *spec = getenv("EPHEMERA_FAULTS"), *bad = NULL;
    if (!spec || !*spec)
        return;
    if (eph_faults_parse(spec, &sys_faults, &bad) < 0)
        sys_faults_bad("cannot read the rule", bad);
    const struct eph_fault *u = eph_faults_unknown(&sys_faults, sys_faultable);
    if (u)
        sys_faults_bad("no faultable call of that name", u->call);
    sys_faults.fd_is_mem = sys_fd_is_mem;
    sys_orig = sys;
    EPH_FAULT_INSTALL(SHIM_SYSCALLS, struct sys_table, sys, sys_faults);
}
#endif
