/**
 * Where the agent's Tenant Managers run. {@link processManagers} (what `ephemera node` uses) starts
 * one OS process per tenant with the manager's shell, each with a socket directory of its own
 * (mode 0700), so that tenants are isolated by the kernel as well as by the agent's checks.
 * {@link inProcessManagers} runs the same core inside the agent, for tests that exercise the agent
 * and not the process boundary.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { spawnManager, type ApplyReply, type ManagerProcess } from '../manager/client.js';
import { createManager } from '../manager/core.js';
import type { ManagerConfig, ManagerEvent } from '../manager/types.js';
import type { Applied, ManagerFactory, TenantManagerPort } from './tenants.js';

export type ManagerDefaults = Omit<ManagerConfig, 'tenant'>;

const MiB = 1024 * 1024;

/** The settings the agent starts its Managers with unless told otherwise. */
export function managerDefaults(sharing: ManagerConfig['sharing']): ManagerDefaults {
  return { sharing, harvestThresholdBytes: 16 * MiB, donorMarginBytes: 16 * MiB, engineMinimumBytes: 6 * MiB, lendWhileIdle: false };
}

export function inProcessManagers(defaults: ManagerDefaults): ManagerFactory {
  return (tenant) => {
    const m = createManager({ ...defaults, tenant });
    const port: TenantManagerPort = {
      apply: (event) => Promise.resolve(m.apply(event, Date.now())),
      applyWithStanding: (event, at) => {
        const moves = m.apply(event, at ?? Date.now());
        return Promise.resolve({ moves, standing: 'id' in event ? m.standing(event.id) : undefined, quiet: m.quiet() });
      },
      applyPair: (first, firstAt, second) => {
        const one = (event: ManagerEvent, at: number): Applied => {
          const moves = m.apply(event, at);
          return { moves, standing: 'id' in event ? m.standing(event.id) : undefined, quiet: m.quiet() };
        };
        const a = one(first, firstAt);
        return Promise.resolve(a.moves.length > 0 ? { first: a } : { first: a, second: one(second, Date.now()) });
      },
      recover: (live) => Promise.resolve(m.recover(live)),
      snapshot: () => Promise.resolve(m.snapshot()),
      close: () => Promise.resolve(),
    };
    return Promise.resolve(port);
  };
}

/** A factory of Manager processes that also tells which process serves which tenant. */
export interface ProcessManagers {
  readonly factory: ManagerFactory;
  /** The live Manager process of each tenant (tests kill them to play a crash). */
  pids(): ReadonlyMap<string, number>;
}

/**
 * One Manager process per tenant, its socket directory `<root>/<hash of the tenant>` (a tenant
 * name may be long; a unix socket path may not).
 */
export function processManagers(defaults: ManagerDefaults, root: string): ProcessManagers {
  const running = new Map<string, ManagerProcess>();
  const factory: ManagerFactory = async (tenant) => {
    const dir = join(root, createHash('sha256').update(tenant).digest('hex').slice(0, 16));
    const proc = await spawnManager({ config: { ...defaults, tenant }, socketDir: dir });
    running.set(tenant, proc);
    const port: TenantManagerPort = {
      apply: async (event) => (await proc.client.apply(event)).moves,
      applyWithStanding: async (event, at) => {
        const r = await proc.client.apply(event, at);
        return { moves: r.moves, standing: r.standing, ...(r.quiet !== undefined ? { quiet: r.quiet } : {}) };
      },
      applyPair: async (first, firstAt, second) => {
        const r = await proc.client.applyPair(first, firstAt, second);
        const applied = (a: ApplyReply): Applied => ({ moves: a.moves, standing: a.standing, ...(a.quiet !== undefined ? { quiet: a.quiet } : {}) });
        return r.second === undefined ? { first: applied(r.first) } : { first: applied(r.first), second: applied(r.second) };
      },
      recover: (live) => proc.client.recover(live),
      snapshot: () => proc.client.snapshot(),
      close: async () => {
        if (running.get(tenant) === proc) running.delete(tenant);
        await proc.stop();
      },
    };
    return port;
  };
  return { factory, pids: () => new Map([...running].map(([t, p]) => [t, p.pid])) };
}
