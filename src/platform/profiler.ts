/**
 * The profiler on real containers (§3.4.1): when an action is saved with an
 * `ephemera.profile-inputs` annotation, each input runs once, all in parallel, in a container of
 * its own with the action's memory limit, created through a node agent. The agent's /run answer
 * carries the run's peaks as its daemon and cgroup saw them (`ephemera.stats.ownPeakBytes`: the
 * function's own peak without file pages; `filePeakBytes`: the peak bytes of its files, in memory
 * and on disk). The largest run becomes the action's `ephemera.profile` annotation.
 *
 * The pure part (running every input, keeping the largest, failing on any failed run) is the
 * scheduler's `profileAction`; this file is the {@link ProfileRunner} over the node agents and the
 * write-back to the store.
 */
import { randomBytes } from 'node:crypto';

import type { Logger } from 'pino';

import { EphemeraError } from '../core/errors.js';
import type { RunPeaks } from '../scheduler/estimator.js';
import { PROFILE_INPUTS_ANNOTATION, parseProfileInputs, payloadBytes, profileAction, type ProfileRunRequest, type ProfileRunner } from '../scheduler/profile.js';
import type { NodeAgent } from './agent.js';
import { PROFILE_ANNOTATION, annotation, withAnnotation, type ActionDoc, type Profile } from './model.js';

/** Runs one profiling input of `action` on `agent`: create, init, run, remove (always). */
export class AgentProfileRunner implements ProfileRunner {
  constructor(
    private readonly agent: NodeAgent,
    private readonly action: ActionDoc,
    private readonly cpus?: number,
  ) {}

  async run(req: ProfileRunRequest): Promise<RunPeaks> {
    const a = this.action;
    const { id } = await this.agent.create({ tenant: a.namespace, function: `${a.namespace}/${a.name}`, memoryBytes: req.limit, ...(this.cpus === undefined ? {} : { cpus: this.cpus }) });
    try {
      const init = await this.agent.init(id, { name: a.name, main: a.exec.main ?? 'main', code: a.exec.code ?? '', binary: a.exec.binary ?? false, env: {} });
      if (init.statusCode !== 200) throw new Error(`the action did not initialise (${String(init.statusCode)}: ${JSON.stringify(init.body).slice(0, 200)})`);
      const r = await this.agent.run(id, {
        value: req.input,
        namespace: a.namespace,
        action_name: req.action,
        action_version: a.version,
        activation_id: randomBytes(16).toString('hex'),
        transaction_id: randomBytes(16).toString('hex'),
        deadline: String(Date.now() + req.timeoutMs),
        timeoutMs: req.timeoutMs,
      });
      if (r.timedOut === true) throw new Error(`the run outlived the action's timeout of ${String(req.timeoutMs)} ms`);
      if (r.oom === true) throw new Error(`the run exhausted the action's memory limit of ${String(req.limit)} bytes`);
      if (r.statusCode !== 200) throw new Error(`the action failed (${String(r.statusCode)}: ${JSON.stringify(r.body).slice(0, 200)})`);
      const own = r.ephemera?.stats.ownPeakBytes;
      const file = r.ephemera?.stats.filePeakBytes;
      if (own === undefined || file === undefined) throw new Error(`node ${this.agent.name} did not report the run's peaks (ownPeakBytes, filePeakBytes)`);
      return { ownPeak: own, filePeak: file, inputBytes: payloadBytes(req.input) };
    } finally {
      await this.agent.remove(id);
    }
  }
}

export interface ProfilerStore {
  getAction(namespace: string, name: string): ActionDoc | undefined;
  putAction(doc: ActionDoc): void;
}

export interface ProfilerOptions {
  readonly nodes: readonly NodeAgent[];
  readonly store: ProfilerStore;
  readonly log: Logger;
  /** The same CPU cap as the action's own containers, so that a profile run sees what they see. */
  readonly containerCpus?: number;
}

export class Profiler {
  private next = 0;
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly opts: ProfilerOptions) {}

  /**
   * Profiles `action` in the background when it carries `ephemera.profile-inputs` (checked when the
   * action was saved); the profile is written only if the action was not changed meanwhile.
   */
  saved(action: ActionDoc): void {
    const raw = annotation(action.annotations, PROFILE_INPUTS_ANNOTATION);
    if (raw === undefined || action.exec.kind === 'sequence') return;
    const p = this.profile(action, parseProfileInputs(raw))
      .catch((err: unknown) => { this.opts.log.error({ action: `${action.namespace}/${action.name}`, err: err instanceof Error ? err.message : String(err) }, 'profiling failed'); })
      .finally(() => { this.running.delete(p); });
    this.running.add(p);
  }

  /** Runs every input and writes the profile; returns it. */
  async profile(action: ActionDoc, inputs: readonly Readonly<Record<string, unknown>>[]): Promise<Profile> {
    const nodes = this.opts.nodes;
    if (nodes.length === 0) throw new EphemeraError('EPH_PROFILE_RUN_FAILED', 'there is no node agent to profile on');
    const limit = action.limits.memory * 1024 * 1024;
    const qualified = `/${action.namespace}/${action.name}`;
    // Spread the runs over the nodes, one container per input.
    const runner: ProfileRunner = {
      run: (req) => {
        const agent = nodes[this.next++ % nodes.length] as NodeAgent;
        return new AgentProfileRunner(agent, action, this.opts.containerCpus).run(req);
      },
    };
    this.opts.log.info({ action: qualified, inputs: inputs.length }, 'profiling');
    const profile: Profile = await profileAction(runner, qualified, limit, inputs, action.limits.timeout);
    const now = this.opts.store.getAction(action.namespace, action.name);
    if (now?.version !== action.version) {
      this.opts.log.warn({ action: qualified }, 'the action changed while it was profiled; the profile is not written');
      return profile;
    }
    this.opts.store.putAction({ ...now, annotations: withAnnotation(now.annotations, PROFILE_ANNOTATION, profile) });
    this.opts.log.info({ action: qualified, profile }, 'profiled');
    return profile;
  }

  /** Waits (bounded by each run's own timeout) for the profiles under way. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
