/**
 * `ephemera bench table4`: the paper's §5.6 scenario on real containers. Two platforms run side by
 * side, `ephemera up --nodes 2 --node-memory 1024M` with `--scheduler ephemera` and with
 * `--scheduler most-free`; runs alternate between them. In a run, six tasks of one tenant arrive one
 * per second (C, I, I, C, I, I): the I/O task (limit 150 MB, profile 8 MiB own + 250 MiB files)
 * writes a 250 MiB file and reads it back, three times over (the same file, so that the tasks
 * overlap as in the paper with the profile's file peak); the CPU task (limit 300 MB, profile 4 MiB) spins for a
 * fixed time. While all six run, the agents' figures are sampled: per node memory requested
 * (`N_req`), allocated (`N_alloc`) and used (the containers' cgroup usage). A task's latency is its
 * activation's `waitTime + duration` (request to answer). Every container in both arms gets the
 * same CPU cap (`ephemera up --container-cpus`, Docker's NanoCpus); by default the machine's cores
 * divided by the six tasks, so that the six together never ask for more CPU than there is and a
 * task's latency is its own work plus where its files went, not who won the cores.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { EphemeraError } from '../core/errors.js';
import { ensureDockerEngine } from '../container/dockerd.js';
import { NodeClient } from '../node/client.js';
import { startAnnounced, stopChild } from '../platform/child.js';
import { readProps } from '../platform/harness.js';
import type { SchedulerPolicy } from '../scheduler/algorithm.js';
import { TABLE4_ARRIVALS } from '../scheduler/table4.js';

const MiB = 1 << 20;
const POLICIES: readonly SchedulerPolicy[] = ['ephemera', 'most-free'];

/** The I/O task: writes a file of `mb` MiB in 1 MiB blocks and reads it back, `passes` times. */
export const IO_CODE = `
def main(a):
    block = b"i" * (1 << 20)
    total = 0
    for _p in range(a.get("passes", 3)):
        with open("/tmp/table4.bin", "wb") as f:
            for _ in range(a.get("mb", 250)):
                f.write(block)
        with open("/tmp/table4.bin", "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                total += len(b)
    return {"bytes": total}
`;
/** The I/O task's profile (Table 4's baseline rows: T_mem 258 MB against a 150 MB limit). */
export const IO_PROFILE = { ownPeakBytes: 8 * MiB, filePeakBytes: 250 * MiB } as const;
/** The I/O task's memory limit, MiB. */
export const IO_LIMIT_MIB = 150;
const CPU_CODE = 'import time\ndef main(a):\n    end = time.time() + a.get("s", 8)\n    n = 0\n    while time.time() < end:\n        n += 1\n    return {"spins": n}\n';

export interface Table4Options {
  readonly cli: readonly string[];
  readonly runs: number;
  /** Seconds each CPU task spins. */
  readonly cpuSeconds: number;
  /** MiB each I/O task writes and reads. */
  readonly ioMiB: number;
  /** The CPU cap of every container in both arms, in CPUs. */
  readonly containerCpus: number;
  readonly progress: (line: string) => void;
}

export interface NodeSample {
  readonly node: string;
  readonly requestedMiB: number;
  readonly allocatedMiB: number;
  readonly usedMiB: number;
  readonly tasks: string;
}

export interface Table4Run {
  readonly policy: SchedulerPolicy;
  readonly run: number;
  readonly ioMs: number;
  readonly cpuMs: number;
  readonly allMs: number;
  /** Mean over the run's I/O tasks of the daemon's peak of file bytes held in memory (the rest went to disk). */
  readonly ioInMemoryMiB: number;
  /** Mean over the run's I/O tasks of the memory their container held at the end (its limit plus any loan). */
  readonly ioGrantedMiB: number;
  readonly nodes: readonly NodeSample[];
  readonly failed: number;
}

