/**
 * `ephemera node`: the node agent. Parses its flags, brings up what it needs (the Docker engine,
 * the function image), takes the state directory, recovers the containers a previous agent of
 * this node left, and serves the API on `<state-dir>/node.sock` until SIGTERM or SIGINT.
 */
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

import { pino } from 'pino';

import { EphemeraError } from '../core/errors.js';
import { parseSize } from '../core/size.js';
import { ensureDockerEngine } from '../container/dockerd.js';
import { DockerEngine } from '../container/engine.js';
import { ensureFunctionImage } from '../container/image.js';
import type { SharingScope } from '../manager/types.js';
import { createLogger } from '../log/logger.js';
import { NodeAgent } from '../node/agent.js';
import { managerDefaults, processManagers, type ManagerDefaults } from '../node/managers.js';
import { buildServer, listenOnSocket } from '../node/server.js';
import { flagSet, flagValue, parseFlags, type FlagSpec, type ParsedFlags } from './flags.js';
import { buildOutput, BUILD_DIR } from './paths.js';

export const NODE_USAGE = `usage: ephemera node [--state-dir DIR] [--node-name NAME] [--memory SIZE]
                     [--sharing none|function|workflow|tenant] [--parent-cgroup NAME]
                     [--image REF] [--keep-containers] [--lend-while-idle]
                     [--harvest-threshold SIZE] [--donor-margin SIZE]

Runs the node agent: the one process on this machine that creates function containers and writes
their memory limits. It hosts one Tenant Manager per tenant and carries out the memory moves they
decide. Its API (docs/PROTOCOL.md, "Node agent API") listens on DIR/node.sock.

  --state-dir DIR      its sockets and container run directories (default /run/ephemera-node)
  --node-name NAME     this node's name, also the label its containers carry (default: hostname)
  --memory SIZE        N_lim: memory its containers may be given in total (default: all RAM)
  --sharing SCOPE      which containers may lend to each other (default tenant)
  --parent-cgroup NAME the cgroup its containers go under (default /ephemera-NAME); give each agent
                       on one machine its own
  --image REF          the function image (default: built from images/ when missing)
  --keep-containers    on SIGTERM/SIGINT leave the containers running for the next agent to
                       recover (default: remove them, returning every loan first)
  --lend-while-idle    an idle warm donor keeps lending until its next invocation (beyond the
                       paper, which lends only while the donor runs)
  --harvest-threshold SIZE  a container is a donor when T_mem < T_lim - SIZE (default 16M)
  --donor-margin SIZE  a donor keeps T_mem + SIZE (default 16M)`;

const NODE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  'state-dir': { value: true },
  'node-name': { value: true },
  memory: { value: true },
  sharing: { value: true },
  'parent-cgroup': { value: true },
  image: { value: true },
  'keep-containers': { value: false },
  'lend-while-idle': { value: false },
  'harvest-threshold': { value: true },
  'donor-margin': { value: true },
};

