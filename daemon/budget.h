/*
 * budget.h - how many bytes the in-memory files may occupy, derived from a
 * static --budget and/or live from the instance's cgroup (v1 or v2):
 *   budget = limit - (usage - bytes of our in-memory files) - headroom
 */
#ifndef EPHD_BUDGET_H
#define EPHD_BUDGET_H

#include <stddef.h>
#include <stdint.h>

struct budget_opts {
    int64_t static_budget; /* --budget, -1 when not given */
    int64_t headroom;      /* --headroom, -1 for the default */
    const char *cgroup;    /* "auto", "none" or a cgroup directory */
    int oom_guard;         /* --oom-guard on: hold the kernel's OOM killer while we can evict */
    void (*before_guard)(void); /* once, before the guard is first set (guard.h) */
};

struct budget_snapshot {
    int64_t limit;         /* effective limit, -1 = unlimited */
    int64_t usage;         /* cgroup usage, -1 = no cgroup */
    uint64_t budget;
    uint64_t headroom;
    const char *cgroup;    /* path or NULL */
    int version;           /* 1, 2 or 0 */
    int64_t own;           /* function's own memory (usage - our files - reclaimable cache), -1 unknown */
    int64_t own_peak;      /* the highest own measured on a fresh memory.stat, -1 unknown */
};

int budget_init(const struct budget_opts *o, char *err, size_t errlen);
/* Stop the tick; restore the cgroup knobs the OOM guard changed. */
void budget_fini(void);
/* Who hears of a shortfall: the function's own memory plus the headroom no
 * longer fit the limit, even with every file on disk (bytes missing, the
 * effective limit, cgroup usage, bytes of files in memory).  Registered by
 * the control module, which sends the event to its subscribers; NULL: none. */
typedef void (*budget_shortfall_cb)(uint64_t bytes, int64_t limit, int64_t usage,
                                    uint64_t file_bytes);
void budget_on_shortfall(budget_shortfall_cb fn);
/* Re-read the cgroup and recompute; evict at once if the files exceed the
 * new budget; raise a shortfall event when even that is not enough. */
void budget_refresh(void);
/* Adopt an effective limit below the cgroup's (shrink) or lift it (grow).
 * limit < 0 clears the override. */
void budget_set_override(int64_t limit);
int64_t budget_override(void);
void budget_snapshot(struct budget_snapshot *s);
/* The highest own memory since the last reset (or the start), after a fresh
 * reading of usage and memory.stat; with `reset`, a new window opens at the
 * own memory just read.  -1 without a cgroup (or before any reading). */
int64_t budget_own_window(int reset);
/* Would (usage - reclaimable) fit limit - headroom?  For shrink acks; fills
 * *excess with the bytes still missing. */
int budget_fits(int64_t limit, int64_t *excess);

#endif
