/*
 * watchgc.h - drop the inotify shadows nobody watches any more (watchgc.c;
 * the shadows themselves are the shim's, shim/inotify.c).
 */
#ifndef EPHD_WATCHGC_H
#define EPHD_WATCHGC_H

/* From the daemon's once-a-second tick: costs one load while nothing is shadowed. */
void watch_gc(void);

#endif
