/**
 * Runs each invocation in a fresh Docker container of the function image, under `--memory`
 * (with no swap) and `--cpuset-cpus`; the scratch directory /tmp is the container's writable
 * overlay layer, a `--mount type=tmpfs`, or the writable layer managed by Ephemera.
 *
 * workloads/ is bind-mounted read-only, and so are build/ephemerad and build/libephemera.so in
 * ephemera mode: the image holds only Debian packages and never needs rebuilding for a code change.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { ContainerEngine, MountSpec } from '../../container/engine.js';
import { REPO_DIR } from '../../container/repo.js';
import type { FunctionSandbox, Mode, RunOutcome, RunRequest } from './sandbox.js';
import { outcomeOf } from './sandbox.js';
import { workloadArgv } from './workloads.js';

const IN_WORKLOADS = '/opt/ephemera/workloads';
const IN_DAEMON = '/opt/ephemera/bin/ephemerad';
const IN_LIB = '/opt/ephemera/lib/libephemera.so';
const SCRATCH = '/tmp';

export class DockerSandbox implements FunctionSandbox {
  readonly kind = 'docker' as const;
  readonly description: string;
  readonly #engine: ContainerEngine;
  readonly #image: string;
  readonly #buildDir: string;

  constructor(engine: ContainerEngine, image: string, description: string, buildDir = join(REPO_DIR, 'build')) {
    this.#engine = engine;
    this.#image = image;
    this.description = description;
    this.#buildDir = buildDir;
  }

  availability(): Promise<Record<Mode, string | null>> {
    return Promise.resolve({ overlay: null, tmpfs: null, ephemera: ephemeraMissing(this.#buildDir) });
  }

  async run(req: RunRequest): Promise<RunOutcome> {
    const mounts: MountSpec[] = [{ type: 'bind', source: join(REPO_DIR, 'workloads'), target: IN_WORKLOADS, readOnly: true }];
    const launch = ['python3', `${IN_WORKLOADS}/launch.py`];
    if (req.mode === 'tmpfs') mounts.push({ type: 'tmpfs', target: SCRATCH });
    if (req.mode === 'ephemera') {
      mounts.push(
        { type: 'bind', source: join(this.#buildDir, 'ephemerad'), target: IN_DAEMON, readOnly: true },
        { type: 'bind', source: join(this.#buildDir, 'libephemera.so'), target: IN_LIB, readOnly: true },
      );
      launch.push('--ephemera', '--daemon', IN_DAEMON, '--lib', IN_LIB, '--root', SCRATCH);
    }
    if (req.strace === true) launch.push('--strace', '/run/strace.txt');
    const cmd = [...launch, '--', ...workloadArgv('python3', IN_WORKLOADS, req.invocation, SCRATCH, req.size)];
    const r = await this.#engine.run(
      {
        image: this.#image,
        cmd,
        env: { PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
        memory: req.memory,
        memorySwap: req.memory,
        cpuset: req.cpuset,
        mounts,
        labels: { 'ephemera.eval': '1', 'ephemera.mode': req.mode },
        ...(req.strace === true ? { allowPtrace: true } : {}),
      },
      { timeoutMs: req.timeoutMs },
    );
    return outcomeOf(r);
  }
}

/** Why ephemera mode cannot run with this build directory, or null when it can. */
export function ephemeraMissing(buildDir: string): string | null {
  for (const f of ['ephemerad', 'libephemera.so']) {
    if (!existsSync(join(buildDir, f))) return `${join(buildDir, f)} is missing (run make)`;
  }
  return null;
}
