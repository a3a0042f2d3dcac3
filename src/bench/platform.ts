/**
 * `ephemera bench platform`: what the platform costs on top of the container it invokes.
 *
 * In one run, on one node agent and one controller started for the purpose:
 *  - warm invocations of a no-op Python action through the whole platform (HTTP, auth, store,
 *    invoker, node agent, runtime) from 1, 4 and 16 concurrent clients, in turns with the same
 *    calls made straight to warm containers' `/run` (the runtime's unix socket: the physical limit);
 *  - cold starts split into the engine's part (create and start a container), the runtime's part
 *    (its /health answers, no Ephemera), Ephemera's part (the same runtime started with ephemerad
 *    and the shim, minus the plain one), and the node agent's bookkeeping (its create minus the
 *    container with Ephemera), plus the platform's view (waitTime, initTime).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { EphemeraError } from '../core/errors.js';
import { ensureDockerEngine } from '../container/dockerd.js';
import { DockerEngine } from '../container/engine.js';
import { ensureFunctionImage } from '../container/image.js';
import { REPO_DIR } from '../container/repo.js';
import { actionRequest } from '../node/action-client.js';
import { NodeClient } from '../node/client.js';
import { IN_DAEMON, IN_LIB, IN_RUN, runtimeCommand } from '../node/runtime-command.js';
import { startAnnounced, stopChild } from '../platform/child.js';
import { readProps } from '../platform/harness.js';
import { summarize } from './eval/stats.js';
import { writePlot } from './eval/plot.js';

export const PLATFORM_DEFAULTS = { calls: 200, rounds: 4, colds: 5, clients: [1, 4, 16] } as const;

export interface PlatformBenchOptions {
  /** The argv that runs the ephemera CLI (to start `ephemera node`). */
  readonly cli: readonly string[];
  /** build/: ephemerad and libephemera.so for the containers started by hand. */
  readonly buildDir: string;
  readonly calls: number;
  readonly rounds: number;
  readonly colds: number;
  readonly clients: readonly number[];
  readonly progress: (line: string) => void;
}

/**
 * platform: the whole path; controller: the same HTTP API, store and invoker with a node that
 * answers at once (the controller's own cost); node: the node agent's /run; direct: the runtime's;
 * floor1 / floor2: the runtime's /run through one / two empty forwarding hops (empty-hop.ts) on
 * the platform's transports (client -TCP-> hop [-unix socket-> hop] -unix socket-> container).
 */
export type Path = 'platform' | 'controller' | 'node' | 'floor1' | 'floor2' | 'direct';

export interface LatencyRow {
  readonly clients: number;
  readonly path: Path;
  readonly calls: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly throughputPerS: number;
}

export interface ColdRow {
  readonly part: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/**
 * CPU time the platform's processes spent per warm call on the platform path (all their threads,
 * from /proc/PID/task/TID/schedstat): the work each hop does, which a busy machine inflates far
 * less than it inflates latency.
 */
export interface CpuRow {
  readonly clients: number;
  /** The `ephemera up` process: the controller (HTTP API, store, invoker) and the scheduler. */
  readonly controllerMs: number;
  /** The node agent and its tenants' Manager processes. */
  readonly nodeMs: number;
  /** Of `nodeMs`: the node agent's process alone. */
  readonly agentMs: number;
  /** Of `nodeMs`: the tenants' Manager processes. */
  readonly managersMs: number;
  /**
   * dockerd, containerd and the warm containers' shims: the containers' output (the log sentinel
   * after every activation) goes through them to the agent. Shared with whatever else uses the
   * engine meanwhile, so on a busy machine it is the noisiest figure.
   */
  readonly dockerMs: number;
  /** The processes inside the warm containers (the runtime and ephemerad), per platform call. */
  readonly containersMs: number;
  /** The same, per direct `/run` call: the runtime's own work when nothing else is in the way. */
  readonly directContainersMs: number;
  /** The controller with a node that answers at once (the `controller` path), per its own call. */
  readonly bareControllerMs: number;
}

export interface PlatformBenchReport {
  readonly latency: readonly LatencyRow[];
  readonly cpu: readonly CpuRow[];
  readonly cold: readonly ColdRow[];
  /** p50 over direct's p50, with `clients` clients: the platform's, and the two-empty-hop floor's. */
  readonly ratios: readonly Ratio[];
  /** Warm containers the node and direct paths spread their clients over. */
  readonly containers: number;
  readonly table: string;
  readonly csv: string;
}

export interface Ratio { readonly clients: number; readonly p50Ratio: number; readonly floorRatio: number }

/** The q-quantile (0..1) of sorted samples, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}


const NOOP = 'def main(args):\n    return {}\n';

const FAKE_CONTROLLER = fileURLToPath(new URL('../platform/fake-controller.js', import.meta.url));
const EMPTY_HOP = fileURLToPath(new URL('./empty-hop.js', import.meta.url));

interface Sample { ms: number; ok: boolean }

/** Creates the no-op action; returns the call that invokes it (blocking, result only). */
async function serveNoop(base: string, auth: string): Promise<() => Promise<boolean>> {
  const put = await fetch(`${base}/api/v1/namespaces/_/actions/noop`, {
    method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ exec: { kind: 'python:3', code: NOOP }, limits: { memory: 128 } }),
  });
  if (put.status !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `creating the no-op action answered ${put.status}: ${await put.text()}`);
  const url = `${base}/api/v1/namespaces/_/actions/noop?blocking=true&result=true`;
  return async () => {
    const r = await fetch(url, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(60_000) });
    await r.arrayBuffer();
    return r.status === 200;
  };
}

