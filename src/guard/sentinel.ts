/**
 * The node agent's side of the guard sentinel (sentinel-main.ts): {@link spawnGuardSentinel}
 * starts the process, and {@link GuardSentinel.guarded} wraps a container's {@link GuardArm} so
 * that the sentinel hears of a cgroup before its guard is set and forgets it once the guard is
 * lifted. The agent itself is then never the only one who knows of a guard: if it dies, even by
 * SIGKILL, the pipe ends and the sentinel lifts every guard the agent had set.
 *
 * A `hold` is written to the pipe, and its write completed, before the guard is set: bytes in a
 * pipe are read before its end, so no guard is ever set that the sentinel would not lift. If the
 * sentinel itself dies while the agent lives, the agent starts another and tells it every cgroup
 * it holds again; until the new one is ready, no new guard is set (arm waits for it).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import type { GuardArm } from './arm.js';
import { formatCommand, type SentinelCommand } from './sentinel-core.js';

/** The compiled entry the child runs. */
export const SENTINEL_MAIN = fileURLToPath(new URL('./sentinel-main.js', import.meta.url));

type Child = ChildProcessByStdio<Writable, Readable, null>;

export interface GuardSentinel {
  /** `arm` whose guard the sentinel lifts if the agent dies: told before set, forgotten after lifted. */
  guarded(arm: GuardArm, dir: string): GuardArm;
  /** The container at `dir` is gone (its guard went with it): the sentinel forgets it. */
  forget(dir: string): Promise<void>;
  /** The live sentinel's pid (tests kill it). */
  pid(): number | undefined;
  /** Ends the pipe: the sentinel lifts whatever is still held and exits. Resolves once it has. */
  close(): Promise<void>;
}

export interface SentinelOptions {
  /** How long the sentinel may take to print its ready line. @default 10000 */
  readonly startTimeoutMs?: number;
  readonly log?: (msg: string) => void;
  /**
   * The agent's fd on its guard lease (lease.ts): the sentinel inherits it as its fd 3 and keeps it
   * for its life, so the lease ends only when the agent and every sentinel are gone.
   */
  readonly leaseFd?: number;
}

/** Starts one sentinel process and waits for its ready line. */
function startChild(timeoutMs: number, leaseFd: number | undefined): Promise<Child> {
  const child = spawn(process.execPath, [SENTINEL_MAIN], {
    // Its own process group: a signal meant for the agent's group (a terminal's ^C) does not end it
    // before the agent had its say. Its stderr is the agent's log; fd 3, the lease, it only keeps.
    stdio: ['pipe', 'pipe', 'inherit', leaseFd ?? 'ignore'],
    detached: true,
  }) as Child; // stdin and stdout are pipes: the 4-tuple has no typed overload
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new EphemeraError('EPH_GUARD_SENTINEL', `the guard sentinel (${SENTINEL_MAIN}) ${why}; without it the agent sets no OOM guard: run make to build it`));
    };
    const timer = setTimeout(() => {
      fail(`printed no ready line within ${String(timeoutMs)} ms`);
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      fail(`exited (${String(code ?? signal)}) before it was ready`);
    });
    child.once('error', (err) => {
      fail(`could not start: ${err.message}`);
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      out += c;
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      // The sentinel never keeps the agent alive: an agent that exits without close() ends the
      // pipe all the same, and the sentinel lifts what it holds.
      child.unref();
      for (const pipe of [child.stdin, child.stdout]) if (pipe instanceof Socket) pipe.unref();
      resolve(child);
    });
  });
}

function send(child: Child, c: SentinelCommand): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdin.write(formatCommand(c), (err) => {
      if (err) reject(new EphemeraError('EPH_GUARD_SENTINEL', `telling the guard sentinel (pid ${String(child.pid)}) ${c.op} ${c.dir}: ${err.message}`));
      else resolve();
    });
  });
}

/**
 * Starts the sentinel.
 * @throws EphemeraError `EPH_GUARD_SENTINEL` when it does not come up
 */
export async function spawnGuardSentinel(options: SentinelOptions = {}): Promise<GuardSentinel> {
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  const log = options.log ?? (() => undefined);
  /** Every cgroup told `hold` and not released, for a replacement sentinel. */
  const held = new Map<string, 1 | 2>();
  let closing = false;
  let current: Promise<Child>;
  let live: Child | undefined;

  const watch = (child: Child): Child => {
    child.stdin.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      if (closing) return;
      log(`the guard sentinel (pid ${String(child.pid)}) exited (${String(code ?? signal)}); starting another and telling it the ${String(held.size)} guard(s) held`);
      current = start();
      current.catch((err: unknown) => {
        log(`${(err as Error).message}; no new OOM guard is set until one runs`);
      });
    });
    return child;
  };
  const start = async (): Promise<Child> => {
    const child = watch(await startChild(timeoutMs, options.leaseFd));
    for (const [dir, version] of held) await send(child, { op: 'hold', dir, version });
    live = child;
    return child;
  };
  current = start();
  await current;
  const forget = async (dir: string): Promise<void> => {
    if (!held.delete(dir)) return;
    await send(await current, { op: 'release', dir });
  };

  return {
    guarded(arm, dir) {
      return {
        version: arm.version,
        limit: () => arm.limit(),
        arm: async (limit) => {
          held.set(dir, arm.version);
          await send(await current, { op: 'hold', dir, version: arm.version });
          await arm.arm(limit);
        },
        disarm: async () => {
          await arm.disarm();
          await forget(dir);
        },
      };
    },
    forget,
    pid: () => live?.pid,
    async close() {
      closing = true;
      const child = await current.catch(() => undefined);
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
