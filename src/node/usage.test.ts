// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { DaemonStats } from '../daemon-client/client.js';
import { invocationUsage, requestedBytes, runStats, samplePeaks } from './usage.js';

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

test('files are taken out of the cgroup peak once, at their peak in the run', () => {
  // The run wrote 60 MiB of files (peak rose from 10 to 60) and deleted them; the cgroup peaked at 90.
  // Its own memory is 30 MiB, plus what the daemon keeps free beside files: its headroom (8 MiB)
  // and the sixteenth its published budget stays below the eviction threshold (60/16 MiB).
  const before = stats({ bytes_in_memory_peak: 10 * MiB });
  const after = stats({ bytes_in_memory_peak: 60 * MiB });
  assert.deepEqual(invocationUsage(before, after, 90 * MiB), { ownPeakBytes: (30 + 8 + 3.75) * MiB, filePeakBytes: 60 * MiB });
  // Files still there at the end, some on disk: they count as file bytes.
  const kept = stats({ bytes_in_memory_peak: 10 * MiB, file_bytes_memory: 8 * MiB, file_bytes_disk: 40 * MiB });
  assert.deepEqual(invocationUsage(before, kept, 50 * MiB), { ownPeakBytes: (42 + 8 + 3) * MiB, filePeakBytes: 48 * MiB });
  // A run without files needs no headroom for them.
  assert.deepEqual(invocationUsage(before, stats({ bytes_in_memory_peak: 10 * MiB }), 20 * MiB), { ownPeakBytes: 20 * MiB, filePeakBytes: 0 });
  // A daemon that reports the split itself is believed.
  assert.deepEqual(invocationUsage(before, stats({ own_peak_bytes: 7, file_peak_bytes: 9 }), 90 * MiB), { ownPeakBytes: 7, filePeakBytes: 9 });
});

test('a scratch run after a bigger one: its files, created and deleted within the run, are known from the samples', () => {
  // An earlier run reached 80 MiB of files in memory; this one wrote 2 × 32 MiB, 30 in memory and
  // 34 on disk, and deleted them before it ended. Counters before and after show no files at all.
  const before = stats({ bytes_in_memory_peak: 80 * MiB });
  const after = stats({ bytes_in_memory_peak: 80 * MiB });
  // Without samples the run looks file-less: the whole cgroup peak is taken for its own memory.
  assert.deepEqual(invocationUsage(before, after, 64 * MiB), { ownPeakBytes: 64 * MiB, filePeakBytes: 0 });
  let sampled = samplePeaks(undefined, before);
  for (const [m, d] of [[10, 0], [30, 20], [30, 34], [0, 0]] as const) sampled = samplePeaks(sampled, stats({ file_bytes_memory: m * MiB, file_bytes_disk: d * MiB }));
  assert.deepEqual(sampled, { memory: 30 * MiB, total: 64 * MiB });
  // Own: 64 − 30 in memory, plus the daemon's headroom (8 MiB) and its budget's slack (64/16 MiB).
  assert.deepEqual(invocationUsage(before, after, 64 * MiB, sampled), { ownPeakBytes: (34 + 8 + 4) * MiB, filePeakBytes: 64 * MiB });
  // The samples never lower what the counters show.
  const kept = stats({ bytes_in_memory_peak: 80 * MiB, file_bytes_memory: 8 * MiB, file_bytes_disk: 40 * MiB });
  assert.deepEqual(invocationUsage(before, kept, 50 * MiB, { memory: 0, total: 0 }), { ownPeakBytes: (42 + 8 + 3) * MiB, filePeakBytes: 48 * MiB });
});

test("run statistics are this run's deltas", () => {
  const s = runStats(stats({ fast_reads: 10, evictions: 2, slow_ops: 1 }), stats({ fast_reads: 25, fast_writes: 4, evictions: 2, slow_ops: 3, bytes_in_memory_peak: 5 }), { ownPeakBytes: 1, filePeakBytes: 2 });
  assert.deepEqual(s, { fast_reads: 15, fast_writes: 4, slow_ops: 2, evictions: 0, bytes_in_memory_peak: 5, ownPeakBytes: 1, filePeakBytes: 2 });
  assert.equal(requestedBytes(undefined, 64), 64);
  assert.equal(requestedBytes({ ownPeakBytes: 3, filePeakBytes: 4 }, 64), 7);
});
