/**
 * The platform's state: tenants, actions, observed profiles and activation records, in one SQLite
 * file (node:sqlite, built into Node.js 24) under the state directory.
 *
 * Durability: WAL journal with synchronous=NORMAL. Every committed write is in the operating
 * system's page cache before the call returns, so a SIGKILL of the controller loses nothing; only
 * a power cut may lose the last transactions (the same trade OpenWhisk's CouchDB makes with its
 * default delayed commits). An activation is written as "running" before it starts (committed
 * before the node is asked to run it) and replaced by its record when it ends; on the next start,
 * running rows become "whisk internal error" records.
 *
 * A finished record is committed just after the answer to a waiting caller is sent, not before
 * (write-behind): it waits in memory until the end of the current event-loop turn, or until the
 * next read or `begin`, whichever comes first, and records finished together are committed in one
 * transaction. Every read of this store sees it at once. The trade: a SIGKILL in that window (well
 * under a millisecond) leaves the row running, so the restarted controller reports the activation
 * as a whisk internal error although its caller got the result; it is never lost.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';

import { EphemeraError } from '../core/errors.js';
import type { ActivationLedger, ActionLookup, ProfileBook } from './invoker.js';
import { profileMem } from '../scheduler/profile.js';
import { MESSAGES, foldPeaks, recordAnnotations, response, type ActionDoc, type ActivationRecord, type Profile } from './model.js';

export interface Tenant {
  readonly name: string;
  readonly uuid: string;
  readonly key: string;
  /** The operator: may read and act in every namespace. */
  readonly admin: boolean;
  readonly created: number;
}

export interface ActivationQuery {
  readonly name?: string;
  readonly skip: number;
  readonly limit: number;
  readonly since?: number;
  readonly upto?: number;
}

/**
 * How long finished activation records are kept: the newest `keepPerNamespace` of each namespace,
 * none older than `maxAgeMs` (0 turns either rule off). Running activations are never pruned.
 */
export interface Retention {
  readonly keepPerNamespace: number;
  readonly maxAgeMs: number;
}

