// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';

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

/** The source files below `dir` (relative to the repository) whose names end in one of `exts`. */
function sources(dir: string, exts: readonly string[]): string[] {
  const root = new URL(`../../../${dir}/`, import.meta.url);
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => exts.some((e) => f.endsWith(e)) && !f.endsWith('.test.ts'))
    .map((f) => readFileSync(new URL(f, root), 'utf8'));
}

/** Codes written as string literals ('EPH_X' or "EPH_X"): what the code can send. */
function literalCodes(texts: readonly string[]): Set<string> {
  return new Set(texts.flatMap((t) => [...t.matchAll(/['"](EPH_[A-Z_]+)['"]/g)].map((m) => m[1] ?? '')));
}

function documentedCodes(section: string): string[] {
  const part = docs.split(/^## /m).find((s) => s.startsWith(section));
  assert.ok(part, `docs/ERRORS.md has a "## ${section}" section`);
  return [...part.matchAll(/^\| `(EPH_[A-Z_]+)` \|/gm)].map((m) => m[1] ?? '').sort();
}

test('every daemon code in docs/ERRORS.md is sent by the daemon, and every code it sends is documented', () => {
  const sent = [...literalCodes(sources('daemon', ['.c', '.h']))].sort();
  assert.deepEqual(documentedCodes('Daemon'), sent, 'docs/ERRORS.md "Daemon" table vs the "EPH_..." literals in daemon/');
  const protocol = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');
  const inProtocol = [...(protocol.split(/^## /m).find((s) => s.startsWith('Error codes')) ?? '').matchAll(/^\| `(EPH_[A-Z_]+)` \|/gm)].map((m) => m[1] ?? '');
  assert.deepEqual(inProtocol.sort(), sent, 'docs/PROTOCOL.md "Error codes" table vs the daemon');
});

test('every control-plane code is raised somewhere in src/', () => {
  const used = literalCodes(sources('src', ['.ts']).filter((t) => !t.includes('export const ERROR_CODES = {')));
  for (const code of Object.keys(ERROR_CODES)) assert.ok(used.has(code), `${code} is in ERROR_CODES and docs/ERRORS.md but no code in src/ raises it`);
});
