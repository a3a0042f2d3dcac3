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
 * The invocation's usage.
 *
 * The daemon reports its in-memory file peak over its whole life and the bytes in memory and on
 * disk now; the cgroup peak (reset before the run where the kernel allows it) counts the
 * function's own memory and the in-memory files together. Files in memory are taken out of the
 * cgroup peak once, at their own peak during the run when the daemon's lifetime peak rose in it,
 * else at the larger of the before and after values. A daemon that reports `own_peak_bytes` and
 * `file_peak_bytes` itself is believed instead.
 */
export function invocationUsage(before: DaemonStats, after: DaemonStats, cgroupPeak: number | null): Usage {
  if (typeof after['own_peak_bytes'] === 'number' && typeof after['file_peak_bytes'] === 'number') {
    return { ownPeakBytes: after['own_peak_bytes'], filePeakBytes: after['file_peak_bytes'] };
  }
  const filesInMemory =
    after.bytes_in_memory_peak > before.bytes_in_memory_peak ? after.bytes_in_memory_peak : Math.max(before.file_bytes_memory, after.file_bytes_memory);
  const filePeakBytes = Math.max(filesInMemory, after.file_bytes_memory + after.file_bytes_disk);
  const peak = cgroupPeak ?? after.usage ?? 0;
  return { ownPeakBytes: Math.max(0, peak - Math.min(peak, filesInMemory)), filePeakBytes };
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