/** `clients` loops of `calls` sequential calls each; the samples of all. */
async function drive(clients: number, calls: number, call: (client: number) => Promise<boolean>): Promise<{ samples: Sample[]; wallMs: number }> {
  const samples: Sample[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_v, c) => {
    for (let i = 0; i < calls; i++) {
      const s = performance.now();
      let ok = false;
      try {
        ok = await call(c);
      } catch {
        ok = false;
      }
      samples.push({ ms: performance.now() - s, ok });
    }
  }));
  return { samples, wallMs: performance.now() - t0 };
}

function row(clients: number, path: Path, runs: { samples: Sample[]; wallMs: number }[]): LatencyRow {
  const all = runs.flatMap((r) => r.samples);
  const sorted = all.map((s) => s.ms).sort((a, b) => a - b);
  const wall = runs.reduce((s, r) => s + r.wallMs, 0);
  return {
    clients,
    path,
    calls: all.length,
    failed: all.filter((s) => !s.ok).length,
    p50Ms: quantile(sorted, 0.5),
    p90Ms: quantile(sorted, 0.9),
    p99Ms: quantile(sorted, 0.99),
    throughputPerS: wall > 0 ? (all.length / wall) * 1000 : 0,
  };
}

/** Nanoseconds on CPU of every thread of `pid`, or 0 once it is gone. */
function cpuNs(pid: number): number {
  let total = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${String(pid)}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      total += Number(readFileSync(`/proc/${String(pid)}/task/${tid}/schedstat`, 'utf8').split(' ')[0] ?? 0);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

/** The processes whose parent is `pid`, and theirs (from /proc/N/stat), `pid` excluded. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(e), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** The processes whose CPU the bench reads per warm call (see {@link CpuRow}). */
const CPU_PARTS = ['ctl', 'node', 'agent', 'managers', 'docker', 'inside', 'bare'] as const;
type CpuPart = (typeof CPU_PARTS)[number];

/** `pid`'s own children (from /proc/N/stat). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Processes whose /proc/N/cmdline or /proc/N/cgroup matches, read once. */
function processesWhere(match: (comm: string, cmdline: string, cgroup: () => string) => boolean): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (match(comm, cmdline, () => readFileSync(`/proc/${e}/cgroup`, 'utf8'))) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** dockerd, containerd, and the shims of the given containers. */
function dockerPids(containerIds: readonly string[]): number[] {
  return processesWhere((comm, cmdline) => comm === 'dockerd' || comm === 'containerd' || (comm.startsWith('containerd-shim') && containerIds.some((id) => cmdline.includes(id))));
}

/** The processes inside the given containers (by their cgroup path, which names the container id). */
function containerPids(containerIds: readonly string[]): number[] {
  return processesWhere((comm, _cmdline, cgroup) => !comm.startsWith('containerd-shim') && containerIds.some((id) => cgroup().includes(id)));
}

/** CPU ns of a set of processes, read now; the set is read again each time (Managers come and go). */
function cpuOf(pids: () => readonly number[]): number {
  return pids().reduce((s, p) => s + cpuNs(p), 0);
}

async function untilHealthy(socket: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await actionRequest(socket, 'GET', '/health', undefined, 1000)).statusCode === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new EphemeraError('EPH_BENCH_FAILED', `a runtime started by the benchmark did not answer on ${socket} within ${timeoutMs} ms`);
    await sleep(2);
  }
}

