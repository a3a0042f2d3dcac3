/*
 * region.h - the shared region (shm.h) as a memfd that the daemon creates
 * and every shim process maps after HELLO.
 */
#ifndef EPHD_REGION_H
#define EPHD_REGION_H

#include <stddef.h>
#include <stdint.h>

#define REGION_MIN_INODES 16u
#define REGION_MAX_INODES (1u << 20)

/* Create, size and map the region, fill the header; sets D.h, D.inodes,
 * D.region_fd, D.region_size.  0, or -1 with err naming the failing call. */
int region_create(uint32_t ninodes, uint32_t ndescs, char *err, size_t errlen);
/* Map the region of a daemon that died (fd: the keeper's copy, at the number it had there) and
 * check that it is one: magic, version, header size, and a size that matches its memfd.  Sets
 * what region_create sets.  0, or -1 with err saying what did not match. */
int region_adopt(int fd, char *err, size_t errlen);
void region_destroy(void);

#endif
