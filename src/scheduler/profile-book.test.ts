// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ProfileBook } from './profile-book.js';
import { decodeProfile, encodeProfile } from './profile.js';

const MiB = 1024 * 1024;

test('an action never profiled nor run is a neutral task: T_mem = T_lim', { timeout: 5_000 }, () => {
  assert.deepEqual(new ProfileBook().task('/ns/a', 256 * MiB, 10), { limit: 256 * MiB, mem: 256 * MiB });
  assert.equal(new ProfileBook().profile('/ns/a'), undefined);
});

test('with a profile and few activations, T_mem is the largest known; the dummy profile counts', { timeout: 5_000 }, () => {
  const book = new ProfileBook({ minSamples: 4 });
  book.setProfile('/ns/a', { T_mem: 300 * MiB, ownPeakBytes: 50 * MiB, filePeakBytes: 250 * MiB, source: 'profiled', runs: 2 });
  assert.equal(book.task('/ns/a', 150 * MiB, 1).mem, 300 * MiB);
  book.observe('/ns/a', { ownPeak: 40 * MiB, filePeak: 2 * MiB, inputBytes: MiB });
  assert.equal(book.task('/ns/a', 150 * MiB, 1).mem, 300 * MiB);
  book.observe('/ns/a', { ownPeak: 60 * MiB, filePeak: 300 * MiB, inputBytes: 150 * MiB });
  assert.equal(book.task('/ns/a', 150 * MiB, 1).mem, 360 * MiB);
  assert.deepEqual(book.profile('/ns/a'), { T_mem: 360 * MiB, ownPeakBytes: 60 * MiB, filePeakBytes: 300 * MiB, source: 'observed', runs: 4 });
});

test('once learned, T_mem follows the input, and the written-back profile carries the fit', { timeout: 5_000 }, () => {
  const book = new ProfileBook({ minSamples: 4, margin: 0 });
  book.setProfile('/ns/a', { T_mem: 600 * MiB, ownPeakBytes: 50 * MiB, filePeakBytes: 550 * MiB, source: 'profiled', runs: 1 });
  for (const x of [1, 10, 50, 100, 200]) book.observe('/ns/a', { ownPeak: 50 * MiB, filePeak: 2 * x * MiB, inputBytes: x * MiB });
  const small = book.task('/ns/a', 128 * MiB, 5 * MiB).mem;
  assert.ok(small >= 60 * MiB && small < 70 * MiB, `5 MiB of input: ${small / MiB} MiB`);
  assert.equal(book.task('/ns/a', 128 * MiB, 250 * MiB).mem, 600 * MiB, 'beyond the sizes seen: at least the largest known, here the dummy profile');
  assert.ok(book.task('/ns/a', 128 * MiB, 1000 * MiB).mem > 2000 * MiB, 'far beyond: the slope');
  const p = book.profile('/ns/a');
  assert.ok(p?.fit !== undefined);
  assert.equal(p.T_mem, 600 * MiB);
  assert.equal(p.source, 'profiled');
  assert.equal(p.runs, 6);
  assert.deepEqual(decodeProfile(encodeProfile(p)), p);
});
