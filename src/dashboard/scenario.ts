/**
 * The scripted cluster of the views' tests, the screenshot and the benchmarks: one node, tenant
 * `alpha` with two actions (one container lends 64 MiB to the other), tenant `beta` with one.
 * Real platform data arrives through the same {@link MemoryClusterSource} seam.
 */
import type { Principal } from './auth.js';
import { MemoryClusterSource } from './memory-source.js';
import type { ActivationSummary, ContainerSnapshot, NodeSnapshot, Pool } from './source.js';

export const MiB = 1024 * 1024;

export const KEYS = {
  admin: '00000000-0000-4000-8000-000000000000:operatorsecret',
  alpha: '11111111-1111-4111-8111-111111111111:alphasecret',
  beta: '22222222-2222-4222-8222-222222222222:betasecret',
} as const;

/** The {@link Authorizer} over {@link KEYS}. */
export const scenarioAuthorizer = {
  principalFor(key: string): Promise<Principal | undefined> {
    if (key === KEYS.admin) return Promise.resolve({ role: 'admin' });
    if (key === KEYS.alpha) return Promise.resolve({ role: 'tenant', tenant: 'alpha' });
    if (key === KEYS.beta) return Promise.resolve({ role: 'tenant', tenant: 'beta' });
    return Promise.resolve(undefined);
  },
};

export function container(id: string, tenant: string, action: string, pool: Pool, initial: number, more: Partial<ContainerSnapshot> = {}): ContainerSnapshot {
  return {
    id,
    node: 'node-1',
    tenant,
    action,
    pool,
    initial,
    granted: initial,
    usage: Math.round(initial * 0.4),
    fileBytes: Math.round(initial * 0.25),
    files: 3,
    evictions: 0,
    fastReads: 1000,
    fastWrites: 500,
    slowOps: 100,
    lent: [],
    borrowed: [],
    ...more,
  };
}

export function node(name: string, containers: readonly ContainerSnapshot[], limit = 8192 * MiB): NodeSnapshot {
  const tenants: Record<string, { limit: number; allocated: number; requested: number }> = {};
  let allocated = 0;
  let requested = 0;
  for (const c of containers) {
    if (c.node !== name) continue;
    const t = (tenants[c.tenant] ??= { limit: 0, allocated: 0, requested: 0 });
    t.limit += c.initial;
    t.allocated += c.granted;
    t.requested += c.initial;
    allocated += c.granted;
    requested += c.initial;
  }
  return { name, sharing: true, memory: { limit, allocated, requested }, tenants };
}

/** alpha's resize container before and after it lends 64 MiB to alpha's gzip container. */
export function scenarioContainers(loan: boolean): ContainerSnapshot[] {
  const lent = loan ? 64 * MiB : 0;
  return [
    container('alpha-resize-0', 'alpha', 'resize', 'harvest', 512 * MiB, {
      granted: 512 * MiB - lent,
      lent: loan ? [{ partner: 'alpha-gzip-0', bytes: lent }] : [],
      evictions: 2,
      fastReads: 4200,
      fastWrites: 1800,
      slowOps: 300,
    }),
    container('alpha-gzip-0', 'alpha', 'gzip', 'allocation', 256 * MiB, {
      granted: 256 * MiB + lent,
      usage: 200 * MiB,
      borrowed: loan ? [{ partner: 'alpha-resize-0', bytes: lent }] : [],
    }),
    container('beta-ml-0', 'beta', 'infer', 'self-sufficient', 1024 * MiB),
  ];
}

export function activation(id: string, tenant: string, action: string, durationMs: number, status: ActivationSummary['status'] = 'success', start = Date.now()): ActivationSummary {
  return {
    activationId: id,
    tenant,
    action,
    status,
    start,
    durationMs,
    ephemera: { node: 'node-1', fastOps: 120, fileBytes: 4 * MiB },
  };
}

/**
 * The scripted scenario: the state with the loan, and the events that made it: one loan, one
 * shortfall, three activations (two of alpha's succeed, one fails).
 */
export function playScenario(source: MemoryClusterSource): void {
  const containers = scenarioContainers(true);
  source.setState([node('node-1', containers)], containers);
  source.emit({ type: 'move', node: 'node-1', tenant: 'alpha', seq: 1, from: 'alpha-resize-0', to: 'alpha-gzip-0', bytes: 64 * MiB, reason: 'lend', durationSeconds: 0.012, at: Date.now() });
  source.emit({ type: 'shortfall', node: 'node-1', tenant: 'alpha', container: 'alpha-gzip-0', bytes: 32 * MiB, at: Date.now() });
  source.emit({ type: 'activation', activation: activation('act-1', 'alpha', 'resize', 120) });
  source.emit({ type: 'activation', activation: activation('act-2', 'alpha', 'gzip', 80) });
  source.emit({ type: 'activation', activation: activation('act-3', 'alpha', 'gzip', 40, 'application error') });
}
