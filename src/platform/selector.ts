/**
 * The simple node selector: the node with the most memory not yet allocated, read from each node
 * at every selection. `ephemera up` selects through the scheduler instead (scheduled-selector.ts,
 * both policies); this one serves the route and invoker tests, which run one fake node.
 */
import type { NodeAgent, NodeSelector, Placement } from './agent.js';

export const SCHEDULERS = ['ephemera', 'most-free'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

export class MostFreeSelector implements NodeSelector {
  constructor(readonly name: string = 'most-free') {}

  async select(nodes: readonly NodeAgent[], placement: Placement): Promise<NodeAgent> {
    const only = nodes.length === 1 ? nodes[0] : undefined;
    if (only !== undefined) return only;
    if (nodes.length === 0) throw new Error('there is no node agent to place the container on');
    const loads = await Promise.all(nodes.map(async (n) => ({ n, load: await n.state() })));
    const free = (x: (typeof loads)[number]): number => x.load.memory.limit - x.load.memory.allocated - (placement.pending.get(x.n.name) ?? 0);
    loads.sort((a, b) => free(b) - free(a));
    const best = loads[0];
    if (best === undefined) throw new Error('no node answered');
    return best.n;
  }
}
