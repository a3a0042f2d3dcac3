/**
 * The node agent (`ephemera node`): the one process on a machine that talks to the container
 * engine and writes cgroup memory limits. It creates, starts and removes function containers,
 * forwards OpenWhisk's /init and /run to the runtime inside them, hosts one Tenant Manager per
 * tenant, and carries out the Managers' moves (moves.ts) — refusing any that would cross tenants.
 *
 * Everything it knows can be rebuilt from the engine: each container carries its tenant, function,
 * workflow, initial quota and profile as labels, and its live limit is its cgroup file. So after a
 * crash {@link NodeAgent.recover} rebuilds the records, has each Manager rebuild its model from them,
 * and carries out the moves that give every lent byte back.
 */
import { randomBytes } from 'node:crypto';
import type { Agent } from 'node:http';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { EphemeraError, isEphemeraError } from '../core/errors.js';
import type { ContainerEngine, MountSpec } from '../container/engine.js';
import { DaemonClient, type DaemonStats } from '../daemon-client/client.js';
import { cgroupGuardArm } from '../guard/arm.js';
import { ContainerGuard } from '../guard/container-guard.js';
import { openGuardLease, type GuardLease } from '../guard/lease.js';
import { spawnGuardSentinel, type GuardSentinel, type SentinelOptions } from '../guard/sentinel.js';
import { cgroupGuardKnobs } from '../guard/watchdog.js';
import { CgroupV1Limiter } from '../limiter/cgroup-v1.js';
import { CgroupV2Limiter } from '../limiter/cgroup-v2.js';
import { findMemoryCgroup } from '../limiter/detect.js';
import type { MemoryLimiter } from '../limiter/limiter.js';
import type { ContainerInfo, LiveContainer, ManagerSnapshot, PoolEntry, PoolName, SharingScope, Usage } from '../manager/types.js';
import { actionRequest, ActionRequestError, runtimeConnection, waitForRuntime } from './action-client.js';
import { activationLogger, type Logger } from '../log/logger.js';
import { ActivationLog } from './activation-log.js';
import { OutputFiles } from './output-files.js';
import { readStatsAndPeaks } from './daemon-reads.js';
import type {
  ActionReply,
  ContainerCreated,
  ContainerView,
  CreateContainerRequest,
  EventReply,
  InitRequest,
  MemoryFigures,
  MoveReport,
  NodeInfo,
  RegisterRequest,
  RunReply,
  RunRequest,
} from './api.js';
import { NODE_API_VERSION } from './api.js';
import { NodeEventJournal } from './event-journal.js';
import { LABEL, containerLabels, parseLabels } from './labels.js';
import type { MoveContext, MoveParty, MoveStep } from './moves.js';
import { RecordedLimitSync } from './recorded-limit.js';
import { IN_DAEMON, IN_LIB, IN_RUN, runtimeCommand } from './runtime-command.js';
import { TenantHost, type BatchResult, type ManagerFactory, type RecoveryView } from './tenants.js';
import { CgroupPeakWindow, OomKillCounter } from './cgroup-peak.js';
import { filePeakExact, nextEstimate, requestedBytes, runStats, usageFromCounters, usageFromPeaks } from './usage.js';

/** Unix socket paths are limited to 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 107;
const DEFAULT_RUN_TIMEOUT_MS = 60_000;
/** How long the agent waits for an activation's log sentinels after its /run answered. */
const LOG_WAIT_MS = 2000;

export interface NodeAgentOptions {
  readonly node: string;
  readonly sharing: SharingScope;
  /** N_lim: the memory the node's containers may be given, in bytes. */
  readonly memoryBytes: number;
  readonly stateDir: string;
  /** The cgroup under which the engine puts this agent's containers (`--cgroup-parent`). */
  readonly parentCgroup: string;
  /** The function image (with the action runtime). */
  readonly image: string;
  /** Holds ephemerad and libephemera.so, bind-mounted into each container. */
  readonly buildDir: string;
  readonly engine: ContainerEngine;
  readonly managers: ManagerFactory;
  /** Told after every step of every move (tests check the tenant invariant here). */
  readonly onStep?: (tenant: string, step: MoveStep) => void;
  /** How long a container's limit must be still before Docker's record follows. @default 50 */
  readonly recordQuietMs?: number;
  /** How long a new container may take to answer. @default 30000 */
  readonly startTimeoutMs?: number;
  readonly log?: (msg: string) => void;
  /** Structured lines about activations (each carries its id); none by default. */
  readonly logger?: Logger;
  /**
   * Set each container's OOM guard from the host and watch it (src/guard/container-guard.ts):
   * Docker mounts a container's cgroup read-only, so its daemon cannot. Off only to measure
   * what the guard prevents. @default true
   */
  readonly oomGuard?: boolean;
  /**
   * Starts the process that lifts every guard this agent set if the agent dies (even by SIGKILL):
   * src/guard/sentinel.ts. Started in prepare() when the guard is on. @default spawnGuardSentinel
   */
  readonly sentinel?: (options: SentinelOptions) => Promise<GuardSentinel>;
}

/** An activation's "before": the daemon's counters, the OOM count, and whether its `peaks` window is open. */
interface Baseline {
  readonly stats: DaemonStats;
  readonly oomKills: number;
  /** False when the daemon could not open a window (one without `peaks`): the run's usage comes from counters. */
  readonly peaks: boolean;
}

/** What a Manager's snapshot said of a container (see Instance.standing). */
interface Standing {
  readonly pool: PoolName;
  readonly noLoans: boolean;
  readonly lendWhileIdle: boolean;
}

/** Where the agent takes an activation's logs from: the run directory's files, or the engine's stream. */
interface ActivationOutput {
  take(timeoutMs: number): Promise<string[]>;
}

interface OutputSource {
  readonly log: ActivationOutput;
  readonly stop: () => void;
}

