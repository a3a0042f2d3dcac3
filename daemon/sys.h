/*
 * sys.h - the real calls of the daemon's eviction and exit writeback (the
 * copy of a file's bytes to disk and the naming of the disk file), one table
 * generated from one list, as the shim's shim/sys.h (ephemera/systable.h).
 * The bottom layer: it calls no other module.
 *
 * In the production build the table is a `static const` in every file that
 * includes this header, initialised with libc's own functions: the compiler
 * sees a constant and emits the direct call, so the table costs nothing.
 * The fault build (-DEPH_FAULTS, build/test/ephemerad-faults) makes it one
 * writable table (sys.c) whose entries EPHEMERAD_FAULTS can point at the
 * fault wrappers; the rules have the shim's EPHEMERA_FAULTS syntax, with
 * on=mem meaning the memfd of an in-memory file and on=disk anything else.
 * The daemon's own variable, so a test can fault the shim and the daemon
 * separately in one environment.
 */
#ifndef EPHD_SYS_H
#define EPHD_SYS_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "ephemera/systable.h"

/* X(name, return type, parameters, forwarding arguments, need, fault class).
 * linkat's first fd (the source directory, or the O_TMPFILE itself) is its
 * `fd`: AT_FDCWD for the /proc link, so faults on it need on=any (the default). */
#define EPHD_SYSCALLS(X)                                                                                   \
    X(open, int, (const char *, int, ...), (), EPH_SYS_REQ, NONE)                                          \
    X(pread, ssize_t, (int fd, void *b, size_t n, off_t o), (fd, b, n, o), EPH_SYS_REQ, XFER)              \
    X(pwrite, ssize_t, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o), EPH_SYS_REQ, XFER)       \
    X(sendfile, ssize_t, (int fd, int in, off_t *o, size_t n), (fd, in, o, n), EPH_SYS_REQ, XFER)          \
    X(fallocate, int, (int fd, int mode, off_t o, off_t len), (fd, mode, o, len), EPH_SYS_REQ, ERR)        \
    X(ftruncate, int, (int fd, off_t len), (fd, len), EPH_SYS_REQ, ERR)                                    \
    X(sync_file_range, int, (int fd, off_t o, off_t n, unsigned f), (fd, o, n, f), EPH_SYS_REQ, ERR)       \
    X(linkat, int, (int fd, const char *o, int nd, const char *np, int f), (fd, o, nd, np, f), EPH_SYS_REQ, \
      ERR)                                                                                                 \
    X(rename, int, (const char *, const char *), (), EPH_SYS_REQ, NONE)

struct ephd_sys_table {
    EPHD_SYSCALLS(EPH_SYS_MEMBER)
};

#ifdef EPH_FAULTS
extern struct ephd_sys_table dsys;
#else
#define EPHD_SYS_INIT(name, ret, params, args, need, fault) .name = name,
static const struct ephd_sys_table dsys = {EPHD_SYSCALLS(EPHD_SYS_INIT)};
#undef EPHD_SYS_INIT
#endif

/*
 * Read EPHEMERAD_FAULTS once, at start.  0, or -1 with err set: a rule that
 * cannot be read or names no faultable entry, or (production build) any
 * rule at all, since this build cannot honour it.
 */
int dsys_faults_install(char *err, size_t errlen);

#endif
