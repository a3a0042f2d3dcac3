/**
 * Fans the cluster out to the live dashboards: one poller and one event subscription, shared by
 * every connected page, each page receiving only what its viewer may see.
 *
 * A page gets `view` (the whole picture, whenever it changed), `activations` (the recent list,
 * once), `activation` and `move` (as they happen) and `problem` (the source failed; the last
 * view stays). Nothing runs while no page is connected.
 */
import { maySee, type Principal } from './auth.js';
import type { ClusterEvent, ClusterSnapshot, ClusterSource, Unsubscribe } from './source.js';
import { dashboardView } from './view.js';

/** One connected page. `send` must not throw. */
export interface ViewClient {
  readonly viewer: Principal;
  send(event: string, data: unknown): void;
}

export interface HubOptions {
  /** How often the state is re-read while a page is connected. @default 2000 */
  readonly refreshMs?: number;
  /** How many recent activations a page starts with. @default 1000 */
  readonly activationLimit?: number;
  /** After a move, shortfall or OOM kill, re-read the state this soon. @default 100 */
  readonly eventRefreshMs?: number;
  readonly onError?: (err: unknown) => void;
}

interface Joined {
  readonly client: ViewClient;
  lastView: string | undefined;
}

export class DashboardHub {
  readonly #source: ClusterSource;
  readonly #refreshMs: number;
  readonly #activationLimit: number;
  readonly #eventRefreshMs: number;
  readonly #onError: (err: unknown) => void;
  readonly #clients = new Set<Joined>();
  #unsubscribe: Unsubscribe | undefined;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(source: ClusterSource, options: HubOptions = {}) {
    this.#source = source;
    this.#refreshMs = options.refreshMs ?? 2000;
    this.#activationLimit = options.activationLimit ?? 1000;
    this.#eventRefreshMs = options.eventRefreshMs ?? 100;
    this.#onError = options.onError ?? ((): void => undefined);
  }

  get clients(): number {
    return this.#clients.size;
  }

  /**
   * Starts sending to `client`: the current view and the recent activations first.
   * @returns the function that stops it
   * @throws what the source throws for the first view (the caller answers 503)
   */
  async join(client: ViewClient): Promise<() => void> {
    const tenant = client.viewer.role === 'tenant' ? client.viewer.tenant : undefined;
    const [snapshot, activations] = await Promise.all([this.#source.snapshot(), this.#source.recentActivations(this.#activationLimit, tenant)]);
    const joined: Joined = { client, lastView: undefined };
    this.#sendView(joined, snapshot);
    client.send('activations', activations.filter((a) => maySee(client.viewer, a.tenant)));
    this.#clients.add(joined);
    if (this.#clients.size === 1) this.#start();
    return () => {
      if (this.#clients.delete(joined) && this.#clients.size === 0) this.#stop();
    };
  }

  /** Disconnects nothing, but stops polling and listening (the pages' streams are closed by their owner). */
  close(): void {
    this.#clients.clear();
    this.#stop();
  }

  #start(): void {
    this.#unsubscribe = this.#source.subscribe((event) => {
      this.#onEvent(event);
    });
    this.#timer = setInterval(() => void this.#refresh(), this.#refreshMs);
    this.#timer.unref();
  }

  #stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#timer = undefined;
    this.#soon = undefined;
  }

  #onEvent(event: ClusterEvent): void {
    if (event.type === 'activation') {
      for (const j of this.#clients) if (maySee(j.client.viewer, event.activation.tenant)) j.client.send('activation', event.activation);
      return;
    }
    if (event.type === 'schedule') return;
    if (event.type === 'move') {
      for (const j of this.#clients) if (maySee(j.client.viewer, event.tenant)) j.client.send('move', event);
    }
    // The state changed: show it soon, once for a burst of events.
    this.#soon ??= setTimeout(() => {
      this.#soon = undefined;
      void this.#refresh();
    }, this.#eventRefreshMs);
  }

  #refresh(): Promise<void> {
    this.#refreshing ??= this.#source
      .snapshot()
      .then(
        (snapshot) => {
          for (const j of this.#clients) this.#sendView(j, snapshot);
        },
        (err: unknown) => {
          this.#onError(err);
          const message = err instanceof Error ? err.message : String(err);
          for (const j of this.#clients) j.client.send('problem', { code: 'EPH_VIEW_SOURCE', error: `reading the cluster state failed: ${message}` });
        },
      )
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  #sendView(joined: Joined, snapshot: ClusterSnapshot): void {
    const view = dashboardView(snapshot, joined.client.viewer);
    // Unchanged but for the time it was taken: nothing to redraw.
    const key = JSON.stringify({ ...view, at: 0 });
    if (key === joined.lastView) return;
    joined.lastView = key;
    joined.client.send('view', view);
  }
}
