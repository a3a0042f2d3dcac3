/**
 * A fresh memory cgroup for one function instance: the analogue of a container's `--memory`.
 *
 * `ephemera run --memory SIZE` creates one, starts ephemerad and the command inside it (through
 * {@link InstanceCgroup.command}, so not one page is charged elsewhere), and destroys it at the end.
 *
 * Placement: on cgroup v1 the instance goes below the caller's own memory cgroup
 * (`<own>/ephemera/<name>`), so whatever limits the caller also limits the instance. On cgroup v2
 * a cgroup that holds processes cannot hand controllers to children, so instances go to
 * `<mount>/ephemera/<name>` with the memory controller enabled on the way down.
 */
import { mkdir, rmdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';

import { EphemeraError } from '../core/errors.js';
import { CgroupV1Limiter } from './cgroup-v1.js';
import { CgroupV2Limiter } from './cgroup-v2.js';
import { hasControl, readControl, writeControl } from './cgroupfs.js';
import { findMemoryCgroup, type MemoryCgroupLocation } from './detect.js';
import type { MemoryLimiter } from './limiter.js';

export interface InstanceCgroupOptions {
  /** Name of the cgroup directory: letters, digits, `.`, `_`, `-`. @default `ephemera-<pid>-<random>` */
  readonly name?: string;
  /** Memory limit in bytes (RAM; swap is forbidden unless `swap` is true). */
  readonly memoryLimit: number;
  /** Allow swap beyond the limit. @default false */
  readonly swap?: boolean;
  /** Absolute directory under which to create the cgroup. @default see the module comment */
  readonly parent?: string;
}

export interface InstanceCgroup {
  /** Absolute directory of the cgroup. */
  readonly path: string;
  readonly version: 1 | 2;
  /** Writing a pid here moves that process into the cgroup. */
  readonly procsFile: string;
  /** The limiter for this cgroup (what resize.ts and the Tenant Manager use). */
  readonly limiter: MemoryLimiter;
  /**
   * argv that runs `argv` inside the cgroup: a shell writes its own pid to {@link procsFile} and
   * then execs the command, so the command is charged from its first page on.
   */
  command(argv: readonly string[]): [string, ...string[]];
  setLimit(bytes: number | null): Promise<void>;
  usage(): Promise<number>;
  peak(): Promise<number | null>;
  oomKills(): Promise<number>;
  /** Pids in the cgroup now. */
  pids(): Promise<number[]>;
  /** Kills whatever still runs in the cgroup and removes it. Safe to call twice. */
  destroy(): Promise<void>;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const JOIN_SCRIPT = 'echo $$ > "$0" || exit 126; exec "$@"';

function errnoOf(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown error';
}

async function ensureDir(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return;
    throw notWritable(dir, what, err);
  }
}

function notWritable(dir: string, what: string, err: unknown): EphemeraError {
  const errno = errnoOf(err);
  return new EphemeraError('EPH_CGROUP_NOT_WRITABLE', `cannot create ${what} ${dir}: ${errno}; the memory cgroup hierarchy must be writable (inside a container it is usually mounted read-only: start the container with --memory and run ephemera without --memory, or use --budget)`, {
    cause: err,
    detail: { path: dir, errno },
  });
}

/** Enables the memory controller for the children of a v2 cgroup. */
async function delegateMemory(dir: string): Promise<void> {
  const enabled = (await readControl(dir, 'cgroup.subtree_control')).split(/\s+/);
  if (!enabled.includes('memory')) await writeControl(dir, 'cgroup.subtree_control', '+memory');
}

async function defaultParent(loc: MemoryCgroupLocation): Promise<string> {
  if (loc.version === 1) return join(loc.dir, 'ephemera');
  await delegateMemory(loc.mountPoint);
  return join(loc.mountPoint, 'ephemera');
}

/**
 * Creates the cgroup, sets its limit (no swap) and returns a handle.
 * @throws {EphemeraError} `EPH_CGROUP_NOT_ROOT` when not running as root,
 *   `EPH_CGROUP_UNAVAILABLE` when no memory controller is mounted,
 *   `EPH_CGROUP_NOT_WRITABLE` when the hierarchy cannot be written,
 *   `EPH_CGROUP_EXISTS` when the name is taken, `EPH_LIMIT_INVALID` for a bad limit or name.
 */
export async function createInstanceCgroup(options: InstanceCgroupOptions): Promise<InstanceCgroup> {
  const name = options.name ?? `ephemera-${process.pid}-${randomBytes(4).toString('hex')}`;
  if (!NAME.test(name) || name === '.' || name === '..') {
    throw new EphemeraError('EPH_LIMIT_INVALID', `cgroup name ${JSON.stringify(name)} is not usable; use 1-64 letters, digits, '.', '_' or '-'`, {
      detail: { name },
    });
  }
  if (!Number.isSafeInteger(options.memoryLimit) || options.memoryLimit <= 0) {
    throw new EphemeraError('EPH_LIMIT_INVALID', `memory limit must be a positive integer number of bytes, got ${String(options.memoryLimit)}`, {
      detail: { memoryLimit: options.memoryLimit },
    });
  }
  if (process.getuid?.() !== 0) {
    throw new EphemeraError('EPH_CGROUP_NOT_ROOT', `creating a memory cgroup needs root, but this process runs as uid ${String(process.getuid?.())}; run as root (e.g. sudo), or use --budget SIZE instead of --memory`);
  }
  const loc = await findMemoryCgroup();
  let parent: string;
  if (options.parent !== undefined) {
    parent = options.parent;
    if (loc.version === 2) await delegateMemory(parent);
  } else {
    parent = await defaultParent(loc);
    await ensureDir(parent, 'the parent cgroup');
    if (loc.version === 2) await delegateMemory(parent);
  }
  const path = join(parent, name);
  try {
    await mkdir(path);
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') {
      throw new EphemeraError('EPH_CGROUP_EXISTS', `cgroup ${path} already exists; choose another name, or if it is left over from a crashed run, remove it with: rmdir ${path}`, {
        cause: err,
        detail: { path },
      });
    }
    throw notWritable(path, 'the instance cgroup', err);
  }
  const swap = options.swap ?? false;
  const limiter: MemoryLimiter = loc.version === 1 ? new CgroupV1Limiter(path, { swap }) : new CgroupV2Limiter(path, { swap });
  const cg = new Instance(path, loc.version, limiter);
  try {
    if (loc.version === 1 && !swap && !(await hasControl(path, 'memory.memsw.limit_in_bytes'))) {
      // No swap accounting: the best v1 can do is not to prefer swapping this group out.
      await writeControl(path, 'memory.swappiness', '0');
    }
    await limiter.setLimit(options.memoryLimit);
  } catch (err) {
    await cg.destroy();
    throw err;
  }
  return cg;
}

