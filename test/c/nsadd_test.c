/*
 * nsadd_test.c - the journal's one operation that is not a store (EPH_JOP_ADD64,
 * include/ephemera/nslock.h): an add to a counter inside a namespace record is made
 * exactly once however often the record is applied again, as the locker that
 * inherits a dead holder's lock applies a committed record again.  On a region
 * header in plain memory, with the record's stages driven by hand: a record
 * applied and then redone, a record redone after its holder applied only its first
 * operation, a record discarded before its commit, and a take-away.  Meanwhile the
 * counter moves outside the record (a write's growth, which takes no ns_lock), and
 * the redo must not lose that either.
 */
// test-tier: unit
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "ephemera/nslock.h"

static struct eph_shm_header *h;

static _Atomic uint64_t *count(void) { return &h->c.bytes_in_memory; }

/* A record: the counter moved by delta, then a store to files_created (a stand-in for the rest). */
static void build(int64_t delta)
{
    eph_j_begin(h);
    eph_j_add64(h, count(), delta);
    eph_j_set64(h, &h->c.files_created, 7);
    atomic_store(&h->journal.state, EPH_J_COMMITTED);
}

static void apply_first(void) { eph_j_apply_op(h, &h->journal.op[0]); }

int main(void)
{
    h = calloc(1, sizeof *h);
    if (!h)
        return 1;

    /* Applied whole by its holder, then redone by a locker after the holder died before EMPTY. */
    atomic_store(count(), 100000);
    build(4096);
    apply_first();
    eph_j_apply_op(h, &h->journal.op[1]);
    atomic_fetch_add(count(), 8192); /* a write's growth elsewhere, between the holder and the redo */
    eph_ns_recover(h);
    CHECK(atomic_load(count()) == 100000 + 4096 + 8192, "applied, then redone: %llu",
          (unsigned long long)atomic_load(count()));
    CHECK(atomic_load(&h->journal.state) == EPH_J_EMPTY && (atomic_load(&h->ns_seq) & 1) == 0,
          "the record is empty and ns_seq even after the redo");

    /* The holder died after its first operation (the add): the redo finishes the rest only. */
    atomic_store(count(), 100000);
    atomic_store(&h->c.files_created, 0);
    build(4096);
    apply_first();
    eph_ns_recover(h);
    CHECK(atomic_load(count()) == 100000 + 4096, "first op applied, then redone: %llu",
          (unsigned long long)atomic_load(count()));
    CHECK(atomic_load(&h->c.files_created) == 7, "the redo made the record's store");

    /* Committed, nothing applied: the redo makes the add, once, even when redone twice. */
    atomic_store(count(), 100000);
    build(4096);
    eph_ns_recover(h);
    atomic_store(&h->journal.state, EPH_J_COMMITTED); /* a second locker's redo of the same record */
    eph_ns_recover(h);
    CHECK(atomic_load(count()) == 100000 + 4096, "redone twice: %llu", (unsigned long long)atomic_load(count()));

    /* Not committed: discarded, the counter untouched. */
    atomic_store(count(), 100000);
    build(4096);
    atomic_store(&h->journal.state, EPH_J_BUILDING);
    eph_ns_recover(h);
    CHECK(atomic_load(count()) == 100000, "discarded: %llu", (unsigned long long)atomic_load(count()));

    /* A take-away, applied and redone. */
    atomic_store(count(), 100000);
    build(-65536);
    apply_first();
    eph_ns_recover(h);
    CHECK(atomic_load(count()) == 100000 - 65536, "a take-away applied, then redone: %llu",
          (unsigned long long)atomic_load(count()));

    /* The holder's own commit, in one go: one add. */
    atomic_store(count(), 100000);
    eph_j_begin(h);
    eph_j_add64(h, count(), 4096);
    eph_j_commit(h);
    CHECK(atomic_load(count()) == 100000 + 4096, "committed by its holder: %llu",
          (unsigned long long)atomic_load(count()));

    free(h);
    printf("nsadd_test: %d checks, %d failures\n", checks, failures);
    return failures != 0 || checks == 0;
}
