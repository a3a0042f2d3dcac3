/**
 * The scratch area of one benchmark run: a fresh directory on disk and, as root, a tmpfs mounted
 * inside it for the tmpfs contender. It is removed at the end, and also when the run is interrupted
 * (^C or SIGTERM), so an interrupted benchmark does not leave a mount behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';

const TMPFS_MAGIC = 0x01021994;

/** True when `dir` is on a tmpfs. */
export function isTmpfs(dir: string): boolean {
  return statfsSync(dir).type === TMPFS_MAGIC;
}

export interface Scratch {
  /** The fresh directory on disk. */
  readonly dir: string;
  /** The mounted tmpfs, or undefined when it could not be mounted. */
  readonly tmpfs: string | undefined;
  /** Why there is no tmpfs (an `EPH_BENCH_NEEDS_ROOT` message), when there is none. */
  readonly tmpfsSkipped: string | undefined;
  /** Unmount and remove everything. Safe to call twice. */
  dispose(): void;
}

export interface ScratchOptions {
  /** Parent directory on a disk file system. */
  readonly base: string;
  /** Name prefix of the fresh directory, e.g. `ephemera-bench-`. */
  readonly prefix: string;
  /** Size of the tmpfs to mount, in bytes. */
  readonly tmpfsBytes: number;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Create the scratch area.
 *
 * @throws {EphemeraError} `EPH_BENCH_FAILED` when `base` is itself on a tmpfs (the disk contender
 *   would not be a disk) or the tmpfs mount fails as root
 */
export function makeScratch(opts: ScratchOptions): Scratch {
  if (isTmpfs(opts.base)) {
    throw new EphemeraError('EPH_BENCH_FAILED', `${opts.base} is on a tmpfs, so the "disk" contender would not be a disk; give --work DIR on a disk file system`);
  }
  const dir = mkdtempSync(join(opts.base, opts.prefix));
  const tmpfsDir = join(dir, 'tmpfs');
  let mounted = false;
  let disposed = false;
  const dispose = (): void => {
    if (disposed) return;
    disposed = true;
    for (const s of SIGNALS) process.off(s, onSignal);
    if (mounted) {
      try {
        // Lazy, so a benchmark program that is still being killed cannot keep it busy.
        execFileSync('umount', ['-l', tmpfsDir], { stdio: 'ignore' });
      } catch {
        process.stderr.write(`ephemera bench: could not unmount ${tmpfsDir}; unmount it by hand\n`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    dispose();
    process.kill(process.pid, sig);
  };
  for (const s of SIGNALS) process.once(s, onSignal);

  let tmpfsSkipped: string | undefined;
  if (process.getuid?.() !== 0) {
    tmpfsSkipped = new EphemeraError(
      'EPH_BENCH_NEEDS_ROOT',
      `the tmpfs contender mounts a tmpfs and needs root (uid is ${String(process.getuid?.())}); run the benchmark as root to include it`,
    ).message;
  } else {
    mkdirSync(tmpfsDir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.tmpfsBytes},mode=0700`, 'ephemera-bench', tmpfsDir], { stdio: ['ignore', 'ignore', 'pipe'] });
      mounted = true;
    } catch (err) {
      dispose();
      const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
      throw new EphemeraError('EPH_BENCH_FAILED', `cannot mount a tmpfs on ${tmpfsDir}: ${stderr || String(err)}`, { cause: err });
    }
  }
  return { dir, tmpfs: mounted ? tmpfsDir : undefined, tmpfsSkipped, dispose };
}
