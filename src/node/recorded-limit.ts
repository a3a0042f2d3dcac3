/**
 * Keeps the engine's recorded memory limit (what `docker inspect` shows and what a restart would
 * apply) equal to the live cgroup limit, off the critical path of a move.
 *
 * The agent writes limits to the cgroup file (about 15 µs); `docker update` takes about 12 ms and
 * writes the cgroup file itself with the value it carries. So an update must never be in flight
 * while a move changes the same container's limit, or it could land after the move and write a
 * stale value back. The rules, per container:
 * - a move first {@link RecordedLimitSync.hold}s the container: that waits for an update in flight
 *   and stops a pending one from starting;
 * - when the move is done it {@link RecordedLimitSync.release}s it with the limit now in force;
 * - once no move has held the container for `quietMs`, one update carries the latest value (none
 *   when the engine already records it).
 * Updates of one container are therefore serialized, and each carries the value in force for its
 * whole flight.
 */

/** Sets the engine's recorded limit of a container (the DockerEngine's update). */
export type RecordLimit = (id: string, bytes: number) => Promise<void>;

interface Entry {
  /** The limit in force now (last released). */
  wanted: number;
  /** What the engine records, as far as we know. */
  recorded: number;
  holds: number;
  timer: NodeJS.Timeout | undefined;
  inflight: Promise<void> | undefined;
  /** The last update failed; the next release tries again. */
  failed: boolean;
}

export class RecordedLimitSync {
  readonly #record: RecordLimit;
  readonly #quietMs: number;
  readonly #onError: (id: string, err: unknown) => void;
  readonly #entries = new Map<string, Entry>();

  /**
   * @param record the engine call
   * @param quietMs how long a container must see no move before its record is updated @default 50
   * @param onError told when an update fails (the next release tries again)
   */
  constructor(record: RecordLimit, options: { quietMs?: number; onError?: (id: string, err: unknown) => void } = {}) {
    this.#record = record;
    this.#quietMs = options.quietMs ?? 50;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Starts tracking a container whose engine record and cgroup both hold `bytes`. */
  track(id: string, bytes: number): void {
    this.#entries.set(id, { wanted: bytes, recorded: bytes, holds: 0, timer: undefined, inflight: undefined, failed: false });
  }

  /** Stops tracking; waits for an update in flight so the container can be removed safely. */
  async untrack(id: string): Promise<void> {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    clearTimeout(e.timer);
    this.#entries.delete(id);
    await e.inflight;
  }

  /** Called before a move writes the container's cgroup limit. */
  async hold(id: string): Promise<void> {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    e.holds++;
    clearTimeout(e.timer);
    e.timer = undefined;
    // Several moves may wait here for one update; none writes before it has landed.
    while (e.inflight !== undefined) await e.inflight;
  }

  /** Called after the move, with the limit now in force in the cgroup. */
  release(id: string, bytes: number): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    e.holds = Math.max(0, e.holds - 1);
    e.wanted = bytes;
    e.failed = false;
    this.#schedule(id, e);
  }

  /** What the engine records for the container, as far as this sync knows. */
  recorded(id: string): number | undefined {
    return this.#entries.get(id)?.recorded;
  }

  /** Resolves once every container's record equals its limit (or its update failed). */
  async settle(): Promise<void> {
    for (;;) {
      const busy = [...this.#entries.entries()].filter(([, e]) => e.holds === 0 && (e.inflight !== undefined || (e.wanted !== e.recorded && !e.failed)));
      if (busy.length === 0) return;
      for (const [id, e] of busy) {
        if (e.inflight === undefined) {
          clearTimeout(e.timer);
          e.timer = undefined;
          this.#start(id, e);
        }
      }
      await Promise.all(busy.map(([, e]) => e.inflight ?? Promise.resolve()));
      if (busy.every(([id, e]) => !this.#entries.has(id) || e.wanted === e.recorded || e.holds > 0 || e.failed)) return;
    }
  }

  #schedule(id: string, e: Entry): void {
    if (e.holds > 0 || e.inflight !== undefined || e.wanted === e.recorded) return;
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (e.holds === 0 && e.inflight === undefined && this.#entries.get(id) === e) this.#start(id, e);
    }, this.#quietMs);
    e.timer.unref();
  }

  #start(id: string, e: Entry): void {
    const value = e.wanted;
    e.inflight = this.#record(id, value).then(
      () => {
        e.recorded = value;
      },
      (err: unknown) => {
        e.failed = true;
        this.#onError(id, err);
      },
    );
    void e.inflight.finally(() => {
      e.inflight = undefined;
      // A move released in the meantime (it waited in hold) may have changed the value again.
      if (this.#entries.get(id) === e && e.wanted !== e.recorded && !e.failed) this.#schedule(id, e);
    });
  }
}
