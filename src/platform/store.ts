/**
 * The platform's state: tenants, actions, observed profiles and activation records, in one SQLite
 * file (node:sqlite, built into Node.js 24) under the state directory.
 *
 * Durability: WAL journal with synchronous=NORMAL. Every committed write is in the operating
 * system's page cache before the call returns, so a SIGKILL of the controller loses nothing; only
 * a power cut may lose the last transactions (the same trade OpenWhisk's CouchDB makes with its
 * default delayed commits). An activation is written as "running" before it starts and replaced by
 * its record when it ends; on the next start, running rows become "whisk internal error" records.
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

function str(row: Row, k: string): string {
  return String(row[k]);
}

export class Store implements ActivationLedger, ActionLookup, ProfileBook {
  private readonly db: DatabaseSync;
  private readonly stmts = new Map<string, StatementSync>();

  private constructor(readonly path: string) {
    try {
      this.db = new DatabaseSync(path);
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new EphemeraError('EPH_STORE', `the platform's store ${path} could not be opened: ${err instanceof Error ? err.message : String(err)}; check that the state directory is writable and the file is not corrupt`, { cause: err });
    }
  }

  /** Opens (creating when absent) `<stateDir>/platform.db`. */
  static open(stateDir: string): Store {
    try {
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new EphemeraError('EPH_STORE', `the state directory ${stateDir} could not be created: ${err instanceof Error ? err.message : String(err)}; pass a writable --state-dir`, { cause: err });
    }
    return new Store(join(stateDir, 'platform.db'));
  }

  close(): void {
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

  // --- tenants ---

  /** The tenant `name`, created with a fresh `uuid:key` when it does not exist yet. */
  ensureTenant(name: string, admin = false): Tenant {
    const found = this.tenant(name);
    if (found !== undefined) return found;
    const t: Tenant = { name, uuid: randomUUID(), key: randomBytes(48).toString('base64url').slice(0, 64), admin, created: Date.now() };
    this.q('INSERT INTO tenants (name, uuid, key, admin, created) VALUES (?, ?, ?, ?, ?)').run(t.name, t.uuid, t.key, t.admin ? 1 : 0, t.created);
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
    const row = this.q('SELECT * FROM tenants WHERE uuid = ?').get(uuid) as Row | undefined;
    if (row === undefined) return undefined;
    const t = this.toTenant(row);
    const a = Buffer.from(key);
    const b = Buffer.from(t.key);
    return a.length === b.length && timingSafeEqual(a, b) ? t : undefined;
  }

  private toTenant(r: Row): Tenant {
    return { name: str(r, 'name'), uuid: str(r, 'uuid'), key: str(r, 'key'), admin: r.admin === 1, created: Number(r.created) };
  }

  // --- actions ---

  getAction(namespace: string, name: string): ActionDoc | undefined {
    const row = this.q('SELECT doc FROM actions WHERE namespace = ? AND name = ?').get(namespace, name) as Row | undefined;
    return row === undefined ? undefined : (JSON.parse(str(row, 'doc')) as ActionDoc);
  }

  putAction(doc: ActionDoc): void {
    this.q('INSERT INTO actions (namespace, name, doc, updated) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated')
      .run(doc.namespace, doc.name, JSON.stringify(doc), doc.updated);
  }

  deleteAction(namespace: string, name: string): void {
    this.q('DELETE FROM actions WHERE namespace = ? AND name = ?').run(namespace, name);
    this.q('DELETE FROM profiles WHERE namespace = ? AND name = ?').run(namespace, name);
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
    const row = this.q('SELECT profile FROM profiles WHERE namespace = ? AND name = ?').get(namespace, name) as Row | undefined;
    if (row === undefined) return undefined;
    // A row written before T_mem = own + file held the limit there: the parts decide.
    const p = JSON.parse(str(row, 'profile')) as Profile;
    return { ...p, T_mem: profileMem(p) };
  }

  /** Folds one activation's peaks into the action's observed profile; writes only when it grew. */
  observePeaks(action: ActionDoc, ownPeakBytes: number, filePeakBytes: number): void {
    const prev = this.observedProfile(action.namespace, action.name);
    const next = foldPeaks(prev, ownPeakBytes, filePeakBytes);
    if (prev !== undefined && prev.ownPeakBytes === next.ownPeakBytes && prev.filePeakBytes === next.filePeakBytes && prev.T_mem === next.T_mem) return;
    this.q('INSERT INTO profiles (namespace, name, profile, samples) VALUES (?, ?, ?, 1) ON CONFLICT (namespace, name) DO UPDATE SET profile = excluded.profile, samples = samples + 1')
      .run(action.namespace, action.name, JSON.stringify(next));
  }

  // --- activations ---

  begin(meta: { activationId: string; namespace: string; name: string; subject: string; version: string; start: number }): void {
    this.q('INSERT INTO activations (id, namespace, name, start, running, meta, record) VALUES (?, ?, ?, ?, 1, ?, NULL)')
      .run(meta.activationId, meta.namespace, meta.name, meta.start, JSON.stringify(meta));
  }

  finish(record: ActivationRecord): void {
    this.q('UPDATE activations SET running = 0, start = ?, record = ? WHERE id = ?').run(record.start, JSON.stringify(record), record.activationId);
  }

  /** The finished record, `running` while it runs, or undefined. */
  getActivation(namespace: string, id: string): ActivationRecord | 'running' | undefined {
    const row = this.q('SELECT running, record FROM activations WHERE id = ? AND namespace = ?').get(id, namespace) as Row | undefined;
    if (row === undefined) return undefined;
    return row.running === 1 ? 'running' : (JSON.parse(str(row, 'record')) as ActivationRecord);
  }

  /** Finished activations, newest first. */
  listActivations(namespace: string, q: ActivationQuery): ActivationRecord[] {
    const where = ['namespace = ?', 'running = 0'];
    const args: (string | number)[] = [namespace];
    if (q.name !== undefined) { where.push('name = ?'); args.push(q.name); }
    if (q.since !== undefined) { where.push('start >= ?'); args.push(q.since); }
    if (q.upto !== undefined) { where.push('start <= ?'); args.push(q.upto); }
    const sql = `SELECT record FROM activations WHERE ${where.join(' AND ')} ORDER BY start DESC, id LIMIT ? OFFSET ?`;
    return (this.db.prepare(sql).all(...args, q.limit, q.skip) as Row[]).map((r) => JSON.parse(str(r, 'record')) as ActivationRecord);
  }

  /**
   * Activations left running by a controller that died: each becomes a finished record with
   * "whisk internal error", so a client polling for it gets an answer. Returns their ids.
   */
  failInFlight(now: number): string[] {
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
    return ids;
  }
}
