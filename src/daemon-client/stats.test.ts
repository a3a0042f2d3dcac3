// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isEphemeraError } from '../core/errors.js';
import { STATS_COUNTERS, notServedFromMemory, parseStats, readStatsFile, type DaemonStats } from './stats.js';

/** What ephemerad's stats look like after a run served from memory (numbers from a real run). */
const SERVED: DaemonStats = {
  limit: null,
  usage: null,
  file_bytes_memory: 0,
  file_bytes_disk: 4096,
  files_in_memory: 0,
  budget: 8 << 30,
  headroom: 0,
  evictions: 0,
  bytes_evicted: 0,
  fast_reads: 1204,
  fast_writes: 980,
  files_in_memory_peak: 3,
  bytes_in_memory_peak: 1 << 20,
  cgroup: null,
  cgroup_version: null,
  files_created: 3,
  files_on_disk: 0,
  files_on_disk_predicted: 0,
  materialisations: 0,
  slow_ops: 0,
  bytes_read: 1 << 20,
  bytes_written: 1 << 20,
  fast_seeks: 10,
  fast_stats: 30,
  pid: 321,
};

const protocolError = (field: string) => (err: unknown) =>
  isEphemeraError(err, 'EPH_DAEMON_PROTOCOL') && err.message.includes(`'${field}'`) && err.detail['field'] === field;

test('parseStats accepts what the daemon sends and keeps fields it does not know', () => {
  const s = parseStats({ ...SERVED, cgroup: '/sys/fs/cgroup/x', cgroup_version: 2, limit: 1, usage: 0, new_counter: 5 });
  assert.equal(s.fast_reads, 1204);
  assert.equal(s['new_counter'], 5);
});

test('parseStats names each missing counter instead of reading it as 0', () => {
  for (const f of STATS_COUNTERS) {
    const rest = Object.fromEntries(Object.entries(SERVED).filter(([k]) => k !== f));
    assert.throws(() => parseStats(rest, 'test stats'), (err: unknown) => protocolError(f)(err) && (err as Error).message.includes('missing') && (err as Error).message.startsWith('test stats'), f);
  }
});

test('parseStats rejects counters that are not counts, and bad limit, usage, cgroup and version', () => {
  for (const v of ['7', -1, 1.5, null, true, 2 ** 53]) {
    assert.throws(() => parseStats({ ...SERVED, slow_ops: v }), protocolError('slow_ops'), JSON.stringify(v));
  }
  assert.throws(() => parseStats({ ...SERVED, limit: 'max' }), protocolError('limit'));
  assert.throws(() => parseStats({ ...SERVED, usage: 0.5 }), protocolError('usage'));
  assert.throws(() => parseStats({ ...SERVED, cgroup: 3 }), protocolError('cgroup'));
  assert.throws(() => parseStats({ ...SERVED, cgroup_version: 3 }), protocolError('cgroup_version'));
  for (const v of [null, [], 'stats', 7]) {
    assert.throws(() => parseStats(v), (err: unknown) => isEphemeraError(err, 'EPH_DAEMON_PROTOCOL') && err.message.includes('expected a JSON object'), JSON.stringify(v));
  }
});

test('readStatsFile: a --stats file parses; an absent or truncated file is EPH_STATS_FILE; a renamed counter is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eph-stats-test-'));
  try {
    const file = join(dir, 'stats.json');
    writeFileSync(file, JSON.stringify({ ...SERVED, exit_status: 0, elapsed_ms: 12.5 }));
    assert.equal(readStatsFile(file).fast_seeks, 10);
    assert.throws(() => readStatsFile(join(dir, 'absent.json')), (err: unknown) => isEphemeraError(err, 'EPH_STATS_FILE') && err.message.includes('ENOENT'));
    writeFileSync(file, '{"fast_reads": 1');
    assert.throws(() => readStatsFile(file), (err: unknown) => isEphemeraError(err, 'EPH_STATS_FILE') && err.message.includes('not JSON'));
    const renamed: Record<string, unknown> = { ...SERVED, fast_read_ops: SERVED.fast_reads };
    delete renamed['fast_reads'];
    writeFileSync(file, JSON.stringify(renamed));
    assert.throws(() => readStatsFile(file), (err: unknown) => protocolError('fast_reads')(err) && (err as Error).message.includes(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('notServedFromMemory: a served run passes; a pass-through run and a run whose I/O went to the kernel do not', () => {
  assert.equal(notServedFromMemory(SERVED), undefined);
  // What `ephemera run` reports when the shim passes everything through (test/fs programs.test.mjs).
  const passThrough = { ...SERVED, fast_reads: 0, fast_writes: 0, fast_seeks: 0, fast_stats: 0, files_in_memory_peak: 0, files_created: 0, slow_ops: 0 };
  assert.match(notServedFromMemory(passThrough) ?? '', /fast_reads is 0/);
  assert.match(notServedFromMemory({ ...SERVED, fast_writes: 0 }) ?? '', /fast_writes is 0/);
  assert.match(notServedFromMemory({ ...SERVED, files_in_memory_peak: 0 }) ?? '', /files_in_memory_peak is 0/);
  // One small file in memory, the rest of the I/O through the kernel: fast counters alone would pass it.
  assert.match(notServedFromMemory({ ...SERVED, slow_ops: 1 }) ?? '', /slow_ops is 1 though no file left memory/);
  const mostlyKernel = { ...SERVED, fast_reads: 3, fast_writes: 1, fast_seeks: 0, fast_stats: 2, slow_ops: 5000, files_on_disk: 1 };
  assert.match(notServedFromMemory(mostlyKernel) ?? '', /slow_ops is 5000, not fewer than the 6 operations/);
  // Under a budget that pushes files to disk, operations on them are expected to go to the kernel.
  assert.equal(notServedFromMemory({ ...mostlyKernel, evictions: 3 }, { evicting: true }), undefined);
  assert.match(notServedFromMemory({ ...mostlyKernel, files_on_disk: 0, evictions: 0 }, { evicting: true }) ?? '', /though no file left memory/);
});
