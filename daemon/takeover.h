/*
 * takeover.h - a daemon started by the keeper to replace one that died takes its region over
 * (docs/ARCHITECTURE.md, "A namespace that survives the daemon": what is built).
 *
 * The keeper starts it with every fd it held placed at the number the dead daemon had for it, so
 * the region's mem_fd and disk_fd stay valid as they are, and with a manifest (a memfd of struct
 * eph_keeper_entry) saying what each number is.
 */
#ifndef EPHD_TAKEOVER_H
#define EPHD_TAKEOVER_H

#include <stddef.h>

/* Read the manifest at fd mfd (then closed).  The region's fd number, or -1 with err set. */
int takeover_manifest(int mfd, char *err, size_t errlen);
/* After region_adopt, ns_init and evict_init: the namespace lock recovered if the dead daemon
 * held it, files it was evicting put back in memory whole, the counters and free slots rebuilt
 * from the inodes, ns_check.  Logged. */
void takeover_repair(void);
/* Right after takeover_repair, before the daemon opens anything else (a number it closed must
 * not be taken for the manifest's): the ledgers of live processes adopted, fds nothing names
 * any more closed. */
void takeover_adopt_fds(void);

#endif
