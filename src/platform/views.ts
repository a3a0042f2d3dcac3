/**
 * The operator's views on the controller (`/metrics`, `/dashboard`, and through it `ephemera
 * status`): the dashboard's seams (ClusterSource, Authorizer) implemented over the platform's own
 * parts. Keys are the store's; the cluster's state is read from the node agents
 * (NodeAgentsSource); activations, each run's daemon counters and scheduling decisions come from
 * the invoker as they happen; moves, shortfalls and OOM kills from the agents' journals
 * (event-feed.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Gauge, Registry } from 'prom-client';

import type { Authorizer, Principal } from '../dashboard/auth.js';
import { dashboardRoutes } from '../dashboard/dashboard-routes.js';
import { metricsRoutes } from '../dashboard/metrics-routes.js';
import { NodeAgentsSource, type NodeAgentApi } from '../dashboard/node-source.js';
import type { ActivationStatus, ActivationSummary, ClusterEvent } from '../dashboard/source.js';
import type { NodeAgent, NodeSelector, Placement } from './agent.js';
import { AgentEventFeed, type JournalReader } from './event-feed.js';
import type { InvokerObserver } from './invoker.js';
import type { ActivationRecord } from './model.js';
import type { Store, Tenant } from './store.js';

/** Keys to principals over the store: the operator's key sees every tenant, a tenant's its own. */
export class StoreAuthorizer implements Authorizer {
  constructor(private readonly keys: { authenticate(uuid: string, key: string): Tenant | undefined }) {}

  principalFor(key: string): Promise<Principal | undefined> {
    const colon = key.indexOf(':');
    if (colon <= 0) return Promise.resolve(undefined);
    const t = this.keys.authenticate(key.slice(0, colon), key.slice(colon + 1));
    if (t === undefined) return Promise.resolve(undefined);
    return Promise.resolve(t.admin ? { role: 'admin' } : { role: 'tenant', tenant: t.name });
  }
}

/** What the views show of an activation record. */
export function activationSummary(rec: ActivationRecord): ActivationSummary {
  const eph = rec.annotations.find((a) => a.key === 'ephemera')?.value;
  return {
    activationId: rec.activationId,
    tenant: rec.namespace,
    // Qualified, as the node agents name a container's function: the views join them on it.
    action: `${rec.namespace}/${rec.name}`,
    status: rec.response.status satisfies ActivationStatus,
    start: rec.start,
    durationMs: rec.duration,
    ...(typeof eph === 'object' && eph !== null && !Array.isArray(eph) ? { ephemera: eph as Readonly<Record<string, unknown>> } : {}),
  };
}

/** The invoker's observer that feeds the views' source. */
export function viewsObserver(source: NodeAgentsSource): InvokerObserver {
  return {
    ran: (containerId, result) => {
      if (result.ephemera !== undefined) source.recordRun(containerId, result.ephemera.stats);
    },
    recorded: (rec) => {
      source.emit({ type: 'activation', activation: activationSummary(rec) });
    },
  };
}

/**
 * Wraps a node selector so that every decision (placed, or unschedulable when it throws) and its
 * duration are told to `onDecision`: the scheduler needs no hook of its own, whichever is plugged in.
 */
export function observeSelections(selector: NodeSelector, onDecision: (event: Extract<ClusterEvent, { type: 'schedule' }>) => void, now: () => number = performance.now.bind(performance)): NodeSelector {
  // Everything but `select` is the wrapped selector's own: a scheduler that reserves must still
  // hear of created and released containers, and be closed.
  return {
    name: selector.name,
    ...(selector.reserves !== undefined ? { reserves: selector.reserves } : {}),
    ...(selector.maxWaitMs !== undefined ? { maxWaitMs: selector.maxWaitMs } : {}),
    ...(selector.created !== undefined ? { created: selector.created.bind(selector) } : {}),
    ...(selector.released !== undefined ? { released: selector.released.bind(selector) } : {}),
    ...(selector.waiting !== undefined ? { waiting: selector.waiting.bind(selector) } : {}),
    ...(selector.close !== undefined ? { close: selector.close.bind(selector) } : {}),
    select: async (nodes: readonly NodeAgent[], placement: Placement): Promise<NodeAgent> => {
      const t0 = now();
      const tell = (outcome: 'placed' | 'unschedulable'): void => {
        onDecision({ type: 'schedule', outcome, policy: selector.name, durationSeconds: (now() - t0) / 1000, at: Date.now() });
      };
      let chosen: NodeAgent;
      try {
        chosen = await selector.select(nodes, placement);
      } catch (err) {
        tell('unschedulable');
        throw err;
      }
      tell('placed');
      return chosen;
    },
  };
}

