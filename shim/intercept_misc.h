/*
 * shim/intercept_misc.h - what the fd-level calls (intercept_misc.c) offer the other modules.
 */
#ifndef SHIM_INTERCEPT_MISC_H
#define SHIM_INTERCEPT_MISC_H

/*
 * A lock call on a managed fd, made on the file's current home (settled first
 * if it is not in memory); with recheck, taken again there if the file moved
 * while the call ran (the daemon probes for locks after its seq_cst store of
 * MOVING, so a lock that still sees MEM after a full fence is seen).
 */
int misc_lock_on_home(int fd, int (*call)(int, int, unsigned long), int cmd, unsigned long arg, int recheck);

#endif
