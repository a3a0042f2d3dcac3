/**
 * `ephemera bench fig3|fig10|fig11|fig12|fig13|table3|all|quick`: command-line flags for the
 * paper's evaluation in containers (src/bench/eval/); this file only parses.
 */
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';

import { REPO_DIR } from '../container/repo.js';
import { EphemeraError } from '../core/errors.js';
import { COMPOSITES, EXPERIMENTS } from '../bench/eval/experiments.js';
import { EVAL_EXPERIMENTS, runEval, type EvalOptions } from '../bench/eval/main.js';
import { MODES, type Mode } from '../bench/eval/sandbox.js';
import { SIZES, WORKLOAD_NAMES, type Size, type WorkloadName } from '../bench/eval/workloads.js';
import { flagSet, flagValue, parseFlags, type FlagSpec } from './flags.js';

export const EVAL_USAGE = `  fig3 fig10 fig11 fig12 fig13 table3 all quick
        the paper's evaluation in Docker containers: overlay vs tmpfs vs ephemera under the same
        --memory limit and CPU set (fig3: + mmap; table3: I/O intensity via strace). Flags:
        --size tiny|small|full (default full; quick: small), --repeats N (default 3; quick: 2),
        --modes overlay,tmpfs,ephemera, --cpuset CPUS (default: the last CPU),
        --sandbox auto|docker|cgroup (default auto: Docker, else a cgroup), --out DIR
        (default results/eval), --timeout SECONDS per run (default 900), --no-plot,
        --workloads NAME,... (only these workloads of the experiment), --native DIR (where
        ephemerad and libephemera.so come from; default build/).`;

const CONTEXT = 'ephemera bench';

const FLAGS = {
  size: { value: true },
  repeats: { value: true },
  modes: { value: true },
  cpuset: { value: true },
  sandbox: { value: true },
  out: { value: true },
  timeout: { value: true },
  'no-plot': { value: false },
  workloads: { value: true },
  native: { value: true },
} as const satisfies Readonly<Record<string, FlagSpec>>;

function usage(message: string): EphemeraError {
  return new EphemeraError('EPH_CLI_USAGE', `${CONTEXT}: ${message}; see \`ephemera help bench\``);
}

/** Parses `EXPERIMENT [flags]`. @throws {EphemeraError} `EPH_CLI_USAGE` with what was wrong. */
export function parseEvalArgs(argv: readonly string[]): EvalOptions {
  const parsed = parseFlags(argv, FLAGS, CONTEXT, 1);
  if (parsed.rest !== undefined) throw usage('`--` is not used by the evaluation');
  const name = parsed.positionals[0];
  if (name === undefined) throw usage(`expected one experiment (${EVAL_EXPERIMENTS.join(', ')}), got none`);
  const experiments = COMPOSITES[name] ?? (EXPERIMENTS[name] !== undefined ? [name] : undefined);
  if (experiments === undefined) throw usage(`unknown experiment ${JSON.stringify(name)}; choose one of ${EVAL_EXPERIMENTS.join(', ')}`);
  const quick = name === 'quick';

  const sizeText = flagValue(parsed, 'size') ?? (quick ? 'small' : 'full');
  if (!(SIZES as readonly string[]).includes(sizeText)) throw usage(`--size must be one of ${SIZES.join(', ')}, got ${JSON.stringify(sizeText)}`);
  const repeatsText = flagValue(parsed, 'repeats') ?? (quick ? '2' : '3');
  if (!/^[1-9]\d{0,2}$/.test(repeatsText)) throw usage(`--repeats must be an integer from 1 to 999, got ${JSON.stringify(repeatsText)}`);
  const modes = (flagValue(parsed, 'modes') ?? MODES.join(',')).split(',').map((m) => m.trim());
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw usage(`--modes takes a comma-separated list of ${MODES.join(', ')}, got ${JSON.stringify(m)}`);
  const cpuset = flagValue(parsed, 'cpuset') ?? String(availableParallelism() - 1);
  if (!/^\d+([-,]\d+)*$/.test(cpuset)) throw usage(`--cpuset takes CPU numbers like 1, 0-1 or 0,2, got ${JSON.stringify(cpuset)}`);
  const sandbox = flagValue(parsed, 'sandbox') ?? 'auto';
  if (sandbox !== 'auto' && sandbox !== 'docker' && sandbox !== 'cgroup') throw usage(`--sandbox must be auto, docker or cgroup, got ${JSON.stringify(sandbox)}`);
  const workloadsText = flagValue(parsed, 'workloads');
  const workloads = workloadsText === undefined ? [] : workloadsText.split(',').map((w) => w.trim());
  for (const w of workloads) if (!(WORKLOAD_NAMES as readonly string[]).includes(w)) throw usage(`--workloads takes a comma-separated list of ${WORKLOAD_NAMES.join(', ')}, got ${JSON.stringify(w)}`);
  const timeoutText = flagValue(parsed, 'timeout') ?? '900';
  if (!/^[1-9]\d*$/.test(timeoutText)) throw usage(`--timeout takes whole seconds, got ${JSON.stringify(timeoutText)}`);
  return {
    experiments,
    size: sizeText as Size,
    repeats: Number(repeatsText),
    modes: MODES.filter((m: Mode) => modes.includes(m)),
    cpuset,
    sandbox,
    outDir: flagValue(parsed, 'out') ?? join(REPO_DIR, 'results', 'eval'),
    timeoutMs: Number(timeoutText) * 1000,
    plot: !flagSet(parsed, 'no-plot'),
    workloads: workloads as WorkloadName[],
    nativeDir: resolve(flagValue(parsed, 'native') ?? join(REPO_DIR, 'build')),
  };
}

/** `ephemera bench <experiment> [flags]`. Returns the exit status. */
export async function evalBenchMain(argv: readonly string[]): Promise<number> {
  return (await runEval(parseEvalArgs(argv))).status;
}
