/**
 * Ephemera's Prometheus metrics: collectors that read a {@link ClusterSource}.
 *
 * State (limits, usage, per-container counters) is read from one snapshot per scrape, so a
 * container that is gone from the snapshot is gone from the output: its series are removed with
 * it and the label set stays bounded by what runs now. Things that happen (moves, shortfalls,
 * OOM kills, scheduling decisions, activations) arrive on the event stream and are counted into
 * counters and histograms; their labels are nodes, tenants, actions and fixed enums, never ids.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { ClusterEvent, ClusterSnapshot, ClusterSource, Unsubscribe } from './source.js';

const NODE = ['node'] as const;
const TENANT = ['node', 'tenant'] as const;
const CONTAINER = ['node', 'tenant', 'action', 'container'] as const;

/** Seconds; a move is a cgroup write (~15 µs) or a Docker update (~12 ms) plus the daemon's shrink. */
const MOVE_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds; the paper's decision takes ~0.4 ms at 1000 nodes. */
const DECISION_BUCKETS = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05];
/** Seconds; OpenWhisk's default timeout is 60 s. */
const ACTIVATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type ContainerField = 'initial' | 'granted' | 'usage' | 'fileBytes' | 'files' | 'lent' | 'borrowed';
type ContainerCounterField = 'evictions' | 'fastReads' | 'fastWrites' | 'slowOps';

export class ClusterMetrics {
  /** The registry to expose; pass the controller's own to add these to its other metrics. */
  readonly registry: Registry;
  readonly #source: ClusterSource;
  readonly #unsubscribe: Unsubscribe;
  #refreshing: Promise<void> | undefined;

  readonly #nodeGauges: ReadonlyArray<readonly [Gauge<'node'>, 'limit' | 'allocated' | 'requested']>;
  readonly #tenantGauges: ReadonlyArray<readonly [Gauge<'node' | 'tenant'>, 'limit' | 'allocated' | 'requested']>;
  readonly #poolInfo: Gauge<'node' | 'tenant' | 'action' | 'container' | 'pool'>;
  readonly #containerGauges: ReadonlyArray<readonly [Gauge<(typeof CONTAINER)[number]>, ContainerField]>;
  readonly #containerCounters: ReadonlyArray<readonly [Counter<(typeof CONTAINER)[number]>, ContainerCounterField]>;

  readonly #moves: Counter<'node' | 'tenant' | 'reason'>;
  readonly #movedBytes: Counter<'node' | 'tenant' | 'reason'>;
  readonly #moveDuration: Histogram<'node' | 'reason'>;
  readonly #shortfalls: Counter<'node' | 'tenant'>;
  readonly #shortfallBytes: Counter<'node' | 'tenant'>;
  readonly #safeguards: Counter<'node' | 'tenant'>;
  readonly #oomKills: Counter<'node' | 'tenant'>;
  readonly #decisions: Counter<'policy' | 'outcome'>;
  readonly #decisionDuration: Histogram<'policy'>;
  readonly #activations: Counter<'tenant' | 'action' | 'status'>;
  readonly #activationDuration: Histogram<'tenant' | 'action'>;

