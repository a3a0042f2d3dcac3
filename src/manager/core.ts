/**
 * The Tenant Manager's pure core (§3.3): pools, priority, lifecycle and safeguard as a state machine
 * over one tenant's containers on one node. No I/O; the caller passes `now`.
 *
 * Every event runs the same two phases over the pool (see `rebalance` for when they may look at less):
 *  1. give back: recipients return what they no longer need, then lenders take back what they need
 *     for themselves (or everything, when they stopped being donors);
 *  2. lend: running recipients that still miss memory get it from eligible donors, neediest last
 *     (the paper: "those requiring less memory are prioritized"), each from the donor with the most
 *     spare memory first.
 * Phase 1's moves come before phase 2's in the returned batch: a container receives before it gives,
 * so a donor's limit never drops below its floor while a batch is carried out move by move.
 */
import { EphemeraError } from '../core/errors.js';
import type {
  Bytes,
  ContainerInfo,
  ContainerStanding,
  LiveContainer,
  Manager,
  ManagerConfig,
  ManagerEvent,
  ManagerSnapshot,
  Move,
  Partner,
  PoolEntry,
  PoolName,
  SharingScope,
  Transfer,
  Usage,
} from './types.js';

const SCOPES: readonly SharingScope[] = ['none', 'function', 'workflow', 'tenant'];
/** The answer of every event that moves nothing (most of them): one shared, frozen empty batch. */
const NO_MOVES: readonly Move[] = Object.freeze([]);

/** One container in the model. Mutable on purpose: one object per container for its whole life. */
interface Slot {
  readonly info: ContainerInfo;
  readonly id: string;
  readonly quota: Bytes;
  own: Bytes;
  files: Bytes;
  profiled: boolean;
  /** The limit it wants now: T_mem (or its quota while unprofiled), raised by a shortfall. */
  wanted: Bytes;
  limit: Bytes;
  pool: PoolName;
  floor: Bytes;
  running: boolean;
  runningSince: number | null;
  reclaimable: boolean;
  /** Removed by a `forget` being processed: everything it lent or borrowed goes back. */
  leaving: boolean;
  readonly lent: Map<Slot, Bytes>;
  readonly borrowed: Map<Slot, Bytes>;
  lentTotal: Bytes;
  borrowedTotal: Bytes;
}

/** The pool of §3.3.2 for a container whose T_mem and T_lim are known. */
export function classify(tMem: Bytes, tLim: Bytes, harvestThreshold: Bytes): PoolName {
  if (tMem > tLim) return 'allocation';
  if (tMem < tLim - harvestThreshold) return 'harvest';
  return 'self-sufficient';
}

/** A donor's floor: its T_mem plus the margin, never below the engine's minimum, never above its quota. */
export function donorFloor(tMem: Bytes, tLim: Bytes, margin: Bytes, engineMinimum: Bytes): Bytes {
  return Math.min(tLim, Math.max(tMem + margin, engineMinimum));
}

/** Whether the sharing scope lets `a` and `b` lend to each other (Fig. 15). */
export function mayShare(scope: SharingScope, a: ContainerInfo, b: ContainerInfo): boolean {
  switch (scope) {
    case 'none':
      return false;
    case 'function':
      return a.fn === b.fn;
    case 'workflow':
      return a.workflow !== undefined && a.workflow === b.workflow;
    case 'tenant':
      return true;
  }
}

function isByteCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function validateConfig(config: ManagerConfig): void {
  const bad = (what: string, value: unknown, fix: string): EphemeraError =>
    new EphemeraError('EPH_MANAGER_CONFIG', `${what}: got ${JSON.stringify(value)}; ${fix}`, { detail: { [what]: value } });
  if (typeof config.tenant !== 'string' || config.tenant.length === 0) {
    throw bad('tenant', config.tenant, 'give the tenant name the Manager serves');
  }
  if (!SCOPES.includes(config.sharing)) throw bad('sharing', config.sharing, `use one of ${SCOPES.join(', ')}`);
  for (const key of ['harvestThresholdBytes', 'donorMarginBytes', 'engineMinimumBytes'] as const) {
    if (!isByteCount(config[key])) throw bad(key, config[key], 'give a non-negative integer number of bytes');
  }
  if (typeof config.lendWhileIdle !== 'boolean') throw bad('lendWhileIdle', config.lendWhileIdle, 'give true or false');
}

