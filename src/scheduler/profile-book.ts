/**
 * Every action's profile in one place, as the platform uses them: the profiler's (or the user's)
 * profile from the `ephemera.profile` annotation, refined by every activation's peaks, and turned
 * into the task the scheduler and the Manager see for *this* invocation's input.
 *
 * For an invocation with `inputBytes` of input, `T_mem` is, in order:
 * 1. the input-sensitive estimate, once the action's estimator has a model (never above the
 *    largest `T_mem` known for inputs within the sizes seen, never below it beyond them);
 * 2. otherwise the largest of the profile's `T_mem` and every activation's (the paper's profile);
 * 3. otherwise, for an action never profiled nor run, `T_lim` itself: a task that neither lends
 *    nor borrows until something is known.
 */
import type { TaskProfile } from './algorithm.js';
import { InputSensitiveEstimator, runMem, type EstimatorOptions, type RunPeaks } from './estimator.js';
import { profileMem, type Profile } from './profile.js';

interface Entry {
  profile: Profile | undefined;
  readonly estimator: InputSensitiveEstimator;
  /** The activation with the largest `T_mem` so far. */
  largest: RunPeaks | undefined;
  observed: number;
}

export class ProfileBook {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly options: EstimatorOptions = {}) {}

  private entry(action: string): Entry {
    let e = this.entries.get(action);
    if (e === undefined) {
      e = { profile: undefined, estimator: new InputSensitiveEstimator(this.options), largest: undefined, observed: 0 };
      this.entries.set(action, e);
    }
    return e;
  }

  /** Sets the profile from the profiler or the annotation (replacing the previous one, keeping the activations seen). */
  setProfile(action: string, profile: Profile): void {
    this.entry(action).profile = profile;
  }

  /** Records one activation's peaks. */
  observe(action: string, peaks: RunPeaks): void {
    const e = this.entry(action);
    e.estimator.observe(peaks);
    if (e.largest === undefined || runMem(peaks) > runMem(e.largest)) e.largest = peaks;
    e.observed++;
  }

  /** The task for an invocation of `action` with memory limit `limit` and `inputBytes` of input. */
  task(action: string, limit: number, inputBytes: number): TaskProfile {
    const e = this.entries.get(action);
    const profiled = e?.profile === undefined ? 0 : profileMem(e.profile);
    const estimate = e?.estimator.estimate(inputBytes, profiled);
    if (estimate !== undefined) return { limit, mem: estimate.bytes };
    return { limit, mem: profiled > 0 ? profiled : limit };
  }

  /**
   * The profile to write back to `ephemera.profile`: the largest `T_mem` known (the profile's or an
   * activation's, with its two parts) and, once learned, the input-sensitive model.
   */
  profile(action: string): Profile | undefined {
    const e = this.entries.get(action);
    if (e === undefined) return undefined;
    const base = e.profile;
    const largest = e.largest;
    if (largest === undefined) return base;
    const runs = (base?.runs ?? 0) + e.observed;
    const fromRuns = base === undefined || runMem(largest) > profileMem(base);
    const learned: Profile = fromRuns
      ? { T_mem: runMem(largest), ownPeakBytes: largest.ownPeak, filePeakBytes: largest.filePeak, source: 'observed', runs }
      : { T_mem: profileMem(base), ownPeakBytes: base.ownPeakBytes, filePeakBytes: base.filePeakBytes, source: base.source, runs };
    const model = e.estimator.currentModel();
    return model === null ? learned : { ...learned, fit: model };
  }
}
