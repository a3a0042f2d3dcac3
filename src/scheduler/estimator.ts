/**
 * Input-sensitive profiles (beyond the paper, which names it as future work): `T_mem` learned from
 * real activations as a function of the payload size, instead of one worst case for every input.
 *
 * Each activation reports its peaks and its input size. Over a window of the latest samples we fit
 * `T_mem ≈ intercept + slope · inputBytes` by least squares, and reserve
 *
 *     fit(x) + the largest amount by which a sample in the window exceeded its fit + margin · fit(x)
 *
 * capped at the largest `T_mem` ever seen when `x` is within the sizes seen (never more than the
 * fixed worst case would reserve), and at least that largest one when `x` is beyond them (no
 * extrapolating below what is known). With fewer than `minSamples`
 * samples, or inputs all of one size, the estimate is the largest `T_mem` seen: the paper's profile.
 */
import { EphemeraError } from '../core/errors.js';

/** One run's peaks, as the daemon measures them. */
export interface RunPeaks {
  /** The function's own peak memory, without file pages, bytes. */
  readonly ownPeak: number;
  /** The peak bytes of its files, in memory and on disk. */
  readonly filePeak: number;
  /** The size of the input that produced them (the JSON of the parameters), bytes. */
  readonly inputBytes: number;
}

/** `T_mem` of one run: its own peak plus its peak file bytes (the files could all live in memory). */
export const runMem = (p: RunPeaks): number => p.ownPeak + p.filePeak;

/** A fitted model, as stored in the `ephemera.profile` annotation's `fit` field. */
export interface InputModel {
  readonly intercept: number;
  readonly slope: number;
  /** The largest amount by which a sample exceeded the fit, bytes (≥ 0). */
  readonly residual: number;
  /** Proportional safety margin on top (0.1 = 10 %). */
  readonly margin: number;
  /** The largest input and the largest `T_mem` in the samples. */
  readonly maxInput: number;
  readonly maxMem: number;
  readonly samples: number;
}

export interface EstimatorOptions {
  /** Samples kept (the latest). @default 256 */
  readonly window?: number;
  /** Below this many samples the estimate is the largest seen. @default 8 */
  readonly minSamples?: number;
  /** @default 0.1 */
  readonly margin?: number;
}

export interface Estimate {
  readonly bytes: number;
  /** `fit`: from the model; `max`: the largest seen (too few samples, or no spread of input sizes). */
  readonly basis: 'fit' | 'max';
}

/** Least-squares fit of `T_mem` against input size over `samples`; null when it cannot be fitted. */
export function fitModel(samples: readonly RunPeaks[], margin: number, minSamples: number): InputModel | null {
  const n = samples.length;
  if (n < Math.max(2, minSamples)) return null;
  let sx = 0;
  let sy = 0;
  let maxInput = 0;
  let maxMem = 0;
  for (const s of samples) {
    const y = runMem(s);
    sx += s.inputBytes;
    sy += y;
    if (s.inputBytes > maxInput) maxInput = s.inputBytes;
    if (y > maxMem) maxMem = y;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (const s of samples) {
    const dx = s.inputBytes - mx;
    sxx += dx * dx;
    sxy += dx * (runMem(s) - my);
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let residual = 0;
  for (const s of samples) residual = Math.max(residual, runMem(s) - (intercept + slope * s.inputBytes));
  return { intercept, slope, residual, margin, maxInput, maxMem, samples: n };
}

/**
 * What to reserve for an input of `inputBytes` under `model` (see the module comment). `worst` is
 * the largest `T_mem` ever seen (the fixed profile), which may have left the model's window: the
 * estimate never exceeds it within the sizes seen, and never falls below it beyond them.
 */
export function estimateWith(model: InputModel, inputBytes: number, worst = model.maxMem): number {
  const fit = Math.max(0, model.intercept + model.slope * inputBytes);
  const est = Math.ceil(fit + model.residual + model.margin * fit);
  const cap = Math.max(worst, model.maxMem);
  return inputBytes > model.maxInput ? Math.max(est, cap) : Math.min(est, cap);
}

function checkPeaks(p: RunPeaks): RunPeaks {
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new EphemeraError('EPH_PROFILE_INVALID', `activation peaks: ${k} must be a whole number of bytes ≥ 0, got ${JSON.stringify(v)}`);
    }
  }
  return p;
}

/** The learned profile of one action. */
export class InputSensitiveEstimator {
  private readonly window: number;
  private readonly minSamples: number;
  private readonly margin: number;
  private readonly samples: RunPeaks[] = [];
  private next = 0;
  private maxSeen = 0;
  private model: InputModel | null | undefined = undefined;

  constructor(options: EstimatorOptions = {}) {
    this.window = options.window ?? 256;
    this.minSamples = options.minSamples ?? 8;
    this.margin = options.margin ?? 0.1;
    if (!Number.isSafeInteger(this.window) || this.window < 2) throw new EphemeraError('EPH_PROFILE_INVALID', `estimator window must be a whole number ≥ 2, got ${this.window}`);
    if (!(this.margin >= 0)) throw new EphemeraError('EPH_PROFILE_INVALID', `estimator margin must be ≥ 0, got ${this.margin}`);
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  /** Records an activation's (or a profiling run's) peaks. */
  observe(peaks: RunPeaks): void {
    checkPeaks(peaks);
    if (this.samples.length < this.window) this.samples.push(peaks);
    else {
      this.samples[this.next] = peaks;
      this.next = (this.next + 1) % this.window;
    }
    this.maxSeen = Math.max(this.maxSeen, runMem(peaks));
    this.model = undefined;
  }

  /** The current model, or null while it falls back to the largest seen. */
  currentModel(): InputModel | null {
    if (this.model === undefined) this.model = fitModel(this.samples, this.margin, this.minSamples);
    return this.model;
  }

  /**
   * `T_mem` to reserve for an input of `inputBytes`; undefined before any sample. `worst` is a
   * largest `T_mem` known from elsewhere (the dummy-input profile), counted with the samples'.
   */
  estimate(inputBytes: number, worst = 0): Estimate | undefined {
    if (this.samples.length === 0) return undefined;
    const model = this.currentModel();
    // The largest ever seen stays the fallback, even once it has left the window.
    const largest = Math.max(this.maxSeen, worst);
    if (model === null) return { bytes: largest, basis: 'max' };
    return { bytes: estimateWith(model, inputBytes, largest), basis: 'fit' };
  }
}
