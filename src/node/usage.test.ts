// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { DaemonPeaks, DaemonStats } from '../daemon-client/client.js';
import { filePeakExact, nextEstimate, requestedBytes, runStats, usageFromCounters, usageFromPeaks } from './usage.js';

const MiB = 1 << 20;

function stats(s: Partial<DaemonStats>): DaemonStats {
  return {
    limit: 128 * MiB,
    usage: 0,
    file_bytes_memory: 0,
    file_bytes_disk: 0,
    files_in_memory: 0,
    budget: 0,
    headroom: 8 * MiB,
    evictions: 0,
    bytes_evicted: 0,
    fast_reads: 0,
    fast_writes: 0,
    files_in_memory_peak: 0,
    bytes_in_memory_peak: 0,
    files_created: 0,
    files_on_disk: 0,
    files_on_disk_predicted: 0,
    materialisations: 0,
    slow_ops: 0,
    bytes_read: 0,
    bytes_written: 0,
    fast_seeks: 0,
    fast_stats: 0,
    pid: 1,
    cgroup: null,
    cgroup_version: 1,
    ...s,
  };
}

const peaks = (p: Partial<DaemonPeaks>): DaemonPeaks => ({
  own_memory_peak: null,
  file_bytes_peak: 0,
  file_bytes_memory_peak: 0,
  file_bytes_memory: 0,
  file_bytes_disk: 0,
  window_ms: 100,
  reset: false,
  ...p,
});

test("the daemon's window is believed: its own peak and its file peak, with the reserve that keeps files in memory", { timeout: 5_000 }, () => {
  // 40 MiB of its own, 24 MiB of files (written and deleted or kept: the window saw them).
  const after = stats({ usage: 30 * MiB });
  const used = usageFromPeaks(peaks({ own_memory_peak: 40 * MiB, file_bytes_peak: 24 * MiB, file_bytes_memory_peak: 24 * MiB }), after, 90 * MiB);
  // Own: 40, plus the daemon's headroom (8 MiB) and its budget's slack (24/16 MiB).
  assert.deepEqual(used, { ownPeakBytes: (40 + 8 + 1.5) * MiB, filePeakBytes: 24 * MiB });
  // A run without files needs no reserve; the cgroup peak does not enter when the daemon knows its own.
  assert.deepEqual(usageFromPeaks(peaks({ own_memory_peak: 12 * MiB }), after, 200 * MiB), { ownPeakBytes: 12 * MiB, filePeakBytes: 0 });
  // A daemon without a cgroup limit knows no own memory: the cgroup peak less the in-memory file peak.
  assert.deepEqual(usageFromPeaks(peaks({ file_bytes_peak: 16 * MiB, file_bytes_memory_peak: 10 * MiB }), after, 50 * MiB), { ownPeakBytes: (40 + 8 + 1) * MiB, filePeakBytes: 16 * MiB });
  // ...and without a cgroup peak either, the usage after the run.
  assert.deepEqual(usageFromPeaks(peaks({}), after, null), { ownPeakBytes: 30 * MiB, filePeakBytes: 0 });
});

