// test-tier: unit
/**
 * The core against long random event sequences: a few tenants, each with its own Manager and its
 * own containers, and a simulated node agent that carries each batch out move by move in the safe
 * order (lower the giver, then raise the receiver), sometimes fails a move (reporting it and the
 * skipped rest, last first), and sometimes dies mid-batch (even between lowering and raising),
 * after which a fresh Manager recovers from the live limits.
 *
 * Checked after every half-move: the tenant's live limits never sum above its initial quotas, and a
 * lend never takes a donor below its floor. Checked after every event: live limits equal the
 * model's, they sum exactly to the quotas, every lender is at or above its floor, no container both
 * lends and borrows, every move names only this tenant's containers, the priority order of the
 * lends, and that no lend that the rules allow was left undone.
 *
 * Reproduce a failure with EPH_MANAGER_SEED=<seed printed> (EPH_MANAGER_EVENTS to shorten it,
 * EPH_MANAGER_TRACE=tenant0 to print that tenant's events and moves).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { createManager, mayShare } from './core.js';
import { isEphemeraError } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';
import type { ContainerInfo, Manager, ManagerConfig, ManagerEvent, ManagerSnapshot, Move, PoolEntry, SharingScope, Usage } from './types.js';

const MiB = 1024 * 1024;
const EVENTS = Number(process.env.EPH_MANAGER_EVENTS ?? 120_000);
const TRACE = process.env.EPH_MANAGER_TRACE;
const SEED = Number(process.env.EPH_MANAGER_SEED ?? Math.floor(Math.random() * 2 ** 32));


interface LiveBox {
  readonly info: ContainerInfo;
  limit: number;
}

interface Tenant {
  readonly name: string;
  readonly config: ManagerConfig;
  manager: Manager;
  readonly live: Map<string, LiveBox>;
  readonly running: Set<string>;
  next: number;
}

const SCOPES: readonly SharingScope[] = ['none', 'function', 'workflow', 'tenant'];

class World {
  readonly random: () => number;
  readonly tenants: Tenant[] = [];
  stats = { events: 0, moves: 0, halfMoves: 0, failures: 0, crashes: 0, recoveries: 0, lends: 0, refusedForeign: 0 };

  constructor(seed: number) {
    this.random = mulberry32(seed);
    for (let t = 0; t < 3; t++) {
      const config: ManagerConfig = {
        tenant: `tenant${String(t)}`,
        // One tenant as in the paper, one with a narrower scope and the flag, one anything.
        sharing: t === 0 ? 'tenant' : t === 1 ? this.pick(['function', 'workflow'] as const) : this.pick(SCOPES),
        harvestThresholdBytes: this.int(0, 32) * MiB,
        donorMarginBytes: this.int(0, 16) * MiB,
        engineMinimumBytes: 6 * MiB,
        lendWhileIdle: t === 0 ? false : t === 1 ? true : this.random() < 0.5,
      };
      this.tenants.push({ name: config.tenant, config, manager: createManager(config), live: new Map(), running: new Set(), next: 0 });
    }
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  pick<V>(xs: readonly V[]): V {
    const v = xs[Math.floor(this.random() * xs.length)];
    if (v === undefined) throw new Error('pick from an empty list');
    return v;
  }

  /** A usage typical of the paper's functions: CPU-bound (a few MB), I/O-bound (files), or middling. */
  usage(quotaMiB: number): Usage {
    const r = this.random();
    if (r < 0.4) return { ownPeakBytes: this.int(1, 20) * MiB, filePeakBytes: 0 };
    if (r < 0.8) return { ownPeakBytes: this.int(4, 16) * MiB, filePeakBytes: this.int(quotaMiB / 2, quotaMiB * 3) * MiB };
    return { ownPeakBytes: this.int(quotaMiB / 2, quotaMiB) * MiB, filePeakBytes: this.int(0, 8) * MiB };
  }

  step(): void {
    const tenant = this.pick(this.tenants);
    const ids = [...tenant.live.keys()];
    const idle = ids.filter((id) => !tenant.running.has(id));
    const running = [...tenant.running];
    const r = this.random();
    let event: ManagerEvent | undefined;
    if (ids.length < 2 || (r < 0.08 && ids.length < 9)) {
      const quotaMiB = this.pick([32, 64, 128, 256, 512]);
      const id = `${tenant.name}/c${String(tenant.next++)}`;
      const fn = `f${String(this.int(0, 2))}`;
      const wf = this.random() < 0.6 ? { workflow: `w${String(this.int(0, 1))}` } : {};
      const profile = this.random() < 0.9 ? { profile: this.usage(quotaMiB) } : {};
      const info: ContainerInfo = { id, tenant: tenant.name, fn, initialQuota: quotaMiB * MiB, ...wf, ...profile };
      tenant.live.set(id, { info, limit: info.initialQuota });
      event = { kind: 'register', container: info };
    } else if (r < 0.4 && idle.length > 0) {
      const id = this.pick(idle);
      const quota = this.box(tenant, id).info.initialQuota / MiB;
      tenant.running.add(id);
      event = this.random() < 0.3 ? { kind: 'invocation-start', id, estimate: this.usage(quota) } : { kind: 'invocation-start', id };
    } else if (r < 0.72 && running.length > 0) {
      const id = this.pick(running);
      tenant.running.delete(id);
      event = { kind: 'invocation-end', id, used: this.usage(this.box(tenant, id).info.initialQuota / MiB) };
    } else if (r < 0.85 && ids.length > 0) {
      event = { kind: 'shortfall', id: this.pick(ids), neededBytes: this.int(1, 128) * MiB };
    } else if (r < 0.92 && ids.length > 2) {
      const id = this.pick(ids);
      tenant.running.delete(id);
      event = { kind: 'forget', id };
    } else if (r < 0.935) {
      this.crash(tenant, undefined);
      return;
    } else if (r < 0.945) {
      // Another tenant's container is refused, and the refusal changes nothing.
      const other = this.pick(this.tenants.filter((t) => t !== tenant));
      const before = JSON.stringify(tenant.manager.snapshot());
      const foreign: ContainerInfo = { id: `${other.name}/c${String(other.next)}`, tenant: other.name, fn: 'f0', initialQuota: 64 * MiB };
      assert.throws(() => tenant.manager.apply({ kind: 'register', container: foreign }, this.stats.events), (e) => isEphemeraError(e, 'EPH_MANAGER_EVENT'));
      assert.equal(JSON.stringify(tenant.manager.snapshot()), before);
      this.stats.refusedForeign++;
      return;
    }
    if (event === undefined) return;
    if (event.kind !== 'forget' && event.kind !== 'register' && this.random() < 0.03) {
      this.crash(tenant, event);
      return;
    }
    this.deliver(tenant, event);
  }

  box(tenant: Tenant, id: string): LiveBox {
    const box = tenant.live.get(id);
    if (box === undefined) throw new Error(`${id} is not live in ${tenant.name}`);
    return box;
  }

  deliver(tenant: Tenant, event: ManagerEvent): void {
    this.stats.events++;
    const moves = tenant.manager.apply(event, this.stats.events);
    const after = tenant.manager.snapshot();
    if (TRACE === tenant.name) console.log(JSON.stringify(event), JSON.stringify(moves.map((m) => [m.from, m.to, m.bytes / MiB, m.reason])));
    const leaving = event.kind === 'forget' ? event.id : undefined;
    // A move that involves a container being forgotten cannot fail (the shell does the other side).
    const failAt = leaving === undefined && this.random() < 0.05 && moves.length > 0 ? this.int(0, moves.length - 1) : -1;
    let done = 0;
    for (const move of moves) {
      if (done === failAt) break;
      this.carryOut(tenant, move, after, leaving, false);
      done++;
    }
    if (failAt >= 0) {
      this.stats.failures++;
      // The failed move and every skipped one come back as move-failed, last first.
      for (let i = moves.length - 1; i >= failAt; i--) {
        const move = moves[i];
        assert.ok(move);
        assert.deepEqual(tenant.manager.apply({ kind: 'move-failed', move, reason: 'simulated' }, this.stats.events), []);
      }
    }
    if (leaving !== undefined) tenant.live.delete(leaving);
    this.checkSettled(tenant, failAt < 0 ? moves : undefined, failAt >= 0);
  }

  /** The safe order, half by half: lower the giver (checking the sum), then raise the receiver. */
  carryOut(tenant: Tenant, move: Move, after: ManagerSnapshot, leaving: string | undefined, halfOnly: boolean): void {
    this.stats.moves++;
    for (const id of [move.from, move.to]) {
      if (id === null) continue;
      assert.ok(id.startsWith(`${tenant.name}/`), `move ${JSON.stringify(move)} names another tenant's container`);
      assert.ok(tenant.live.has(id), `move ${JSON.stringify(move)} names ${id}, which is not live`);
    }
    assert.ok(move.bytes > 0 && Number.isSafeInteger(move.bytes), `move ${JSON.stringify(move)} has a bad size`);
    if (move.from !== null) {
      const giver = this.box(tenant, move.from);
      giver.limit -= move.bytes;
      assert.ok(giver.limit >= 0, `move ${JSON.stringify(move)} takes ${move.from} below zero`);
      if (move.reason === 'lend') {
        const floor = after.containers.find((c) => c.id === move.from)?.floor;
        assert.ok(floor !== undefined && giver.limit >= floor, `lend ${JSON.stringify(move)} takes ${move.from} to ${String(giver.limit)}, below its floor ${String(floor)}`);
      }
      this.checkSum(tenant, move);
    }
    this.stats.halfMoves++;
    if (halfOnly) return;
    if (move.to !== null) {
      this.box(tenant, move.to).limit += move.bytes;
      if (move.to !== leaving) this.checkSum(tenant, move);
    }
    this.stats.halfMoves++;
    if (move.reason === 'lend') this.stats.lends++;
  }

  checkSum(tenant: Tenant, move: Move): void {
    let limits = 0;
    let quotas = 0;
    for (const box of tenant.live.values()) {
      limits += box.limit;
      quotas += box.info.initialQuota;
    }
    assert.ok(limits <= quotas, `after ${JSON.stringify(move)}: ${tenant.name}'s limits sum to ${String(limits)} > quotas ${String(quotas)}`);
  }

  /** Killed mid-batch (or idle), then a new Manager recovers from labels and live limits. */
  crash(tenant: Tenant, event: ManagerEvent | undefined): void {
    this.stats.crashes++;
    if (event !== undefined) {
      this.stats.events++;
      const moves = tenant.manager.apply(event, this.stats.events);
      const after = tenant.manager.snapshot();
      const cut = this.int(0, moves.length);
      for (let i = 0; i < cut; i++) {
        const move = moves[i];
        assert.ok(move);
        // The last one carried out may stop between lowering and raising.
        this.carryOut(tenant, move, after, undefined, i === cut - 1 && this.random() < 0.5);
      }
    }
    tenant.manager = createManager(tenant.config);
    const live = [...tenant.live.values()].map((b) => ({ info: b.info, limitBytes: b.limit }));
    const moves = tenant.manager.recover(live);
    const lowered = new Set<string>();
    for (const move of moves) {
      assert.equal(move.reason, 'restore');
      // Safe order: nothing raised before everything that must be lowered was.
      if (move.from !== null) {
        assert.ok(!lowered.has('raised'), `recovery lowers ${move.from} after a raise-only move`);
      }
      if (move.from === null) lowered.add('raised');
      this.carryOut(tenant, move, tenant.manager.snapshot(), undefined, false);
    }
    this.stats.recoveries++;
    for (const box of tenant.live.values()) assert.equal(box.limit, box.info.initialQuota, `${box.info.id} is not back at its quota after recovery`);
    // The new Manager knows of no invocation; the node agent then tells it which are in flight.
    const inFlight = [...tenant.running];
    tenant.running.clear();
    this.checkSettled(tenant, undefined, false);
    assert.ok(tenant.manager.snapshot().containers.every((c) => !c.running && c.lentTo.length === 0));
    for (const id of inFlight) {
      tenant.running.add(id);
      this.deliver(tenant, { kind: 'invocation-start', id });
    }
  }

  /** After a whole batch: model and live agree, conservation is exact, floors, priority, saturation. */
  checkSettled(tenant: Tenant, lends: readonly Move[] | undefined, failed: boolean): void {
    const snap = tenant.manager.snapshot();
    assert.equal(snap.containers.length, tenant.live.size);
    let limits = 0;
    let quotas = 0;
    for (const c of snap.containers) {
      const box = this.box(tenant, c.id);
      assert.equal(c.adjustedQuota, box.limit, `${c.id}: the model's limit differs from the live one`);
      assert.equal(c.adjustedQuota, c.initialQuota - sum(c.lentTo) + sum(c.borrowedFrom), `${c.id}: adjusted quota does not match its partner lists`);
      assert.ok(c.lentTo.length === 0 || c.borrowedFrom.length === 0, `${c.id} both lends and borrows`);
      // After a failed batch a lender may stay below a floor that just rose, until the next event.
      if (c.lentTo.length > 0 && !failed) assert.ok(c.adjustedQuota >= c.floor, `${c.id} lends below its floor: ${String(c.adjustedQuota)} < ${String(c.floor)}`);
      assert.equal(c.running, tenant.running.has(c.id));
      limits += c.adjustedQuota;
      quotas += c.initialQuota;
    }
    assert.equal(limits, quotas, `${tenant.name}: settled limits ${String(limits)} != quotas ${String(quotas)}`);
    assert.equal(snap.totals.limitBytes, limits);
    if (lends !== undefined) {
      this.checkPriority(tenant, snap, lends);
      this.checkSaturated(tenant, snap);
    }
  }

  isDonor(tenant: Tenant, c: PoolEntry): boolean {
    return c.pool === 'harvest' && c.reclaimable && (c.running || tenant.config.lendWhileIdle) && tenant.config.sharing !== 'none';
  }

  /** No running recipient that misses memory while a donor it may share with has spare. */
  checkSaturated(tenant: Tenant, snap: ManagerSnapshot): void {
    for (const r of snap.containers) {
      if (!r.running || r.wantedBytes <= r.adjustedQuota) continue;
      for (const d of snap.containers) {
        if (d === r || !this.isDonor(tenant, d) || d.adjustedQuota <= d.floor) continue;
        assert.ok(!mayShare(tenant.config.sharing, infoOf(tenant, d.id), infoOf(tenant, r.id)), `${JSON.stringify([r, d])} ${r.id} misses ${String(r.wantedBytes - r.adjustedQuota)} while ${d.id} has ${String(d.adjustedQuota - d.floor)} spare`);
      }
    }
  }

  /**
   * The lends of a batch, replayed from the state just before them (the settled state minus the
   * lends): each takes from the donor with the most spare among those allowed, and recipients are
   * served safeguarded first, then least need first.
   */
  checkPriority(tenant: Tenant, snap: ManagerSnapshot, moves: readonly Move[]): void {
    const lends = moves.filter((m) => m.reason === 'lend');
    if (lends.length === 0) return;
    const limit = new Map(snap.containers.map((c) => [c.id, c.adjustedQuota]));
    const entry = new Map(snap.containers.map((c) => [c.id, c]));
    for (const m of lends) {
      if (m.from === null || m.to === null) throw new Error('a lend names both sides');
      limit.set(m.from, (limit.get(m.from) ?? 0) + m.bytes);
      limit.set(m.to, (limit.get(m.to) ?? 0) - m.bytes);
    }
    const need = (c: PoolEntry): number => c.wantedBytes - (limit.get(c.id) ?? 0);
    const order: PoolEntry[] = [];
    for (const m of lends) {
      const r = entry.get(m.to ?? '');
      assert.ok(r);
      if (order[order.length - 1] !== r) {
        assert.ok(!order.includes(r), `${r.id} is served in two separate runs of lends`);
        order.push(r);
      }
    }
    const key = (c: PoolEntry): [number, number] => [c.reclaimable ? 1 : 0, need(c)];
    for (let i = 1; i < order.length; i++) {
      const a = order[i - 1];
      const b = order[i];
      assert.ok(a && b);
      const [ka, na] = key(a);
      const [kb, nb] = key(b);
      assert.ok(ka < kb || (ka === kb && na <= nb), `recipient ${b.id} (need ${String(nb)}) was served after ${a.id} (need ${String(na)})`);
    }
    for (const m of lends) {
      if (m.from === null || m.to === null) continue;
      const r = entry.get(m.to);
      assert.ok(r);
      const spareOf = (c: PoolEntry): number => (limit.get(c.id) ?? 0) - c.floor;
      const chosen = entry.get(m.from);
      assert.ok(chosen);
      for (const d of snap.containers) {
        if (!this.isDonor(tenant, d) || !mayShare(tenant.config.sharing, infoOf(tenant, d.id), infoOf(tenant, r.id))) continue;
        assert.ok(spareOf(d) <= spareOf(chosen), `${r.id} took from ${chosen.id} (spare ${String(spareOf(chosen))}) while ${d.id} had ${String(spareOf(d))}`);
      }
      limit.set(m.from, (limit.get(m.from) ?? 0) - m.bytes);
      limit.set(m.to, (limit.get(m.to) ?? 0) + m.bytes);
    }
  }
}

