/**
 * The profiler's core (§3.4.1): from the peaks of runs on the user's dummy inputs to an action's
 * profile, and the annotations that carry them. Running the action is the node agent's job, behind
 * {@link ProfileRunner}; this file does no I/O.
 *
 * A run's `T_mem` is the function's own peak memory without file pages plus the peak bytes of its
 * files (in memory and on disk): the cgroup's own peak counts in-memory files and page cache, so it
 * would count the files twice. The profile keeps the largest run; `T_lim` is the action's limit.
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

export type ProfileSource = 'dummy-inputs' | 'activations' | 'manual';

export interface Profile {
  /** `T_mem`, bytes: the largest `ownPeak + filePeak` over the runs. */
  readonly tMem: number;
  /** The two parts of that run. */
  readonly ownPeak: number;
  readonly filePeak: number;
  readonly source: ProfileSource;
  readonly runs: number;
  /** The input-sensitive model, once learned from activations. */
  readonly fit?: InputModel;
}

/** The profile of a set of runs: the largest `T_mem` (the first on ties). */
export function profileFromRuns(runs: readonly RunPeaks[], source: ProfileSource): Profile {
  let best: RunPeaks | undefined;
  for (const r of runs) if (best === undefined || runMem(r) > runMem(best)) best = r;
  if (best === undefined) throw new EphemeraError('EPH_PROFILE_INVALID', 'a profile needs at least one run; give at least one dummy input');
  return { tMem: runMem(best), ownPeak: best.ownPeak, filePeak: best.filePeak, source, runs: runs.length };
}

/** The scheduler's view of an action with this profile and memory limit. */
export const taskOf = (profile: Profile, limit: number): TaskProfile => ({ limit, mem: profile.tMem });

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
  return profileFromRuns(runs, 'dummy-inputs');
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
    if (required) throw invalid(`${PROFILE_ANNOTATION}: missing "${key}"; give it in bytes (e.g. 270532608) or with a unit (e.g. "258M")`);
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
  throw invalid(`${PROFILE_ANNOTATION}: "${key}" must be whole bytes ≥ 0 or a size such as "258M", got ${JSON.stringify(v)}`);
}

/**
 * Reads an `ephemera.profile` value (an object or its JSON text). `tMem` may be given alone, or as
 * `ownPeak` and `filePeak` (then `tMem` is their sum; if all three are given they must agree).
 */
export function decodeProfile(value: unknown): Profile {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v) as unknown;
    } catch (e) {
      throw invalid(`${PROFILE_ANNOTATION}: not JSON (${e instanceof Error ? e.message : String(e)}); write e.g. {"tMem": "258M"}`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${PROFILE_ANNOTATION}: expected an object such as {"tMem": "258M"}, got ${shown(v)}`);
  const o = v as Record<string, unknown>;
  const own = bytesField(o, 'ownPeak', false);
  const file = bytesField(o, 'filePeak', false);
  const tMem = bytesField(o, 'tMem', own === undefined || file === undefined);
  const total = tMem ?? (own ?? 0) + (file ?? 0);
  if (own !== undefined && file !== undefined && tMem !== undefined && own + file !== tMem) {
    throw invalid(`${PROFILE_ANNOTATION}: tMem ${tMem} is not ownPeak ${own} + filePeak ${file}; give tMem alone or the two parts`);
  }
  const source = o['source'] ?? 'manual';
  if (source !== 'dummy-inputs' && source !== 'activations' && source !== 'manual') throw invalid(`${PROFILE_ANNOTATION}: source must be dummy-inputs, activations or manual, got ${JSON.stringify(source)}`);
  const runs = o['runs'] ?? 0;
  if (typeof runs !== 'number' || !Number.isSafeInteger(runs) || runs < 0) throw invalid(`${PROFILE_ANNOTATION}: runs must be a whole number, got ${JSON.stringify(runs)}`);
  const fit = o['fit'];
  const base: Profile = { tMem: total, ownPeak: own ?? total, filePeak: file ?? 0, source, runs };
  if (fit === undefined) return base;
  return { ...base, fit: decodeModel(fit) };
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
