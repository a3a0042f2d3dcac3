/**
 * The controller process: opens the store, settles activations a previous controller left running,
 * makes sure the tenants exist and their wskprops files are current, and serves the API.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

import { EphemeraError } from '../core/errors.js';
import { extenderRoutes } from '../scheduler/extender-routes.js';
import type { NodeStateSource } from '../scheduler/extender.js';
import type { NodeAgentApi } from '../dashboard/node-source.js';
import type { NodeAgent, NodeSelector } from './agent.js';
import { buildController } from './api.js';
import type { JournalReader } from './event-feed.js';
import { Invoker } from './invoker.js';
import { Profiler } from './profiler.js';
import { ADMIN_TENANT, Store, type Retention } from './store.js';
import { writeWskprops } from './tenants.js';
import { ControllerViews } from './views.js';

/** Where a running controller leaves its address in its state directory. */
export function apihostFile(stateDir: string): string {
  return join(stateDir, 'apihost');
}

/** The address of the controller that last ran on `stateDir`, or undefined. */
export function lastApihost(stateDir: string): string | undefined {
  try {
    const text = readFileSync(apihostFile(stateDir), 'utf8').trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

export interface ControllerConfig {
  readonly stateDir: string;
  /** Where the wskprops files are written. */
  readonly home: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly tenants: readonly string[];
  readonly nodes: readonly NodeAgent[];
  readonly selector: NodeSelector;
  readonly log: Logger;
  readonly keepAliveMs: number;
  /** The CPU cap of every action container, in CPUs; absent: none. */
  readonly containerCpus?: number;
  readonly blockingWaitMs: number;
  /** Node state for the kube-scheduler extender (`POST /extender/filter|prioritize`); none: not served. */
  readonly extender?: NodeStateSource;
  /**
   * The node agents as the operator's views read them (their own API: state and journal); with
   * them the controller serves `/metrics` and `/dashboard` (views.ts).
   */
  readonly views?: readonly { readonly node: string; readonly client: NodeAgentApi & JournalReader }[];
  /** Which finished activation records are kept; absent: {@link DEFAULT_RETENTION}. */
  readonly retention?: Retention;
  /** How often records beyond the retention are pruned, in ms. @default 60000 */
  readonly pruneEveryMs?: number;
}

/** OpenWhisk keeps activations until an operator purges them; here the newest 10,000 of each namespace, for 7 days. */
export const DEFAULT_RETENTION: Retention = { keepPerNamespace: 10_000, maxAgeMs: 7 * 24 * 3600 * 1000 };

/** Records deleted per transaction, and transactions per pruning pass (the rest waits for the next). */
const PRUNE_BATCH = 1000;
const PRUNE_BATCHES_PER_PASS = 100;

/**
 * Prunes the store on a timer, off the request path: each pass deletes in batches of
 * {@link PRUNE_BATCH}, yielding to the event loop between batches, so a request waits behind one
 * batch at most. Returns the stop function (it waits for a pass under way).
 */
function startPruning(store: Store, retention: Retention, everyMs: number, log: Logger): () => Promise<void> {
  let stopped = false;
  let pass: Promise<void> = Promise.resolve();
  const run = async (): Promise<void> => {
    let deleted = 0;
    for (let i = 0; i < PRUNE_BATCHES_PER_PASS && !stopped; i++) {
      let n: number;
      try {
        n = store.prune(retention, Date.now(), PRUNE_BATCH);
      } catch (err) {
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'pruning activation records failed; the next pass tries again');
        return;
      }
      deleted += n;
      if (n < PRUNE_BATCH) break;
      await new Promise((r) => setImmediate(r));
    }
    if (deleted > 0) log.info({ deleted, retention }, 'activation records pruned');
  };
  const tick = (): void => { pass = pass.then(run); };
  const timer = setInterval(tick, everyMs);
  timer.unref();
  tick();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await pass;
  };
}

export interface RunningController {
  readonly url: string;
  readonly port: number;
  readonly store: Store;
  readonly invoker: Invoker;
  readonly app: FastifyInstance;
  /** wskprops path by tenant name (including `admin`). */
  readonly props: ReadonlyMap<string, string>;
  /** Stops serving, removes every container, closes the store. */
  close(): Promise<void>;
}

export async function startController(cfg: ControllerConfig): Promise<RunningController> {
  const store = Store.open(cfg.stateDir, (err, activationIds) => {
    cfg.log.error({ activationIds, err: err instanceof Error ? err.message : String(err) }, 'finished activation records could not be stored; they stay running and become whisk internal errors at the next start');
  });
  const lost = store.failInFlight(Date.now());
  if (lost.length > 0) cfg.log.warn({ activationIds: lost }, 'activations left running by a previous controller were recorded as whisk internal errors');
  const views = cfg.views === undefined ? undefined : new ControllerViews(cfg.views, cfg.log);
  const invoker = new Invoker({
    nodes: cfg.nodes,
    selector: views?.observe(cfg.selector) ?? cfg.selector,
    ...(views === undefined ? {} : { observer: views.observer }),
    ledger: store,
    actions: store,
    profiles: store,
    log: cfg.log,
    keepAliveMs: cfg.keepAliveMs,
    ...(cfg.containerCpus === undefined ? {} : { containerCpus: cfg.containerCpus }),
  });
  const profiler = new Profiler({ nodes: cfg.nodes, store, log: cfg.log, ...(cfg.containerCpus === undefined ? {} : { containerCpus: cfg.containerCpus }) });
  const app = buildController({ store, invoker, log: cfg.log, blockingWaitMs: cfg.blockingWaitMs, onActionSaved: (doc) => { profiler.saved(doc); } });
  if (cfg.extender !== undefined) await app.register(extenderRoutes, { source: cfg.extender });
  try {
    await views?.start(app, store, { settled: lost });
    await app.listen({ host: cfg.host, port: cfg.port });
  } catch (err) {
    await views?.stop();
    store.close();
    throw new EphemeraError('EPH_PLATFORM_START', `the controller could not listen on ${cfg.host}:${cfg.port}: ${err instanceof Error ? err.message : String(err)}; stop what uses the port or pass --port`, { cause: err });
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.port;
  const url = `http://${cfg.host}:${port}`;
  // `ephemera tenant add` writes this address into the wskprops files it makes.
  writeFileSync(apihostFile(cfg.stateDir), `${url}\n`);
  const props = new Map<string, string>();
  for (const name of cfg.tenants) props.set(name, writeWskprops(cfg.home, store.ensureTenant(name), url));
  props.set(ADMIN_TENANT, writeWskprops(cfg.home, store.ensureTenant(ADMIN_TENANT, true), url));
  // Tenants added earlier (`ephemera tenant add`) get the current APIHOST too.
  for (const t of store.tenants()) if (!props.has(t.name)) props.set(t.name, writeWskprops(cfg.home, t, url));
  cfg.log.info({ url, tenants: [...props.keys()] }, 'controller listening');
  const stopPruning = startPruning(store, cfg.retention ?? DEFAULT_RETENTION, cfg.pruneEveryMs ?? 60_000, cfg.log);
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    store,
    invoker,
    app,
    props,
    close: () => {
      closing ??= (async () => {
        await Promise.all([app.close(), invoker.close(), profiler.close(), stopPruning()]);
        await views?.stop();
        store.close();
      })();
      return closing;
    },
  };
}
