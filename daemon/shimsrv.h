/*
 * shimsrv.h - the SOCK_SEQPACKET server for the shim protocol (proto.h):
 * connections and datagrams; shimops.c handles the requests.
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

#endif
