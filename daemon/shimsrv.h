/*
 * shimsrv.h - the SOCK_SEQPACKET server for the shim protocol (proto.h).
 */
#ifndef EPHD_SHIMSRV_H
#define EPHD_SHIMSRV_H

#include <stddef.h>
#include <stdint.h>

int shim_listen(const char *path, char *err, size_t errlen);
void shim_close(void);
/* Open shim connections now, and connections accepted since start. */
int shim_nconns(void);
uint64_t shim_accepts(void);
/* Open-file references dropped on behalf of processes that died holding them. */
uint64_t shim_ledger_dropped(void);
/* 1 if pid registered a ledger and is alive (as far as its pidfd told us yet). */
int shim_proc_registered(int pid);

#endif
