/*
 * daemon/dirtwin.h - disk twins of directories that live only in the region
 * (EPH_MDIR, made by the shims' mkdir: shim/nsdir.c).
 */
#ifndef EPHD_DIRTWIN_H
#define EPHD_DIRTWIN_H

#include "ephemera/proto.h"

/* At start: mkdir stays on disk (mdirs_off) when a root holds a symlink or
 * more entries than the scan looks at. */
void dt_init(void);
/* Under ns_lock: every in-memory directory that is path or one of its
 * ancestors becomes a disk directory, top down.  0 or the first -errno. */
int dt_settle(const char *path);
/* Under ns_lock: every in-memory directory; with off, mkdir stays on disk from now on. */
int dt_twin_all(int off);
/* Once a second: the stand-ins' holds on twins' records (twinrec.h) of processes that died. */
void dt_holds_gc(void);
/* EPH_OP_DIRTWIN. */
int dt_op(const struct eph_req *q);

#endif
