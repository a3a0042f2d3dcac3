/**
 * The scheduler and its wait queue joined as the platform drives them (pure: the platform passes
 * `now`, performs the placements this returns, and answers the callers of expired items).
 *
 * - `submit`: place now, or queue; never drops. A task larger than every node fails at once
 *   (`EPH_SCHED_NEVER_FITS`); a full queue fails at once (`EPH_SCHED_QUEUE_FULL`).
 * - A new request may be placed ahead of waiting ones only while none of them has waited
 *   `agingMs`, the same rule `WaitQueue.drain` follows, so arrivals cannot starve an old task.
 * - `release`, `report` and `tick` free or refresh memory, then drain the queue; their result says
 *   which waiting requests were placed and which timed out (answer those with `waitTimeoutError`).
 */
import { EphemeraError } from '../core/errors.js';
import { Scheduler, type NodeReport, type Placement, type ReportOutcome, type ScheduleRequest } from './scheduler.js';
import { WaitQueue, type DrainResult, type WaitQueueOptions } from './wait-queue.js';

export type SubmitResult = { readonly status: 'placed'; readonly placement: Placement } | { readonly status: 'queued'; readonly position: number };

export class Dispatcher {
  readonly scheduler: Scheduler;
  readonly queue: WaitQueue<ScheduleRequest>;

  constructor(scheduler: Scheduler, queue: WaitQueueOptions) {
    this.scheduler = scheduler;
    this.queue = new WaitQueue<ScheduleRequest>(queue);
  }

  /**
   * @throws {EphemeraError} `EPH_SCHED_NEVER_FITS`, `EPH_SCHED_QUEUE_FULL`, or `EPH_SCHED_BAD_INPUT`
   */
  submit(req: ScheduleRequest, now: number): SubmitResult {
    if (!this.scheduler.canEverFit(req.task)) {
      throw new EphemeraError(
        'EPH_SCHED_NEVER_FITS',
        `the task needs ${req.task.limit} bytes (T_lim) and no node offers that much (${this.scheduler.nodeCount} nodes reporting); lower the action's memory limit or add a larger node`,
        { detail: { limit: req.task.limit } },
      );
    }
    if (!this.queue.hasAged(now)) {
      const placement = this.scheduler.schedule(req, now);
      if (placement !== null) return { status: 'placed', placement };
    }
    this.queue.enqueue(req, now);
    return { status: 'queued', position: this.queue.length };
  }

  /** The request finished (or never started); places what now fits. */
  release(id: string, now: number): DrainResult<ScheduleRequest, Placement> {
    this.scheduler.release(id, now);
    return this.drain(now);
  }

  /** An agent reported; places what now fits. */
  report(r: NodeReport, now: number): { readonly outcome: ReportOutcome } & DrainResult<ScheduleRequest, Placement> {
    const outcome = this.scheduler.report(r, now);
    return { outcome, ...this.drain(now) };
  }

  /** Periodic: expires old reservations and waits; places what now fits. */
  tick(now: number): DrainResult<ScheduleRequest, Placement> {
    this.scheduler.expire(now);
    return this.drain(now);
  }

  private drain(now: number): DrainResult<ScheduleRequest, Placement> {
    return this.queue.drain((req) => this.scheduler.schedule(req, now), now);
  }
}
