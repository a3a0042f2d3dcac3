/*
 * shim/init.h - the shim's global state (init.c): attachment to ephemerad's
 * shared region, diagnostics, clocks, and the operation counters.
 */
#ifndef SHIM_INIT_H
#define SHIM_INIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "compiler.h"
#include "ephemera/proto.h"
#include "ephemera/shm.h"

/* Re-entrancy guard: set while the shim itself runs libc code that may call back in. */
extern SH_TLS int sh_busy;

struct sh_global {
    _Atomic int attached;              /* 1 once the shared region is mapped */
    int disabled;                      /* no EPHEMERA_SOCK or attach failed: pass everything */
    struct eph_shm_header *hdr;        /* the shared region */
    struct eph_inode *inodes;
    struct eph_desc *descs;
    _Atomic uint32_t *buckets;
    char sock_path[108];
    char lib_path[EPH_PATH_MAX];       /* EPHEMERA_LIB, to restore LD_PRELOAD across exec */
    int log_fd;                        /* EPHEMERA_LOG or -1 */
    char roots_env[EPH_PATH_MAX];      /* EPHEMERA_ROOTS as we got it, restored across exec */
    char log_env[EPH_PATH_MAX];        /* EPHEMERA_LOG as we got it */
    int region_pid, region_fd;         /* the daemon's pid and its fd of the region (EPHEMERA_REGION), or 0, -1 */
    uint64_t region_ino;               /* and the region's inode number */
};
extern SH_HIDDEN struct sh_global sh;

int sh_attach(void);                   /* 0, or -errno; idempotent and thread-safe */
/* The same, but a failed HELLO does not turn the shim off for good (-EAGAIN): for an attach the
 * process does not need yet (paths.c, path_alias_on). */
int sh_attach_try(void);
uint64_t sh_sock_hash(void);           /* of EPHEMERA_SOCK, the fourth field of EPHEMERA_REGION */
/* The daemon that serves the region now (attached only): a daemon that took the region over
 * from one that died has a new pid, and the same fd numbers (docs/ARCHITECTURE.md, the keeper). */
static inline int sh_daemon_pid(void)
{
    return atomic_load_explicit(&sh.hdr->daemon_pid, memory_order_relaxed);
}
void sh_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint32_t sh_umask(void);
int64_t sh_now_ns(void);               /* CLOCK_REALTIME, for file times */
int64_t sh_coarse_ns(void);            /* CLOCK_REALTIME_COARSE: cheap, for comparisons at day scale */
uint64_t sh_lru_ns(void);              /* CLOCK_MONOTONIC_COARSE, for inode last_use (the daemon's clock) */

/* Thread-local operation counters, added to hdr->c in batches. */
struct sh_tcount {
    uint64_t reads, writes, seeks, stats, bytes_read, bytes_written, slow;
    uint32_t pending;
    uint32_t registered;                /* thread-exit flush registered */
};
extern SH_TLS struct sh_tcount sh_tc;
void sh_flush_counters(void);
void sh_register_thread_flush(void);
static inline void sh_count_tick(void)
{
    if (unlikely(++sh_tc.pending >= 1024))
        sh_flush_counters();
    else if (unlikely(!sh_tc.registered))
        sh_register_thread_flush();
}

#endif
