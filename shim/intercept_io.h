/*
 * shim/intercept_io.h - what the data calls (intercept_io.c) offer the other modules.
 */
#ifndef SHIM_INTERCEPT_IO_H
#define SHIM_INTERCEPT_IO_H

/* Before a lock that belongs to the open file description (flock, OFD): give fd one of its own. */
void io_own_description(int fd);

#endif
