/*
 * reserve.c - a resident working set for the daemon (reserve.h).
 */
#include "reserve.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#if defined(__SANITIZE_ADDRESS__)
#define RESERVE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RESERVE_SANITIZED 1
#endif
#endif

/* Stack touched at start-up: the deepest path (an eviction from a request
 * handler, a few path buffers per frame) uses well under this. */
#define RESERVE_STACK (128u << 10)

void reserve_heap_policy(void)
{
    /* Blocks up to 64 MiB come from the heap, not from fresh mmaps (which
     * would start untouched and unlocked), and freed memory stays. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, INT32_MAX);
    mallopt(M_TOP_PAD, 0);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void reserve_populate(void *p, size_t len)
{
    if (len == 0 || madvise(p, len, MADV_POPULATE_WRITE) == 0)
        return;
    memset(p, 0, len);
}

void *reserve_table(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void reserve_table_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes ? bytes : 1);
}

static void __attribute__((noinline)) reserve_touch_stack(void)
{
    volatile char stack[RESERVE_STACK];
    for (size_t i = 0; i < sizeof stack; i += 4096)
        stack[i] = 0;
    stack[sizeof stack - 1] = 0;
}

#ifndef RESERVE_SANITIZED
/* mlock every readable mapping but [skip, skip + skip_len).  0, or -errno of
 * the first refusal that matters. */
static int reserve_mlock_maps(const void *skip, size_t skip_len)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -errno;
    uintptr_t s0 = (uintptr_t)skip, s1 = s0 + skip_len;
    char line[512];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
            continue;
        if (lo < s1 && hi > s0)
            continue; /* the shared region: resident only as far as it is used */
        if (strstr(line, "[vvar") || strstr(line, "[vsyscall]"))
            continue; /* kernel pages: nothing to fault */
        if (mlock((void *)lo, hi - lo) < 0 && rc == 0)
            rc = -errno;
    }
    fclose(f);
    return rc;
}
#endif

const char *reserve_lock(size_t heap_bytes, const void *skip, size_t skip_len)
{
    /* Grow the heap by the reserve and hand it back to malloc: later
     * allocations are served from these pages. */
    char *p = malloc(heap_bytes);
    if (p) {
        memset(p, 0, heap_bytes);
        __asm__ volatile("" : : "r"(p) : "memory");
        free(p);
    }
    reserve_touch_stack();
#ifdef RESERVE_SANITIZED
    (void)skip;
    (void)skip_len;
    return "faulted in (ASan build: not locked; the outside watchdog is the guarantee)";
#else
    static char why[160];
    /* Root without CAP_IPC_LOCK (a container's default) is bound by
     * RLIMIT_MEMLOCK: raise it as far as we may. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_MEMLOCK, &rl);
    }
    int e = reserve_mlock_maps(skip, skip_len);
    if (e == 0)
        return "locked";
    snprintf(why, sizeof why,
             "faulted in, partly locked (mlock: %s; give the container CAP_IPC_LOCK or a larger "
             "memlock ulimit)",
             strerror(-e));
    return why;
#endif
}
