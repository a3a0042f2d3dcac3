/**
 * Node selection for new containers. `most-free` places a container on the node with the most
 * memory not yet allocated (the baseline the paper compares Algorithm 1 against). The `ephemera`
 * policy (Algorithm 1) belongs to the scheduler (src/scheduler/); until it is wired in, asking for
 * it selects by most-free memory and says so in the log.
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