test('without peaks (an older daemon): files are taken out of the cgroup peak once, at their peak in the run', { timeout: 5_000 }, () => {
  // The run wrote 60 MiB of files (peak rose from 10 to 60) and deleted them; the cgroup peaked at 90.
  // Its own memory is 30 MiB, plus what the daemon keeps free beside files: its headroom (8 MiB)
  // and the sixteenth its published budget stays below the eviction threshold (60/16 MiB).
  const before = stats({ bytes_in_memory_peak: 10 * MiB });
  const after = stats({ bytes_in_memory_peak: 60 * MiB });
  assert.deepEqual(usageFromCounters(before, after, 90 * MiB), { ownPeakBytes: (30 + 8 + 3.75) * MiB, filePeakBytes: 60 * MiB });
  // Files still there at the end, some on disk: they count as file bytes.
  const kept = stats({ bytes_in_memory_peak: 10 * MiB, file_bytes_memory: 8 * MiB, file_bytes_disk: 40 * MiB });
  assert.deepEqual(usageFromCounters(before, kept, 50 * MiB), { ownPeakBytes: (42 + 8 + 3) * MiB, filePeakBytes: 48 * MiB });
  // A run without files needs no headroom for them.
  assert.deepEqual(usageFromCounters(before, stats({ bytes_in_memory_peak: 10 * MiB }), 20 * MiB), { ownPeakBytes: 20 * MiB, filePeakBytes: 0 });
  // A scratch run after a bigger one leaves no trace in the counters: the estimate is file-less,
  // and the whole cgroup peak is taken for its own memory. (With `peaks`, the window sees it.)
  const big = stats({ bytes_in_memory_peak: 80 * MiB });
  assert.deepEqual(usageFromCounters(big, big, 64 * MiB), { ownPeakBytes: 64 * MiB, filePeakBytes: 0 });
});

test("run statistics are this run's deltas", () => {
  const before = stats({ fast_reads: 10, evictions: 2, slow_ops: 1 });
  const after = stats({ fast_reads: 25, fast_writes: 4, evictions: 2, slow_ops: 3, bytes_in_memory_peak: 5 });
  const s = runStats(before, after, { ownPeakBytes: 1, filePeakBytes: 2 }, undefined);
  assert.deepEqual(s, { fast_reads: 15, fast_writes: 4, slow_ops: 2, evictions: 0, bytes_in_memory_peak: 5, ownPeakBytes: 1, filePeakBytes: 2, peaks: 'counters' });
  // With the daemon's window, the in-memory peak is the run's own, not the daemon's lifetime one.
  assert.deepEqual(runStats(before, after, { ownPeakBytes: 1, filePeakBytes: 2 }, peaks({ file_bytes_memory_peak: 3 })), { ...s, bytes_in_memory_peak: 3, peaks: 'daemon' });
  assert.equal(requestedBytes(undefined, 64), 64);
  assert.equal(requestedBytes({ ownPeakBytes: 3, filePeakBytes: 4 }, 64), 7);
});

test('the next estimate: from a daemon that counts disk files, the run usage; from an older one, never below the given profile', () => {
  const given = { ownPeakBytes: 24 * MiB, filePeakBytes: 48 * MiB };
  // An older daemon: a short run whose second file went straight to disk and was deleted before a
  // disk walk saw it measures 32 MiB of files; the profile the container was created with stays.
  assert.equal(filePeakExact(peaks({})), false);
  assert.equal(filePeakExact(undefined), false);
  assert.deepEqual(nextEstimate(given, { ownPeakBytes: 24 * MiB, filePeakBytes: 32 * MiB }, false), given);
  // A run that needed more raises it.
  assert.deepEqual(nextEstimate(given, { ownPeakBytes: 40 * MiB, filePeakBytes: 64 * MiB }, false), { ownPeakBytes: 40 * MiB, filePeakBytes: 64 * MiB });
  // Without a given profile, the run's usage alone.
  assert.deepEqual(nextEstimate(undefined, { ownPeakBytes: 1, filePeakBytes: 2 }, false), { ownPeakBytes: 1, filePeakBytes: 2 });
  // A daemon that counts its disk files: the same file counted in the window (48 MiB), and a run
  // that truly used less is taken at its word (the next loan is sized to it).
  const counted = peaks({ file_bytes_peak: 48 * MiB, file_bytes_counted_peak: 48 * MiB });
  assert.equal(filePeakExact(counted), true);
  assert.equal(usageFromPeaks(counted, stats({ headroom: 0 }), null).filePeakBytes, 48 * MiB);
  assert.deepEqual(nextEstimate(given, { ownPeakBytes: 20 * MiB, filePeakBytes: 16 * MiB }, true), { ownPeakBytes: 20 * MiB, filePeakBytes: 16 * MiB });
});
