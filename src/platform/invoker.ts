/**
 * The invoker: runs activations in containers that the node agents create, keeps them warm for
 * the next activation of the same action version, and turns what the runtime answered into an
 * OpenWhisk activation record.
 *
 * One activation at a time per container (OpenWhisk's concurrency 1). A warm container that stays
 * idle for the keep-alive is removed. A container whose activation timed out, ran out of memory or
 * broke the protocol is destroyed, never reused.
 */
import { randomUUID } from 'node:crypto';

import type { Logger } from 'pino';

import { EphemeraError, isEphemeraError } from '../core/errors.js';
import { ProfileBook as InputProfileBook } from '../scheduler/profile-book.js';
import { payloadBytes } from '../scheduler/profile.js';
import type { ContainerSpec, NodeAgent, NodeSelector, Placement, RunResult } from './agent.js';
import { activationLogger } from '../log/logger.js';
import {
  MAX_SEQUENCE_ACTIONS,
  MESSAGES,
  capLogs,
  effectiveProfile,
  qualify,
  recordAnnotations,
  response,
  runResponse,
  mergeParams,
  type ActionDoc,
  type ActivationRecord,
  type ActivationResponse,
  type EphemeraStats,
  type Profile,
} from './model.js';

/** Where records go: `begin` before an activation runs (so a crash cannot lose it), `finish` after. */
export interface ActivationLedger {
  begin(meta: { activationId: string; namespace: string; name: string; subject: string; version: string; start: number }): void;
  finish(record: ActivationRecord): void;
}

export interface ActionLookup {
  getAction(namespace: string, name: string): ActionDoc | undefined;
}

export interface ProfileBook {
  observedProfile(namespace: string, name: string): Profile | undefined;
  observePeaks(action: ActionDoc, ownPeakBytes: number, filePeakBytes: number): void;
}

/** Told what the invoker sees, for the operator's views (views.ts); every method is optional. */
export interface InvokerObserver {
  /** A node answered a run of container `containerId` (its daemon counters are in `result.ephemera`). */
  ran?(containerId: string, result: RunResult): void;
  /** An activation's record was made (and handed to the ledger). */
  recorded?(rec: ActivationRecord): void;
}

export interface InvokerOptions {
  readonly nodes: readonly NodeAgent[];
  readonly selector: NodeSelector;
  readonly ledger: ActivationLedger;
  readonly actions: ActionLookup;
  readonly profiles: ProfileBook;
  readonly log: Logger;
  /** How long an idle warm container is kept. */
  readonly keepAliveMs: number;
  /** The CPU cap of every action container, in CPUs (`ephemera up --container-cpus`); absent: none. */
  readonly containerCpus?: number;
  /** How long past an action's own timeout the invoker waits for the node before giving up. */
  readonly graceMs?: number;
  readonly now?: () => number;
  readonly observer?: InvokerObserver;
}

export interface ActivationContext {
  readonly activationId: string;
  readonly subject: string;
  /** When the controller received the request (epoch ms): waitTime counts from here. */
  readonly received: number;
}

interface Slot {
  readonly id: string;
  /** The scheduler's reservation id for this container (the activation that created it). */
  readonly placementId: string;
  readonly agent: NodeAgent;
  readonly key: string;
  readonly version: string;
  busy: boolean;
  gone: boolean;
  timer: NodeJS.Timeout | undefined;
}

/**
 * 32 lowercase hex digits, as OpenWhisk makes them (`ActivationId.generate()`: a random UUID without
 * its dashes). Node's `randomUUID` draws from a buffered pool of entropy: here `randomBytes(16)` per
 * id cost about 38 µs against 5 µs (two per invoke).
 */
export function newActivationId(): string {
  return randomUUID().replaceAll('-', '');
}

