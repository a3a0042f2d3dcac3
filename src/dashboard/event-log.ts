/**
 * The event half of a {@link ClusterSource}: subscribers, and the recent activations kept for
 * pages that connect later. Shared by the in-memory source and the node agents' adapter.
 */
import type { ActivationSummary, ClusterEvent, Unsubscribe } from './source.js';

export class ClusterEventLog {
  /** Newest last. */
  readonly #activations: ActivationSummary[] = [];
  readonly #listeners = new Set<(event: ClusterEvent) => void>();
  readonly #keepActivations: number;

  /** @param keepActivations how many finished activations to keep @default 10000 */
  constructor(keepActivations = 10_000) {
    this.#keepActivations = keepActivations;
  }

  /** Records what happened and tells the subscribers; an activation is also kept for {@link recentActivations}. */
  emit(event: ClusterEvent): void {
    if (event.type === 'activation') {
      this.#activations.push(event.activation);
      if (this.#activations.length > this.#keepActivations) this.#activations.shift();
    }
    for (const l of this.#listeners) l(event);
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
