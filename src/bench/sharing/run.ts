/**
 * The I/O shell of `ephemera bench fig14|fig15`: real node agents (child processes, one per
 * sharing scope), real function containers created, initialised and invoked through the agents'
 * API, arms alternated run by run, OOM kills read from each container's memory cgroup and from
 * Docker's record. The plan (which containers, which arms, which phases) comes from the caller.
 */
import type { DockerEngine } from '../../container/engine.js';
import { EphemeraError } from '../../core/errors.js';
import { DockerLimiter } from '../../limiter/docker.js';
import type { SharingScope, Usage } from '../../manager/types.js';
import type { RunReply } from '../../node/api.js';
import type { Progress } from '../progress.js';
import { actionMs, FACTORIAL_ACTION, microbenchActionZip } from './actions.js';
import { AgentProcess } from './agent-process.js';
import type { Sample, Task } from './report.js';

export const TENANT = 'bench';

export interface ContainerPlan {
  readonly name: string;
  readonly task: Task;
  readonly workflow: string;
  readonly memoryBytes: number;
  /** What the Manager is told before the first run; after it, what the run used. */
  readonly profile: Usage;
}

export interface ArmPlan {
  readonly arm: string;
  readonly sharing: SharingScope;
  /** Where the I/O task's files go: the managed root, or the container's OverlayFS without the shim. */
  readonly fs: 'ephemera' | 'overlay';
}

export interface ScenarioPlan {
  readonly name: string;
  /** Each phase runs its containers at once (the CPU tasks first, so that they run when the I/O tasks start); phases run one after another. */
  readonly phases: readonly (readonly string[])[];
}

export interface Workload {
  /** microbench: bytes per file (two files). */
  readonly fileBytes: number;
  /** microbench: random 8 KiB operations. */
  readonly ops: number;
  /** factorial: n. */
  readonly n: number;
  /** CPUs each container may use (Docker's --cpus), the same in every arm. */
  readonly cpus: number;
}

export interface SharingPlan {
  readonly containers: readonly ContainerPlan[];
  readonly arms: readonly ArmPlan[];
  readonly scenarios: readonly ScenarioPlan[];
  readonly runs: number;
  /** Untimed runs per arm and scenario first (warm containers; the Manager learns what each used). */
  readonly warmup: number;
  readonly workload: Workload;
  /** Start the agents with `--lend-while-idle` (beyond the paper's rule). */
  readonly lendWhileIdle: boolean;
}

export interface SharingTools {
  readonly ephemera: string;
  readonly microbench: string;
  readonly image: string;
  readonly engine: DockerEngine;
}

export interface SharingResult {
  readonly samples: Sample[];
  /** OOM kills counted by the containers' memory cgroups over the whole benchmark, plus Docker's OOMKilled flags. */
  readonly oomKills: number;
  /** Containers not back at their quota, or with a loan on record, once every run was over. */
  readonly unreturned: string[];
}

const RUNNING_TIMEOUT_MS = 15_000;
const RUN_TIMEOUT_MS = 10 * 60_000;

interface Deployed {
  readonly agent: AgentProcess;
  /** Plan name → container id. */
  readonly ids: ReadonlyMap<string, string>;
}

/** Runs the plan; every agent and container it started is gone when it returns or throws. */
export async function runSharing(plan: SharingPlan, tools: SharingTools, progress: Progress): Promise<SharingResult> {
  const scopes = [...new Set(plan.arms.map((a) => a.sharing))];
  const agents = new Map<SharingScope, Deployed>();
  const samples: Sample[] = [];
  try {
    const zip = await microbenchActionZip(tools.microbench);
    for (const sharing of scopes) {
      progress.note(`starting a node agent with --sharing ${sharing} and its ${String(plan.containers.length)} containers`);
      const agent = await AgentProcess.start({
        ephemera: tools.ephemera,
        image: tools.image,
        sharing,
        lendWhileIdle: plan.lendWhileIdle,
        name: `ephbench-${String(process.pid)}-${sharing}`,
        engine: tools.engine,
        log: (line) => {
          if (/error|fail|refus|oom/i.test(line)) progress.note(`[agent ${sharing}] ${line}`);
        },
      });
      const ids = new Map<string, string>();
      agents.set(sharing, { agent, ids });
      for (const c of plan.containers) {
        const created = await agent.client.createContainer({
          tenant: TENANT,
          function: c.task === 'io' ? 'microbench' : 'factorial',
          workflow: c.workflow,
          memoryBytes: c.memoryBytes,
          cpus: plan.workload.cpus,
          profile: c.profile,
        });
        ids.set(c.name, created.id);
        const init = await agent.client.init(created.id, { value: c.task === 'io' ? { code: zip, binary: true } : { code: FACTORIAL_ACTION } });
        if (init.statusCode !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `/init of ${c.name} answered ${String(init.statusCode)}: ${JSON.stringify(init.body)}`);
      }
    }
    const oomBefore = await oomCount(agents, tools.engine);

    const total = plan.scenarios.length * plan.arms.length * (plan.runs + plan.warmup);
    progress.begin(total);
    for (const scenario of plan.scenarios) {
      for (let run = -plan.warmup; run < plan.runs; run++) {
        // Alternate the arms, and rotate which goes first, so that no arm always follows the same one.
        const shift = ((run % plan.arms.length) + plan.arms.length) % plan.arms.length;
        const order = [...plan.arms.slice(shift), ...plan.arms.slice(0, shift)];
        for (const arm of order) {
          const what = `${scenario.name} ${arm.arm} ${run < 0 ? 'warm-up' : `run ${String(run + 1)}/${String(plan.runs)}`}`;
          progress.start(what);
          const deployed = agents.get(arm.sharing);
          if (deployed === undefined) throw new Error(`no agent for ${arm.sharing}`);
          const got: Sample[] = [];
          for (const phase of scenario.phases) got.push(...(await runPhase(plan, deployed, phase, arm, scenario.name, run)));
          if (run >= 0) samples.push(...got);
          progress.finish(what, got.map((s) => `${s.container} ${s.ms.toFixed(0)} ms at ${(s.grantedBytes / 1048576).toFixed(0)} MiB`).join(', '));
        }
      }
    }
    const oomAfter = await oomCount(agents, tools.engine);
    const flagged = samples.filter((s) => s.oom).length;
    return { samples, oomKills: Math.max(oomAfter - oomBefore, flagged), unreturned: await unreturned(agents) };
  } finally {
    for (const { agent } of agents.values()) await agent.stop().catch((e: unknown) => progress.note(`stopping agent ${agent.node}: ${(e as Error).message}`));
  }
}

