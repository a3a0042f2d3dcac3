/*
 * The keeper: what `ephemera run` holds so that a killed ephemerad loses nothing
 * (docs/ARCHITECTURE.md, "A namespace that survives the daemon"; the link's messages are
 * include/ephemera/keeper.h and docs/PROTOCOL.md, "The keeper link").
 *
 * The daemon copies every fd that must outlive it here: the region, each memfd, each evicted
 * file's disk file, each process's ledger.  When it dies, main.c starts a new one with these
 * copies placed at the numbers the dead one had (keeper_place in the child), and the new one
 * takes the region over; when no new one can start, keeper_writeback puts every in-memory file
 * at its path on disk itself.
 */
#ifndef EPHEMERA_LAUNCHER_KEEPER_H
#define EPHEMERA_LAUNCHER_KEEPER_H

#include <stdbool.h>
#include <stdint.h>

#include "ephemera/keeper.h"
#include "json.h"

struct keeper_held {
    int fd; /* our copy, or -1 */
    uint32_t kind, arg, gen;
};

struct keeper {
    int sock;                 /* our end of the link to the current daemon, or -1 */
    struct keeper_held *held; /* indexed by the fd's number in the daemon */
    int cap;
    int region;               /* the daemon's number of the region, or -1 */
    bool broken;              /* a message could not be read: the copies are not faithful */
    bool eof;                 /* the daemon's end of the link is closed */
};

/* Fds to place in a child: src[i] (ours) becomes dst[i] (the daemon's number). */
struct keeper_plan {
    int n;
    int *src, *dst, *tmp;
    int high; /* above every src and dst: where the child parks them first */
};

void keeper_init(struct keeper *k);
/* A new link for the next daemon: *daemon_end gets its end (close-on-exec here).  0 or -errno. */
int keeper_link(struct keeper *k, int *daemon_end);
/* Read every message waiting.  Cheap when there is none. */
void keeper_pump(struct keeper *k);
/* A manifest of what is held (a memfd of struct eph_keeper_entry), or -errno. */
int keeper_manifest(const struct keeper *k);
/* The plan to give a new daemon every held fd at its number, plus nextra fds of ours (extra[i])
 * at the lowest numbers that are free of those: their numbers are written to extra_at[i].
 * 0 or -errno. */
int keeper_plan(const struct keeper *k, const int *extra, int *extra_at, int nextra, struct keeper_plan *p);
/* In the child: carry the plan out; *keep (an fd of the child's own) is moved out of the way and
 * its new number stored.  0 or -errno. */
int keeper_place(const struct keeper_plan *p, int *keep);
/* The link to poll, or -1 once the daemon's end is closed. */
static inline int keeper_poll_fd(const struct keeper *k)
{
    return k->eof ? -1 : k->sock;
}
void keeper_plan_free(struct keeper_plan *p);

struct keeper_files {
    uint64_t files;  /* live files (in memory or evicted; named, or unlinked and still open) */
    uint64_t in_mem; /* of which in memory (or being evicted) */
};
/* Map the region, set its daemon_down (enum eph_daemon_down) and count its files.  0 or -errno. */
int keeper_note(const struct keeper *k, uint32_t down, struct keeper_files *f);
/* Write every named in-memory file to its path with the copies held.  Files written; *failed
 * those that could not be, each described in *why (one line each). */
int keeper_writeback(const struct keeper *k, int *failed, struct jbuf *why);
void keeper_fini(struct keeper *k);

#endif
