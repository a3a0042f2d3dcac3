/**
 * The views' {@link ClusterSource} over the node agents (API v1, docs/PROTOCOL.md "Node agent
 * API"): the state is read from every agent at each snapshot; what happens (activations, moves,
 * shortfalls) is told by the controller, which is the one that invokes and hears the agents.
 *
 * The agent's container list has no daemon counters; each run's reply carries the run's share of
 * them (fast reads and writes, slow operations, evictions), so the controller hands every reply
 * to {@link NodeAgentsSource.recordRun} and the adapter sums them per container. A container's
 * sums are dropped when it leaves its agent's list, with its series.
 */
import { EphemeraError } from '../core/errors.js';
import type { ContainerView, NodeInfo, RunStats } from '../node/api.js';
import { ClusterEventLog } from './event-log.js';
import type { ClusterSnapshot, ClusterSource, ContainerSnapshot, NodeSnapshot } from './source.js';

/** What the views need of one node agent; the agent's NodeClient is one. */
export interface NodeAgentApi {
  node(): Promise<NodeInfo>;
  listContainers(): Promise<ContainerView[]>;
}

type Counters = Pick<ContainerSnapshot, 'evictions' | 'fastReads' | 'fastWrites' | 'slowOps'>;

export class NodeAgentsSource extends ClusterEventLog implements ClusterSource {
  readonly #agents: readonly NodeAgentApi[];
  readonly #counters = new Map<string, Counters>();
  readonly #now: () => number;

  constructor(agents: readonly NodeAgentApi[], options: { readonly keepActivations?: number; readonly now?: () => number } = {}) {
    super(options.keepActivations);
    this.#agents = agents;
    this.#now = options.now ?? Date.now;
  }

  /** Adds one run's daemon counters (RunReply.ephemera.stats) to its container's sums. */
  recordRun(containerId: string, stats: RunStats): void {
    const c = this.#counters.get(containerId) ?? { evictions: 0, fastReads: 0, fastWrites: 0, slowOps: 0 };
    this.#counters.set(containerId, {
      evictions: c.evictions + stats.evictions,
      fastReads: c.fastReads + stats.fast_reads,
      fastWrites: c.fastWrites + stats.fast_writes,
      slowOps: c.slowOps + stats.slow_ops,
    });
  }

  /**
   * Every agent's node figures and containers.
   * @throws {EphemeraError} `EPH_VIEW_SOURCE` naming the agent that failed
   */
  async snapshot(): Promise<ClusterSnapshot> {
    const at = this.#now();
    const answers = await Promise.all(
      this.#agents.map(async (agent, i) => {
        try {
          return await Promise.all([agent.node(), agent.listContainers()]);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          throw new EphemeraError('EPH_VIEW_SOURCE', `node agent ${i + 1} of ${this.#agents.length} did not answer: ${why}`, { cause: err });
        }
      }),
    );
    const nodes: NodeSnapshot[] = [];
    const containers: ContainerSnapshot[] = [];
    const live = new Set<string>();
    for (const [info, list] of answers) {
      nodes.push({ name: info.node, sharing: info.sharing !== 'none', memory: info.memory, tenants: info.tenants });
      for (const c of list) {
        live.add(c.id);
        containers.push({
          id: c.id,
          node: info.node,
          tenant: c.tenant,
          action: c.function,
          pool: c.pool,
          initial: c.initialBytes,
          granted: c.grantedBytes,
          usage: c.usageBytes,
          fileBytes: c.fileBytesInMemory,
          files: c.filesInMemory,
          ...(this.#counters.get(c.id) ?? { evictions: 0, fastReads: 0, fastWrites: 0, slowOps: 0 }),
          lent: c.lentTo.map((l) => ({ partner: l.id, bytes: l.bytes })),
          borrowed: c.borrowedFrom.map((l) => ({ partner: l.id, bytes: l.bytes })),
        });
      }
    }
    for (const id of this.#counters.keys()) if (!live.has(id)) this.#counters.delete(id);
    return { at, nodes, containers };
  }
}
