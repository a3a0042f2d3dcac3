/**
 * What happened on the node, in order, for callers that were not part of it: every move the agent
 * carried out (whoever asked for it: an invocation, the safeguard, a removal, recovery), every
 * shortfall a daemon reported and every OOM kill seen after a run. Pure: a bounded ring of
 * numbered events; `GET /v1/events?after=SEQ` (server.ts) reads it.
 *
 * Numbers start at 1 and grow by one per event for the agent's lifetime. A reader that fell more
 * than the ring's capacity behind is told how many it missed, never silently given a gap.
 */
import type { NodeEvent, NodeEventBody, NodeEventsReply } from './api.js';

/** How many events are kept. @default */
export const JOURNAL_CAPACITY = 4096;

export class NodeEventJournal {
  readonly #events: NodeEvent[] = [];
  readonly #capacity: number;
  readonly #now: () => number;
  #last = 0;

  constructor(options: { readonly capacity?: number; readonly now?: () => number } = {}) {
    this.#capacity = options.capacity ?? JOURNAL_CAPACITY;
    this.#now = options.now ?? Date.now;
  }

  /** Numbers and keeps one event; the oldest goes when the ring is full. */
  push(body: NodeEventBody): NodeEvent {
    const event = { ...body, seq: ++this.#last, at: this.#now() } as NodeEvent;
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.shift();
    return event;
  }

  /** The number of the newest event (0 before the first). */
  get last(): number {
    return this.#last;
  }

  /**
   * Up to `limit` events numbered after `after`, oldest first; `next` is the `after` to pass next
   * time, `missed` how many after `after` are no longer kept. An `after` past the newest number
   * comes from a reader of an earlier agent (this one restarted): it reads from the beginning.
   */
  since(afterSeq: number, limit: number): NodeEventsReply {
    const after = afterSeq > this.#last ? 0 : afterSeq;
    const oldest = this.#events[0]?.seq ?? this.#last + 1;
    const missed = Math.max(0, oldest - after - 1);
    const from = Math.max(0, after + 1 - oldest);
    const events = this.#events.slice(from, from + limit);
    return { events, next: events.at(-1)?.seq ?? Math.max(after, Math.min(this.#last, oldest - 1)), missed };
  }
}
