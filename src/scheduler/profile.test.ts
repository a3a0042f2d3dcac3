// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isEphemeraError } from '../core/errors.js';
import type { RunPeaks } from './estimator.js';
import { decodeProfile, encodeProfile, parseProfileInputs, payloadBytes, profileAction, profileFromRuns, taskOf, type ProfileRunner, type ProfileRunRequest } from './profile.js';

const MiB = 1024 * 1024;

test('T_mem is own peak (without file pages) plus peak file bytes, the largest run kept', { timeout: 5_000 }, () => {
  const p = profileFromRuns(
    [
      { ownPeak: 100 * MiB, filePeak: 10 * MiB, inputBytes: 1 },
      { ownPeak: 20 * MiB, filePeak: 238 * MiB, inputBytes: 2 },
      { ownPeak: 90 * MiB, filePeak: 20 * MiB, inputBytes: 3 },
    ],
    'profiled',
  );
  assert.deepEqual(p, { T_mem: 258 * MiB, ownPeakBytes: 20 * MiB, filePeakBytes: 238 * MiB, source: 'profiled', runs: 3 });
  assert.deepEqual(taskOf(p, 150 * MiB), { limit: 150 * MiB, mem: 258 * MiB });
  assert.throws(() => profileFromRuns([], 'profiled'), (e: unknown) => isEphemeraError(e, 'EPH_PROFILE_INVALID'));
});

/** A runner at the node agent's seam, for the orchestration logic only (the real one runs containers). */
class ScriptedRunner implements ProfileRunner {
  readonly requests: ProfileRunRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly answer: (input: Readonly<Record<string, unknown>>) => RunPeaks | Error) {}
  async run(request: ProfileRunRequest): Promise<RunPeaks> {
    this.requests.push(request);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    const a = this.answer(request.input);
    if (a instanceof Error) throw a;
    return a;
  }
}

test('profileAction runs every dummy input in parallel with the action limit and keeps the largest', { timeout: 5_000 }, async () => {
  const runner = new ScriptedRunner((input) => ({ ownPeak: 30 * MiB, filePeak: Number(input['n']) * MiB, inputBytes: payloadBytes(input) }));
  const p = await profileAction(runner, '/ns/act', 256 * MiB, [{ n: 1 }, { n: 100 }, { n: 10 }], 60_000);
  assert.equal(p.T_mem, 130 * MiB);
  assert.equal(p.source, 'profiled');
  assert.equal(p.runs, 3);
  assert.equal(runner.maxInFlight, 3);
  assert.deepEqual(runner.requests.map((r) => [r.action, r.limit, r.timeoutMs]), Array(3).fill(['/ns/act', 256 * MiB, 60_000]));
});

test('one failed profiling run fails the profile, naming the input and the reason', { timeout: 5_000 }, async () => {
  const runner = new ScriptedRunner((input) => (input['n'] === 2 ? new Error('container exited with 137') : { ownPeak: 1, filePeak: 1, inputBytes: 1 }));
  await assert.rejects(
    profileAction(runner, '/ns/act', MiB, [{ n: 1 }, { n: 2 }], 1000),
    (e: unknown) => isEphemeraError(e, 'EPH_PROFILE_RUN_FAILED') && /1 of 2 .*input 1: container exited with 137/.test(e.message),
  );
  await assert.rejects(profileAction(runner, '/ns/act', MiB, [], 1000), (e: unknown) => isEphemeraError(e, 'EPH_PROFILE_INVALID'));
});

test('ephemera.profile-inputs: a list of parameter objects, as a value or JSON text', { timeout: 5_000 }, () => {
  assert.deepEqual(parseProfileInputs('[{"n": 1}, {"n": 2}]'), [{ n: 1 }, { n: 2 }]);
  assert.deepEqual(parseProfileInputs([{ a: 'x' }]), [{ a: 'x' }]);
  const bad = (v: unknown, re: RegExp): void => assert.throws(() => parseProfileInputs(v), (e: unknown) => isEphemeraError(e, 'EPH_PROFILE_INVALID') && re.test(e.message));
  bad('[{', /not JSON/);
  bad([], /non-empty list/);
  bad({ n: 1 }, /non-empty list/);
  bad([{ n: 1 }, 3], /\[1\]: expected a parameter object, got 3/);
  bad(Array(33).fill({}), /33 inputs, at most 32/);
});

test('ephemera.profile: one format, round-trips, accepts sizes with units and either T_mem or its two parts', { timeout: 5_000 }, () => {
  const p = profileFromRuns([{ ownPeak: 20 * MiB, filePeak: 238 * MiB, inputBytes: 5 }], 'profiled');
  assert.deepEqual(decodeProfile(encodeProfile(p)), p);
  assert.deepEqual(decodeProfile({ T_mem: '258M' }), { T_mem: 258 * MiB, ownPeakBytes: 258 * MiB, filePeakBytes: 0, source: 'user' });
  assert.equal(decodeProfile('{"ownPeakBytes": 4194304, "filePeakBytes": "1M"}').T_mem, 5 * MiB);
  const withFit = { ...p, source: 'observed' as const, fit: { intercept: 1, slope: 2, residual: 3, margin: 0.1, maxInput: 4, maxMem: 5, samples: 9 } };
  assert.deepEqual(decodeProfile(encodeProfile(withFit)), withFit);
  const bad = (v: unknown, re: RegExp): void => assert.throws(() => decodeProfile(v), (e: unknown) => isEphemeraError(e, 'EPH_PROFILE_INVALID') && re.test(e.message));
  bad('nope', /not JSON/);
  bad({}, /missing "T_mem"/);
  bad({ filePeakBytes: 3 }, /missing "ownPeakBytes"/);
  bad({ ownPeakBytes: 3 }, /missing "filePeakBytes"/);
  bad({ T_mem: -3 }, /T_mem must be a non-negative integer.*-3/);
  bad({ T_mem: '12 parsecs' }, /cannot parse size/);
  bad({ T_mem: 10, ownPeakBytes: 4, filePeakBytes: 5 }, /T_mem 10 is not ownPeakBytes 4 \+ filePeakBytes 5/);
  bad({ T_mem: 10, source: 'guess' }, /source must be/);
  bad({ T_mem: 10, fit: { slope: 'x' } }, /fit\.intercept/);
});
