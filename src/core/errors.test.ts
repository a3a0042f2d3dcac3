import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { ERROR_CODES, EphemeraError, isEphemeraError, type ErrorCode } from './errors.js';

// build/js/core/errors.test.js -> repository root
const docs = readFileSync(new URL('../../../docs/ERRORS.md', import.meta.url), 'utf8');

test('every error code is documented in docs/ERRORS.md with its exit status', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.match(docs, new RegExp(`^\\| \`${code}\` \\| ${info.exit} \\|`, 'm'), `${code} has no row with exit ${info.exit} in docs/ERRORS.md`);
  }
});

test('docs/ERRORS.md documents no control-plane code that does not exist', () => {
  const section = docs.split(/^## /m).find((s) => s.startsWith('Control plane'));
  assert.ok(section, 'docs/ERRORS.md has a "## Control plane" section');
  const documented = [...section.matchAll(/^\| `(EPH_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});

test('codes are stable identifiers and summaries are single lines', () => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^EPH_[A-Z]+(_[A-Z]+)*$/);
    assert.ok(info.summary.length > 0 && !info.summary.includes('\n'), code);
    assert.ok([1, 2].includes(info.exit), code);
  }
});

test('EphemeraError carries code, detail, cause and exit status', () => {
  const cause = new Error('ENOENT');
  const err = new EphemeraError('EPH_CLI_BAD_ROOT', '--root: /nope does not exist', {
    cause,
    detail: { root: '/nope' },
  });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'EphemeraError');
  assert.equal(err.code, 'EPH_CLI_BAD_ROOT' satisfies ErrorCode);
  assert.equal(err.cause, cause);
  assert.deepEqual(err.detail, { root: '/nope' });
  assert.equal(err.exitStatus, 2);
  assert.equal(new EphemeraError('EPH_DAEMON_START', 'x').exitStatus, 1);
  assert.ok(isEphemeraError(err));
  assert.ok(isEphemeraError(err, 'EPH_CLI_BAD_ROOT'));
  assert.ok(!isEphemeraError(err, 'EPH_CLI_USAGE'));
  assert.ok(!isEphemeraError(cause));
});
