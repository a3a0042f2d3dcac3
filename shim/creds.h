/*
 * shim/creds.h - the caller's effective ids, kept in the process (creds.c).
 *
 * The shim's permission checks need the effective uid and gid on every
 * namespace change; asking the kernel each time cost two to four geteuid and
 * getegid calls per create, unlink or stat (issue 15: no system call that the
 * kernel would not make).  The ids change only through the set*id family,
 * which the shim wraps: each wrapper drops the cache after the real call, so
 * the next check asks once.  A fork child re-reads them too (a clone into a
 * new user namespace maps them anew).
 */
#ifndef SHIM_CREDS_H
#define SHIM_CREDS_H

#include <sys/types.h>

uid_t creds_euid(void);
gid_t creds_egid(void);
/* After anything that may have changed the ids (the set*id wrappers, a raw
 * syscall of the family, a fork child). */
void creds_changed(void);

#endif
