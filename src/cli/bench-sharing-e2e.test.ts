/**
 * `ephemera bench fig14|fig15|fig16a` end to end at tiny sizes (one run per arm, 1 MiB files): the
 * real CLI, which starts real node agents as child processes and real containers through them;
 * what it writes (table, JSON, CSV) and that no container or parent cgroup of its agents is left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { DockerEngine } from '../container/engine.js';
import { dockerReady } from '../node/testkit.js';

const EPHEMERA = fileURLToPath(new URL('../../ephemera', import.meta.url));
// 2 × 24 MiB of files: with the declared 24 MiB of its own, the I/O task wants 72 MiB of its 64 MiB quota, so a loan is due;
// the factorial (60000!, a fraction of a second) is still running when the I/O task starts.
const TINY = ['--runs', '1', '--warmup', '0', '--file-mib', '24', '--ops', '200', '--n', '60000', '--no-plot'];

interface SampleJson {
  readonly scenario: string;
  readonly arm: string;
  readonly task: string;
  readonly ms: number;
  readonly oom: boolean;
  readonly initialBytes: number;
  readonly grantedBytes: number;
}

function loaned(samples: readonly SampleJson[], scenario: string, arm: string): boolean {
  const io = samples.filter((s) => s.scenario === scenario && s.arm === arm && s.task === 'io');
  assert.ok(io.length > 0, `no I/O sample for ${scenario}/${arm}`);
  return io.every((s) => s.grantedBytes > s.initialBytes);
}

interface Exit {
  readonly code: number | null;
  readonly pid: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], timeoutMs: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(EPHEMERA, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // SIGTERM lets the benchmark stop its agents (which remove their containers).
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, pid: child.pid ?? 0, stdout, stderr });
    });
  });
}

/** Containers and parent cgroups named after the benchmark process (its agents are `ephbench-<pid>-<scope>`). */
async function leftovers(pid: number): Promise<string[]> {
  const prefix = `ephbench-${String(pid)}-`;
  const containers = (await new DockerEngine().list(['ephemera.node'])).filter((c) => (c.labels['ephemera.node'] ?? '').startsWith(prefix)).map((c) => c.id);
  const cgroups: string[] = [];
  for (const h of await readdir('/sys/fs/cgroup').catch(() => [])) {
    for (const d of [join('/sys/fs/cgroup', h), '/sys/fs/cgroup']) {
      for (const name of await readdir(d).catch(() => [])) if (name.startsWith(prefix)) cgroups.push(join(d, name));
    }
  }
  return [...containers, ...new Set(cgroups)];
}

test('bench fig14/fig15/fig16a refuse bad flags with a usage error that names them', { timeout: 30_000 }, async () => {
  for (const [args, what] of [
    [['bench', 'fig14', '--runs', '0'], '--runs'],
    [['bench', 'fig15', '--cpus', 'lots'], '--cpus'],
    [['bench', 'fig16a', '--rates', '200,,400'], '--rates'],
    [['bench', 'fig14', '--bogus'], '--bogus'],
  ] as const) {
    const r = await cli(args, 20_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(what), r.stderr);
  }
});

describe('sharing benchmarks on real agents and containers', { timeout: 600_000 }, () => {
  let skip: string | null = null;
  let out = '';
  before(async () => {
    skip = await dockerReady();
    out = await mkdtemp(join(tmpdir(), 'eph-bench-sharing-'));
  });
  after(async () => {
    await rm(out, { recursive: true, force: true });
  });

  test('fig14: three arms, both tasks timed, no OOM kill, nothing left behind', { timeout: 240_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await cli(['bench', 'fig14', ...TINY, '--out', out], 220_000);
    assert.equal(r.code, 0, r.stderr);
    for (const arm of ['overlay', 'none', 'tenant']) {
      assert.match(r.stdout, new RegExp(`pair +${arm} +I/O \\(microbench\\) +1 `));
      assert.match(r.stdout, new RegExp(`pair +${arm} +CPU \\(factorial\\) +1 `));
    }
    assert.match(r.stdout, /met {4}OOM kills in every run: 0: 0/);
    assert.match(r.stdout, /met {4}every loan back when no invocation runs \(limits at their quotas\): yes/);
    const json = JSON.parse(readFileSync(join(out, 'fig14.json'), 'utf8')) as { samples: SampleJson[]; oomKills: number };
    assert.equal(json.samples.length, 6);
    assert.ok(json.samples.every((s) => s.ms > 0 && !s.oom));
    // The loan reaches the I/O task with sharing only.
    assert.equal(loaned(json.samples, 'pair', 'tenant'), true);
    assert.equal(loaned(json.samples, 'pair', 'none'), false);
    assert.equal(loaned(json.samples, 'pair', 'overlay'), false);
    assert.equal(readFileSync(join(out, 'fig14.csv'), 'utf8').trim().split('\n').length, 7);
    assert.deepEqual(await leftovers(r.pid), []);
  });

  test('fig15 with --lend-while-idle: four variants in two scenarios; in the sequence, only the scopes that hold the idle CPU task lend', { timeout: 300_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await cli(['bench', 'fig15', ...TINY, '--lend-while-idle', '--out', out], 280_000);
    assert.equal(r.code, 0, r.stderr);
    for (const scenario of ['concurrent', 'sequence']) {
      for (const arm of ['none', 'function', 'workflow', 'tenant']) assert.match(r.stdout, new RegExp(`${scenario} +${arm} +I/O`));
    }
    assert.match(r.stdout, /idle warm donors lend too/);
    const json = JSON.parse(readFileSync(join(out, 'fig15-idle.json'), 'utf8')) as { samples: SampleJson[] };
    // concurrent: 4 tasks, sequence: 2, in each of 4 variants
    assert.equal(json.samples.length, 4 * (4 + 2));
    // cpu1 (factorial, workflow A) has finished when io1 (microbench, workflow A) starts.
    assert.equal(loaned(json.samples, 'sequence', 'tenant'), true);
    assert.equal(loaned(json.samples, 'sequence', 'workflow'), true);
    assert.equal(loaned(json.samples, 'sequence', 'function'), false);
    assert.equal(loaned(json.samples, 'sequence', 'none'), false);
    assert.deepEqual(await leftovers(r.pid), []);
  });

  test('fig16a: the decision alone and the release through the agent, per rate', { timeout: 180_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const r = await cli(['bench', 'fig16a', '--rates', '200,400', '--seconds', '1', '--out', out], 160_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}200 /m);
    assert.match(r.stdout, /^ {2}400 /m);
    assert.match(r.stdout, /Two cores cannot run 1000 real invocations a second/);
    const json = JSON.parse(readFileSync(join(out, 'fig16a.json'), 'utf8')) as { rows: { release: { n: number; p50: number }; decision: { p50: number } }[] };
    assert.equal(json.rows.length, 2);
    for (const row of json.rows) {
      assert.ok(row.release.n > 0 && row.release.p50 > 0);
      assert.ok(row.decision.p50 > 0);
    }
    assert.ok(existsSync(join(out, 'fig16a.csv')));
    assert.deepEqual(await leftovers(r.pid), []);
  });
});