/**
 * Ephemera's share once more, on the host: the same two commands (the runtime alone; ow_entry.sh with
 * ephemerad and the shim) started in turns `n` times each, without the engine's create and start,
 * whose spread on a busy machine (tens of ms) hides a difference of a few. The paired differences
 * (with minus the run just before without) give the share.
 */
async function hostColdStarts(buildDir: string, dir: string, n: number): Promise<{ plain: number[]; ephemera: number[]; share: number[] }> {
  const opt = join(dir, 'host-opt');
  for (const d of ['bin', 'lib', 'runtime']) mkdirSync(join(opt, d), { recursive: true });
  symlinkSync(join(buildDir, 'ephemerad'), join(opt, 'bin', 'ephemerad'));
  symlinkSync(join(buildDir, 'libephemera.so'), join(opt, 'lib', 'libephemera.so'));
  for (const f of ['ow_runtime.py', 'ow_entry.sh']) symlinkSync(join(REPO_DIR, 'images', f), join(opt, 'runtime', f));
  // Debian's interpreter for both, as in the image (not a version manager's wrapper script).
  const env = { ...process.env, PATH: '/usr/bin:/bin', EPHEMERA_OPT: opt, PYTHONDONTWRITEBYTECODE: '1' };
  const once = async (ephemera: boolean, k: number): Promise<number> => {
    const run = join(dir, `host-run-${String(k)}`);
    const root = join(dir, `host-root-${String(k)}`);
    mkdirSync(run);
    mkdirSync(root);
    const t0 = performance.now();
    const [cmd = 'sh', ...args] = runtimeCommand(ephemera, { opt, run, root });
    const child = spawn(cmd, args, { env, stdio: 'ignore' });
    try {
      await untilHealthy(join(run, 'action.sock'), 30_000);
      return performance.now() - t0;
    } finally {
      await stopChild(child, 'SIGTERM', 10_000);
      rmSync(run, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
    }
  };
  const plain: number[] = [];
  const ephemera: number[] = [];
  const share: number[] = [];
  for (let k = 0; k < n; k++) {
    const a = await once(false, 2 * k);
    const b = await once(true, 2 * k + 1);
    plain.push(a);
    ephemera.push(b);
    share.push(b - a);
  }
  return { plain, ephemera, share };
}

export async function runPlatformBench(opts: PlatformBenchOptions): Promise<PlatformBenchReport> {
  const docker = ensureDockerEngine();
  if (docker !== null) throw new EphemeraError('EPH_BENCH_FAILED', `bench platform needs Docker: ${docker}`);
  const engine = new DockerEngine();
  const image = (await ensureFunctionImage(engine)).ref;
  const dir = mkdtempSync('/tmp/platform-bench-');
  const name = `platform-bench-${String(process.pid)}`;
  const maxClients = Math.max(...opts.clients);
  opts.progress('bench platform: starting ephemera up (a node agent and the controller) and a controller with an instant node');
  // Both controllers in processes of their own, as in production: the clients here do not share
  // their event loop.
  const home = join(dir, 'home');
  const nodeDir = join(dir, 'up', 'nodes', `${name}-node-1`);
  const children: ChildProcess[] = [];
  try {
    const up = await startAnnounced(
      [...opts.cli, 'up', '--port', '0', '--state-dir', join(dir, 'up'), '--name', name, '--tenant', 'bench', '--keep-alive-ms', '600000'],
      /API on (http:\/\/\S+)/, 600_000, { env: { ...process.env, EPHEMERA_HOME: home }, stderr: 'ignore' },
    );
    children.push(up.child);
    const bare = await startAnnounced(
      [process.execPath, FAKE_CONTROLLER, join(dir, 'bare'), join(dir, 'bare-home'), 'instant'],
      /^\{"url":"([^"]+)"\}$/, 60_000, { stderr: 'ignore' },
    );
    children.push(bare.child);
    const basic = (props: string): string => `Basic ${Buffer.from(readProps(props).AUTH ?? '').toString('base64')}`;
    const auth = basic(join(home, 'bench.wskprops'));
    const base = up.match[1] ?? '';
    const invoke = await serveNoop(base, auth);
    const invokeBare = await serveNoop(bare.match[1] ?? '', basic(join(dir, 'bare-home', 'bench.wskprops')));
    const nodeClient = new NodeClient(join(nodeDir, 'node.sock'));

    // Warm as many containers as the most clients need.
    opts.progress(`bench platform: warming ${maxClients} containers`);
    await drive(maxClients, 5, invoke);
    const views = await nodeClient.listContainers('bench');
    const sockets = views.map((v) => join(nodeDir, 'c', v.name.slice(`eph-${name}-node-1-`.length), 'action.sock'));
    let seq = 0;
    const direct = async (c: number): Promise<boolean> => {
      const socket = sockets[c % sockets.length] ?? '';
      const r = await actionRequest(socket, 'POST', '/run', {
        value: {}, namespace: 'bench', action_name: '/bench/noop', action_version: '0.0.1',
        activation_id: (++seq).toString(16).padStart(32, '0'), transaction_id: 'bench', deadline: String(Date.now() + 60_000),
      }, 60_000);
      return r.statusCode === 200;
    };

    // The floor: the same /run through empty hops in processes of their own, on the platform's
    // transports (the client's TCP to a controller, a unix socket to a node agent, the container's).
    opts.progress('bench platform: starting the empty forwarding hops (the floor)');
    const hop = async (listen: string, targets: readonly string[]): Promise<RegExpExecArray> => {
      const h = await startAnnounced([process.execPath, EMPTY_HOP, listen, ...targets], /^\{"(?:url|socket)":"([^"]+)"\}$/, 60_000, { stderr: 'ignore' });
      children.push(h.child);
      return h.match;
    };
    const second = (await hop(join(dir, 'hop2.sock'), sockets))[1] ?? '';
    const twoHops = (await hop('tcp', [second]))[1] ?? '';
    const oneHop = (await hop('tcp', sockets))[1] ?? '';
    const viaHops = (url: string) => async (c: number): Promise<boolean> => {
      const r = await fetch(`${url}/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hop-container': String(c % sockets.length) },
        body: JSON.stringify({
          value: {}, namespace: 'bench', action_name: '/bench/noop', action_version: '0.0.1',
          activation_id: (++seq).toString(16).padStart(32, '0'), transaction_id: 'bench', deadline: String(Date.now() + 60_000),
        }),
        signal: AbortSignal.timeout(60_000),
      });
      await r.arrayBuffer();
      return r.status === 200;
    };
    const floor1 = viaHops(oneHop);
    const floor2 = viaHops(twoHops);

    const ids = views.map((v) => v.id);
    const viaNode = async (c: number): Promise<boolean> => {
      const r = await nodeClient.run(ids[c % ids.length] ?? '', {
        value: {}, namespace: 'bench', action_name: '/bench/noop', action_version: '0.0.1',
        activation_id: (++seq).toString(16).padStart(32, '0'), transaction_id: 'bench', deadline: String(Date.now() + 60_000), timeoutMs: 60_000,
      });
      return r.statusCode === 200;
    };

    const upPid = up.child.pid ?? 0;
    const barePid = bare.child.pid ?? 0;
    // The node agent (`up`'s child) and its Managers (the agent's children); the containers are Docker's.
    const agentPids = (): number[] => childrenOf(upPid);
    const managerPids = (): number[] => agentPids().flatMap((a) => descendants(a));
    const nodePids = (): number[] => descendants(upPid);
    const enginePids = dockerPids(views.map((v) => v.id));
    const insidePids = containerPids(views.map((v) => v.id));
    // What they spend with no call at all (the scheduler's and the views' polling, timers), per ms of
    // wall time: taken off each round's figure, so that a slower round does not look costlier per call.
    opts.progress('bench platform: the idle CPU of the controller, the node agent, Docker and the containers (2 s)');
    const sample = (): Record<CpuPart, number> => ({
      ctl: cpuNs(upPid), node: cpuOf(nodePids), agent: cpuOf(agentPids), managers: cpuOf(managerPids), docker: cpuOf(() => enginePids), inside: cpuOf(() => insidePids), bare: cpuNs(barePid),
    });
    const since = (a: Record<CpuPart, number>, b: Record<CpuPart, number>, wallMs: number, rate: Record<CpuPart, number> | undefined): Record<CpuPart, number> => {
      const out = { ...a };
      for (const k of CPU_PARTS) out[k] = b[k] - a[k] - (rate === undefined ? 0 : rate[k] * wallMs);
      return out;
    };
    const i0 = sample();
    const idleT0 = performance.now();
    await sleep(2000);
    const idleMs = performance.now() - idleT0;
    const idle = since(i0, sample(), 0, undefined);
    for (const k of CPU_PARTS) idle[k] /= idleMs;
    const cpu: CpuRow[] = [];
    const latency: LatencyRow[] = [];
    for (const clients of opts.clients) {
      const used: Record<CpuPart, number> = { ctl: 0, node: 0, agent: 0, managers: 0, docker: 0, inside: 0, bare: 0 };
      let directInsideNs = 0;
      let directCalls = 0;
      const platformRuns: { samples: Sample[]; wallMs: number }[] = [];
      const directRuns: { samples: Sample[]; wallMs: number }[] = [];
      const nodeRuns: { samples: Sample[]; wallMs: number }[] = [];
      const bareRuns: { samples: Sample[]; wallMs: number }[] = [];
      const floor1Runs: { samples: Sample[]; wallMs: number }[] = [];
      const floor2Runs: { samples: Sample[]; wallMs: number }[] = [];
      const per = Math.max(1, Math.ceil(opts.calls / opts.rounds / clients));
      for (let r = 0; r < opts.rounds; r++) {
        opts.progress(`bench platform: ${clients} client(s), round ${r + 1}/${opts.rounds}`);
        const c0 = sample();
        const p = await drive(clients, per, invoke);
        platformRuns.push(p);
        const c = since(c0, sample(), p.wallMs, idle);
        for (const k of CPU_PARTS) if (k !== 'bare') used[k] += c[k];
        const b0 = cpuNs(barePid);
        const b = await drive(clients, per, invokeBare);
        bareRuns.push(b);
        used.bare += cpuNs(barePid) - b0 - idle.bare * b.wallMs;
        nodeRuns.push(await drive(Math.min(clients, ids.length), per, viaNode));
        floor2Runs.push(await drive(Math.min(clients, sockets.length), per, floor2));
        floor1Runs.push(await drive(Math.min(clients, sockets.length), per, floor1));
        const d0 = cpuOf(() => insidePids);
        const d = await drive(Math.min(clients, sockets.length), per, direct);
        directRuns.push(d);
        directInsideNs += cpuOf(() => insidePids) - d0 - idle.inside * d.wallMs;
        directCalls += d.samples.length;
      }
      latency.push(row(clients, 'platform', platformRuns), row(clients, 'controller', bareRuns), row(clients, 'node', nodeRuns),
        row(clients, 'floor2', floor2Runs), row(clients, 'floor1', floor1Runs), row(clients, 'direct', directRuns));
      const calls = per * clients * opts.rounds;
      const ms = (ns: number, n = calls): number => ns / n / 1e6;
      cpu.push({
        clients, controllerMs: ms(used.ctl), nodeMs: ms(used.node), agentMs: ms(used.agent), managersMs: ms(used.managers),
        dockerMs: ms(used.docker), containersMs: ms(used.inside), directContainersMs: ms(directInsideNs, directCalls), bareControllerMs: ms(used.bare),
      });
    }

    // Cold starts: by hand (engine / runtime / Ephemera), through the node agent, through the platform.
    const parts: Record<string, number[]> = { engine: [], runtime: [], ephemera: [], 'node create (all)': [], 'platform waitTime': [], 'platform initTime': [] };
    for (let i = 0; i < opts.colds; i++) {
      opts.progress(`bench platform: cold start ${i + 1}/${opts.colds}`);
      const timeStart = async (tag: string, cmd: readonly string[] | null): Promise<number> => {
        const run = mkdtempSync(join(dir, 'run-'));
        const t0 = performance.now();
        const id = await engine.create({
          name: `${name}-cold-${String(i)}-${tag}`,
          image,
          cmd: cmd ?? ['sleep', '60'],
          memory: 128 * 1024 * 1024,
          mounts: [
            { type: 'bind', source: run, target: IN_RUN },
            { type: 'bind', source: join(opts.buildDir, 'ephemerad'), target: IN_DAEMON, readOnly: true },
            { type: 'bind', source: join(opts.buildDir, 'libephemera.so'), target: IN_LIB, readOnly: true },
          ],
        });
        try {
          await engine.start(id);
          if (cmd !== null) await untilHealthy(join(run, 'action.sock'), 30_000);
          return performance.now() - t0;
        } finally {
          await engine.remove(id).catch(() => undefined);
          rmSync(run, { recursive: true, force: true });
        }
      };
      // The node agent's own command, with and without Ephemera (src/node/runtime-command.ts).
      const engineMs = await timeStart('engine', null);
      const plainMs = await timeStart('plain', runtimeCommand(false));
      const ephMs = await timeStart('ephemera', runtimeCommand(true));
      const t0 = performance.now();
      const created = await nodeClient.createContainer({ tenant: 'bench', function: 'bench/cold', memoryBytes: 128 * 1024 * 1024 });
      const nodeMs = performance.now() - t0;
      await nodeClient.removeContainer(created.id);
      parts.engine?.push(engineMs);
      parts.runtime?.push(plainMs - engineMs);
      parts.ephemera?.push(ephMs - plainMs);
      parts['node create (all)']?.push(nodeMs);
      // A new version of the action is a cold start through the platform.
      await fetch(`${base}/api/v1/namespaces/_/actions/noop?overwrite=true`, {
        method: 'PUT', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ exec: { kind: 'python:3', code: NOOP } }),
      });
      const rec = (await (await fetch(`${base}/api/v1/namespaces/_/actions/noop?blocking=true`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: '{}' })).json()) as { annotations?: { key: string; value: unknown }[] };
      const get = (k: string): number => Number(rec.annotations?.find((a) => a.key === k)?.value ?? Number.NaN);
      parts['platform waitTime']?.push(get('waitTime'));
      parts['platform initTime']?.push(get('initTime'));
    }
    opts.progress('bench platform: cold starts on the host');
    const host = await hostColdStarts(opts.buildDir, dir, opts.colds * 4);
    parts['runtime (host)'] = host.plain;
    parts['runtime+eph (host)'] = host.ephemera;
    parts['ephemera (host)'] = host.share;
    const cold: ColdRow[] = Object.entries(parts).map(([part, v]) => {
      const s = summarize(v);
      return { part, medianMs: s.median, minMs: s.min, maxMs: s.max };
    });
    const ratios = opts.clients.map((clients): Ratio => {
      const p50 = (path: Path): number => latency.find((l) => l.clients === clients && l.path === path)?.p50Ms ?? Number.NaN;
      return { clients, p50Ratio: p50('platform') / p50('direct'), floorRatio: p50('floor2') / p50('direct') };
    });
    return { latency, cpu, cold, ratios, containers: ids.length, table: table(latency, cpu, cold, ratios, ids.length), csv: csv(latency, cold) };
  } finally {
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', 60_000)));
    for (const c of await engine.list([`ephemera.node=${name}-node-1`]).catch(() => [])) await engine.remove(c.id).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');

function table(latency: readonly LatencyRow[], cpu: readonly CpuRow[], cold: readonly ColdRow[], ratios: readonly Ratio[], containers: number): string {
  const lines = [
    `warm invocations of a no-op python:3 action (ms); ${containers} warm containers (node and direct use at most one client each)`,
    'clients  path        calls  failed    p50    p90    p99   calls/s',
    ...latency.map((l) => `${String(l.clients).padStart(7)}  ${l.path.padEnd(10)} ${String(l.calls).padStart(6)} ${String(l.failed).padStart(7)} ${f2(l.p50Ms).padStart(6)} ${f2(l.p90Ms).padStart(6)} ${f2(l.p99Ms).padStart(6)} ${f1(l.throughputPerS).padStart(9)}`),
    '',
    'platform = HTTP API + store + invoker + node agent + runtime; controller = the same with a node that answers at once;',
    'node = the node agent\'s /run (Manager events, daemon stats, logs); direct = the runtime\'s /run over its unix socket;',
    'floor2 / floor1 = the same /run through two / one empty node:http forwarding hops (keep-alive agents; client',
    '-TCP-> hop [-unix socket-> hop] -unix socket-> container): what the process architecture costs before any work',
    'platform / direct /run, and the floor (2 empty hops) / direct /run, p50 (target <= 1.5 with 1 client):',
    ...ratios.map((r) => `  ${String(r.clients).padStart(2)} client(s): platform ${f2(r.p50Ratio)}x   floor, 2 empty hops ÷ direct ${f2(r.floorRatio)}x`),
    '',
    'CPU per warm call on the platform path (ms, every thread, less what each spends idle in as much time;',
    'a busy machine inflates it less than latency): where the work of a call is, process by process',
    'clients  controller  node agent  Managers  Docker  containers  | direct: containers | instant-node controller',
    ...cpu.map((c) => `${String(c.clients).padStart(7)}  ${f2(c.controllerMs).padStart(10)}  ${f2(c.agentMs).padStart(10)}  ${f2(c.managersMs).padStart(8)}  ${f2(c.dockerMs).padStart(6)}  ${f2(c.containersMs).padStart(10)}  | ${f2(c.directContainersMs).padStart(18)} | ${f2(c.bareControllerMs).padStart(23)}`),
    'Docker: dockerd, containerd and the containers\' shims (shared with anything else using the engine; an',
    'activation\'s output goes to files in its run directory, not through them); containers: the runtime and ephemerad.',
    '',
    'cold start (ms; median, min, max)',
    ...cold.map((c) => `  ${c.part.padEnd(18)} ${f1(c.medianMs).padStart(7)} ${f1(c.minMs).padStart(7)} ${f1(c.maxMs).padStart(7)}`),
    'engine: create + start a container of the function image; runtime: until its /health answers, without',
    'Ephemera; ephemera: the same runtime with ephemerad and the shim, minus without; node create: the node',
    "agent's whole create (all three, cgroup, daemon connection, Manager); waitTime includes it. (host): the",
    'same two runtime commands started on the host in turns, no engine; ephemera (host): the paired differences.',
    `Ephemera's share of a cold start: ${f1(cold.find((c) => c.part === 'ephemera')?.medianMs ?? Number.NaN)} ms in containers, ${f1(cold.find((c) => c.part === 'ephemera (host)')?.medianMs ?? Number.NaN)} ms on the host (target <= 5 ms)`,
  ];
  return lines.join('\n');
}

function csv(latency: readonly LatencyRow[], cold: readonly ColdRow[]): string {
  return [
    'kind,clients,path,calls,failed,p50_ms,p90_ms,p99_ms,throughput_per_s,part,median_ms,min_ms,max_ms',
    ...latency.map((l) => `latency,${l.clients},${l.path},${l.calls},${l.failed},${l.p50Ms},${l.p90Ms},${l.p99Ms},${l.throughputPerS},,,,`),
    ...cold.map((c) => `cold,,,,,,,,,${c.part},${c.medianMs},${c.minMs},${c.maxMs}`),
  ].join('\n') + '\n';
}

/** A bar chart of p50 latency by clients, platform beside direct. */
export async function plotPlatformBench(report: PlatformBenchReport, base: string): Promise<string[]> {
  return writePlot({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Warm no-op invocation latency (p50, ms)',
    data: { values: report.latency.map((l) => ({ clients: String(l.clients), path: l.path, p50: l.p50Ms })) },
    mark: 'bar',
    encoding: {
      x: { field: 'clients', type: 'ordinal', title: 'concurrent clients', sort: report.latency.map((l) => String(l.clients)) },
      xOffset: { field: 'path' },
      y: { field: 'p50', type: 'quantitative', title: 'p50 latency (ms)' },
      color: { field: 'path', type: 'nominal', title: null },
    },
    width: 300,
  }, base);
}
