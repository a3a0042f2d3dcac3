/**
 * `ephemera up`: the whole platform on this machine in the foreground — Docker, the node agents,
 * and the OpenWhisk-compatible controller — and `ephemera tenant add`.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { pino } from 'pino';

import { EphemeraError } from '../core/errors.js';
import { parseSize } from '../core/size.js';
import { ensureDockerEngine } from '../container/dockerd.js';
import { createLogger } from '../log/logger.js';
import { NodeClient } from '../node/client.js';
import { DEFAULT_RETENTION, lastApihost, startController } from '../platform/controller.js';
import { connectNode } from '../platform/node-adapter.js';
import { startNodeProcess, type NodeProcess } from '../platform/node-procs.js';
import { ScheduledSelector } from '../platform/scheduled-selector.js';
import { parseSchedulerPolicy } from '../scheduler/algorithm.js';
import { SCHEDULERS } from '../platform/selector.js';
import { Store } from '../platform/store.js';
import { GUEST_TENANT, checkTenantName, ephemeraHome, writeWskprops } from '../platform/tenants.js';
import { flagCount, flagCpus, flagPositiveInt, flagValue, parseFlags } from './flags.js';

export const UP_USAGE = `usage: ephemera up [--port N] [--tenant NAME]... [--nodes N] [--node-memory SIZE]
                   [--scheduler ephemera|most-free] [--sharing SCOPE] [--state-dir DIR]
                   [--keep-alive-ms MS] [--name NAME] [--container-cpus N]
                   [--activations-keep N] [--activations-max-age-ms MS]

Starts the platform in the foreground: Docker (scripts/docker.sh), one node agent (\`ephemera
node\`) or --nodes N of them, each confined to --node-memory, and the OpenWhisk-compatible API on
http://127.0.0.1:3233 (--port). Ctrl-C, SIGTERM or SIGHUP stops it: containers removed, limits restored.

Tenants are OpenWhisk namespaces. \`guest\` always exists; --tenant NAME (repeatable) adds more.
Each tenant's key is written to ~/.ephemera/NAME.wskprops (wsk format; $EPHEMERA_HOME moves the
directory); admin.wskprops holds the operator key, which sees every namespace.

  --state-dir DIR      actions, activations and tenants (SQLite) and the node agents' state
                       (default ~/.ephemera/state)
  --keep-alive-ms MS   how long an idle warm container is kept (default 600000, OpenWhisk's 10 min)
  --activations-keep N finished activation records kept per namespace, newest first (default
                       10000; 0: no limit); older ones are pruned every minute
  --activations-max-age-ms MS
                       finished activation records older than this are pruned (default 604800000,
                       7 days; 0: no limit)
  --container-cpus N   the CPU time every action container may use, in CPUs (Docker's --cpus;
                       0.01 up to this machine's cores; default: no cap)
  --scheduler NAME     how a new container's node is chosen (default ephemera)
  --sharing SCOPE      which containers lend memory to each other: none, function, workflow or
                       tenant (the node agents' default, tenant)
  --name NAME          names the node agents NAME-node-1... (and so their cgroups /ephemera-NAME-node-1...);
                       give two platforms on one machine different names (default ephemera)

The controller also serves the operator's views: /dashboard (live, sign in with a key) and
/metrics (Prometheus, operator key); \`ephemera status\` prints the same picture in a terminal.
The controller writes its log as JSON lines to <state-dir>/controller.log, each node agent to
<state-dir>/nodes/NAME/agent.log.`;

export const TENANT_USAGE = `usage: ephemera tenant add NAME [--state-dir DIR] [--apihost URL]

Adds a tenant (an OpenWhisk namespace) with a generated uuid:key and writes
~/.ephemera/NAME.wskprops (mode 0600). A running \`ephemera up\` on the same --state-dir accepts the
key at once; APIHOST is --apihost, else the address that \`ephemera up\` last served on.`;

/** The node agent's sharing scopes (`ephemera node --sharing`). */
const SHARING: readonly string[] = ['none', 'function', 'workflow', 'tenant'];

const CLI_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

function defaultStateDir(): string {
  return join(ephemeraHome(), 'state');
}

