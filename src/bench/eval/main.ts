/**
 * `ephemera bench fig3|fig10|fig11|fig12|fig13|table3|all|quick`: the paper's evaluation in real
 * containers. Every workload runs in a fresh container of the function image under the same
 * memory limit and CPU set in each storage mode; the results go to results/eval/ as JSON, CSV,
 * SVG and PNG, and a table of medians and reductions is printed.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { DockerEngine } from '../../container/engine.js';
import { ensureDockerEngine } from '../../container/dockerd.js';
import { ensureFunctionImage } from '../../container/image.js';
import { REPO_DIR } from '../../container/repo.js';
import { EphemeraError } from '../../core/errors.js';
import { CgroupSandbox } from './cgroup-sandbox.js';
import { DockerSandbox } from './docker-sandbox.js';
import { COMPOSITES, EXPERIMENTS } from './experiments.js';
import { writePlot, plotSpec } from './plot.js';
import { Progress } from './progress.js';
import type { ExperimentResult } from './report.js';
import { buildResult, formatResult, toCsv } from './report.js';
import { runCells, runCount } from './runner.js';
import type { FunctionSandbox, Mode } from './sandbox.js';
import { MODES } from './sandbox.js';
import type { Size, WorkloadName } from './workloads.js';
import { SIZES, WORKLOAD_NAMES } from './workloads.js';

export const EVAL_EXPERIMENTS = [...Object.keys(EXPERIMENTS), ...Object.keys(COMPOSITES)];

export const EVAL_USAGE = `  fig3 fig10 fig11 fig12 fig13 table3 all quick
        the paper's evaluation in Docker containers: overlay vs tmpfs vs ephemera under the same
        --memory limit and CPU set (fig3: + mmap; table3: I/O intensity via strace). Flags:
        --size tiny|small|full (default full; quick: small), --repeats N (default 3; quick: 2),
        --modes overlay,tmpfs,ephemera, --cpuset CPUS (default: the last CPU),
        --sandbox auto|docker|cgroup (default auto: Docker, else a cgroup), --out DIR
        (default results/eval), --timeout SECONDS per run (default 900), --no-plot,
        --workloads NAME,... (only these workloads of the experiment), --native DIR (where
        ephemerad and libephemera.so come from; default build/).`;

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

/** Parses `EXPERIMENT [flags]`. @throws {EphemeraError} `EPH_CLI_USAGE` with what was wrong. */
export function parseEvalArgs(argv: readonly string[]): EvalOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        size: { type: 'string' },
        repeats: { type: 'string' },
        modes: { type: 'string' },
        cpuset: { type: 'string' },
        sandbox: { type: 'string' },
        out: { type: 'string' },
        timeout: { type: 'string' },
        'no-plot': { type: 'boolean' },
        workloads: { type: 'string' },
        native: { type: 'string' },
      },
    });
  } catch (err) {
    throw usage(`${(err as Error).message}; see ephemera help bench`);
  }
  const { values, positionals } = parsed;
  const name = positionals[0];
  if (name === undefined || positionals.length > 1) throw usage(`expected one experiment (${EVAL_EXPERIMENTS.join(', ')}), got ${JSON.stringify(positionals)}`);
  const experiments = COMPOSITES[name] ?? (EXPERIMENTS[name] !== undefined ? [name] : undefined);
  if (experiments === undefined) throw usage(`unknown experiment ${JSON.stringify(name)}; choose one of ${EVAL_EXPERIMENTS.join(', ')}`);
  const quick = name === 'quick';

  const size = (values.size ?? (quick ? 'small' : 'full')) as Size;
  if (!SIZES.includes(size)) throw usage(`--size must be one of ${SIZES.join(', ')}, got ${JSON.stringify(values.size)}`);
  const repeatsText = values.repeats ?? (quick ? '2' : '3');
  if (!/^[1-9]\d{0,2}$/.test(repeatsText)) throw usage(`--repeats must be an integer from 1 to 999, got ${JSON.stringify(repeatsText)}`);
  const modes = (values.modes ?? MODES.join(',')).split(',').map((m) => m.trim());
  for (const m of modes) if (!MODES.includes(m as Mode)) throw usage(`--modes takes a comma-separated list of ${MODES.join(', ')}, got ${JSON.stringify(m)}`);
  const cpuset = values.cpuset ?? String(availableParallelism() - 1);
  if (!/^\d+([-,]\d+)*$/.test(cpuset)) throw usage(`--cpuset takes CPU numbers like 1, 0-1 or 0,2, got ${JSON.stringify(cpuset)}`);
  const sandbox = values.sandbox ?? 'auto';
  if (sandbox !== 'auto' && sandbox !== 'docker' && sandbox !== 'cgroup') throw usage(`--sandbox must be auto, docker or cgroup, got ${JSON.stringify(sandbox)}`);
  const workloads = values.workloads === undefined ? [] : values.workloads.split(',').map((w) => w.trim());
  for (const w of workloads) if (!WORKLOAD_NAMES.includes(w as WorkloadName)) throw usage(`--workloads takes a comma-separated list of ${WORKLOAD_NAMES.join(', ')}, got ${JSON.stringify(w)}`);
  const timeoutText = values.timeout ?? '900';
  if (!/^[1-9]\d*$/.test(timeoutText)) throw usage(`--timeout takes whole seconds, got ${JSON.stringify(timeoutText)}`);
  return {
    experiments,
    size,
    repeats: Number(repeatsText),
    modes: MODES.filter((m) => modes.includes(m)),
    cpuset,
    sandbox,
    outDir: values.out ?? join(REPO_DIR, 'results', 'eval'),
    timeoutMs: Number(timeoutText) * 1000,
    plot: values['no-plot'] !== true,
    workloads: workloads as WorkloadName[],
    nativeDir: resolve(values.native ?? join(REPO_DIR, 'build')),
  };
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

/** Entry point for the CLI: `ephemera bench <experiment> [flags]`. Returns the exit status. */
export async function runEvalBench(argv: readonly string[]): Promise<number> {
  return (await runEval(parseEvalArgs(argv))).status;
}
