/**
 * A real node agent for the sharing benchmarks: `ephemera node` started as a child process with a
 * state directory, node name and parent cgroup of its own, reached through its typed client, and
 * stopped with SIGTERM (which returns every loan and removes its containers). Whatever a stop that
 * failed leaves behind (containers labelled with its node, the empty parent cgroups, the state
 * directory) is removed too, so a benchmark or its test never leaks a container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { DockerEngine } from '../../container/engine.js';
import { EphemeraError } from '../../core/errors.js';
import type { SharingScope } from '../../manager/types.js';
import { NodeClient } from '../../node/client.js';
import { removeParentCgroups } from '../../node/testkit.js';

export interface AgentProcessOptions {
  /** build/ephemera */
  readonly ephemera: string;
  /** The function image, so that the agent does not look for it again. */
  readonly image: string;
  readonly sharing: SharingScope;
  /** A name unique on this machine: the node name, the parent cgroup and the temp dir derive from it. */
  readonly name: string;
  readonly engine: DockerEngine;
  /** Where the agent's log lines go (its stderr), one at a time. */
  readonly log: (line: string) => void;
  /** `--lend-while-idle`: an idle warm donor keeps lending until its next invocation. */
  readonly lendWhileIdle?: boolean;
  /** How long the agent may take to answer its first request. @default 60000 */
  readonly readyTimeoutMs?: number;
}

const STOP_TIMEOUT_MS = 60_000;

/** The agents this process started and has not stopped: a SIGINT or SIGTERM stops them first. */
const live = new Set<AgentProcess>();
let handlersInstalled = false;

function stopAllOnSignal(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${signal}: stopping ${String(live.size)} node agent(s) and their containers\n`);
      void Promise.allSettled([...live].map((a) => a.stop())).then(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
    });
  }
}

export class AgentProcess {
  readonly client: NodeClient;
  readonly node: string;
  readonly sharing: SharingScope;
  readonly #child: ChildProcess;
  readonly #stateDir: string;
  readonly #engine: DockerEngine;
  #exited: Promise<void>;
  #exitCode: string | null = null;

  private constructor(child: ChildProcess, stateDir: string, opts: AgentProcessOptions) {
    this.#child = child;
    this.#stateDir = stateDir;
    this.#engine = opts.engine;
    this.node = opts.name;
    this.sharing = opts.sharing;
    this.client = new NodeClient(join(stateDir, 'node.sock'), { timeoutMs: 30_000 });
    this.#exited = new Promise((done) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = signal ?? String(code);
        done();
      });
    });
  }

  /** Starts the agent and waits until its API answers. */
  static async start(opts: AgentProcessOptions): Promise<AgentProcess> {
    const stateDir = await mkdtemp(join(tmpdir(), `${opts.name}-`));
    const args = ['node', '--state-dir', stateDir, '--node-name', opts.name, '--parent-cgroup', `/${opts.name}`, '--sharing', opts.sharing, '--image', opts.image, ...(opts.lendWhileIdle === true ? ['--lend-while-idle'] : [])];
    const child = spawn(opts.ephemera, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (tail + chunk).split('\n');
      tail = lines.pop() ?? '';
      for (const l of lines) opts.log(l);
    });
    const agent = new AgentProcess(child, stateDir, opts);
    stopAllOnSignal();
    live.add(agent);
    const deadline = performance.now() + (opts.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (agent.#exitCode !== null) {
        await agent.stop();
        throw new EphemeraError('EPH_NODE_UNREACHABLE', `the node agent ${opts.name} exited (${agent.#exitCode}) before it answered; its log lines above say why`);
      }
      try {
        await agent.client.node();
        return agent;
      } catch {
        if (performance.now() > deadline) {
          await agent.stop();
          throw new EphemeraError('EPH_NODE_UNREACHABLE', `the node agent ${opts.name} did not answer on ${agent.client.socketPath} within ${String(opts.readyTimeoutMs ?? 60_000)} ms`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** SIGTERM (the agent returns its loans and removes its containers), SIGKILL after a bound; then whatever is left goes. */
  async stop(): Promise<void> {
    live.delete(this);
    if (this.#exitCode === null) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.#exited;
      clearTimeout(timer);
    }
    await this.#cleanUp();
  }

  async #cleanUp(): Promise<void> {
    for (const c of await this.#engine.list([`ephemera.node=${this.node}`]).catch(() => [])) await this.#engine.remove(c.id).catch(() => undefined);
    await removeParentCgroups(this.node);
    await rm(this.#stateDir, { recursive: true, force: true });
  }
}
