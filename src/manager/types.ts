/**
 * The Tenant Manager's vocabulary: what the node agent tells a Manager (events), what a Manager
 * answers (moves), and what it shows (snapshots). This file is the contract between the pure core
 * (src/manager/core.ts), its OS-process shell (src/manager/process.ts) and the node agent
 * (src/node/), which executes the moves. It holds types only.
 *
 * One Manager serves exactly one tenant on one node (§3.3 of the paper). Every container it knows
 * belongs to that tenant; a move never names another tenant's container.
 */

export type Bytes = number;

/**
 * Which containers may lend to which (Fig. 15): `none` never moves memory; `function` only between
 * instances of the same function; `workflow` only between containers of the same workflow (a
 * container without a workflow shares with nobody); `tenant` between any two of the tenant's
 * containers (the paper's choice).
 */
export type SharingScope = 'none' | 'function' | 'workflow' | 'tenant';

/** The container pools of §3.3.2. */
export type PoolName = 'harvest' | 'allocation' | 'self-sufficient';

/**
 * What a function used: its own peak memory without file pages, and its peak file bytes (in memory
 * and on disk). `T_mem = ownPeakBytes + filePeakBytes`; files are never counted twice.
 */
export interface Usage {
  readonly ownPeakBytes: Bytes;
  readonly filePeakBytes: Bytes;
}

/** A container as the node agent registers it (also what its Docker labels carry). */
export interface ContainerInfo {
  readonly id: string;
  readonly tenant: string;
  readonly fn: string;
  readonly workflow?: string;
  /** T_lim: the memory limit the container was created with. */
  readonly initialQuota: Bytes;
  /** The profile (from the API, a file, or later the Controller's profiler); absent: self-sufficient until it has run once. */
  readonly profile?: Usage;
}

/**
 * Why a move happens:
 * - `lend`: a donor gives spare memory to a recipient that is starting or running;
 * - `return`: a recipient gives borrowed memory back (its invocation ended, or it is forgotten);
 * - `reclaim`: a donor takes its memory back (its invocation ended under the paper's rules, its
 *   next invocation starts, or it is forgotten);
 * - `safeguard`: a container that ran short takes back what it lent (§3.3.3); what it is granted
 *   beyond that from other donors is an ordinary `lend`;
 * - `restore`: recovery after a crash puts every container back at its initial quota.
 */
export type MoveReason = 'lend' | 'return' | 'reclaim' | 'safeguard' | 'restore';

/**
 * One memory move between two containers of the tenant, to be carried out in the safe order:
 * (1) tell `from`'s daemon to shrink by `bytes` and wait for its ack, (2) lower `from`'s limit by
 * `bytes`, (3) raise `to`'s limit by `bytes`, (4) tell `to`'s daemon to grow.
 *
 * `from` and `to` are both set, except in moves with reason `restore` from {@link Manager.recover}:
 * there `from === null` means only raise `to` (the bytes left a giver whose receiver was never
 * raised: a crash between steps 2 and 3), and `to === null` means only lower `from` (its limit is
 * above its initial quota and nobody is short: someone changed a limit behind the Manager's back).
 *
 * A shell executes a batch of moves in order, one at a time. If one fails it must leave both limits
 * as they were before that move (raise the giver back if step 3 failed), skip the rest of the
 * batch, and report a `move-failed` event for the failed move and for each skipped one (in reverse
 * order), so that the model forgets them.
 */
export type Move = Transfer | Restore;

export interface Transfer {
  /** Increases by one per move over the Manager's life; a shell may use it to spot gaps. */
  readonly seq: number;
  readonly from: string;
  readonly to: string;
  /** Always > 0. */
  readonly bytes: Bytes;
  readonly reason: 'lend' | 'return' | 'reclaim' | 'safeguard';
}

export interface Restore {
  readonly seq: number;
  readonly from: string | null;
  readonly to: string | null;
  readonly bytes: Bytes;
  readonly reason: 'restore';
}

/** What the node agent tells a Manager. Events about an id the Manager does not know are errors. */
export type ManagerEvent =
  | { readonly kind: 'register'; readonly container: ContainerInfo }
  | { readonly kind: 'forget'; readonly id: string }
  | { readonly kind: 'invocation-start'; readonly id: string; readonly estimate?: Usage }
  | { readonly kind: 'invocation-end'; readonly id: string; readonly used: Usage }
  /** From the container's daemon (its shortfall message), or cgroup memory pressure. */
  | { readonly kind: 'shortfall'; readonly id: string; readonly neededBytes: Bytes }
  /** The shell could not carry a move out (and left both limits as they were): undo it in the model. */
  | { readonly kind: 'move-failed'; readonly move: Move; readonly reason: string };

export type ManagerEventKind = ManagerEvent['kind'];

export interface ManagerConfig {
  readonly tenant: string;
  readonly sharing: SharingScope;
  /** A container is a donor (harvest pool) when T_mem < T_lim - harvestThresholdBytes. */
  readonly harvestThresholdBytes: Bytes;
  /** A donor keeps T_mem + donorMarginBytes (and never less than engineMinimumBytes). */
  readonly donorMarginBytes: Bytes;
  /** The smallest limit the container engine accepts (Docker: 6 MiB). */
  readonly engineMinimumBytes: Bytes;
  /**
   * Beyond the paper: an idle warm donor keeps lending until its next invocation, and takes its
   * memory back before that invocation starts. When false (the paper), a donor lends only while it
   * runs and reclaims at its invocation end.
   */
  readonly lendWhileIdle: boolean;
}

