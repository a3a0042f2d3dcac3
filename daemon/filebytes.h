/*
 * filebytes.h - how many bytes the function's files take, in memory and on
 * disk under the managed roots, and the peak of the two together: the
 * Tenant Manager sizes an instance as own peak (budget.h) + file peak, so
 * neither may count a file's bytes that the other already counts.
 */
#ifndef EPHD_FILEBYTES_H
#define EPHD_FILEBYTES_H

#include <stdint.h>

/* Bytes of regular files on disk under the managed roots, for the stats:
 * a bounded walk, reused for a second (the Manager may poll often).  The
 * stats' total of memory + disk also counts as a sample for the peak. */
uint64_t fbytes_disk_for_stats(void);
/* The periodic sample for the peak: files in memory + on disk, the disk
 * part walked at most every 5 s (its own walk, not the stats'). */
void fbytes_sample(void);
/* The highest file bytes seen: the largest sample, and never less than the
 * peak of bytes in memory alone (which the shim keeps exactly). */
uint64_t fbytes_peak(void);
/* The daemon's lifetime peak of bytes in memory (the stats'
 * bytes_in_memory_peak): the shared counter only holds the current window's. */
uint64_t fbytes_memory_peak(void);

/* The peaks of one window (control op `peaks`), from its opening to now. */
struct fbytes_window {
    uint64_t memory_peak; /* bytes in memory: exact, raised at every growth */
    uint64_t counted_peak; /* memory + the disk files the shims count: exact, raised at every
                            * growth of either (include/ephemera/diskbytes.h) */
    uint64_t peak;        /* memory + disk: the counted peak, the memory peak, the samples, and now */
    uint64_t memory, disk; /* now: disk by a fresh walk */
    uint64_t disk_counted; /* now: the bytes the shims count on disk */
    int64_t ms;           /* how long the window has been open; -1: since the start */
};
/* Fills *w with the window so far; with `reset`, a new window opens now,
 * at the bytes in memory and on disk just measured. */
void fbytes_window(int reset, struct fbytes_window *w);

/* A file just moved to disk (fd: its disk file), its memory already out of
 * bytes_in_memory: its bytes are counted on disk from now on. */
void fbytes_count_moved(int fd);

#endif
