// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatSize, parseSize } from './size.js';
import { isEphemeraError } from './errors.js';

test('parseSize accepts bytes and binary/SI units', () => {
  const table: ReadonlyArray<readonly [string, number]> = [
    ['0', 0],
    ['123', 123],
    ['512B', 512],
    ['64K', 64 * 1024],
    ['64k', 64 * 1024],
    ['64KiB', 64 * 1024],
    ['64KB', 64_000],
    ['64M', 64 * 1024 ** 2],
    ['64m', 64 * 1024 ** 2],
    ['64MiB', 64 * 1024 ** 2],
    ['500MB', 500_000_000],
    ['1.5G', 1.5 * 1024 ** 3],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['2GB', 2_000_000_000],
    ['1T', 1024 ** 4],
    [' 8M ', 8 * 1024 ** 2],
    ['8 M', 8 * 1024 ** 2],
    ['1.1K', 1126], // 1126.4 rounded down
  ];
  for (const [text, bytes] of table) {
    assert.equal(parseSize(text, '--budget'), bytes, text);
  }
});

test('parseSize rejects what is not a size, naming the flag and the value', () => {
  for (const bad of ['', 'M', '-1', '12x', '1.5', '0x10', '1e6', '64 MBs', 'ten', '1..5G', '9999999999T']) {
    assert.throws(
      () => parseSize(bad, '--memory'),
      (err: unknown) =>
        isEphemeraError(err, 'EPH_CLI_BAD_SIZE') &&
        err.message.startsWith('--memory: ') &&
        err.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});

test('formatSize picks the largest binary unit', () => {
  assert.equal(formatSize(512), '512 B');
  assert.equal(formatSize(32 * 1024 ** 2), '32.0 MiB');
  assert.equal(formatSize(1536), '1.5 KiB');
});
