/**
 * The Docker labels a function container carries, so that a restarted agent can rebuild what it
 * knew from the engine alone: its node, tenant, function, workflow, initial quota, profile, and
 * the name of its run directory under the agent's state directory. Pure encoding and decoding.
 */
import type { ContainerInfo } from '../manager/types.js';

export const LABEL = {
  node: 'ephemera.node',
  dir: 'ephemera.dir',
  tenant: 'ephemera.tenant',
  fn: 'ephemera.function',
  workflow: 'ephemera.workflow',
  quota: 'ephemera.quota',
  ownPeak: 'ephemera.profile.own',
  filePeak: 'ephemera.profile.file',
} as const;

export function containerLabels(node: string, dir: string, info: Omit<ContainerInfo, 'id'>): Record<string, string> {
  return {
    [LABEL.node]: node,
    [LABEL.dir]: dir,
    [LABEL.tenant]: info.tenant,
    [LABEL.fn]: info.fn,
    ...(info.workflow !== undefined ? { [LABEL.workflow]: info.workflow } : {}),
    [LABEL.quota]: String(info.initialQuota),
    ...(info.profile !== undefined ? { [LABEL.ownPeak]: String(info.profile.ownPeakBytes), [LABEL.filePeak]: String(info.profile.filePeakBytes) } : {}),
  };
}

const COUNT = /^\d{1,16}$/;
const DIR = /^[0-9a-f]{12}$/;

/** The container's record from its labels, or null when they are missing or malformed. */
export function parseLabels(id: string, labels: Readonly<Record<string, string>>): { info: ContainerInfo; dir: string } | null {
  const tenant = labels[LABEL.tenant];
  const fn = labels[LABEL.fn];
  const quota = labels[LABEL.quota];
  const dir = labels[LABEL.dir];
  if (tenant === undefined || fn === undefined || quota === undefined || !COUNT.test(quota) || dir === undefined || !DIR.test(dir)) return null;
  const own = labels[LABEL.ownPeak];
  const file = labels[LABEL.filePeak];
  const workflow = labels[LABEL.workflow];
  const profile = own !== undefined && file !== undefined && COUNT.test(own) && COUNT.test(file) ? { ownPeakBytes: Number(own), filePeakBytes: Number(file) } : undefined;
  return {
    dir,
    info: {
      id,
      tenant,
      fn,
      ...(workflow !== undefined ? { workflow } : {}),
      initialQuota: Number(quota),
      ...(profile !== undefined ? { profile } : {}),
    },
  };
}
