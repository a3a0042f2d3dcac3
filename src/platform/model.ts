/**
 * The platform's pure core: OpenWhisk's entities (actions, activation records) and the rules that
 * shape them. No I/O here: the HTTP shell, the store and the invoker call these functions.
 *
 * Shapes follow Apache OpenWhisk's controller (WhiskAction, WhiskActivation, ActivationResponse)
 * so that the official `openwhisk` npm client and the wsk CLI read them unchanged.
 */
import { PROFILE_ANNOTATION, PROFILE_INPUTS_ANNOTATION, decodeProfile, parseProfileInputs, type Profile } from '../scheduler/profile.js';

export { PROFILE_ANNOTATION, type Profile };

/** The kinds this platform runs. */
export const KINDS = ['python:3', 'blackbox', 'sequence'] as const;
export type Kind = (typeof KINDS)[number];

export interface KeyValue {
  readonly key: string;
  readonly value: unknown;
}

export interface Exec {
  readonly kind: Kind;
  /** python:3: the source, or a base64 zip holding `__main__.py` when `binary`. */
  readonly code?: string;
  readonly binary?: boolean;
  /** The function to call; OpenWhisk's default is `main`. */
  readonly main?: string;
  /** blackbox: a local Docker image that speaks the action protocol. */
  readonly image?: string;
  /** sequence: fully qualified action names, `/namespace/name`, run in order. */
  readonly components?: readonly string[];
}

export interface Limits {
  /** Milliseconds an activation may run. */
  readonly timeout: number;
  /** The container's memory in MB. */
  readonly memory: number;
  /** MB of log lines kept per activation. */
  readonly logs: number;
  /** Activations per container at a time: always 1 here. */
  readonly concurrency: number;
}

export interface ActionDoc {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly publish: boolean;
  readonly exec: Exec;
  readonly parameters: readonly KeyValue[];
  readonly annotations: readonly KeyValue[];
  readonly limits: Limits;
  /** Epoch ms of the last create or update. */
  readonly updated: number;
}

/** OpenWhisk's four outcomes, in statusCode order. */
export const STATUSES = ['success', 'application error', 'action developer error', 'whisk internal error'] as const;
export type Status = (typeof STATUSES)[number];

export interface ActivationResponse {
  readonly status: Status;
  readonly statusCode: 0 | 1 | 2 | 3;
  readonly success: boolean;
  readonly result: Readonly<Record<string, unknown>>;
}

export interface ActivationRecord {
  readonly activationId: string;
  readonly namespace: string;
  readonly name: string;
  readonly subject: string;
  readonly version: string;
  readonly publish: boolean;
  readonly start: number;
  readonly end: number;
  readonly duration: number;
  readonly logs: readonly string[];
  readonly annotations: readonly KeyValue[];
  readonly response: ActivationResponse;
  /** The enclosing sequence's activation, for a component's record. */
  readonly cause?: string;
}

/** What the daemon inside the container reported about one activation. */
export interface EphemeraStats {
  readonly pool: string;
  readonly initialBytes: number;
  readonly grantedBytes: number;
  readonly node: string;
  readonly fast_reads: number;
  readonly fast_writes: number;
  readonly slow_ops: number;
  readonly evictions: number;
  /** The run's peak bytes of in-memory files. */
  readonly bytes_in_memory_peak: number;
  /** The run's own peak memory (with the reserve that keeps its files in memory) and peak file bytes. */
  readonly ownPeakBytes?: number;
  readonly filePeakBytes?: number;
}

// An action's memory profile, the `ephemera.profile` annotation, is the scheduler's `Profile`
// (src/scheduler/profile.ts): one format for the platform, the profile book and the extender.

/** OpenWhisk's bound on the actions one sequence may run. */
export const MAX_SEQUENCE_ACTIONS = 50;

/**
 * Limits this platform accepts. OpenWhisk's defaults are memory 128–512 MB, timeout 100 ms–5 min;
 * the memory range is wider here (see docs/PROTOCOL.md) so that the paper's small I/O functions
 * (tens of MB) and larger ones can both be deployed.
 */
export const LIMIT_RANGES = {
  memory: { min: 32, max: 2048, default: 256, unit: 'MB' },
  timeout: { min: 100, max: 300_000, default: 60_000, unit: 'ms' },
  logs: { min: 0, max: 10, default: 10, unit: 'MB' },
  concurrency: { min: 1, max: 1, default: 1, unit: 'activations per container' },
} as const;

export type LimitName = keyof typeof LIMIT_RANGES;

