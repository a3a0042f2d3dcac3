/**
 * The fallback where no Docker engine runs: each invocation gets its own memory cgroup (the
 * limiter's instance cgroup, no swap) and CPU set (taskset), and a scratch directory that is an
 * OverlayFS mount with its upper layer on disk (overlay), a tmpfs mount (tmpfs), or a plain disk
 * directory managed by Ephemera (ephemera). The host's own Debian python3 packages run the
 * workloads, so they are installed on first use.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { REPO_DIR } from '../../container/repo.js';
import { EphemeraError } from '../../core/errors.js';
import { createInstanceCgroup } from '../../limiter/cgroup.js';
import { ephemeraMissing } from './docker-sandbox.js';
import type { FunctionSandbox, Mode, RunOutcome, RunRequest } from './sandbox.js';
import { outcomeOf } from './sandbox.js';
import { workloadArgv } from './workloads.js';

const PYTHON = '/usr/bin/python3';
const WORK_BASE = '/var/tmp/ephemera-eval';

function sh(argv: readonly string[]): { ok: boolean; text: string } {
  const [file, ...args] = argv as [string, ...string[]];
  const r = spawnSync(file, args, { encoding: 'utf8' });
  return { ok: r.status === 0, text: `${r.stdout}${r.stderr}`.trim() };
}

async function packageList(): Promise<string[]> {
  const text = await readFile(join(REPO_DIR, 'images', 'function.packages'), 'utf8');
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

export class CgroupSandbox implements FunctionSandbox {
  readonly kind = 'cgroup' as const;
  readonly description: string;
  readonly #buildDir: string;

  private constructor(description: string, buildDir: string) {
    this.description = description;
    this.#buildDir = buildDir;
  }

  /**
   * Checks root, installs the workloads' Debian packages on the host when missing.
   * @throws {EphemeraError} `EPH_EVAL_NO_SANDBOX` when not root or the packages cannot be had.
   */
  static async open(say: (line: string) => void, buildDir = join(REPO_DIR, 'build')): Promise<CgroupSandbox> {
    if (process.getuid?.() !== 0) throw new EphemeraError('EPH_EVAL_NO_SANDBOX', 'the cgroup fallback needs root (memory cgroups, overlay and tmpfs mounts); run ephemera bench as root');
    if (!sh([PYTHON, '-c', 'import numpy, PIL, sklearn, cv2']).ok || !sh(['strace', '-V']).ok) {
      const pkgs = await packageList();
      say(`installing the workloads' Debian packages on the host: ${pkgs.join(' ')}`);
      const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      if (r.status !== 0) throw new EphemeraError('EPH_EVAL_NO_SANDBOX', `apt-get install ${pkgs.join(' ')} failed; install them by hand to run the cgroup fallback`);
    }
    await mkdir(WORK_BASE, { recursive: true });
    return new CgroupSandbox(`memory cgroup on the host (no Docker), scratch under ${WORK_BASE}`, buildDir);
  }

  availability(): Promise<Record<Mode, string | null>> {
    return Promise.resolve({ overlay: null, tmpfs: null, ephemera: ephemeraMissing(this.#buildDir) });
  }

  async run(req: RunRequest): Promise<RunOutcome> {
    const base = await mkdtemp(join(WORK_BASE, `${req.mode}-`));
    const scratch = join(base, 'scratch');
    await mkdir(scratch, { mode: 0o1777 });
    let mounted = false;
    const cg = await createInstanceCgroup({ memoryLimit: req.memory });
    try {
      if (req.mode === 'overlay') {
        for (const d of ['lower', 'upper', 'work']) await mkdir(join(base, d));
        const m = sh(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${join(base, 'lower')},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, scratch]);
        if (!m.ok) throw new EphemeraError('EPH_EVAL_NO_SANDBOX', `mounting an overlay on ${scratch} failed: ${m.text}`);
        mounted = true;
      } else if (req.mode === 'tmpfs') {
        const m = sh(['mount', '-t', 'tmpfs', '-o', 'mode=1777', 'tmpfs', scratch]);
        if (!m.ok) throw new EphemeraError('EPH_EVAL_NO_SANDBOX', `mounting a tmpfs on ${scratch} failed: ${m.text}`);
        mounted = true;
      }
      const launch = [PYTHON, join(REPO_DIR, 'workloads', 'launch.py')];
      if (req.mode === 'ephemera') {
        launch.push('--ephemera', '--daemon', join(this.#buildDir, 'ephemerad'), '--lib', join(this.#buildDir, 'libephemera.so'), '--root', scratch, '--rundir', join(base, 'run'));
      }
      if (req.strace === true) launch.push('--strace', join(base, 'strace.txt'));
      const argv = ['taskset', '-c', req.cpuset, ...launch, '--', ...workloadArgv(PYTHON, join(REPO_DIR, 'workloads'), req.invocation, scratch, req.size)];
      const raw = await runWithTimeout(cg.command(argv), req.timeoutMs);
      const oomKilled = (await cg.oomKills()) > 0;
      return outcomeOf({ ...raw, oomKilled });
    } finally {
      await cg.destroy();
      if (mounted) sh(['umount', '-l', scratch]);
      await rm(base, { recursive: true, force: true });
    }
  }
}

function runWithTimeout(argv: readonly string[], timeoutMs: number): Promise<{ exitCode: number; timedOut: boolean; wallMs: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv as [string, ...string[]];
    const t0 = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        exitCode: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15),
        timedOut,
        wallMs: performance.now() - t0,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}