/** One lending relation, seen from one side: the partner's id and the bytes between them. */
export interface Partner {
  readonly id: string;
  readonly bytes: Bytes;
}

/** A container-pool entry (§3.3.2), plus what the Manager derives from it. */
export interface PoolEntry {
  readonly id: string;
  readonly fn: string;
  readonly workflow?: string;
  readonly pool: PoolName;
  readonly initialQuota: Bytes;
  /** The function's own peak memory without file pages (from the profile, then from its last invocation). */
  readonly peakMemory: Bytes;
  /** Its peak file bytes (memory + disk). */
  readonly maxFileSize: Bytes;
  /** The limit the Manager has granted: initialQuota - lent + borrowed. */
  readonly adjustedQuota: Bytes;
  /** The least limit this container keeps while it lends: max(T_mem + margin, engine minimum), capped at its quota. */
  readonly floor: Bytes;
  /** The limit it wants for its current (or next) invocation: T_mem, or more after a shortfall. */
  readonly wantedBytes: Bytes;
  /** Whether a profile or a finished invocation told the Manager its usage (unprofiled: self-sufficient). */
  readonly profiled: boolean;
  /** Containers this one lent to, with amounts (a donor's list in §3.3.2). */
  readonly lentTo: readonly Partner[];
  /** Containers this one borrowed from, with amounts (a recipient's list in §3.3.2). */
  readonly borrowedFrom: readonly Partner[];
  /** False from a shortfall until its invocation ends: nobody takes memory from it. */
  readonly reclaimable: boolean;
  readonly running: boolean;
  /** The `now` of the invocation-start event while running, else null. */
  readonly runningSince: number | null;
}

export interface TenantTotals {
  readonly containers: number;
  readonly running: number;
  /** Sum of initial quotas. */
  readonly initialQuotaBytes: Bytes;
  /** Sum of granted limits; equals initialQuotaBytes once every move returned so far is carried out. */
  readonly limitBytes: Bytes;
  /** Bytes currently on loan between the tenant's containers. */
  readonly lentBytes: Bytes;
  /** What the allocation-pool containers still miss (sum of T_mem - adjusted quota, where positive). */
  readonly unmetBytes: Bytes;
}

export interface ManagerSnapshot {
  readonly tenant: string;
  readonly sharing: SharingScope;
  readonly lendWhileIdle: boolean;
  /** Sorted by id. */
  readonly containers: readonly PoolEntry[];
  readonly totals: TenantTotals;
}

/** A container as found after a crash: its labels and its live cgroup limit. */
export interface LiveContainer {
  readonly info: ContainerInfo;
  readonly limitBytes: Bytes;
}

/**
 * One container's place in its tenant's pool, as a snapshot would show it: what the node agent
 * needs after each invocation to decide how the next one starts, without a whole snapshot.
 */
export interface ContainerStanding {
  readonly pool: PoolName;
  /** It lends to at least one container. */
  readonly lends: boolean;
  /** It borrows from at least one container. */
  readonly borrows: boolean;
  /** Whether this tenant's idle containers lend (the Manager's setting). */
  readonly lendWhileIdle: boolean;
}

/** The pure core's face: no I/O, time passed in. */
export interface Manager {
  /**
   * Applies one event to the model and returns the moves it decided, in the order to carry them
   * out. The model assumes they will succeed; a failure comes back as a `move-failed` event.
   *
   * The caller serializes per tenant: it carries out a batch (and reports its failures, last move
   * first) before it sends the next event. Every event re-runs both phases, so whatever a failed
   * move left undone is repaired by the next event. `forget` comes before the container is removed:
   * the shell carries out the returned moves (which return what it borrowed and take back what it
   * lent), then removes it; for such a move, a side on the forgotten container that can no longer be
   * carried out counts as done, and the other side is carried out regardless.
   * @throws EphemeraError `EPH_MANAGER_EVENT` for an event that does not fit the state (unknown id,
   *   second registration, another tenant's container, negative sizes).
   */
  apply(event: ManagerEvent, now: number): readonly Move[];
  snapshot(): ManagerSnapshot;
  /** The container's standing now (as {@link snapshot} shows it), or undefined for one it does not hold. */
  standing(id: string): ContainerStanding | undefined;
  /**
   * Whether the tenant is quiet: no running container wants more than its limit and no failed move
   * is waiting to be repaired. Then the invocation-start of a container that has no loans either way
   * and whose estimate fits its limit decides no move (nothing needs memory, and it lends to no one).
   */
  quiet(): boolean;
  /**
   * Rebuilds the model after a crash from the tenant's live containers, forgetting everything
   * before, and returns the moves that bring every container back to its initial quota in the safe
   * order (lowering moves before raising ones; no lending). Afterwards the model holds those
   * containers, idle, each at its initial quota.
   * @throws EphemeraError `EPH_MANAGER_EVENT` for another tenant's container or a repeated id.
   */
  recover(live: readonly LiveContainer[]): readonly Move[];
}
