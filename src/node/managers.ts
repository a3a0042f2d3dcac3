/**
 * Tenant Managers hosted inside the agent's own process, around the manager's pure core. Each
 * tenant still gets its own Manager object and sees only its own containers; what it lacks
 * against the process shell is the OS-level isolation (a crash of one takes the agent along).
 */
import { createManager } from '../manager/core.js';
import type { ManagerConfig } from '../manager/types.js';
import type { ManagerFactory, TenantManagerPort } from './tenants.js';

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
      recover: (live) => Promise.resolve(m.recover(live)),
      snapshot: () => Promise.resolve(m.snapshot()),
      close: () => Promise.resolve(),
    };
    return Promise.resolve(port);
  };
}
