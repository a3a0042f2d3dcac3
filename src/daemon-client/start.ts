/**
 * Starting ephemerad and waiting until it is ready: the one routine for `ephemera run` and the
 * test harnesses (test/memory imports it compiled, test/fs/lib/harness.mjs too).
 *
 * The daemon writes `ready\n` to the descriptor named by `--ready-fd` once both of its sockets
 * listen (docs/PROTOCOL.md). Waiting for that line, with a bound, is the only safe signal: the
 * sockets appear in the run directory before the daemon accepts on them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

import { EphemeraError } from '../core/errors.js';

/** The descriptor the daemon reports `ready` on (the fourth stdio entry of the child). */
export const READY_FD = 3;

type Output = 'inherit' | 'pipe' | 'ignore';

export interface SpawnDaemonOptions {
  /** The daemon's command line, the program first, without `--ready-fd` (added here). */
  readonly argv: readonly string[];
  /** Rewrites the full command line, e.g. to start the daemon inside a cgroup. */
  readonly wrap?: (argv: string[]) => string[];
  readonly env?: NodeJS.ProcessEnv;
  /** @default 'inherit' */
  readonly stdout?: Output;
  /** @default 'inherit' */
  readonly stderr?: Output;
  /** A process group of its own, so that a terminal's ^C does not reach it. @default false */
  readonly detached?: boolean;
}

export interface ReadyOptions {
  readonly timeoutMs: number;
  /** Said after the reason when the daemon does not get ready: where its log is, its stderr. */
  readonly hint?: () => string;
}

/** Spawns the daemon with a pipe on {@link READY_FD}; follow with {@link waitForReady}. */
export function spawnDaemon(o: SpawnDaemonOptions): ChildProcess {
  const full = [...o.argv, '--ready-fd', String(READY_FD)];
  const [file, ...args] = o.wrap === undefined ? full : o.wrap(full);
  return spawn(file ?? '', args, {
    stdio: ['ignore', o.stdout ?? 'inherit', o.stderr ?? 'inherit', 'pipe'],
    detached: o.detached ?? false,
    ...(o.env === undefined ? {} : { env: o.env }),
  });
}

/**
 * Resolves when the daemon has written `ready`. Leaves the process alone when it fails: the
 * caller decides whether to stop it (see {@link startDaemon}).
 *
 * @throws {EphemeraError} `EPH_DAEMON_START` when it exits, cannot be started, or is not ready
 *   within `timeoutMs`
 */
export function waitForReady(daemon: ChildProcess, o: ReadyOptions): Promise<void> {
  const hint = (): string => {
    const h = o.hint?.() ?? '';
    return h === '' ? '' : `; ${h}`;
  };
  return new Promise((resolve, reject) => {
    const readyPipe = daemon.stdio[READY_FD] as Readable | null | undefined;
    let seen = '';
    const done = (err?: EphemeraError): void => {
      clearTimeout(timer);
      daemon.off('exit', onExit);
      daemon.off('error', onError);
      readyPipe?.off('data', onData);
      readyPipe?.destroy();
      if (err === undefined) resolve();
      else reject(err);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      if (seen.includes('ready\n')) done();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      done(new EphemeraError('EPH_DAEMON_START', `ephemerad exited before it was ready (${signal ?? `status ${String(code)}`})${hint()}`));
    };
    const onError = (err: Error): void => {
      done(new EphemeraError('EPH_DAEMON_START', `cannot start ephemerad: ${err.message}; run \`make\`${hint()}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      done(new EphemeraError('EPH_DAEMON_START', `ephemerad did not report ready within ${o.timeoutMs} ms${hint()}`));
    }, o.timeoutMs);
    if (readyPipe === null || readyPipe === undefined) {
      done(new EphemeraError('EPH_DAEMON_START', `ephemerad was started without a pipe on fd ${READY_FD}; start it with spawnDaemon`));
      return;
    }
    readyPipe.on('data', onData);
    daemon.on('exit', onExit);
    daemon.on('error', onError);
  });
}

/**
 * {@link spawnDaemon} and {@link waitForReady} in one, for callers that have nothing to clean up
 * on failure but the daemon itself: it is killed (SIGKILL) when it does not get ready.
 * `onSpawn` sees the child before the wait, e.g. to collect its stderr for `hint`.
 *
 * @throws {EphemeraError} `EPH_DAEMON_START`
 */
export async function startDaemon(o: SpawnDaemonOptions & ReadyOptions & { readonly onSpawn?: (daemon: ChildProcess) => void }): Promise<ChildProcess> {
  const daemon = spawnDaemon(o);
  o.onSpawn?.(daemon);
  try {
    await waitForReady(daemon, o);
  } catch (err) {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    throw err;
  }
  return daemon;
}
