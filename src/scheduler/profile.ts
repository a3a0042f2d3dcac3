/**
 * The profiler's core (§3.4.1): from the peaks of runs on the user's dummy inputs to an action's
 * profile, and the annotations that carry them. Running the action is the node agent's job, behind
 * {@link ProfileRunner}; this file does no I/O.
 *
 * A run's `T_mem` is the function's own peak memory without file pages plus the peak bytes of its
 * files (in memory and on disk): the cgroup's own peak counts in-memory files and page cache, so it
 * would count the files twice. The profile keeps the largest run; `T_lim` is the action's limit.
 *
 * {@link Profile} is the one format of the `ephemera.profile` annotation: the platform writes and
 * shows it on actions, the scheduler's profile book keeps it, the extender reads it from pods.
 */
import { EphemeraError } from '../core/errors.js';
import { parseSize } from '../core/size.js';
import type { TaskProfile } from './algorithm.js';
import { runMem, type InputModel, type RunPeaks } from './estimator.js';

/** The action annotation holding the profile (the key the platform reads). */
export const PROFILE_ANNOTATION = 'ephemera.profile';
/** The action annotation holding the dummy inputs: a list of parameter objects. */
export const PROFILE_INPUTS_ANNOTATION = 'ephemera.profile-inputs';
/** At most this many dummy inputs (they run in parallel, one container each). */
export const MAX_PROFILE_INPUTS = 32;

/** `user`: set by hand; `profiled`: the profiler's runs on the dummy inputs; `observed`: learned from activations. */
export type ProfileSource = 'user' | 'profiled' | 'observed';

/**
 * An action's profile: the one format of the `ephemera.profile` annotation, as the platform shows
 * it on an action (and the profiler and the activations write it) and as the Kubernetes extender
 * reads it from a pod's `ephemera.dev/profile`. Sizes in bytes.
 */
export interface Profile {
  /** `T_mem` = `ownPeakBytes + filePeakBytes`: what the action needs, files in memory. */
  readonly T_mem: number;
  /** The function's own peak memory, without file pages. */
  readonly ownPeakBytes: number;
  /** The peak bytes of its files, in memory and on disk. */
  readonly filePeakBytes: number;
  readonly source: ProfileSource;
  /** How many runs it was taken from (absent when set by hand). */
  readonly runs?: number;
  /** The input-sensitive model, once learned from activations. */
  readonly fit?: InputModel;
}

/** `T_mem` of a profile, from its parts (a stored profile's `T_mem` may predate the rule). */
export const profileMem = (p: Pick<Profile, 'ownPeakBytes' | 'filePeakBytes'>): number => p.ownPeakBytes + p.filePeakBytes;

/** The profile of a set of runs: the largest `T_mem` (the first on ties). */
export function profileFromRuns(runs: readonly RunPeaks[], source: ProfileSource): Profile {
  let best: RunPeaks | undefined;
  for (const r of runs) if (best === undefined || runMem(r) > runMem(best)) best = r;
  if (best === undefined) throw new EphemeraError('EPH_PROFILE_INVALID', 'a profile needs at least one run; give at least one dummy input');
  return { T_mem: runMem(best), ownPeakBytes: best.ownPeak, filePeakBytes: best.filePeak, source, runs: runs.length };
}

/** The scheduler's view of an action with this profile and memory limit. */
export const taskOf = (profile: Profile, limit: number): TaskProfile => ({ limit, mem: profileMem(profile) });

/** Size of an invocation's input as the estimator counts it: the UTF-8 bytes of its JSON. */
export const payloadBytes = (params: unknown): number => (params === undefined ? 0 : Buffer.byteLength(shown(params, Infinity), 'utf8'));

/** A value as JSON for an error message, cut at `max` characters (`undefined` for nothing at all). */
export function shown(value: unknown, max = 80): string {
  const text = JSON.stringify(value) as string | undefined;
  return text === undefined ? 'undefined' : text.slice(0, max);
}

/** One profiling run, as the node agent is asked to do it. */
export interface ProfileRunRequest {
  /** The fully qualified action name (`/namespace/name`). */
  readonly action: string;
  /** `T_lim`: the container's memory limit, bytes. */
  readonly limit: number;
  readonly input: Readonly<Record<string, unknown>>;
  /** The run is abandoned (and the promise rejected) after this long. */
  readonly timeoutMs: number;
}

/**
 * Runs an action once, in a new container with the action's memory limit, created through the node
 * agent, and returns the peaks its daemon saw. Implemented by the node agent's client.
 */
export interface ProfileRunner {
  run(request: ProfileRunRequest): Promise<RunPeaks>;
}

/**
 * Profiles an action on all its dummy inputs in parallel. Any failed run fails the whole profile:
 * the failed input may be the largest, and a profile without it would under-reserve.
 * @throws {EphemeraError} `EPH_PROFILE_RUN_FAILED` listing each failed input
 */
export async function profileAction(
  runner: ProfileRunner,
  action: string,
  limit: number,
  inputs: readonly Readonly<Record<string, unknown>>[],
  timeoutMs: number,
): Promise<Profile> {
  if (inputs.length === 0) throw new EphemeraError('EPH_PROFILE_INVALID', `${action}: no dummy inputs to profile with; give ${PROFILE_INPUTS_ANNOTATION} as a list of parameter objects`);
  const settled = await Promise.allSettled(inputs.map((input) => runner.run({ action, limit, input, timeoutMs })));
  const failures: string[] = [];
  const runs: RunPeaks[] = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') runs.push(s.value);
    else failures.push(`input ${i}: ${s.reason instanceof Error ? s.reason.message : String(s.reason)}`);
  });
  if (failures.length > 0) {
    throw new EphemeraError('EPH_PROFILE_RUN_FAILED', `${action}: ${failures.length} of ${inputs.length} profiling runs failed (${failures.join('; ')}); fix the action or the input and deploy again`, {
      detail: { failures },
    });
  }
  return profileFromRuns(runs, 'profiled');
}