/** OpenWhisk's entity-name rule: word characters, then also `@ . -` and space, at most 256. */
const NAME_RE = /^(?:\w|\w[\w@ .-]*[\w@.-])$/;

/** Why `name` is not a valid entity or namespace name, or null when it is. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'it is empty';
  if (name.length > 256) return `it is ${name.length} characters long; the most is 256`;
  if (!NAME_RE.test(name)) {
    return 'it must start with a letter, digit or underscore and hold only letters, digits, underscores, @, ., - and spaces (not ending in a space)';
  }
  return null;
}

/** A problem with one part of a request: what was wrong and what to do. */
export class Invalid extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Invalid';
  }
}

/** Fills defaults into `given` (over `base` for an update) and checks each limit's range. */
export function resolveLimits(given: Partial<Limits> | undefined, base?: Limits): Limits {
  const out: Record<string, number> = {};
  for (const [key, range] of Object.entries(LIMIT_RANGES) as [LimitName, (typeof LIMIT_RANGES)[LimitName]][]) {
    const v = given?.[key] ?? base?.[key] ?? range.default;
    if (!Number.isInteger(v) || v < range.min || v > range.max) {
      throw new Invalid(
        `limits.${key} must be an integer from ${range.min} to ${range.max} (${range.unit}), got ${JSON.stringify(v)}`,
      );
    }
    out[key] = v;
  }
  return out as unknown as Limits;
}