interface Instance {
  readonly id: string;
  readonly name: string;
  readonly tenant: string;
  readonly fn: string;
  readonly workflow: string | undefined;
  readonly initialBytes: number;
  profile: Usage | undefined;
  /** The profile the container was created with (the user's or the profiler's): a floor for the estimates. */
  readonly givenProfile: Usage | undefined;
  readonly origin: 'created' | 'registered';
  readonly limiter: MemoryLimiter;
  /** The container's OOM guard held from the host; undefined when off or it could not be set. */
  readonly guard: ContainerGuard | undefined;
  readonly daemon: DaemonClient;
  /** False once the daemon refused `stats-peaks` (an older one): its two reads go apart. */
  statsPeaks: boolean;
  /** The cgroup's own peak over an invocation (the fallback for a daemon without `peaks`). */
  readonly cgroupPeak: CgroupPeakWindow;
  /** The cgroup's OOM-kill count, through a kept descriptor. */
  readonly oom: OomKillCounter;
  /** The host directory bind-mounted at /run/ephemera (created containers). */
  readonly dir: string | undefined;
  readonly log: ActivationOutput | undefined;
  stopLogs: (() => void) | undefined;
  busy: boolean;
  /** The limit in force: read at attach, then set by every move that resizes the container. */
  limitBytes: number;
  /** Counts the moves that resized the container: a baseline read across one is stale. */
  moveGen: number;
  /**
   * The daemon's counters and the OOM count after the last activation's bookkeeping, with the
   * peak windows (the daemon's, the cgroup's) opened since: the next activation's "before", valid
   * while no move touched the container (only its own action and a resize change them).
   * Undefined: read them afresh.
   */
  baseline: Baseline | undefined;
  /**
   * What its tenant's Manager showed after the last invocation-end: its pool (the one its next
   * invocation-start puts it in too, as the start's estimate is the usage that end reported),
   * whether it had no loan either way, and whether idle containers lend. Undefined: ask again.
   */
  standing: Standing | undefined;
  /** The last activation's bookkeeping after its reply (never rejects); the next run waits for it. */
  tail: Promise<void>;
  /** The one connection to the runtime (created containers). */
  readonly http: Agent | undefined;
  /** The highest limit seen during the current invocation. */
  maxGranted: number;
  shortfallPending: boolean;
  removed: boolean;
  /** The container exited (its action died): moves count its side as done. */
  gone: boolean;
}

export class NodeAgent {
  readonly #o: NodeAgentOptions;
  readonly #instances = new Map<string, Instance>();
  readonly #tenants: TenantHost;
  readonly #sync: RecordedLimitSync;
  readonly #log: (msg: string) => void;
  /** Moves, shortfalls and OOM kills, for `GET /v1/events`. */
  readonly journal = new NodeEventJournal();
  /** Quota reserved by creates in progress, so two cannot both take the last bytes. */
  #reserved = 0;
  #cgroupVersion: 1 | 2 = 1;
  /** Lifts the guards this agent set if it dies (started in prepare when the guard is on). */
  #sentinel: GuardSentinel | undefined;
  /** Held by this agent and its sentinel: the daemons see it end when both are gone (lease.ts). */
  #lease: GuardLease | undefined;

