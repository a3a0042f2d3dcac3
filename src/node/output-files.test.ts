// test-tier: unit
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { ACTIVATION_SENTINEL } from './activation-log.js';
import { OUTPUT_FILES, OutputFiles } from './output-files.js';

const S = ACTIVATION_SENTINEL;
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function runDir(stdout = '', stderr = ''): { dir: string; out: (s: string) => void; err: (s: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'eph-output-files-'));
  dirs.push(dir);
  writeFileSync(join(dir, OUTPUT_FILES.stdout), stdout);
  writeFileSync(join(dir, OUTPUT_FILES.stderr), stderr);
  return { dir, out: (s) => { appendFileSync(join(dir, OUTPUT_FILES.stdout), s); }, err: (s) => { appendFileSync(join(dir, OUTPUT_FILES.stderr), s); } };
}

test('an activation is what both files hold up to their sentinels: stdout lines, then stderr lines', { timeout: 5000 }, async () => {
  const r = runDir();
  const files = OutputFiles.open(r.dir, { fromEnd: false, now: () => 0 });
  assert.ok(files !== undefined);
  r.out(`one\n`);
  r.err(`oops\n${S}\n`);
  r.out(`two\n${S}\nnext run\n`);
  assert.deepEqual(await files.take(1000), ['1970-01-01T00:00:00.000Z stdout: one', '1970-01-01T00:00:00.000Z stdout: two', '1970-01-01T00:00:00.000Z stderr: oops']);
  r.err(`late\n${S}\n`);
  r.out(`${S}\n`);
  assert.deepEqual(await files.take(1000), ['1970-01-01T00:00:00.000Z stdout: next run', '1970-01-01T00:00:00.000Z stderr: late']);
  files.close();
});

test('a character split across two reads, and a sentinel that comes late, are waited for', { timeout: 5000 }, async () => {
  const r = runDir();
  const files = OutputFiles.open(r.dir, { fromEnd: false, now: () => 0 });
  assert.ok(files !== undefined);
  const word = Buffer.from('größe\n');
  appendFileSync(join(r.dir, OUTPUT_FILES.stdout), word.subarray(0, 3)); // 'g', 'r', half of 'ö'
  r.err(`${S}\n`);
  const pending = files.take(3000);
  setTimeout(() => {
    appendFileSync(join(r.dir, OUTPUT_FILES.stdout), word.subarray(3));
    r.out(`${S}\n`);
  }, 30);
  assert.deepEqual(await pending, ['1970-01-01T00:00:00.000Z stdout: größe']);
  files.close();
});

test('a missing sentinel ends the wait after the timeout and says so; what an earlier agent read is skipped', { timeout: 5000 }, async () => {
  const r = runDir(`before the takeover\n${S}\n`, `${S}\n`);
  const files = OutputFiles.open(r.dir, { fromEnd: true, now: () => 0 });
  assert.ok(files !== undefined);
  r.out(`starting\n`);
  const lines = await files.take(40);
  assert.equal(lines[0], '1970-01-01T00:00:00.000Z stdout: starting');
  assert.match(lines[1] ?? '', /sentinel did not arrive on stdout and stderr within 40 ms/);
  assert.equal(lines.length, 2);
  files.close();
});

test('a run directory without the files opens nothing (the output goes through the engine)', { timeout: 5000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'eph-output-files-'));
  dirs.push(dir);
  assert.equal(OutputFiles.open(dir, { fromEnd: false }), undefined);
});

test('a file read to its end past 8 MiB is emptied between activations, and reading goes on from its start', { timeout: 10_000 }, async () => {
  const r = runDir();
  const files = OutputFiles.open(r.dir, { fromEnd: false, now: () => 0 });
  assert.ok(files !== undefined);
  const line = 'x'.repeat(1023) + '\n';
  r.out(line.repeat(8 * 1024 + 1) + `${S}\n`);
  r.err(`${S}\n`);
  assert.equal((await files.take(1000)).length, 8 * 1024 + 1);
  assert.equal(statSync(join(r.dir, OUTPUT_FILES.stdout)).size, 0);
  assert.equal(statSync(join(r.dir, OUTPUT_FILES.stderr)).size, `${S}\n`.length, 'a small file is left as it is');
  r.out(`after\n${S}\n`);
  r.err(`${S}\n`);
  assert.deepEqual(await files.take(1000), ['1970-01-01T00:00:00.000Z stdout: after']);
  files.close();
});
