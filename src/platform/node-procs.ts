/**
 * Node agents as child processes of `ephemera up`: each `ephemera node` gets its own state
 * directory (and so its own `node.sock`), its log file, and a bounded start and stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import type { NodeAgent } from './agent.js';

export interface NodeProcessSpec {
  readonly name: string;
  readonly stateDir: string;
  /** The node's memory (N_lim), bytes; undefined lets the agent decide. */
  readonly memoryBytes?: number;
  /** Extra flags for `ephemera node` (e.g. --sharing). */
  readonly extraArgs?: readonly string[];
}

export interface NodeProcess {
  readonly spec: NodeProcessSpec;
  readonly child: ChildProcess;
  readonly agent: NodeAgent;
  readonly logPath: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Removes the empty parent cgroups Docker made for an agent's containers (`--cgroup-parent`
 * /ephemera-NAME, the agent's default), in every v1 hierarchy or the v2 tree, once the agent has
 * removed its containers. A cgroup still in use (EBUSY) or absent is left alone.
 */
export function removeParentCgroups(node: string, root = CGROUP_ROOT): void {
  const name = `ephemera-${node}`;
  let dirs: string[];
  try {
    dirs = [root, ...readdirSync(root).map((d) => join(root, d))];
  } catch {
    return;
  }
  for (const d of dirs) {
    try {
      rmdirSync(join(d, name));
    } catch {
      // absent, not a cgroup directory, or still holding a process
    }
  }
}

function tail(path: string, lines = 8): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts `ephemera node` and waits (up to `startMs`) until its API answers on `<stateDir>/node.sock`.
 *
 * @param cli the argv that runs the ephemera CLI (e.g. [node, build/js/cli/main.js])
 * @param connect makes the NodeAgent for a socket (node-adapter.ts)
 * @throws {EphemeraError} `EPH_PLATFORM_START` when it exits or does not answer in time
 */
export async function startNodeProcess(
  cli: readonly string[],
  spec: NodeProcessSpec,
  connect: (socketPath: string, name: string) => NodeAgent,
  startMs = 120_000,
): Promise<NodeProcess> {
  mkdirSync(spec.stateDir, { recursive: true, mode: 0o700 });
  const logPath = join(spec.stateDir, 'agent.log');
  const fd = openSync(logPath, 'a');
  const args = [
    ...cli.slice(1),
    'node',
    '--state-dir', spec.stateDir,
    '--node-name', spec.name,
    ...(spec.memoryBytes === undefined ? [] : ['--memory', String(spec.memoryBytes)]),
    ...(spec.extraArgs ?? []),
  ];
  // Its own process group: a Ctrl-C at the terminal reaches `ephemera up`, which stops the
  // controller (removing the containers through the agents) before it stops the agents.
  const child = spawn(cli[0] ?? process.execPath, args, { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const agent = connect(join(spec.stateDir, 'node.sock'), spec.name);
  const exited = new Promise<never>((_resolve, reject) => {
    child.once('exit', (code, signal) => {
      reject(new EphemeraError('EPH_PLATFORM_START', `node agent ${spec.name} exited (${signal ?? `status ${code}`}) before it answered; its log ${logPath} ends:\n${tail(logPath)}`));
    });
  });
  exited.catch(() => undefined);
  const stop = (graceMs = 30_000): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      child.once('exit', () => {
        clearTimeout(timer);
        removeParentCgroups(spec.name);
        resolve();
      });
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + startMs;
  for (;;) {
    try {
      await Promise.race([agent.state(), exited]);
      break;
    } catch (err) {
      if (child.exitCode !== null || child.signalCode !== null) {
        await exited.catch((e: unknown) => { throw e; });
      }
      if (Date.now() > deadline) {
        await stop(5000);
        throw new EphemeraError('EPH_PLATFORM_START', `node agent ${spec.name} did not answer on ${join(spec.stateDir, 'node.sock')} within ${startMs} ms (${err instanceof Error ? err.message : String(err)}); its log ${logPath} ends:\n${tail(logPath)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { spec, child, agent, logPath, stop };
}