class Bounded extends Error {}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Bounded(`${what} did not answer within ${ms} ms`)); }, ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Invoker {
  private readonly slots = new Map<string, Slot[]>();
  private readonly removing = new Set<Promise<void>>();
  /** Activations not yet recorded: close() lets them finish before the ledger goes. */
  private readonly inflight = new Set<Promise<ActivationRecord>>();
  /** Bytes of containers being created, by node name. */
  private readonly pending = new Map<string, number>();
  /** Selections run one at a time, so that each sees the bytes the previous ones placed. */
  private selecting: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly graceMs: number;
  private closed = false;
  /**
   * Every action's activations with their input sizes: for an action without a hand-set or profiled
   * profile, `T_mem` is the estimate for this invocation's input (src/scheduler/profile-book.ts).
   */
  private readonly estimates = new InputProfileBook();
  /** Activations started since this invoker began (sequences count each component too). */
  started = 0;

  constructor(private readonly opts: InvokerOptions) {
    this.now = opts.now ?? Date.now;
    this.graceMs = opts.graceMs ?? 15_000;
  }

  /** Containers by state, for the status line and metrics. */
  containers(): { warm: number; busy: number } {
    let warm = 0;
    let busy = 0;
    for (const list of this.slots.values()) for (const s of list) if (s.busy) busy++; else warm++;
    return { warm, busy };
  }

  /**
   * Runs one activation of `action` to its end and records it. The ledger's `begin` happens before
   * this returns its promise, so a caller that answers 202 right away has the activation on record.
   * Never rejects: every failure becomes a record.
   */
  activate(action: ActionDoc, params: Readonly<Record<string, unknown>>, ctx: ActivationContext, cause?: { activationId: string; workflow: string }): Promise<ActivationRecord> {
    this.started++;
    this.opts.ledger.begin({
      activationId: ctx.activationId,
      namespace: action.namespace,
      name: action.name,
      subject: ctx.subject,
      version: action.version,
      start: ctx.received,
    });
    const run: Promise<ActivationRecord> = action.exec.kind === 'sequence' ? this.runSequence(action, params, ctx, { count: 0 }) : this.runAction(action, params, ctx, cause?.activationId, cause?.workflow);
    const done = run
      .catch((err: unknown): ActivationRecord => {
        const at = this.now();
        this.opts.log.error({ activationId: ctx.activationId, err }, 'activation failed inside the invoker');
        return this.record(action, ctx, cause?.activationId, { start: at, end: at, logs: [], response: response(3, { error: `whisk internal error: ${message(err)}` }), waitTime: at - ctx.received, timedOut: false });
      })
      .then((rec) => {
        this.finish(rec);
        return rec;
      });
    this.inflight.add(done);
    void done.finally(() => { this.inflight.delete(done); });
    return done;
  }

  /** Stores a finished record; a failed write is logged, never thrown. */
  private finish(rec: ActivationRecord): void {
    try {
      this.opts.ledger.finish(rec);
    } catch (err) {
      // The record still goes to a waiting caller; at the next start the ledger's running row
      // becomes a whisk internal error, so the activation is not lost silently.
      this.opts.log.error({ activationId: rec.activationId, err: message(err) }, 'the activation record could not be stored');
    }
    // The log line and the views follow the answer: they run once this turn is over, after the
    // reply to a waiting caller was written, and before the controller reads its next request.
    setImmediate(() => {
      activationLogger(this.opts.log, { activationId: rec.activationId, tenant: rec.namespace, action: `${rec.namespace}/${rec.name}` }).info(
        { status: rec.response.status, duration: rec.duration },
        'activation finished',
      );
      this.opts.observer?.recorded?.(rec);
    });
  }

