/**
 * What one invocation used: the run report's statistics, and the `Usage` the Manager classifies the
 * container by (T_mem = own peak memory + peak file bytes, files never counted twice). Pure
 * arithmetic.
 *
 * The daemon measures both peaks itself over a window that the agent opens before each run and
 * reads after it (`peaks`, docs/PROTOCOL.md): {@link usageFromPeaks}. A daemon that cannot answer
 * `peaks` (one older than the op, behind a registered container) leaves only its counters before
 * and after and the cgroup's peak: {@link usageFromCounters}, an estimate that says so.
 */
import type { DaemonPeaks, DaemonStats } from '../daemon-client/client.js';
import type { Usage } from '../manager/types.js';
import type { RunStats } from './api.js';

function count(stats: DaemonStats, field: string): number {
  const v = stats[field];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * For a run with files, T_mem must be what keeps them in memory: besides the files and the
 * function's own memory the daemon keeps its `headroom` free and publishes a budget a sixteenth
 * below its eviction threshold (daemon/budget.c), so those two are counted in the own part. Without
 * them a recipient granted exactly own + files spilled part of its files, the page cache of the
 * spilled part counted as its own memory the next time, and its loans alternated between too
 * small and too large.
 */
function withReserve(own: number, filePeakBytes: number, headroom: number): Usage {
  const reserve = filePeakBytes > 0 ? headroom + Math.ceil(filePeakBytes / 16) : 0;
  return { ownPeakBytes: own + reserve, filePeakBytes };
}

/**
 * The invocation's usage from the daemon's window, opened before the run: the file peak as the
 * daemon tracked it (in memory exactly, at every growth; with the bytes on disk), and the
 * function's own peak without file pages. Without a cgroup limit the daemon knows no own memory:
 * then the cgroup's peak (reset before the run where the kernel allows) less the in-memory file
 * peak stands in, else the usage after the run.
 */
export function usageFromPeaks(peaks: DaemonPeaks, after: DaemonStats, cgroupPeak: number | null): Usage {
  let own = peaks.own_memory_peak;
  if (own === null) {
    const peak = cgroupPeak ?? after.usage ?? 0;
    own = Math.max(0, peak - Math.min(peak, peaks.file_bytes_memory_peak));
  }
  return withReserve(own, peaks.file_bytes_peak, after.headroom);
}

/**
 * The invocation's usage from the daemon's counters before and after it and the cgroup's peak:
 * the path for a daemon without `peaks`. The in-memory file peak counts only where the daemon's
 * lifetime peak rose during the run; a scratch file created and deleted within a run that did not
 * beat an earlier one leaves no trace, and its bytes are then taken for the function's own memory
 * (the cgroup's peak counts them). Files in memory are taken out of the cgroup peak once.
 */
export function usageFromCounters(before: DaemonStats, after: DaemonStats, cgroupPeak: number | null): Usage {
  const rose = after.bytes_in_memory_peak > before.bytes_in_memory_peak ? after.bytes_in_memory_peak : 0;
  const filesInMemory = Math.max(rose, before.file_bytes_memory, after.file_bytes_memory);
  const filePeakBytes = Math.max(filesInMemory, after.file_bytes_memory + after.file_bytes_disk);
  const peak = cgroupPeak ?? after.usage ?? 0;
  return withReserve(Math.max(0, peak - Math.min(peak, filesInMemory)), filePeakBytes, after.headroom);
}

/** The run report's counters: deltas over the invocation, and the peaks (the run's own, from `peaks`). */
export function runStats(before: DaemonStats, after: DaemonStats, used: Usage, peaks: DaemonPeaks | undefined): RunStats {
  return {
    fast_reads: count(after, 'fast_reads') - count(before, 'fast_reads'),
    fast_writes: count(after, 'fast_writes') - count(before, 'fast_writes'),
    slow_ops: count(after, 'slow_ops') - count(before, 'slow_ops'),
    evictions: count(after, 'evictions') - count(before, 'evictions'),
    bytes_in_memory_peak: peaks?.file_bytes_memory_peak ?? after.bytes_in_memory_peak,
    ownPeakBytes: used.ownPeakBytes,
    filePeakBytes: used.filePeakBytes,
    peaks: peaks === undefined ? 'counters' : 'daemon',
  };
}

/**
 * The estimate the next invocation-start carries: this run's usage. From a daemon that counts the
 * bytes of files on disk at every size change (`file_bytes_counted_peak` in its `peaks`), the file
 * peak is exact: a file placed straight on disk and deleted between two of its walks counts in
 * full, so the run says what the action needs. From an older daemon, or without `peaks`, the file
 * peak is a lower bound (such a file is not seen), and the estimate is never below the profile the
 * container was created with (the user's or the profiler's, itself a max over runs), which keeps the
 * Manager from lending less than that.
 */
export function nextEstimate(given: Usage | undefined, used: Usage, exactFiles: boolean): Usage {
  if (given === undefined || exactFiles) return used;
  return { ownPeakBytes: Math.max(given.ownPeakBytes, used.ownPeakBytes), filePeakBytes: Math.max(given.filePeakBytes, used.filePeakBytes) };
}

/** Whether a run's file peak is exact: the daemon's window counted its disk files (docs/PROTOCOL.md, peaks). */
export function filePeakExact(peaks: DaemonPeaks | undefined): boolean {
  return peaks?.file_bytes_counted_peak !== undefined;
}

/** T_mem of a profile, or the quota when the container has none yet. */
export function requestedBytes(profile: Usage | undefined, quota: number): number {
  return profile === undefined ? quota : profile.ownPeakBytes + profile.filePeakBytes;
}
