/**
 * What the operator's views read: the seam between the dashboard and the rest of the platform.
 *
 * The dashboard, `/metrics` and `ephemera status` are the users of these types, so they are
 * defined here and the platform adapts its node agents, Tenant Managers, scheduler and
 * activation store to them. Everything is plain data (JSON-safe), sizes are bytes, times are
 * epoch milliseconds unless the name says seconds.
 */

/** The pool a container sits in (paper §3.3.2). */
export type Pool = 'harvest' | 'allocation' | 'self-sufficient';
export const POOLS: readonly Pool[] = ['harvest', 'allocation', 'self-sufficient'];

/** The scheduler's three numbers for one node or one tenant on a node (Algorithm 1). */
export interface MemoryTotals {
  /** N_lim: memory the node (or the tenant on it) may hand out. */
  readonly limit: number;
  /** N_alloc: the sum of the limits currently granted. */
  readonly allocated: number;
  /** N_req: the sum of what the functions asked for (their initial quotas). */
  readonly requested: number;
}

export interface NodeSnapshot {
  readonly name: string;
  /** Whether the node lets a tenant's containers lend memory to each other. */
  readonly sharing: boolean;
  readonly memory: MemoryTotals;
  /** Per tenant on this node. */
  readonly tenants: Readonly<Record<string, MemoryTotals>>;
}

/** Memory one container has lent to, or borrowed from, one partner of the same tenant. */
export interface LoanShare {
  /** The partner container's id. */
  readonly partner: string;
  readonly bytes: number;
}

export interface ContainerSnapshot {
  readonly id: string;
  readonly node: string;
  readonly tenant: string;
  /** The action (function) the container runs. */
  readonly action: string;
  readonly pool: Pool;
  /** The quota the function asked for at creation. */
  readonly initial: number;
  /** The limit the Manager currently grants (initial − lent + borrowed). */
  readonly granted: number;
  /** The cgroup's memory usage. */
  readonly usage: number;
  /** Bytes of the function's files held in memory by its daemon. */
  readonly fileBytes: number;
  /** Number of files in memory. */
  readonly files: number;
  /** Cumulative counters since the container started. */
  readonly evictions: number;
  readonly fastReads: number;
  readonly fastWrites: number;
  /** File operations that went to the kernel (disk or pass-through). */
  readonly slowOps: number;
  readonly lent: readonly LoanShare[];
  readonly borrowed: readonly LoanShare[];
}

export interface ClusterSnapshot {
  /** When it was taken. */
  readonly at: number;
  readonly nodes: readonly NodeSnapshot[];
  readonly containers: readonly ContainerSnapshot[];
}

/** OpenWhisk's four activation outcomes (`response.status`). */
export type ActivationStatus = 'success' | 'application error' | 'action developer error' | 'whisk internal error';
export const ACTIVATION_STATUSES: readonly ActivationStatus[] = [
  'success',
  'application error',
  'action developer error',
  'whisk internal error',
];

/** One finished activation, as much of its record as the views show. */
export interface ActivationSummary {
  readonly activationId: string;
  readonly tenant: string;
  readonly action: string;
  readonly status: ActivationStatus;
  /** Epoch ms. */
  readonly start: number;
  readonly durationMs: number;
  /** The record's `ephemera` annotation (node, container, fast ops, file bytes...), if any. */
  readonly ephemera?: Readonly<Record<string, unknown>>;
}

export type MoveReason = 'lend' | 'return' | 'reclaim' | 'safeguard' | 'restore';
/** `restore`: a node agent's recovery giving loans back after a restart (one side is the node). */
export const MOVE_REASONS: readonly MoveReason[] = ['lend', 'return', 'reclaim', 'safeguard', 'restore'];

/** Something that happened, pushed as it happens (the snapshot shows only the state it left). */
export type ClusterEvent =
  | {
      readonly type: 'move';
      readonly node: string;
      readonly tenant: string;
      readonly seq: number;
      readonly from: string;
      readonly to: string;
      readonly bytes: number;
      readonly reason: MoveReason;
      readonly durationSeconds: number;
      readonly at: number;
    }
  | {
      readonly type: 'shortfall';
      readonly node: string;
      readonly tenant: string;
      readonly container: string;
      readonly bytes: number;
      readonly at: number;
    }
  | { readonly type: 'oom-kill'; readonly node: string; readonly tenant: string; readonly container: string; readonly at: number }
  | {
      readonly type: 'schedule';
      /** `placed` on a node, or `unschedulable` when no node fits. */
      readonly outcome: 'placed' | 'unschedulable';
      readonly policy: string;
      readonly durationSeconds: number;
      readonly at: number;
    }
  | { readonly type: 'activation'; readonly activation: ActivationSummary };

export type Unsubscribe = () => void;

/** Where the views read the cluster from. */
export interface ClusterSource {
  /** The state now: every node and container. */
  snapshot(): Promise<ClusterSnapshot>;
  /** Up to `limit` finished activations, newest first; only `tenant`'s when given. */
  recentActivations(limit: number, tenant?: string): Promise<readonly ActivationSummary[]>;
  /** Calls `listener` for every event from now on, until the returned function is called. */
  subscribe(listener: (event: ClusterEvent) => void): Unsubscribe;
}