export interface Table4Report {
  readonly runs: readonly Table4Run[];
  readonly summary: Readonly<Record<SchedulerPolicy, { io: Stat; cpu: Stat; all: Stat }>>;
  /** (most-free − ephemera) / most-free over the medians of the average latency of all tasks. */
  readonly improvement: number;
  readonly loadavg: readonly number[];
  readonly containerCpus: number;
  readonly table: string;
}

export interface Stat {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function stat(xs: readonly number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length === 0 ? NaN : s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
  return { median, min: s[0] ?? NaN, max: s.at(-1) ?? NaN };
}

export const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export interface Platform {
  readonly policy: SchedulerPolicy;
  readonly name: string;
  readonly stateDir: string;
  readonly child: ChildProcess;
  readonly url: string;
  readonly auth: string;
}

export async function api(p: Platform, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${p.url}/api/v1/namespaces/_/${path}`, {
    method,
    headers: { authorization: p.auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function agents(p: Platform, nodes = 2): { name: string; client: NodeClient }[] {
  return Array.from({ length: nodes }, (_x, k) => k + 1).map((i) => {
    const name = `${p.name}-node-${String(i)}`;
    return { name, client: new NodeClient(join(p.stateDir, 'nodes', name, 'node.sock'), { timeoutMs: 10_000 }) };
  });
}

export async function sample(p: Platform, nodes = 2): Promise<NodeSample[]> {
  return Promise.all(agents(p, nodes).map(async ({ name, client }) => {
    const [info, containers] = await Promise.all([client.node(), client.listContainers()]);
    return {
      node: name.slice(-6),
      requestedMiB: Math.round(info.memory.requested / MiB),
      allocatedMiB: Math.round(info.memory.allocated / MiB),
      usedMiB: Math.round(containers.reduce((s, c) => s + c.usageBytes, 0) / MiB),
      tasks: containers.map((c) => c.function.replace(/^.*\/t\d-/, '')).join(','),
    };
  }));
}

export interface Activation {
  readonly success: boolean;
  /** `waitTime + duration`: request to answer. */
  readonly latencyMs: number;
  readonly durationMs: number;
  /** The daemon's peak of file bytes held in memory. */
  readonly inMemoryMiB: number;
  /** The memory the container held at the end (its limit plus any loan). */
  readonly grantedMiB: number;
}

/** Polls an activation until its record exists, or throws after `deadline` (epoch ms). */
export async function awaitActivation(p: Platform, id: string, deadline: number, bench: string): Promise<Activation> {
  for (;;) {
    const r = await api(p, 'GET', `activations/${id}`);
    if (r.status === 200) {
      const rec = r.body as { duration?: number; response?: { success?: boolean }; annotations?: { key: string; value: unknown }[] };
      const wait = Number(rec.annotations?.find((a) => a.key === 'waitTime')?.value ?? 0);
      const e = (rec.annotations?.find((a) => a.key === 'ephemera')?.value ?? {}) as Record<string, unknown>;
      const duration = rec.duration ?? 0;
      return {
        success: rec.response?.success === true,
        latencyMs: wait + duration,
        durationMs: duration,
        inMemoryMiB: Number(e.bytes_in_memory_peak ?? NaN) / MiB,
        grantedMiB: Number(e.grantedBytes ?? NaN) / MiB,
      };
    }
    if (Date.now() > deadline) throw new EphemeraError('EPH_BENCH_FAILED', `${bench}: activation ${id} on ${p.policy} did not finish in time`);
    await sleep(250);
  }
}

/** The containers go after the short keep-alive: waits (up to 120 s) until every node is empty again. */
export async function awaitEmptyNodes(p: Platform, nodes: number, bench: string): Promise<void> {
  const emptyBy = Date.now() + 120_000;
  while ((await sample(p, nodes)).some((n) => n.allocatedMiB > 0)) {
    if (Date.now() > emptyBy) throw new EphemeraError('EPH_BENCH_FAILED', `${bench}: the nodes of ${p.policy} still hold containers 120 s after the run`);
    await sleep(500);
  }
}

/**
 * Starts one `ephemera up` (its own state directory and EPHEMERA_HOME under `dir`, 1 s keep-alive,
 * every container capped at `cpus`), and returns it once its API answers. The caller stops `child`.
 */
export async function startPlatform(cli: readonly string[], dir: string, policy: SchedulerPolicy, o: { nodes: number; nodeMemory: string; cpus: number; tag: string }): Promise<Platform> {
  const name = `${o.tag}-${policy.slice(0, 2)}-${String(process.pid)}`;
  const stateDir = join(dir, policy);
  const home = join(dir, `${policy}-home`);
  const up = await startAnnounced(
    [...cli, 'up', '--port', '0', '--state-dir', stateDir, '--name', name, '--nodes', String(o.nodes), '--node-memory', o.nodeMemory, '--scheduler', policy, '--keep-alive-ms', '1000', '--container-cpus', String(o.cpus)],
    /API on (http:\/\/\S+)/, 600_000, { env: { ...process.env, EPHEMERA_HOME: home }, stderr: 'ignore' },
  );
  const auth = `Basic ${Buffer.from(readProps(join(home, 'guest.wskprops')).AUTH ?? '').toString('base64')}`;
  return { policy, name, stateDir, child: up.child, url: up.match[1] ?? '', auth };
}

async function oneRun(p: Platform, run: number, opts: Table4Options): Promise<Table4Run> {
  const ids: { kind: string; id: string }[] = [];
  for (const [i, kind] of TABLE4_ARRIVALS.entries()) {
    if (i > 0) await sleep(1000);
    const params = kind === 'io' ? { mb: opts.ioMiB } : { s: opts.cpuSeconds };
    const r = await api(p, 'POST', `actions/t${String(i + 1)}-${kind}`, params);
    if (r.status !== 202) throw new EphemeraError('EPH_BENCH_FAILED', `table4: invoking task ${String(i + 1)} on ${p.policy} answered ${String(r.status)}: ${JSON.stringify(r.body).slice(0, 200)}`);
    ids.push({ kind, id: String(r.body.activationId) });
  }
  await sleep(500);
  const nodes = await sample(p);
  const lat: Record<string, number[]> = { io: [], cpu: [] };
  const inMemory: number[] = [];
  const granted: number[] = [];
  let failed = 0;
  const deadline = Date.now() + 300_000;
  for (const { kind, id } of ids) {
    const a = await awaitActivation(p, id, deadline, 'table4');
    if (!a.success) failed++;
    (lat[kind] ?? []).push(a.latencyMs);
    if (kind === 'io') {
      inMemory.push(a.inMemoryMiB);
      granted.push(a.grantedMiB);
    }
  }
  await awaitEmptyNodes(p, 2, 'table4');
  const io = lat.io ?? [];
  const cpu = lat.cpu ?? [];
  return { policy: p.policy, run, ioMs: mean(io), cpuMs: mean(cpu), allMs: mean([...io, ...cpu]), ioInMemoryMiB: mean(inMemory), ioGrantedMiB: mean(granted), nodes, failed };
}

export async function runTable4(opts: Table4Options): Promise<Table4Report> {
  const docker = ensureDockerEngine();
  if (docker !== null) throw new EphemeraError('EPH_BENCH_FAILED', `bench table4 needs Docker: ${docker}`);
  const dir = mkdtempSync('/tmp/t4-');
  const platforms: Platform[] = [];
  const children: ChildProcess[] = [];
  try {
    opts.progress(`bench table4: starting two platforms (2 nodes of 1024M each, every container capped at ${String(opts.containerCpus)} CPUs): ephemera and most-free`);
    const started = await Promise.allSettled(POLICIES.map(async (policy) => {
      const p = await startPlatform(opts.cli, dir, policy, { nodes: 2, nodeMemory: '1024M', cpus: opts.containerCpus, tag: 't4' });
      children.push(p.child);
      platforms.push(p);
    }));
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    for (const p of platforms) {
      for (const [i, kind] of TABLE4_ARRIVALS.entries()) {
        const io = kind === 'io';
        const r = await api(p, 'PUT', `actions/t${String(i + 1)}-${kind}?overwrite=true`, {
          exec: { kind: 'python:3', code: io ? IO_CODE : CPU_CODE },
          limits: { memory: io ? IO_LIMIT_MIB : 300, timeout: 300_000 },
          annotations: [{ key: 'ephemera.profile', value: io ? IO_PROFILE : { ownPeakBytes: 4 * MiB, filePeakBytes: 0 } }],
        });
        if (r.status !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `table4: deploying task ${String(i + 1)} answered ${String(r.status)}: ${JSON.stringify(r.body).slice(0, 200)}`);
      }
    }
    const runs: Table4Run[] = [];
    for (let run = 1; run <= opts.runs; run++) {
      // Alternate which policy goes first, so that neither always runs on a machine the other just warmed.
      const order = run % 2 === 1 ? platforms : [...platforms].reverse();
      for (const p of order) {
        opts.progress(`bench table4: run ${String(run)}/${String(opts.runs)}, ${p.policy}`);
        runs.push(await oneRun(p, run, opts));
      }
    }
    const summary = Object.fromEntries(POLICIES.map((policy) => {
      const mine = runs.filter((r) => r.policy === policy);
      return [policy, { io: stat(mine.map((r) => r.ioMs)), cpu: stat(mine.map((r) => r.cpuMs)), all: stat(mine.map((r) => r.allMs)) }];
    })) as Record<SchedulerPolicy, { io: Stat; cpu: Stat; all: Stat }>;
    const improvement = (summary['most-free'].all.median - summary.ephemera.all.median) / summary['most-free'].all.median;
    const { loadavg } = await import('node:os');
    const load = loadavg();
    return { runs, summary, improvement, loadavg: load, containerCpus: opts.containerCpus, table: format(runs, summary, improvement, load, opts.containerCpus) };
  } finally {
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', 120_000)));
    rmSync(dir, { recursive: true, force: true });
  }
}

function format(runs: readonly Table4Run[], summary: Table4Report['summary'], improvement: number, load: readonly number[], cpus: number): string {
  const s = (x: Stat): string => `${(x.median / 1000).toFixed(2)} s [${(x.min / 1000).toFixed(2)}–${(x.max / 1000).toFixed(2)}]`;
  const lines = ['Table 4 on real containers (two nodes of 1024M; C,I,I,C,I,I one per second; median [min–max] over runs)', `every container in both arms capped at ${String(cpus)} CPUs (--container-cpus)`, ''];
  lines.push('policy      I/O task            CPU task            all tasks');
  for (const policy of POLICIES) {
    const x = summary[policy];
    lines.push(`${policy.padEnd(11)} ${s(x.io).padEnd(19)} ${s(x.cpu).padEnd(19)} ${s(x.all)}`);
  }
  for (const policy of POLICIES) {
    const mine = runs.filter((r) => r.policy === policy);
    lines.push(`${policy.padEnd(11)} I/O task's files in memory at peak ${stat(mine.map((r) => r.ioInMemoryMiB)).median.toFixed(0)} MiB, container ${stat(mine.map((r) => r.ioGrantedMiB)).median.toFixed(0)} MiB (medians of run means)`);
  }
  lines.push('', `average latency, ours against most-free: ${(-improvement * 100).toFixed(2)}% (paper: −44.92%)`, '', 'per node while all six run (last run of each policy), MiB: requested / allocated / used  tasks');
  for (const policy of POLICIES) {
    const last = runs.filter((r) => r.policy === policy).at(-1);
    for (const n of last?.nodes ?? []) lines.push(`${policy.padEnd(11)} ${n.node}  ${String(n.requestedMiB).padStart(5)} / ${String(n.allocatedMiB).padStart(5)} / ${String(n.usedMiB).padStart(5)}  ${n.tasks}`);
  }
  const failed = runs.reduce((a, r) => a + r.failed, 0);
  lines.push('', `failed activations: ${String(failed)}; load average at the end: ${load.map((l) => l.toFixed(2)).join(' ')}`);
  return lines.join('\n');
}
