/**
 * The daemon's `stats` object (docs/PROTOCOL.md), checked once at the edge.
 *
 * Every reader of the counters goes through {@link parseStats}: the control client for a reply,
 * {@link readStatsFile} for the JSON that `ephemera run --stats FILE` writes, the benchmarks for
 * the launcher's report. A counter that is missing or not a count is an error that names it, never
 * a silent 0: a counter renamed in the daemon would otherwise print 0 in every table.
 */
import { readFileSync } from 'node:fs';

import { EphemeraError } from '../core/errors.js';

/** The counters every `stats` result carries, all non-negative integers. */
export const STATS_COUNTERS = [
  'file_bytes_memory',
  'file_bytes_disk',
  'files_in_memory',
  'budget',
  'headroom',
  'evictions',
  'bytes_evicted',
  'fast_reads',
  'fast_writes',
  'files_in_memory_peak',
  'bytes_in_memory_peak',
  'files_created',
  'files_on_disk',
  'files_on_disk_predicted',
  'materialisations',
  'slow_ops',
  'bytes_read',
  'bytes_written',
  'fast_seeks',
  'fast_stats',
  'pid',
] as const;

export type StatsCounter = (typeof STATS_COUNTERS)[number];

/** The `stats` result. The daemon may add fields; they are kept as they came. */
export type DaemonStats = { readonly [K in StatsCounter]: number } & {
  readonly limit: number | null;
  /** The cgroup's memory usage; null when the daemon has no cgroup (static --budget). */
  readonly usage: number | null;
  readonly cgroup: string | null;
  readonly cgroup_version: 1 | 2 | null;
  readonly [extra: string]: unknown;
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Check a `stats` object, so that callers can trust its types.
 *
 * @param value the parsed JSON
 * @param source what it came from, for the message (e.g. `the daemon's reply to 'stats'`)
 * @throws {EphemeraError} `EPH_DAEMON_PROTOCOL` naming the first field that is missing or of the
 *   wrong type, and the value found
 */
export function parseStats(value: unknown, source = "the daemon's stats"): DaemonStats {
  if (!isRecord(value)) {
    throw new EphemeraError('EPH_DAEMON_PROTOCOL', `${source} is ${JSON.stringify(value)}, expected a JSON object of counters (docs/PROTOCOL.md, stats)`);
  }
  const bad = (field: string, expected: string): EphemeraError =>
    new EphemeraError(
      'EPH_DAEMON_PROTOCOL',
      `${source}: field '${field}' is ${field in value ? JSON.stringify(value[field]) : 'missing'}, expected ${expected}; ` +
        'the daemon and the CLI may come from different builds: run make',
      { detail: { field } },
    );
  for (const f of STATS_COUNTERS) {
    const v = value[f];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(f, 'a non-negative integer');
  }
  for (const f of ['limit', 'usage'] as const) {
    const v = value[f];
    if (v !== null && (typeof v !== 'number' || !Number.isSafeInteger(v))) throw bad(f, 'an integer or null');
  }
  if (value['cgroup'] !== null && typeof value['cgroup'] !== 'string') throw bad('cgroup', 'a string or null');
  const cv = value['cgroup_version'];
  if (cv !== null && cv !== 1 && cv !== 2) throw bad('cgroup_version', '1, 2 or null');
  return value as DaemonStats;
}

/**
 * Read the JSON that `ephemera run --stats FILE` wrote: the daemon's counters plus the run's own
 * fields (`exit_status`, `elapsed_ms`, and `oom_kills`, `cgroup_peak` under `--memory`).
 *
 * @throws {EphemeraError} `EPH_STATS_FILE` when the file cannot be read or is not JSON;
 *   `EPH_DAEMON_PROTOCOL` when a counter is missing or invalid
 */
export function readStatsFile(path: string): DaemonStats {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new EphemeraError('EPH_STATS_FILE', `cannot read the stats file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; did the ephemera run reach its end?`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new EphemeraError('EPH_STATS_FILE', `the stats file ${path} is not JSON (${(err as Error).message}); it starts ${JSON.stringify(text.slice(0, 80))}`, { cause: err });
  }
  return parseStats(value, `stats file ${path}`);
}

export interface ServedOptions {
  /**
   * The run's budget is small enough to push files to disk: operations on those files go to the
   * kernel, so `slow_ops` may outnumber the fast ones. @default false
   */
  readonly evicting?: boolean;
}

/**
 * Why `stats` do not show a run served from memory, or `undefined` when they do.
 *
 * Served from memory means: reads and writes went through the shared mapping (`fast_reads`,
 * `fast_writes` > 0) and a file was kept in memory (`files_in_memory_peak` > 0); and operations on
 * managed descriptors that went to the kernel (`slow_ops`) are explained by files that left
 * memory. With no eviction, no file placed on disk and none materialised there must be none;
 * otherwise, unless `evicting`, fewer than the operations served from memory. A pass-through shim
 * leaves the fast counters at 0; a shim that serves a little from memory and sends the rest to the
 * kernel shows in `slow_ops`.
 */
export function notServedFromMemory(stats: DaemonStats, options: ServedOptions = {}): string | undefined {
  const fast = stats.fast_reads + stats.fast_writes + stats.fast_seeks + stats.fast_stats;
  const left = stats.evictions + stats.files_on_disk + stats.materialisations;
  const show = `fast_reads ${stats.fast_reads}, fast_writes ${stats.fast_writes}, fast_seeks ${stats.fast_seeks}, fast_stats ${stats.fast_stats}, slow_ops ${stats.slow_ops}, files_in_memory_peak ${stats.files_in_memory_peak}, evictions ${stats.evictions}, files_on_disk ${stats.files_on_disk}, materialisations ${stats.materialisations}`;
  if (stats.fast_reads === 0) return `fast_reads is 0: no read was served from memory (${show})`;
  if (stats.fast_writes === 0) return `fast_writes is 0: no write was served from memory (${show})`;
  if (stats.files_in_memory_peak === 0) return `files_in_memory_peak is 0: no file was kept in memory (${show})`;
  if (left === 0 && stats.slow_ops > 0) return `slow_ops is ${stats.slow_ops} though no file left memory: operations on in-memory files went to the kernel (${show})`;
  if (options.evicting !== true && stats.slow_ops >= fast) {
    return `slow_ops is ${stats.slow_ops}, not fewer than the ${fast} operations served from memory: most of the I/O went to the kernel (${show})`;
  }
  return undefined;
}