  private record(
    action: ActionDoc,
    ctx: ActivationContext,
    cause: string | undefined,
    r: { start: number; end: number; logs: readonly string[]; response: ActivationResponse; waitTime: number; initTime?: number; timedOut: boolean; ephemera?: EphemeraStats; topmost?: boolean },
  ): ActivationRecord {
    return {
      activationId: ctx.activationId,
      namespace: action.namespace,
      name: action.name,
      subject: ctx.subject,
      version: action.version,
      publish: false,
      start: r.start,
      end: r.end,
      duration: r.end - r.start,
      logs: capLogs(r.logs, action.limits.logs),
      annotations: recordAnnotations({
        action,
        waitTime: r.waitTime,
        timedOut: r.timedOut,
        ...(r.initTime === undefined ? {} : { initTime: r.initTime }),
        ...(r.ephemera === undefined ? {} : { ephemera: r.ephemera }),
        ...(cause === undefined ? {} : { causedBy: 'sequence' }),
        ...(r.topmost === true ? { topmost: true } : {}),
      }),
      response: r.response,
      ...(cause === undefined ? {} : { cause }),
    };
  }

  private async runSequence(seq: ActionDoc, params: Readonly<Record<string, unknown>>, ctx: ActivationContext, budget: { count: number }): Promise<ActivationRecord> {
    const start = this.now();
    const ids: string[] = [];
    let value: Readonly<Record<string, unknown>> = params;
    let last: ActivationResponse = response(0, { ...params });
    for (const comp of seq.exec.components ?? []) {
      const q = qualify(comp, seq.namespace);
      const action = this.opts.actions.getAction(q.namespace, q.name);
      if (action === undefined) {
        last = response(2, { error: `Sequence component ${comp} does not exist; create it or update the sequence's exec.components.` });
        break;
      }
      if (++budget.count > MAX_SEQUENCE_ACTIONS) {
        last = response(2, { error: `Too many actions in the sequence (more than ${MAX_SEQUENCE_ACTIONS}); shorten it.` });
        break;
      }
      const child: ActivationContext = { activationId: newActivationId(), subject: ctx.subject, received: this.now() };
      ids.push(child.activationId);
      let merged: Record<string, unknown>;
      try {
        merged = mergeParams(action, value);
      } catch (err) {
        last = response(1, { error: message(err) });
        break;
      }
      let rec: ActivationRecord;
      if (action.exec.kind === 'sequence') {
        this.opts.ledger.begin({ activationId: child.activationId, namespace: action.namespace, name: action.name, subject: ctx.subject, version: action.version, start: child.received });
        rec = await this.runSequence(action, merged, child, budget);
        rec = { ...rec, cause: ctx.activationId };
        this.finish(rec);
      } else {
        // The component's container (when this creates one) belongs to the sequence's workflow:
        // the node's `workflow` sharing scope pools it with the sequence's other components.
        rec = await this.activate(action, merged, child, { activationId: ctx.activationId, workflow: `${seq.namespace}/${seq.name}` });
      }
      last = rec.response;
      if (!last.success) break;
      value = last.result;
    }
    const end = this.now();
    return this.record(seq, ctx, undefined, { start, end, logs: ids, response: last, waitTime: start - ctx.received, timedOut: false, topmost: true });
  }

