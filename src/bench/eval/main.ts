/**
 * `ephemera bench fig3|fig10|fig11|fig12|fig13|table3|all|quick`: the paper's evaluation in real
 * containers. Every workload runs in a fresh container of the function image under the same
 * memory limit and CPU set in each storage mode; the results go to results/eval/ as JSON, CSV,
 * SVG and PNG, and a table of medians and reductions is printed.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';

import { DockerEngine } from '../../container/engine.js';
import { ensureDockerEngine } from '../../container/dockerd.js';
import { ensureFunctionImage } from '../../container/image.js';
import { REPO_DIR } from '../../container/repo.js';
import { EphemeraError } from '../../core/errors.js';
import { CgroupSandbox } from './cgroup-sandbox.js';
import { DockerSandbox } from './docker-sandbox.js';
import { COMPOSITES, EXPERIMENTS } from './experiments.js';
import { writePlot, plotSpec } from './plot.js';
import { Progress } from '../progress.js';
import type { ExperimentResult } from './report.js';
import { buildResult, formatResult, toCsv } from './report.js';
import { runCells, runCount } from './runner.js';
import type { FunctionSandbox, Mode } from './sandbox.js';
import type { Size, WorkloadName } from './workloads.js';

export const EVAL_EXPERIMENTS = [...Object.keys(EXPERIMENTS), ...Object.keys(COMPOSITES)];

export interface EvalOptions {
  readonly experiments: readonly string[];
  readonly size: Size;
  readonly repeats: number;
  readonly modes: readonly Mode[];
  readonly cpuset: string;
  readonly sandbox: 'auto' | 'docker' | 'cgroup';
  readonly outDir: string;
  readonly timeoutMs: number;
  readonly plot: boolean;
  /** Only cells of these workloads; empty = all. */
  readonly workloads: readonly WorkloadName[];
  /** Directory holding the ephemerad and libephemera.so under test. */
  readonly nativeDir: string;
}

function usage(message: string): EphemeraError {
  return new EphemeraError('EPH_CLI_USAGE', `ephemera bench: ${message}`);
}

/**
 * Picks where functions run: Docker when its engine is (or can be made) available, otherwise a
 * memory cgroup on the host, saying why.
 * @throws {EphemeraError} `EPH_EVAL_NO_SANDBOX` when neither is possible.
 */
export async function openSandbox(kind: EvalOptions['sandbox'], say: (line: string) => void, nativeDir = join(REPO_DIR, 'build')): Promise<FunctionSandbox> {
  let dockerProblem: string | null = null;
  if (kind !== 'cgroup') {
    dockerProblem = ensureDockerEngine();
    if (dockerProblem === null) {
      const engine = new DockerEngine();
      const info = await engine.info();
      const image = await ensureFunctionImage(engine, { onProgress: (l) => say(`  ${l}`) });
      if (image.built) say(`built image ${image.ref} in ${(image.buildMs / 1000).toFixed(0)} s`);
      return new DockerSandbox(engine, image.ref, `Docker ${info.serverVersion}, storage ${info.storageDriver}, cgroup v${info.cgroupVersion}, image ${image.ref}`, nativeDir);
    }
    if (kind === 'docker') throw new EphemeraError('EPH_EVAL_NO_SANDBOX', `no Docker engine: ${dockerProblem}; run scripts/docker.sh ensure as root, or pass --sandbox cgroup`);
    say(`Docker is not available (${dockerProblem}); falling back to a memory cgroup with overlay/tmpfs mounts on the host`);
  }
  return CgroupSandbox.open(say, nativeDir);
}

/** The checkout's commit, with "+dirty" when tracked files differ from it (null outside git). */
function sourceCommit(): string | null {
  const head = spawnSync('git', ['-C', REPO_DIR, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return null;
  const dirty = spawnSync('git', ['-C', REPO_DIR, 'diff', '--quiet', 'HEAD', '--'], { encoding: 'utf8' }).status !== 0;
  return `${head.stdout.trim()}${dirty ? '+dirty' : ''}`;
}

function machineInfo(sandbox: FunctionSandbox): Record<string, unknown> {
  return {
    commit: sourceCommit(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: availableParallelism(),
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    sandbox: sandbox.description,
  };
}

/** Runs the experiments; returns the exit status (1 when two modes disagreed on an output). */
export async function runEval(o: EvalOptions): Promise<{ status: number; results: ExperimentResult[] }> {
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const sandbox = await openSandbox(o.sandbox, say, o.nativeDir);
  const avail = await sandbox.availability();
  const modes = o.modes.filter((m) => {
    const why = avail[m];
    if (why !== null) say(`mode ${m} skipped: ${why}`);
    return why === null;
  });
  if (modes.length === 0) throw new EphemeraError('EPH_EVAL_NO_SANDBOX', `none of the modes ${o.modes.join(', ')} can run here; see the reasons above`);

  const plan = o.experiments.map((name) => {
    const exp = EXPERIMENTS[name];
    if (exp === undefined) throw usage(`unknown experiment ${name}`);
    const cells = exp.cells(o.size, modes).filter((c) => o.workloads.length === 0 || o.workloads.includes(c.invocation.workload));
    return { exp, cells };
  });
  const total = plan.reduce((n, p) => n + runCount(p.cells, o.repeats), 0);
  say(`${sandbox.description}; ${total} runs (size ${o.size}, ${o.repeats} repeats, cpuset ${o.cpuset}, modes ${modes.join(',')})`);
  const progress = new Progress(total);
  await mkdir(o.outDir, { recursive: true });
  const machine = machineInfo(sandbox);
  const results: ExperimentResult[] = [];
  let status = 0;
  for (const { exp, cells } of plan) {
    const t0 = Date.now();
    const samples = await runCells(sandbox, cells, { repeats: o.repeats, cpuset: o.cpuset, timeoutMs: o.timeoutMs, progress });
    const result = buildResult(exp, cells, samples);
    results.push(result);
    const titles = Object.fromEntries(exp.metrics.map((m) => [m.key, m.title]));
    progress.end();
    process.stdout.write(`${formatResult(result, titles)}\n`);
    const base = join(o.outDir, exp.name);
    const options = { size: o.size, repeats: o.repeats, modes, cpuset: o.cpuset, nativeDir: o.nativeDir };
    await writeFile(`${base}.json`, `${JSON.stringify({ ...result, machine, options, startedAt: new Date(t0).toISOString(), durationS: (Date.now() - t0) / 1000, samples: samples.map((s) => ({ cell: s.cell.id, repeat: s.repeat, ...s.outcome })) }, null, 2)}\n`);
    await writeFile(`${base}.csv`, toCsv([result]));
    const written = [`${base}.json`, `${base}.csv`];
    if (o.plot) written.push(...(await writePlot(plotSpec(result, titles), base)));
    process.stdout.write(`   results: ${written.join(' ')}\n\n`);
    if (result.digestMismatches.length > 0) status = 1;
  }
  progress.end();
  if (status !== 0) {
    const e = new EphemeraError('EPH_EVAL_DIGEST_MISMATCH', 'a workload wrote different outputs in two storage modes (see DIGEST MISMATCH above); the file system under test returned wrong data');
    process.stderr.write(`ephemera: ${e.code}: ${e.message}\n`);
  }
  return { status, results };
}
