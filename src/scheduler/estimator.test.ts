// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import { estimateWith, fitModel, InputSensitiveEstimator, runMem, type RunPeaks } from './estimator.js';
import { profileFromRuns } from './profile.js';
import { mulberry32 } from '../core/random.js';

const KiB = 1024;
const MiB = 1024 * KiB;

test('the fit recovers a linear T_mem, reserves the worst residual on top, and never extrapolates below the largest seen', { timeout: 5_000 }, () => {
  const samples: RunPeaks[] = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ({ ownPeak: 10 * MiB + (i === 4 ? MiB : 0), filePeak: 3 * i * MiB, inputBytes: i * MiB }));
  const model = fitModel(samples, 0, 8);
  assert.ok(model);
  assert.ok(Math.abs(model.slope - 3) < 0.2, `slope ${model.slope}`);
  for (const s of samples) assert.ok(estimateWith(model, s.inputBytes) >= runMem(s), `covers its own samples (${s.inputBytes})`);
  assert.equal(estimateWith(model, 100 * MiB) >= model.maxMem, true);
  assert.ok(estimateWith(model, 100 * MiB) > 300 * MiB, 'beyond the seen sizes it follows the slope');
  assert.ok(estimateWith(model, MiB) <= model.maxMem);
  assert.equal(fitModel(samples.slice(0, 7), 0, 8), null, 'too few samples');
  assert.equal(fitModel(samples.map((s) => ({ ...s, inputBytes: 5 })), 0, 8), null, 'no spread of input sizes');
});

test('the estimator falls back to the largest T_mem seen while data are few, then follows the input', { timeout: 5_000 }, () => {
  const e = new InputSensitiveEstimator({ minSamples: 4, margin: 0.1 });
  assert.equal(e.estimate(10), undefined);
  e.observe({ ownPeak: 50 * MiB, filePeak: 100 * MiB, inputBytes: 50 * MiB });
  e.observe({ ownPeak: 50 * MiB, filePeak: 2 * MiB, inputBytes: MiB });
  assert.deepEqual(e.estimate(MiB), { bytes: 150 * MiB, basis: 'max' });
  e.observe({ ownPeak: 50 * MiB, filePeak: 20 * MiB, inputBytes: 10 * MiB });
  e.observe({ ownPeak: 50 * MiB, filePeak: 40 * MiB, inputBytes: 20 * MiB });
  const small = e.estimate(MiB);
  assert.equal(small?.basis, 'fit');
  assert.ok(small.bytes < 70 * MiB && small.bytes >= 52 * MiB, `small input: ${small.bytes}`);
  assert.throws(() => e.observe({ ownPeak: -1, filePeak: 0, inputBytes: 0 }), (err: unknown) => isEphemeraError(err, 'EPH_PROFILE_INVALID') && /ownPeak.*-1/.test(err.message));
  assert.throws(() => new InputSensitiveEstimator({ window: 1 }), (err: unknown) => isEphemeraError(err, 'EPH_PROFILE_INVALID'));
});

/**
 * A function that reads its input and writes a scratch file twice its size (plus a little noise),
 * on inputs from 64 KiB to 64 MiB spread evenly on a log scale: most inputs are small.
 */
function syntheticRun(inputBytes: number, rnd: () => number): RunPeaks {
  return {
    ownPeak: 40 * MiB + Math.floor(rnd() * 4 * MiB) + Math.floor(inputBytes * 0.05),
    filePeak: 2 * inputBytes + Math.floor(rnd() * 2 * MiB),
    inputBytes,
  };
}

interface Outcome {
  reservedMiB: number;
  shortfalls: number;
}

/** The same 2000 activations under the fixed worst case and under the estimate; deterministic. */
function simulate(seed: number): { fixed: Outcome; estimated: Outcome; fitted: number } {
  const rnd = mulberry32(seed);
  const dummy = [256 * KiB, 8 * MiB, 64 * MiB].map((x) => syntheticRun(x, rnd));
  let worst = profileFromRuns(dummy, 'profiled').T_mem;
  const est = new InputSensitiveEstimator();
  for (const d of dummy) est.observe(d);
  const fixed = { reservedMiB: 0, shortfalls: 0 };
  const estimated = { reservedMiB: 0, shortfalls: 0 };
  let fitted = 0;
  for (let i = 0; i < 2000; i++) {
    const x = Math.floor(64 * KiB * Math.pow(1024, rnd()));
    const run = syntheticRun(x, rnd);
    const need = runMem(run);
    const e = est.estimate(x);
    assert.ok(e);
    if (e.basis === 'fit') fitted++;
    fixed.reservedMiB += worst / MiB;
    if (need > worst) fixed.shortfalls++;
    estimated.reservedMiB += e.bytes / MiB;
    if (need > e.bytes) estimated.shortfalls++;
    // Both learn from every activation: the fixed one keeps the largest seen (what the platform does without a profiler).
    worst = Math.max(worst, need);
    est.observe(run);
  }
  return { fixed, estimated, fitted };
}

test('on a function whose file size scales with its input, the estimate reserves far less than the fixed worst case and causes no more shortfalls', { timeout: 10_000 }, (t) => {
  const diag = (m: string): void => t.diagnostic(m);
  for (const seed of [1, 2, 3]) {
    const { fixed, estimated, fitted } = simulate(seed);
    assert.ok(fitted > 1900, `the model is in use for almost every activation (${fitted})`);
    assert.ok(estimated.shortfalls <= fixed.shortfalls, `seed ${seed}: shortfalls estimate ${estimated.shortfalls} vs fixed ${fixed.shortfalls}`);
    diag(`seed ${seed}: reserved ${Math.round(estimated.reservedMiB)} MiB (estimate) vs ${Math.round(fixed.reservedMiB)} MiB (fixed worst case); shortfalls ${estimated.shortfalls} vs ${fixed.shortfalls}`);
    assert.ok(estimated.reservedMiB < 0.5 * fixed.reservedMiB, `seed ${seed}: reserved ${Math.round(estimated.reservedMiB)} MiB vs fixed ${Math.round(fixed.reservedMiB)} MiB`);
  }
});
