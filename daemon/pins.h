/*
 * pins.h - a file an application mmap()ed is pinned in memory (the kernel
 * serves that mapping from the memfd's pages).  Nothing says when the
 * mapping ends, so the pin scanner looks in /proc for the mappings.
 */
#ifndef EPHD_PINS_H
#define EPHD_PINS_H

/* Unpin the closed, pinned files that no process maps any more.  At most
 * once a second; meant for the moment eviction has work to do. */
void pins_release_unmapped(void);
/* The memfd's kernel identity, as /proc/locks and /proc/<pid>/maps print
 * it.  0, or -1 if fstat fails. */
int pins_memfd_id(int memfd, unsigned *maj, unsigned *min, unsigned long long *ino);

#endif
