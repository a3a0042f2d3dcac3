// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { flagSet, flagValue, parseFlags, type FlagSpec } from './flags.js';
import { isEphemeraError } from '../core/errors.js';

const SPEC: Readonly<Record<string, FlagSpec>> = {
  root: { value: true, repeatable: true },
  budget: { value: true },
  keep: { value: false },
};

test('values, repeatable flags, switches, = syntax and the rest after --', () => {
  const p = parseFlags(['--root', '/a', '--root=/b', '--budget=64M', '--keep', '--', 'cmd', '--root', 'x'], SPEC, 'ephemera run');
  assert.deepEqual(p.values.get('root'), ['/a', '/b']);
  assert.equal(flagValue(p, 'budget'), '64M');
  assert.ok(flagSet(p, 'keep'));
  assert.ok(!flagSet(p, 'nope'));
  assert.deepEqual(p.rest, ['cmd', '--root', 'x']);
});

test('no -- means rest is undefined; an empty rest is empty', () => {
  assert.equal(parseFlags(['--keep'], SPEC, 'c').rest, undefined);
  assert.deepEqual(parseFlags(['--'], SPEC, 'c').rest, []);
});

test('positionals are counted', () => {
  assert.deepEqual(parseFlags(['sock', 'stats', '--keep'], SPEC, 'c', 2).positionals, ['sock', 'stats']);
});

test('mistakes are usage errors that name the flag or value', () => {
  const cases: ReadonlyArray<readonly [readonly string[], RegExp]> = [
    [['--bogus'], /unknown flag "--bogus"; known flags: --root, --budget, --keep/],
    [['-x'], /unknown flag "-x"/],
    [['--budget'], /--budget needs a value/],
    [['--budget', '--'], /--budget needs a value/],
    [['--keep=yes'], /--keep takes no value, got "yes"/],
    [['--budget', '1', '--budget', '2'], /--budget given twice \("1" and "2"\)/],
    [['python3'], /unexpected argument "python3"; put the command after `--`/],
    [['--constructor'], /unknown flag "--constructor"/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(
      () => parseFlags(argv, SPEC, 'ephemera run'),
      (err: unknown) => isEphemeraError(err, 'EPH_CLI_USAGE') && re.test(err.message) && err.message.startsWith('ephemera run: '),
      argv.join(' '),
    );
  }
});