/** The reserved name of the operator's own namespace. */
export const ADMIN_TENANT = 'admin';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tenants (
  name TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, key TEXT NOT NULL, admin INTEGER NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
  namespace TEXT NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL, updated INTEGER NOT NULL,
  PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS profiles (
  namespace TEXT NOT NULL, name TEXT NOT NULL, profile TEXT NOT NULL, samples INTEGER NOT NULL,
  PRIMARY KEY (namespace, name));
CREATE TABLE IF NOT EXISTS activations (
  id TEXT PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, start INTEGER NOT NULL,
  running INTEGER NOT NULL, meta TEXT NOT NULL, record TEXT);
CREATE INDEX IF NOT EXISTS activations_by_start ON activations (namespace, start DESC);
CREATE INDEX IF NOT EXISTS activations_running ON activations (running) WHERE running = 1;
`;

interface Row {
  [key: string]: unknown;
}

/**
 * Recently read rows kept in memory, oldest dropped first once there are more than `maxEntries` or
 * their sizes add up past `maxSize` (an action's doc may hold a 1 MB zip).
 */
class ReadCache<V> {
  private readonly entries = new Map<string, { value: V; size: number }>();
  private size = 0;

  constructor(private readonly maxEntries: number, private readonly maxSize: number) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    // Most recently used last: re-inserting moves it there.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: V, size: number): void {
    this.delete(key);
    if (size > this.maxSize) return;
    this.entries.set(key, { value, size });
    this.size += size;
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.size <= this.maxSize) break;
      this.entries.delete(k);
      this.size -= e.size;
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.size -= e.size;
  }

  clear(): void {
    this.entries.clear();
    this.size = 0;
  }
}

/** Bounds of the read caches: every tenant's key, and the most recently used actions and profiles. */
const CACHE = { tenants: 4096, actions: 1024, profiles: 4096, bytes: 64 * 1024 * 1024 } as const;

const cacheKey = (namespace: string, name: string): string => `${namespace}/${name}`;

function str(row: Row, k: string): string {
  return String(row[k]);
}

export class Store implements ActivationLedger, ActionLookup, ProfileBook {
  private readonly db: DatabaseSync;
  private readonly stmts = new Map<string, StatementSync>();
  /**
   * What every invoke reads (the caller's tenant by uuid, the action, its observed profile), kept
   * in memory. This connection's own writes update them; a commit by any other connection (another
   * process: `ephemera tenant add`) changes SQLite's `data_version`, which every read checks first
   * (one pragma, a few µs), and then all of them are dropped.
   */
  private readonly tenantsByUuid = new ReadCache<Tenant>(CACHE.tenants, Number.MAX_SAFE_INTEGER);
  private readonly actions = new ReadCache<ActionDoc>(CACHE.actions, CACHE.bytes);
  private readonly profiles = new ReadCache<Profile>(CACHE.profiles, CACHE.bytes);
  private dataVersion: unknown = undefined;
  /** Finished records not committed yet (write-behind, see the top of this file), by id. */
  private readonly unwritten = new Map<string, ActivationRecord>();
  private flushScheduled = false;
  private closed = false;

  /**
   * @param onWriteError told when finished records could not be committed (their rows stay
   *   running, so the next start reports them as whisk internal errors)
   */
  private constructor(readonly path: string, private readonly onWriteError: (err: unknown, activationIds: readonly string[]) => void) {
    try {
      this.db = new DatabaseSync(path);
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new EphemeraError('EPH_STORE', `the platform's store ${path} could not be opened: ${err instanceof Error ? err.message : String(err)}; check that the state directory is writable and the file is not corrupt`, { cause: err });
    }
  }

  /** Opens (creating when absent) `<stateDir>/platform.db`. */
  static open(stateDir: string, onWriteError: (err: unknown, activationIds: readonly string[]) => void = () => undefined): Store {
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new EphemeraError('EPH_STORE', `the state directory ${stateDir} could not be created: ${err instanceof Error ? err.message : String(err)}; pass a writable --state-dir`, { cause: err });
    }
    return new Store(join(stateDir, 'platform.db'), onWriteError);
  }

  /** Commits what is still unwritten and closes the database. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.db.close();
  }

  private q(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Drops the read caches when another connection has committed since the last check. */
  private fresh(): void {
    const v = (this.q('PRAGMA data_version').get() as Row).data_version;
    if (v === this.dataVersion) return;
    this.dataVersion = v;
    this.tenantsByUuid.clear();
    this.actions.clear();
    this.profiles.clear();
  }

  // --- tenants ---

  /** The tenant `name`, created with a fresh `uuid:key` when it does not exist yet. */
  ensureTenant(name: string, admin = false): Tenant {
    const found = this.tenant(name);
    if (found !== undefined) return found;
    const t: Tenant = { name, uuid: randomUUID(), key: randomBytes(48).toString('base64url').slice(0, 64), admin, created: Date.now() };
    this.q('INSERT INTO tenants (name, uuid, key, admin, created) VALUES (?, ?, ?, ?, ?)').run(t.name, t.uuid, t.key, t.admin ? 1 : 0, t.created);
    this.tenantsByUuid.delete(t.uuid);
    return t;
  }

  tenant(name: string): Tenant | undefined {
    const row = this.q('SELECT * FROM tenants WHERE name = ?').get(name) as Row | undefined;
    return row === undefined ? undefined : this.toTenant(row);
  }

  tenants(): Tenant[] {
    return (this.q('SELECT * FROM tenants ORDER BY name').all() as Row[]).map((r) => this.toTenant(r));
  }

  /** The tenant whose credentials these are, or undefined (compared in constant time). */
  authenticate(uuid: string, key: string): Tenant | undefined {
    this.fresh();
    let t = this.tenantsByUuid.get(uuid);
    if (t === undefined) {
      const row = this.q('SELECT * FROM tenants WHERE uuid = ?').get(uuid) as Row | undefined;
      if (row === undefined) return undefined;
      t = this.toTenant(row);
      this.tenantsByUuid.set(uuid, t, 1);
    }
    const a = Buffer.from(key);
    const b = Buffer.from(t.key);
    return a.length === b.length && timingSafeEqual(a, b) ? t : undefined;
  }

  private toTenant(r: Row): Tenant {
    return { name: str(r, 'name'), uuid: str(r, 'uuid'), key: str(r, 'key'), admin: r.admin === 1, created: Number(r.created) };
  }

  // --- actions ---

  getAction(namespace: string, name: string): ActionDoc | undefined {
    this.fresh();
    const key = cacheKey(namespace, name);
    const cached = this.actions.get(key);
    if (cached !== undefined) return cached;
    const row = this.q('SELECT doc FROM actions WHERE namespace = ? AND name = ?').get(namespace, name) as Row | undefined;
    if (row === undefined) return undefined;
    const text = str(row, 'doc');
    const doc = JSON.parse(text) as ActionDoc;
    this.actions.set(key, doc, text.length);
    return doc;
  }

  putAction(doc: ActionDoc): void {
    const text = JSON.stringify(doc);
    this.q('INSERT INTO actions (namespace, name, doc, updated) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated')
      .run(doc.namespace, doc.name, text, doc.updated);
    // The cache keeps its own copy, as a read would give it: the caller may go on using `doc`.
    this.actions.set(cacheKey(doc.namespace, doc.name), JSON.parse(text) as ActionDoc, text.length);
  }

  deleteAction(namespace: string, name: string): void {
    this.q('DELETE FROM actions WHERE namespace = ? AND name = ?').run(namespace, name);
    this.q('DELETE FROM profiles WHERE namespace = ? AND name = ?').run(namespace, name);
    this.actions.delete(cacheKey(namespace, name));
    this.profiles.delete(cacheKey(namespace, name));
  }

  /** Newest first, as OpenWhisk lists them. */
  listActions(namespace: string, skip: number, limit: number): ActionDoc[] {
    return (this.q('SELECT doc FROM actions WHERE namespace = ? ORDER BY updated DESC, name LIMIT ? OFFSET ?').all(namespace, limit, skip) as Row[])
      .map((r) => JSON.parse(str(r, 'doc')) as ActionDoc);
  }

  countActions(namespace: string): number {
    return Number((this.q('SELECT count(*) AS n FROM actions WHERE namespace = ?').get(namespace) as Row).n);
  }

  // --- profiles ---

  observedProfile(namespace: string, name: string): Profile | undefined {
    this.fresh();
    const key = cacheKey(namespace, name);
    const cached = this.profiles.get(key);
    if (cached !== undefined) return cached;
    const row = this.q('SELECT profile FROM profiles WHERE namespace = ? AND name = ?').get(namespace, name) as Row | undefined;
    if (row === undefined) return undefined;
    // A row written before T_mem = own + file held the limit there: the parts decide.
    const text = str(row, 'profile');
    const p = JSON.parse(text) as Profile;
    const profile = { ...p, T_mem: profileMem(p) };
    this.profiles.set(key, profile, text.length);
    return profile;
  }

  /** Folds one activation's peaks into the action's observed profile; writes only when it grew. */
  observePeaks(action: ActionDoc, ownPeakBytes: number, filePeakBytes: number): void {
    const prev = this.observedProfile(action.namespace, action.name);
    const next = foldPeaks(prev, ownPeakBytes, filePeakBytes);
    if (prev !== undefined && prev.ownPeakBytes === next.ownPeakBytes && prev.filePeakBytes === next.filePeakBytes && prev.T_mem === next.T_mem) return;
    const text = JSON.stringify(next);
    this.q('INSERT INTO profiles (namespace, name, profile, samples) VALUES (?, ?, ?, 1) ON CONFLICT (namespace, name) DO UPDATE SET profile = excluded.profile, samples = samples + 1')
      .run(action.namespace, action.name, text);
    this.profiles.set(cacheKey(action.namespace, action.name), JSON.parse(text) as Profile, text.length);
  }

  // --- activations ---

  /** Commits the activation as running, together with any finished records still unwritten. */
  begin(meta: { activationId: string; namespace: string; name: string; subject: string; version: string; start: number }): void {
    const insert = this.q('INSERT INTO activations (id, namespace, name, start, running, meta, record) VALUES (?, ?, ?, ?, 1, ?, NULL)');
    if (this.unwritten.size === 0) {
      insert.run(meta.activationId, meta.namespace, meta.name, meta.start, JSON.stringify(meta));
      return;
    }
    this.transaction(() => {
      this.writeUnwritten();
      insert.run(meta.activationId, meta.namespace, meta.name, meta.start, JSON.stringify(meta));
    });
  }

  /** Takes the finished record; it is committed at the end of this event-loop turn at the latest. */
  finish(record: ActivationRecord): void {
    if (this.closed) throw new EphemeraError('EPH_STORE', `activation ${record.activationId} finished after the platform's store ${this.path} was closed; its row stays running`);
    this.unwritten.set(record.activationId, record);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Commits the finished records still unwritten, in one transaction; a failure goes to `onWriteError`. */
  flush(): void {
    if (this.unwritten.size === 0 || this.closed) return;
    try {
      // One record is one statement, which SQLite commits on its own; more share a transaction.
      if (this.unwritten.size === 1) this.writeUnwritten();
      else this.transaction(() => { this.writeUnwritten(); });
    } catch (err) {
      const ids = [...this.unwritten.keys()];
      this.unwritten.clear();
      this.onWriteError(err, ids);
    }
  }

  private writeUnwritten(): void {
    const update = this.q('UPDATE activations SET running = 0, start = ?, record = ? WHERE id = ?');
    for (const rec of this.unwritten.values()) update.run(rec.start, JSON.stringify(rec), rec.activationId);
    this.unwritten.clear();
  }

  private transaction(body: () => void): void {
    this.q('BEGIN IMMEDIATE').run();
    try {
      body();
      this.q('COMMIT').run();
    } catch (err) {
      if (this.db.isTransaction) this.q('ROLLBACK').run();
      throw err;
    }
  }

  /** The finished record, `running` while it runs, or undefined. */
  getActivation(namespace: string, id: string): ActivationRecord | 'running' | undefined {
    const pending = this.unwritten.get(id);
    if (pending !== undefined) return pending.namespace === namespace ? pending : undefined;
    const row = this.q('SELECT running, record FROM activations WHERE id = ? AND namespace = ?').get(id, namespace) as Row | undefined;
    if (row === undefined) return undefined;
    return row.running === 1 ? 'running' : (JSON.parse(str(row, 'record')) as ActivationRecord);
  }

  /** Finished activations, newest first. */
  listActivations(namespace: string, q: ActivationQuery): ActivationRecord[] {
    this.flush();
    const where = ['namespace = ?', 'running = 0'];
    const args: (string | number)[] = [namespace];
    if (q.name !== undefined) { where.push('name = ?'); args.push(q.name); }
    if (q.since !== undefined) { where.push('start >= ?'); args.push(q.since); }
    if (q.upto !== undefined) { where.push('start <= ?'); args.push(q.upto); }
    const sql = `SELECT record FROM activations WHERE ${where.join(' AND ')} ORDER BY start DESC, id LIMIT ? OFFSET ?`;
    return (this.db.prepare(sql).all(...args, q.limit, q.skip) as Row[]).map((r) => JSON.parse(str(r, 'record')) as ActivationRecord);
  }

  /**
   * Deletes finished records beyond `retention`, at most `batch` of them in one transaction (so a
   * request never waits behind more than one batch); returns how many it deleted. A caller that
   * gets `batch` back calls again (later) to go on.
   */
  prune(retention: Retention, now: number, batch: number): number {
    this.flush();
    let left = batch;
    const remove = (where: string, ...args: (string | number)[]): void => {
      if (left <= 0) return;
      const r = this.q(`DELETE FROM activations WHERE rowid IN (SELECT rowid FROM activations WHERE running = 0 AND ${where} LIMIT ?)`).run(...args, left);
      left -= Number(r.changes);
    };
    this.transaction(() => {
      const namespaces = (this.q('SELECT DISTINCT namespace FROM activations').all() as Row[]).map((r) => str(r, 'namespace'));
      for (const ns of namespaces) {
        if (retention.maxAgeMs > 0) remove('namespace = ? AND start < ?', ns, now - retention.maxAgeMs);
        if (retention.keepPerNamespace > 0) {
          // The first record past the newest `keepPerNamespace`, in the order lists show them
          // (start descending, then id): it and every record after it go.
          const edge = this.q('SELECT start, id FROM activations WHERE namespace = ? AND running = 0 ORDER BY start DESC, id LIMIT 1 OFFSET ?')
            .get(ns, retention.keepPerNamespace) as Row | undefined;
          if (edge !== undefined) {
            const start = Number(edge.start);
            remove('namespace = ? AND (start < ? OR (start = ? AND id >= ?))', ns, start, start, str(edge, 'id'));
          }
        }
        if (left <= 0) break;
      }
    });
    return batch - left;
  }

  /**
   * Activations left running by a controller that died: each becomes a finished record with
   * "whisk internal error", so a client polling for it gets an answer. Returns their ids.
   */
  failInFlight(now: number): string[] {
    this.flush();
    const rows = this.q('SELECT meta FROM activations WHERE running = 1').all() as Row[];
    const ids: string[] = [];
    for (const r of rows) {
      const meta = JSON.parse(str(r, 'meta')) as { activationId: string; namespace: string; name: string; subject: string; version: string; start: number };
      const action = this.getAction(meta.namespace, meta.name);
      const annotations = action === undefined
        ? [{ key: 'path', value: `${meta.namespace}/${meta.name}` }]
        : recordAnnotations({ action, waitTime: 0, timedOut: false });
      const rec: ActivationRecord = {
        activationId: meta.activationId,
        namespace: meta.namespace,
        name: meta.name,
        subject: meta.subject,
        version: meta.version,
        publish: false,
        start: meta.start,
        end: now,
        duration: now - meta.start,
        logs: [],
        annotations,
        response: response(3, { error: MESSAGES.lostInFlight }),
      };
      this.finish(rec);
      ids.push(meta.activationId);
    }
    this.flush();
    return ids;
  }
}
