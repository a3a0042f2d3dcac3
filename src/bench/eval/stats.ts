/** Summary statistics of repeated measurements: the median and how far the samples spread. */

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max − min) / median, the relative spread; 0 for a single sample. */
  readonly spread: number;
}

/** @throws {RangeError} for an empty list: a summary of nothing has no median. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new RangeError('summarize needs at least one value');
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  const min = s[0] as number;
  const max = s[s.length - 1] as number;
  return { n: s.length, median, min, max, spread: median > 0 ? (max - min) / median : 0 };
}

/** Reduction of `value` against `baseline` in percent: positive when `value` is faster. */
export function reductionPct(value: number, baseline: number): number {
  return baseline > 0 ? (1 - value / baseline) * 100 : Number.NaN;
}
