/**
 * Byte sizes as users write them on the command line.
 *
 * Accepted: a non-negative decimal number, optionally followed by a unit. `K`, `M`, `G`, `T` and
 * their `KiB`/`MiB`/`GiB`/`TiB` spellings are powers of 1024 (as in Docker's `--memory` and
 * coreutils); `KB`, `MB`, `GB`, `TB` are powers of 1000 (SI, as in coreutils); `B` or no unit means
 * bytes. Units are case-insensitive except that `b` alone is also bytes. Fractions are allowed with
 * a unit (`1.5G`) and rounded down to a whole byte.
 */
import { EphemeraError } from './errors.js';

const UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['b', 1],
  ['k', 1024],
  ['kib', 1024],
  ['kb', 1000],
  ['m', 1024 ** 2],
  ['mib', 1024 ** 2],
  ['mb', 1000 ** 2],
  ['g', 1024 ** 3],
  ['gib', 1024 ** 3],
  ['gb', 1000 ** 3],
  ['t', 1024 ** 4],
  ['tib', 1024 ** 4],
  ['tb', 1000 ** 4],
]);

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parse a size such as `64M`, `1.5GiB`, `500MB` or `123` into bytes.
 *
 * @param text the user's text
 * @param what the flag it came from, named in the error message (e.g. `--budget`)
 * @throws {EphemeraError} `EPH_CLI_BAD_SIZE` when the text is not a size
 */
export function parseSize(text: string, what: string): number {
  const m = SIZE_RE.exec(text.trim());
  const mult = m === null ? undefined : UNITS.get((m[2] ?? '').toLowerCase());
  if (m === null || mult === undefined) {
    throw new EphemeraError(
      'EPH_CLI_BAD_SIZE',
      `${what}: cannot parse size ${JSON.stringify(text)}; write a number of bytes with an optional unit, e.g. 123, 64M, 1.5GiB or 500MB`,
    );
  }
  const digits = m[1] ?? '';
  if (digits.includes('.') && mult === 1) {
    throw new EphemeraError(
      'EPH_CLI_BAD_SIZE',
      `${what}: ${JSON.stringify(text)} is a fraction of a byte; give whole bytes or use a unit, e.g. 1.5M`,
    );
  }
  const bytes = Math.floor(Number(digits) * mult);
  if (!Number.isSafeInteger(bytes)) {
    throw new EphemeraError(
      'EPH_CLI_BAD_SIZE',
      `${what}: ${JSON.stringify(text)} is too large (more than ${Number.MAX_SAFE_INTEGER} bytes)`,
    );
  }
  return bytes;
}

/** Format bytes for people: `32.0 MiB`, `512 B`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i] ?? 'TiB'}`;
}