function invalid(message: string): EphemeraError {
  return new EphemeraError('EPH_PROFILE_INVALID', message);
}

/** The value of `ephemera.profile-inputs`: a non-empty list of parameter objects (or its JSON text). */
export function parseProfileInputs(value: unknown): Record<string, unknown>[] {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch (e) {
      throw invalid(`${PROFILE_INPUTS_ANNOTATION}: not JSON (${e instanceof Error ? e.message : String(e)}); write a list of parameter objects, e.g. [{"n": 1}, {"n": 1000}]`);
    }
  }
  if (!Array.isArray(v) || v.length === 0) throw invalid(`${PROFILE_INPUTS_ANNOTATION}: expected a non-empty list of parameter objects, got ${shown(v)}`);
  if (v.length > MAX_PROFILE_INPUTS) throw invalid(`${PROFILE_INPUTS_ANNOTATION}: ${v.length} inputs, at most ${MAX_PROFILE_INPUTS} (each runs in its own container); keep the smallest and the largest`);
  return v.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw invalid(`${PROFILE_INPUTS_ANNOTATION}[${i}]: expected a parameter object, got ${shown(item)}`);
    return item as Record<string, unknown>;
  });
}

function bytesField(obj: Record<string, unknown>, key: string, required: boolean): number | undefined {
  const v = obj[key];
  if (v === undefined) {
    if (required) throw invalid(`${PROFILE_ANNOTATION}: missing "${key}"; give ownPeakBytes and filePeakBytes (or T_mem alone) in bytes (e.g. 270532608) or with a unit (e.g. "258M")`);
    return undefined;
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string') {
    try {
      return parseSize(v, `${PROFILE_ANNOTATION}.${key}`);
    } catch (e) {
      throw invalid(e instanceof Error ? e.message : String(e));
    }
  }
  throw invalid(`${PROFILE_ANNOTATION}.${key} must be a non-negative integer number of bytes or a size such as "258M", got ${JSON.stringify(v)}`);
}

/**
 * Reads an `ephemera.profile` value (an object or its JSON text): `ownPeakBytes` and `filePeakBytes`
 * (then `T_mem`, if given, must be their sum), or `T_mem` alone (taken as the function's own).
 * Sizes are whole bytes or sizes with a unit (`"258M"`). `source` defaults to `user`.
 */
export function decodeProfile(value: unknown): Profile {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch (e) {
      throw invalid(`${PROFILE_ANNOTATION}: not JSON (${e instanceof Error ? e.message : String(e)}); write e.g. {"ownPeakBytes": "20M", "filePeakBytes": "238M"}`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${PROFILE_ANNOTATION}: expected an object such as {"ownPeakBytes": "20M", "filePeakBytes": "238M"}, got ${shown(v)}`);
  const o = v as Record<string, unknown>;
  const own = bytesField(o, 'ownPeakBytes', o['filePeakBytes'] !== undefined);
  const file = bytesField(o, 'filePeakBytes', own !== undefined);
  const tMem = bytesField(o, 'T_mem', own === undefined);
  if (own !== undefined && file !== undefined && tMem !== undefined && own + file !== tMem) {
    throw invalid(`${PROFILE_ANNOTATION}: T_mem ${tMem} is not ownPeakBytes ${own} + filePeakBytes ${file}; give T_mem alone or the two parts`);
  }
  const source = o['source'] ?? 'user';
  if (source !== 'user' && source !== 'profiled' && source !== 'observed') throw invalid(`${PROFILE_ANNOTATION}.source must be user, profiled or observed, got ${JSON.stringify(source)}`);
  const runs = o['runs'];
  if (runs !== undefined && (typeof runs !== 'number' || !Number.isSafeInteger(runs) || runs < 0)) throw invalid(`${PROFILE_ANNOTATION}.runs must be a whole number, got ${JSON.stringify(runs)}`);
  const ownPeakBytes = own ?? (tMem ?? 0);
  const filePeakBytes = file ?? 0;
  const fit = o['fit'];
  return {
    T_mem: ownPeakBytes + filePeakBytes,
    ownPeakBytes,
    filePeakBytes,
    source,
    ...(runs === undefined ? {} : { runs }),
    ...(fit === undefined ? {} : { fit: decodeModel(fit) }),
  };
}

function decodeModel(v: unknown): InputModel {
  if (typeof v !== 'object' || v === null) throw invalid(`${PROFILE_ANNOTATION}.fit: expected an object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const num = (k: string): number => {
    const x = o[k];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(`${PROFILE_ANNOTATION}.fit.${k}: expected a number, got ${JSON.stringify(x)}`);
    return x;
  };
  return { intercept: num('intercept'), slope: num('slope'), residual: num('residual'), margin: num('margin'), maxInput: num('maxInput'), maxMem: num('maxMem'), samples: num('samples') };
}

/** The annotation value for a profile (JSON, sizes in bytes). */
export function encodeProfile(p: Profile): string {
  return JSON.stringify(p);
}