const SCOPES: readonly SharingScope[] = ['none', 'function', 'workflow', 'tenant'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export interface NodeFlags {
  readonly stateDir: string;
  readonly node: string;
  readonly memoryBytes: number;
  readonly sharing: SharingScope;
  readonly parentCgroup: string;
  readonly image: string | undefined;
  readonly keepContainers: boolean;
  readonly managers: ManagerDefaults;
}

/** @throws {EphemeraError} `EPH_CLI_USAGE` or `EPH_CLI_BAD_SIZE` naming the flag */
export function parseNodeFlags(argv: readonly string[]): NodeFlags {
  const f = parseFlags(argv, NODE_FLAGS, 'ephemera node');
  const usage = (msg: string): EphemeraError => new EphemeraError('EPH_CLI_USAGE', `ephemera node: ${msg}; see \`ephemera help node\``);
  const node = flagValue(f, 'node-name') ?? hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63);
  if (!NAME.test(node)) throw usage(`--node-name ${JSON.stringify(node)} must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  const sharing = flagValue(f, 'sharing') ?? 'tenant';
  if (!(SCOPES as readonly string[]).includes(sharing)) throw usage(`--sharing must be one of ${SCOPES.join(', ')}, got ${JSON.stringify(sharing)}`);
  const mem = flagValue(f, 'memory');
  const memoryBytes = mem === undefined ? totalmem() : parseSize(mem, '--memory');
  if (memoryBytes < 6 * 1024 * 1024) throw usage(`--memory ${mem ?? ''} is below 6 MiB, the smallest container Docker accepts`);
  const parent = flagValue(f, 'parent-cgroup') ?? `/ephemera-${node}`;
  if (!/^\/?[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(parent) || parent.split('/').includes('..')) {
    throw usage(`--parent-cgroup ${JSON.stringify(parent)} must be a cgroup path such as /ephemera-node1`);
  }
  return {
    stateDir: resolve(flagValue(f, 'state-dir') ?? '/run/ephemera-node'),
    node,
    memoryBytes,
    sharing: sharing as SharingScope,
    parentCgroup: parent.startsWith('/') ? parent : `/${parent}`,
    image: flagValue(f, 'image'),
    keepContainers: flagSet(f, 'keep-containers'),
    managers: managerSettings(f, sharing as SharingScope),
  };
}

function managerSettings(f: ParsedFlags, sharing: SharingScope): ManagerDefaults {
  const d = managerDefaults(sharing);
  const threshold = flagValue(f, 'harvest-threshold');
  const margin = flagValue(f, 'donor-margin');
  return {
    ...d,
    lendWhileIdle: flagSet(f, 'lend-while-idle'),
    ...(threshold !== undefined ? { harvestThresholdBytes: parseSize(threshold, '--harvest-threshold') } : {}),
    ...(margin !== undefined ? { donorMarginBytes: parseSize(margin, '--donor-margin') } : {}),
  };
}

/**
 * Takes the state directory for this process: another live agent holding it is an error.
 * @throws {EphemeraError} `EPH_NODE_STATE_DIR`
 */
async function lockStateDir(dir: string): Promise<string> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new EphemeraError('EPH_NODE_STATE_DIR', `cannot create --state-dir ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const pidFile = join(dir, 'agent.pid');
  const other = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (Number.isSafeInteger(other) && other > 0 && other !== process.pid) {
    let alive = true;
    try {
      process.kill(other, 0);
    } catch {
      alive = false;
    }
    if (alive) {
      throw new EphemeraError('EPH_NODE_STATE_DIR', `another node agent (pid ${other}) runs with --state-dir ${dir}; stop it, or give this one a state directory of its own`, {
        detail: { pid: other },
      });
    }
  }
  await writeFile(pidFile, `${process.pid}\n`);
  return pidFile;
}

export async function nodeMain(argv: readonly string[]): Promise<number> {
  const flags = parseNodeFlags(argv);
  buildOutput('ephemerad', true);
  buildOutput('libephemera.so', false);
  const pidFile = await lockStateDir(flags.stateDir);
  // JSON lines on stderr (`ephemera up` sends them to the node's agent.log).
  const logger = createLogger({ component: 'node-agent', node: flags.node, destination: pino.destination({ dest: 2, sync: true }) });
  const say = (msg: string): void => {
    logger.info(msg);
  };
  const why = ensureDockerEngine();
  if (why !== null) throw new EphemeraError('EPH_DOCKER_API', `the node agent needs the Docker engine: ${why}`);
  const engine = new DockerEngine();
  const image = flags.image ?? (await ensureFunctionImage(engine, { onProgress: say })).ref;
  const agent = new NodeAgent({
    node: flags.node,
    sharing: flags.sharing,
    memoryBytes: flags.memoryBytes,
    stateDir: flags.stateDir,
    parentCgroup: flags.parentCgroup,
    image,
    buildDir: BUILD_DIR,
    engine,
    managers: processManagers(flags.managers, join(flags.stateDir, 'm')).factory,
    log: (msg) => {
      logger.warn(msg);
    },
    logger,
  });
  await agent.prepare();
  const recovered = await agent.recover();
  if (recovered.done.length > 0) say(`recovery carried out ${recovered.done.length} restoring moves`);
  const app = buildServer(agent);
  const socket = join(flags.stateDir, 'node.sock');
  await listenOnSocket(app, socket);
  say(`node ${flags.node} listening on ${socket} (sharing ${flags.sharing}, N_lim ${flags.memoryBytes} bytes, image ${image})`);
  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  say(`${signal}: ${flags.keepContainers ? 'leaving the containers for the next agent' : 'removing the containers'}`);
  await app.close();
  await agent.close({ removeContainers: !flags.keepContainers });
  await rm(pidFile, { force: true });
  return 0;
}
