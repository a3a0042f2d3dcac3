// The benchmark commands end to end, at a tiny size: they run, every contender produces a number,
// and the data was served from memory. Timing is never asserted (that is the benchmark's job).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { START_PAIRS_PER_ROUND } from '../bench/tools.js';

const EPHEMERA = fileURLToPath(new URL('../../ephemera', import.meta.url));
const ROOT = process.getuid?.() === 0;

function bench(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(EPHEMERA, ['bench', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function cells(table: string, label: string): string[] {
  const line = table.split('\n').find((l) => l.startsWith(`| ${label} `));
  assert.ok(line !== undefined, `no row for ${label} in\n${table}`);
  return line.split('|').slice(1, -1).map((c) => c.trim());
}

test('bench startup: `ephemera run -- true` against `true`, and another build in the same rounds', { timeout: 120_000 }, () => {
  const json = join(mkdtempSync(join(tmpdir(), 'eph-bench-startup-')), 'startup.json');
  // This build against itself: the table, the difference column, the verdict, the JSON.
  const r = bench('startup', '--rounds', '3', '--against', fileURLToPath(new URL('../../', import.meta.url)), '--json', json);
  assert.equal(r.status, 0, r.stderr);
  assert.match(cells(r.stdout, '`true`')[1] ?? '', /^\d+\.\d\d$/);
  const [, ms, over] = cells(r.stdout, 'this build');
  assert.match(ms ?? '', /^\d+\.\d\d$/);
  assert.match(over ?? '', /^-?\d+\.\d\d \(-?\d+\.\d\d to -?\d+\.\d\d\)$/);
  assert.match(cells(r.stdout, '--against')[3] ?? '', /^-?\d+\.\d\d \(/);
  assert.match(r.stdout, /this build: -?\d+\.\d\d ms over `true` \(median of 3 rounds\); target ≤ 10 ms: (met|NOT met)\n$/);
  const report = JSON.parse(readFileSync(json, 'utf8')) as { rounds: number; rows: unknown[] };
  assert.equal(report.rounds, 3);
  assert.equal(report.rows.length, 2);
  const bad = bench('startup', '--against', '/nonexistent-build');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /EPH_CLI_USAGE: ephemera bench startup: --against "\/nonexistent-build": \/nonexistent-build\/ephemera is not an executable/);
  rmSync(dirname(json), { recursive: true, force: true });
});

test('bench io: one table, a number for every contender, fast ops counted', { timeout: 300_000 }, () => {
  const r = bench('io', '--repeats', '1', '--ops', '2000', '--passes', '1');
  assert.equal(r.status, 0, r.stderr);
  for (const label of ['random 8 KiB pread', 'random 8 KiB pwrite', 'random 8 KiB lseek+read', 'random 8 KiB lseek+write', 'sequential 8 KiB write', 'sequential 8 KiB read']) {
    const [, eph, tmpfs, disk, mem, , , , , fast] = cells(r.stdout, label);
    for (const v of [eph, disk, mem, ...(ROOT ? [tmpfs] : [])]) assert.match(v ?? '', /^\d+\.\d{3}$/, `${label}: ${String(v)}`);
    assert.ok(Number(fast) > 0, `${label}: the ephemera run served nothing from memory`);
  }
  const [, eph] = cells(r.stdout, 'open+fstat+close');
  assert.match(eph ?? '', /^\d+\.\d{3}$/);
  assert.match(cells(r.stdout, 'random 8 KiB pread, unmanaged')[5] ?? '', /^-?\d+\.\d%$/);
  // issue 15's namespace rows: a time for each contender and a ratio with its quartiles
  for (const label of ['create+write 4 KiB+close+unlink', 'create/rename/stat/unlink, per file of a set', 'mkdir+rmdir', 'readdir of 1000 entries', 'fcntl lock+unlock', 'fcntl OFD lock+unlock']) {
    const [, eph, tmpfs, disk, , vsTmpfs, vsDisk] = cells(r.stdout, label);
    for (const v of [eph, disk, ...(ROOT ? [tmpfs] : [])]) assert.match(v ?? '', /^\d+\.\d{3}$/, `${label}: ${String(v)}`);
    for (const v of [vsDisk, ...(ROOT ? [vsTmpfs] : [])]) assert.match(v ?? '', /^\d+\.\d\d× \(/, `${label}: ${String(v)}`);
  }
});

test('bench tools: every real program runs under ephemera, tmpfs and disk, with files in memory and a start-up row', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-tools-e2e-'));
  try {
    const csv = join(dir, 'tools.csv');
    const json = join(dir, 'tools.json');
    const r = bench('tools', '--rounds', '1', '--scale', '2', '--csv', csv, '--json', json);
    assert.equal(r.status, 0, r.stderr);
    for (const label of ['sort -S 2M -T spilling 1 MB', "tar x then tar cz of this repository's sources", 'SQLite rollback journal, 10 transactions', 'SQLite WAL, 10 transactions', 'git add + commit of 10 files', 'gcc build of 2 C files, TMPDIR in the root', 'Python tempfile churn, 20 rounds', 'zip then unzip of 20 small files']) {
      const [, eph, tmpfs, disk, vsTmpfs, vsDisk, inMemory] = cells(r.stdout, label);
      for (const v of [eph, disk, ...(ROOT ? [tmpfs] : [])]) assert.match(v ?? '', /^\d+\.\d$/, `${label}: ${String(v)}`);
      for (const v of [vsDisk, ...(ROOT ? [vsTmpfs] : [])]) assert.match(v ?? '', /^\d+\.\d\d× \(/, `${label}: ${String(v)}`);
      assert.ok(Number(inMemory) > 0, `${label}: the ephemera run created no file in memory`);
    }
    assert.match(cells(r.stdout, 'ephemera run -- true')[3] ?? '', /^-?\d+\.\d \(/);
    assert.match(readFileSync(csv, 'utf8'), /^workload,n,contender,median_us,/);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { rows: unknown[]; startup: { pairs: number } };
    assert.equal(parsed.rows.length, 8);
    assert.equal(parsed.startup.pairs, START_PAIRS_PER_ROUND, 'one round times START_PAIRS_PER_ROUND start-up pairs');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench tools refuses a scale above 100%', { timeout: 60_000 }, () => {
  const r = bench('tools', '--scale', '150');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /EPH_CLI_USAGE: .*--scale is a percentage of the default sizes, 1-100, got 150/);
});

test('nsprims: every building block runs, and a robust mutex whose holder was killed comes back as EOWNERDEAD', { timeout: 120_000 }, () => {
  const nsprims = fileURLToPath(new URL('../../nsprims', import.meta.url));
  const dir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const r = spawnSync(nsprims, ['--dir', dir, '--rounds', '4', '--scale', '2'], { encoding: 'utf8', timeout: 100_000 });
  assert.equal(r.status, 0, r.stderr);
  for (const row of ['tmpfs openat(O_CREAT)+write+close+unlink', 'pooled memfd: pwrite+ftruncate(0)', 'pidfd_getfd+close', 'a batch of 32 fds in one SCM_RIGHTS answer', 'mmap+first touch+munmap', 'robust pshared pthread_mutex lock+unlock']) {
    assert.match(r.stdout, new RegExp(`\\| ${row.replace(/[()+]/g, '\\$&')}[^|]* \\| \\d+ \\| \\d+\\.\\d{3}× \\(`), row);
  }
  assert.match(r.stdout, /EOWNERDEAD every time: yes; usable after pthread_mutex_consistent: yes/);
  assert.equal(spawnSync(nsprims, ['--rounds', '1']).status, 2);
});

test('bench demo: the function computes the same digest under ephemera, on tmpfs and on disk', () => {
  const r = bench('demo', '--repeats', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /same digest in every mode/);
  for (const mode of ['ephemera', 'tmpfs', 'disk']) assert.match(cells(r.stdout, mode)[1] ?? '', /^\d+\.\d{3}$/);
  assert.ok(Number(cells(r.stdout, 'fast_writes')[1]) > 0);
});

test('bench with an unknown experiment or a bad number is a usage error', () => {
  assert.equal(bench('nope').status, 2);
  const r = bench('io', '--repeats', '0');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /EPH_CLI_USAGE: .*--repeats must be a positive integer, got "0"/);
});
