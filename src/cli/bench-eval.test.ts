// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EphemeraError } from '../core/errors.js';
import { MODES } from '../bench/eval/sandbox.js';
import { parseEvalArgs } from './bench-eval.js';

const usageError = (e: unknown): boolean => e instanceof EphemeraError && e.code === 'EPH_CLI_USAGE';

test('parseEvalArgs: defaults, composites, and usage errors that name the bad value', () => {
  const o = parseEvalArgs(['fig12']);
  assert.deepEqual(o.experiments, ['fig12']);
  assert.equal(o.size, 'full');
  assert.equal(o.repeats, 3);
  assert.deepEqual(o.modes, MODES);
  assert.equal(o.plot, true);
  const q = parseEvalArgs(['quick', '--modes', 'tmpfs,overlay']);
  assert.equal(q.size, 'small');
  assert.deepEqual(q.modes, ['overlay', 'tmpfs']);
  assert.ok(q.experiments.length > 1);
  assert.deepEqual(parseEvalArgs(['fig13', '--workloads', 'factorial,video']).workloads, ['factorial', 'video']);
  assert.ok(o.nativeDir.endsWith('/build'), o.nativeDir);
  assert.equal(parseEvalArgs(['fig13', '--native', '/opt/eph/build']).nativeDir, '/opt/eph/build');
  for (const bad of [[], ['fig99'], ['fig10', '--size', 'huge'], ['fig10', '--repeats', '0'], ['fig10', '--modes', 'ramfs'], ['fig10', '--cpuset', 'x'], ['fig10', '--bogus'], ['fig13', '--workloads', 'sql']]) {
    assert.throws(() => parseEvalArgs(bad), usageError, JSON.stringify(bad));
  }
});

test('parseEvalArgs follows the one flag parser: --name=VALUE, flags before the experiment, switches', () => {
  const o = parseEvalArgs(['--size=tiny', 'fig10', '--no-plot', '--timeout', '60']);
  assert.equal(o.size, 'tiny');
  assert.equal(o.plot, false);
  assert.equal(o.timeoutMs, 60_000);
});

test('parseEvalArgs rejects what node:util parseArgs let through: a repeated flag, a second experiment, `--`', () => {
  // parseArgs kept the last of two --size flags; parseFlags says which two it got.
  assert.throws(() => parseEvalArgs(['fig10', '--size', 'tiny', '--size', 'full']), (e: unknown) => usageError(e) && (e as Error).message.includes('--size given twice'));
  assert.throws(() => parseEvalArgs(['fig10', 'fig12']), (e: unknown) => usageError(e) && (e as Error).message.includes('"fig12"'));
  assert.throws(() => parseEvalArgs(['fig10', '--', 'x']), usageError);
  assert.throws(() => parseEvalArgs(['fig10', '--no-plot=yes']), usageError);
});
