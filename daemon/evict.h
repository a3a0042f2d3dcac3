/*
 * evict.h - moving in-memory files to disk without losing a byte, while
 * other processes may be using them (protocol in docs/ARCHITECTURE.md).
 */
#ifndef EPHD_EVICT_H
#define EPHD_EVICT_H

#include <stdint.h>

enum {
    EVICT_FORCE = 1,      /* also pinned files (explicit EVICT, materialise, shutdown) */
    EVICT_KEEP_PAGES = 2, /* leave the memfd pages (the app mmap()ed it; we are exiting) */
    EVICT_DROP_CACHE = 4, /* write through and drop the page cache: memory is really freed (shrink) */
    EVICT_SPARE_BUSY = 8, /* victim choice only: leave open files used within EVICT_BUSY_NS alone */
};

/* An open file touched this recently is in use: making room for another
 * file's growth must not move it (the grower goes to disk instead). */
#define EVICT_BUSY_NS 1000000000ull

#include <stddef.h>

struct stat;
/* After a change of ours moved dir's times (it had *before): shims show the earlier ones. */
void evict_hide_dir_times(const char *dir, const struct stat *before);

/* Tables sized by the inode count (after ns_init).  0, or -1 with err. */
int evict_init(char *err, size_t errlen);
/* Test only: allocate and touch this many bytes in every eviction, and
 * where evict_test_touch() is called (the OOM wake-up). */
void evict_test_alloc(size_t bytes);
void evict_test_touch(void);
size_t evict_test_alloc_bytes(void);
/* Write evicted bytes through to disk chunk by chunk, freeing memory as
 * they go (on while a cgroup limit is in force). */
void evict_set_sync(int on);
void evict_fini(void);
/* Move inode idx to disk.  0 (also when it already was on disk) or -errno. */
int evict_inode(uint32_t idx, int flags);
/* Evict least recently used files (closed first, pinned never, `exclude`
 * never) until bytes_in_memory + need <= budget.  0 when that holds. */
int evict_make_room(uint64_t need, int64_t exclude, int flags);
/* Bytes in memory that making room for a growing file would not move
 * (pinned, failing, or open and used within EVICT_BUSY_NS). */
uint64_t evict_busy_bytes(void);
/* Evict until bytes_in_memory <= target.  0 when that holds. */
int evict_down_to(uint64_t target, int flags);
/* Evict every in-memory file (named only if named_only).  Number evicted. */
int evict_all(int flags, int named_only);
/* The exit writeback: every named in-memory file to disk, the ones that
 * fail (disk full, an I/O error) tried once more, and each one still in
 * memory then logged by name and size.  The number of files left unwritten. */
int evict_writeback(void);
/* Evictions that failed (the file stayed in memory), and files the exit
 * writeback could not write (for stats). */
uint64_t evict_failures(void);
uint64_t evict_writeback_failed(void);
/* If path names an in-memory file that has several names (hard links, shim/nslink.c),
 * move it to disk, every name becoming a disk link of one file: the daemon's
 * rename then sees names on disk only.  0 (also: nothing to do), or -errno. */
int evict_linked(const char *path);
/* Evict every in-memory file named below directory dir. */
int evict_below(const char *dir, int flags);
/* Whether LRU eviction could free anything right now (cheap: stops at the
 * first candidate; runs on every budget tick). */
int evict_has_evictable(void);

/* How a directory still only in memory gets its disk twin chain (dirtwin.c's dt_settle, under
 * ns_lock): evict_inode asks it for the directory of each of a file's names first. */
void evict_set_settle(int (*settle)(const char *dir));

#endif
