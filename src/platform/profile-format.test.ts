// test-tier: unit
/**
 * One profile format: what the platform writes on an action (`ephemera.profile`, as GET shows it)
 * is what the Kubernetes extender reads from a pod's `ephemera.dev/profile`. Each way the platform
 * makes a profile (set by hand, the profiler's runs, activations observed) goes through JSON into a
 * pod, and the extender's task carries the same T_mem (own peak + file peak).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';

import { POD_ANNOTATIONS, decodeExtenderArgs } from '../scheduler/extender.js';
import { profileFromRuns } from '../scheduler/profile.js';
import { PROFILE_ANNOTATION, annotation, buildAction, foldPeaks, type Profile } from './model.js';
import { Store } from './store.js';

const MiB = 1 << 20;

function extenderMem(profile: unknown): number | undefined {
  const pod = {
    metadata: { name: 'fn', namespace: 'guest', annotations: { [POD_ANNOTATIONS.profile]: JSON.stringify(profile) } },
    spec: { containers: [{ name: 'fn', resources: { limits: { memory: '256Mi' } } }] },
  };
  return decodeExtenderArgs({ Pod: pod, NodeNames: ['n1'] }).task?.mem;
}

test("the platform's profiles, every source, read by the extender as the same T_mem", { timeout: 5_000 }, () => {
  const action = buildAction('guest', 'fn', { exec: { kind: 'python:3', code: 'def main(a): return a' }, annotations: [{ key: PROFILE_ANNOTATION, value: { ownPeakBytes: 20 * MiB, filePeakBytes: '238M' } }] }, undefined, 0);
  const byHand = annotation(action.annotations, PROFILE_ANNOTATION) as Profile;
  const profiled = profileFromRuns([{ ownPeak: 44 * MiB, filePeak: 24 * MiB, inputBytes: 30 }, { ownPeak: 12 * MiB, filePeak: 4 * MiB, inputBytes: 29 }], 'profiled');
  const observed = foldPeaks(foldPeaks(undefined, 30 * MiB, 100 * MiB), 31 * MiB, 90 * MiB);
  for (const [p, mem] of [[byHand, 258 * MiB], [profiled, 68 * MiB], [observed, 131 * MiB]] as const) {
    assert.equal(p.T_mem, mem, JSON.stringify(p));
    assert.equal(p.T_mem, p.ownPeakBytes + p.filePeakBytes);
    assert.equal(extenderMem(JSON.parse(JSON.stringify(p))), mem, `the extender reads ${JSON.stringify(p)}`);
  }
  assert.deepEqual(byHand, { T_mem: 258 * MiB, ownPeakBytes: 20 * MiB, filePeakBytes: 238 * MiB, source: 'user' });
  assert.equal(profiled.source, 'profiled');
  assert.equal(observed.source, 'observed');
});

test('a bad profile gets the same message on an action and on a pod', { timeout: 5_000 }, () => {
  const value = { ownPeakBytes: -1, filePeakBytes: 0 };
  assert.throws(() => buildAction('guest', 'fn', { exec: { kind: 'python:3', code: 'x' }, annotations: [{ key: PROFILE_ANNOTATION, value }] }, undefined, 0), /ephemera\.profile\.ownPeakBytes must be a non-negative integer/);
  assert.throws(() => extenderMem(value), /ephemera\.profile\.ownPeakBytes must be a non-negative integer/);
});

test('profiles written before T_mem = own + file (T_mem was the limit): their parts decide, when sent back and when read from the store', { timeout: 5_000 }, () => {
  const old = { T_mem: 256 * MiB, ownPeakBytes: MiB, filePeakBytes: 4096, source: 'profiled', runs: 2 };
  const put = (value: unknown): Profile => annotation(buildAction('guest', 'fn', { exec: { kind: 'python:3', code: 'x' }, annotations: [{ key: PROFILE_ANNOTATION, value }] }, undefined, 0).annotations, PROFILE_ANNOTATION) as Profile;
  assert.deepEqual(put(old), { T_mem: MiB + 4096, ownPeakBytes: MiB, filePeakBytes: 4096, source: 'profiled', runs: 2 });
  assert.equal(put({ ...old, source: 'observed' }).T_mem, MiB + 4096);
  // Set by hand, the two must agree.
  assert.throws(() => put({ ...old, source: 'user' }), /T_mem 268435456 is not ownPeakBytes 1048576 \+ filePeakBytes 4096/);
  const dir = mkdtempSync(join(tmpdir(), 'peakop-store-'));
  const store = Store.open(dir);
  try {
    const db = new DatabaseSync(store.path);
    db.prepare('INSERT INTO profiles (namespace, name, profile, samples) VALUES (?, ?, ?, 1)').run('guest', 'fn', JSON.stringify({ ...old, source: 'observed' }));
    db.close();
    assert.equal(store.observedProfile('guest', 'fn')?.T_mem, MiB + 4096);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
