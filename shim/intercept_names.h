/*
 * shim/intercept_names.h - what the name calls (intercept_names.c) offer the
 * other modules: permission checks and moving in-memory files to disk.
 */
#ifndef SHIM_INTERCEPT_NAMES_H
#define SHIM_INTERCEPT_NAMES_H

#include <stdint.h>

#include "ephemera/shm.h"

/* The kernel's permission check for amode on an in-memory inode (effective or real ids). */
int names_access_ok(struct eph_inode *ino, int amode, int effective);
/* The kernel is about to read path by itself (exec, ld.so): an in-memory file moves to disk. */
void names_to_disk(int dirfd, const char *path);
/* Move an in-memory inode to disk (EVICT): 0, or the daemon's -errno (-ESTALE counts as 0). */
int names_evict(uint32_t inode, uint32_t gen);
/* Before exec of prog with envp: the program and the libraries ld.so will load from roots go to disk. */
void names_exec_to_disk(const char *prog, char *const envp[]);

#endif
