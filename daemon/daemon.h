/*
 * daemon.h - state shared by the modules of ephemerad, the clocks and the
 * root lookup (daemon.c).  The bottom layer: it calls no other module.
 *
 * ephemerad is single-threaded: one epoll loop serves the shim socket, the
 * control socket, the budget timer and signals.  That makes the daemon the
 * single writer of the namespace without any lock of its own, and keeps its
 * footprint small (it runs in every function container; docs/ARCHITECTURE.md
 * "Daemon" has the measured RSS).  The
 * only concurrency is with the shim processes, through the shared region and
 * the per-inode locks of shm.h.
 */
#ifndef EPHD_DAEMON_H
#define EPHD_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ephemera/shm.h"

#define EPHD_MAX_ROOTS 16
#define EPHD_ERRLEN 256

/* What to do with in-memory files at exit (--on-exit, or a shutdown request). */
enum ephd_exit_mode { EPHD_EXIT_WRITEBACK = 0, EPHD_EXIT_DISCARD = 1 };

struct ephd {
    struct eph_shm_header *h;  /* the shared region */
    struct eph_inode *inodes;  /* eph_inodes(h) */
    int region_fd;             /* memfd of the region, handed out by HELLO */
    size_t region_size;
    pid_t pid;
    char rundir[4096];
    char *roots[EPHD_MAX_ROOTS]; /* absolute, no trailing slash */
    size_t rootlen[EPHD_MAX_ROOTS];
    int nroots;
    uint8_t *inode_root;       /* daemon-private: root index of each inode (for O_TMPFILE eviction) */
};

extern struct ephd D;

/* Root index whose subtree holds path (strictly below the root), or -1. */
int ephd_root_of(const char *path);
/* CLOCK_MONOTONIC in ns, and CLOCK_REALTIME in ns. */
uint64_t ephd_mono_ns(void);
/* A file time: also raises the shim's time floor (shm.h time_floor). */
int64_t ephd_real_ns(void);

#endif
