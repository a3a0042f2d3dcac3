/**
 * Where the build outputs are. The compiled CLI lives in build/js/cli/, so build/ is two levels up;
 * this holds whether the CLI is started through build/ephemera or with node directly.
 */
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';

/** Absolute path of the build directory. */
export const BUILD_DIR = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Absolute path of a build output, checked to exist (and be executable when `exec` is set).
 *
 * @throws {EphemeraError} `EPH_BUILD_MISSING` when it is not there
 */
export function buildOutput(name: string, exec: boolean): string {
  const path = join(BUILD_DIR, name);
  try {
    accessSync(path, exec ? constants.X_OK : constants.R_OK);
  } catch (err) {
    throw new EphemeraError('EPH_BUILD_MISSING', `${path} is missing or not ${exec ? 'executable' : 'readable'}; run \`make\` in the repository first`, {
      cause: err,
    });
  }
  return path;
}
