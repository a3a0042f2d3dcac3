/**
 * What one invocation used, from the daemon's counters before and after it and the cgroup's peak:
 * the run report's statistics, and the `Usage` the Manager classifies the container by
 * (T_mem = own peak memory + peak file bytes, files never counted twice). Pure arithmetic.
 */
import type { DaemonStats } from '../daemon-client/client.js';
import type { Usage } from '../manager/types.js';
import type { RunStats } from './api.js';

function count(stats: DaemonStats, field: string): number {
  const v = stats[field];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * The largest file bytes the daemon reported while a run went on (one `stats` every 100 ms, and
 * the ones before and after): in memory, and in memory plus on disk. The daemon's own
 * `bytes_in_memory_peak` is over its whole life, and a file created and deleted within the run (a
 * scratch file) leaves no trace in the counters after it.
 */
export interface FileSamples {
  readonly memory: number;
  readonly total: number;
}

/** Folds one `stats` answer into the samples so far (`undefined`: the first). */
export function samplePeaks(so: FileSamples | undefined, stats: DaemonStats): FileSamples {
  const memory = stats.file_bytes_memory;
  const total = memory + stats.file_bytes_disk;
  return so === undefined ? { memory, total } : { memory: Math.max(so.memory, memory), total: Math.max(so.total, total) };
}

/**
 * The invocation's usage.
 *
 * The daemon reports its in-memory file peak over its whole life and the bytes in memory and on
 * disk now; the cgroup peak (reset before the run where the kernel allows it) counts the
 * function's own memory and the in-memory files together. Files in memory are taken out of the
 * cgroup peak once: their own peak during the run (the daemon's lifetime peak when it rose in the
 * run, the samples taken during it, the values before and after). The peak file bytes are the
 * largest of that, the samples of memory plus disk, and what is left at the end. A daemon that
 * reports `own_peak_bytes` and `file_peak_bytes` itself is believed instead.
 *
 * For a run with files, T_mem must be what keeps them in memory: besides the files and the
 * function's own memory the daemon keeps its `headroom` free and publishes a budget a sixteenth
 * below its eviction threshold (daemon/budget.c), so those two are counted in the own part. Without
 * them a recipient granted exactly own + files spilled part of its files, the page cache of the
 * spilled part counted as its own memory the next time, and its loans alternated between too
 * small and too large. That page cache still makes T_mem err upwards after a run that spilled.
 */
export function invocationUsage(before: DaemonStats, after: DaemonStats, cgroupPeak: number | null, sampled?: FileSamples): Usage {
  if (typeof after['own_peak_bytes'] === 'number' && typeof after['file_peak_bytes'] === 'number') {
    return { ownPeakBytes: after['own_peak_bytes'], filePeakBytes: after['file_peak_bytes'] };
  }
  const rose = after.bytes_in_memory_peak > before.bytes_in_memory_peak ? after.bytes_in_memory_peak : 0;
  const filesInMemory = Math.max(rose, before.file_bytes_memory, after.file_bytes_memory, sampled?.memory ?? 0);
  const filePeakBytes = Math.max(filesInMemory, after.file_bytes_memory + after.file_bytes_disk, sampled?.total ?? 0);
  const peak = cgroupPeak ?? after.usage ?? 0;
  const own = Math.max(0, peak - Math.min(peak, filesInMemory));
  const reserve = filePeakBytes > 0 ? after.headroom + Math.ceil(filePeakBytes / 16) : 0;
  return { ownPeakBytes: own + reserve, filePeakBytes };
}

/** The run report's counters: deltas over the invocation, and the peaks. */
export function runStats(before: DaemonStats, after: DaemonStats, used: Usage): RunStats {
  return {
    fast_reads: count(after, 'fast_reads') - count(before, 'fast_reads'),
    fast_writes: count(after, 'fast_writes') - count(before, 'fast_writes'),
    slow_ops: count(after, 'slow_ops') - count(before, 'slow_ops'),
    evictions: count(after, 'evictions') - count(before, 'evictions'),
    bytes_in_memory_peak: after.bytes_in_memory_peak,
    ownPeakBytes: used.ownPeakBytes,
    filePeakBytes: used.filePeakBytes,
  };
}

/** T_mem of a profile, or the quota when the container has none yet. */
export function requestedBytes(profile: Usage | undefined, quota: number): number {
  return profile === undefined ? quota : profile.ownPeakBytes + profile.filePeakBytes;
}
