/*
 * ledger.h - each shimmed process's table of open in-memory files (a memfd
 * it keeps current, EPH_OP_LEDGER), and a pidfd per process: when it ends,
 * however it died, the references its table still lists are dropped.
 */
#ifndef EPHD_LEDGER_H
#define EPHD_LEDGER_H

#include <stdint.h>
#include <sys/types.h>

/* Register the table *tfd of process pid (self: sent by pid itself, else by
 * its parent for a child).  peer_sock: the connection pid itself sent it on,
 * whose pidfd names pid even once the number is reused (-1: none, e.g. a
 * table the keeper hands over).  Takes *tfd (sets it to -1) when kept.  0 or
 * -errno. */
int ledger_register(pid_t pid, int self, int *tfd, int peer_sock);
/* The daemon took an open_count reference on inode (gen) for the thread of
 * pid whose in-flight slot is slot (EPH_OP_CREATE's req.inflight1 - 1):
 * note it in pid's ledger, so that it is given back if pid dies before it
 * lists it under an fd. */
void ledger_note_inflight(pid_t pid, uint32_t slot, uint32_t inode, uint32_t gen);
/* Give back one open_count reference on inode (gen) that no ledger lists. */
void ledger_drop_ref(uint32_t inode, uint32_t gen);
/* 1 if pid registered a ledger and is alive (as far as its pidfd told us yet). */
int ledger_registered(int pid);
/* Open-file references dropped on behalf of processes that died holding them. */
uint64_t ledger_dropped(void);
/* Counts of fast-path reads in flight dropped for processes that died inside one (stats reads_given_back). */
uint64_t ledger_reads_dropped(void);
/* Forget every ledger (exit). */
void ledger_close(void);

#endif