/** How many stored activations a starting controller shows again. */
export const RESHOWN_ACTIVATIONS = 1000;

/** What the views read of the platform's store. */
export type ViewsStore = Pick<Store, 'authenticate' | 'tenants' | 'listActivations' | 'getActivation'>;

/** The views' parts of one controller: the source, the journal feed, and the hooks into the invoker. */
export class ControllerViews {
  readonly source: NodeAgentsSource;
  readonly #feed: AgentEventFeed;

  /** @param agents the node agents as the views read them (their own API: state and journal) */
  constructor(agents: readonly { readonly node: string; readonly client: NodeAgentApi & JournalReader }[], log: Logger) {
    const source = new NodeAgentsSource(agents.map((a) => a.client));
    this.source = source;
    this.#feed = new AgentEventFeed(agents.map((a) => ({ node: a.node, reader: a.client })), (e) => { source.emit(e); }, log);
  }

  /** The invoker's observer: runs' daemon counters and finished activations. */
  get observer(): InvokerObserver {
    return viewsObserver(this.source);
  }

  /** The selector, with each of its decisions counted. */
  observe(selector: NodeSelector): NodeSelector {
    return observeSelections(selector, (e) => { this.source.emit(e); });
  }

  /**
   * Serves `/metrics` and `/dashboard` on the controller's app (keys from the store) and starts
   * following the journals. The newest `keep` stored activations are shown again (a restarted
   * controller's page is not empty) but not counted: `/metrics` counts what this controller
   * finishes, from its start (`process_start_time_seconds`), as Prometheus expects of a counter.
   * `settled` are the activations this controller itself just recorded as lost (left running by
   * the one before it, `Store.failInFlight`): they finish now, so they are counted now.
   * docs/ARCHITECTURE.md ("After a controller restart") says why.
   */
  async start(app: FastifyInstance, store: ViewsStore, options: { readonly keep?: number; readonly settled?: readonly string[] } = {}): Promise<void> {
    const keep = options.keep ?? RESHOWN_ACTIVATIONS;
    const settledIds = new Set(options.settled ?? []);
    const stored: ActivationRecord[] = [];
    for (const t of store.tenants()) stored.push(...store.listActivations(t.name, { skip: 0, limit: keep + settledIds.size }).filter((rec) => !settledIds.has(rec.activationId)));
    stored.sort((a, b) => a.start - b.start);
    // Before the metrics subscribe: these are kept for the views, not counted again.
    for (const rec of stored.slice(-keep)) this.source.emit({ type: 'activation', activation: activationSummary(rec) });
    const authorizer = new StoreAuthorizer(store);
    const registry = new Registry();
    // What prom-client's default process metrics would say (only this one of them: the rest cost a
    // scrape time and tell nothing about Ephemera): the counters below count from then.
    new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers: [registry] }).set(performance.timeOrigin / 1000);
    await app.register(metricsRoutes, { source: this.source, authorizer, registry });
    await app.register(dashboardRoutes, { source: this.source, authorizer });
    // After the metrics subscribe, and last in the list: this controller wrote them, just now.
    const settled: ActivationRecord[] = [];
    for (const id of settledIds) {
      for (const t of store.tenants()) {
        const rec = store.getActivation(t.name, id);
        if (rec !== undefined && rec !== 'running') settled.push(rec);
      }
    }
    for (const rec of settled.sort((a, b) => a.start - b.start)) this.source.emit({ type: 'activation', activation: activationSummary(rec) });
    await this.#feed.start();
  }

  stop(): Promise<void> {
    return this.#feed.stop();
  }
}
