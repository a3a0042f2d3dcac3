/**
 * A {@link ClusterSource} over state held in memory: the scripted cluster of the tests and the
 * in-memory models of the benchmarks (1000 containers are more than two cores can run).
 */
import { ClusterEventLog } from './event-log.js';
import type { ClusterSnapshot, ClusterSource, ContainerSnapshot, NodeSnapshot } from './source.js';

export class MemoryClusterSource extends ClusterEventLog implements ClusterSource {
  #nodes: readonly NodeSnapshot[] = [];
  #containers: readonly ContainerSnapshot[] = [];
  readonly #now: () => number;

  constructor(options: { readonly keepActivations?: number; readonly now?: () => number } = {}) {
    super(options.keepActivations);
    this.#now = options.now ?? Date.now;
  }

  /** Replaces the state the next snapshot shows. */
  setState(nodes: readonly NodeSnapshot[], containers: readonly ContainerSnapshot[]): void {
    this.#nodes = nodes;
    this.#containers = containers;
  }

  snapshot(): Promise<ClusterSnapshot> {
    return Promise.resolve({ at: this.#now(), nodes: this.#nodes, containers: this.#containers });
  }
}