/** Every loan must have come back when no invocation runs: each container at its quota (its cgroup's limit), none lent or borrowed. */
async function unreturned(agents: ReadonlyMap<SharingScope, Deployed>): Promise<string[]> {
  const bad: string[] = [];
  for (const [scope, { agent, ids }] of agents) {
    const names = new Map([...ids].map(([name, id]) => [id, name]));
    for (const v of await agent.client.listContainers(TENANT)) {
      if (v.grantedBytes !== v.initialBytes || v.lentTo.length + v.borrowedFrom.length > 0) bad.push(`${scope}/${names.get(v.id) ?? v.id}: limit ${String(v.grantedBytes)} of quota ${String(v.initialBytes)}`);
    }
  }
  return bad;
}

async function oomCount(agents: ReadonlyMap<SharingScope, Deployed>, engine: DockerEngine): Promise<number> {
  let n = 0;
  for (const { ids } of agents.values()) {
    for (const id of ids.values()) {
      const state = await engine.inspect(id);
      n += state.oomKilled ? 1 : 0;
      n += await new DockerLimiter(engine, id).oomKills();
    }
  }
  return n;
}

async function runPhase(plan: SharingPlan, d: Deployed, phase: readonly string[], arm: ArmPlan, scenario: string, run: number): Promise<Sample[]> {
  const members = phase.map((name) => {
    const c = plan.containers.find((x) => x.name === name);
    const id = d.ids.get(name);
    if (c === undefined || id === undefined) throw new Error(`the plan's phase names ${name}, which is not one of its containers`);
    return { c, id };
  });
  const cpu = members.filter((m) => m.c.task === 'cpu');
  const io = members.filter((m) => m.c.task === 'io');
  const one = async (m: { c: ContainerPlan; id: string }): Promise<Sample> => {
    const w = plan.workload;
    const value = m.c.task === 'io' ? { fs: arm.fs, fileBytes: w.fileBytes, ops: w.ops, seed: run + 100, timeoutS: RUN_TIMEOUT_MS / 1000 } : { n: w.n };
    const reply: RunReply = await d.agent.client.run(m.id, { value, timeoutMs: RUN_TIMEOUT_MS });
    if (reply.timedOut === true) throw new EphemeraError('EPH_BENCH_FAILED', `${m.c.name} (${arm.arm}) outlived ${String(RUN_TIMEOUT_MS)} ms`);
    return {
      scenario,
      arm: arm.arm,
      container: m.c.name,
      task: m.c.task,
      run: run + 1,
      ms: reply.oom === true ? Number.NaN : actionMs(m.c.task, reply.statusCode, reply.body),
      agentMs: reply.durationMs,
      initialBytes: reply.ephemera.initialBytes,
      grantedBytes: reply.ephemera.grantedBytes,
      evictions: reply.ephemera.stats.evictions,
      ownPeakBytes: reply.ephemera.stats.ownPeakBytes ?? 0,
      filePeakBytes: reply.ephemera.stats.filePeakBytes ?? 0,
      oom: reply.oom === true,
    };
  };
  const pending = cpu.map(one);
  // Awaited below; until then a failure must not count as unhandled.
  for (const p of pending) p.catch(() => undefined);
  if (cpu.length > 0 && io.length > 0) await waitRunning(d, cpu.map((m) => m.id));
  pending.push(...io.map(one));
  return Promise.all(pending);
}

/** Waits until the agent's Manager has every one of `ids` running (its invocation-start carried out). */
async function waitRunning(d: Deployed, ids: readonly string[]): Promise<void> {
  const deadline = performance.now() + RUNNING_TIMEOUT_MS;
  for (;;) {
    const views = await d.agent.client.listContainers(TENANT);
    if (ids.every((id) => views.find((v) => v.id === id)?.running === true)) return;
    if (performance.now() > deadline) throw new EphemeraError('EPH_BENCH_FAILED', `the CPU tasks were not running ${String(RUNNING_TIMEOUT_MS)} ms after their /run was sent (agent ${d.agent.node})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