function infoOf(tenant: Tenant, id: string): ContainerInfo {
  const box = tenant.live.get(id);
  if (box === undefined) throw new Error(`${id} is not live`);
  return box.info;
}

function sum(partners: readonly { bytes: number }[]): number {
  return partners.reduce((s, p) => s + p.bytes, 0);
}

test(`randomized: ${String(EVENTS)} events over 3 tenants keep conservation, isolation, floors and priority`, { timeout: 120_000 }, () => {
  const world = new World(SEED);
  try {
    while (world.stats.events < EVENTS) world.step();
  } catch (err) {
    const detail = `seed ${String(SEED)} after ${String(world.stats.events)} events (reproduce: EPH_MANAGER_SEED=${String(SEED)})`;
    console.error(`core-random: FAILED with ${detail}`);
    throw new Error(`${detail}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // The sequence must exercise what it claims to.
  const s = world.stats;
  assert.ok(s.lends > 1000 && s.failures > 100 && s.crashes > 100 && s.recoveries === s.crashes && s.refusedForeign > 100, JSON.stringify(s));
  console.log(`core-random: seed ${String(SEED)} ${JSON.stringify(s)} configs ${JSON.stringify(world.tenants.map((t) => [t.config.sharing, t.config.lendWhileIdle]))}`);
});
