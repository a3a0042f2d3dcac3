/**
 * Follows the node agents' journals (`GET /v1/events`) and tells the views what happened there:
 * moves (the Manager's loans, returns, reclaims, safeguard reclaims), shortfalls and OOM kills.
 * One bounded request per agent per tick; an agent that does not answer is asked again next tick
 * and said so in the log once, not on every tick.
 */
import type { Logger } from 'pino';

import type { ClusterEvent } from '../dashboard/source.js';
import type { NodeEvent, NodeEventsReply } from '../node/api.js';

/** What the feed needs of one agent; the agent's NodeClient is one. */
export interface JournalReader {
  events(after: number, limit?: number): Promise<NodeEventsReply>;
}

/** One journal entry as the views' event; the agent's name is the node's. */
export function clusterEvent(node: string, e: NodeEvent): ClusterEvent {
  switch (e.type) {
    case 'move':
      return {
        type: 'move',
        node,
        tenant: e.tenant,
        seq: e.seq,
        // Recovery's restoring moves have the node's free memory on one side.
        from: e.from ?? node,
        to: e.to ?? node,
        bytes: e.bytes,
        reason: e.reason,
        durationSeconds: e.durationUs / 1e6,
        at: e.at,
      };
    case 'shortfall':
      return { type: 'shortfall', node, tenant: e.tenant, container: e.container, bytes: e.bytes, at: e.at };
    case 'oom-kill':
      return { type: 'oom-kill', node, tenant: e.tenant, container: e.container, at: e.at };
  }
}

export class AgentEventFeed {
  readonly #agents: readonly { readonly node: string; readonly reader: JournalReader; after: number; failing: boolean }[];
  readonly #emit: (event: ClusterEvent) => void;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> = Promise.resolve();
  #stopped = false;

  /** @param intervalMs how often each journal is read @default 250 */
  constructor(agents: readonly { readonly node: string; readonly reader: JournalReader }[], emit: (event: ClusterEvent) => void, log: Logger, intervalMs = 250) {
    this.#agents = agents.map((a) => ({ ...a, after: 0, failing: false }));
    this.#emit = emit;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Starts following from what each journal holds now (what happened before is not replayed). */
  async start(): Promise<void> {
    await Promise.all(this.#agents.map(async (a) => {
      try {
        // The first read only learns where the journal is.
        for (;;) {
          const r = await a.reader.events(a.after, 1000);
          a.after = r.next;
          if (r.events.length < 1000) break;
        }
      } catch (err) {
        a.failing = true;
        this.#log.warn({ node: a.node, err: err instanceof Error ? err.message : String(err) }, 'node agent journal unreadable; retrying');
      }
    }));
    this.#schedule();
  }

  /** Reads every journal once now (and emits what it finds). */
  poll(): Promise<void> {
    this.#tick = this.#tick.then(() => Promise.all(this.#agents.map(async (a) => {
      try {
        const r = await a.reader.events(a.after);
        if (r.missed > 0) this.#log.warn({ node: a.node, missed: r.missed }, 'node agent journal: events lost before they were read');
        for (const e of r.events) this.#emit(clusterEvent(a.node, e));
        a.after = r.next;
        if (a.failing) this.#log.info({ node: a.node }, 'node agent journal readable again');
        a.failing = false;
      } catch (err) {
        if (!a.failing) this.#log.warn({ node: a.node, err: err instanceof Error ? err.message : String(err) }, 'node agent journal unreadable; retrying');
        a.failing = true;
      }
    })).then(() => undefined));
    return this.#tick;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.poll().finally(() => { this.#schedule(); });
    }, this.#intervalMs);
  }

  /** Stops following (a read in progress ends first). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#tick;
  }
}