class Instance implements InstanceCgroup {
  readonly procsFile: string;
  #destroyed = false;

  constructor(
    readonly path: string,
    readonly version: 1 | 2,
    readonly limiter: MemoryLimiter,
  ) {
    this.procsFile = join(path, 'cgroup.procs');
  }

  command(argv: readonly string[]): [string, ...string[]] {
    if (argv.length === 0) {
      throw new EphemeraError('EPH_LIMIT_INVALID', 'no command given to run inside the cgroup');
    }
    return ['/bin/sh', '-c', JOIN_SCRIPT, this.procsFile, ...argv];
  }

  setLimit(bytes: number | null): Promise<void> {
    return this.limiter.setLimit(bytes);
  }

  usage(): Promise<number> {
    return this.limiter.getUsage();
  }

  peak(): Promise<number | null> {
    return this.limiter.getPeak();
  }

  oomKills(): Promise<number> {
    return this.limiter.oomKills();
  }

  async pids(): Promise<number[]> {
    let text: string;
    try {
      text = await readFile(this.procsFile, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return [];
      throw err;
    }
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    const deadline = Date.now() + 10_000;
    if (this.version === 2 && (await hasControl(this.path, 'cgroup.kill'))) {
      await writeControl(this.path, 'cgroup.kill', '1').catch(() => undefined);
    }
    for (;;) {
      const pids = await this.pids();
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      if (Date.now() > deadline) {
        throw new EphemeraError('EPH_CGROUP_IO', `processes ${pids.join(', ')} in ${this.path} survived SIGKILL for 10 s (stuck in the kernel?); the cgroup was left in place`, {
          detail: { path: this.path, pids },
        });
      }
      await sleep(10);
    }
    // The kernel may report EBUSY for a moment after the last task exited.
    for (;;) {
      try {
        await rmdir(this.path);
        break;
      } catch (err) {
        const errno = errnoOf(err);
        if (errno === 'ENOENT') break;
        if (errno !== 'EBUSY' || Date.now() > deadline) {
          throw new EphemeraError('EPH_CGROUP_IO', `cannot remove cgroup ${this.path}: ${errno}`, { cause: err, detail: { path: this.path, errno } });
        }
        await sleep(10);
      }
    }
    this.#destroyed = true;
  }
}
