/**
 * Test support for the node agent's suites: an agent with its API on a real unix socket, against
 * the real Docker engine, the function image and this checkout's build/, in a private state
 * directory and parent cgroup; and the containers and cgroups it leaves are removed at the end,
 * whatever happened. Test support only.
 */
import { mkdtemp, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { FastifyInstance } from 'fastify';

import { ensureDockerEngine } from '../container/dockerd.js';
import { DockerEngine } from '../container/engine.js';
import { ensureFunctionImage } from '../container/image.js';
import { REPO_DIR } from '../container/repo.js';
import type { ManagerSnapshot, SharingScope } from '../manager/types.js';
import { NodeAgent } from './agent.js';
import { NodeClient } from './client.js';
import type { MoveStep } from './moves.js';
import { buildServer, listenOnSocket } from './server.js';
import type { ManagerFactory, TenantManagerPort } from './tenants.js';

export interface TestNode {
  readonly agent: NodeAgent;
  readonly client: NodeClient;
  readonly engine: DockerEngine;
  readonly stateDir: string;
  readonly node: string;
  readonly steps: { tenant: string; step: MoveStep }[];
  close(): Promise<void>;
}

let image: string | undefined;

/** A Manager that never moves memory: for suites about the runtime or the guard, not the pools. */
export function stillManager(tenant: string): Promise<TenantManagerPort> {
  const snapshot: ManagerSnapshot = {
    tenant,
    sharing: 'none',
    lendWhileIdle: false,
    containers: [],
    totals: { containers: 0, running: 0, initialQuotaBytes: 0, limitBytes: 0, lentBytes: 0, unmetBytes: 0 },
  };
  return Promise.resolve({
    apply: () => Promise.resolve([]),
    recover: () => Promise.resolve([]),
    snapshot: () => Promise.resolve(snapshot),
    close: () => Promise.resolve(),
  });
}

/** Null when Docker can run here, else why not (the suite then skips). */
export async function dockerReady(): Promise<string | null> {
  const why = ensureDockerEngine();
  if (why !== null) return why;
  image ??= (await ensureFunctionImage(new DockerEngine())).ref;
  return null;
}

export async function startTestNode(
  managers: ManagerFactory,
  options: { sharing?: SharingScope; memoryBytes?: number; onStep?: (tenant: string, step: MoveStep) => void; stateDir?: string; node?: string; onLog?: (msg: string) => void } = {},
): Promise<TestNode> {
  if (image === undefined) throw new Error('call dockerReady() first');
  const engine = new DockerEngine();
  const stateDir = options.stateDir ?? (await mkdtemp('/tmp/eph-node-'));
  const node = options.node ?? `nodetest${String(process.pid)}`;
  const steps: { tenant: string; step: MoveStep }[] = [];
  const agent = new NodeAgent({
    node,
    sharing: options.sharing ?? 'tenant',
    memoryBytes: options.memoryBytes ?? 8 * 1024 ** 3,
    stateDir,
    parentCgroup: `/ephemera-node-test-${node}`,
    image,
    buildDir: join(REPO_DIR, 'build'),
    engine,
    managers,
    onStep: (tenant, step) => {
      steps.push({ tenant, step });
      options.onStep?.(tenant, step);
    },
    recordQuietMs: 20,
    log: (msg) => {
      process.stderr.write(`[agent] ${msg}\n`);
      options.onLog?.(msg);
    },
  });
  await agent.prepare();
  const app: FastifyInstance = buildServer(agent);
  const socket = join(stateDir, 'node.sock');
  await listenOnSocket(app, socket);
  return {
    agent,
    client: new NodeClient(socket),
    engine,
    stateDir,
    node,
    steps,
    close: async () => {
      await app.close();
      await agent.close({ removeContainers: true }).catch(() => undefined);
      // Whatever the agent lost track of (a failed test) goes too.
      for (const c of await engine.list([`ephemera.node=${node}`])) await engine.remove(c.id);
      if (options.stateDir === undefined) await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** The engine leaves the parent cgroup behind in every hierarchy; empty ones are removed. */
export async function removeParentCgroups(name: string): Promise<void> {
  const root = '/sys/fs/cgroup';
  const dirs = [join(root, name), ...(await readdir(root).catch(() => [])).map((h) => join(root, h, name))];
  for (const d of dirs) await rmdir(d).catch(() => undefined);
}