/** A bare name in the caller's namespace or `/ns/name`, as sequence components are written. */
export function qualify(component: string, callerNamespace: string): { namespace: string; name: string } {
  const parts = component.split('/');
  let ns: string;
  let name: string;
  if (parts.length === 1) {
    ns = callerNamespace;
    name = parts[0] ?? '';
  } else if (parts.length === 3 && parts[0] === '') {
    ns = parts[1] === '_' ? callerNamespace : (parts[1] ?? '');
    name = parts[2] ?? '';
  } else {
    throw new Invalid(
      `sequence component ${JSON.stringify(component)} is not an action name; write "/namespace/name" or "name" (packages are not supported)`,
    );
  }
  const bad = nameProblem(ns) ?? nameProblem(name);
  if (bad !== null) throw new Invalid(`sequence component ${JSON.stringify(component)} is not valid: ${bad}`);
  return { namespace: ns, name };
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/**
 * Decides whether python code is a base64 zip (OpenWhisk infers `binary` from the code), and checks
 * that a zip holds `__main__.py`, the entry point the Python runtime looks for.
 */
export function pythonCodeIsBinary(code: string, declared: boolean | undefined): boolean {
  const t = code.trim();
  const looksBase64 = t.length > 0 && t.length % 4 === 0 && BASE64_RE.test(t);
  const bytes = looksBase64 ? Buffer.from(t, 'base64') : undefined;
  const isZip = bytes !== undefined && bytes.subarray(0, 4).equals(ZIP_MAGIC);
  if (declared === true && !isZip) {
    throw new Invalid('exec.binary is true but exec.code is not a base64-encoded zip file; send the zip bytes as base64, or the source as a string with binary false');
  }
  if (!isZip) return false;
  // File names are stored uncompressed in the zip's headers: the entry point must be among them.
  if (!bytes.includes('__main__.py')) {
    throw new Invalid('the zip in exec.code has no __main__.py; a python:3 zip action needs __main__.py at the top of the archive, defining the main function');
  }
  return true;
}

/** The action's parameters as one object. */
export function paramsObject(list: readonly KeyValue[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list) out[key] = value;
  return out;
}

export function annotation(list: readonly KeyValue[], key: string): unknown {
  return list.find((a) => a.key === key)?.value;
}

/** `list` with `key` set to `value` (replacing an earlier one), or removed when `value` is undefined. */
export function withAnnotation(list: readonly KeyValue[], key: string, value: unknown): KeyValue[] {
  const out = list.filter((a) => a.key !== key);
  if (value !== undefined) out.push({ key, value });
  return out;
}

/**
 * OpenWhisk's merge: the action's defaults, then the invocation's. Parameters the action marks
 * final (annotation `final: true`) may not be overridden.
 */
export function mergeParams(action: ActionDoc, invocation: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const defaults = paramsObject(action.parameters);
  if (annotation(action.annotations, 'final') === true) {
    const clash = Object.keys(invocation).filter((k) => Object.hasOwn(defaults, k));
    if (clash.length > 0) {
      throw new Invalid(
        `the action's parameters are final and the invocation tries to override ${clash.map((k) => JSON.stringify(k)).join(', ')}; leave them out of the invocation`,
      );
    }
  }
  return { ...defaults, ...invocation };
}

export interface PutAction {
  readonly exec?: Exec;
  readonly parameters?: readonly KeyValue[];
  readonly annotations?: readonly KeyValue[];
  readonly limits?: Partial<Limits>;
  readonly publish?: boolean;
}

function bumpVersion(v: string): string {
  const parts = v.split('.').map(Number);
  const patch = (parts[2] ?? 0) + 1;
  return `${parts[0] ?? 0}.${parts[1] ?? 0}.${patch}`;
}

/**
 * A new action from a PUT body, or `existing` updated by one (OpenWhisk's overwrite: whatever the
 * body gives replaces the old value, the rest is kept, the version's patch number goes up).
 *
 * @throws {Invalid} when the body's exec, limits or profile are unusable
 */
export function buildAction(
  namespace: string,
  name: string,
  body: PutAction,
  existing: ActionDoc | undefined,
  now: number,
): ActionDoc {
  const execIn = body.exec ?? existing?.exec;
  if (execIn === undefined) throw new Invalid('the request has no exec; give exec.kind and exec.code (or exec.image, exec.components)');
  let exec: Exec;
  switch (execIn.kind) {
    case 'python:3': {
      if (typeof execIn.code !== 'string' || execIn.code.trim() === '') {
        throw new Invalid('exec.code is missing or empty; a python:3 action needs its source (or a base64 zip with __main__.py) in exec.code');
      }
      const binary = pythonCodeIsBinary(execIn.code, execIn.binary);
      exec = { kind: 'python:3', code: execIn.code, binary, ...(execIn.main === undefined ? {} : { main: execIn.main }) };
      break;
    }
    case 'blackbox': {
      if (typeof execIn.image !== 'string' || execIn.image === '') {
        throw new Invalid('exec.image is missing; a blackbox action names a local Docker image that implements /init and /run');
      }
      const code = execIn.code ?? '';
      exec = {
        kind: 'blackbox',
        image: execIn.image,
        code,
        binary: code === '' ? false : pythonCodeIsBinary(code, execIn.binary),
        ...(execIn.main === undefined ? {} : { main: execIn.main }),
      };
      break;
    }
    case 'sequence': {
      const comps = execIn.components;
      if (comps === undefined || comps.length === 0) {
        throw new Invalid('exec.components is missing or empty; a sequence lists its actions as "/namespace/name"');
      }
      exec = { kind: 'sequence', components: comps.map((c) => {
        const q = qualify(c, namespace);
        return `/${q.namespace}/${q.name}`;
      }) };
      break;
    }
  }
  const limits = resolveLimits(body.limits, existing?.limits);
  let annotations = [...(body.annotations ?? existing?.annotations ?? [])];
  annotations = withAnnotation(annotations, 'exec', exec.kind);
  const profile = annotation(annotations, PROFILE_ANNOTATION);
  if (profile !== undefined) annotations = withAnnotation(annotations, PROFILE_ANNOTATION, checkUserProfile(profile));
  const inputs = annotation(annotations, PROFILE_INPUTS_ANNOTATION);
  if (inputs !== undefined) {
    try {
      parseProfileInputs(inputs);
    } catch (err) {
      throw new Invalid(`annotation ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return {
    namespace,
    name,
    version: existing === undefined ? '0.0.1' : bumpVersion(existing.version),
    publish: body.publish ?? existing?.publish ?? false,
    exec,
    parameters: [...(body.parameters ?? existing?.parameters ?? [])],
    annotations,
    limits,
    updated: now,
  };
}

/**
 * A profile given on a saved action, checked (the one decoder: src/scheduler/profile.ts). One the
 * platform wrote (`profiled`, `observed`: GET shows it, and a client may send the action back with
 * it) may predate the rule `T_mem = ownPeakBytes + filePeakBytes` (its `T_mem` was the limit then):
 * its parts decide.
 */
function checkUserProfile(value: unknown): Profile {
  let v = value;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if ((o['source'] === 'profiled' || o['source'] === 'observed') && o['ownPeakBytes'] !== undefined) v = { ...o, T_mem: undefined };
  }
  try {
    return decodeProfile(v);
  } catch (err) {
    throw new Invalid(`annotation ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The profile an action runs with: the user's when set by hand, else the largest peaks observed. */
export function effectiveProfile(action: ActionDoc, observed: Profile | undefined): Profile | undefined {
  const user = annotation(action.annotations, PROFILE_ANNOTATION) as Profile | undefined;
  if (user !== undefined && user.source !== 'observed') return user;
  return observed;
}

/** The observed profile after one more activation's peaks (the largest seen so far). */
export function foldPeaks(prev: Profile | undefined, ownPeakBytes: number, filePeakBytes: number): Profile {
  const own = Math.max(prev?.ownPeakBytes ?? 0, ownPeakBytes);
  const file = Math.max(prev?.filePeakBytes ?? 0, filePeakBytes);
  return { T_mem: own + file, ownPeakBytes: own, filePeakBytes: file, source: 'observed' };
}

/** The list view of an action: OpenWhisk leaves the code out of collection listings. */
export function actionSummary(a: ActionDoc): Record<string, unknown> {
  return {
    namespace: a.namespace,
    name: a.name,
    version: a.version,
    publish: a.publish,
    annotations: a.annotations,
    limits: a.limits,
    exec: { binary: a.exec.binary ?? false },
    updated: a.updated,
  };
}

export function response(statusCode: 0 | 1 | 2 | 3, result: Readonly<Record<string, unknown>>): ActivationResponse {
  return { status: STATUSES[statusCode], statusCode, success: statusCode === 0, result };
}

/** OpenWhisk's own messages for developer errors (ActivationResponse / Messages.scala). */
export const MESSAGES = {
  timedOut: (ms: number) => `The action exceeded its time limits of ${ms} milliseconds.`,
  memoryExhausted: 'The action exhausted its memory and was aborted.',
  abnormalInit: 'The action did not initialize and exited unexpectedly.',
  abnormalRun: 'The action did not produce a valid response and exited unexpectedly.',
  notADictionary: 'The action did not return a dictionary.',
  lostInFlight:
    'The activation was in flight when the controller stopped (killed or crashed); it did not complete and its result is lost. Invoke the action again.',
} as const;

/**
 * How the runtime's answer to /run becomes OpenWhisk's response: a 200 with an object is the
 * result; a non-200 with `{error}` is an application error; anything else the action got wrong.
 */
export function runResponse(statusCode: number, body: unknown): ActivationResponse {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return response(2, { error: `${MESSAGES.abnormalRun} It answered: ${body.slice(0, 200)}` });
    }
  }
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!isObject) return response(2, { error: MESSAGES.notADictionary });
  const obj = value as Record<string, unknown>;
  if (statusCode === 200) return response(0, obj);
  if (Object.hasOwn(obj, 'error')) return response(1, obj);
  return response(2, { error: `${MESSAGES.abnormalRun} The runtime answered status ${statusCode}.`, ...obj });
}

/** The activation's annotations as OpenWhisk writes them, with Ephemera's own beside them. */
export function recordAnnotations(a: {
  readonly action: ActionDoc;
  readonly waitTime: number;
  readonly initTime?: number;
  readonly timedOut: boolean;
  readonly ephemera?: EphemeraStats;
  readonly causedBy?: string;
  readonly topmost?: boolean;
}): KeyValue[] {
  const out: KeyValue[] = [
    { key: 'path', value: `${a.action.namespace}/${a.action.name}` },
    { key: 'waitTime', value: a.waitTime },
    { key: 'kind', value: a.action.exec.kind },
    { key: 'timeout', value: a.timedOut },
    { key: 'limits', value: a.action.limits },
  ];
  if (a.initTime !== undefined) out.push({ key: 'initTime', value: a.initTime });
  if (a.causedBy !== undefined) out.push({ key: 'causedBy', value: a.causedBy });
  if (a.topmost === true) out.push({ key: 'topmost', value: true });
  if (a.ephemera !== undefined) out.push({ key: 'ephemera', value: a.ephemera });
  return out;
}

/** The fields `GET …/activations` returns without `docs=true` (OpenWhisk's summary). */
export function activationSummary(r: ActivationRecord): Record<string, unknown> {
  return {
    activationId: r.activationId,
    namespace: r.namespace,
    name: r.name,
    subject: r.subject,
    version: r.version,
    publish: r.publish,
    start: r.start,
    end: r.end,
    duration: r.duration,
    annotations: r.annotations,
    statusCode: r.response.statusCode,
  };
}

/** Keeps log lines within `limitMb`, noting the cut as OpenWhisk does. */
export function capLogs(lines: readonly string[], limitMb: number): string[] {
  const limit = limitMb * 1024 * 1024;
  let total = 0;
  const out: string[] = [];
  for (const line of lines) {
    total += Buffer.byteLength(line) + 1;
    if (total > limit) {
      out.push(`Logs were truncated because the total bytes size exceeds the limit of ${limit} bytes.`);
      break;
    }
    out.push(line);
  }
  return out;
}

/** A 32-hex-digit activation id, as OpenWhisk's. */
export function isActivationId(id: string): boolean {
  return /^[0-9a-f]{32}$/.test(id);
}
