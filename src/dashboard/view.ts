/**
 * The dashboard's picture of the cluster, cut to what one principal may see (pure, no I/O).
 *
 * The server computes it and the browser and `ephemera status` only draw it, so the tree, the
 * loans and the per-action shares are worked out (and tested) once.
 */
import { maySee, type Principal } from './auth.js';
import type { ActivationSummary, ClusterSnapshot, ContainerSnapshot, MemoryTotals } from './source.js';

/** A container as the views show it: its loans summed (the loans themselves are in {@link DashboardView.loans}). */
export type ContainerView = Omit<ContainerSnapshot, 'lent' | 'borrowed'> & {
  readonly lentBytes: number;
  readonly borrowedBytes: number;
};

export interface TenantView {
  readonly tenant: string;
  /** The tenant's totals on this node, when the node reports them. */
  readonly memory: MemoryTotals | null;
  readonly containers: readonly ContainerView[];
}

export interface NodeView {
  readonly name: string;
  readonly sharing: boolean;
  /** The node's totals: admin only (they include other tenants). */
  readonly memory: MemoryTotals | null;
  readonly tenants: readonly TenantView[];
}

/** Memory one container currently lends another. */
export interface LoanView {
  readonly node: string;
  readonly tenant: string;
  readonly from: string;
  readonly to: string;
  readonly bytes: number;
}

/** What ephemera bought one action: file operations served from memory against the kernel. */
export interface ActionView {
  readonly tenant: string;
  readonly action: string;
  readonly containers: number;
  readonly fastOps: number;
  readonly slowOps: number;
  /** fastOps / (fastOps + slowOps), or null before the first operation. */
  readonly fastShare: number | null;
}

export interface DashboardView {
  readonly at: number;
  readonly viewer: Principal;
  readonly nodes: readonly NodeView[];
  readonly loans: readonly LoanView[];
  readonly actions: readonly ActionView[];
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function sumShares(shares: ContainerSnapshot['lent']): number {
  let total = 0;
  for (const s of shares) total += s.bytes;
  return total;
}

function containerView(c: ContainerSnapshot): ContainerView {
  const { lent, borrowed, ...rest } = c;
  return { ...rest, lentBytes: sumShares(lent), borrowedBytes: sumShares(borrowed) };
}

/** The snapshot as `viewer` may see it: a tenant sees only its own tenants' rows and no node totals. */
export function dashboardView(snapshot: ClusterSnapshot, viewer: Principal): DashboardView {
  const visible = snapshot.containers.filter((c) => maySee(viewer, c.tenant));
  const byNode = new Map<string, Map<string, ContainerSnapshot[]>>();
  for (const c of visible) {
    const tenants = byNode.get(c.node) ?? new Map<string, ContainerSnapshot[]>();
    byNode.set(c.node, tenants);
    const list = tenants.get(c.tenant) ?? [];
    tenants.set(c.tenant, list);
    list.push(c);
  }

  const nodes: NodeView[] = [];
  const seen = new Set<string>();
  const addNode = (name: string, sharing: boolean, memory: MemoryTotals | null, tenantTotals: Readonly<Record<string, MemoryTotals>>): void => {
    seen.add(name);
    const containersByTenant = byNode.get(name) ?? new Map<string, ContainerSnapshot[]>();
    const tenantNames = new Set([...Object.keys(tenantTotals).filter((t) => maySee(viewer, t)), ...containersByTenant.keys()]);
    const tenants = [...tenantNames].sort(byName).map((tenant) => ({
      tenant,
      memory: Object.hasOwn(tenantTotals, tenant) ? (tenantTotals[tenant] ?? null) : null,
      containers: (containersByTenant.get(tenant) ?? []).map(containerView).sort((a, b) => byName(a.id, b.id)),
    }));
    // A tenant is not shown nodes where it has nothing.
    if (viewer.role === 'tenant' && tenants.length === 0) return;
    nodes.push({ name, sharing, memory: viewer.role === 'admin' ? memory : null, tenants });
  };
  for (const n of snapshot.nodes) addNode(n.name, n.sharing, n.memory, n.tenants);
  // Containers on a node the snapshot has no totals for still show.
  for (const name of byNode.keys()) if (!seen.has(name)) addNode(name, false, null, {});
  nodes.sort((a, b) => byName(a.name, b.name));

  const loans: LoanView[] = [];
  const actions = new Map<string, { tenant: string; action: string; containers: number; fastOps: number; slowOps: number }>();
  for (const c of visible) {
    for (const share of c.lent) loans.push({ node: c.node, tenant: c.tenant, from: c.id, to: share.partner, bytes: share.bytes });
    const key = `${c.tenant}\u0000${c.action}`;
    const a = actions.get(key) ?? { tenant: c.tenant, action: c.action, containers: 0, fastOps: 0, slowOps: 0 };
    actions.set(key, a);
    a.containers += 1;
    a.fastOps += c.fastReads + c.fastWrites;
    a.slowOps += c.slowOps;
  }
  loans.sort((a, b) => byName(a.from, b.from) || byName(a.to, b.to));

  return {
    at: snapshot.at,
    viewer,
    nodes,
    loans,
    actions: [...actions.values()]
      .map((a) => ({ ...a, fastShare: a.fastOps + a.slowOps === 0 ? null : a.fastOps / (a.fastOps + a.slowOps) }))
      .sort((a, b) => byName(a.tenant, b.tenant) || byName(a.action, b.action)),
  };
}

/** The activations `viewer` may see, in the order given. */
export function visibleActivations(list: readonly ActivationSummary[], viewer: Principal): ActivationSummary[] {
  return list.filter((a) => maySee(viewer, a.tenant));
}
