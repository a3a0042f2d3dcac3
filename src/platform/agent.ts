/**
 * What the invoker needs from a node: the seam between the platform and the node agent
 * (`ephemera node`), which alone creates containers and writes their limits. The platform defines
 * it; node-adapter.ts implements it over the node agent's own client, and tests may fake it.
 */
import type { RunStats } from '../node/api.js';

export interface ContainerSpec {
  /** The tenant (OpenWhisk namespace): the Manager pools its containers' memory. */
  readonly tenant: string;
  /** The action, `namespace/name`. */
  readonly function: string;
  /** The enclosing sequence, for a sequence's components. */
  readonly workflow?: string;
  /** A blackbox action's image; the node's Python runtime image otherwise. */
  readonly image?: string;
  readonly memoryBytes: number;
  /** CPU time the container may use, in CPUs (Docker's NanoCpus); absent: no cap. */
  readonly cpus?: number;
  readonly profile?: { readonly ownPeakBytes: number; readonly filePeakBytes: number };
}

/** OpenWhisk's /init `value`. */
export interface InitValue {
  readonly name: string;
  readonly main: string;
  readonly code: string;
  readonly binary: boolean;
  readonly env: Readonly<Record<string, string>>;
}

/** OpenWhisk's /run request, plus the bound the node enforces. */
export interface RunRequest {
  readonly value: Readonly<Record<string, unknown>>;
  readonly namespace: string;
  readonly action_name: string;
  readonly action_version: string;
  readonly activation_id: string;
  readonly transaction_id: string;
  /** Epoch milliseconds, as a string (OpenWhisk's `__OW_DEADLINE`). */
  readonly deadline: string;
  readonly timeoutMs: number;
}

/** A run's counters, as the node agent's API reports them (one definition, the wire's). */
export type { RunStats };

export interface RunResult {
  readonly statusCode: number;
  readonly body: unknown;
  readonly logs: readonly string[];
  readonly durationMs: number;
  readonly ephemera?: {
    readonly pool: string;
    readonly initialBytes: number;
    readonly grantedBytes: number;
    readonly node: string;
    readonly stats: RunStats;
  };
  readonly timedOut?: boolean;
  readonly oom?: boolean;
}

export interface MemoryLoad {
  readonly limit: number;
  readonly allocated: number;
  readonly requested: number;
}

export interface NodeLoad {
  readonly node: string;
  readonly memory: MemoryLoad;
  /** The same figures per tenant (Algorithm 1's score uses the invoking tenant's). */
  readonly tenants?: Readonly<Record<string, MemoryLoad>>;
}

export interface NodeAgent {
  /** A stable name for logs and records. */
  readonly name: string;
  create(spec: ContainerSpec): Promise<{ readonly id: string }>;
  init(id: string, value: InitValue): Promise<{ readonly statusCode: number; readonly body: unknown }>;
  run(id: string, request: RunRequest): Promise<RunResult>;
  remove(id: string): Promise<void>;
  state(): Promise<NodeLoad>;
}

export interface Placement {
  /** Unique per container creation (the activation that causes it): the scheduler's reservation id. */
  readonly id: string;
  readonly tenant: string;
  readonly function: string;
  /** The sequence a component's container is created for. */
  readonly workflow?: string;
  readonly memoryBytes: number;
  readonly profile?: { readonly ownPeakBytes: number; readonly filePeakBytes: number };
  /**
   * `T_mem` for the scheduler when it differs from the profile's sum: the input-sensitive estimate
   * for this invocation's input. Absent: the profile's `ownPeakBytes + filePeakBytes`, else the limit.
   */
  readonly taskMem?: number;
  /**
   * Bytes of containers being created on each node (by name) right now: a node's own figures do
   * not count them yet, and concurrent cold starts would otherwise all pick the same node.
   */
  readonly pending: ReadonlyMap<string, number>;
  /**
   * Called when no node has room and the placement waits: the invoker then removes idle warm
   * containers, whose memory the nodes still count, so that the wait ends.
   */
  readonly reclaim?: () => void;
}

/**
 * Picks the node for a new container. The scheduler (`--scheduler ephemera|most-free`) plugs in
 * here; with one node there is nothing to choose.
 */
export interface NodeSelector {
  readonly name: string;
  /**
   * True when `select` reserves the memory itself (the scheduler): the invoker then neither runs
   * selections one at a time nor counts pending bytes, and tells it about the container's life.
   */
  readonly reserves?: boolean;
  /** The longest `select` may wait for room (the invoker's bound on it is a little longer). */
  readonly maxWaitMs?: number;
  select(nodes: readonly NodeAgent[], placement: Placement): Promise<NodeAgent>;
  /** The container of placement `id` now exists on `node`. */
  created?(id: string, node: NodeAgent): void;
  /** The container of placement `id` is gone (removed, or its creation failed). */
  released?(id: string, node: NodeAgent): void;
  /** How many placements wait for room now (an idle container is then removed, not kept warm). */
  waiting?(): number;
  /** Stops background work (report polling, timers); pending selections fail. */
  close?(): void;
}