  constructor(options: NodeAgentOptions) {
    this.#o = options;
    this.#log = options.log ?? (() => undefined);
    this.#sync = new RecordedLimitSync((id, bytes) => options.engine.update(id, { memory: bytes, memorySwap: bytes }), {
      quietMs: options.recordQuietMs ?? 50,
      onError: (id, err) => this.#log(`docker update of ${id} failed (the cgroup limit stays right; retried on the next move): ${(err as Error).message}`),
    });
    this.#tenants = new TenantHost(options.managers, (tenant) => this.#moveContext(tenant), (tenant) => this.#recoveryView(tenant), this.#log, (tenant, m) => {
      this.journal.push({ type: 'move', tenant, from: m.from, to: m.to, bytes: m.bytes, reason: m.reason, durationUs: m.durationUs });
    });
  }

  get node(): string {
    return this.#o.node;
  }

  /** Checks the state directory's socket paths and detects the cgroup version. */
  async prepare(): Promise<void> {
    const probe = join(this.#o.stateDir, 'c', 'x'.repeat(12), 'control.sock');
    if (Buffer.byteLength(probe) > MAX_SOCKET_PATH) {
      throw new EphemeraError('EPH_NODE_STATE_DIR', `--state-dir ${this.#o.stateDir} is too long: the containers' sockets (${probe}) would exceed ${MAX_SOCKET_PATH} bytes; choose a shorter directory`, {
        detail: { stateDir: this.#o.stateDir },
      });
    }
    await mkdir(join(this.#o.stateDir, 'c'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.#o.stateDir, 'registered'), { recursive: true, mode: 0o700 });
    this.#cgroupVersion = (await findMemoryCgroup()).version;
    if (this.#o.oomGuard !== false) {
      this.#lease ??= await openGuardLease(this.#o.stateDir);
      this.#sentinel ??= await (this.#o.sentinel ?? spawnGuardSentinel)({ log: (msg) => this.#log(msg), leaseFd: this.#lease.fd });
    }
  }

  // --- queries ---------------------------------------------------------------------------------

  async info(): Promise<NodeInfo> {
    await this.#settled();
    const tenants: Record<string, MemoryFigures> = {};
    let allocated = 0;
    let requested = 0;
    for (const i of this.#instances.values()) {
      const granted = (await i.limiter.getLimit().catch(() => null)) ?? i.initialBytes;
      const t = (tenants[i.tenant] ??= { limit: 0, allocated: 0, requested: 0 });
      const req = requestedBytes(i.profile, i.initialBytes);
      tenants[i.tenant] = { limit: t.limit + granted, allocated: t.allocated + i.initialBytes, requested: t.requested + req };
      allocated += i.initialBytes;
      requested += req;
    }
    return {
      version: NODE_API_VERSION,
      node: this.#o.node,
      sharing: this.#o.sharing,
      cgroupVersion: this.#cgroupVersion,
      memory: { limit: this.#o.memoryBytes, allocated, requested },
      tenants,
    };
  }

  async list(tenant?: string): Promise<ContainerView[]> {
    await this.#settled(tenant);
    const views: ContainerView[] = [];
    const snapshots = new Map<string, ManagerSnapshot>();
    for (const i of this.#instances.values()) {
      if (tenant !== undefined && i.tenant !== tenant) continue;
      if (!snapshots.has(i.tenant)) {
        // A Manager that cannot answer (lost, being replaced) leaves the pool columns at their defaults.
        const snap = await this.#tenants.snapshot(i.tenant).catch((err: unknown) => {
          this.#log(`snapshot of tenant ${i.tenant}: ${(err as Error).message}`);
          return undefined;
        });
        if (snap !== undefined) snapshots.set(i.tenant, snap);
      }
      const entry = snapshots.get(i.tenant)?.containers.find((c) => c.id === i.id);
      views.push(await this.#view(i, entry));
    }
    return views;
  }

  async #view(i: Instance, entry: PoolEntry | undefined): Promise<ContainerView> {
    const stats = await i.daemon.stats().catch(() => undefined);
    return {
      id: i.id,
      name: i.name,
      tenant: i.tenant,
      function: i.fn,
      ...(i.workflow !== undefined ? { workflow: i.workflow } : {}),
      origin: i.origin,
      pool: entry?.pool ?? 'self-sufficient',
      running: entry?.running ?? i.busy,
      initialBytes: i.initialBytes,
      grantedBytes: (await i.limiter.getLimit().catch(() => null)) ?? 0,
      usageBytes: await i.limiter.getUsage().catch(() => 0),
      filesInMemory: stats?.files_in_memory ?? 0,
      fileBytesInMemory: stats?.file_bytes_memory ?? 0,
      lentTo: entry?.lentTo ?? [],
      borrowedFrom: entry?.borrowedFrom ?? [],
    };
  }

  // --- containers --------------------------------------------------------------------------------

  /**
   * Creates and starts a function container and registers it with its tenant's Manager.
   * @throws {EphemeraError} `EPH_NODE_FULL`, `EPH_DOCKER_API`, `EPH_NODE_RUNTIME`
   */
  async create(req: CreateContainerRequest): Promise<ContainerCreated> {
    const t0 = performance.now();
    const allocated = [...this.#instances.values()].reduce((s, i) => s + i.initialBytes, 0) + this.#reserved;
    if (allocated + req.memoryBytes > this.#o.memoryBytes) {
      throw new EphemeraError('EPH_NODE_FULL', `node ${this.#o.node} cannot take a container of ${req.memoryBytes} bytes: ${allocated} of its ${this.#o.memoryBytes} bytes are allocated; remove containers or start the agent with a larger --memory`, {
        detail: { requested: req.memoryBytes, allocated, limit: this.#o.memoryBytes },
      });
    }
    this.#reserved += req.memoryBytes;
    const short = randomBytes(6).toString('hex');
    const dir = join(this.#o.stateDir, 'c', short);
    let id: string | undefined;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const info: Omit<ContainerInfo, 'id'> = {
        tenant: req.tenant,
        fn: req.function,
        ...(req.workflow !== undefined ? { workflow: req.workflow } : {}),
        initialQuota: req.memoryBytes,
        ...(req.profile !== undefined ? { profile: req.profile } : {}),
      };
      const mounts: MountSpec[] = [
        { type: 'bind', source: dir, target: IN_RUN },
        { type: 'bind', source: join(this.#o.buildDir, 'ephemerad'), target: IN_DAEMON, readOnly: true },
        { type: 'bind', source: join(this.#o.buildDir, 'libephemera.so'), target: IN_LIB, readOnly: true },
      ];
      id = await this.#o.engine.create({
        name: `eph-${this.#o.node}-${short}`,
        image: req.image ?? this.#o.image,
        cmd: runtimeCommand(true, { outputFiles: true }),
        env: { PYTHONDONTWRITEBYTECODE: '1', ...req.env },
        memory: req.memoryBytes,
        memorySwap: req.memoryBytes,
        ...(req.cpus !== undefined ? { cpus: req.cpus } : {}),
        cgroupParent: this.#o.parentCgroup,
        // The daemon locks its working set before the guard is first set (daemon/reserve.c).
        allowMemoryLock: true,
        // The function is not pid 1, so that its daemon can kill it when nobody outside is left to
        // end a stall at the guard (daemon/guardlease.h); tini forwards the engine's signals.
        init: true,
        mounts,
        labels: { ...req.labels, ...containerLabels(this.#o.node, short, info) },
      });
      await this.#o.engine.start(id);
      const started = id;
      // The runtime writes its output to files in the run directory once it serves (before its
      // /health answers), and prints nothing before: nothing is missed by opening them then.
      const instance = await this.#attach(started, `eph-${this.#o.node}-${short}`, { ...info, id }, 'created', dir, () => this.#output(started, dir, false));
      await this.#register(instance);
      return { id, tenant: req.tenant, function: req.function, memoryBytes: req.memoryBytes, createdMs: Math.round(performance.now() - t0) };
    } catch (err) {
      let thrown = err;
      if (id !== undefined) {
        if (isEphemeraError(err, 'EPH_NODE_RUNTIME')) thrown = await this.#exitedEarly(id, req.image ?? this.#o.image, err);
        const known = this.#instances.get(id);
        if (known !== undefined) await this.#drop(known).catch(() => undefined);
        else await this.#o.engine.remove(id).catch(() => undefined);
      }
      await rm(dir, { recursive: true, force: true });
      throw thrown;
    } finally {
      this.#reserved -= req.memoryBytes;
    }
  }

  /**
   * When a new container's runtime never answered because the container exited: an error with its
   * exit status and the end of its output, and, for an image other than the function image, what a
   * blackbox image must bring. Otherwise the error as it was.
   */
  async #exitedEarly(id: string, image: string, err: EphemeraError): Promise<EphemeraError> {
    const state = await this.#o.engine.inspect(id).catch(() => undefined);
    if (state === undefined || state.running) return err;
    const out = await this.#o.engine.logs(id).catch(() => ({ stdout: '', stderr: '' }));
    const tail = `${out.stdout}${out.stderr}`.trim().split('\n').slice(-5).join(' | ').slice(-600);
    const blackbox = image !== this.#o.image
      ? `; image ${image} is not the function image: a blackbox image must be built FROM ${this.#o.image} (it brings /bin/sh, python3 and the action runtime under /opt/ephemera/runtime that the agent starts; images serving on :8080 are not supported)`
      : '';
    return new EphemeraError(
      'EPH_NODE_RUNTIME',
      `the container exited with status ${state.exitCode} before its action runtime answered${tail === '' ? ' (it printed nothing)' : `; its output ends: ${tail}`}${blackbox}`,
      { cause: err, detail: { id, image, exitCode: state.exitCode } },
    );
  }

  /** Forwards OpenWhisk's /init to the container's runtime. */
  async init(id: string, req: InitRequest): Promise<ActionReply> {
    const i = this.#get(id);
    const socket = this.#runtimeSocket(i);
    return actionRequest(socket, 'POST', '/init', req, 5 * 60_000);
  }

  /**
   * Runs one activation: invocation-start to the Manager (and its moves), OpenWhisk's /run, the
   * activation's logs; invocation-end with what it used (and those moves) follows the reply.
   *
   * What stays on the critical path, and why (docs/ARCHITECTURE.md, node agent, "The run path"):
   * the Manager's invocation-start is awaited only when one of its moves may have to reach this
   * container before its action runs (it lends memory now, its estimate exceeds its limit, or a
   * move of its tenant is under way); otherwise it is queued, first in line, and the run starts at
   * once. The counters the run is measured against come from the previous activation (its reads
   * after /run, or a fresh baseline when a move resized the container since), as does the run's
   * peak window in the daemon. After /run answers, the logs, the daemon's counters and its window's
   * peaks (the same request opening the next run's window) are read side by side, and the OOM count
   * through a kept descriptor; invocation-end (whose answer carries the container's standing) and
   * the next baseline's remaining parts come after the reply, and the container's next run waits
   * for them.
   */
  async run(id: string, req: RunRequest): Promise<RunReply> {
    const i = this.#get(id);
    const socket = this.#runtimeSocket(i);
    if (i.busy) {
      throw new EphemeraError('EPH_NODE_CONFLICT', `container ${id} is already running an activation; OpenWhisk containers run one at a time: wait for it or create another container`, { detail: { id } });
    }
    i.busy = true;
    let released = false;
    try {
      await i.tail;
      if (i.removed) this.#get(id);
      const st = i.standing;
      // Events queued before this start may move memory to or from an idle container only if it
      // has loans or idle containers lend; otherwise only this start's own answer can reach it.
      const urgent =
        i.baseline === undefined ||
        st === undefined ||
        !st.noLoans ||
        i.limitBytes !== i.initialBytes ||
        requestedBytes(i.profile, i.initialBytes) > i.limitBytes ||
        (st.lendWhileIdle && !this.#tenants.idle(i.tenant));
      const start = { kind: 'invocation-start' as const, id, ...(i.profile !== undefined ? { estimate: i.profile } : {}) };
      // When the tenant is quiet as well, this start decides no move at all: it is held back and
      // goes with the invocation-end in one round trip (or first, ahead of any other event).
      const started = !urgent && this.#tenants.quiet(i.tenant) ? this.#tenants.deferStart(i.tenant, start) : this.#tenants.event(i.tenant, start);
      // Queued right behind the start when it is not known: the pool the invocation started in.
      const pool: Promise<PoolName> = st !== undefined ? Promise.resolve(st.pool) : this.#standingOf(i).then((x) => x.pool);
      i.standing = undefined;
      if (urgent) await started;
      else started.catch((err: unknown) => this.#log(`invocation-start of ${id} (queued while it ran): ${(err as Error).message}`));
      i.maxGranted = i.limitBytes;
      const base = i.baseline ?? (await this.#baseline(i));
      i.baseline = undefined;
      const before = base.stats;
      const timeoutMs = req.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS;
      const owRun: Record<string, unknown> = { ...req };
      delete owRun['timeoutMs'];
      const t0 = performance.now();
      let reply: ActionReply;
      let timedOut = false;
      let broken = false;
      try {
        reply = await actionRequest(socket, 'POST', '/run', owRun, timeoutMs, i.http);
      } catch (err) {
        if (!(err instanceof ActionRequestError)) throw err;
        timedOut = err.failure === 'timeout';
        broken = !timedOut;
        reply = timedOut
          ? { statusCode: 502, body: { error: `The action exceeded its time limits of ${timeoutMs} milliseconds.` } }
          : { statusCode: 502, body: { error: `The action did not produce a valid response and exited unexpectedly (${err.message}).` } };
      }
      const durationMs = Math.round(performance.now() - t0);
      // What the operator's views learn of every run: an OOM kill in the journal, a log line with the
      // activation id (written once the reply is out: it is the log's, not the caller's).
      const noteFinished = (oom: boolean): void => {
        if (oom) this.journal.push({ type: 'oom-kill', tenant: i.tenant, container: id });
        const logger = this.#o.logger;
        if (logger !== undefined) {
          setImmediate(() => {
            activationLogger(logger, { activationId: req.activation_id ?? '', tenant: i.tenant, action: i.fn }).info(
              { container: id, statusCode: reply.statusCode, durationMs, timedOut, oom },
              'run finished',
            );
          });
        }
      };
      if (timedOut || broken) {
        const logs = i.log === undefined ? [] : await i.log.take(200);
        const oom = oomCount(i, base.oomKills) > base.oomKills || (broken && (await this.#o.engine.inspect(id).catch(() => undefined))?.oomKilled === true);
        noteFinished(oom);
        // As OpenWhisk's invoker does: a container whose action timed out or died is not reused.
        i.busy = false;
        released = true;
        i.gone = broken && (await this.#o.engine.inspect(id).catch(() => undefined))?.running !== true;
        this.#tenants.flush(i.tenant);
        await started.catch(() => undefined);
        await this.remove(id).catch((e: unknown) => this.#log(`removing container ${id} after its failed run: ${(e as Error).message}`));
        const zero: RunReply['ephemera']['stats'] = { fast_reads: 0, fast_writes: 0, slow_ops: 0, evictions: 0, bytes_in_memory_peak: before.bytes_in_memory_peak };
        return {
          ...reply,
          logs,
          durationMs,
          ephemera: { pool: await pool, initialBytes: i.initialBytes, grantedBytes: i.maxGranted, node: this.#o.node, stats: zero },
          ...(timedOut ? { timedOut: true as const } : {}),
          ...(oom ? { oom: true as const } : {}),
        };
      }
      // A move that lands while these are read makes them no baseline for the next run (see #finish).
      const readGen = i.moveGen;
      const oomAfter = oomCount(i, base.oomKills);
      // The counters and the run's window, opened with the baseline (its exact peaks,
      // docs/PROTOCOL.md, peaks), in one request that also opens the next run's window (reset),
      // which the container's next run keeps unless a move resizes it first (then #finish opens
      // another). The Manager must hear the end even if the daemon cannot answer now (its counters
      // then stand still; its usage falls back to counters without the peaks).
      const [logs, [statsRead, peaksRead]] = await Promise.all([
        i.log === undefined ? Promise.resolve([]) : i.log.take(LOG_WAIT_MS),
        base.peaks ? readStatsAndPeaks(i.daemon, i) : Promise.allSettled([i.daemon.stats(), Promise.reject(new Error('no window'))]),
      ]);
      if (statsRead.status === 'rejected') this.#log(`stats of ${id} after its run: ${(statsRead.reason as Error).message}`);
      if (base.peaks && peaksRead.status === 'rejected') this.#log(`peaks of ${id} after its run (its usage falls back to counters): ${(peaksRead.reason as Error).message}`);
      const afterRead = statsRead.status === 'fulfilled' ? statsRead.value : undefined;
      const peaks = peaksRead.status === 'fulfilled' ? peaksRead.value : undefined;
      const after = afterRead ?? before;
      noteFinished(oomAfter > base.oomKills);
      const cgroupPeak = i.cgroupPeak.read();
      const used = peaks !== undefined ? usageFromPeaks(peaks, after, cgroupPeak) : usageFromCounters(before, after, cgroupPeak);
      i.profile = nextEstimate(i.givenProfile, used, filePeakExact(peaks));
      const result: RunReply = {
        ...reply,
        logs,
        durationMs,
        ephemera: { pool: await pool, initialBytes: i.initialBytes, grantedBytes: i.maxGranted, node: this.#o.node, stats: runStats(before, after, used, peaks) },
        ...(oomAfter > base.oomKills ? { oom: true as const } : {}),
      };
      // The next run's "before": these counters and the window just opened, if no move comes between.
      const next: Baseline | undefined = peaks !== undefined && afterRead !== undefined ? { stats: after, oomKills: oomAfter, peaks: true } : undefined;
      // Begun once this turn is over, so that the reply is serialised and written first: begun at
      // once, its first requests (invocation-end) went out ahead of the reply on this event loop.
      i.tail = new Promise<void>((resolve) => {
        setImmediate(() => { resolve(this.#finish(i, used, next, readGen)); });
      });
      return result;
    } finally {
      if (!released) i.busy = false;
    }
  }

  /**
   * An activation's bookkeeping after its reply: invocation-end to the Manager (after its start,
   * which may still be queued, or with it when it was held back) and its moves, then the next
   * activation's baseline. Never rejects.
   */
  async #finish(i: Instance, used: Usage, next: Baseline | undefined, runGen: number): Promise<void> {
    try {
      // Queued behind its start (or sent with it, when the start was held back).
      const ended = await this.#tenants.event(i.tenant, { kind: 'invocation-end', id: i.id, used });
      const gen = i.moveGen;
      // With no move since the run's reads, its counters and the window its peaks read opened are
      // the next run's "before" as they stand: the container ran nothing of its function since.
      // The OOM count and the cgroup's peak window are taken now, as a full baseline would.
      const reuse = next !== undefined && gen === runGen;
      const fresh = reuse ? Promise.resolve(this.#carried(i, next)) : this.#baseline(i);
      // An end whose batch was empty answered the standing itself: no snapshot round trip.
      const st = ended.standing;
      const known: Standing | undefined = st === undefined ? undefined : { pool: st.pool, noLoans: !st.lends && !st.borrows, lendWhileIdle: st.lendWhileIdle };
      const [standing, base] = await Promise.all([known !== undefined ? Promise.resolve(known) : this.#standingOf(i), fresh]);
      // A move that resized the container meanwhile may have evicted files: read again next time.
      if (gen === i.moveGen && !i.removed) {
        i.baseline = base;
        i.standing = standing;
      }
    } catch (err) {
      this.#log(`bookkeeping after the run of ${i.id}: ${(err as Error).message}`);
    }
  }

  /**
   * Waits for the bookkeeping of every finished activation (of one tenant): a view taken after a
   * run's reply then shows its invocation-end and that end's moves.
   */
  async #settled(tenant?: string): Promise<void> {
    await Promise.all([...this.#instances.values()].filter((i) => tenant === undefined || i.tenant === tenant).map((i) => i.tail));
  }

  /**
   * The container's standing in its tenant's Manager (once everything queued before is done). A
   * Manager that cannot answer gives the default pool and a standing that sends the next run the
   * safe way.
   */
  #standingOf(i: Instance): Promise<Standing> {
    return this.#tenants.snapshot(i.tenant).then(
      (snap) => {
        const e = snap.containers.find((c) => c.id === i.id);
        return { pool: e?.pool ?? 'self-sufficient', noLoans: e !== undefined && e.lentTo.length === 0 && e.borrowedFrom.length === 0, lendWhileIdle: snap.lendWhileIdle };
      },
      (err: unknown) => {
        this.#log(`snapshot of tenant ${i.tenant} for container ${i.id}: ${(err as Error).message}`);
        return { pool: 'self-sufficient' as const, noLoans: false, lendWhileIdle: true };
      },
    );
  }

  /**
   * Opens the next activation's peak windows (the daemon's `peaks` and the cgroup's) and reads the
   * daemon's counters and the OOM count, side by side. Taken after the previous activation's
   * bookkeeping, or at the start when a move came between: the container runs nothing of its
   * function in between (one activation at a time), so the window covers exactly the run, and the
   * reset stays off the critical path.
   */
  /** The baseline carried from the run's own reads: the OOM count and the cgroup window taken now. */
  #carried(i: Instance, next: Baseline): Baseline {
    i.cgroupPeak.open();
    return { ...next, oomKills: oomCount(i, next.oomKills) };
  }

  async #baseline(i: Instance): Promise<Baseline> {
    i.cgroupPeak.open();
    const oomKills = oomCount(i, 0);
    const [stats, peaks] = await readStatsAndPeaks(i.daemon, i);
    if (stats.status === 'rejected') throw stats.reason;
    if (peaks.status === 'rejected') this.#log(`the daemon of ${i.id} opened no peaks window (its runs' usage comes from counters): ${(peaks.reason as Error).message}`);
    return { stats: stats.value, oomKills, peaks: peaks.status === 'fulfilled' };
  }

  /** Stops and removes a container the agent created, after its lent memory came back. */
  async remove(id: string): Promise<void> {
    const i = this.#get(id);
    if (i.origin !== 'created') {
      throw new EphemeraError('EPH_NODE_CONFLICT', `container ${id} was registered, not created, by this agent; forget it instead (POST /v1/containers/${id}/forget)`, { detail: { id } });
    }
    await this.#drop(i);
  }

  /**
   * Takes over a running container the agent did not create: its cgroup limits and its daemon
   * become the agent's to manage.
   */
  async registerExternal(id: string, req: RegisterRequest): Promise<ContainerView> {
    const state = await this.#o.engine.inspect(id);
    if (this.#instances.has(state.id)) {
      throw new EphemeraError('EPH_NODE_CONFLICT', `container ${id} is already registered on node ${this.#o.node}`, { detail: { id } });
    }
    if (!state.running) {
      throw new EphemeraError('EPH_NODE_CONFLICT', `container ${id} is not running; only a running container with an ephemerad can be registered`, { detail: { id } });
    }
    const info: ContainerInfo = {
      id: state.id,
      tenant: req.tenant,
      fn: req.function,
      ...(req.workflow !== undefined ? { workflow: req.workflow } : {}),
      initialQuota: req.memoryBytes,
      ...(req.profile !== undefined ? { profile: req.profile } : {}),
    };
    const instance = await this.#attach(state.id, id, info, 'registered', undefined, undefined, req.controlSocket);
    await writeFile(join(this.#o.stateDir, 'registered', `${state.id}.json`), JSON.stringify({ info, controlSocket: req.controlSocket, name: id }));
    await this.#register(instance);
    return this.#view(instance, undefined);
  }

  /** Stops managing a registered container (its lent memory comes back first); it keeps running. */
  async forget(id: string): Promise<void> {
    const i = this.#get(id);
    if (i.origin !== 'registered') {
      throw new EphemeraError('EPH_NODE_CONFLICT', `container ${id} was created by this agent; remove it instead (DELETE /v1/containers/${id})`, { detail: { id } });
    }
    await this.#drop(i);
  }

  /** A raw invocation-start event (benchmarks drive the Manager with these). */
  async invocationStart(id: string): Promise<EventReply> {
    const i = this.#get(id);
    return report(await this.#tenants.event(i.tenant, { kind: 'invocation-start', id, ...(i.profile !== undefined ? { estimate: i.profile } : {}) }));
  }

  /** A raw invocation-end event; without `used`, what the daemon and the cgroup show now. */
  async invocationEnd(id: string, used?: Usage): Promise<EventReply> {
    const i = this.#get(id);
    let u = used;
    if (u === undefined) {
      // The window since the last one this read (or the last run's baseline); the next opens now.
      const [statsRead, peaksRead] = await readStatsAndPeaks(i.daemon, i);
      if (statsRead.status === 'rejected') throw statsRead.reason;
      const stats = statsRead.value;
      const peaks = peaksRead.status === 'fulfilled' ? peaksRead.value : undefined;
      const cgroupPeak = i.cgroupPeak.read();
      i.cgroupPeak.open();
      u = peaks !== undefined ? usageFromPeaks(peaks, stats, cgroupPeak) : usageFromCounters(stats, stats, cgroupPeak);
    }
    return report(await this.#tenants.event(i.tenant, { kind: 'invocation-end', id, used: u }));
  }

  // --- recovery and shutdown ---------------------------------------------------------------------

  /**
   * Rebuilds the agent's state after a restart: every container labelled with this node comes
   * back from its labels and live cgroup limit, each tenant's Manager rebuilds its model and its
   * restoring moves are carried out (every lent byte returned), and every daemon is told the
   * limit in force, so its own limit equals its cgroup's again. Containers that stopped, or whose
   * runtime or daemon no longer answers, are removed.
   * @returns the restoring moves carried out
   */
  async recover(): Promise<BatchResult> {
    const found = await this.#o.engine.list([`${LABEL.node}=${this.#o.node}`]);
    for (const c of found) {
      const parsed = parseLabels(c.id, c.labels);
      if (parsed === null) continue;
      const dir = join(this.#o.stateDir, 'c', parsed.dir);
      try {
        if (!c.running) throw new Error('it is not running');
        // Output written before this agent took over was the previous agent's to read.
        await this.#attach(c.id, c.name, parsed.info, 'created', dir, () => this.#output(c.id, dir, true));
      } catch (err) {
        this.#log(`recovery: removing container ${c.name}: ${(err as Error).message}`);
        await this.#o.engine.remove(c.id).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      }
    }
    for (const file of await readdir(join(this.#o.stateDir, 'registered'))) {
      const path = join(this.#o.stateDir, 'registered', file);
      try {
        const saved = JSON.parse(await readFile(path, 'utf8')) as { info: ContainerInfo; controlSocket: string; name: string };
        await this.#attach(saved.info.id, saved.name, saved.info, 'registered', undefined, undefined, saved.controlSocket);
      } catch (err) {
        this.#log(`recovery: forgetting registered container ${file}: ${(err as Error).message}`);
        await rm(path, { force: true });
      }
    }
    const done: BatchResult['done'][number][] = [];
    const refused: BatchResult['refused'][number][] = [];
    for (const tenant of new Set([...this.#instances.values()].map((i) => i.tenant))) {
      const r = await this.#tenants.recover(tenant, await this.#liveOf(tenant));
      done.push(...r.done);
      refused.push(...r.refused);
    }
    for (const i of this.#instances.values()) {
      const limit = (await i.limiter.getLimit()) ?? i.initialBytes;
      i.limitBytes = limit;
      await i.daemon.grow(limit);
      this.#sync.track(i.id, (await this.#o.engine.inspect(i.id)).memory);
      this.#sync.release(i.id, limit);
    }
    return { done, refused };
  }

  /** Waits until Docker's recorded limits equal the cgroup limits. */
  settleRecords(): Promise<void> {
    return this.#sync.settle();
  }

  /**
   * Shuts the agent down: with `removeContainers`, every container it created is removed (lent
   * memory returned first); without, they keep running for the next agent to recover.
   */
  async close(options: { removeContainers: boolean }): Promise<void> {
    if (options.removeContainers) {
      for (const i of [...this.#instances.values()]) {
        await (i.origin === 'created' ? this.#drop(i) : Promise.resolve()).catch((e: unknown) => this.#log(`removing ${i.id}: ${(e as Error).message}`));
      }
    }
    await this.#sync.settle();
    for (const i of this.#instances.values()) {
      await i.tail;
      // Running on for the next agent: nobody watches its stalls until then, so no guard either
      // (the next agent sets it again when it takes the container over).
      await i.guard?.stop({ disarm: true }).catch((e: unknown) => this.#log(`lifting the OOM guard of ${i.id}: ${(e as Error).message}`));
      i.stopLogs?.();
      i.daemon.close();
      i.cgroupPeak.close();
      i.oom.close();
      i.http?.destroy();
    }
    const empty = this.#instances.size === 0 || options.removeContainers;
    this.#instances.clear();
    await this.#tenants.close();
    await this.#sentinel?.close();
    this.#sentinel = undefined;
    this.#lease?.close();
    this.#lease = undefined;
    if (empty) await removeParentCgroup(this.#o.parentCgroup);
  }

  // --- internals ---------------------------------------------------------------------------------

  #get(id: string): Instance {
    const i = this.#instances.get(id) ?? [...this.#instances.values()].find((x) => x.name === id || x.id.startsWith(id));
    if (i === undefined || i.removed) {
      throw new EphemeraError('EPH_NODE_UNKNOWN_CONTAINER', `node ${this.#o.node} has no container ${JSON.stringify(id)}; list them with GET /v1/containers`, { detail: { id } });
    }
    return i;
  }

  #runtimeSocket(i: Instance): string {
    if (i.dir === undefined) {
      throw new EphemeraError('EPH_NODE_CONFLICT', `container ${i.id} was registered, not created, by this agent: it has no action runtime the agent can reach; invoke it yourself and send invocations/start and /end`, { detail: { id: i.id } });
    }
    return join(i.dir, 'action.sock');
  }

  /** Connects to a started container: its runtime (created ones), cgroup and daemon. */
  async #attach(
    id: string,
    name: string,
    info: ContainerInfo,
    origin: 'created' | 'registered',
    dir: string | undefined,
    output: (() => Promise<OutputSource>) | undefined,
    controlSocket?: string,
  ): Promise<Instance> {
    let guard: ContainerGuard | undefined;
    let out: OutputSource | undefined;
    try {
      if (dir !== undefined) {
        await waitForRuntime(join(dir, 'action.sock'), this.#o.startTimeoutMs ?? 30_000, async () => (await this.#o.engine.inspect(id).catch(() => undefined))?.running === true);
      }
      out = await output?.();
      const state = await this.#o.engine.inspect(id);
      const loc = await findMemoryCgroup({ pid: state.pid });
      // The daemon finds the lease in its run directory (a container taken over gets it again).
      if (dir !== undefined && this.#lease !== undefined) await this.#lease.linkInto(dir);
      guard = this.#guard(loc.dir, loc.version);
      const held = guard;
      const raw: MemoryLimiter = loc.version === 1 ? new CgroupV1Limiter(loc.dir) : new CgroupV2Limiter(loc.dir);
      const limiter = held?.limiter(raw) ?? raw;
      const daemon = await DaemonClient.connect(controlSocket ?? join(dir ?? '', 'control.sock'), { timeoutMs: 5000, requestTimeoutMs: 30_000 });
      const limitBytes = (await limiter.getLimit().catch(() => null)) ?? info.initialQuota;
      const instance: Instance = {
        id,
        name,
        tenant: info.tenant,
        fn: info.fn,
        workflow: info.workflow,
        initialBytes: info.initialQuota,
        profile: info.profile,
        givenProfile: info.profile,
        origin,
        limiter,
        guard: held,
        daemon,
        statsPeaks: true,
        cgroupPeak: new CgroupPeakWindow(loc.version, loc.dir),
        oom: new OomKillCounter(loc.version, loc.dir),
        dir,
        log: out?.log,
        stopLogs: out?.stop,
        busy: false,
        limitBytes,
        moveGen: 0,
        baseline: undefined,
        standing: undefined,
        tail: Promise.resolve(),
        http: dir === undefined ? undefined : runtimeConnection(),
        maxGranted: info.initialQuota,
        shortfallPending: false,
        removed: false,
        gone: false,
      };
      await daemon.subscribe(held === undefined ? ['shortfall'] : ['shortfall', 'guard'], (event) => {
        if (event.event === 'guard') void held?.want(event['want'] === true);
        else if (event.event === 'shortfall') this.#onShortfall(instance, typeof event['bytes'] === 'number' ? event['bytes'] : 0);
      });
      this.#instances.set(id, instance);
      return instance;
    } catch (err) {
      out?.stop();
      await guard?.stop({ disarm: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A created container's output: the files its runtime writes in the run directory
   * (`--output-files`), or, for a runtime that writes none (started by an older agent), the
   * engine's log stream.
   */
  async #output(id: string, dir: string, fromEnd: boolean): Promise<OutputSource> {
    const files = OutputFiles.open(dir, { fromEnd });
    if (files !== undefined) return { log: files, stop: () => { files.close(); } };
    const log = new ActivationLog();
    const stop = await this.#o.engine.followLogs(id, (stream, text) => { log.push(stream, text); });
    return { log, stop };
  }

  /**
   * Holds a container's OOM guard from the host and starts its watchdog; the guard is set and
   * lifted as the container's daemon asks (its `guard` events, subscribed in #attach).
   */
  #guard(dir: string, version: 1 | 2): ContainerGuard | undefined {
    // Without a sentinel nobody would lift the guard if this agent died: no guard then.
    if (this.#o.oomGuard === false || this.#sentinel === undefined) return undefined;
    const guard = new ContainerGuard(this.#sentinel.guarded(cgroupGuardArm(dir, version), dir), cgroupGuardKnobs(dir, version), { onEvent: (e) => this.#log(e.message) });
    guard.start();
    return guard;
  }

  async #register(i: Instance): Promise<void> {
    this.#sync.track(i.id, i.initialBytes);
    await this.#tenants.event(i.tenant, { kind: 'register', container: infoOf(i) });
  }

  /** The tenant's containers with the limits in force: what a Manager is rebuilt from. */
  async #liveOf(tenant: string): Promise<LiveContainer[]> {
    const live: LiveContainer[] = [];
    for (const i of this.#instances.values()) {
      if (i.tenant === tenant && !i.removed) live.push({ info: infoOf(i), limitBytes: (await i.limiter.getLimit()) ?? i.initialBytes });
    }
    return live;
  }

  async #recoveryView(tenant: string): Promise<RecoveryView> {
    const running = [...this.#instances.values()].filter((i) => i.tenant === tenant && !i.removed && i.busy).map((i) => i.id);
    return { live: await this.#liveOf(tenant), running };
  }

  /** The Manager forgets the container (its loans come back), then the agent lets go of it. */
  async #drop(i: Instance): Promise<void> {
    if (i.removed) return;
    i.removed = true;
    // Its last activation's bookkeeping (invocation-end) goes to the Manager before the forget.
    await i.tail;
    // A stopped container's side of the returning moves counts as done (the Manager's contract).
    if (i.origin === 'created' && (await this.#o.engine.inspect(i.id).catch(() => undefined))?.running !== true) i.gone = true;
    try {
      await this.#tenants.event(i.tenant, { kind: 'forget', id: i.id });
    } catch (err) {
      if (!isEphemeraError(err)) throw err;
      this.#log(`forgetting ${i.id} in the Manager of ${i.tenant}: ${err.message}`);
    }
    this.#instances.delete(i.id);
    await this.#sync.untrack(i.id);
    // A registered container runs on unwatched: its guard is lifted, so no stall can last.
    await i.guard?.stop({ disarm: i.origin === 'registered' }).catch(() => undefined);
    await this.#sentinel?.forget(i.limiter.target).catch(() => undefined);
    i.stopLogs?.();
    i.daemon.close();
    i.cgroupPeak.close();
    i.oom.close();
    i.http?.destroy();
    if (i.origin === 'created') {
      await this.#o.engine.remove(i.id);
      if (i.dir !== undefined) await rm(i.dir, { recursive: true, force: true });
    } else {
      await rm(join(this.#o.stateDir, 'registered', `${i.id}.json`), { force: true });
    }
    if (![...this.#instances.values()].some((x) => x.tenant === i.tenant)) await this.#tenants.retire(i.tenant);
  }

  /** The safeguard's trigger: forwarded to the Manager at once, one at a time per container. */
  #onShortfall(i: Instance, bytes: number): void {
    if (i.shortfallPending || i.removed) return;
    i.shortfallPending = true;
    // Journaled as the Manager hears it: one per container until the Manager has answered.
    this.journal.push({ type: 'shortfall', tenant: i.tenant, container: i.id, bytes: Math.max(1, bytes) });
    this.#tenants
      .event(i.tenant, { kind: 'shortfall', id: i.id, neededBytes: Math.max(1, bytes) })
      .catch((err: unknown) => this.#log(`shortfall of ${i.id}: ${(err as Error).message}`))
      .finally(() => {
        i.shortfallPending = false;
      });
  }

  #moveContext(tenant: string): MoveContext {
    return {
      party: (id): MoveParty | undefined => {
        const i = this.#instances.get(id);
        return i === undefined ? undefined : { id: i.id, tenant: i.tenant, limiter: i.limiter, daemon: i.daemon, gone: i.gone };
      },
      hold: (id) => this.#sync.hold(id),
      release: (id, bytes) => {
        this.#sync.release(id, bytes);
        const i = this.#instances.get(id);
        if (i === undefined) return;
        i.limitBytes = bytes;
        i.moveGen++;
        i.baseline = undefined;
        i.standing = undefined;
        if (i.busy) i.maxGranted = Math.max(i.maxGranted, bytes);
      },
      onStep: (step) => this.#o.onStep?.(tenant, step),
    };
  }
}

/**
 * The engine creates the parent cgroup in every hierarchy and never removes it; once the agent's
 * containers are gone, the empty directories go too (a busy one stays: rmdir refuses it).
 */
async function removeParentCgroup(parent: string): Promise<void> {
  const root = '/sys/fs/cgroup';
  const hierarchies = await readdir(root).catch(() => [] as string[]);
  for (const dir of [join(root, parent), ...hierarchies.map((h) => join(root, h, parent))]) await rmdir(dir).catch(() => undefined);
}

/** The cgroup's OOM-kill count now, or `fallback` when it cannot be read. */
function oomCount(i: Instance, fallback: number): number {
  try {
    return i.oom.read();
  } catch {
    return fallback;
  }
}

function infoOf(i: Instance): ContainerInfo {
  return {
    id: i.id,
    tenant: i.tenant,
    fn: i.fn,
    ...(i.workflow !== undefined ? { workflow: i.workflow } : {}),
    initialQuota: i.initialBytes,
    ...(i.profile !== undefined ? { profile: i.profile } : {}),
  };
}

function report(r: BatchResult): EventReply {
  const moves: MoveReport[] = r.done.map((m) => ({ from: m.from, to: m.to, bytes: m.bytes, reason: m.reason, durationUs: m.durationUs }));
  return { moves, refused: r.refused };
}
