/**
 * The guard lease: the node agent's proof of life for the daemons whose OOM guard it sets, held
 * without a clock. It is a FIFO in the agent's state directory (`guard.lease`), linked into each
 * container's run directory; the agent opens it for writing and keeps the fd, and its guard
 * sentinel inherits that fd. The kernel closes both ends when their processes die, however they
 * die (SIGKILL of both, the node's OOM killer), and a daemon's non-blocking read of its read end
 * then returns end-of-file instead of EAGAIN (daemon/guardlease.c). With the guard set, nobody
 * holding the lease and its cgroup stalled at the limit, the daemon ends the stall itself.
 *
 * The FIFO is made once per state directory and never replaced, so a daemon that opened it under
 * an earlier agent reads the same pipe as the agent that takes its container over.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { link, lstat, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { EphemeraError } from '../core/errors.js';

/** The lease's name in the state directory and in every run directory. */
export const LEASE_NAME = 'guard.lease';

export interface GuardLease {
  /** The fd the agent holds open for writing: hand it to the sentinel, which keeps it too. */
  readonly fd: number;
  readonly path: string;
  /** Makes `<dir>/guard.lease` this lease (a link of the FIFO; one of another inode is replaced). */
  linkInto(dir: string): Promise<void>;
  /** Closes the agent's end (the sentinel's stays until it exits). */
  close(): void;
}

const fail = (path: string, what: string): EphemeraError =>
  new EphemeraError('EPH_GUARD_LEASE', `the OOM guard lease ${path} ${what}; the agent sets no OOM guard without it: remove the path or choose another --state-dir`, { detail: { path } });

/**
 * Makes (if absent) and opens the lease of `stateDir`.
 * @throws EphemeraError `EPH_GUARD_LEASE` when the path is taken by something else or cannot be made
 */
export async function openGuardLease(stateDir: string): Promise<GuardLease> {
  const path = join(stateDir, LEASE_NAME);
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) {
    // Node has no mkfifo; coreutils' does it (a FIFO made beside, then renamed: never half made).
    const tmp = `${path}.${String(process.pid)}`;
    await unlink(tmp).catch(() => undefined);
    try {
      await promisify(execFile)('mkfifo', ['-m', '0600', tmp], { timeout: 10_000 });
      await rename(tmp, path);
    } catch (err) {
      throw fail(path, `could not be made (mkfifo: ${(err as Error).message.trim()})`);
    }
  } else if (!st.isFIFO()) {
    throw fail(path, 'exists and is not a FIFO');
  }
  let fd: number;
  try {
    // Read-write: a FIFO opened so never waits for a reader.
    fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    throw fail(path, `could not be opened: ${(err as Error).message}`);
  }
  const ino = (await lstat(path)).ino;
  return {
    fd,
    path,
    async linkInto(dir) {
      const at = join(dir, LEASE_NAME);
      const there = await lstat(at).catch(() => undefined);
      if (there?.ino === ino) return;
      if (there !== undefined) await unlink(at);
      await link(path, at).catch((err: unknown) => {
        throw fail(path, `could not be linked into ${dir}: ${(err as Error).message}`);
      });
    },
    close() {
      closeSync(fd);
    },
  };
}