  constructor(source: ClusterSource, registry: Registry = new Registry()) {
    this.#source = source;
    this.registry = registry;
    const registers = [registry];
    const refresh = (): Promise<void> => this.#refresh();
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> =>
      new Gauge({ name, help, labelNames, registers, collect: refresh });
    const stateCounter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
      new Counter({ name, help, labelNames, registers, collect: refresh });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
      new Counter({ name, help, labelNames, registers });
    const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> =>
      new Histogram({ name, help, labelNames, buckets, registers });

    this.#nodeGauges = [
      [gauge('ephemera_node_memory_limit_bytes', 'N_lim: memory the node may hand out to containers', NODE), 'limit'],
      [gauge('ephemera_node_memory_allocated_bytes', 'N_alloc: sum of the limits granted on the node', NODE), 'allocated'],
      [gauge('ephemera_node_memory_requested_bytes', "N_req: sum of the functions' initial quotas on the node", NODE), 'requested'],
    ];
    this.#tenantGauges = [
      [gauge('ephemera_tenant_memory_limit_bytes', "memory the tenant's Manager may hand out on the node", TENANT), 'limit'],
      [gauge('ephemera_tenant_memory_allocated_bytes', "sum of the limits granted to the tenant's containers on the node", TENANT), 'allocated'],
      [gauge('ephemera_tenant_memory_requested_bytes', "sum of the tenant's initial quotas on the node", TENANT), 'requested'],
    ];
    this.#poolInfo = gauge('ephemera_container_pool_info', "the container's pool (harvest, allocation, self-sufficient); value 1", [...CONTAINER, 'pool']);
    this.#containerGauges = [
      [gauge('ephemera_container_initial_quota_bytes', 'the memory quota the function asked for at creation', CONTAINER), 'initial'],
      [gauge('ephemera_container_limit_bytes', 'the memory limit the Manager currently grants', CONTAINER), 'granted'],
      [gauge('ephemera_container_memory_usage_bytes', "the container cgroup's memory usage", CONTAINER), 'usage'],
      [gauge('ephemera_container_file_memory_bytes', "bytes of the function's files held in memory", CONTAINER), 'fileBytes'],
      [gauge('ephemera_container_files_in_memory', 'number of files held in memory', CONTAINER), 'files'],
      [gauge('ephemera_container_lent_bytes', 'memory this container currently lends to others of its tenant', CONTAINER), 'lent'],
      [gauge('ephemera_container_borrowed_bytes', 'memory this container currently borrows from others of its tenant', CONTAINER), 'borrowed'],
    ];
    this.#containerCounters = [
      [stateCounter('ephemera_container_evictions_total', 'files moved from memory to disk', CONTAINER), 'evictions'],
      [stateCounter('ephemera_container_fast_reads_total', 'reads served from memory without a syscall', CONTAINER), 'fastReads'],
      [stateCounter('ephemera_container_fast_writes_total', 'writes served from memory without a syscall', CONTAINER), 'fastWrites'],
      [stateCounter('ephemera_container_slow_ops_total', 'file operations that went to the kernel', CONTAINER), 'slowOps'],
    ];

    this.#moves = counter('ephemera_manager_moves_total', 'memory moves between containers of a tenant', ['node', 'tenant', 'reason']);
    this.#movedBytes = counter('ephemera_manager_moved_bytes_total', 'bytes moved between containers of a tenant', ['node', 'tenant', 'reason']);
    this.#moveDuration = histogram('ephemera_manager_move_duration_seconds', 'time to apply one move (shrink, then grow)', ['node', 'reason'], MOVE_BUCKETS);
    this.#shortfalls = counter('ephemera_manager_shortfalls_total', "shortfalls reported by containers' daemons", ['node', 'tenant']);
    this.#shortfallBytes = counter('ephemera_manager_shortfall_bytes_total', 'bytes missing in reported shortfalls', ['node', 'tenant']);
    this.#safeguards = counter('ephemera_manager_safeguard_reclaims_total', 'loans taken back by the safeguard', ['node', 'tenant']);
    this.#oomKills = counter('ephemera_oom_kills_total', 'containers killed by the kernel OOM killer', ['node', 'tenant']);
    this.#decisions = counter('ephemera_scheduler_decisions_total', 'placement decisions by outcome', ['policy', 'outcome']);
    this.#decisionDuration = histogram('ephemera_scheduler_decision_duration_seconds', 'time to take one placement decision', ['policy'], DECISION_BUCKETS);
    this.#activations = counter('ephemera_activations_total', 'finished activations by status', ['tenant', 'action', 'status']);
    this.#activationDuration = histogram('ephemera_activation_duration_seconds', 'activation duration (start to end)', ['tenant', 'action'], ACTIVATION_BUCKETS);

    this.#unsubscribe = source.subscribe((event) => {
      this.#count(event);
    });
  }

  /** Stops counting events (the registry keeps what it has). */
  close(): void {
    this.#unsubscribe();
  }

  #count(event: ClusterEvent): void {
    switch (event.type) {
      case 'move': {
        const labels = { node: event.node, tenant: event.tenant, reason: event.reason };
        this.#moves.inc(labels);
        this.#movedBytes.inc(labels, event.bytes);
        this.#moveDuration.observe({ node: event.node, reason: event.reason }, event.durationSeconds);
        if (event.reason === 'safeguard') this.#safeguards.inc({ node: event.node, tenant: event.tenant });
        return;
      }
      case 'shortfall':
        this.#shortfalls.inc({ node: event.node, tenant: event.tenant });
        this.#shortfallBytes.inc({ node: event.node, tenant: event.tenant }, event.bytes);
        return;
      case 'oom-kill':
        this.#oomKills.inc({ node: event.node, tenant: event.tenant });
        return;
      case 'schedule':
        this.#decisions.inc({ policy: event.policy, outcome: event.outcome });
        this.#decisionDuration.observe({ policy: event.policy }, event.durationSeconds);
        return;
      case 'activation': {
        const a = event.activation;
        this.#activations.inc({ tenant: a.tenant, action: a.action, status: a.status });
        this.#activationDuration.observe({ tenant: a.tenant, action: a.action }, a.durationMs / 1000);
        return;
      }
    }
  }

  /** One snapshot per scrape: every state collector of a scrape waits on the same refresh. */
  #refresh(): Promise<void> {
    this.#refreshing ??= this.#source
      .snapshot()
      .then((snapshot) => {
        this.#apply(snapshot);
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  #apply(snapshot: ClusterSnapshot): void {
    for (const [g] of this.#nodeGauges) g.reset();
    for (const [g] of this.#tenantGauges) g.reset();
    for (const [g] of this.#containerGauges) g.reset();
    for (const [c] of this.#containerCounters) c.reset();
    this.#poolInfo.reset();
    for (const n of snapshot.nodes) {
      for (const [g, field] of this.#nodeGauges) g.set({ node: n.name }, n.memory[field]);
      for (const [tenant, totals] of Object.entries(n.tenants)) {
        for (const [g, field] of this.#tenantGauges) g.set({ node: n.name, tenant }, totals[field]);
      }
    }
    for (const c of snapshot.containers) {
      const labels = { node: c.node, tenant: c.tenant, action: c.action, container: c.id };
      this.#poolInfo.set({ ...labels, pool: c.pool }, 1);
      let lent = 0;
      for (const s of c.lent) lent += s.bytes;
      let borrowed = 0;
      for (const s of c.borrowed) borrowed += s.bytes;
      const values: Record<ContainerField, number> = {
        initial: c.initial,
        granted: c.granted,
        usage: c.usage,
        fileBytes: c.fileBytes,
        files: c.files,
        lent,
        borrowed,
      };
      for (const [g, field] of this.#containerGauges) g.set(labels, values[field]);
      for (const [counter, field] of this.#containerCounters) counter.inc(labels, c[field]);
    }
  }
}
