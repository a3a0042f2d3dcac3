/**
 * A {@link ClusterSource} over state held in memory: the scripted cluster of the tests and the
 * in-memory models of the benchmarks (1000 containers are more than two cores can run), and the
 * source until the controller feeds the views from its node agents.
 */
import type { ActivationSummary, ClusterEvent, ClusterSnapshot, ClusterSource, ContainerSnapshot, NodeSnapshot, Unsubscribe } from './source.js';

export class MemoryClusterSource implements ClusterSource {
  #nodes: readonly NodeSnapshot[] = [];
  #containers: readonly ContainerSnapshot[] = [];
  /** Newest last. */
  readonly #activations: ActivationSummary[] = [];
  readonly #listeners = new Set<(event: ClusterEvent) => void>();
  readonly #keepActivations: number;
  readonly #now: () => number;

  constructor(options: { readonly keepActivations?: number; readonly now?: () => number } = {}) {
    this.#keepActivations = options.keepActivations ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Replaces the state the next snapshot shows. */
  setState(nodes: readonly NodeSnapshot[], containers: readonly ContainerSnapshot[]): void {
    this.#nodes = nodes;
    this.#containers = containers;
  }

  /** Records what happened and tells the subscribers; an activation is also kept for {@link recentActivations}. */
  emit(event: ClusterEvent): void {
    if (event.type === 'activation') {
      this.#activations.push(event.activation);
      if (this.#activations.length > this.#keepActivations) this.#activations.shift();
    }
    for (const l of this.#listeners) l(event);
  }

  snapshot(): Promise<ClusterSnapshot> {
    return Promise.resolve({ at: this.#now(), nodes: this.#nodes, containers: this.#containers });
  }

  recentActivations(limit: number, tenant?: string): Promise<readonly ActivationSummary[]> {
    const out: ActivationSummary[] = [];
    for (let i = this.#activations.length - 1; i >= 0 && out.length < limit; i--) {
      const a = this.#activations[i];
      if (a !== undefined && (tenant === undefined || a.tenant === tenant)) out.push(a);
    }
    return Promise.resolve(out);
  }

  subscribe(listener: (event: ClusterEvent) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get subscribers(): number {
    return this.#listeners.size;
  }
}
