/**
 * Algorithm 1 of the paper (Workload Balance Allocation) as plain linear scans, and the baseline.
 *
 * These are the reference the O(log n) scheduler (`scheduler.ts`) must agree with, decision for
 * decision, and what the benchmark times as "the paper's linear scan". All figures are whole bytes.
 *
 * The reading we use (docs/ARCHITECTURE.md, "Scheduler", says why):
 * - filter: `N_alloc + T_lim ≤ N_lim` with the node-wide figures (the printed `N_lim ≤ N_alloc +
 *   T_lim` keeps exactly the nodes where the task does not fit);
 * - score: `−|N_req + T_mem − N_alloc − T_lim|` with the invoking tenant's figures on the node
 *   (the printed score has no absolute value, and then prefers the node that wastes the most);
 * - ties: the node registered first (lowest ordinal) wins, in both the scan and the tree.
 */
import { EphemeraError } from '../core/errors.js';

/** What the profiler knows of a task: `T_lim`, the container's memory limit, and `T_mem`, the most it may use (own memory plus files). */
export interface TaskProfile {
  /** `T_lim`, bytes. */
  readonly limit: number;
  /** `T_mem`, bytes. */
  readonly mem: number;
}

/** Memory given to (`alloc`, the sum of limits) and needed by (`req`, the sum of `T_mem`) some tasks, bytes. */
export interface Figures {
  readonly alloc: number;
  readonly req: number;
}

/** A node as one decision sees it: node-wide figures for the filter, the tenant's for the score. */
export interface NodeView {
  readonly name: string;
  /** Registration order; the lower wins a tie. */
  readonly ordinal: number;
  /** `N_lim`: memory the node offers to tasks, bytes. */
  readonly lim: number;
  /** Node-wide `N_alloc` and `N_req`. */
  readonly node: Figures;
  /** The invoking tenant's `N_alloc` and `N_req` on this node (zero when it has nothing there). */
  readonly tenant: Figures;
}

/** The policies `ephemera up --scheduler` accepts. */
export const SCHEDULER_POLICIES = ['ephemera', 'most-free'] as const;
export type SchedulerPolicy = (typeof SCHEDULER_POLICIES)[number];

export function isSchedulerPolicy(name: string): name is SchedulerPolicy {
  return (SCHEDULER_POLICIES as readonly string[]).includes(name);
}

/**
 * The policy named `name` (e.g. the value of `--scheduler`).
 * @throws {EphemeraError} `EPH_SCHED_UNKNOWN_POLICY` for any other name
 */
export function parseSchedulerPolicy(name: string, what = '--scheduler'): SchedulerPolicy {
  if (isSchedulerPolicy(name)) return name;
  throw new EphemeraError('EPH_SCHED_UNKNOWN_POLICY', `${what}: unknown scheduler policy ${JSON.stringify(name)}; choose ${SCHEDULER_POLICIES.join(' or ')}`);
}

/** Free memory on the node, node-wide: `N_lim − N_alloc`. */
export const freeOf = (lim: number, node: Figures): number => lim - node.alloc;

/** The intended filter: the task's limit fits in what the node has not given out. */
export const fits = (v: NodeView, task: TaskProfile): boolean => v.node.alloc + task.limit <= v.lim;

/**
 * The tenant's gap on a node, `N_alloc − N_req`: how much more its tasks there were given than they
 * need. The score is `−|gap − (T_mem − T_lim)|`, so the best node is the one whose gap is closest to
 * the task's own shortfall `T_mem − T_lim`, which it would then close.
 */
export const gapOf = (tenant: Figures): number => tenant.alloc - tenant.req;

/** The intended score: `−|N_req + T_mem − N_alloc − T_lim|` (tenant figures). */
export const score = (v: NodeView, task: TaskProfile): number => -Math.abs(v.tenant.req + task.mem - v.tenant.alloc - task.limit);

/** How to read Algorithm 1: the intended reading, or line by line as printed (for the docs' Table 4 check). */
export interface Reading {
  readonly filter: 'intended' | 'printed';
  readonly score: 'absolute' | 'printed';
}

export const INTENDED: Reading = { filter: 'intended', score: 'absolute' };

/**
 * Algorithm 1 as a linear scan over `nodes` in ordinal order: the best score wins, the first of
 * equal scores wins. Returns the chosen node's index in `nodes`, or -1 when no node passes the filter.
 */
export function algorithm1(nodes: readonly NodeView[], task: TaskProfile, reading: Reading = INTENDED): number {
  let best = -1;
  let bestScore = -Infinity;
  let bestOrdinal = Infinity;
  for (let i = 0; i < nodes.length; i++) {
    const v = nodes[i];
    if (v === undefined) continue;
    const pass = reading.filter === 'intended' ? fits(v, task) : v.lim <= v.node.alloc + task.limit;
    if (!pass) continue;
    const s = reading.score === 'absolute' ? score(v, task) : -(v.tenant.req + task.mem - v.tenant.alloc - task.limit);
    if (s > bestScore || (s === bestScore && v.ordinal < bestOrdinal)) {
      best = i;
      bestScore = s;
      bestOrdinal = v.ordinal;
    }
  }
  return best;
}

/** The paper's baseline as a linear scan: the node with the most free memory (node-wide) on which the task fits; first ordinal on ties. */
export function mostFree(nodes: readonly NodeView[], task: TaskProfile): number {
  let best = -1;
  let bestFree = -Infinity;
  let bestOrdinal = Infinity;
  for (let i = 0; i < nodes.length; i++) {
    const v = nodes[i];
    if (v === undefined || !fits(v, task)) continue;
    const f = freeOf(v.lim, v.node);
    if (f > bestFree || (f === bestFree && v.ordinal < bestOrdinal)) {
      best = i;
      bestFree = f;
      bestOrdinal = v.ordinal;
    }
  }
  return best;
}

/** The linear scan of the named policy. */
export function linearDecision(policy: SchedulerPolicy, nodes: readonly NodeView[], task: TaskProfile): number {
  return policy === 'ephemera' ? algorithm1(nodes, task) : mostFree(nodes, task);
}
