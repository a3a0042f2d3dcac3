/**
 * What the memory tests share: build outputs, a real ephemerad started the way `ephemera run`
 * starts it, raw control-socket connections, and the reason to skip when this kernel has no memory
 * cgroup controller.
 *
 * The compiled tests live in build/test-memory/, two levels below the repository like this
 * directory, so `../../build/js/...` reaches the compiled control plane from both places.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startDaemon as startDaemonReady } from '../../build/js/daemon-client/start.js';
import type { InstanceCgroup } from '../../build/js/limiter/cgroup.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BUILD = join(REPO, 'build');
export const EPHEMERA = join(BUILD, 'ephemera');
export const EPHEMERAD = join(BUILD, 'ephemerad');
export const PYTHON = '/usr/bin/python3';
export const MiB = 1024 * 1024;

/** Why real-cgroup tests cannot run here, or undefined when they can. */
export { memoryCgroupUnusable as cgroupSkipReason } from '../../build/js/limiter/detect.js';

export interface Daemon {
  readonly proc: ChildProcess;
  readonly rundir: string;
  readonly root: string;
  readonly control: string;
  /** stderr so far (the daemon's own diagnostics). */
  stderr(): string;
  /** SIGTERM, wait, remove the directories. */
  stop(): Promise<void>;
}

export interface DaemonOptions {
  readonly budget?: number;
  readonly headroom?: number;
  /** `none`, `auto` or a cgroup directory. @default 'none' */
  readonly cgroup?: string;
  /** Start the daemon inside this cgroup. */
  readonly inCgroup?: InstanceCgroup;
}

/** Starts build/ephemerad with a fresh run directory and root, and waits for `ready`. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const base = await mkdtemp('/var/tmp/eph-memtest-');
  const rundir = join(base, 'run');
  const root = join(base, 'root');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(rundir, { mode: 0o700 });
  await mkdir(root);
  const argv = [
    EPHEMERAD,
    '--rundir', rundir,
    '--root', root,
    '--cgroup', opts.cgroup ?? 'none',
    ...(opts.budget === undefined ? [] : ['--budget', String(opts.budget)]),
    ...(opts.headroom === undefined ? [] : ['--headroom', String(opts.headroom)]),
  ];
  const cg = opts.inCgroup;
  let stderr = '';
  let proc: ChildProcess;
  try {
    proc = await startDaemonReady({
      argv,
      ...(cg === undefined ? {} : { wrap: (a: string[]) => cg.command(a) }),
      stdout: 'ignore',
      stderr: 'pipe',
      timeoutMs: 10_000,
      onSpawn: (p) => p.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d)),
      hint: () => `its stderr: ${stderr}`,
    });
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
  return {
    proc,
    rundir,
    root,
    control: join(rundir, 'control.sock'),
    stderr: () => stderr,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        await exited;
      }
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** A raw line-oriented connection to a control socket, for what the typed client never sends. */
export class RawConn {
  readonly #sock: Socket;
  #buf = '';
  readonly #lines: string[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        this.#lines.push(this.#buf.slice(0, nl));
        this.#buf = this.#buf.slice(nl + 1);
      }
      this.#wake?.();
    });
    sock.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    sock.on('error', () => undefined);
  }

  static async open(path: string): Promise<RawConn> {
    const sock = connect({ path });
    await once(sock, 'connect');
    return new RawConn(sock);
  }

  write(text: string): void {
    this.#sock.write(text);
  }

  /** The next line as JSON; rejects after `ms` or when the daemon closes. */
  async next(ms = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    while (this.#lines.length === 0) {
      if (this.#closed) throw new Error('connection closed by the daemon');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return JSON.parse(this.#lines.shift() ?? '') as Record<string, unknown>;
  }

  /** Sends one line and returns the response. */
  async ask(line: string): Promise<Record<string, unknown>> {
    this.write(line.endsWith('\n') ? line : `${line}\n`);
    return this.next();
  }

  /** True once the daemon has closed this connection. */
  get closed(): boolean {
    return this.#closed;
  }

  destroy(): void {
    this.#sock.destroy();
  }
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv to its end and collects its output. */
export function run(argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<Exit> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file ?? '', args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env }) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
