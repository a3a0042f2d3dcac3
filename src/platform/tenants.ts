/**
 * Tenants as the user sees them: one wsk properties file per namespace under the Ephemera home
 * (`~/.ephemera`, or $EPHEMERA_HOME), mode 0600, in the wsk CLI's format, so that
 * `WSK_CONFIG_FILE=~/.ephemera/guest.wskprops wsk action list` and the npm client both work.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { nameProblem } from './model.js';
import { ADMIN_TENANT, type Tenant } from './store.js';

export const GUEST_TENANT = 'guest';

/** The node agent's rule for tenant names (they label containers and cgroups). */
const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** Where the wskprops files go: $EPHEMERA_HOME, else ~/.ephemera. */
export function ephemeraHome(env: NodeJS.ProcessEnv = process.env): string {
  const h = env.EPHEMERA_HOME;
  return h !== undefined && h !== '' ? h : join(homedir(), '.ephemera');
}

/** The wsk CLI's properties text for a tenant. */
export function wskprops(tenant: Tenant, apihost: string): string {
  return `APIHOST=${apihost}\nAUTH=${tenant.uuid}:${tenant.key}\nNAMESPACE=${tenant.name}\n`;
}

/** Writes `<home>/<name>.wskprops` with mode 0600 and returns its path. */
export function writeWskprops(home: string, tenant: Tenant, apihost: string): string {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const path = join(home, `${tenant.name}.wskprops`);
  writeFileSync(path, wskprops(tenant, apihost), { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/**
 * Checks a tenant name from the command line.
 *
 * @throws {EphemeraError} `EPH_TENANT_NAME` when it is not a valid namespace name or is reserved
 */
export function checkTenantName(name: string): string {
  const bad = nameProblem(name) ?? (TENANT_RE.test(name) ? null : 'a tenant also labels containers and cgroups: start with a letter or digit, then letters, digits, ".", "_", "@" or "-", at most 128 characters');
  if (bad !== null) throw new EphemeraError('EPH_TENANT_NAME', `tenant name ${JSON.stringify(name)} is not valid: ${bad}`);
  if (name === ADMIN_TENANT || name === '_') {
    throw new EphemeraError('EPH_TENANT_NAME', `tenant name ${JSON.stringify(name)} is reserved for the operator; choose another name`);
  }
  return name;
}