function eventError(message: string, detail: Record<string, unknown> = {}): EphemeraError {
  return new EphemeraError('EPH_MANAGER_EVENT', message, { detail });
}

function checkUsage(what: string, id: string, usage: Usage): void {
  if (!isByteCount(usage.ownPeakBytes) || !isByteCount(usage.filePeakBytes)) {
    throw eventError(
      `${what} for ${id}: ownPeakBytes and filePeakBytes must be non-negative integers, got ${JSON.stringify(usage)}`,
      { id },
    );
  }
}

function sameMove(a: Move, b: Move): boolean {
  return a.seq === b.seq && a.from === b.from && a.to === b.to && a.bytes === b.bytes && a.reason === b.reason;
}

function byId(a: Slot, b: Slot): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function partners(loans: ReadonlyMap<Slot, Bytes>): Partner[] {
  const out: Partner[] = [];
  for (const [slot, bytes] of loans) out.push({ id: slot.id, bytes });
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Creates one tenant's Manager. @throws EphemeraError `EPH_MANAGER_CONFIG` for a bad config. */
export function createManager(config: ManagerConfig): Manager {
  validateConfig(config);
  return new TenantManager({ ...config });
}

class TenantManager implements Manager {
  private readonly config: ManagerConfig;
  private readonly slots: Slot[] = [];
  private readonly index = new Map<string, Slot>();
  private seq = 0;
  /** The last event's batch, for `move-failed`; the first `undoable` of its moves may still be undone, last first. */
  private lastBatch: readonly Move[] = [];
  private undoable = 0;
  /** The batch being built by the current event; null while it is empty (most events move nothing). */
  private out: Move[] | null = null;
  /**
   * False once an event's batch settled the pool: then only the next event's own container can have
   * bytes to return or take back. True after a failed move (or before the first event): the next
   * event looks at every container.
   */
  private unsettled = true;
  /** Scratch lists reused by every event (no allocation per event beyond the moves themselves). */
  private readonly recipients: Slot[] = [];
  private readonly donors: Slot[] = [];

  constructor(config: ManagerConfig) {
    this.config = config;
  }

  apply(event: ManagerEvent, now: number): readonly Move[] {
    this.out = null;
    switch (event.kind) {
      case 'register': {
        this.checkInfo(event.container, (id) => this.index.has(id));
        const slot = this.addSlot(event.container);
        // An idle warm donor may lend at once when the flag is on; and every event, this one too,
        // repairs what a failed move of the previous batch left undone.
        this.rebalance(slot);
        break;
      }
      case 'forget': {
        const slot = this.get(event.id, 'forget');
        slot.leaving = true;
        slot.running = false;
        this.giveBack(slot);
        this.remove(slot);
        this.lend();
        break;
      }
      case 'invocation-start': {
        const slot = this.get(event.id, 'invocation-start');
        if (slot.running) {
          throw eventError(`invocation-start for ${slot.id}: it is already running; send invocation-end first (one invocation at a time per container)`, { id: slot.id });
        }
        if (event.estimate !== undefined) {
          checkUsage('invocation-start estimate', slot.id, event.estimate);
          this.setUsage(slot, event.estimate);
        }
        slot.running = true;
        slot.runningSince = now;
        this.rebalance(slot);
        break;
      }
      case 'invocation-end': {
        const slot = this.get(event.id, 'invocation-end');
        if (!slot.running) throw eventError(`invocation-end for ${slot.id}: it is not running; send invocation-start first`, { id: slot.id });
        checkUsage('invocation-end used', slot.id, event.used);
        slot.running = false;
        slot.runningSince = null;
        slot.reclaimable = true;
        this.setUsage(slot, event.used);
        this.rebalance(slot);
        break;
      }
      case 'shortfall': {
        const slot = this.get(event.id, 'shortfall');
        if (!isByteCount(event.neededBytes) || event.neededBytes === 0) {
          throw eventError(`shortfall for ${slot.id}: neededBytes must be a positive integer, got ${JSON.stringify(event.neededBytes)}`, { id: slot.id });
        }
        slot.reclaimable = false;
        slot.wanted = Math.max(slot.wanted, slot.limit + event.neededBytes);
        this.rebalance(slot);
        break;
      }
      case 'move-failed':
        this.undo(event.move);
        this.unsettled = true;
        return NO_MOVES;
    }
    // Only this batch may be undone from now on: the shell reports its failures before the next event.
    const batch = this.built();
    this.lastBatch = batch;
    this.undoable = batch.length;
    return batch;
  }

  /** The batch the current event built (a method: the compiler cannot see transfer() filling it). */
  private built(): readonly Move[] {
    return this.out ?? NO_MOVES;
  }

  recover(live: readonly LiveContainer[]): readonly Move[] {
    const seen = new Set<string>();
    for (const { info, limitBytes } of live) {
      this.checkInfo(info, (id) => seen.has(id));
      if (!isByteCount(limitBytes)) {
        throw eventError(`recover: live limit of ${info.id} must be a non-negative integer, got ${JSON.stringify(limitBytes)}`, { id: info.id });
      }
      seen.add(info.id);
    }
    this.slots.length = 0;
    this.index.clear();
    for (const { info } of live) this.addSlot(info);
    this.unsettled = false; // every container at its quota, nothing lent

    // Lower before raising: lower-only moves (nobody is short), then pairs, then raise-only
    // (bytes lost between steps 2 and 3 of a move), so the sum of limits never exceeds the quotas.
    const over = live.filter((l) => l.limitBytes > l.info.initialQuota).map((l) => ({ id: l.info.id, bytes: l.limitBytes - l.info.initialQuota }));
    const under = live.filter((l) => l.limitBytes < l.info.initialQuota).map((l) => ({ id: l.info.id, bytes: l.info.initialQuota - l.limitBytes }));
    const excess = over.reduce((s, o) => s + o.bytes, 0);
    const deficit = under.reduce((s, u) => s + u.bytes, 0);
    const lowerOnly: Move[] = [];
    const pairs: Move[] = [];
    const raiseOnly: Move[] = [];
    let dropExcess = Math.max(0, excess - deficit);
    for (const o of over) {
      const drop = Math.min(o.bytes, dropExcess);
      if (drop > 0) {
        lowerOnly.push({ seq: 0, from: o.id, to: null, bytes: drop, reason: 'restore' });
        o.bytes -= drop;
        dropExcess -= drop;
      }
    }
    let u = 0;
    for (const o of over) {
      while (o.bytes > 0) {
        const target = under[u];
        if (target === undefined) break;
        const bytes = Math.min(o.bytes, target.bytes);
        pairs.push({ seq: 0, from: o.id, to: target.id, bytes, reason: 'restore' });
        o.bytes -= bytes;
        target.bytes -= bytes;
        if (target.bytes === 0) u++;
      }
    }
    for (const target of under) {
      if (target.bytes > 0) raiseOnly.push({ seq: 0, from: null, to: target.id, bytes: target.bytes, reason: 'restore' });
    }
    const moves = [...lowerOnly, ...pairs, ...raiseOnly].map((m) => ({ ...m, seq: ++this.seq }));
    // Recovery moves are not undoable through move-failed: a shell that cannot restore a limit
    // retries recovery with the live limits it then reads.
    this.lastBatch = [];
    this.undoable = 0;
    return moves;
  }

  standing(id: string): ContainerStanding | undefined {
    const s = this.index.get(id);
    return s === undefined ? undefined : { pool: s.pool, lends: s.lent.size > 0, borrows: s.borrowed.size > 0, lendWhileIdle: this.config.lendWhileIdle };
  }

  quiet(): boolean {
    return !this.unsettled && !this.slots.some((s) => this.needs(s));
  }

  snapshot(): ManagerSnapshot {
    const containers: PoolEntry[] = [...this.slots].sort(byId).map((s) => {
      const entry: PoolEntry = {
        id: s.id,
        fn: s.info.fn,
        pool: s.pool,
        initialQuota: s.quota,
        peakMemory: s.own,
        maxFileSize: s.files,
        adjustedQuota: s.limit,
        floor: s.floor,
        wantedBytes: s.wanted,
        profiled: s.profiled,
        lentTo: partners(s.lent),
        borrowedFrom: partners(s.borrowed),
        reclaimable: s.reclaimable,
        running: s.running,
        runningSince: s.runningSince,
      };
      return s.info.workflow === undefined ? entry : { ...entry, workflow: s.info.workflow };
    });
    let initialQuotaBytes = 0;
    let limitBytes = 0;
    let lentBytes = 0;
    let unmetBytes = 0;
    let running = 0;
    for (const s of this.slots) {
      initialQuotaBytes += s.quota;
      limitBytes += s.limit;
      lentBytes += s.lentTotal;
      if (s.running && s.wanted > s.limit) unmetBytes += s.wanted - s.limit;
      if (s.running) running++;
    }
    return {
      tenant: this.config.tenant,
      sharing: this.config.sharing,
      lendWhileIdle: this.config.lendWhileIdle,
      containers,
      totals: { containers: this.slots.length, running, initialQuotaBytes, limitBytes, lentBytes, unmetBytes },
    };
  }

  // --- events -------------------------------------------------------------------------------

  private checkInfo(info: ContainerInfo, taken: (id: string) => boolean): void {
    if (typeof info.id !== 'string' || info.id.length === 0) throw eventError(`register: a container needs a non-empty id, got ${JSON.stringify(info.id)}`);
    if (info.tenant !== this.config.tenant) {
      throw eventError(
        `register ${info.id}: it belongs to tenant ${JSON.stringify(info.tenant)}, but this Manager serves ${JSON.stringify(this.config.tenant)}; register it with its own tenant's Manager`,
        { id: info.id, tenant: info.tenant },
      );
    }
    if (taken(info.id)) {
      throw eventError(`register ${info.id}: the id is already registered; forget it first`, { id: info.id });
    }
    if (!isByteCount(info.initialQuota) || info.initialQuota === 0) {
      throw eventError(`register ${info.id}: initialQuota must be a positive integer number of bytes, got ${JSON.stringify(info.initialQuota)}`, { id: info.id });
    }
    if (info.profile !== undefined) checkUsage('register profile', info.id, info.profile);
  }

  private addSlot(info: ContainerInfo): Slot {
    const slot: Slot = {
      info,
      id: info.id,
      quota: info.initialQuota,
      own: 0,
      files: 0,
      profiled: false,
      wanted: info.initialQuota,
      limit: info.initialQuota,
      pool: 'self-sufficient',
      floor: info.initialQuota,
      running: false,
      runningSince: null,
      reclaimable: true,
      leaving: false,
      lent: new Map(),
      borrowed: new Map(),
      lentTotal: 0,
      borrowedTotal: 0,
    };
    if (info.profile !== undefined) this.setUsage(slot, info.profile);
    this.slots.push(slot);
    this.index.set(slot.id, slot);
    return slot;
  }

  private setUsage(slot: Slot, usage: Usage): void {
    const tMem = usage.ownPeakBytes + usage.filePeakBytes;
    slot.own = usage.ownPeakBytes;
    slot.files = usage.filePeakBytes;
    slot.profiled = true;
    slot.wanted = tMem;
    slot.pool = classify(tMem, slot.quota, this.config.harvestThresholdBytes);
    slot.floor = slot.pool === 'harvest' ? donorFloor(tMem, slot.quota, this.config.donorMarginBytes, this.config.engineMinimumBytes) : slot.quota;
  }

  private get(id: string, what: string): Slot {
    const slot = this.index.get(id);
    if (slot === undefined) throw eventError(`${what}: no container ${JSON.stringify(id)} is registered with tenant ${this.config.tenant}'s Manager; register it first`, { id });
    return slot;
  }

  private remove(slot: Slot): void {
    this.index.delete(slot.id);
    const i = this.slots.indexOf(slot);
    this.slots.splice(i, 1);
  }

  private rebalance(focus: Slot): void {
    const full = this.unsettled;
    this.giveBack(focus);
    // The pool was saturated after the last batch (no recipient in need next to a donor with spare
    // that it may share with). If phase 1 moved nothing, only `focus` changed, so phase 2 has work
    // only if `focus` itself now needs memory or has some to lend.
    if (full || this.out !== null || this.needs(focus) || (this.isDonor(focus) && focus.limit > focus.floor)) this.lend();
  }

  private needs(r: Slot): boolean {
    return r.running && !r.leaving && r.wanted > r.limit;
  }

  // --- the two phases -------------------------------------------------------------------------

  /** Whether `d` may lend now: a reclaimable harvest container, running (or idle, with the flag). */
  private isDonor(d: Slot): boolean {
    return d.pool === 'harvest' && d.reclaimable && !d.leaving && (d.running || this.config.lendWhileIdle) && this.config.sharing !== 'none';
  }

  /**
   * Phase 1: recipients return what they do not need, then lenders take back what they need. After a
   * settled batch only `focus` (the event's container) can have either, so only it is looked at.
   */
  private giveBack(focus: Slot): void {
    if (!this.unsettled) {
      this.returnSurplus(focus);
      this.takeBackDue(focus);
      return;
    }
    this.unsettled = false;
    for (const r of this.slots) this.returnSurplus(r);
    for (const d of this.slots) this.takeBackDue(d);
  }

  private returnSurplus(r: Slot): void {
    if (r.borrowedTotal === 0) return;
    let surplus: Bytes;
    if (!r.running || r.leaving) surplus = r.borrowedTotal;
    else if (r.reclaimable) surplus = Math.min(r.borrowedTotal, Math.max(0, r.limit - Math.max(r.wanted, r.quota)));
    else surplus = 0; // non-reclaimable until its invocation ends (§3.3.3)
    // Give back first to the lender with the least spare (ineligible lenders want everything back).
    while (surplus > 0) {
      let best: Slot | undefined;
      let bestSpare = 0;
      for (const d of r.borrowed.keys()) {
        const spare = this.isDonor(d) ? d.limit - d.floor : -Infinity;
        if (best === undefined || spare < bestSpare || (spare === bestSpare && d.id < best.id)) {
          best = d;
          bestSpare = spare;
        }
      }
      if (best === undefined) break;
      const bytes = Math.min(surplus, r.borrowed.get(best) ?? 0);
      this.transfer(r, best, bytes, 'return');
      surplus -= bytes;
    }
  }

  private takeBackDue(d: Slot): void {
    if (d.lentTotal === 0) return;
    const donor = this.isDonor(d);
    let due = donor ? Math.max(0, d.floor - d.limit) : d.lentTotal;
    const reason = d.reclaimable ? 'reclaim' : 'safeguard';
    // Take back from the largest loan first: as few recipients disturbed as possible.
    while (due > 0) {
      let best: Slot | undefined;
      let bestBytes = 0;
      for (const [r, bytes] of d.lent) {
        if (best === undefined || bytes > bestBytes || (bytes === bestBytes && r.id < best.id)) {
          best = r;
          bestBytes = bytes;
        }
      }
      if (best === undefined) break;
      const bytes = Math.min(due, bestBytes);
      this.transfer(best, d, bytes, reason);
      due -= bytes;
    }
  }

  /** Phase 2: running recipients that miss memory borrow it; least need first, most spare first. */
  private lend(): void {
    if (this.config.sharing === 'none') return;
    const recipients = this.recipients;
    const donors = this.donors;
    recipients.length = 0;
    donors.length = 0;
    for (const s of this.slots) {
      if (this.needs(s)) recipients.push(s);
      else if (this.isDonor(s) && s.limit > s.floor) donors.push(s);
    }
    if (recipients.length === 0 || donors.length === 0) return;
    if (recipients.length > 1) recipients.sort(recipientOrder);
    for (const r of recipients) {
      let need = r.wanted - r.limit;
      while (need > 0) {
        let best: Slot | undefined;
        let bestSpare = 0;
        for (const d of donors) {
          const spare = d.limit - d.floor;
          if (spare <= 0 || !mayShare(this.config.sharing, d.info, r.info)) continue;
          if (spare > bestSpare || (spare === bestSpare && best !== undefined && d.id < best.id)) {
            best = d;
            bestSpare = spare;
          }
        }
        if (best === undefined) break;
        const bytes = Math.min(need, bestSpare);
        this.transfer(best, r, bytes, 'lend');
        need -= bytes;
      }
    }
    recipients.length = 0;
    donors.length = 0;
  }

  /** Records a move in the model and in the batch. */
  private transfer(from: Slot, to: Slot, bytes: Bytes, reason: Transfer['reason']): void {
    if (reason === 'lend') addLoan(from, to, bytes);
    else addLoan(to, from, -bytes);
    from.limit -= bytes;
    to.limit += bytes;
    (this.out ??= []).push({ seq: ++this.seq, from: from.id, to: to.id, bytes, reason });
  }

  /** `move-failed`: the shell left both limits as they were, so the model forgets the move. */
  private undo(move: Move): void {
    const expected = this.lastBatch[this.undoable - 1];
    if (expected === undefined || !sameMove(expected, move)) {
      throw eventError(
        `move-failed for move ${JSON.stringify(move)}: the Manager can only undo the moves of its last batch, last first; expected ${expected === undefined ? 'none' : JSON.stringify(expected)}`,
        { seq: move.seq },
      );
    }
    if (move.reason === 'restore') throw eventError(`move-failed for restore move ${move.seq}: recovery moves are not undone; call recover again with the live limits`);
    const from = this.index.get(move.from);
    const to = this.index.get(move.to);
    if (from === undefined || to === undefined) {
      throw eventError(
        `move-failed for move ${move.seq}: it involves a forgotten container (${from === undefined ? move.from : move.to}); a shell must carry out the other side of such a move regardless`,
        { seq: move.seq },
      );
    }
    this.undoable--;
    if (move.reason === 'lend') addLoan(from, to, -move.bytes);
    else addLoan(to, from, move.bytes);
    from.limit += move.bytes;
    to.limit -= move.bytes;
  }
}

/** Safeguarded (non-reclaimable) recipients first, then the least need first, then by id. */
function recipientOrder(a: Slot, b: Slot): number {
  if (a.reclaimable !== b.reclaimable) return a.reclaimable ? 1 : -1;
  const na = a.wanted - a.limit;
  const nb = b.wanted - b.limit;
  return na !== nb ? na - nb : byId(a, b);
}

/** Adds `bytes` (negative to take away) to the loan from `lender` to `borrower`, on both sides. */
function addLoan(lender: Slot, borrower: Slot, bytes: Bytes): void {
  const now = (lender.lent.get(borrower) ?? 0) + bytes;
  if (now === 0) {
    lender.lent.delete(borrower);
    borrower.borrowed.delete(lender);
  } else {
    lender.lent.set(borrower, now);
    borrower.borrowed.set(lender, now);
  }
  lender.lentTotal += bytes;
  borrower.borrowedTotal += bytes;
}