export async function upMain(argv: readonly string[]): Promise<number> {
  const ctx = 'ephemera up';
  const parsed = parseFlags(argv, {
    port: { value: true },
    tenant: { value: true, repeatable: true },
    nodes: { value: true },
    'node-memory': { value: true },
    scheduler: { value: true },
    'state-dir': { value: true },
    'keep-alive-ms': { value: true },
    name: { value: true },
    sharing: { value: true },
    'activations-keep': { value: true },
    'activations-max-age-ms': { value: true },
    'container-cpus': { value: true },
  }, ctx);
  const sharing = flagValue(parsed, 'sharing');
  if (sharing !== undefined && !SHARING.includes(sharing)) {
    throw new EphemeraError('EPH_CLI_USAGE', `${ctx}: --sharing must be one of ${SHARING.join(', ')}, got ${JSON.stringify(sharing)}`);
  }
  const platformName = flagValue(parsed, 'name') ?? 'ephemera';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/.test(platformName)) {
    throw new EphemeraError('EPH_CLI_USAGE', `${ctx}: --name must be 1-41 letters, digits, '.', '_' or '-', got ${JSON.stringify(platformName)}`);
  }
  const portText = flagValue(parsed, 'port') ?? '3233';
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw new EphemeraError('EPH_CLI_USAGE', `${ctx}: --port must be a TCP port from 0 to 65535, got ${JSON.stringify(portText)}`);
  }
  const nodes = flagPositiveInt(parsed, 'nodes', ctx, 1);
  const memText = flagValue(parsed, 'node-memory');
  const nodeMemory = memText === undefined ? undefined : parseSize(memText, '--node-memory');
  if (nodes > 1 && nodeMemory === undefined) {
    throw new EphemeraError('EPH_CLI_USAGE', `${ctx}: --nodes ${nodes} needs --node-memory SIZE, the memory each simulated node is confined to`);
  }
  const scheduler = flagValue(parsed, 'scheduler') ?? 'ephemera';
  if (!(SCHEDULERS as readonly string[]).includes(scheduler)) {
    throw new EphemeraError('EPH_CLI_USAGE', `${ctx}: --scheduler must be one of ${SCHEDULERS.join(', ')}, got ${JSON.stringify(scheduler)}`);
  }
  const containerCpus = flagCpus(parsed, 'container-cpus', ctx, availableParallelism());
  const tenants = [GUEST_TENANT, ...(parsed.values.get('tenant') ?? []).map(checkTenantName)];
  const stateDir = flagValue(parsed, 'state-dir') ?? defaultStateDir();
  const keepAliveMs = flagPositiveInt(parsed, 'keep-alive-ms', ctx, 600_000);
  const retention = {
    keepPerNamespace: flagCount(parsed, 'activations-keep', ctx, DEFAULT_RETENTION.keepPerNamespace),
    maxAgeMs: flagCount(parsed, 'activations-max-age-ms', ctx, DEFAULT_RETENTION.maxAgeMs),
  };
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });

  const say = (line: string): void => { process.stderr.write(`${line}\n`); };
  // Before Docker and the node agents start: a taken port fails at once, not after a minute.
  await checkPortFree('127.0.0.1', Number(portText));
  say('ephemera up: starting Docker');
  const docker = ensureDockerEngine();
  if (docker !== null) throw new EphemeraError('EPH_PLATFORM_START', `Docker is not available: ${docker}`);

  const log = createLogger({ component: 'controller', destination: pino.destination({ dest: join(stateDir, 'controller.log'), mkdir: true, sync: false }) });
  const procs: NodeProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stopNodes = async (): Promise<void> => { await Promise.all(procs.map((p) => p.stop())); };
  try {
    for (let i = 1; i <= nodes; i++) {
      const name = `${platformName}-node-${i}`;
      say(`ephemera up: starting node agent ${name}`);
      procs.push(await startNodeProcess([process.execPath, CLI_MAIN], {
        name,
        stateDir: join(stateDir, 'nodes', name),
        ...(nodeMemory === undefined ? {} : { memoryBytes: nodeMemory }),
        ...(sharing === undefined ? {} : { extraArgs: ['--sharing', sharing] }),
      }, connectNode));
    }
  } catch (err) {
    await stopNodes();
    throw err;
  }
  const selector = new ScheduledSelector({ policy: parseSchedulerPolicy(scheduler), nodes: procs.map((p) => p.agent), log });
  let ctl;
  try {
    ctl = await startController({
      stateDir,
      home: ephemeraHome(),
      host: '127.0.0.1',
      port: Number(portText),
      tenants,
      nodes: procs.map((p) => p.agent),
      selector,
      extender: selector.scheduler,
      log,
      keepAliveMs,
      ...(containerCpus === undefined ? {} : { containerCpus }),
      blockingWaitMs: 60_000,
      retention,
      // The operator's views read the agents' own API: a short timeout, so a stuck agent cannot hold a page.
      views: procs.map((p) => ({ node: p.spec.name, client: new NodeClient(join(p.spec.stateDir, 'node.sock'), { timeoutMs: 5000 }) })),
    });
  } catch (err) {
    await stopNodes();
    throw err;
  }
  const running = ctl;
  process.stdout.write(`ephemera up: API on ${running.url}
  guest key:    ${running.props.get(GUEST_TENANT) ?? ''}
  operator key: ${running.props.get('admin') ?? ''}
  try:  WSK_CONFIG_FILE=${running.props.get(GUEST_TENANT) ?? ''} wsk action list
  dashboard:    ${running.url}/dashboard (sign in with a key; the operator key sees every tenant)
  metrics:      ${running.url}/metrics (operator key)
  log:  ${join(stateDir, 'controller.log')}
Ctrl-C stops everything.
`);

  const status = (): string => {
    const c = running.invoker.containers();
    return `ephemera up · ${running.url} · ${procs.length} node${procs.length === 1 ? '' : 's'} · containers ${c.warm} warm, ${c.busy} busy · ${running.invoker.started} activations`;
  };
  const tty = process.stdout.isTTY;
  const ticker = setInterval(() => {
    if (tty) process.stdout.write(`\r\x1b[K${status()}`);
  }, 1000);
  const stopTicker = setInterval(() => { if (!tty) process.stdout.write(`${status()}\n`); }, 60_000);

  const shutdown = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      clearInterval(ticker);
      clearInterval(stopTicker);
      if (tty) process.stdout.write('\r\x1b[K');
      say(`ephemera up: ${signal}: stopping (containers are removed, limits restored)`);
      await running.close();
      await stopNodes();
      log.flush();
      say('ephemera up: stopped');
    })();
    return stopping;
  };
  await new Promise<void>((resolve) => {
    const on = (sig: NodeJS.Signals): void => { void shutdown(sig).then(resolve); };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
    process.once('SIGHUP', on);
    for (const p of procs) {
      p.child.once('exit', (code, sig) => {
        if (stopping === undefined) {
          say(`ephemera up: node agent ${p.spec.name} exited (${sig ?? `status ${code}`}); see ${p.logPath}; stopping`);
          void shutdown('node agent exit').then(resolve);
        }
      });
    }
  });
  return 0;
}

