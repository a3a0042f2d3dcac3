/**
 * The daemon's `peaks` result (docs/PROTOCOL.md, "peaks"): the peaks of one window, from the
 * previous reset to this request, checked once at the edge like the stats.
 */
import { EphemeraError } from '../core/errors.js';

/** What `peaks` answers; byte counts are non-negative integers. */
export interface DaemonPeaks {
  /**
   * The function's own peak memory in the window, without file pages and reclaimable page cache;
   * null when the daemon has no limited cgroup to read. Sampled from the cgroup (see PROTOCOL.md).
   */
  readonly own_memory_peak: number | null;
  /** The peak bytes of the function's files, in memory and on disk. */
  readonly file_bytes_peak: number;
  /** The peak bytes of in-memory files, raised at every growth: exact. */
  readonly file_bytes_memory_peak: number;
  /**
   * The peak of in-memory plus counted on-disk file bytes, raised at every growth of either: exact
   * for every file the shim wrote (placed straight on disk or moved there). Absent from a daemon
   * older than the count; `file_bytes_peak` is never below it.
   */
  readonly file_bytes_counted_peak?: number;
  /** The bytes on disk the shims count now (absent from an older daemon). */
  readonly file_bytes_disk_counted?: number;
  /** The bytes now, in memory and on disk (a fresh walk). */
  readonly file_bytes_memory: number;
  readonly file_bytes_disk: number;
  /** How long the window was open, ms; null for the first window (since the daemon started). */
  readonly window_ms: number | null;
  /** Whether a new window opened after these were read. */
  readonly reset: boolean;
}

const COUNTS = ['file_bytes_peak', 'file_bytes_memory_peak', 'file_bytes_memory', 'file_bytes_disk'] as const;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Checks a `peaks` result.
 * @throws {EphemeraError} `EPH_DAEMON_PROTOCOL` naming the first field that is missing or wrong
 */
export function parsePeaks(value: unknown, source = "the daemon's peaks"): DaemonPeaks {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EphemeraError('EPH_DAEMON_PROTOCOL', `${source} is ${JSON.stringify(value)}, expected a JSON object (docs/PROTOCOL.md, peaks)`);
  }
  const o = value as Record<string, unknown>;
  const bad = (field: string, expected: string): EphemeraError =>
    new EphemeraError('EPH_DAEMON_PROTOCOL', `${source}: field '${field}' is ${field in o ? JSON.stringify(o[field]) : 'missing'}, expected ${expected}; the daemon and the CLI may come from different builds: run make`, {
      detail: { field },
    });
  for (const f of COUNTS) if (!isCount(o[f])) throw bad(f, 'a non-negative integer');
  for (const f of ['own_memory_peak', 'window_ms'] as const) if (o[f] !== null && !isCount(o[f])) throw bad(f, 'a non-negative integer or null');
  for (const f of ['file_bytes_counted_peak', 'file_bytes_disk_counted'] as const) if (f in o && !isCount(o[f])) throw bad(f, 'a non-negative integer, or absent');
  if (typeof o['reset'] !== 'boolean') throw bad('reset', 'true or false');
  return o as unknown as DaemonPeaks;
}