  private async runAction(action: ActionDoc, params: Readonly<Record<string, unknown>>, ctx: ActivationContext, cause: string | undefined, workflow: string | undefined): Promise<ActivationRecord> {
    if (this.closed) {
      const at = this.now();
      return this.record(action, ctx, cause, { start: at, end: at, logs: [], response: response(3, { error: 'The platform is shutting down; invoke again once it is back up.' }), waitTime: at - ctx.received, timedOut: false });
    }
    const log = activationLogger(this.opts.log, { activationId: ctx.activationId, tenant: action.namespace, action: `${action.namespace}/${action.name}` });
    const got = await this.acquire(action, log, workflow, ctx.activationId, payloadBytes(params));
    const start = got.start;
    const waitTime = start - ctx.received;
    if ('failure' in got) {
      return this.record(action, ctx, cause, { start, end: this.now(), logs: [], response: got.failure, waitTime, ...(got.initTime === undefined ? {} : { initTime: got.initTime }), timedOut: false });
    }
    const { slot, initTime } = got;
    const timeout = action.limits.timeout;
    let result: RunResult;
    try {
      result = await within(
        slot.agent.run(slot.id, {
          value: params,
          namespace: action.namespace,
          action_name: `/${action.namespace}/${action.name}`,
          action_version: action.version,
          activation_id: ctx.activationId,
          transaction_id: newActivationId(),
          deadline: String(this.now() + timeout),
          timeoutMs: timeout,
        }),
        timeout + this.graceMs,
        `node ${slot.agent.name} (run of container ${slot.id})`,
      );
    } catch (err) {
      this.destroy(slot, log, 'run failed');
      const end = this.now();
      const timedOut = err instanceof Bounded;
      log.warn({ err: message(err) }, 'run failed');
      return this.record(action, ctx, cause, {
        start, end, logs: [], waitTime, ...(initTime === undefined ? {} : { initTime }), timedOut,
        response: timedOut ? response(2, { error: MESSAGES.timedOut(timeout) }) : response(3, { error: `whisk internal error: the node agent failed to run the activation: ${message(err)}` }),
      });
    }
    const end = this.now();
    this.opts.observer?.ran?.(slot.id, result);
    let resp: ActivationResponse;
    if (result.timedOut === true) resp = response(2, { error: MESSAGES.timedOut(timeout) });
    else if (result.oom === true) resp = response(2, { error: MESSAGES.memoryExhausted });
    else resp = runResponse(result.statusCode, result.body);
    if (result.timedOut === true || result.oom === true || resp.statusCode === 2) this.destroy(slot, log, resp.status);
    else this.release(slot, log);
    const eph = result.ephemera;
    if (eph !== undefined) {
      const own = eph.stats.ownPeakBytes;
      const file = eph.stats.filePeakBytes ?? eph.stats.bytes_in_memory_peak;
      if (own !== undefined || file > 0) {
        this.opts.profiles.observePeaks(action, own ?? 0, file);
        this.estimates.observe(`${action.namespace}/${action.name}`, { ownPeak: own ?? 0, filePeak: file, inputBytes: payloadBytes(params) });
      }
    }
    return this.record(action, ctx, cause, {
      start, end, logs: result.logs, response: resp, waitTime, timedOut: result.timedOut === true,
      ...(initTime === undefined ? {} : { initTime }),
      ...(eph === undefined ? {} : {
        ephemera: {
          pool: eph.pool,
          initialBytes: eph.initialBytes,
          grantedBytes: eph.grantedBytes,
          node: eph.node,
          fast_reads: eph.stats.fast_reads,
          fast_writes: eph.stats.fast_writes,
          slow_ops: eph.stats.slow_ops,
          evictions: eph.stats.evictions,
          bytes_in_memory_peak: eph.stats.bytes_in_memory_peak,
          ...(eph.stats.ownPeakBytes === undefined ? {} : { ownPeakBytes: eph.stats.ownPeakBytes }),
          ...(eph.stats.filePeakBytes === undefined ? {} : { filePeakBytes: eph.stats.filePeakBytes }),
        },
      }),
    });
  }

