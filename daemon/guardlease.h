/*
 * guardlease.h - the guard's lease: in follow mode (a container whose host
 * sets the OOM guard) the daemon can tell whether anyone who could lift the
 * guard is still alive, and if nobody is, it ends a stall itself.
 *
 * The lease is a FIFO the node agent makes in its state directory and links
 * into each container's run directory (<rundir>/guard.lease).  Its write ends
 * are held by the agent and by its guard sentinel (which inherits the fd):
 * the kernel closes them when they die, however they die.  A non-blocking
 * read of our read end answers without a clock or a renewal: EAGAIN while
 * some writer lives, 0 once every writer is gone.
 *
 * With the guard set, nobody holding the lease, and the cgroup stalled at
 * its limit (v1 under_oom; v2 a throttle above memory.high, which without
 * anyone to lift it would last for good) for LEASE_STALL_NS, the daemon does what the
 * kernel's OOM killer would have done had the guard been lifted: it sends
 * SIGKILL to the task of its cgroup with the highest oom_score (never itself).
 * A waiting task sleeps killable, so it dies at once; its pages are uncharged
 * and the other waiters are woken.  The path allocates nothing in user space
 * (static buffers, fds opened beforehand where the kernel would allocate).
 */
#ifndef EPHD_GUARDLEASE_H
#define EPHD_GUARDLEASE_H

/* Opens <rundir>/guard.lease (if the host made one) and <cgdir>/cgroup.procs. */
void lease_init(const char *rundir, const char *cgdir);
/* 1: a holder lives; 0: nobody holds the lease; -1: there is no lease (a
 * host that keeps none: nothing changes). */
int lease_held(void);
/* Each budget tick in follow mode: the guard is set (armed) and tasks wait
 * at the limit (under: v1 under_oom, v2 memory.current above memory.high).
 * Ends a stall that nobody outside can end. */
void lease_tick(int armed, int under);
void lease_fini(void);

#endif