/** @throws {EphemeraError} `EPH_PLATFORM_START` when something already listens on host:port */
async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(new EphemeraError('EPH_PLATFORM_START', `cannot listen on ${host}:${port} (${err.code ?? err.message}); stop what uses the port (another ephemera up?) or pass --port`));
    });
    probe.listen({ host, port }, () => { probe.close(() => { resolve(); }); });
  });
}

export function tenantMain(argv: readonly string[]): Promise<number> {
  const ctx = 'ephemera tenant';
  const parsed = parseFlags(argv, { 'state-dir': { value: true }, apihost: { value: true } }, ctx, 2);
  const [verb, name] = parsed.positionals;
  if (verb !== 'add' || name === undefined) {
    throw new EphemeraError('EPH_CLI_USAGE', `${ctx}: expected \`ephemera tenant add NAME\`, got ${JSON.stringify(parsed.positionals.join(' '))}`);
  }
  checkTenantName(name);
  const stateDir = flagValue(parsed, 'state-dir') ?? defaultStateDir();
  const store = Store.open(stateDir);
  try {
    const existed = store.tenant(name) !== undefined;
    const t = store.ensureTenant(name);
    const path = writeWskprops(ephemeraHome(), t, flagValue(parsed, 'apihost') ?? lastApihost(stateDir) ?? 'http://127.0.0.1:3233');
    process.stdout.write(`${existed ? 'tenant exists' : 'tenant added'}: ${name}\n${path}\n`);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}