  /** A warm container of this action version, or a new one created and initialised. */
  private async acquire(action: ActionDoc, log: Logger, workflow: string | undefined, placementId: string, inputBytes: number): Promise<
    { slot: Slot; start: number; initTime?: number } | { failure: ActivationResponse; start: number; initTime?: number }
  > {
    const key = `${action.namespace}/${action.name}`;
    const list = this.slots.get(key) ?? [];
    for (const s of list) {
      if (!s.busy && s.version !== action.version) this.destroy(s, log, 'action updated');
    }
    const warm = (this.slots.get(key) ?? []).find((s) => !s.busy && s.version === action.version);
    if (warm !== undefined) {
      warm.busy = true;
      clearTimeout(warm.timer);
      warm.timer = undefined;
      return { slot: warm, start: this.now() };
    }
    const memoryBytes = action.limits.memory * 1024 * 1024;
    const profile = effectiveProfile(action, this.opts.profiles.observedProfile(action.namespace, action.name));
    let taskMem: number | undefined;
    if (profile?.source === 'observed') {
      // Learned from activations: the largest seen (kept in the store across restarts) is the
      // fallback; the estimate for this input replaces it once the fit has enough samples.
      this.estimates.setProfile(key, profile);
      taskMem = this.estimates.task(key, memoryBytes, inputBytes).mem;
    }
    const placement: Placement = {
      id: placementId,
      reclaim: () => { this.reclaim(log); },
      tenant: action.namespace,
      function: key,
      ...(workflow === undefined ? {} : { workflow }),
      memoryBytes,
      pending: this.pending,
      ...(taskMem === undefined ? {} : { taskMem }),
      ...(profile === undefined ? {} : { profile: { ownPeakBytes: profile.ownPeakBytes, filePeakBytes: profile.filePeakBytes } }),
    };
    let placed: { agent: NodeAgent; id: string };
    try {
      placed = await this.create(action, placement, log);
    } catch (err) {
      log.error({ err: message(err) }, 'container creation failed');
      // The scheduler's refusals (a full queue, a wait past its bound, a task no node can hold)
      // keep their code: the API answers them 503.
      const code = err instanceof EphemeraError && err.code.startsWith('EPH_SCHED_') ? { code: err.code } : {};
      return { failure: response(3, { error: `whisk internal error: no container could be created for ${key}: ${message(err)}`, ...code }), start: this.now() };
    }
    const { agent, id } = placed;
    const slot: Slot = { id, placementId, agent, key, version: action.version, busy: true, gone: false, timer: undefined };
    this.slots.set(key, [...(this.slots.get(key) ?? []), slot]);
    log.info({ container: id, node: agent.name }, 'cold start: container created');
    const start = this.now();
    try {
      const init = await within(
        agent.init(id, {
          name: action.name,
          main: action.exec.main ?? 'main',
          code: action.exec.code ?? '',
          binary: action.exec.binary ?? false,
          env: {},
        }),
        action.limits.timeout + this.graceMs,
        `node ${agent.name} (init of container ${id})`,
      );
      const initTime = this.now() - start;
      if (init.statusCode !== 200) {
        this.destroy(slot, log, 'init failed');
        const body = init.body;
        const detail = typeof body === 'object' && body !== null && !Array.isArray(body) && Object.hasOwn(body, 'error') ? (body as Record<string, unknown>) : { error: MESSAGES.abnormalInit };
        return { failure: response(2, detail), start, initTime };
      }
      return { slot, start, initTime };
    } catch (err) {
      this.destroy(slot, log, 'init failed');
      const initTime = this.now() - start;
      return {
        failure: response(2, { error: err instanceof Bounded ? MESSAGES.timedOut(action.limits.timeout) : `${MESSAGES.abnormalInit} ${message(err)}` }),
        start,
        initTime,
      };
    }
  }

  /**
   * Selects a node and creates the container there; a node that turns out full (its own check,
   * `EPH_NODE_FULL`) is left out and the next is tried.
   */
  private async create(action: ActionDoc, placement: Placement, log: Logger): Promise<{ agent: NodeAgent; id: string }> {
    let candidates = [...this.opts.nodes];
    const selector = this.opts.selector;
    for (;;) {
      const nodes = candidates;
      if (selector.reserves === true) {
        // The scheduler reserves at decision time: no need to serialise, nor to count pending bytes.
        const agent = await within(selector.select(nodes, placement), (selector.maxWaitMs ?? 30_000) + 5000, `scheduler ${selector.name}`);
        try {
          const { id } = await within(agent.create(this.containerSpec(action, placement)), 120_000, 'container creation');
          selector.created?.(placement.id, agent);
          return { agent, id };
        } catch (err) {
          selector.released?.(placement.id, agent);
          candidates = candidates.filter((n) => n !== agent);
          if (!isEphemeraError(err, 'EPH_NODE_FULL') || candidates.length === 0) throw err;
          log.warn({ node: agent.name, err: message(err) }, 'node full; asking the scheduler again');
          continue;
        }
      }
      const chosen = this.selecting.then(async () => {
        const a = await within(this.opts.selector.select(nodes, placement), 30_000, `scheduler ${this.opts.selector.name}`);
        this.pending.set(a.name, (this.pending.get(a.name) ?? 0) + placement.memoryBytes);
        return a;
      });
      this.selecting = chosen.catch(() => undefined);
      const agent = await chosen;
      try {
        const { id } = await within(agent.create(this.containerSpec(action, placement)), 120_000, 'container creation');
        return { agent, id };
      } catch (err) {
        candidates = candidates.filter((n) => n !== agent);
        if (!isEphemeraError(err, 'EPH_NODE_FULL') || candidates.length === 0) throw err;
        log.warn({ node: agent.name, err: message(err) }, 'node full; trying another');
      } finally {
        const left = (this.pending.get(agent.name) ?? 0) - placement.memoryBytes;
        if (left > 0) this.pending.set(agent.name, left);
        else this.pending.delete(agent.name);
      }
    }
  }

  private containerSpec(action: ActionDoc, placement: Placement): ContainerSpec {
    return {
      tenant: placement.tenant,
      function: placement.function,
      ...(placement.workflow === undefined ? {} : { workflow: placement.workflow }),
      memoryBytes: placement.memoryBytes,
      ...(this.opts.containerCpus === undefined ? {} : { cpus: this.opts.containerCpus }),
      ...(placement.profile === undefined ? {} : { profile: placement.profile }),
      ...(action.exec.kind === 'blackbox' && action.exec.image !== undefined ? { image: action.exec.image } : {}),
    };
  }

  /** A placement waits for room: idle warm containers give theirs back (OpenWhisk evicts them too). */
  private reclaim(log: Logger): void {
    for (const list of [...this.slots.values()]) for (const s of list) if (!s.busy) this.destroy(s, log, 'memory needed by a waiting invocation');
  }

  private release(slot: Slot, log: Logger): void {
    if (this.closed) {
      this.destroy(slot, log, 'shutting down');
      return;
    }
    if ((this.opts.selector.waiting?.() ?? 0) > 0) {
      this.destroy(slot, log, 'memory needed by a waiting invocation');
      return;
    }
    slot.busy = false;
    slot.timer = setTimeout(() => { this.destroy(slot, log, 'idle past keep-alive'); }, this.opts.keepAliveMs);
    slot.timer.unref();
  }

  private destroy(slot: Slot, log: Logger, why: string): void {
    clearTimeout(slot.timer);
    if (slot.gone) return;
    slot.gone = true;
    const list = (this.slots.get(slot.key) ?? []).filter((s) => s !== slot);
    if (list.length === 0) this.slots.delete(slot.key);
    else this.slots.set(slot.key, list);
    const p = within(slot.agent.remove(slot.id), 60_000, `removal of container ${slot.id}`)
      .then(() => { log.info({ container: slot.id, why }, 'container removed'); })
      .catch((err: unknown) => { log.error({ container: slot.id, err: message(err) }, 'container removal failed'); })
      .finally(() => {
        this.removing.delete(p);
        this.opts.selector.released?.(slot.placementId, slot.agent);
      });
    this.removing.add(p);
  }

  /** Removes the idle containers of an action that was deleted. */
  retire(namespace: string, name: string): void {
    for (const s of this.slots.get(`${namespace}/${name}`) ?? []) if (!s.busy) this.destroy(s, this.opts.log, 'action deleted');
  }

  /**
   * Stops taking activations, waits (up to `waitMs`) for running ones, and removes every container.
   */
  async close(waitMs = 10_000): Promise<void> {
    this.closed = true;
    this.opts.selector.close?.();
    const deadline = this.now() + waitMs;
    while (this.containers().busy > 0 && this.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const list of [...this.slots.values()]) for (const s of list) this.destroy(s, this.opts.log, 'shutting down');
    await Promise.allSettled([...this.removing]);
    // Runs cut short by the removals end now (as records); give them a bounded moment.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight]),
      new Promise((r) => { timer = setTimeout(r, 15_000); }),
    ]);
    clearTimeout(timer);
  }
}
